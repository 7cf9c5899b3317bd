//! The login page: username and password, CSRF-protected, one message for every failure.
//! It renders the sign-in's current step and posts answers to it; `protocol::sign_in`
//! decides (throttle, password, the session earned) through the ports here.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use serde::Deserialize;

use super::render;
use super::sign_in_ports::{FormPorts, throttle_limits};
use crate::crypto::tokens::{constant_time_eq, token_hash};
use crate::domain::Secret;
use crate::http::client_address::client_address_of;
use crate::http::cookies::{session_cookie, session_id};
use crate::http::csrf::form_token;
use crate::http::error::{PageError, page_response};
use crate::http::interaction::{accepts, bound_browser, load, proceed, take, with_cookie};
use crate::http::paths::Links;
use crate::http::state::{State, blocking};
use crate::protocol::interaction::{Interaction, LOGIN_FORM, expired, other_browser};

use crate::http::sign_out::{self, Ending};
use crate::protocol::OAuthError;
use crate::protocol::sign_in::{
    Answer, Authenticated, Denied, NewSession, SignIn, new_sid, session_after,
};
use crate::sessions::Sessions;
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
    links: Links,
    id: &'a str,
    csrf: &'a str,
    client_name: &'a str,
    username: &'a str,
    error: Option<&'a str>,
    /// The "Sign in with a passkey" button and the username field's passkey autofill.
    passkeys: bool,
    /// "Create an account" (`signup = open`).
    signup: bool,
    /// "Sign in with NAME" per upstream provider: (id, label). None while linking an
    /// upstream identity (that sign-in must be a local one) or in a password reset.
    upstreams: Vec<(String, String)>,
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
    let mut pending = load(&state, &query.id).await?;
    // A password reset has no login step: its link stood in for the password.
    if pending.reset.is_some() {
        return Err(expired().into());
    }
    // Only the browser that started the request sees its form (and so a token).
    let browser = bound_browser(&pending, &req, &state).ok_or_else(other_browser)?;
    // `idp_hint` (issue 24): straight to that upstream, once (coming back to this page
    // shows the page).
    if let Some(hint) = pending.request.idp_hint.take() {
        crate::http::interaction::save(&state, &query.id, &pending).await?;
        if state.upstreams.find(&hint).is_some() && pending.upstream_link.is_none() {
            return super::upstream_start::begin(&state, &hint, &query.id, &pending).await;
        }
    }
    let csrf = form_token(&state, LOGIN_FORM, &query.id, &browser);
    Ok(page(
        &state,
        &query.id,
        &csrf,
        &pending,
        pending.request.login_hint.as_deref().unwrap_or(""),
        None,
    ))
}

fn page(
    state: &State,
    id: &str,
    csrf: &str,
    pending: &Interaction,
    username: &str,
    error: Option<&str>,
) -> HttpResponse {
    match error {
        Some(message) => page_with_status(
            StatusCode::UNAUTHORIZED,
            state,
            id,
            csrf,
            pending,
            username,
            message,
        ),
        None => with_form_target(
            state,
            render(
                StatusCode::OK,
                &login_page(state, id, csrf, pending, username, None),
            ),
            pending,
        ),
    }
}

/// The login form's submission may end at the client (when consent is already given):
/// the CSP must let the browser follow that redirect. With passkeys, the page runs their
/// script.
fn with_form_target(
    state: &State,
    mut response: HttpResponse,
    pending: &Interaction,
) -> HttpResponse {
    crate::http::csp::allow_form_redirect(&mut response, &pending.request.redirect_uri);
    // "Sign in with NAME" posts here and is redirected to the upstream: its origin too.
    if pending.upstream_link.is_none() {
        for target in state.upstreams.authorization_targets() {
            crate::http::csp::allow_form_redirect(&mut response, &target);
        }
    }
    if state.passkeys.is_some() {
        crate::http::csp::allow_passkey_script(&mut response);
    }
    response
}

fn page_with_status(
    status: StatusCode,
    state: &State,
    id: &str,
    csrf: &str,
    pending: &Interaction,
    username: &str,
    error: &str,
) -> HttpResponse {
    with_form_target(
        state,
        render(
            status,
            &login_page(state, id, csrf, pending, username, Some(error)),
        ),
        pending,
    )
}

