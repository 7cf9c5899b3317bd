//! Dynamic Client Registration (RFC 7591 §3) and reading a client back (RFC 7592 §2.1).

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};

use super::userinfo::bearer_token;
use crate::config::RegistrationMode;
use crate::crypto::tokens::{constant_time_eq, token_hash};
use crate::http::error::{ApiError, BearerError};
use crate::http::{State, blocking};
use crate::protocol::discovery::registration_enabled;
use crate::protocol::registration::{
    client_information, draft_from_json, register as register_client,
};
use crate::protocol::{ErrorCode, OAuthError};
use crate::store::StoreError;

pub async fn register(
    req: HttpRequest,
    body: web::Bytes,
    state: State,
) -> Result<HttpResponse, actix_web::Error> {
    if !registration_enabled(&state.settings) {
        return Ok(HttpResponse::NotFound().finish());
    }
    if state.settings.registration == RegistrationMode::Token {
        let presented = bearer_token(&req, &[])?;
        let expected = state
            .settings
            .registration_token
            .as_ref()
            .map(|t| t.expose().as_bytes())
            .unwrap_or(b"");
        if !constant_time_eq(presented.as_bytes(), expected) {
            return Err(BearerError::from(OAuthError::invalid_token(
                "invalid initial access token",
            ))
            .into());
        }
    }
    let json: serde_json::Value = serde_json::from_slice(&body).map_err(|_| {
        ApiError(OAuthError::new(
            ErrorCode::InvalidClientMetadata,
            "the body must be a JSON object",
        ))
    })?;
    let draft = draft_from_json(&json).map_err(ApiError)?;
    let state_for_uri = state.clone();
    let body = blocking(&state, move |ctx| {
        let registered = register_client(draft, ctx.now)?;
        match ctx.store.create_client(&registered.client) {
            Ok(()) => {}
            Err(StoreError::Conflict) => return Err(OAuthError::server("client id collision")),
            Err(e) => return Err(e.into()),
        }
        let uri = state_for_uri
            .settings
            .endpoint(&format!("/register/{}", registered.client.id));
        Ok(client_information(
            &registered.client,
            registered.client_secret.as_deref(),
            Some(&registered.registration_access_token),
            &uri,
        ))
    })
    .await
    .map_err(ApiError)?;
    Ok(HttpResponse::Created()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .insert_header((header::PRAGMA, "no-cache"))
        .json(body))
}

pub async fn read(
    req: HttpRequest,
    path: web::Path<String>,
    state: State,
) -> Result<HttpResponse, BearerError> {
    let token = bearer_token(&req, &[])?;
    let client_id = path.into_inner();
    let uri = state.settings.endpoint(&format!("/register/{client_id}"));
    let body = blocking(&state, move |ctx| {
        // An unknown client and a wrong token answer alike (RFC 7592 §2.1: 401).
        let denied = || OAuthError::invalid_token("invalid registration access token");
        let client = ctx.store.find_client(&client_id)?.ok_or_else(denied)?;
        let stored = client
            .registration_token_hash
            .as_deref()
            .ok_or_else(denied)?;
        if !constant_time_eq(token_hash(&token).as_bytes(), stored.as_bytes()) {
            return Err(denied());
        }
        // RFC 7592 §3: the response carries the registration access token.
        Ok(client_information(&client, None, Some(&token), &uri))
    })
    .await?;
    Ok(HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(body))
}
