//! The start of "Sign in with NAME" (issue 24): the login page's button and `idp_hint`
//! send the browser to the upstream, with what the callback (`super::upstream`) needs
//! kept server-side and the browser bound by a one-time cookie; and the pages and the
//! cookie both ends share. It uses nothing of the login page's or the callback's, so
//! the login page can start a sign-in that the callback then completes through it.

use super::render;
use crate::config::upstream::UpstreamResponseMode;
use crate::crypto::tokens::{random_token, token_hash};
use crate::http::cookies::CookieNames;
use crate::http::error::{PageError, page_response};
use crate::http::interaction::{accepts, load, redirect, with_cookie};
use crate::http::paths::{self, Links};
use crate::http::state::State;
use crate::protocol::OAuthError;
use crate::protocol::interaction::{Interaction, LOGIN_FORM, expired};
use crate::upstream::{ForceAuth, UpstreamError};
use actix_web::cookie::{Cookie, SameSite, time::Duration as CookieDuration};
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// How long an upstream sign-in may take (the person signs in at the upstream).
pub(super) const STATE_TTL: Duration = Duration::from_secs(600);

/// What waits server-side (the session store, so any instance can take the callback)
/// between the start and the callback, under the hash of `state`.
#[derive(Serialize, Deserialize)]
pub(super) struct Waiting {
    pub(super) provider: String,
    pub(super) nonce: String,
    pub(super) pkce_verifier: String,
    /// The interaction (authorization request) the sign-in is for.
    pub(super) interaction: String,
    /// Hash of the one-time cookie's value.
    pub(super) browser: String,
    /// The forced authentication passed on (`prompt=login`, `max_age`), and when.
    #[serde(default)]
    pub(super) force: ForceAuth,
    #[serde(default)]
    pub(super) started_at: i64,
    /// A `form_post` provider's authorization response, as POSTed to the callback and
    /// kept here until the browser's GET of the callback takes it (the code never goes
    /// in a URL).
    #[serde(default)]
    pub(super) response: Option<PostedResponse>,
}

/// What a `form_post` upstream POSTed to the callback (OAuth 2.0 Form Post Response
/// Mode §2).
#[derive(Clone, Default, Serialize, Deserialize)]
pub(super) struct PostedResponse {
    pub(super) code: Option<String>,
    pub(super) error: Option<String>,
    pub(super) error_description: Option<String>,
    pub(super) iss: Option<String>,
}

#[derive(Template)]
#[template(path = "upstream.html")]
pub(super) struct MessagePage<'a> {
    pub(super) ui: crate::http::ui::Ui,
    pub(super) links: Links,
    pub(super) title: &'a str,
    pub(super) message: &'a str,
    /// The "Sign in to link it to your account" form: (proof handle, csrf).
    pub(super) link: Option<(&'a str, &'a str)>,
    /// Back to the login page of the interaction.
    pub(super) back: Option<String>,
}

/// One of this module's cookies ([`CookieNames::upstream_state`],
/// [`CookieNames::upstream_link`]). Secure ones are `__Host-` (Path=/, no Domain: a
/// sibling subdomain cannot plant one); others are scoped to the upstream paths.
pub(super) fn cookie(
    state: &State,
    name: &'static str,
    value: String,
    max_age: i64,
) -> Cookie<'static> {
    let path = if state.settings.cookie_secure {
        "/".to_owned()
    } else {
        format!(
            "{}{}",
            state.settings.issuer_path,
            paths::UPSTREAM_COOKIE_PATH
        )
    };
    let mut c = Cookie::build(name, value)
        .path(path)
        .http_only(true)
        .secure(state.settings.cookie_secure)
        // The callback is a top-level GET from the upstream's site: Lax comes along. (The
        // state cookie of a form_post provider is `None`; see `begin`.)
        .same_site(SameSite::Lax)
        .finish();
    c.set_max_age(CookieDuration::seconds(max_age));
    c
}

pub(super) fn message_page(
    state: &State,
    status: StatusCode,
    title: &str,
    message: &str,
    back: Option<&str>,
) -> HttpResponse {
    let links = Links::new(&state.settings.issuer_path);
    let back = back.map(|handle| format!("{}?id={handle}", links.login()));
    render(
        status,
        &MessagePage {
            ui: crate::http::ui::Ui::current(),
            links,
            title,
            message,
            link: None,
            back,
        },
    )
}

/// The page of an upstream that cannot be reached (503): nothing was stored.
pub(super) fn unreachable_page(state: &State, name: &str, back: Option<&str>) -> HttpResponse {
    let ui = crate::http::ui::Ui::current();
    message_page(
        state,
        StatusCode::SERVICE_UNAVAILABLE,
        ui.t("upstream.unreachable_title"),
        &ui.fill("upstream.unreachable", &[("name", name)]),
        back,
    )
}

