//! Dynamic Client Registration (RFC 7591 §3) and the client configuration endpoint
//! (RFC 7592 §2: read, update, delete).

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};

use crate::config::RegistrationMode;
use crate::crypto::tokens::{constant_time_eq, token_hash};
use crate::http::bearer::bearer_token;
use crate::http::body::BodyType;
use crate::http::client_address::client_address_of;
use crate::http::error::{ApiError, BearerError};
use crate::http::state::{State, blocking};

/// The window of `registrations_per_address`.
const REGISTRATION_WINDOW: std::time::Duration = std::time::Duration::from_secs(3600);
/// RFC 7592 updates of one client from one address within `REGISTRATION_WINDOW`. An
/// update may fetch a sector identifier document; a client updates its registration
/// rarely. Counted per client and address, so that requests from elsewhere (without the
/// token, even) cannot use up a client's own budget.
const UPDATES_PER_CLIENT: i64 = 20;
use crate::protocol::features::Feature;
use crate::protocol::registration::{
    delete_registration, draft_from_json, read_registration, register_dynamic, update_registration,
};
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

/// RFC 7592 §2.2: the client's new metadata, validated as a registration; the response
/// carries a new registration access token (§3), so it is never cached.
pub async fn update(
    req: HttpRequest,
    path: web::Path<String>,
    body: web::Bytes,
    state: State,
) -> Result<HttpResponse, actix_web::Error> {
    // The token first: a request without the right one learns nothing about its body.
    let token = bearer_token(&req, &[])?;
    BodyType::Json.require(&req).map_err(ApiError)?;
    let json: serde_json::Value = serde_json::from_slice(&body).map_err(|_| {
        ApiError(OAuthError::new(
            ErrorCode::InvalidClientMetadata,
            "the body must be a JSON object",
        ))
    })?;
    let client_id = path.into_inner();
    let address = client_address_of(&req, &state.settings);
    let recent = state
        .sessions
        .count_event(
            "register-update",
            // The id hashed: a fixed-length key whatever the path carried.
            &format!(
                "{} {}",
                token_hash(&client_id),
                crate::http::client_address::limit_key(&address)
            ),
            REGISTRATION_WINDOW,
        )
        .await
        .map_err(|e| ApiError(e.into()))?;
    if recent > UPDATES_PER_CLIENT {
        return Err(ApiError(OAuthError::new(
            ErrorCode::RateLimited,
            "too many updates of this client; try again later",
        ))
        .into());
    }
    let body = blocking(&state, move |ctx| {
        update_registration(&client_id, &token, &json, &address, ctx)
    })
    .await
    .map_err(registration_error)?;
    Ok(HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .insert_header((header::PRAGMA, "no-cache"))
        .json(body))
}

/// RFC 7592 §2.3: the client and its grants removed; 204 and no body.
pub async fn delete(
    req: HttpRequest,
    path: web::Path<String>,
    state: State,
) -> Result<HttpResponse, BearerError> {
    let token = bearer_token(&req, &[])?;
    let client_id = path.into_inner();
    let address = client_address_of(&req, &state.settings);
    blocking(&state, move |ctx| {
        delete_registration(&client_id, &token, &address, ctx)
    })
    .await?;
    Ok(HttpResponse::NoContent()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .finish())
}

/// A refused token is a 401 with the RFC 6750 §3.1 challenge; bad metadata is the
/// RFC 7591 §3.2.2 error body.
fn registration_error(e: OAuthError) -> actix_web::Error {
    if e.code == ErrorCode::InvalidToken {
        BearerError::from(e).into()
    } else {
        ApiError(e).into()
    }
}
