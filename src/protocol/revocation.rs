//! Token revocation (RFC 7009): refresh tokens end their grant (and so every access token
//! issued from it); access tokens are denylisted by `jti` until they would expire.

use super::tokens::resolve_access_token;
use super::{Context, ErrorCode, OAuthError};
use crate::crypto::keys::JwtExpectations;
use crate::crypto::tokens::token_hash;
use crate::store::Client;

/// Revokes `token` if it is one of ours and was issued to `client`. An unknown or expired
/// token changes nothing and still succeeds (§2.2: "invalid tokens do not cause an error
/// response"). A token of another client is refused (§2.1: "If this validation fails,
/// the request is refused and the client is informed"), except towards a public client,
/// whose client_id proves nothing: it learns nothing either. An ID token is ours but not
/// revocable: `unsupported_token_type` (§2.2.1).
///
/// `token_type_hint` is not needed (§2.1: the server "MAY ignore this parameter"): a JWT
/// access token of ours is recognised without any lookup, an opaque one (issue 26) by
/// one, so access tokens are tried first. Either is revoked by denylisting its `jti`
/// (which also ends the tokens exchanged from it).
pub fn revoke(token: &str, client: &Client, ctx: &Context<'_>) -> Result<(), OAuthError> {
    if !revoke_access_token(token, client, ctx)? {
        revoke_refresh_token(token, client, ctx)?;
    }
    Ok(())
}

fn revoke_refresh_token(
    token: &str,
    client: &Client,
    ctx: &Context<'_>,
) -> Result<bool, OAuthError> {
    match ctx.store.find_refresh_token(&token_hash(token))? {
        Some((_, grant)) if grant.client_id == client.id => {
            // §2.1: revoking a refresh token SHOULD also invalidate the access tokens of
            // the same grant; ending the grant does both.
            ctx.store.revoke_grant(&grant.id, ctx.now)?;
            Ok(true)
        }
        Some(_) => refuse_foreign(client),
        None => Ok(false),
    }
}

fn refuse_foreign(client: &Client) -> Result<bool, OAuthError> {
    if client.is_public() {
        Ok(true)
    } else {
        Err(OAuthError::invalid_request(
            "the token was not issued to this client",
        ))
    }
}

fn revoke_access_token(
    token: &str,
    client: &Client,
    ctx: &Context<'_>,
) -> Result<bool, OAuthError> {
    // A JWT costs no lookup unless the signature is ours; an opaque token one lookup of
    // its hash. An expired one needs no revoking.
    let Some(claims) = resolve_access_token(token, ctx, None)? else {
        if is_our_id_token(token, ctx) {
            return Err(OAuthError::new(
                ErrorCode::UnsupportedTokenType,
                "ID tokens cannot be revoked",
            ));
        }
        return Ok(false);
    };
    if claims.client_id != client.id {
        return refuse_foreign(client);
    }
    ctx.store.revoke_access_token(&claims.jti, claims.exp)?;
    Ok(true)
}

fn is_our_id_token(token: &str, ctx: &Context<'_>) -> bool {
    let expect = JwtExpectations {
        issuer: &ctx.config.issuer,
        typ: Some("JWT"),
        now: None,
        audience: None,
    };
    ctx.keys.verify::<serde_json::Value>(token, &expect).is_ok()
}
