//! Password reset (issue 23 §3), as pages: the request form ("Forgot your password?"),
//! the link's page (what it does, and a button: mail scanners fetch every link, so GET
//! does nothing), the account's second factors on the sign-in's own page
//! (`pages::factor`, with its throttles), then the new password. `protocol::reset` does
//! the work; the reset waits as an interaction bound to the browser that opened the link.

use std::time::Duration;

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use serde::Deserialize;

use super::render;
use super::sign_in_ports::{FormPorts, throttle_limits};
use crate::crypto::tokens::{constant_time_eq, random_token, token_hash};
use crate::domain::{PasswordRuleError, Secret};
use crate::http::client_address::{client_address_of, limit_key};
use crate::http::cookies::{browser_id, known_browser};
use crate::http::csrf::{form_token, from_our_pages};
use crate::http::error::{PageError, page_response};
use crate::http::interaction::{
    accepts, admit, bound_browser, load, redirect, save, save_if_present, take, with_cookie,
};
use crate::http::paths::Links;
use crate::http::state::{State, blocking};
use crate::mail::Locale;
use crate::protocol::OAuthError;
use crate::protocol::interaction::{Interaction, RESET_FORM, expired, other_browser};
use crate::protocol::links::LinkRefused;
use crate::protocol::reset::{self, ResetRefused, ResetRequest};
use crate::protocol::security::NewPasswordRefused;
use crate::protocol::sign_in::{Answer, Authenticated, SignIn};

const FORGOT_FORM: &str = "forgot-form";
const RESET_LINK_FORM: &str = "reset-link-form";
/// The window of `reset_requests_per_address` and `reset_requests_per_account`.
const REQUEST_WINDOW: Duration = Duration::from_secs(3600);

#[derive(Template)]
#[template(path = "forgot.html")]
struct ForgotPage<'a> {
    ui: crate::http::ui::Ui,
    links: Links,
    csrf: &'a str,
    /// The request was taken: the page says a mail is on its way if the account exists.
    sent: bool,
    error: Option<&'a str>,
}

#[derive(Template)]
#[template(path = "reset_link.html")]
struct LinkPage<'a> {
    ui: crate::http::ui::Ui,
    links: Links,
    csrf: &'a str,
    code: &'a str,
    username: &'a str,
}

#[derive(Template)]
#[template(path = "reset_password.html")]
struct PasswordPage<'a> {
    ui: crate::http::ui::Ui,
    links: Links,
    csrf: &'a str,
    id: &'a str,
    username: &'a str,
    error: Option<&'a str>,
}

#[derive(Template)]
#[template(path = "link_refused.html")]
pub(super) struct RefusedPage {
    pub ui: crate::http::ui::Ui,
    pub links: Links,
    pub message: &'static str,
    /// Where a new link is asked for, and its label.
    pub again: String,
    pub again_label: &'static str,
}

#[derive(Template)]
#[template(path = "reset_done.html")]
struct DonePage {
    ui: crate::http::ui::Ui,
    links: Links,
}

/// The page of a link that does nothing: why, and where to ask for a new one. Used and
/// expired links are gone (410); one we never made is not found (404).
fn refused_page(state: &State, refused: LinkRefused) -> HttpResponse {
    let ui = crate::http::ui::Ui::current();
    let links = Links::new(&state.settings.issuer_path);
    render(
        refused_status(refused),
        &RefusedPage {
            again: links.forgot_password(),
            again_label: ui.t("reset.send_new"),
            message: ui.t(refused_key(refused)),
            ui,
            links,
        },
    )
}

pub(super) fn refused_status(refused: LinkRefused) -> StatusCode {
    match refused {
        LinkRefused::Unknown => StatusCode::NOT_FOUND,
        LinkRefused::Used | LinkRefused::Expired => StatusCode::GONE,
    }
}

pub(super) fn refused_key(refused: LinkRefused) -> &'static str {
    match refused {
        LinkRefused::Unknown => "link.unknown",
        LinkRefused::Used => "link.used",
        LinkRefused::Expired => "link.expired",
    }
}

/// The language of the page, for the mail.
pub(super) fn mail_locale() -> Locale {
    Locale::from_tag(crate::http::ui::Ui::current().lang()).unwrap_or_default()
}

/// The absolute URL of a path of ours (a mail's link).
pub(super) fn absolute(state: &State, path: &str) -> String {
    let issuer = state.settings.issuer.trim_end_matches('/');
    let base = &state.settings.issuer_path;
    // `path` is below the issuer's path already (`Links`): join at the origin.
    format!(
        "{}{path}",
        issuer.strip_suffix(base.as_str()).unwrap_or(issuer)
    )
}

