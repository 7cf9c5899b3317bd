//! The authorization response (RFC 6749 §4.1.2, RFC 9207 `iss`) and error redirects.

use super::AuthorizationRequest;
use crate::crypto::tokens::{random_token, token_hash};
use crate::protocol::{Context, OAuthError};
use crate::sessions::SsoSession;
use crate::store::AuthorizationCode;

/// Creates a code for the signed-in user and returns the redirect URL carrying it.
pub fn issue_code(
    request: &AuthorizationRequest,
    session: &SsoSession,
    ctx: &Context<'_>,
) -> Result<String, OAuthError> {
    let code = random_token(32);
    ctx.store.insert_code(&AuthorizationCode {
        code_hash: token_hash(&code),
        grant_id: random_token(16),
        client_id: request.client_id.clone(),
        user_id: session.user_id.clone(),
        redirect_uri: request.redirect_uri.clone(),
        redirect_uri_sent: request.redirect_uri_sent,
        scope: request.scope.clone(),
        nonce: request.nonce.clone(),
        code_challenge: request.code_challenge.clone(),
        code_challenge_method: request.code_challenge_method.clone(),
        session_id: Some(session.sid.clone()),
        auth_time: session.auth_time,
        created_at: ctx.now,
        expires_at: ctx.now + ctx.settings.authorization_code_ttl,
        consumed_at: None,
    })?;
    Ok(redirect_with(
        &request.redirect_uri,
        &[
            ("code", Some(&code)),
            ("state", request.state.as_deref()),
            ("iss", Some(&ctx.settings.issuer)),
        ],
    ))
}

/// The redirect for an error (RFC 6749 §4.1.2.1), with RFC 9207 `iss`.
pub fn error_redirect(
    redirect_uri: &str,
    state: Option<&str>,
    error: &OAuthError,
    issuer: &str,
) -> String {
    let description = error.wire_description();
    redirect_with(
        redirect_uri,
        &[
            ("error", Some(error.code.as_str())),
            ("error_description", description.as_deref()),
            ("state", state),
            ("iss", Some(issuer)),
        ],
    )
}

/// Appends query parameters, keeping any query the registered URI already has
/// (RFC 6749 §3.1.2).
fn redirect_with(base: &str, pairs: &[(&str, Option<&str>)]) -> String {
    match url::Url::parse(base) {
        Ok(mut url) => {
            {
                let mut query = url.query_pairs_mut();
                for (k, v) in pairs {
                    if let Some(v) = v {
                        query.append_pair(k, v);
                    }
                }
            }
            url.to_string()
        }
        // Registered URIs are validated as absolute URLs, so this is unreachable in practice.
        Err(_) => base.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redirects_keep_the_registered_query_and_encode_values() {
        let url = redirect_with(
            "https://rp/cb?x=1",
            &[("state", Some("a b&c")), ("code", None)],
        );
        assert_eq!(url, "https://rp/cb?x=1&state=a+b%26c");
    }
}
