//! The login page: username and password, CSRF-protected, one message for every failure.

use std::time::Duration;

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use serde::Deserialize;

use super::render;
use crate::crypto::password::verify_password_async;
use crate::crypto::tokens::{random_token, token_hash};
use crate::domain::Secret;
use crate::http::error::{PageError, page_response};
use crate::http::interaction::{accepts, bound_browser, load, proceed, take, with_cookie};
use crate::http::{
    State, blocking, client_address_of, form_token, limit_key, session_cookie, session_id,
};
use crate::protocol::interaction::{Interaction, LOGIN_FORM, expired, other_browser};

/// How long a browser that signed in to an account skips the account-wide login queue
/// and the per-address limits.
const KNOWN_BROWSER_TTL: Duration = Duration::from_secs(90 * 86_400);
use crate::http::sign_out::{self, Ending};
use crate::protocol::OAuthError;
use crate::protocol::throttle::{self, Throttle};
use crate::sessions::{Sessions, SsoSession};
use crate::store::BrowserSession;

/// The browser's own description, kept (bounded) for the account page's session list.
fn user_agent(req: &HttpRequest) -> Option<String> {
    let ua = req
        .headers()
        .get(actix_web::http::header::USER_AGENT)?
        .to_str()
        .ok()?;
    Some(ua.chars().filter(|c| !c.is_control()).take(300).collect())
}

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage<'a> {
    ui: crate::http::ui::Ui,
    base: &'a str,
    id: &'a str,
    csrf: &'a str,
    client_name: &'a str,
    username: &'a str,
    error: Option<&'a str>,
}

#[derive(Deserialize)]
pub struct PageQuery {
    pub id: String,
}

pub async fn show(req: HttpRequest, query: web::Query<PageQuery>, state: State) -> HttpResponse {
    let settings = state.settings.clone();
    page_response(&settings, show_page(req, query, state).await)
}

async fn show_page(
    req: HttpRequest,
    query: web::Query<PageQuery>,
    state: State,
) -> Result<HttpResponse, PageError> {
    let pending = load(&state, &query.id).await?;
    // Only the browser that started the request sees its form (and so a token).
    let browser = bound_browser(&pending, &req, &state).ok_or_else(other_browser)?;
    let csrf = form_token(&state, LOGIN_FORM, &query.id, &browser);
    let base = &state.settings.issuer_path;
    Ok(page(
        base,
        &query.id,
        &csrf,
        &pending,
        pending.request.login_hint.as_deref().unwrap_or(""),
        None,
    ))
}

fn page(
    base: &str,
    id: &str,
    csrf: &str,
    pending: &Interaction,
    username: &str,
    error: Option<&str>,
) -> HttpResponse {
    match error {
        Some(message) => page_with_status(
            StatusCode::UNAUTHORIZED,
            base,
            id,
            csrf,
            pending,
            username,
            message,
        ),
        None => with_form_target(
            render(
                StatusCode::OK,
                &login_page(base, id, csrf, pending, username, None),
            ),
            pending,
        ),
    }
}

/// The login form's submission may end at the client (when consent is already given):
/// the CSP must let the browser follow that redirect.
fn with_form_target(mut response: HttpResponse, pending: &Interaction) -> HttpResponse {
    crate::http::allow_form_redirect(&mut response, &pending.request.redirect_uri);
    response
}

fn page_with_status(
    status: StatusCode,
    base: &str,
    id: &str,
    csrf: &str,
    pending: &Interaction,
    username: &str,
    error: &str,
) -> HttpResponse {
    with_form_target(
        render(
            status,
            &login_page(base, id, csrf, pending, username, Some(error)),
        ),
        pending,
    )
}

fn login_page<'a>(
    base: &'a str,
    id: &'a str,
    csrf: &'a str,
    pending: &'a Interaction,
    username: &'a str,
    error: Option<&'a str>,
) -> LoginPage<'a> {
    LoginPage {
        ui: crate::http::ui::Ui::current(),
        base,
        id,
        csrf,
        client_name: &pending.client_name,
        username,
        error,
    }
}

