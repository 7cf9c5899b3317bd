//! Dynamic Client Registration (RFC 7591 §3) and reading a client back (RFC 7592 §2.1).

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};

use super::userinfo::bearer_token;
use crate::config::RegistrationMode;
use crate::crypto::tokens::{constant_time_eq, token_hash};
use crate::http::body::BodyType;
use crate::http::client_address::client_address_of;
use crate::http::error::{ApiError, BearerError};
use crate::http::state::{State, blocking};

/// The window of `registrations_per_address`.
const REGISTRATION_WINDOW: std::time::Duration = std::time::Duration::from_secs(3600);
use crate::protocol::features::Feature;
use crate::protocol::registration::{draft_from_json, read_registration, register_dynamic};
use crate::protocol::{ErrorCode, OAuthError};

pub async fn register(
    req: HttpRequest,
    body: web::Bytes,
    state: State,
) -> Result<HttpResponse, actix_web::Error> {
    if !Feature::Registration.enabled(&state.protocol_config) {
        return Ok(HttpResponse::NotFound().finish());
    }
    if state.settings.registration == RegistrationMode::Token {
        let presented = bearer_token(&req, &[])?;
        let expected = state
            .settings
            .registration_token
            .as_ref()
            .map(|t| token_hash(t.expose()))
            .unwrap_or_default();
        // Compared by hash: equal lengths, so the comparison is constant-time whatever
        // was presented.
        if !constant_time_eq(token_hash(&presented).as_bytes(), expected.as_bytes()) {
            return Err(BearerError::from(OAuthError::invalid_token(
                "invalid initial access token",
            ))
            .into());
        }
    }
    // RFC 7591 §3.1: the metadata is sent as application/json. Checked before the
    // request counts against the address's registrations.
    BodyType::Json.require(&req).map_err(ApiError)?;
    // Open registration is rate-limited per client address. Registration with the
    // initial access token is the operator's own provisioning, and is not.
    if state.settings.registration == RegistrationMode::Open {
        let address = client_address_of(&req, &state.settings);
        let recent = state
            .sessions
            .count_event(
                "register",
                &crate::http::client_address::limit_key(&address),
                REGISTRATION_WINDOW,
            )
            .await
            .map_err(|e| ApiError(e.into()))?;
        if recent > state.settings.registrations_per_address {
            return Err(ApiError(OAuthError::new(
                ErrorCode::RateLimited,
                "too many registrations from this address; try again later",
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
    if let Some(id) = body["client_id"].as_str() {
        crate::audit::client_registered(id, "dynamic");
    }
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
