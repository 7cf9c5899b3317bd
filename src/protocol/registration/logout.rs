//! Logout metadata of a client: OIDC Back-Channel Logout 1.0 §2.2 and Front-Channel
//! Logout 1.0 §2.

use super::{check_fetch_uri, check_redirect_uri, metadata_error};
use crate::domain::ApplicationType;
use crate::protocol::OAuthError;
use crate::store::LogoutUri;

/// `backchannel_logout_uri`: we POST logout tokens to it, so it is held to the rules of
/// every URL this provider fetches (https, no internal address, no fragment: §2.2 "MUST
/// NOT include a fragment component").
pub fn backchannel(
    uri: Option<String>,
    session_required: Option<bool>,
    issuer: &str,
) -> Result<Option<LogoutUri>, OAuthError> {
    let Some(uri) = uri else {
        return Ok(None);
    };
    check_fetch_uri("backchannel_logout_uri", &uri, issuer)?;
    Ok(Some(LogoutUri {
        uri,
        session_required: session_required.unwrap_or(false),
    }))
}

/// `frontchannel_logout_uri`: loaded by the user's browser in an iframe. Front-Channel
/// Logout §2: "The domain, port, and scheme of this URL MUST be the same as that of a
/// registered Redirection URI value", and no fragment.
pub fn frontchannel(
    uri: Option<String>,
    session_required: Option<bool>,
    redirect_uris: &[String],
    application_type: ApplicationType,
) -> Result<Option<LogoutUri>, OAuthError> {
    let Some(uri) = uri else {
        return Ok(None);
    };
    check_redirect_uri(&uri, application_type).map_err(|_| {
        metadata_error("frontchannel_logout_uri must be an absolute https URL without a fragment")
    })?;
    let origin = |u: &str| url::Url::parse(u).ok().map(|u| u.origin());
    let same_origin = origin(&uri).is_some_and(|o| {
        o.is_tuple() && redirect_uris.iter().any(|r| origin(r).as_ref() == Some(&o))
    });
    if !same_origin {
        return Err(metadata_error(
            "frontchannel_logout_uri must have the scheme, host and port of a redirect URI",
        ));
    }
    Ok(Some(LogoutUri {
        uri,
        session_required: session_required.unwrap_or(false),
    }))
}
