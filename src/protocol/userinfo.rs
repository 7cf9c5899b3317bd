//! The UserInfo endpoint (OIDC Core §5.3): claims by scope (§5.4) for a valid access token.

use serde_json::{Value, json};

use super::claims::{all_claims, claims_for};
use super::claims_request::{ClaimsRequest, add_requested};
use super::dpop::{Presented, check_client_nonce, check_presentation};
use super::groups;
use super::tokens::{Subject, signing_key, subject_for, verify_access_token};
use super::{Context, ErrorCode, OAuthError};
use crate::crypto::KeyAlgorithm;
use crate::domain::Scopes;

/// A userinfo response: JSON, or a signed JWT for a client registered with
/// `userinfo_signed_response_alg` (OIDC Core §5.3.2, `application/jwt`).
#[derive(Debug)]
pub enum UserinfoResponse {
    Json(Value),
    Jwt(String),
}

/// `presented`: how the token came (RFC 9449 §7.1: a DPoP-bound token only with a proof
/// by its key).
pub fn userinfo(
    access_token: &str,
    presented: Presented<'_>,
    ctx: &Context<'_>,
) -> Result<UserinfoResponse, OAuthError> {
    userinfo_answer(access_token, presented, ctx).map(|(response, _)| response)
}

/// `userinfo`, and whether the token's client requires the server's nonce in its DPoP
/// proofs (RFC 9449 §8.2, §9: the next nonce then goes with the answer).
pub fn userinfo_answer(
    access_token: &str,
    presented: Presented<'_>,
    ctx: &Context<'_>,
) -> Result<(UserinfoResponse, bool), OAuthError> {
    // RFC 9068 §4: userinfo is this provider's resource, so the token must name it.
    let claims = verify_access_token(access_token, Some(&ctx.config.issuer), ctx)?;
    check_presentation(claims.dpop_jkt(), presented)?;
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
    // Client metadata is cached: no query on the common path.
    let client = ctx
        .store
        .find_client(&claims.client_id)?
        .ok_or_else(|| OAuthError::invalid_token("the access token has been revoked"))?;
    let nonce_required = client.metadata.require_dpop_nonce;
    check_client_nonce(presented, nonce_required)?;
    // The token's `sub` is the one this client knows the user by (pairwise or not).
    let (user, requested) = ctx
        .store
        .find_grant_user(&grant_id)?
        .filter(|(user, _)| subject_for(&client, &user.id, ctx.kek) == user_id)
        .ok_or_else(|| OAuthError::invalid_token("the user no longer exists"))?;
    let mut out = claims_for(&user, &scopes);
    // OIDC Core §5.5: claims the request asked userinfo for, beyond its scopes.
    let requested = ClaimsRequest::from_stored(requested.as_deref());
    if let Some(requested) = &requested {
        add_requested(&mut out, &all_claims(&user), &requested.userinfo);
    }
    // The user's groups as they are now (one indexed query, or none from the cache).
    if groups::released(&scopes, requested.as_ref().map(|r| &r.userinfo)) {
        let names = groups::claim(&grant_id, ctx)?;
        out.insert(groups::GROUPS.into(), groups::value(&names));
    }
    out.insert("sub".into(), json!(user_id));
    let alg = userinfo_alg(&client);
    let Some(alg) = alg else {
        return Ok((UserinfoResponse::Json(Value::Object(out)), nonce_required));
    };
    // §5.3.2: "If signed, the UserInfo Response SHOULD contain the Claims iss (issuer) and
    // aud (audience) as members", the audience being the client.
    out.insert("iss".into(), json!(ctx.config.issuer));
    out.insert("aud".into(), json!(claims.client_id));
    let token = signing_key(ctx.keys, alg, ctx.now)?
        .sign_jwt("JWT", &Value::Object(out))
        .map_err(OAuthError::server)?;
    Ok((UserinfoResponse::Jwt(token), nonce_required))
}

/// The algorithm a client registered for signed userinfo responses, if any.
pub fn userinfo_alg(client: &crate::store::Client) -> Option<KeyAlgorithm> {
    client.metadata.userinfo_signed_response_alg
}