fn form_ok(req: &HttpRequest, state: &State, purpose: &str, handle: &str, csrf: &str) -> bool {
    from_our_pages(req, &state.settings)
        && known_browser(req, state).is_some_and(|browser| {
            constant_time_eq(
                form_token(state, purpose, handle, &browser).as_bytes(),
                csrf.as_bytes(),
            )
        })
}

fn unverified_form() -> PageError {
    OAuthError::invalid_request("the form could not be verified; reload the page and try again")
        .into()
}

pub async fn show_request(req: HttpRequest, state: State) -> HttpResponse {
    let (browser, new_cookie) = browser_id(&req, &state);
    let csrf = form_token(&state, FORGOT_FORM, "", &browser);
    let page = render(
        StatusCode::OK,
        &ForgotPage {
            ui: crate::http::ui::Ui::current(),
            links: Links::new(&state.settings.issuer_path),
            csrf: &csrf,
            sent: false,
            error: None,
        },
    );
    match new_cookie {
        Some(cookie) => with_cookie(page, &cookie),
        None => page,
    }
}

#[derive(Deserialize)]
pub struct RequestForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    email: String,
}

pub async fn submit_request(
    req: HttpRequest,
    form: web::Form<RequestForm>,
    state: State,
) -> HttpResponse {
    let settings = state.settings.clone();
    page_response(&settings, request_page(req, form.into_inner(), state).await)
}

async fn request_page(
    req: HttpRequest,
    form: RequestForm,
    state: State,
) -> Result<HttpResponse, PageError> {
    if !form_ok(&req, &state, FORGOT_FORM, "", &form.csrf) {
        return Err(unverified_form());
    }
    let address = client_address_of(&req, &state.settings);
    // Both counts are taken for every request, for an account or not: what the answer
    // says and when it comes depend on neither.
    let from_address = state
        .sessions
        .count_event("reset_address", &limit_key(&address), REQUEST_WINDOW)
        .await
        .map_err(OAuthError::from)?;
    let email = form.email.trim().to_lowercase();
    let for_account = state
        .sessions
        .count_event("reset_account", &token_hash(&email), REQUEST_WINDOW)
        .await
        .map_err(OAuthError::from)?;
    let ui = crate::http::ui::Ui::current();
    let browser = known_browser(&req, &state).unwrap_or_default();
    let csrf = form_token(&state, FORGOT_FORM, "", &browser);
    let links = Links::new(&state.settings.issuer_path);
    if from_address > state.settings.reset_requests_per_address
        || for_account > state.settings.reset_requests_per_account
    {
        return Ok(render(
            StatusCode::TOO_MANY_REQUESTS,
            &ForgotPage {
                ui,
                links,
                csrf: &csrf,
                sent: false,
                error: Some(crate::http::ui::Ui::current().t("reset.throttled")),
            },
        ));
    }
    // The work (finding the account, the link, the mail) runs after the answer: the
    // answer is the same, and as quick, whether an account has the address or not.
    let link_page = absolute(&state, &links.reset_password());
    let locale = mail_locale();
    let background = state.clone();
    actix_web::rt::spawn(async move {
        let done = blocking(&background, move |ctx| {
            reset::request(
                ctx,
                &ResetRequest {
                    email: &email,
                    locale,
                    link_page: &link_page,
                    address: &address,
                },
            )
        })
        .await;
        match done {
            Ok(sent) if sent > 0 => background.mail.wake(),
            Ok(_) => {}
            Err(error) => tracing::error!(error = %error, "a password reset request failed"),
        }
    });
    Ok(render(
        StatusCode::OK,
        &ForgotPage {
            ui,
            links,
            csrf: &csrf,
            sent: true,
            error: None,
        },
    ))
}

#[derive(Deserialize)]
pub struct LinkQuery {
    #[serde(default)]
    code: String,
}

/// The link's page: what it will do, and a button. Nothing is used or started here.
pub async fn show_link(
    req: HttpRequest,
    query: web::Query<LinkQuery>,
    state: State,
) -> HttpResponse {
    let settings = state.settings.clone();
    page_response(
        &settings,
        link_page(req, query.into_inner().code, state).await,
    )
}

async fn link_page(
    req: HttpRequest,
    code: String,
    state: State,
) -> Result<HttpResponse, PageError> {
    let lookup = code.clone();
    let opened = blocking(&state, move |ctx| reset::open(ctx, &lookup)).await?;
    let opened = match opened {
        Ok(opened) => opened,
        Err(refused) => return Ok(refused_page(&state, refused)),
    };
    let (browser, new_cookie) = browser_id(&req, &state);
    let csrf = form_token(&state, RESET_LINK_FORM, &opened.link_hash, &browser);
    let page = render(
        StatusCode::OK,
        &LinkPage {
            ui: crate::http::ui::Ui::current(),
            links: Links::new(&state.settings.issuer_path),
            csrf: &csrf,
            code: &code,
            username: &opened.user.username,
        },
    );
    Ok(match new_cookie {
        Some(cookie) => with_cookie(page, &cookie),
        None => page,
    })
}

