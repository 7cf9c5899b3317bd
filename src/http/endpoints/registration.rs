//! Dynamic Client Registration (RFC 7591 §3) and reading a client back (RFC 7592 §2.1).

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};

use super::userinfo::bearer_token;
use crate::config::RegistrationMode;
use crate::crypto::tokens::constant_time_eq;
use crate::http::error::{ApiError, BearerError};
use crate::http::{State, blocking};
use crate::protocol::discovery::registration_enabled;
use crate::protocol::registration::{draft_from_json, read_registration, register_dynamic};
use crate::protocol::{ErrorCode, OAuthError};

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
    let body = blocking(&state, move |ctx| register_dynamic(draft, ctx))
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
    let body = blocking(&state, move |ctx| {
        read_registration(&client_id, &token, ctx)
    })
    .await?;
    Ok(HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(body))
}
