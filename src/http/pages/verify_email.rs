//! Email verification (issue 23 §2), as pages: the account page's "Verify your address"
//! and change of address (each sends a link), and the link's page (what it will do, and
//! a button: mail scanners fetch every link, so GET does nothing). `protocol::verification`
//! does the work.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use serde::Deserialize;

use super::account::{ACCOUNT_FORM, signed_in};
use super::render;
use super::reset::{RefusedPage, absolute, mail_locale, refused_key, refused_status};
use crate::crypto::tokens::{constant_time_eq, token_hash};
use crate::http::client_address::client_address_of;
use crate::http::cookies::{browser_id, known_browser};
use crate::http::csrf::{form_token, from_our_pages};
use crate::http::error::{PageError, page_response};
use crate::http::interaction::{start, with_cookie};
use crate::http::paths::Links;
use crate::http::state::{State, blocking};
use crate::protocol::OAuthError;
use crate::protocol::interaction::Interaction;
use crate::protocol::links::{LinkPurpose, LinkRefused};
use crate::protocol::security::may_change_factors;
use crate::protocol::verification::{self, Delivery, Sent, Verified};

const VERIFY_FORM: &str = "verify-email-form";

/// The window of the verification and change mails' counts.
const VERIFY_WINDOW: std::time::Duration = std::time::Duration::from_secs(3600);

#[derive(Template)]
#[template(path = "verify_email.html")]
struct LinkPage<'a> {
    ui: crate::http::ui::Ui,
    links: Links,
    csrf: &'a str,
    code: &'a str,
    email: &'a str,
    /// "Account: NAME": the account the link acts on, so that whoever did not ask for
    /// it knows not to confirm.
    account: String,
    /// A change of address (else a verification of the address the account has).
    change: bool,
}

#[derive(Template)]
#[template(path = "notice.html")]
struct NoticePage<'a> {
    ui: crate::http::ui::Ui,
    links: Links,
    title: &'static str,
    message: &'a str,
}

fn refused_page(state: &State, refused: LinkRefused) -> HttpResponse {
    let ui = crate::http::ui::Ui::current();
    let links = Links::new(&state.settings.issuer_path);
    render(
        refused_status(refused),
        &RefusedPage {
            again: links.account(),
            again_label: ui.t("verify.send_new"),
            message: ui.t(refused_key(refused)),
            ui,
            links,
        },
    )
}

fn notice(state: &State, status: StatusCode, title: &'static str, message: &str) -> HttpResponse {
    render(
        status,
        &NoticePage {
            ui: crate::http::ui::Ui::current(),
            links: Links::new(&state.settings.issuer_path),
            title,
            message,
        },
    )
}

#[derive(Deserialize)]
pub struct EmailForm {
    #[serde(default)]
    csrf: String,
    /// `verify`: a link to the address the account has; else a change to `email`.
    #[serde(default)]
    action: String,
    #[serde(default)]
    email: String,
}

/// The account page's email forms: each sends a link, and says where.
pub async fn request(req: HttpRequest, form: web::Form<EmailForm>, state: State) -> HttpResponse {
    let settings = state.settings.clone();
    page_response(&settings, request_page(req, form.into_inner(), state).await)
}

