//! Upstream logout (issue 24): for a provider with `end_session = true` (off by
//! default), RP-initiated logout here, once our session has ended, goes on to the
//! upstream's `end_session_endpoint` (OIDC RP-Initiated Logout §2) with the sign-in's ID
//! token as `id_token_hint`, and comes back to `GET /upstream/{id}/logged-out`, which
//! continues to the application's `post_logout_redirect_uri` or our signed-out page.
//!
//! The upstream ID token is kept for such providers only ("upstream tokens are not
//! stored unless a feature needs them"), and only when their discovery names an
//! `end_session_endpoint`: sealed under the key-encryption key, inside the SSO session
//! the sign-in made (`SsoSession::upstream_id_token`). So it exists only once a sign-in
//! succeeded (its second factor too), belongs to that session (not to the browser), and
//! goes whenever the session goes: expiry, replacement by another sign-in, sign-out.

use std::time::Duration;

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use serde::{Deserialize, Serialize};

use crate::crypto::tokens::{constant_time_eq, random_token, token_hash};
use crate::http::cookies::known_browser;
use crate::http::interaction::redirect;
use crate::http::state::State;
use crate::protocol::OAuthError;

pub use crate::http::paths::UPSTREAM_LOGGED_OUT;
/// How long the way back from the upstream's logout is kept.
const RETURN_TTL: Duration = Duration::from_secs(600);

/// Where the browser goes once the upstream's logout comes back, and which browser
/// (the hash of its cookie) may go there (review L1).
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Return {
    provider: String,
    target: Option<String>,
    browser: String,
}

fn return_key(state: &str) -> String {
    format!("end-session-return.{}", token_hash(state))
}

/// The key-encryption context of a kept ID token: bound to its provider.
fn seal_context(provider: &str) -> String {
    format!("upstream-id-token:{provider}")
}

/// After an upstream sign-in with a provider of `end_session = true`: its ID token,
/// sealed, for the session the sign-in makes (`None`: nothing to keep). A provider whose
/// discovery names no `end_session_endpoint` keeps nothing (a log line: review L9).
pub(super) async fn sealed_id_token(
    state: &State,
    provider: &str,
    id_token: &str,
) -> Result<Option<String>, OAuthError> {
    if state
        .upstreams
        .end_session_endpoint(provider)
        .await
        .is_none()
    {
        tracing::warn!(upstream = %provider, "end_session: the upstream names no end_session_endpoint; its ID token is not kept");
        return Ok(None);
    }
    let sealed = state
        .kek
        .encrypt(id_token.as_bytes(), &seal_context(provider))
        .map_err(OAuthError::server)?;
    Ok(Some(sealed))
}

/// The `end_session_endpoint` of the provider a session signed in through (`idp`), when
/// it has `end_session` and the session kept its ID token: the logout page's form may
/// lead there (its CSP). The metadata is fetched if this instance has none (review M1).
pub async fn form_target(state: &State, session: &crate::sessions::SsoSession) -> Option<String> {
    session.upstream_id_token.as_ref()?;
    let provider = state.upstreams.find(session.idp.as_deref()?)?;
    if !provider.end_session {
        return None;
    }
    state.upstreams.end_session_endpoint(&provider.id).await
}

/// Called by RP-initiated logout once our session has ended: the upstream's logout URL
/// when the session signed in through (`idp`) a provider with `end_session` and kept its
/// ID token (`sealed`), the way back to `target` kept for this browser; otherwise
/// `target` itself. An upstream that cannot be reached changes nothing of our logout (a
/// log line).
pub async fn after_sign_out(
    req: &HttpRequest,
    state: &State,
    idp: Option<&str>,
    sealed: Option<&str>,
    target: Option<String>,
) -> Option<String> {
    let (Some(provider), Some(sealed)) = (idp.and_then(|p| state.upstreams.find(p)), sealed) else {
        return target;
    };
    if !provider.end_session {
        return target;
    }
    let Some(browser) = known_browser(req, state) else {
        return target;
    };
    let Some(id_token) = state
        .kek
        .decrypt(sealed, &seal_context(&provider.id))
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
    else {
        return target;
    };
    let return_state = random_token(32);
    let way_back = Return {
        provider: provider.id.clone(),
        target: target.clone(),
        browser: token_hash(&browser),
    };
    if state
        .sessions
        .save_upstream_state(&return_key(&return_state), &way_back, RETURN_TTL)
        .await
        .is_err()
    {
        return target;
    }
    match state
        .upstreams
        .end_session_url(
            &provider.id,
            &id_token,
            &return_state,
            &state.settings.issuer,
        )
        .await
    {
        Ok(Some(url)) => Some(url),
        Ok(None) => {
            tracing::warn!(upstream = %provider.id, "end_session: the upstream names no end_session_endpoint");
            target
        }
        Err(e) => {
            tracing::warn!(upstream = %provider.id, error = %e, "end_session: the upstream could not be reached");
            target
        }
    }
}

#[derive(Deserialize)]
pub struct ReturnQuery {
    state: Option<String>,
}

/// `GET /upstream/{id}/logged-out`: back from the upstream's logout; on to the
/// application's `post_logout_redirect_uri` (checked when the logout began) or our
/// signed-out page. An unknown or spent `state` gets the signed-out page (our session
/// ended already).
///
/// The way back is this browser's only: in another browser (a `state` read from a log or
/// a shared URL) the signed-out page, and the record stays for its own browser.
pub async fn logged_out(
    req: HttpRequest,
    path: web::Path<String>,
    query: Result<web::Query<ReturnQuery>, actix_web::Error>,
    state: State,
) -> HttpResponse {
    let provider = path.into_inner();
    let base = &state.settings.issuer_path;
    let value = query.ok().and_then(|q| q.into_inner().state);
    let browser = known_browser(&req, &state).map(|b| token_hash(&b));
    let mut way_back: Option<Return> = None;
    if let (Some(s), Some(browser)) = (value.filter(|s| !s.is_empty()), browser) {
        let key = return_key(&s);
        let found: Option<Return> = state
            .sessions
            .load_upstream_state(&key)
            .await
            .ok()
            .flatten();
        if found.is_some_and(|r| constant_time_eq(r.browser.as_bytes(), browser.as_bytes())) {
            way_back = state
                .sessions
                .take_upstream_state(&key)
                .await
                .ok()
                .flatten();
        }
    }
    match way_back
        .filter(|r| r.provider == provider)
        .and_then(|r| r.target)
    {
        Some(target) => redirect(StatusCode::SEE_OTHER, &target),
        None => super::signed_out::signed_out_page(base, &[], None, None),
    }
}
