//! The token endpoint (RFC 6749 §3.2): client authentication, then the grant.

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, ResponseError, web};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use crate::domain::{GrantType, Secret};
use crate::http::body::form_params;
use crate::http::client_address::client_address_of;
use crate::http::dpop;
use crate::http::error::ApiError;
use crate::http::state::{State, blocking};
use crate::protocol::client_auth::PresentedCredentials;
use crate::protocol::grants::{TokenRequest, exchange};
use crate::protocol::{OAuthError, Params};

/// The form body and the client credentials of a client-authenticated back-channel
/// request (token, revocation, introspection).
pub fn client_request(
    req: &HttpRequest,
    body: &[u8],
) -> Result<(Params, PresentedCredentials), OAuthError> {
    let params = form_params(req, body)?;
    let creds = PresentedCredentials::from_request(basic_credentials(req)?, &params)?;
    Ok((params, creds))
}

pub async fn token(req: HttpRequest, body: web::Bytes, state: State) -> HttpResponse {
    let with_proof = req.headers().contains_key(dpop::DPOP);
    let outcome = issue(&req, &body, &state).await;
    // RFC 9449 §8: the nonce goes with every answer to a proof when nonces are in use
    // (the server's or the client's), and with the error that asks for one.
    let (response, nonce) = match outcome {
        Ok((response, client_requires)) => (
            response,
            dpop::nonce_on_success(&state, with_proof, client_requires),
        ),
        Err(error) => {
            let nonce = dpop::nonce_for(&state, Some(&error.0));
            (error.error_response(), nonce)
        }
    };
    dpop::with_nonce(response, nonce)
}

/// The token response, and whether the client requires DPoP nonces.
async fn issue(
    req: &HttpRequest,
    body: &[u8],
    state: &State,
) -> Result<(HttpResponse, bool), ApiError> {
    let (params, creds) = client_request(req, body)?;
    let endpoint = state
        .settings
        .endpoint(crate::protocol::features::TOKEN.path);
    let address = client_address_of(req, &state.settings);
    // RFC 9449 §5: verified (its `jti` recorded) before the client is even looked at.
    let proof = dpop::proof_of(req, state, None).await?;
    // RFC 8628 §3.4: a device's poll reads the session store before the grant.
    if params.single("grant_type")? == Some(GrantType::DeviceCode.as_str()) {
        let response = super::device_authorization::poll(params, creds, proof, state).await?;
        return Ok((response, false));
    }
    let (grant_type, client_id, nonce_required, response) = blocking(state, move |ctx| {
        let client = crate::protocol::client_auth::authenticate(&creds, &endpoint, ctx)?;
        let request = TokenRequest::parse(&params)?.with_address(address);
        let grant_type = request.grant_type().as_str();
        Ok((
            grant_type,
            client.id.clone(),
            client.metadata.require_dpop_nonce,
            exchange(request, &client, proof.as_ref(), ctx)?,
        ))
    })
    .await?;
    state.metrics.token_issued(grant_type);
    crate::audit::tokens_issued(grant_type, &client_id);
    // RFC 6749 §5.1: responses carrying tokens must not be cached.
    let ok = HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .insert_header((header::PRAGMA, "no-cache"))
        .insert_header((header::ACCESS_CONTROL_ALLOW_ORIGIN, "*"))
        .insert_header((header::ACCESS_CONTROL_EXPOSE_HEADERS, dpop::EXPOSED_HEADERS))
        .json(response);
    Ok((ok, nonce_required))
}

/// `Authorization: Basic` per RFC 6749 §2.3.1: id and secret are form-urlencoded before
/// being joined with ':' and base64-encoded.
fn basic_credentials(req: &HttpRequest) -> Result<Option<(String, Secret<String>)>, OAuthError> {
    let Some(value) = req.headers().get(header::AUTHORIZATION) else {
        return Ok(None);
    };
    let value = value.to_str().map_err(|_| malformed_basic())?;
    parse_basic(value).map(Some)
}

fn malformed_basic() -> OAuthError {
    OAuthError::invalid_client("malformed Basic credentials")
}

/// An `Authorization` header value as `Basic` client credentials (RFC 6749 §2.3.1);
/// anything else is `invalid_client`.
pub fn parse_basic(value: &str) -> Result<(String, Secret<String>), OAuthError> {
    let malformed = malformed_basic;
    let Some((scheme, encoded)) = value.split_once(' ') else {
        return Err(malformed());
    };
    if !scheme.eq_ignore_ascii_case("basic") {
        return Err(malformed());
    }
    let decoded = STANDARD.decode(encoded.trim()).map_err(|_| malformed())?;
    let text = String::from_utf8(decoded).map_err(|_| malformed())?;
    let (id, secret) = text.split_once(':').ok_or_else(malformed)?;
    let unescape = |s: &str| -> Result<String, OAuthError> {
        url::form_urlencoded::parse(format!("x={s}").as_bytes())
            .next()
            .map(|(_, v)| v.into_owned())
            .ok_or_else(malformed)
    };
    Ok((unescape(id)?, Secret::new(unescape(secret)?)))
}
