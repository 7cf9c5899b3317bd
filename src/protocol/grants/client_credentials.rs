//! The client credentials grant (RFC 6749 §4.4): a confidential client's own access
//! token, with audiences from RFC 8707 resource indicators.

use super::{TokenResponse, requested_scope};
use crate::domain::Scopes;
use crate::protocol::resource_indicators::{registered_for, requested};
use crate::protocol::tokens::{AccessTokenRequest, Subject, issue_access_token};
use crate::protocol::{Context, ErrorCode, OAuthError, Params, SUPPORTED_SCOPES};
use crate::store::Client;

#[derive(Debug)]
pub struct ClientCredentialsRequest {
    scope: Option<Scopes>,
    resources: Vec<String>,
}

impl ClientCredentialsRequest {
    pub fn parse(params: &Params) -> Result<Self, OAuthError> {
        Ok(Self {
            scope: requested_scope(params)?,
            resources: requested(params)?,
        })
    }
}

/// The scopes a client may ask for its own tokens: those it was registered with, except
/// the ones about a user (`openid`, `profile`, ...), which mean nothing without one.
fn allowed_scopes(client: &Client) -> Scopes {
    let mut scopes = client.scope.clone().unwrap_or_default();
    scopes.retain(|s| !SUPPORTED_SCOPES.contains(&s));
    scopes
}

pub fn exchange(
    request: ClientCredentialsRequest,
    client: &Client,
    ctx: &Context<'_>,
) -> Result<TokenResponse, OAuthError> {
    // RFC 6749 §4.4: "The client credentials grant type MUST only be used by confidential
    // clients."
    if client.is_public() {
        return Err(OAuthError::new(
            ErrorCode::UnauthorizedClient,
            "client_credentials is only for confidential clients",
        ));
    }
    let allowed = allowed_scopes(client);
    // §3.3: an omitted scope means the registered default, here everything allowed.
    let scope = match request.scope {
        Some(s) if !s.is_subset(&allowed) => {
            return Err(OAuthError::new(
                ErrorCode::InvalidScope,
                "the client may not request this scope",
            ));
        }
        Some(s) => s,
        None => allowed,
    };
    registered_for(client, &request.resources)?;
    let scope = scope.to_string();
    let access = issue_access_token(
        &AccessTokenRequest {
            subject: &Subject::Client {
                client_id: client.id.clone(),
            },
            client,
            scope: &scope,
            audience: &request.resources,
            auth_time: None,
            acr: None,
            amr: None,
            groups: None,
        },
        ctx,
    )?;
    Ok(TokenResponse {
        access_token: access.token,
        token_type: "Bearer",
        expires_in: ctx.config.access_token_ttl.as_secs(),
        id_token: None,
        refresh_token: None,
        scope,
        issued_token_type: None,
    })
}
