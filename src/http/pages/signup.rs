//! Accounts people make themselves (issue 23 §4), `protocol::signup` decides:
//!
//! - `/signup` (`signup = open`): "Create an account" from the login page. The form
//!   (username, email, password twice) is throttled per client address
//!   (`signups_per_address` an hour); its answer is "check your mail" whether or not the
//!   address has an account.
//! - `/signup/verify?token=`: the sign-up's mailed link. GET asks for a click, POST
//!   creates the account.
//! - `/signup/invitation?token=`: an invitation's link. GET shows the form (username,
//!   password twice), POST creates the account. With passkeys on, the page's script may
//!   make the account with a passkey instead (`passkey::invitation`).
//!
//! GET never acts: mail scanners fetch links. Every form carries a CSRF token bound to
//! this browser (and to the link), and is checked against our pages' origin. Once the
//! account exists the person is sent to sign in rather than signed in here: the sign-in
//! is where the second-factor policy (`mfa = required` enrols a factor), the throttle and
//! the session's `amr` are decided, and a mailed link alone is not a sign-in.

use std::time::Duration;

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use serde::Deserialize;

use super::render;
use crate::crypto::tokens::constant_time_eq;
use crate::domain::{PasswordRuleError, Secret};
use crate::http::client_address::{client_address_of, limit_key};
use crate::http::cookies::{browser_id, known_browser};
use crate::http::csrf::{form_token, from_our_pages};
use crate::http::error::{PageError, page_response};
use crate::http::interaction::with_cookie;
use crate::http::paths::{Links, signup as paths};
use crate::http::state::{State, blocking};
use crate::http::ui::Ui;
use crate::mail::Locale;
use crate::protocol::OAuthError;
use crate::protocol::links::LinkRefused;
use crate::protocol::signup::{self, Choice, FormProblem, Refused, Registration, Request};

/// The window of `signups_per_address`.
const SIGNUP_WINDOW: Duration = Duration::from_secs(3600);
/// Sign-up forms naming one address, from anywhere, in [`SIGNUP_WINDOW`]: more than a
/// person retrying, fewer than a flood of mails.
const SIGNUPS_PER_RECIPIENT: i64 = 5;
const SIGNUP_FORM: &str = "signup-form";
/// The invitation form's token also binds its passkey requests (`passkey::invitation`).
pub(crate) const INVITATION_FORM: &str = "invitation-form";
const VERIFY_FORM: &str = "signup-verify-form";

/// The form of `/signup` and of an invitation.
#[derive(Template)]
#[template(path = "signup.html")]
struct FormPage<'a> {
    ui: Ui,
    links: Links,
    title: &'a str,
    lead: Option<String>,
    /// Where the form posts.
    action: String,
    csrf: &'a str,
    /// The invitation's token (hidden), or the sign-in the sign-up came from (`id`).
    token: Option<&'a str>,
    id: Option<&'a str>,
    /// An editable address (open sign-up); an invitation's is fixed.
    ask_email: bool,
    username: &'a str,
    email: &'a str,
    error: Option<&'a str>,
    submit: &'a str,
    /// An invitation's page offers a passkey instead of a password, when passkeys are on.
    passkey: bool,
}

/// A page that says something and offers one thing to do: a link, or a button posting
/// `token` (the sign-up link's confirmation).
#[derive(Template)]
#[template(path = "signup_message.html")]
struct MessagePage<'a> {
    ui: Ui,
    links: Links,
    title: &'a str,
    body: String,
    then: Option<&'a str>,
    link: Option<(String, &'a str)>,
    confirm: Option<Confirm<'a>>,
}

struct Confirm<'a> {
    action: String,
    csrf: &'a str,
    token: &'a str,
    label: &'a str,
    /// Asks for the password chosen in the sign-up form (its label), to prove that
    /// whoever confirms is whoever registered.
    password: Option<&'a str>,
}

#[derive(Deserialize)]
pub struct LinkQuery {
    #[serde(default)]
    token: String,
}

#[derive(Deserialize)]
pub struct FormQuery {
    id: Option<String>,
}

