//! The pushed authorization request endpoint (RFC 9126 §2): the client authenticates as
//! at the token endpoint and posts its authorization request; the answer is a one-time
//! `request_uri` for the browser. Errors are JSON (§2.3), never redirects. A DPoP proof
//! sent with the push binds the code to its key (RFC 9449 §10.1).

use std::time::Duration;

use actix_web::http::{StatusCode, header};
use actix_web::{HttpRequest, HttpResponse, ResponseError, web};
use serde_json::json;

use super::client_request::client_request;
use crate::http::dpop;
use crate::http::error::ApiError;
use crate::http::state::{State, blocking};
use crate::protocol::Params;
use crate::protocol::authorize::pushed::{PUSHED_REQUEST_TTL, PushedRequest, new_request_uri};
use crate::protocol::authorize::request_object::expand;
use crate::protocol::authorize::{AuthorizeError, resolve_redirect_uri, validate};
use crate::protocol::client_auth::authenticate;

pub async fn push(req: HttpRequest, body: web::Bytes, state: State) -> HttpResponse {
    let with_proof = req.headers().contains_key(dpop::DPOP);
    // RFC 9449 §8: as at the token endpoint, the nonce goes with every answer to a proof
    // when nonces are in use, and with the error that asks for one.
    match pushed(&req, &body, &state).await {
        Ok((response, client_requires)) => {
            let nonce = dpop::nonce_on_success(&state, with_proof, client_requires);
            dpop::with_nonce(response, nonce)
        }
        Err(error) => {
            let nonce = dpop::nonce_for(&state, Some(&error.0));
            dpop::with_nonce(error.error_response(), nonce)
        }
    }
}

/// The answer to a push, and whether the client requires DPoP nonces.
async fn pushed(
    req: &HttpRequest,
    body: &[u8],
    state: &State,
) -> Result<(HttpResponse, bool), ApiError> {
    // RFC 9449 §4.3 step 1: one header, of bounded size, before anything is parsed.
    let proof = dpop::proof_header(req)?;
    let (params, creds) = client_request(req, body)?;
    let endpoint = state
        .settings
        .endpoint(crate::protocol::features::PUSHED_AUTHORIZATION.path);
    // RFC 9126 §2: the same client authentication as the token endpoint's (and its
    // assertions may name this endpoint or the issuer as audience).
    let client = blocking(state, move |ctx| authenticate(&creds, &endpoint, ctx)).await?;
    // RFC 9449 §10.1: a proof here "MUST" be checked as §4.3 says, as at the token
    // endpoint: once the client is authenticated (§11.1), `htu` this endpoint.
    let proof = dpop::authorization_server_proof(req, state, proof.as_ref()).await?;
    let nonce_required = client.metadata.require_dpop_nonce;
    let pushed = blocking(state, move |ctx| {
        let mut pushed = PushedRequest::new(&client.id, &params, ctx.now)?;
        // §3: a pushed request may be a request object; it is verified now, and what it
        // says is what is stored.
        let expanded = expand(Params::new(pushed.params.clone()), &client, ctx)?;
        // RFC 9449 §10.1: the proof's key binds the code as `dpop_jkt` would.
        let jkt = crate::protocol::dpop::pushed_request_jkt(
            expanded.single("dpop_jkt")?,
            proof.as_ref(),
            nonce_required,
        )?;
        pushed.params = expanded
            .pairs()
            .iter()
            .filter(|(name, _)| name != "dpop_jkt")
            .cloned()
            .chain(jkt.map(|jkt| ("dpop_jkt".to_owned(), jkt)))
            .collect();
        let stored = Params::new(pushed.params.clone());
        // §2.1: the request is validated now, as the authorization endpoint would; what it
        // would redirect is answered here as JSON.
        let redirect = resolve_redirect_uri(&stored, &client)?;
        match validate(&stored, &client, redirect, true, ctx) {
            Ok(_) => Ok(pushed),
            Err(AuthorizeError::Page(error) | AuthorizeError::Redirect { error, .. }) => Err(error),
        }
    })
    .await?;
    let (request_uri, handle) = new_request_uri();
    state
        .sessions
        .save_pushed(
            &handle,
            &pushed,
            Duration::from_secs(PUSHED_REQUEST_TTL as u64),
        )
        .await
        .map_err(crate::protocol::OAuthError::from)?;
    // §2.2: 201 Created with the request_uri and its lifetime.
    let created = HttpResponse::build(StatusCode::CREATED)
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(json!({ "request_uri": request_uri, "expires_in": PUSHED_REQUEST_TTL }));
    Ok((created, nonce_required))
}
