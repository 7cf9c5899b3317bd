//! The token endpoint's grants (RFC 6749 §4, §5): one module per grant behind one enum.
//! Each grant decides what it issues and shapes its response; `tokens` only builds and
//! signs.

pub mod authorization_code;
pub mod client_credentials;
pub mod refresh_token;

use serde::Serialize;

use super::claims::all_claims;
use super::claims_request::{ClaimsRequest, add_requested};
use super::tokens::{
    AccessTokenRequest, IdTokenExtras, IdTokenOccasion, Subject, issue_access_token, issue_id_token,
};
use super::{Context, ErrorCode, OAuthError, Params};
use crate::domain::{GrantType, Scopes};
use crate::store::{Client, Grant};

#[derive(Debug)]
pub enum TokenRequest {
    AuthorizationCode(authorization_code::CodeRequest),
    RefreshToken(refresh_token::RefreshRequest),
    ClientCredentials(client_credentials::ClientCredentialsRequest),
}

impl TokenRequest {
    pub fn parse(params: &Params) -> Result<Self, OAuthError> {
        let unsupported =
            || OAuthError::new(ErrorCode::UnsupportedGrantType, "unsupported grant_type");
        match GrantType::parse(params.required("grant_type")?).ok_or_else(unsupported)? {
            GrantType::AuthorizationCode => {
                authorization_code::CodeRequest::parse(params).map(Self::AuthorizationCode)
            }
            GrantType::RefreshToken => {
                refresh_token::RefreshRequest::parse(params).map(Self::RefreshToken)
            }
            GrantType::ClientCredentials => {
                client_credentials::ClientCredentialsRequest::parse(params)
                    .map(Self::ClientCredentials)
            }
            // The authorization endpoint's grant: no token request carries it.
            GrantType::Implicit => Err(unsupported()),
        }
    }

    pub fn grant_type(&self) -> GrantType {
        match self {
            Self::AuthorizationCode(_) => GrantType::AuthorizationCode,
            Self::RefreshToken(_) => GrantType::RefreshToken,
            Self::ClientCredentials(_) => GrantType::ClientCredentials,
        }
    }
}

/// RFC 6749 §5.1.
#[derive(Debug, Serialize)]
pub struct TokenResponse {
    pub access_token: String,
    pub token_type: &'static str,
    pub expires_in: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id_token: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
    pub scope: String,
}

pub fn exchange(
    request: TokenRequest,
    client: &Client,
    ctx: &Context<'_>,
) -> Result<TokenResponse, OAuthError> {
    if !client.may_use_grant(request.grant_type()) {
        return Err(OAuthError::new(
            ErrorCode::UnauthorizedClient,
            "client may not use this grant_type",
        ));
    }
    match request {
        TokenRequest::AuthorizationCode(r) => authorization_code::exchange(r, client, ctx),
        TokenRequest::RefreshToken(r) => refresh_token::exchange(r, client, ctx),
        TokenRequest::ClientCredentials(r) => client_credentials::exchange(r, client, ctx),
    }
}

/// The optional `scope` of a token request (RFC 6749 §3.3): malformed is `invalid_scope`.
fn requested_scope(params: &Params) -> Result<Option<Scopes>, OAuthError> {
    params
        .single("scope")?
        .map(|s| {
            Scopes::parse(s)
                .filter(|s| !s.is_empty())
                .ok_or_else(|| OAuthError::new(ErrorCode::InvalidScope, "malformed scope"))
        })
        .transpose()
}

/// The response of a grant that speaks for a user (code, refresh): an access token for
/// `scope` (the grant's or a narrower one), an ID token when `openid` is among it, and
/// the refresh token the grant decided on.
fn user_token_response(
    grant: &Grant,
    client: &Client,
    scope: &Scopes,
    occasion: IdTokenOccasion,
    refresh_token: Option<String>,
    ctx: &Context<'_>,
) -> Result<TokenResponse, OAuthError> {
    let scope_text = scope.to_string();
    let access = issue_access_token(
        &AccessTokenRequest {
            subject: &Subject::User {
                user_id: grant.user_id.clone(),
                grant_id: grant.id.clone(),
            },
            client,
            scope: &scope_text,
            audience: &[],
            auth_time: Some(grant.auth_time),
        },
        ctx,
    )?;
    let id_token = scope
        .contains("openid")
        .then(|| {
            // OIDC Core §5.5: claims the request asked the ID token for (a user lookup
            // only then: the common path needs none).
            let claims = match ClaimsRequest::from_stored(grant.claims.as_deref()) {
                Some(requested) if !requested.id_token.is_empty() => {
                    ctx.store.find_user(&grant.user_id)?.map(|user| {
                        let mut claims = serde_json::Map::new();
                        add_requested(&mut claims, &all_claims(&user), &requested.id_token);
                        claims
                    })
                }
                _ => None,
            };
            let extras = IdTokenExtras {
                access_token: Some(&access.token),
                claims,
                ..IdTokenExtras::default()
            };
            issue_id_token(grant, client, extras, occasion, ctx)
        })
        .transpose()?;
    Ok(TokenResponse {
        access_token: access.token,
        token_type: "Bearer",
        expires_in: ctx.settings.access_token_ttl,
        id_token,
        refresh_token,
        scope: scope_text,
    })
}