#[derive(Deserialize)]
pub struct SignupForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    token: String,
    id: Option<String>,
    #[serde(default)]
    username: String,
    #[serde(default)]
    email: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    password_confirmation: String,
}

fn links(state: &State) -> Links {
    Links::new(&state.settings.issuer_path)
}

/// The page with the browser cookie its form's token is bound to, when it is new.
fn with_browser(
    response: HttpResponse,
    cookie: Option<actix_web::cookie::Cookie<'static>>,
) -> HttpResponse {
    match cookie {
        Some(c) => with_cookie(response, &c),
        None => response,
    }
}

/// Both CSRF defences of a signed-out form: posted from our pages, with the token of
/// `purpose` and `handle` bound to this browser.
fn verified(
    req: &HttpRequest,
    state: &State,
    purpose: &str,
    handle: &str,
    csrf: &str,
) -> Result<(), PageError> {
    let expected = known_browser(req, state).map(|b| form_token(state, purpose, handle, &b));
    if !from_our_pages(req, &state.settings)
        || !expected.is_some_and(|e| constant_time_eq(e.as_bytes(), csrf.as_bytes()))
    {
        return Err(OAuthError::invalid_request("the form could not be verified").into());
    }
    Ok(())
}

fn choice(form: &SignupForm) -> Choice {
    Choice {
        username: form.username.clone(),
        password: Secret::new(form.password.clone()),
        confirmation: Secret::new(form.password_confirmation.clone()),
    }
}

/// What the form says about `refused`, and with which status.
fn form_error(refused: Refused) -> (StatusCode, &'static str) {
    let ui = Ui::current();
    match refused {
        Refused::UsernameTaken => (StatusCode::CONFLICT, ui.t("signup.error.username_taken")),
        Refused::Form(problem) => (
            StatusCode::BAD_REQUEST,
            ui.t(match problem {
                FormProblem::Username => "signup.error.username",
                FormProblem::Email => "signup.error.email",
                FormProblem::PasswordsDiffer => "signup.error.passwords_differ",
                FormProblem::Password(PasswordRuleError::Length) => "signup.error.password_length",
                FormProblem::Password(PasswordRuleError::Guessable) => {
                    "signup.error.password_guessable"
                }
            }),
        ),
        // The others are pages of their own (`refusal_page`).
        Refused::Closed | Refused::Link(_) | Refused::WrongPassword => {
            (StatusCode::BAD_REQUEST, ui.t("error.generic"))
        }
    }
}

/// The page of a link that does nothing, or of sign-up that is closed: what happened,
/// and what to do. 404 for what is not there, 410 for what is spent, 409 for a name
/// taken meanwhile.
fn refusal_page(state: &State, refused: Refused, invitation: bool) -> HttpResponse {
    let ui = Ui::current();
    let links = links(state);
    let open = state.settings.signup.open();
    let (status, title, body) = match refused {
        Refused::Closed => (
            StatusCode::NOT_FOUND,
            "signup.closed.title",
            "signup.closed.body",
        ),
        Refused::Link(LinkRefused::Unknown) => (
            StatusCode::NOT_FOUND,
            "signup.link.unknown.title",
            "signup.link.unknown.body",
        ),
        Refused::Link(LinkRefused::Used) => (
            StatusCode::GONE,
            "signup.link.used.title",
            "signup.link.used.body",
        ),
        Refused::Link(LinkRefused::Expired) => (
            StatusCode::GONE,
            "signup.link.expired.title",
            "signup.link.expired.body",
        ),
        Refused::UsernameTaken => (
            StatusCode::CONFLICT,
            "signup.taken.title",
            "signup.taken.body",
        ),
        Refused::WrongPassword => (
            StatusCode::UNAUTHORIZED,
            "signup.verify.wrong_password.title",
            "signup.verify.wrong_password.body",
        ),
        Refused::Form(_) => (StatusCode::BAD_REQUEST, "error.title", "error.generic"),
    };
    // What to do next: a new invitation comes from whoever sent it; a new sign-up link
    // from the form, when sign-up is open; a spent link may have made the account.
    let then = match (refused, invitation) {
        (Refused::Closed, _) => None,
        (_, true) => Some(ui.t("signup.link.invitation_again")),
        (_, false) => None,
    };
    let link = match refused {
        Refused::Link(LinkRefused::Used) => Some((links.account(), ui.t("signup.done.sign_in"))),
        Refused::Closed => None,
        _ if open && !invitation => Some((links.signup(), ui.t("signup.link.sign_up_again"))),
        _ => None,
    };
    render(
        status,
        &MessagePage {
            ui: ui.clone(),
            links,
            title: ui.t(title),
            body: ui.t(body).to_owned(),
            then,
            link,
            confirm: None,
        },
    )
}

