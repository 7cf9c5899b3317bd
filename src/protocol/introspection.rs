//! Token introspection (RFC 7662), with the JWT response of RFC 9701.

use serde_json::{Value, json};

use super::groups::{self, GROUPS};
use super::opaque_token;
use super::profile::ClientProfile;
use super::tokens::{Subject, subject_for, verify_access_token};
use super::{Context, OAuthError};
use crate::crypto::KeyAlgorithm;
use crate::crypto::tokens::token_hash;
use crate::domain::Scopes;
use crate::store::Client;

/// RFC 9701 §5: the media type a client asks for (Accept) and gets.
pub const JWT_RESPONSE_TYPE: &str = "application/token-introspection+jwt";

/// §2.2: an inactive token gets `{"active": false}` and nothing else, whatever the reason
/// (expired, revoked, malformed, not ours), so the answer reveals nothing.
fn inactive() -> Value {
    json!({ "active": false })
}

/// What `caller` may learn about `token`. Any authenticated confidential client may
/// introspect access tokens (resource servers are clients too); refresh tokens only by the
/// client they were issued to, since nobody else has any business with them.
pub fn introspect(token: &str, caller: &Client, ctx: &Context<'_>) -> Result<Value, OAuthError> {
    // No `token_type_hint` needed (RFC 7662 §2.1 lets us ignore it): a JWT access token is
    // recognised without any lookup, an opaque one with one, so they are tried first.
    if let Some(info) = access_token_info(token, caller, ctx)? {
        return Ok(info);
    }
    Ok(refresh_token_info(token, caller, ctx)?.unwrap_or_else(inactive))
}

fn access_token_info(
    token: &str,
    _caller: &Client,
    ctx: &Context<'_>,
) -> Result<Option<Value>, OAuthError> {
    // A JWT of ours, or an opaque token of ours (issue 26: the same claims, stored): either
    // is checked by `verify_access_token`, and answers with the same members.
    let jwt = token.matches('.').count() == 2;
    if !jwt && !opaque_token::looks_opaque(token) {
        return Ok(None);
    }
    let claims = match verify_access_token(token, None, ctx) {
        Ok(claims) => claims,
        // A dead JWT is plainly no refresh token: no further lookup. A string of the
        // opaque shape may be a refresh token, which answers inactive if it is not one.
        Err(e) if e.code == super::ErrorCode::InvalidToken && jwt => {
            return Ok(Some(inactive()));
        }
        Err(e) if e.code == super::ErrorCode::InvalidToken => return Ok(None),
        Err(e) => return Err(e),
    };
    let mut info = json!({
        "active": true,
        "iss": claims.iss,
        "client_id": claims.client_id,
        "sub": claims.sub,
        "aud": claims.aud,
        "scope": claims.scope,
        "exp": claims.exp,
        "iat": claims.iat,
        "jti": claims.jti,
        // RFC 9449 §6.2: a bound token's type and key, for the resource server to check
        // the proof against.
        "token_type": if claims.cnf.is_some() { super::dpop::SCHEME } else { "Bearer" },
    });
    if let Some(cnf) = &claims.cnf {
        info["cnf"] = cnf.clone();
    }
    if let Some(auth_time) = claims.auth_time {
        info["auth_time"] = json!(auth_time);
    }
    if let Some(acr) = &claims.acr {
        info["acr"] = json!(acr);
    }
    if let Some(amr) = &claims.amr {
        info["amr"] = json!(amr);
    }
    // RFC 8693 §4.1: a delegated token says who acts (RFC 7662 §2.2 allows any claim).
    if let Some(act) = &claims.act {
        info["act"] = act.clone();
    }
    match claims.subject() {
        Some(Subject::Client { .. }) => info["sub_type"] = json!("client"),
        // What the groups are now, not what the token says they were: a resource server
        // that asks is told of a membership ended since (`protocol::groups`).
        Some(Subject::User { grant_id, .. }) if has_groups_scope(&claims.scope) => {
            info[GROUPS] = groups::value(&groups::claim(&grant_id, ctx)?);
        }
        _ => {}
    }
    Ok(Some(info))
}

fn refresh_token_info(
    token: &str,
    caller: &Client,
    ctx: &Context<'_>,
) -> Result<Option<Value>, OAuthError> {
    let Some((record, grant)) = ctx.store.find_refresh_token(&token_hash(token))? else {
        return Ok(None);
    };
    let active = grant.client_id == caller.id
        && grant.is_live(ctx.now)
        && record.expires_at > ctx.now
        && record.consumed_at.is_none();
    if !active {
        return Ok(Some(inactive()));
    }
    let mut info = json!({
        "active": true,
        "iss": ctx.config.issuer,
        "client_id": grant.client_id,
        "sub": subject_for(caller, &grant.user_id, ctx.kek),
        "aud": grant.client_id,
        "scope": grant.scope,
        "exp": record.expires_at,
        "iat": record.created_at,
        "auth_time": grant.auth_time,
        "token_type": "refresh_token",
    });
    if let Some(acr) = &grant.acr {
        info["acr"] = json!(acr);
    }
    if let Some(amr) = &grant.amr {
        info["amr"] = json!(super::stored_amr::amr_words(amr));
    }
    if has_groups_scope(&grant.scope) {
        info[GROUPS] = groups::value(&groups::claim(&grant.id, ctx)?);
    }
    Ok(Some(info))
}

fn has_groups_scope(scope: &str) -> bool {
    Scopes::parse(scope).is_some_and(|s| s.contains(GROUPS))
}

/// The algorithm of `caller`'s signed introspection responses: its metadata's, or its
/// profile's default (RS256, or PS256 under fapi2).
pub fn response_alg(caller: &Client) -> KeyAlgorithm {
    caller
        .metadata
        .introspection_signed_response_alg
        .unwrap_or_else(|| ClientProfile::of(caller).default_signing_alg())
}

/// RFC 9701 §5: the response as a signed JWT for `caller`, `typ`
/// `token-introspection+jwt`, the RFC 7662 response under `token_introspection`.
pub fn jwt_response(info: Value, caller: &Client, ctx: &Context<'_>) -> Result<String, OAuthError> {
    let alg = response_alg(caller);
    let key = ctx
        .keys
        .signing_key(alg, ctx.now)
        .ok_or_else(|| OAuthError::server(format!("no {} signing key", alg.as_str())))?;
    let claims = json!({
        "iss": ctx.config.issuer,
        "aud": caller.id,
        "iat": ctx.now,
        "token_introspection": info,
    });
    key.sign_jwt("token-introspection+jwt", &claims)
        .map_err(OAuthError::server)
}
