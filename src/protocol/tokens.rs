//! ID tokens (OIDC Core §2) and JWT access tokens (RFC 9068).

use serde::{Deserialize, Serialize};
use serde_json::json;

use super::grants::TokenResponse;
use super::{Context, OAuthError};
use crate::crypto::keys::JwtExpectations;
use crate::crypto::tokens::{left_half_sha256, random_token};
use crate::crypto::{KeyAlgorithm, KeySet};
use crate::domain::Scopes;
use crate::store::{Client, Grant};

/// RFC 9068 §2.1: the `typ` of our access tokens.
pub const ACCESS_TOKEN_TYP: &str = "at+jwt";

/// What tokens are issued for.
pub struct TokenSubject<'a> {
    pub grant: &'a Grant,
    pub client: &'a Client,
    /// The user's `sub`.
    pub user_id: &'a str,
    pub nonce: Option<&'a str>,
    pub auth_time: i64,
}

/// RFC 9068 §2.2 claims, plus `gid`: the grant the token belongs to, checked at use so
/// that revoking a grant revokes its tokens.
#[derive(Debug, Serialize, Deserialize)]
pub struct AccessTokenClaims {
    pub iss: String,
    pub sub: String,
    pub aud: String,
    pub client_id: String,
    pub scope: String,
    pub jti: String,
    pub exp: i64,
    pub iat: i64,
    pub auth_time: i64,
    pub gid: String,
}

fn signing_key(
    keys: &KeySet,
    alg: KeyAlgorithm,
    now: i64,
) -> Result<&crate::crypto::SigningKey, OAuthError> {
    keys.signing_key(alg, now)
        .ok_or_else(|| OAuthError::server(format!("no {} signing key", alg.as_str())))
}

/// The algorithm a client asked for its ID tokens (OIDC Registration §2), RS256 otherwise.
pub fn id_token_alg(client: &Client) -> KeyAlgorithm {
    client
        .metadata
        .get("id_token_signed_response_alg")
        .and_then(|v| v.as_str())
        .and_then(KeyAlgorithm::parse)
        .unwrap_or(KeyAlgorithm::Rs256)
}

pub fn issue(subject: &TokenSubject<'_>, ctx: &Context<'_>) -> Result<TokenResponse, OAuthError> {
    let settings = ctx.settings;
    let claims = AccessTokenClaims {
        iss: settings.issuer.clone(),
        sub: subject.user_id.to_owned(),
        aud: settings.issuer.clone(),
        client_id: subject.client.id.clone(),
        scope: subject.grant.scope.clone(),
        jti: random_token(16),
        exp: ctx.now + settings.access_token_ttl,
        iat: ctx.now,
        auth_time: subject.auth_time,
        gid: subject.grant.id.clone(),
    };
    let payload = serde_json::to_value(&claims).map_err(OAuthError::server)?;
    let access_token = signing_key(ctx.keys, KeyAlgorithm::Rs256, ctx.now)?
        .sign_jwt(ACCESS_TOKEN_TYP, &payload)
        .map_err(OAuthError::server)?;

    let scopes = Scopes::parse(&subject.grant.scope).unwrap_or_default();
    let id_token = if scopes.contains("openid") {
        let key = signing_key(ctx.keys, id_token_alg(subject.client), ctx.now)?;
        let mut id = json!({
            "iss": settings.issuer,
            "sub": subject.user_id,
            "aud": subject.client.id,
            "exp": ctx.now + settings.id_token_ttl,
            "iat": ctx.now,
            "auth_time": subject.auth_time,
            // OIDC Core §3.1.3.6: left half of the hash of the access token, for the
            // 256-bit algorithms we sign with.
            "at_hash": left_half_sha256(&access_token),
        });
        if let Some(nonce) = subject.nonce {
            id["nonce"] = json!(nonce);
        }
        if let Some(sid) = &subject.grant.session_id {
            id["sid"] = json!(sid);
        }
        Some(key.sign_jwt("JWT", &id).map_err(OAuthError::server)?)
    } else {
        None
    };
    Ok(TokenResponse {
        access_token,
        token_type: "Bearer",
        expires_in: settings.access_token_ttl,
        id_token,
        scope: subject.grant.scope.clone(),
    })
}

/// Verifies an access token we issued and that its grant is still live.
pub fn verify_access_token(
    token: &str,
    ctx: &Context<'_>,
) -> Result<AccessTokenClaims, OAuthError> {
    let expect = JwtExpectations {
        issuer: &ctx.settings.issuer,
        typ: Some(ACCESS_TOKEN_TYP),
        check_expiry: true,
    };
    let claims: AccessTokenClaims = ctx
        .keys
        .verify(token, &expect)
        .map_err(|_| OAuthError::invalid_token("the access token is invalid or has expired"))?;
    let live = ctx
        .store
        .find_grant(&claims.gid)?
        .is_some_and(|g| g.revoked_at.is_none());
    if !live {
        return Err(OAuthError::invalid_token(
            "the access token has been revoked",
        ));
    }
    Ok(claims)
}