/// The account exists: sign in to use it.
fn done_page(state: &State, username: &str) -> HttpResponse {
    let ui = Ui::current();
    let links = links(state);
    render(
        StatusCode::OK,
        &MessagePage {
            ui: ui.clone(),
            title: ui.t("signup.done.title"),
            body: ui.fill("signup.done.body", &[("username", username)]),
            then: None,
            link: Some((links.account(), ui.t("signup.done.sign_in"))),
            confirm: None,
            links,
        },
    )
}

// ---- /signup ----

pub async fn show_form(
    req: HttpRequest,
    query: web::Query<FormQuery>,
    state: State,
) -> HttpResponse {
    if !state.settings.signup.open() {
        return refusal_page(&state, Refused::Closed, false);
    }
    let (browser, cookie) = browser_id(&req, &state);
    let csrf = form_token(&state, SIGNUP_FORM, "", &browser);
    let response = signup_form(
        &state,
        &csrf,
        query.id.as_deref(),
        "",
        "",
        None,
        StatusCode::OK,
    );
    with_browser(response, cookie)
}

fn signup_form(
    state: &State,
    csrf: &str,
    id: Option<&str>,
    username: &str,
    email: &str,
    error: Option<&str>,
    status: StatusCode,
) -> HttpResponse {
    let ui = Ui::current();
    let links = links(state);
    render(
        status,
        &FormPage {
            ui: ui.clone(),
            action: links.signup(),
            links,
            title: ui.t("signup.title"),
            lead: None,
            csrf,
            token: None,
            id,
            ask_email: true,
            username,
            email,
            error,
            submit: ui.t("signup.submit"),
            passkey: false,
        },
    )
}

pub async fn submit_form(
    req: HttpRequest,
    form: web::Form<SignupForm>,
    state: State,
) -> HttpResponse {
    let settings = state.settings.clone();
    page_response(
        &settings,
        submit_form_page(req, form.into_inner(), state).await,
    )
}

async fn submit_form_page(
    req: HttpRequest,
    form: SignupForm,
    state: State,
) -> Result<HttpResponse, PageError> {
    if !state.settings.signup.open() {
        return Ok(refusal_page(&state, Refused::Closed, false));
    }
    verified(&req, &state, SIGNUP_FORM, "", &form.csrf)?;
    let address = client_address_of(&req, &state.settings);
    let id = form.id.clone().filter(|id| !id.is_empty());
    let again = |error: &str, status| {
        signup_form(
            &state,
            &form.csrf,
            id.as_deref(),
            &form.username,
            &form.email,
            Some(error),
            status,
        )
    };
    // Counted before anything is checked: every form sent counts.
    let recent = state
        .sessions
        .count_event("signup", &limit_key(&address), SIGNUP_WINDOW)
        .await
        .map_err(OAuthError::from)?;
    // And per address typed, whether or not an account has it (so the limit says
    // nothing): many client addresses must not flood one mailbox.
    let typed = form.email.trim().to_lowercase();
    let for_recipient = state
        .sessions
        .count_event(
            "signup_recipient",
            &crate::crypto::tokens::token_hash(&typed),
            SIGNUP_WINDOW,
        )
        .await
        .map_err(OAuthError::from)?;
    if recent > state.settings.signups_per_address || for_recipient > SIGNUPS_PER_RECIPIENT {
        return Ok(again(
            Ui::current().t("signup.error.throttled"),
            StatusCode::TOO_MANY_REQUESTS,
        ));
    }
    let registration = Registration {
        choice: choice(&form),
        email: form.email.clone(),
    };
    let locale = Locale::from_tag(Ui::current().lang()).unwrap_or_default();
    let issuer = state.settings.issuer.clone();
    let mode = state.settings.signup;
    let outcome = blocking(&state, move |ctx| {
        let link_for = |token: &str| paths::link(&issuer, paths::VERIFY, token);
        let request = Request {
            locale,
            link_for: &link_for,
            address: Some(&address),
        };
        signup::register(ctx, mode, &registration, &request)
    })
    .await?;
    match outcome {
        Ok(queued) => {
            if queued {
                state.mail.wake();
            }
            let ui = Ui::current();
            let links = links(&state);
            let back = id.as_deref().map(|id| {
                (
                    format!("{}?id={}", links.login(), urlencoding(id)),
                    ui.t("signup.back_to_sign_in"),
                )
            });
            Ok(render(
                StatusCode::OK,
                &MessagePage {
                    ui: ui.clone(),
                    title: ui.t("signup.check_mail.title"),
                    body: ui.t("signup.check_mail.body").to_owned(),
                    then: Some(ui.t("signup.check_mail.then")),
                    link: back,
                    confirm: None,
                    links,
                },
            ))
        }
        Err(Refused::Closed) => Ok(refusal_page(&state, Refused::Closed, false)),
        Err(refused) => {
            let (status, message) = form_error(refused);
            Ok(again(message, status))
        }
    }
}

