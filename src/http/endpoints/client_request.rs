//! A client-authenticated back-channel request (token, revocation, introspection, PAR,
//! device authorization): its form and the credentials it presents (RFC 6749 §2.3.1).

use actix_web::HttpRequest;
use actix_web::http::header;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use crate::domain::Secret;
use crate::http::body::form_params;
use crate::protocol::client_auth::PresentedCredentials;
use crate::protocol::{OAuthError, Params};

/// The form body and the client credentials of a client-authenticated back-channel
/// request (token, revocation, introspection).
pub fn client_request(
    req: &HttpRequest,
    body: &[u8],
) -> Result<(Params, PresentedCredentials), OAuthError> {
    let params = form_params(req, body)?;
    let creds = PresentedCredentials::from_request(basic_credentials(req)?, &params)?;
    Ok((params, creds))
}

/// `Authorization: Basic` per RFC 6749 §2.3.1: id and secret are form-urlencoded before
/// being joined with ':' and base64-encoded.
fn basic_credentials(req: &HttpRequest) -> Result<Option<(String, Secret<String>)>, OAuthError> {
    let Some(value) = req.headers().get(header::AUTHORIZATION) else {
        return Ok(None);
    };
    let value = value.to_str().map_err(|_| malformed_basic())?;
    parse_basic(value).map(Some)
}

fn malformed_basic() -> OAuthError {
    OAuthError::invalid_client("malformed Basic credentials")
}

/// An `Authorization` header value as `Basic` client credentials (RFC 6749 §2.3.1);
/// anything else is `invalid_client`.
pub fn parse_basic(value: &str) -> Result<(String, Secret<String>), OAuthError> {
    let malformed = malformed_basic;
    let Some((scheme, encoded)) = value.split_once(' ') else {
        return Err(malformed());
    };
    if !scheme.eq_ignore_ascii_case("basic") {
        return Err(malformed());
    }
    let decoded = STANDARD.decode(encoded.trim()).map_err(|_| malformed())?;
    let text = String::from_utf8(decoded).map_err(|_| malformed())?;
    let (id, secret) = text.split_once(':').ok_or_else(malformed)?;
    let unescape = |s: &str| -> Result<String, OAuthError> {
        url::form_urlencoded::parse(format!("x={s}").as_bytes())
            .next()
            .map(|(_, v)| v.into_owned())
            .ok_or_else(malformed)
    };
    Ok((unescape(id)?, Secret::new(unescape(secret)?)))
}