#[derive(Deserialize)]
pub struct LinkForm {
    #[serde(default)]
    code: String,
    #[serde(default)]
    csrf: String,
}

/// The link's button: the reset begins in this browser, with the account's second
/// factors if it has any.
pub async fn use_link(req: HttpRequest, form: web::Form<LinkForm>, state: State) -> HttpResponse {
    let settings = state.settings.clone();
    page_response(&settings, begin(req, form.into_inner(), state).await)
}

async fn begin(req: HttpRequest, form: LinkForm, state: State) -> Result<HttpResponse, PageError> {
    let code = form.code;
    let lookup = code.clone();
    let opened = blocking(&state, move |ctx| reset::open(ctx, &lookup)).await?;
    let opened = match opened {
        Ok(opened) => opened,
        Err(refused) => return Ok(refused_page(&state, refused)),
    };
    if !form_ok(&req, &state, RESET_LINK_FORM, &opened.link_hash, &form.csrf) {
        return Err(unverified_form());
    }
    let Some(browser) = known_browser(&req, &state) else {
        return Err(unverified_form());
    };
    admit(&req, &state).await?;
    let mut pending = Interaction::for_reset(&opened.link_hash, &opened.user.id);
    pending.bind(&browser);
    let handle = random_token(24);
    check_factors(&req, &state, &handle, pending).await
}

/// Begins the check of the account's second factors (again, when the account gained
/// one since the last began), noting what it holds now.
async fn check_factors(
    req: &HttpRequest,
    state: &State,
    handle: &str,
    mut pending: Interaction,
) -> Result<HttpResponse, PageError> {
    let Some(reset) = pending.reset.clone() else {
        return Err(expired().into());
    };
    let mut check = SignIn::for_reset(
        &reset.user_id,
        &reset.link_hash,
        state.settings.mfa,
        throttle_limits(state),
        state.now(),
    );
    let answer = check.resume(&FormPorts::new(state, req, &pending)).await?;
    if let Some(reset) = pending.reset.as_mut() {
        reset.held = check.account_factors();
        reset.checked = false;
    }
    match answer {
        Answer::Success(passed) => checked(state, handle, pending, passed, false).await,
        Answer::Continue(_) => {
            pending.sign_in = Some(check);
            save(state, handle, &pending).await?;
            let links = Links::new(&state.settings.issuer_path);
            Ok(redirect(
                StatusCode::SEE_OTHER,
                &format!("{}?id={handle}", links.second_factor()),
            ))
        }
        Answer::Denied(_) => Ok(refused_page(state, LinkRefused::Unknown)),
    }
}

/// The account's second factors were passed (or it has none): the new password's form
/// is next. Called by the sign-in's completion for a reset (`login::complete`), which
/// never makes a session of it: a success that is not this reset's check is refused.
pub(super) async fn checked(
    state: &State,
    handle: &str,
    mut pending: Interaction,
    passed: Authenticated,
    stored: bool,
) -> Result<HttpResponse, PageError> {
    let Some(reset) = pending.reset.as_mut() else {
        return Err(expired().into());
    };
    let same_link = passed
        .resets
        .as_deref()
        .is_some_and(|h| constant_time_eq(h.as_bytes(), reset.link_hash.as_bytes()));
    if !same_link || passed.user_id != reset.user_id {
        return Err(expired().into());
    }
    reset.checked = true;
    pending.sign_in = None;
    if stored {
        save_if_present(state, handle, &pending).await?;
    } else {
        save(state, handle, &pending).await?;
    }
    let links = Links::new(&state.settings.issuer_path);
    Ok(redirect(
        StatusCode::SEE_OTHER,
        &format!("{}?id={handle}", links.reset_new_password()),
    ))
}

#[derive(Deserialize)]
pub struct PasswordQuery {
    id: String,
}

