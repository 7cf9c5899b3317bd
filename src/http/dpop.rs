//! DPoP (RFC 9449) on the wire: the `DPoP` request header and authorization scheme, the
//! proof's `jti` recorded in the shared session store, and the `DPoP-Nonce` header. The
//! rules are `protocol::dpop`'s.

use std::time::Duration;

use actix_web::HttpRequest;
use actix_web::http::header::{self, HeaderValue};

use crate::http::bearer::bearer_token;
use crate::http::error::BearerError;
use crate::http::state::State;
use crate::protocol::OAuthError;
use crate::protocol::dpop::{self, Proof, ProofHeader, ProofTarget};

pub use crate::http::dpop_headers::{DPOP, DPOP_NONCE, EXPOSED_HEADERS};

/// The URL of this request as the issuer names it: what its proof's `htu` must be.
fn request_url(req: &HttpRequest, state: &State) -> String {
    let path = req.path();
    let below = path
        .strip_prefix(state.settings.issuer_path.as_str())
        .unwrap_or(path);
    state.settings.endpoint(below)
}

/// The request's `DPoP` header (§4.3 step 1: at most one, size-capped), unparsed.
pub fn proof_header(req: &HttpRequest) -> Result<Option<ProofHeader>, OAuthError> {
    let values: Vec<&[u8]> = req.headers().get_all(DPOP).map(|v| v.as_bytes()).collect();
    ProofHeader::from_values(&values)
}

/// `proof` verified for a request to `target`, then its `jti` recorded on every instance
/// in one atomic step (§11.1): the only way to a `Proof`.
async fn verified_and_recorded(
    proof: &ProofHeader,
    target: &ProofTarget<'_>,
    state: &State,
) -> Result<Proof, OAuthError> {
    // The in-memory replay store's TTL runs on the wall clock while `iat` is checked
    // against `state.now()`: both are the wall clock outside tests (so jti expiry is not
    // exercised under a test's manual clock).
    let verified = dpop::verify_proof(proof, target, &state.kek, state.now())?;
    // Kept as long as the proof could pass: its `iat` may be a window either side of now.
    let window = Duration::from_secs(2 * dpop::PROOF_WINDOW.unsigned_abs());
    let first_use = state
        .sessions
        .first_dpop_proof(verified.replay_key(), window)
        .await?;
    verified.recorded(first_use)
}

/// The proof of a request to the authorization server (the token endpoint), verified
/// and its `jti` recorded. Called once the client is authenticated (§11.1: so that no
/// one else can use up, or make us verify, a client's proofs).
pub async fn authorization_server_proof(
    req: &HttpRequest,
    state: &State,
    proof: Option<&ProofHeader>,
) -> Result<Option<Proof>, OAuthError> {
    let Some(proof) = proof else {
        return Ok(None);
    };
    let url = request_url(req, state);
    let target =
        ProofTarget::authorization_server(req.method().as_str(), &url, state.settings.dpop_nonce);
    verified_and_recorded(proof, &target, state).await.map(Some)
}

/// The nonce to send with a response (§8.1, §9): when the server requires nonces, or
/// when `error` asks for one (a client that requires them).
pub fn nonce_for(state: &State, error: Option<&OAuthError>) -> Option<String> {
    let asked = error.is_some_and(|e| e.code == crate::protocol::ErrorCode::UseDpopNonce);
    (state.settings.dpop_nonce || asked).then(|| dpop::current_nonce(&state.kek, state.now()))
}

/// The nonce to send with a successful answer to a request that carried a proof (§8.2:
/// the next nonce, given ahead so the client needs no `use_dpop_nonce` round trip): when
/// the server or the request's client requires nonces.
pub fn nonce_on_success(state: &State, with_proof: bool, client_requires: bool) -> Option<String> {
    (with_proof && (state.settings.dpop_nonce || client_requires))
        .then(|| dpop::current_nonce(&state.kek, state.now()))
}

/// Adds the `DPoP-Nonce` header to `response`.
pub fn with_nonce(
    mut response: actix_web::HttpResponse,
    nonce: Option<String>,
) -> actix_web::HttpResponse {
    if let Some(value) = nonce.and_then(|n| HeaderValue::from_str(&n).ok()) {
        response.headers_mut().insert(DPOP_NONCE, value);
    }
    response
}

/// An access token at a resource (userinfo, the admin API): as `Authorization: DPoP`
/// with its proof (§7.1), or as a Bearer token (RFC 6750).
pub struct ResourceToken {
    pub token: String,
    pub proof: Option<Proof>,
}

impl ResourceToken {
    pub fn presented(&self) -> dpop::Presented<'_> {
        match &self.proof {
            Some(proof) => dpop::Presented::Dpop(proof),
            None => dpop::Presented::Bearer,
        }
    }

    /// A refusal of this token, answered with the challenge of the scheme it came with
    /// (or `DPoP` for a DPoP-bound token sent as Bearer, §7.1).
    pub fn refusal(&self, state: &State, error: OAuthError) -> BearerError {
        if self.proof.is_some() || dpop::wants_dpop_challenge(&error) {
            let nonce = nonce_for(state, Some(&error));
            BearerError::Dpop { error, nonce }
        } else {
            BearerError::Rejected(error)
        }
    }
}

/// The access token of a resource request; `body`: a form body that may carry it (RFC
/// 6750 §2.2), empty where there is none.
pub async fn resource_token(
    req: &HttpRequest,
    body: &[u8],
    state: &State,
) -> Result<ResourceToken, BearerError> {
    let dpop_token = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case(dpop::SCHEME))
        .map(|(_, token)| token.trim().to_owned());
    let Some(token) = dpop_token else {
        // A proof without the DPoP scheme proves nothing here: the token is a Bearer one.
        return Ok(ResourceToken {
            token: bearer_token(req, body)?,
            proof: None,
        });
    };
    let refused = |error: OAuthError| BearerError::Dpop {
        nonce: nonce_for(state, Some(&error)),
        error,
    };
    if token.is_empty() {
        return Err(refused(OAuthError::invalid_request(
            "the DPoP scheme needs an access token",
        )));
    }
    let proof = proof_header(req).map_err(refused)?.ok_or_else(|| {
        refused(OAuthError::new(
            crate::protocol::ErrorCode::InvalidDpopProof,
            "the DPoP scheme needs a DPoP proof",
        ))
    })?;
    let url = request_url(req, state);
    let target = ProofTarget::resource(
        req.method().as_str(),
        &url,
        &token,
        state.settings.dpop_nonce,
    );
    match verified_and_recorded(&proof, &target, state).await {
        Ok(proof) => Ok(ResourceToken {
            token,
            proof: Some(proof),
        }),
        Err(error) => Err(refused(error)),
    }
}
