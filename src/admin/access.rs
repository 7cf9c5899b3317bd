//! Who may administer: the bearer of an access token from this provider with the
//! `admin` scope, issued to a client registered for that scope, and (for a user's
//! token) to a user who holds the admin role and is not disabled. Every request checks
//! all of it again, so taking the role, the client's scope or the account away ends
//! access at once, whatever tokens are out.

use super::Actor;
use crate::domain::Scopes;
use crate::protocol::dpop::{Presented, check_client_nonce, check_presentation};
use crate::protocol::tokens::{Subject, verify_access_token};
use crate::protocol::{Context, ErrorCode, OAuthError};

pub use crate::protocol::ADMIN_SCOPE;

fn forbidden(description: &'static str) -> OAuthError {
    OAuthError::new(ErrorCode::InsufficientScope, description)
}

/// `presented`: how the token came (a DPoP-bound token only with a proof by its key,
/// RFC 9449 §7.1).
pub fn authenticate(
    token: &str,
    presented: Presented<'_>,
    ctx: &Context<'_>,
) -> Result<Actor, OAuthError> {
    // RFC 9068 §4: the admin API is this provider's resource; its tokens name the issuer.
    let claims = verify_access_token(token, Some(&ctx.config.issuer), ctx)?;
    check_presentation(claims.dpop_jkt(), presented)?;
    let scopes = Scopes::parse(&claims.scope).unwrap_or_default();
    if !scopes.contains(ADMIN_SCOPE) {
        return Err(forbidden("the admin scope is required"));
    }
    let client = ctx
        .store
        .find_client(&claims.client_id)?
        .ok_or_else(|| OAuthError::invalid_token("the access token has been revoked"))?;
    if !client
        .scope
        .as_ref()
        .is_some_and(|s| s.contains(ADMIN_SCOPE))
    {
        return Err(forbidden(
            "the client is no longer registered for the admin scope",
        ));
    }
    // RFC 9449 §9: the token's client's `require_dpop_nonce` holds here as at userinfo.
    check_client_nonce(presented, client.metadata.require_dpop_nonce)?;
    match claims.subject() {
        Some(Subject::Client { client_id }) => Ok(Actor::Client { id: client_id }),
        Some(Subject::User { grant_id, .. }) => {
            let (user, _) = ctx
                .store
                .find_grant_user(&grant_id)?
                .ok_or_else(|| OAuthError::invalid_token("the user no longer exists"))?;
            if user.disabled_at.is_some() {
                return Err(forbidden("the account is disabled"));
            }
            if !user.is_admin {
                return Err(forbidden("the user is not an administrator"));
            }
            Ok(Actor::User {
                id: user.id,
                username: user.username,
            })
        }
        None => Err(OAuthError::invalid_token(
            "the access token is invalid or has expired",
        )),
    }
}