/// The pending reset of `handle` in this browser, checked, and the account it resets.
async fn checked_reset(
    req: &HttpRequest,
    state: &State,
    handle: &str,
) -> Result<Result<(Interaction, reset::Opened), HttpResponse>, PageError> {
    let pending = load(state, handle).await?;
    bound_browser(&pending, req, state).ok_or_else(other_browser)?;
    let Some(pending_reset) = pending.reset.clone() else {
        return Err(expired().into());
    };
    if !pending_reset.checked {
        // The second factor first.
        let links = Links::new(&state.settings.issuer_path);
        return Ok(Err(redirect(
            StatusCode::SEE_OTHER,
            &format!("{}?id={handle}", links.second_factor()),
        )));
    }
    let hash = pending_reset.link_hash.clone();
    let opened = blocking(state, move |ctx| reset::opened(ctx, &hash)).await?;
    match opened {
        Ok(opened) if opened.user.id == pending_reset.user_id => Ok(Ok((pending, opened))),
        Ok(_) => Ok(Err(refused_page(state, LinkRefused::Unknown))),
        Err(refused) => {
            take(state, handle).await?;
            Ok(Err(refused_page(state, refused)))
        }
    }
}

pub async fn show_password(
    req: HttpRequest,
    query: web::Query<PasswordQuery>,
    state: State,
) -> HttpResponse {
    let settings = state.settings.clone();
    let handle = query.into_inner().id;
    page_response(
        &settings,
        password_page(&req, &state, &handle, None, StatusCode::OK).await,
    )
}

async fn password_page(
    req: &HttpRequest,
    state: &State,
    handle: &str,
    error: Option<&str>,
    status: StatusCode,
) -> Result<HttpResponse, PageError> {
    let (pending, opened) = match checked_reset(req, state, handle).await? {
        Ok(found) => found,
        Err(response) => return Ok(response),
    };
    let browser = bound_browser(&pending, req, state).ok_or_else(other_browser)?;
    let csrf = form_token(state, RESET_FORM, handle, &browser);
    Ok(render(
        status,
        &PasswordPage {
            ui: crate::http::ui::Ui::current(),
            links: Links::new(&state.settings.issuer_path),
            csrf: &csrf,
            id: handle,
            username: &opened.user.username,
            error,
        },
    ))
}

#[derive(Deserialize)]
pub struct PasswordForm {
    id: String,
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    password_again: String,
}

pub async fn submit_password(
    req: HttpRequest,
    form: web::Form<PasswordForm>,
    state: State,
) -> HttpResponse {
    let settings = state.settings.clone();
    page_response(&settings, finish(req, form.into_inner(), state).await)
}

async fn finish(
    req: HttpRequest,
    form: PasswordForm,
    state: State,
) -> Result<HttpResponse, PageError> {
    let (pending, opened) = match checked_reset(&req, &state, &form.id).await? {
        Ok(found) => found,
        Err(response) => return Ok(response),
    };
    if !from_our_pages(&req, &state.settings)
        || !accepts(&pending, &req, &state, RESET_FORM, &form.id, &form.csrf)
    {
        return Err(unverified_form());
    }
    let address = client_address_of(&req, &state.settings);
    let (password, again) = (Secret::new(form.password), Secret::new(form.password_again));
    let locale = mail_locale();
    let Some(mut resetting) = pending.reset.clone() else {
        return Err(expired().into());
    };
    // The link and the account as checked just now (`checked_reset`).
    resetting.link_hash = opened.link_hash.clone();
    resetting.user_id = opened.user.id.clone();
    let done = blocking(&state, move |ctx| {
        reset::complete(ctx, &resetting, &password, &again, locale, &address)
    })
    .await?;
    let ui = crate::http::ui::Ui::current();
    match done {
        Ok(ended) => {
            // The password is set, the sessions ended and the notice queued (one
            // transaction): their records are forgotten and the mail woken first, so no
            // later failure skips them.
            state.mail.wake();
            crate::http::sign_out::forget(&state, &ended).await?;
            take(&state, &form.id).await?;
            let mut page = render(
                StatusCode::OK,
                &DonePage {
                    ui,
                    links: Links::new(&state.settings.issuer_path),
                },
            );
            // This browser's session, if it had one, ended with the others.
            let _ = page.add_cookie(&crate::http::cookies::expired_session_cookie(
                &state.settings,
            ));
            Ok(page)
        }
        Err(ResetRefused::Password(refused)) => {
            let message = match refused {
                NewPasswordRefused::Mismatch => ui.t("security.password_mismatch"),
                NewPasswordRefused::Rule(PasswordRuleError::Length) => {
                    ui.t("security.password_too_short")
                }
                NewPasswordRefused::Rule(PasswordRuleError::Guessable) => {
                    ui.t("security.password_guessable")
                }
            };
            password_page(
                &req,
                &state,
                &form.id,
                Some(message),
                StatusCode::BAD_REQUEST,
            )
            .await
        }
        Err(ResetRefused::Link(refused)) => {
            take(&state, &form.id).await?;
            Ok(refused_page(&state, refused))
        }
        // A factor enrolled since the check began: it is asked now, nothing was set.
        Err(ResetRefused::FactorsGained) => check_factors(&req, &state, &form.id, pending).await,
    }
}
