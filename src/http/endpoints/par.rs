//! The pushed authorization request endpoint (RFC 9126 §2): the client authenticates as
//! at the token endpoint and posts its authorization request; the answer is a one-time
//! `request_uri` for the browser. Errors are JSON (§2.3), never redirects.

use std::time::Duration;

use actix_web::http::{StatusCode, header};
use actix_web::{HttpRequest, HttpResponse, web};
use serde_json::json;

use super::client_request::client_request;
use crate::http::error::ApiError;
use crate::http::state::{State, blocking};
use crate::protocol::authorize::pushed::{PUSHED_REQUEST_TTL, PushedRequest, new_request_uri};
use crate::protocol::authorize::request_object::expand;
use crate::protocol::authorize::{AuthorizeError, resolve_redirect_uri, validate};
use crate::protocol::client_auth::authenticate;

pub async fn push(
    req: HttpRequest,
    body: web::Bytes,
    state: State,
) -> Result<HttpResponse, ApiError> {
    let (params, creds) = client_request(&req, &body)?;
    let endpoint = state
        .settings
        .endpoint(crate::protocol::features::PUSHED_AUTHORIZATION.path);
    let pushed = blocking(&state, move |ctx| {
        // RFC 9126 §2: the same client authentication as the token endpoint's (and its
        // assertions may name this endpoint or the issuer as audience).
        let client = authenticate(&creds, &endpoint, ctx)?;
        let mut pushed = PushedRequest::new(&client.id, &params, ctx.now)?;
        // §3: a pushed request may be a request object; it is verified now, and what it
        // says is what is stored.
        let stored = expand(
            crate::protocol::Params::new(pushed.params.clone()),
            &client,
            ctx,
        )?;
        pushed.params = stored.pairs().to_vec();
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
    Ok(HttpResponse::build(StatusCode::CREATED)
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(json!({ "request_uri": request_uri, "expires_in": PUSHED_REQUEST_TTL })))
}