/// A query value, percent-encoded.
fn urlencoding(value: &str) -> String {
    url::form_urlencoded::byte_serialize(value.as_bytes()).collect()
}

// ---- /signup/verify ----

pub async fn show_verify(
    req: HttpRequest,
    query: web::Query<LinkQuery>,
    state: State,
) -> HttpResponse {
    let settings = state.settings.clone();
    page_response(
        &settings,
        show_verify_page(req, query.into_inner(), state).await,
    )
}

async fn show_verify_page(
    req: HttpRequest,
    query: LinkQuery,
    state: State,
) -> Result<HttpResponse, PageError> {
    let mode = state.settings.signup;
    let token = query.token.clone();
    let link = blocking(&state, move |ctx| {
        signup::look_up_sign_up(ctx, mode, &token)
    })
    .await?;
    let link = match link {
        Ok(link) => link,
        Err(refused) => return Ok(refusal_page(&state, refused, false)),
    };
    let (browser, cookie) = browser_id(&req, &state);
    let csrf = form_token(&state, VERIFY_FORM, &query.token, &browser);
    let ui = Ui::current();
    let links = links(&state);
    let response = render(
        StatusCode::OK,
        &MessagePage {
            ui: ui.clone(),
            title: ui.t("signup.verify.title"),
            body: ui.fill("signup.verify.body", &[("email", &link.email)]),
            then: None,
            link: None,
            confirm: Some(Confirm {
                action: links.signup_verify(),
                csrf: &csrf,
                token: &query.token,
                label: ui.t("signup.verify.submit"),
                password: Some(ui.t("signup.verify.password")),
            }),
            links,
        },
    );
    Ok(with_browser(response, cookie))
}

pub async fn submit_verify(
    req: HttpRequest,
    form: web::Form<SignupForm>,
    state: State,
) -> HttpResponse {
    let settings = state.settings.clone();
    page_response(
        &settings,
        submit_verify_page(req, form.into_inner(), state).await,
    )
}

async fn submit_verify_page(
    req: HttpRequest,
    form: SignupForm,
    state: State,
) -> Result<HttpResponse, PageError> {
    verified(&req, &state, VERIFY_FORM, &form.token, &form.csrf)?;
    let address = client_address_of(&req, &state.settings);
    let mode = state.settings.signup;
    let (token, password) = (form.token.clone(), Secret::new(form.password.clone()));
    let outcome = blocking(&state, move |ctx| {
        signup::complete_sign_up(ctx, mode, &token, &password, Some(&address))
    })
    .await?;
    Ok(match outcome {
        Ok(user) => done_page(&state, &user.username),
        Err(refused) => refusal_page(&state, refused, false),
    })
}