/// Takes a place in each queue the throttle named (the address's, then the account's)
/// and waits for the later of the two; `false` when a queue is too long to wait in.
async fn wait_in_queues(
    state: &State,
    username: &str,
    source: &str,
    account_spacing: Option<Duration>,
    source_spacing: Option<Duration>,
) -> Result<bool, PageError> {
    let mut wait = Duration::ZERO;
    if let Some(spacing) = source_spacing {
        let slot = state
            .sessions
            .queue_login_from(source, spacing, throttle::MAX_WAIT, throttle::WINDOW)
            .await
            .map_err(OAuthError::from)?;
        match slot {
            Some(w) => wait = wait.max(w),
            None => return Ok(false),
        }
    }
    if let Some(spacing) = account_spacing {
        let slot = state
            .sessions
            .queue_login(username, spacing, throttle::MAX_WAIT, throttle::WINDOW)
            .await
            .map_err(OAuthError::from)?;
        match slot {
            Some(w) => wait = wait.max(w),
            None => return Ok(false),
        }
    }
    tokio::time::sleep(wait).await;
    Ok(true)
}

#[derive(Deserialize)]
pub struct LoginForm {
    id: String,
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    username: String,
    #[serde(default)]
    password: String,
}

pub async fn submit(req: HttpRequest, form: web::Form<LoginForm>, state: State) -> HttpResponse {
    let settings = state.settings.clone();
    page_response(&settings, submit_page(req, form, state).await)
}

