//! Token revocation (RFC 7009): refresh tokens end their grant (and so every access token
//! issued from it); access tokens are denylisted by `jti` until they would expire.

use super::tokens::decode_access_token;
use super::{Context, ErrorCode, OAuthError, Params};
use crate::crypto::tokens::token_hash;
use crate::store::Client;

/// RFC 7009 §2.1 `token_type_hint`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TokenTypeHint {
    AccessToken,
    RefreshToken,
}

impl TokenTypeHint {
    /// A hint naming a type we do not have is `unsupported_token_type` (RFC 7009 §2.2.1).
    pub fn parse(params: &Params) -> Result<Option<Self>, OAuthError> {
        match params.single("token_type_hint")? {
            None => Ok(None),
            Some("access_token") => Ok(Some(Self::AccessToken)),
            Some("refresh_token") => Ok(Some(Self::RefreshToken)),
            Some(_) => Err(OAuthError::new(
                ErrorCode::UnsupportedTokenType,
                "token_type_hint must be access_token or refresh_token",
            )),
        }
    }
}

/// Revokes `token` if it is one of ours and was issued to `client`. Anything else
/// (unknown, expired, another client's) changes nothing and still succeeds: RFC 7009
/// §2.2 answers 200 "if the client submitted an invalid token", and telling a client
/// whether another client's token exists would leak it.
pub fn revoke(
    token: &str,
    hint: Option<TokenTypeHint>,
    client: &Client,
    ctx: &Context<'_>,
) -> Result<(), OAuthError> {
    // §2.1: the hint only says where to look first.
    let refresh_first = hint != Some(TokenTypeHint::AccessToken);
    if refresh_first && revoke_refresh_token(token, client, ctx)? {
        return Ok(());
    }
    if revoke_access_token(token, client, ctx)? {
        return Ok(());
    }
    if !refresh_first {
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
        Some(_) => Ok(true),
        None => Ok(false),
    }
}

fn revoke_access_token(
    token: &str,
    client: &Client,
    ctx: &Context<'_>,
) -> Result<bool, OAuthError> {
    // Our access tokens are JWTs: no lookup unless the signature is ours. An expired one
    // needs no revoking.
    let Some(claims) = decode_access_token(token, ctx, None) else {
        return Ok(false);
    };
    if claims.client_id == client.id {
        ctx.store.revoke_access_token(&claims.jti, claims.exp)?;
    }
    Ok(true)
}
