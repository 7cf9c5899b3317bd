//! The UserInfo endpoint (OIDC Core §5.3): claims by scope (§5.4) for a valid access token.

use serde_json::Value;

use super::claims::{all_claims, claims_for};
use super::claims_request::{ClaimsRequest, add_requested};
use super::tokens::{Subject, verify_access_token};
use super::{Context, ErrorCode, OAuthError};
use crate::domain::Scopes;

pub fn userinfo(access_token: &str, ctx: &Context<'_>) -> Result<Value, OAuthError> {
    // RFC 9068 §4: userinfo is this provider's resource, so the token must name it.
    let claims = verify_access_token(access_token, Some(&ctx.settings.issuer), ctx)?;
    let Some(Subject::User { user_id, grant_id }) = claims.subject() else {
        // A client's own token (client_credentials) speaks for no user.
        return Err(OAuthError::invalid_token(
            "the access token was not issued for a user",
        ));
    };
    let scopes = Scopes::parse(&claims.scope).unwrap_or_default();
    if !scopes.contains("openid") {
        return Err(OAuthError::new(
            ErrorCode::InsufficientScope,
            "the openid scope is required",
        ));
    }
    let (user, requested) = ctx
        .store
        .find_grant_user(&grant_id)?
        .filter(|(user, _)| user.id == user_id)
        .ok_or_else(|| OAuthError::invalid_token("the user no longer exists"))?;
    let mut out = claims_for(&user, &scopes);
    // OIDC Core §5.5: claims the request asked userinfo for, beyond its scopes.
    if let Some(requested) = ClaimsRequest::from_stored(requested.as_deref()) {
        add_requested(&mut out, &all_claims(&user), &requested.userinfo);
    }
    Ok(Value::Object(out))
}