/// The "Sign in with NAME" form. Its fields are named apart from the login form's
/// (`id`, `csrf`) although they carry the same values: a script that posts every hidden
/// input of the login page to the login form then sends no field twice.
#[derive(Deserialize)]
pub struct StartForm {
    /// The interaction's handle.
    interaction: String,
    /// The login form's CSRF token.
    #[serde(default)]
    token: String,
}

/// `POST /upstream/{id}/start`: the login page's "Sign in with NAME".
pub async fn start(
    req: HttpRequest,
    path: web::Path<String>,
    form: web::Form<StartForm>,
    state: State,
) -> HttpResponse {
    let settings = state.settings.clone();
    page_response(
        &settings,
        start_page(req, path.into_inner(), form, state).await,
    )
}

async fn start_page(
    req: HttpRequest,
    provider: String,
    form: web::Form<StartForm>,
    state: State,
) -> Result<HttpResponse, PageError> {
    let pending = load(&state, &form.interaction).await?;
    if !crate::http::csrf::from_our_pages(&req, &state.settings)
        || !accepts(
            &pending,
            &req,
            &state,
            LOGIN_FORM,
            &form.interaction,
            &form.token,
        )
    {
        return Err(OAuthError::invalid_request(
            "the form could not be verified; return to the application and start again",
        )
        .into());
    }
    begin(&state, &provider, &form.interaction, &pending).await
}

/// Sends the browser of interaction `handle` to upstream `provider` (from the button, or
/// from `idp_hint`): state, nonce and PKCE verifier kept server-side, the browser bound
/// by a one-time cookie.
pub(super) async fn begin(
    state: &State,
    provider: &str,
    handle: &str,
    pending: &Interaction,
) -> Result<HttpResponse, PageError> {
    if pending.reset.is_some() || pending.upstream_link.is_some() {
        return Err(expired().into());
    }
    let Some(settings) = state.upstreams.find(provider) else {
        return Err(OAuthError::invalid_request("no such sign-in provider").into());
    };
    // prompt=login, max_age, or a re-authentication for the account page: the upstream
    // is asked to authenticate afresh, and its auth_time is checked at the callback.
    let force = ForceAuth {
        login: pending.reauth
            || pending
                .request
                .prompt
                .contains(&crate::protocol::authorize::Prompt::Login),
        max_age: pending.request.max_age,
    };
    let begun = match state.upstreams.begin(provider, force).await {
        Ok(begun) => begun,
        Err(UpstreamError::Unreachable(_)) => {
            return Ok(unreachable_page(state, &settings.name, Some(handle)));
        }
        Err(UpstreamError::Refused { .. }) => {
            return Ok(unreachable_page(state, &settings.name, Some(handle)));
        }
    };
    let binding = random_token(32);
    let waiting = Waiting {
        provider: provider.to_owned(),
        nonce: begun.nonce,
        pkce_verifier: begun.pkce_verifier,
        interaction: handle.to_owned(),
        browser: token_hash(&binding),
        force,
        started_at: state.now(),
        response: None,
    };
    state
        .sessions
        .save_upstream_state(&begun.state, &waiting, STATE_TTL)
        .await
        .map_err(OAuthError::from)?;
    let response = redirect(StatusCode::SEE_OTHER, &begun.url);
    let mut one_time = cookie(
        state,
        CookieNames::upstream_state(&state.settings),
        binding,
        STATE_TTL.as_secs() as i64,
    );
    // A form_post provider's answer is a cross-site POST: only a `SameSite=None` cookie
    // comes along with it (which browsers take only with `Secure`).
    if settings.response_mode == UpstreamResponseMode::FormPost && state.settings.cookie_secure {
        one_time.set_same_site(SameSite::None);
    }
    Ok(with_cookie(response, &one_time))
}

#[derive(Default, Deserialize)]
pub struct CallbackParams {
    pub(super) state: Option<String>,
    pub(super) code: Option<String>,
    pub(super) error: Option<String>,
    pub(super) error_description: Option<String>,
    pub(super) iss: Option<String>,
}

/// A callback refused before its state and its one-time cookie matched: anyone can send
/// one, so it is a log line (no value it carries), never an audit row.
pub(super) fn refused_unaudited(
    state: &State,
    provider: &str,
    reason: &'static str,
    message: String,
    back: Option<&str>,
) -> HttpResponse {
    tracing::info!(upstream = %provider, reason, "upstream callback refused before its state matched");
    let ui = crate::http::ui::Ui::current();
    message_page(
        state,
        StatusCode::BAD_REQUEST,
        ui.t("upstream.refused_title"),
        &message,
        back,
    )
}