// ---- /signup/invitation ----

pub async fn show_invitation(
    req: HttpRequest,
    query: web::Query<LinkQuery>,
    state: State,
) -> HttpResponse {
    let settings = state.settings.clone();
    page_response(
        &settings,
        show_invitation_page(req, query.into_inner(), state).await,
    )
}

async fn show_invitation_page(
    req: HttpRequest,
    query: LinkQuery,
    state: State,
) -> Result<HttpResponse, PageError> {
    let mode = state.settings.signup;
    let token = query.token.clone();
    let link = blocking(&state, move |ctx| {
        signup::look_up_invitation(ctx, mode, &token)
    })
    .await?;
    let link = match link {
        Ok(link) => link,
        Err(refused) => return Ok(refusal_page(&state, refused, true)),
    };
    let (browser, cookie) = browser_id(&req, &state);
    let csrf = form_token(&state, INVITATION_FORM, &query.token, &browser);
    let response = invitation_form(
        &state,
        &csrf,
        &query.token,
        &link.email,
        "",
        None,
        StatusCode::OK,
    );
    Ok(with_browser(response, cookie))
}

fn invitation_form(
    state: &State,
    csrf: &str,
    token: &str,
    email: &str,
    username: &str,
    error: Option<&str>,
    status: StatusCode,
) -> HttpResponse {
    let ui = Ui::current();
    let links = links(state);
    let passkey = state.passkeys.is_some();
    let mut response = render(
        status,
        &FormPage {
            ui: ui.clone(),
            action: links.signup_invitation(),
            links,
            title: ui.t("signup.invitation.title"),
            lead: Some(ui.fill("signup.invitation.lead", &[("email", email)])),
            csrf,
            token: Some(token),
            id: None,
            ask_email: false,
            username,
            email,
            error,
            submit: ui.t("signup.invitation.submit"),
            passkey,
        },
    );
    if passkey {
        crate::http::csp::allow_passkey_script(&mut response);
    }
    response
}

pub async fn submit_invitation(
    req: HttpRequest,
    form: web::Form<SignupForm>,
    state: State,
) -> HttpResponse {
    let settings = state.settings.clone();
    page_response(
        &settings,
        submit_invitation_page(req, form.into_inner(), state).await,
    )
}

async fn submit_invitation_page(
    req: HttpRequest,
    form: SignupForm,
    state: State,
) -> Result<HttpResponse, PageError> {
    verified(&req, &state, INVITATION_FORM, &form.token, &form.csrf)?;
    let address = client_address_of(&req, &state.settings);
    let mode = state.settings.signup;
    let token = form.token.clone();
    let chosen = choice(&form);
    let outcome = blocking(&state, move |ctx| {
        let accepted = signup::accept_invitation(ctx, mode, &token, &chosen, Some(&address))?;
        // The address, for a form shown again.
        let email = match &accepted {
            Err(Refused::Form(_) | Refused::UsernameTaken) => {
                signup::look_up_invitation(ctx, mode, &token)?
                    .ok()
                    .map(|l| l.email)
            }
            _ => None,
        };
        Ok((accepted, email))
    })
    .await?;
    Ok(match outcome {
        (Ok(user), _) => done_page(&state, &user.username),
        (Err(refused @ (Refused::Form(_) | Refused::UsernameTaken)), Some(email)) => {
            let (status, message) = form_error(refused);
            invitation_form(
                &state,
                &form.csrf,
                &form.token,
                &email,
                &form.username,
                Some(message),
                status,
            )
        }
        (Err(refused), _) => refusal_page(&state, refused, true),
    })
}

pub fn configure(cfg: &mut web::ServiceConfig) {
    use crate::http::routes::at;
    cfg.service(at(paths::FORM).get(show_form).post(submit_form).done())
        .service(
            at(paths::VERIFY)
                .get(show_verify)
                .post(submit_verify)
                .done(),
        )
        .service(
            at(paths::INVITATION)
                .get(show_invitation)
                .post(submit_invitation)
                .done(),
        );
}
