//! The token endpoint (RFC 6749 §3.2): client authentication, then the grant.

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, ResponseError, web};

use super::client_request::client_request;
use crate::domain::GrantType;
use crate::http::client_address::client_address_of;
use crate::http::dpop;
use crate::http::error::ApiError;
use crate::http::state::{State, blocking};
use crate::protocol::grants::{TokenRequest, exchange};

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
    // RFC 9449 §4.3 step 1: one header, of bounded size, before anything is parsed.
    let proof = dpop::proof_header(req)?;
    let (params, creds) = client_request(req, body)?;
    let endpoint = state
        .settings
        .endpoint(crate::protocol::features::TOKEN.path);
    let address = client_address_of(req, &state.settings);
    let device_poll =
        matches!(params.single("grant_type"), Ok(Some(g)) if g == GrantType::DeviceCode.as_str());
    let issued = if proof.is_none() && !device_poll {
        // One hop to the blocking pool for the whole request: without a proof nothing
        // asynchronous stands between client authentication and the grant, and each hop
        // is two thread switches on the hottest path.
        blocking(state, move |ctx| {
            let client = crate::protocol::client_auth::authenticate(&creds, &endpoint, ctx)?;
            grant(&params, address, &client, None, ctx)
        })
        .await?
    } else {
        let client = blocking(state, move |ctx| {
            crate::protocol::client_auth::authenticate(&creds, &endpoint, ctx)
        })
        .await?;
        // RFC 9449 §11.1: the proof is verified and its `jti` recorded only for an
        // authenticated client (no one else can use up its proofs), before any token is
        // issued.
        let proof = dpop::authorization_server_proof(req, state, proof.as_ref()).await?;
        // RFC 8628 §3.4: a device's poll reads the session store before the grant. (A
        // malformed `grant_type` is not one, and the grant's parsing refuses it.)
        if device_poll {
            let response = super::device_authorization::poll(params, client, proof, state).await?;
            return Ok((response, false));
        }
        blocking(state, move |ctx| {
            grant(&params, address, &client, proof.as_ref(), ctx)
        })
        .await?
    };
    let Issued {
        grant_type,
        client_id,
        nonce_required,
        response,
    } = issued;
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

/// What a grant gave, for the response and the logs.
struct Issued {
    grant_type: &'static str,
    client_id: String,
    nonce_required: bool,
    response: crate::protocol::grants::TokenResponse,
}

/// The grant the request asks for, for the authenticated `client`.
fn grant(
    params: &crate::protocol::Params,
    address: String,
    client: &crate::store::Client,
    proof: Option<&crate::protocol::dpop::Proof>,
    ctx: &crate::protocol::Context<'_>,
) -> Result<Issued, crate::protocol::OAuthError> {
    let request = TokenRequest::parse(params)?.with_address(address);
    Ok(Issued {
        grant_type: request.grant_type().as_str(),
        client_id: client.id.clone(),
        nonce_required: client.metadata.require_dpop_nonce,
        response: exchange(request, client, proof, ctx)?,
    })
}