fn login_page<'a>(
    state: &'a State,
    id: &'a str,
    csrf: &'a str,
    pending: &'a Interaction,
    username: &'a str,
    error: Option<&'a str>,
) -> LoginPage<'a> {
    LoginPage {
        ui: crate::http::ui::Ui::current(),
        links: Links::new(&state.settings.issuer_path),
        id,
        csrf,
        client_name: &pending.client_name,
        username,
        error,
        passkeys: state.passkeys.is_some(),
        signup: state.settings.signup.open(),
        upstreams: if pending.upstream_link.is_some() || pending.reset.is_some() {
            Vec::new()
        } else {
            let ui = crate::http::ui::Ui::current();
            state
                .upstreams
                .list()
                .map(|p| {
                    (
                        p.id.clone(),
                        ui.fill("login.upstream", &[("name", &p.name)]),
                    )
                })
                .collect()
        },
    }
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
    let pending = load(&state, &form.id).await?;
    if pending.reset.is_some() {
        return Err(expired().into());
    }
    if !crate::http::csrf::from_our_pages(&req, &state.settings)
        || !accepts(&pending, &req, &state, LOGIN_FORM, &form.id, &form.csrf)
    {
        return Err(OAuthError::invalid_request(
            "the form could not be verified; return to the application and start again",
        )
        .into());
    }
    let address = client_address_of(&req, &state.settings);
    let ports = FormPorts::new(&state, &req, &pending);
    let mut sign_in = SignIn::begin(
        &form.username,
        pending.asked,
        state.settings.mfa,
        throttle_limits(&state),
        state.now(),
    );
    let answer = sign_in.password(Secret::new(form.password), &ports).await?;
    let username = sign_in.username();
    let ui = crate::http::ui::Ui::current();
    let signed_in = match answer {
        Answer::Success(signed_in) => signed_in,
        Answer::Continue(_) => {
            // The password is right; a second factor (or an enrolment) comes next (the
            // sign-in is counted once it is done).
            return to_second_step(&state, &form.id, pending, sign_in).await;
        }
        Answer::Denied(Denied::Throttled) => {
            state.metrics.login(false);
            crate::audit::login_throttled(
                &crate::audit::account_ref(&state.kek, username),
                &address,
            );
            return Ok(page_with_status(
                StatusCode::TOO_MANY_REQUESTS,
                &state,
                &form.id,
                &form.csrf,
                &pending,
                username,
                ui.t("login.throttled"),
            ));
        }
        Answer::Denied(Denied::Incorrect | Denied::WrongCode) => {
            state.metrics.login(false);
            crate::audit::login_failed(&crate::audit::account_ref(&state.kek, username), &address);
            return Ok(page(
                &state,
                &form.id,
                &form.csrf,
                &pending,
                username,
                Some(ui.t("login.incorrect")),
            ));
        }
        // Said only to whoever knows the password: to anyone else a disabled account looks
        // like any failed sign-in. (The metric counts the password as right.)
        Answer::Denied(Denied::Disabled { user_id }) => {
            state.metrics.login(true);
            crate::audit::login_refused_disabled(&user_id, &address);
            return Ok(page(
                &state,
                &form.id,
                &form.csrf,
                &pending,
                username,
                Some(ui.t("login.disabled")),
            ));
        }
    };
    state.metrics.login(true);
    complete(&req, &state, &form.id, pending, signed_in).await
}

/// Keeps `sign_in` with its interaction and sends the browser to the second step.
pub(super) async fn to_second_step(
    state: &State,
    handle: &str,
    mut pending: Interaction,
    sign_in: SignIn,
) -> Result<HttpResponse, PageError> {
    pending.sign_in = Some(sign_in);
    crate::http::interaction::save(state, handle, &pending).await?;
    let location = format!(
        "{}?id={handle}",
        crate::http::paths::Links::new(&state.settings.issuer_path).second_factor()
    );
    Ok(HttpResponse::SeeOther()
        .insert_header((actix_web::http::header::LOCATION, location))
        .insert_header((actix_web::http::header::CACHE_CONTROL, "no-store"))
        .finish())
}

