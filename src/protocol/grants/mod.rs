//! The token endpoint's grants (RFC 6749 §4, §5): one module per grant behind one enum.

pub mod authorization_code;

use serde::Serialize;

use super::{Context, ErrorCode, OAuthError, Params};
use crate::store::Client;

#[derive(Debug)]
pub enum TokenRequest {
    AuthorizationCode(authorization_code::CodeRequest),
}

impl TokenRequest {
    pub fn parse(params: &Params) -> Result<Self, OAuthError> {
        match params.required("grant_type")? {
            "authorization_code" => {
                authorization_code::CodeRequest::parse(params).map(Self::AuthorizationCode)
            }
            _ => Err(OAuthError::new(
                ErrorCode::UnsupportedGrantType,
                "unsupported grant_type",
            )),
        }
    }

    pub fn grant_type(&self) -> &'static str {
        match self {
            Self::AuthorizationCode(_) => "authorization_code",
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
    pub scope: String,
}

pub fn exchange(
    request: TokenRequest,
    client: &Client,
    ctx: &Context<'_>,
) -> Result<TokenResponse, OAuthError> {
    if !client.grant_types.iter().any(|g| g == request.grant_type()) {
        return Err(OAuthError::new(
            ErrorCode::UnauthorizedClient,
            "client may not use this grant_type",
        ));
    }
    match request {
        TokenRequest::AuthorizationCode(r) => authorization_code::exchange(r, client, ctx),
    }
}
