//! `POST /upstream/{id}/callback`: the authorization response of a `form_post` provider
//! (OAuth 2.0 Form Post Response Mode), a cross-site POST from the upstream's page.
//!
//! The response is kept server-side with its sign-in's state, and the browser is sent on
//! to `GET /upstream/{id}/callback?state=...`, which checks everything as for a query
//! response (its top-level GET carries our `SameSite=Lax` cookies: the browser's id, the
//! interaction's binding). The code never goes in a URL: not in ours, not in any log of
//! requests. The one-time cookie of such a provider is `SameSite=None` (with `Secure`),
//! so it comes with the POST, which is refused if it does not match.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};

use super::upstream_start::{
    CallbackParams, PostedResponse, STATE_TTL, Waiting, refused_unaudited,
};
use crate::config::upstream::UpstreamResponseMode;
use crate::crypto::tokens::{constant_time_eq, token_hash};
use crate::http::cookies::CookieNames;
use crate::http::interaction::redirect;
use crate::http::state::State;
use crate::protocol::OAuthError;

/// `POST /upstream/{id}/callback`.
pub async fn callback_post(
    req: HttpRequest,
    path: web::Path<String>,
    form: Result<web::Form<CallbackParams>, actix_web::Error>,
    state: State,
) -> HttpResponse {
    let provider = path.into_inner();
    match keep(&req, &provider, form, &state).await {
        Ok(response) => response,
        Err(e) => crate::http::error::page_response(&state.settings, Err(e.into())),
    }
}

async fn keep(
    req: &HttpRequest,
    provider: &str,
    form: Result<web::Form<CallbackParams>, actix_web::Error>,
    state: &State,
) -> Result<HttpResponse, OAuthError> {
    let ui = crate::http::ui::Ui::current();
    let generic = || ui.t("upstream.refused").to_owned();
    let Some(settings) = state.upstreams.find(provider) else {
        return Ok(refused_unaudited(
            state,
            "unknown",
            "unknown_provider",
            ui.t("upstream.unknown_provider").to_owned(),
            None,
        ));
    };
    // A query provider's answer never comes by POST.
    if settings.response_mode != UpstreamResponseMode::FormPost {
        return Ok(refused_unaudited(
            state,
            provider,
            "response_mode_mismatch",
            generic(),
            None,
        ));
    }
    let Ok(form) = form else {
        return Ok(refused_unaudited(
            state,
            provider,
            "bad_request",
            generic(),
            None,
        ));
    };
    let form = form.into_inner();
    let Some(state_value) = form.state.clone().filter(|s| !s.is_empty()) else {
        return Ok(refused_unaudited(
            state,
            provider,
            "no_state",
            generic(),
            None,
        ));
    };
    let waiting: Option<Waiting> = state.sessions.load_upstream_state(&state_value).await?;
    // Unknown, another provider's, or already answered (a replayed POST).
    let Some(mut waiting) = waiting.filter(|w| w.provider == provider && w.response.is_none())
    else {
        return Ok(refused_unaudited(
            state,
            provider,
            "state_unknown",
            generic(),
            None,
        ));
    };
    let back = Some(waiting.interaction.clone());
    // The one-time cookie, when the browser sends it with a cross-site POST (it does
    // where it is `SameSite=None`: over https), must be the sign-in's; over plain http
    // the GET that follows checks it.
    let cookie = req.cookie(CookieNames::upstream_state(&state.settings));
    let matches = cookie
        .as_ref()
        .map(|c| constant_time_eq(token_hash(c.value()).as_bytes(), waiting.browser.as_bytes()));
    if matches == Some(false) || (matches.is_none() && state.settings.cookie_secure) {
        return Ok(refused_unaudited(
            state,
            provider,
            "browser_mismatch",
            generic(),
            back.as_deref(),
        ));
    }
    waiting.response = Some(PostedResponse {
        code: form.code,
        error: form.error,
        error_description: form.error_description,
        iss: form.iss,
    });
    let left = STATE_TTL.as_secs() as i64 - (state.now() - waiting.started_at);
    state
        .sessions
        .save_upstream_state(
            &state_value,
            &waiting,
            std::time::Duration::from_secs(left.clamp(1, STATE_TTL.as_secs() as i64) as u64),
        )
        .await?;
    let mut url = url::Url::parse(&crate::upstream::callback_url(
        &state.settings.issuer,
        provider,
    ))
    .map_err(OAuthError::server)?;
    url.query_pairs_mut().append_pair("state", &state_value);
    Ok(redirect(StatusCode::SEE_OTHER, url.as_str()))
}