/// A sign-in succeeded: the browser gets its session (a new cookie; the same `sid` for
/// the same user, see `sign_in::session_after`) and the interaction goes on.
pub(super) async fn complete(
    req: &HttpRequest,
    state: &State,
    handle: &str,
    mut pending: Interaction,
    signed_in: Authenticated,
) -> Result<HttpResponse, PageError> {
    // A password reset's check of the second factors is never a session: it goes on to
    // the new password, and only a success of that reset's own check does.
    if pending.reset.is_some() || signed_in.resets.is_some() {
        return super::reset::checked(state, handle, pending, signed_in, true).await;
    }
    let address = client_address_of(req, &state.settings);
    crate::audit::login_succeeded(&signed_in.user_id, &address);
    // Claim the interaction before creating anything: of two submissions of this form
    // (a double click, two instances) one wins, and the other leaves nothing behind.
    if !take(state, handle).await? {
        return Err(expired().into());
    }
    pending.sign_in = None;
    // The session the browser had is replaced (`sign_in::session_after` decides how).
    let now = state.now();
    let mut previous = None;
    let cookie = session_id(req, &state.settings);
    if let Some(stepped_up) = &signed_in.steps_up {
        // A step-up completes only the session it began in, while that session still
        // speaks for its user: not one signed out, ended or replaced meanwhile.
        let same = cookie
            .as_deref()
            .is_some_and(|c| constant_time_eq(token_hash(c).as_bytes(), stepped_up.as_bytes()));
        let live = match (same, cookie.as_deref()) {
            (true, Some(c)) => match state
                .sessions
                .load_sso(c, now)
                .await
                .map_err(OAuthError::from)?
            {
                Some(session) => {
                    blocking(state, move |ctx| {
                        Ok(crate::protocol::logout::session_user(ctx.store, &session)?.is_some())
                    })
                    .await?
                }
                None => false,
            },
            _ => false,
        };
        if !live {
            return Err(expired().into());
        }
    }
    if let Some(old) = &cookie {
        previous = state
            .sessions
            .load_sso(old, now)
            .await
            .map_err(OAuthError::from)?;
    }
    let NewSession {
        mut session,
        replaced,
    } = session_after(
        &signed_in,
        previous.as_ref(),
        now,
        state.settings.session_ttl.as_secs(),
    );
    if let Some(sid) = replaced {
        let ending = Ending::Session {
            sid,
            reason: "replaced_by_another_user",
        };
        sign_out::end(state, ending).await?;
    }
    let mut record = BrowserSession {
        sid: session.sid.clone(),
        user_id: session.user_id.clone(),
        store_key: Sessions::sso_record_key(&session.id),
        created_at: now,
        expires_at: session.expires_at,
        ended_at: None,
        user_agent: user_agent(req),
        ip_address: Some(address.clone()),
    };
    // The record before the database row, and the old record deleted only once the row
    // has moved off it: a row never points at a record not yet written or already gone,
    // so a reconciliation after a store loss (`store_loss`) cannot take a sign-in in
    // progress for a lost session. The new record is useless until its cookie is sent.
    state
        .sessions
        .save_sso(&session, now)
        .await
        .map_err(OAuthError::from)?;
    let recorded = blocking(state, {
        let record = record.clone();
        move |ctx| Ok(ctx.store.record_session(&record)?)
    })
    .await?;
    if let Some(old) = &cookie {
        state
            .sessions
            .delete_sso(old)
            .await
            .map_err(OAuthError::from)?;
    }
    if !recorded {
        // The session it would go on in was ended meanwhile (elsewhere): a new one, but
        // not for a step-up, which only ever raises the session it began in.
        if signed_in.steps_up.is_some() {
            // Its cookie is never sent, so the record could not be used; it goes anyway.
            let _ = state.sessions.delete_sso(&session.id).await;
            return Err(expired().into());
        }
        session.sid = new_sid();
        record.sid = session.sid.clone();
        // The record again, now with the new sid, still before its row.
        state
            .sessions
            .save_sso(&session, now)
            .await
            .map_err(OAuthError::from)?;
        blocking(state, move |ctx| Ok(ctx.store.record_session(&record)?)).await?;
    }
    pending.logged_in_session = Some(token_hash(&session.id));
    let cookie = session_cookie(&state.settings, session.id.clone());
    // The claimed interaction goes on under a new handle (if a consent page follows).
    let response = proceed(req, state, pending, None, Some(session)).await?;
    Ok(with_cookie(response, &cookie))
}