async fn request_page(
    req: HttpRequest,
    form: EmailForm,
    state: State,
) -> Result<HttpResponse, PageError> {
    let refused = || OAuthError::invalid_request("the form could not be verified");
    let (session, user) = signed_in(&req, &state).await?.ok_or_else(refused)?;
    let expected =
        known_browser(&req, &state).map(|b| form_token(&state, ACCOUNT_FORM, &session.sid, &b));
    if !from_our_pages(&req, &state.settings)
        || !expected.is_some_and(|e| constant_time_eq(e.as_bytes(), form.csrf.as_bytes()))
    {
        return Err(refused().into());
    }
    let change = form.action != "verify";
    if change {
        // A new address is a way to reset the password: it asks, like a new factor,
        // for a recent sign-in at the account's full strength.
        let check = session.clone();
        if !blocking(&state, move |ctx| may_change_factors(ctx, &check)).await? {
            return start(&req, &state, Interaction::confirm_identity(&user.username)).await;
        }
    }
    // A mail per request: bounded per account and per address it goes to (the same
    // bound as reset requests per address), so that neither a signed-in intruder nor a
    // script floods a mailbox, someone else's or the account's own.
    let target = if change {
        form.email.trim().to_lowercase()
    } else {
        user.email.as_deref().unwrap_or_default().to_lowercase()
    };
    let per_account = state
        .sessions
        .count_event("verify_account", &token_hash(&user.id), VERIFY_WINDOW)
        .await
        .map_err(OAuthError::from)?;
    let per_target = state
        .sessions
        .count_event("verify_address", &token_hash(&target), VERIFY_WINDOW)
        .await
        .map_err(OAuthError::from)?;
    let limit = state.settings.reset_requests_per_account;
    if per_account > limit || per_target > limit {
        let ui = crate::http::ui::Ui::current();
        return Ok(notice(
            &state,
            StatusCode::TOO_MANY_REQUESTS,
            "verify.title",
            ui.t("verify.throttled"),
        ));
    }
    let link_page = absolute(
        &state,
        &Links::new(&state.settings.issuer_path).verify_email(),
    );
    let address = client_address_of(&req, &state.settings);
    let locale = mail_locale();
    let (who, email) = (user.clone(), form.email.clone());
    let sent = blocking(&state, move |ctx| {
        let delivery = Delivery {
            locale,
            link_page: &link_page,
            address: &address,
        };
        if change {
            verification::request_change(ctx, &who, &email, &delivery)
        } else {
            verification::send_verification(ctx, &who, &delivery)
        }
    })
    .await?;
    let ui = crate::http::ui::Ui::current();
    Ok(match sent {
        Sent::Link => {
            state.mail.wake();
            let to = if change {
                form.email.trim()
            } else {
                user.email.as_deref().unwrap_or_default()
            };
            let message = ui.fill("verify.sent", &[("email", to)]);
            notice(&state, StatusCode::OK, "verify.sent_title", &message)
        }
        Sent::Nothing => notice(
            &state,
            StatusCode::OK,
            "verify.title",
            ui.t("verify.nothing"),
        ),
        Sent::Invalid => notice(
            &state,
            StatusCode::BAD_REQUEST,
            "verify.title",
            ui.t("verify.invalid"),
        ),
    })
}

#[derive(Deserialize)]
pub struct LinkQuery {
    #[serde(default)]
    code: String,
}

/// The link's page: what it will do, and a button. Nothing is used here.
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
    let pending = match blocking(&state, move |ctx| verification::look(ctx, &lookup)).await? {
        Ok(pending) => pending,
        Err(refused) => return Ok(refused_page(&state, refused)),
    };
    let (browser, new_cookie) = browser_id(&req, &state);
    let csrf = form_token(&state, VERIFY_FORM, &token_hash(&code), &browser);
    let ui = crate::http::ui::Ui::current();
    let account = ui.fill("verify.account", &[("username", &pending.username)]);
    let page = render(
        StatusCode::OK,
        &LinkPage {
            ui,
            links: Links::new(&state.settings.issuer_path),
            csrf: &csrf,
            code: &code,
            email: &pending.email,
            account,
            change: pending.purpose == LinkPurpose::EmailChange,
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

/// The link's button: the address is verified (and, for a change, becomes the account's).
pub async fn use_link(req: HttpRequest, form: web::Form<LinkForm>, state: State) -> HttpResponse {
    let settings = state.settings.clone();
    page_response(&settings, verify(req, form.into_inner(), state).await)
}

async fn verify(req: HttpRequest, form: LinkForm, state: State) -> Result<HttpResponse, PageError> {
    let csrf_ok = from_our_pages(&req, &state.settings)
        && known_browser(&req, &state).is_some_and(|browser| {
            constant_time_eq(
                form_token(&state, VERIFY_FORM, &token_hash(&form.code), &browser).as_bytes(),
                form.csrf.as_bytes(),
            )
        });
    if !csrf_ok {
        return Err(OAuthError::invalid_request(
            "the form could not be verified; open the link from the mail again",
        )
        .into());
    }
    let address = client_address_of(&req, &state.settings);
    let code = form.code;
    let locale = mail_locale();
    let done = blocking(&state, move |ctx| {
        verification::verify(ctx, &code, &address, locale)
    })
    .await?;
    let ui = crate::http::ui::Ui::current();
    Ok(match done {
        Ok(Verified::Address { email }) | Ok(Verified::Changed { email }) => {
            // A change's notice to the old address.
            state.mail.wake();
            let message = ui.fill("verify.done", &[("email", &email)]);
            notice(&state, StatusCode::OK, "verify.done_title", &message)
        }
        Err(refused) => refused_page(&state, refused),
    })
}