async fn submit_page(
    req: HttpRequest,
    form: web::Form<LoginForm>,
    state: State,
) -> Result<HttpResponse, PageError> {
    let form = form.into_inner();
    let mut pending = load(&state, &form.id).await?;
    if !crate::http::from_our_pages(&req, &state.settings)
        || !accepts(&pending, &req, &state, LOGIN_FORM, &form.id, &form.csrf)
    {
        return Err(OAuthError::invalid_request(
            "the form could not be verified; return to the application and start again",
        )
        .into());
    }
    let username = form.username.trim().to_owned();
    let base = &state.settings.issuer_path;
    // Online guessing (see `protocol::throttle`): the attempt is counted before its
    // password is checked, per account name (known or not, so the limit reveals nothing),
    // per (name, address), per address, and per (name, browser) for a browser that signed
    // in to the account before.
    let address = client_address_of(&req, &state.settings);
    let source = limit_key(&address);
    let browser = bound_browser(&pending, &req, &state);
    let known_browser = match &browser {
        Some(b) => state
            .sessions
            .is_known_browser(&username, b)
            .await
            .map_err(OAuthError::from)?,
        None => false,
    };
    let counted_browser = browser.as_deref().filter(|_| known_browser);
    let attempts = state
        .sessions
        .reserve_login(&username, &source, counted_browser, throttle::WINDOW)
        .await
        .map_err(OAuthError::from)?;
    let verdict = throttle::decide(
        attempts,
        known_browser,
        state.settings.password_failures_per_address,
    );
    let admitted = match verdict {
        Throttle::Allow => true,
        Throttle::Refuse => false,
        Throttle::Space {
            account,
            source: from_source,
        } => wait_in_queues(&state, &username, &source, account, from_source).await?,
    };
    if !admitted {
        state.metrics.login(false);
        crate::audit::login_throttled(&crate::audit::account_ref(&state.kek, &username), &address);
        let message = crate::http::ui::Ui::current().t("login.throttled");
        return Ok(page_with_status(
            StatusCode::TOO_MANY_REQUESTS,
            base,
            &form.id,
            &form.csrf,
            &pending,
            &username,
            message,
        ));
    }
    let password = Secret::new(form.password);
    let lookup = username.clone();
    // argon2id (~9 ms of CPU, 19 MiB) runs on the hashing threads (crypto::password), a
    // bounded number waiting at a time so that a flood of logins queues instead of
    // piling up. An unknown user is checked against a dummy hash so both failures take
    // the same time.
    let _permit = state
        .password_checks
        .acquire()
        .await
        .map_err(OAuthError::server)?;
    let user = blocking(&state, move |ctx| {
        Ok(ctx.store.find_user_by_username(&lookup)?)
    })
    .await?;
    let stored = user.as_ref().map(|u| u.password_hash.clone());
    let ok = verify_password_async(password, stored).await;
    let user = user.filter(|_| ok);
    state.metrics.login(user.is_some());
    let Some(user) = user else {
        crate::audit::login_failed(&crate::audit::account_ref(&state.kek, &username), &address);
        return Ok(page(
            base,
            &form.id,
            &form.csrf,
            &pending,
            &username,
            Some(crate::http::ui::Ui::current().t("login.incorrect")),
        ));
    };
    // Said only to whoever knows the password: to anyone else a disabled account looks
    // like any failed sign-in.
    if user.disabled_at.is_some() {
        crate::audit::login_refused_disabled(&user.id, &address);
        return Ok(page(
            base,
            &form.id,
            &form.csrf,
            &pending,
            &username,
            Some(crate::http::ui::Ui::current().t("login.disabled")),
        ));
    }
    crate::audit::login_succeeded(&user.id, &address);
    state
        .sessions
        .login_succeeded(&username, &source, counted_browser, throttle::WINDOW)
        .await
        .map_err(OAuthError::from)?;
    if let Some(b) = &browser {
        state
            .sessions
            .remember_browser(&username, b, KNOWN_BROWSER_TTL)
            .await
            .map_err(OAuthError::from)?;
    }

    // Claim the interaction before creating anything: of two submissions of this form
    // (a double click, two instances) one wins, and the other leaves nothing behind.
    if !take(&state, &form.id).await? {
        return Err(expired().into());
    }
    // A new session cookie at every login (no session fixation). The same user signing in
    // again (prompt=login, max_age) goes on in the same session (`sid`), so that signing
    // out later reaches the apps of both sign-ins; another user's session ends here.
    let now = state.now();
    let mut sid = None;
    if let Some(old) = session_id(&req, &state.settings) {
        let previous = state
            .sessions
            .load_sso(&old, now)
            .await
            .map_err(OAuthError::from)?;
        state
            .sessions
            .delete_sso(&old)
            .await
            .map_err(OAuthError::from)?;
        if let Some(previous) = previous {
            if previous.user_id == user.id {
                sid = Some(previous.sid);
            } else {
                let ending = Ending::Session {
                    sid: previous.sid,
                    reason: "replaced_by_another_user",
                };
                sign_out::end(&state, ending).await?;
            }
        }
    }
    let mut session = SsoSession {
        id: random_token(32),
        sid: sid.unwrap_or_else(|| random_token(16)),
        user_id: user.id,
        auth_time: now,
        expires_at: now + state.settings.session_ttl,
    };
    let mut record = BrowserSession {
        sid: session.sid.clone(),
        user_id: session.user_id.clone(),
        store_key: Sessions::sso_record_key(&session.id),
        created_at: now,
        expires_at: session.expires_at,
        ended_at: None,
        user_agent: user_agent(&req),
        ip_address: Some(address.clone()),
    };
    let recorded = blocking(&state, {
        let record = record.clone();
        move |ctx| Ok(ctx.store.record_session(&record)?)
    })
    .await?;
    if !recorded {
        // The session it would go on in was ended meanwhile (elsewhere): a new one.
        session.sid = random_token(16);
        record.sid = session.sid.clone();
        blocking(&state, move |ctx| Ok(ctx.store.record_session(&record)?)).await?;
    }
    state
        .sessions
        .save_sso(&session, now)
        .await
        .map_err(OAuthError::from)?;
    pending.logged_in_session = Some(token_hash(&session.id));
    let cookie = session_cookie(&state.settings, session.id.clone());
    // The claimed interaction goes on under a new handle (if a consent page follows).
    let response = proceed(&req, &state, pending, None, Some(session)).await?;
    Ok(with_cookie(response, &cookie))
}
