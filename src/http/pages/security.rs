//! The security page: how the account signs in. An authenticator app (added with a QR
//! code and its first code, or removed), recovery codes (a new set shown once), and the
//! passkeys (added with `static/passkey.js` and `pages::passkey`, named, renamed,
//! removed), and the password (changed: every session ends). Every change needs a
//! recent sign-in at the account's full strength
//! (`protocol::security`); without one the user confirms who they are first ("Confirm
//! it's you": a fresh sign-in), and comes back here.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use serde::Deserialize;

use super::render;
use crate::crypto::tokens::constant_time_eq;
use crate::domain::{PasswordRuleError, Secret, format_utc};
use crate::http::client_address::client_address_of;
use crate::http::cookies::known_browser;
use crate::http::csrf::form_token;
use crate::http::error::{PageError, page_response};
use crate::http::interaction::{redirect, start};
use crate::http::paths::Links;
use crate::http::state::{State, blocking};
use crate::protocol::interaction::Interaction;
use crate::protocol::security::{self, NewPasswordRefused};
use crate::protocol::sign_in::stored::Enrolment;
use crate::protocol::{ErrorCode, OAuthError, throttle};
use crate::sessions::SsoSession;
use crate::store::{FactorSummary, User};

/// The purpose of the page's form token (its forms and its passkey requests).
pub(super) const SECURITY_FORM: &str = "security-form";

struct PasskeyView {
    id: String,
    name: String,
    created: String,
    last_used: String,
}

#[derive(Template)]
#[template(path = "security.html")]
struct SecurityPage<'a> {
    ui: crate::http::ui::Ui,
    links: Links,
    csrf: &'a str,
    username: &'a str,
    /// `(added, last used)` of the authenticator app.
    totp: Option<(String, String)>,
    enrolment: Option<Enrolment>,
    /// "N recovery codes left."
    recovery_left: String,
    /// A new set of recovery codes, shown this once.
    new_codes: Vec<String>,
    passkeys: Vec<PasskeyView>,
    passkeys_enabled: bool,
    /// Second factors are offered (`mfa` is not `off`).
    mfa_on: bool,
    /// The session signed in recently enough, at the account's strength, to add a
    /// passkey or change the password now; otherwise the page offers to confirm who is
    /// there first.
    recent: bool,
    error: Option<&'a str>,
    notice: Option<&'a str>,
}

pub(super) use super::account::signed_in;
use super::account::signed_out_here;

/// What the page shows besides the factors themselves.
#[derive(Default)]
struct Extras<'a> {
    enrolment: Option<Enrolment>,
    new_codes: Vec<String>,
    error: Option<&'a str>,
    notice: Option<&'a str>,
}

async fn page(
    req: &HttpRequest,
    state: &State,
    session: &SsoSession,
    user: &User,
    status: StatusCode,
    extras: Extras<'_>,
) -> Result<HttpResponse, PageError> {
    let (user_id, check) = (user.id.clone(), session.clone());
    let (summary, recent): (FactorSummary, bool) = blocking(state, move |ctx| {
        Ok((
            ctx.store.factor_summary(&user_id)?,
            security::may_change_factors(ctx, &check)?,
        ))
    })
    .await?;
    let browser = known_browser(req, state).unwrap_or_default();
    let never = crate::http::ui::Ui::current().t("security.never");
    let when = |t: Option<i64>| t.map(format_utc).unwrap_or_else(|| never.to_owned());
    let totp = summary
        .totp
        .as_ref()
        .map(|t| (format_utc(t.created_at), when(t.last_used_at)));
    let passkeys = summary
        .passkeys
        .iter()
        .map(|p| PasskeyView {
            id: p.id.clone(),
            name: p.name.clone(),
            created: format_utc(p.created_at),
            last_used: when(p.last_used_at),
        })
        .collect();
    let passkeys_enabled = state.passkeys.is_some();
    let mut response = render(
        status,
        &SecurityPage {
            ui: crate::http::ui::Ui::current(),
            links: Links::new(&state.settings.issuer_path),
            csrf: &form_token(state, SECURITY_FORM, &session.sid, &browser),
            username: &user.username,
            totp,
            enrolment: extras.enrolment,
            recovery_left: crate::http::ui::Ui::current().fill(
                "security.recovery_left",
                &[("count", &summary.recovery_codes_left.to_string())],
            ),
            new_codes: extras.new_codes,
            passkeys,
            passkeys_enabled,
            recent,
            mfa_on: state.settings.mfa != crate::domain::MfaPolicy::Off,
            error: extras.error,
            notice: extras.notice,
        },
    );
    if passkeys_enabled && recent {
        crate::http::csp::allow_passkey_script(&mut response);
    }
    Ok(response)
}

pub async fn show(req: HttpRequest, state: State) -> HttpResponse {
    let settings = state.settings.clone();
    page_response(&settings, show_page(req, state).await)
}

async fn show_page(req: HttpRequest, state: State) -> Result<HttpResponse, PageError> {
    let Some((session, user)) = signed_in(&req, &state).await? else {
        return start(&req, &state, Interaction::for_account()).await;
    };
    page(
        &req,
        &state,
        &session,
        &user,
        StatusCode::OK,
        Extras::default(),
    )
    .await
}

#[derive(Deserialize)]
pub struct SecurityForm {
    #[serde(default)]
    csrf: String,
    /// `confirm` (sign in again first), `totp_begin`, `totp_confirm`, `totp_remove`,
    /// `recovery_new`, `passkey_rename`, `passkey_remove`, `password_change`.
    #[serde(default)]
    action: String,
    #[serde(default)]
    code: String,
    /// The sealed key of the enrolment the page showed (`totp_confirm`).
    #[serde(default)]
    pending: String,
    #[serde(default)]
    passkey: String,
    #[serde(default)]
    name: String,
    /// The new password, twice (`password_change`).
    #[serde(default)]
    password: String,
    #[serde(default)]
    password_again: String,
}

pub async fn submit(req: HttpRequest, form: web::Form<SecurityForm>, state: State) -> HttpResponse {
    let settings = state.settings.clone();
    page_response(&settings, submit_page(req, form.into_inner(), state).await)
}

async fn submit_page(
    req: HttpRequest,
    form: SecurityForm,
    state: State,
) -> Result<HttpResponse, PageError> {
    let refused = || OAuthError::invalid_request("the form could not be verified");
    let (session, user) = signed_in(&req, &state).await?.ok_or_else(refused)?;
    let expected =
        known_browser(&req, &state).map(|b| form_token(&state, SECURITY_FORM, &session.sid, &b));
    if !crate::http::csrf::from_our_pages(&req, &state.settings)
        || !expected.is_some_and(|e| constant_time_eq(e.as_bytes(), form.csrf.as_bytes()))
    {
        return Err(refused().into());
    }
    if form.action == "confirm" {
        // "Confirm it's you": a fresh sign-in, then back here.
        return start(&req, &state, Interaction::confirm_identity(&user.username)).await;
    }
    let check = session.clone();
    let recent = blocking(&state, move |ctx| security::may_change_factors(ctx, &check)).await?;
    if !recent {
        // Confirm who is there first; the change is made again from the page after.
        return start(&req, &state, Interaction::confirm_identity(&user.username)).await;
    }
    let address = client_address_of(&req, &state.settings);
    let ui = crate::http::ui::Ui::current();
    let issuer = state.settings.brand.name.clone();
    let mut extras = Extras::default();
    let mut status = StatusCode::OK;
    let who = user.clone();
    match form.action.as_str() {
        "totp_begin" => {
            extras.enrolment = blocking(&state, move |ctx| {
                security::begin_totp(ctx, &who, &issuer, None)
            })
            .await?;
        }
        "totp_confirm" => {
            // The code is a factor's code: counted like a sign-in's, before it is checked.
            let source = crate::http::client_address::limit_key(&address);
            let (for_account, from_address) = state
                .sessions
                .reserve_code("otp", &user.id, &source, throttle::WINDOW)
                .await
                .map_err(OAuthError::from)?;
            let attempts = throttle::CodeAttempts {
                for_account,
                from_address,
            };
            if !throttle::admits_code(attempts, state.settings.password_failures_per_address) {
                return Err(
                    OAuthError::new(ErrorCode::RateLimited, ui.t("factor.throttled")).into(),
                );
            }
            let (code, shown) = (form.code, form.pending.clone());
            let confirmed = blocking(&state, {
                let address = address.clone();
                move |ctx| security::confirm_totp(ctx, &who, &code, &shown, &address)
            })
            .await?;
            if confirmed {
                state
                    .sessions
                    .code_succeeded("otp", &user.id, &source, throttle::WINDOW)
                    .await
                    .map_err(OAuthError::from)?;
                extras.notice = Some(ui.t("security.totp_added"));
            } else {
                status = StatusCode::UNAUTHORIZED;
                extras.error = Some(ui.t("factor.wrong_code"));
                let (who, issuer, shown) = (
                    user.clone(),
                    state.settings.brand.name.clone(),
                    form.pending,
                );
                extras.enrolment = blocking(&state, move |ctx| {
                    security::begin_totp(ctx, &who, &issuer, Some(&shown))
                })
                .await?;
            }
        }
        "totp_remove" => {
            blocking(&state, move |ctx| {
                security::remove_totp(ctx, &who, &address)
            })
            .await?;
            extras.notice = Some(ui.t("security.totp_removed"));
        }
        "recovery_new" => {
            let codes = blocking(&state, move |ctx| {
                security::new_recovery_codes(ctx, &who, &address)
            })
            .await?;
            extras.new_codes = codes.to_vec();
        }
        "passkey_rename" | "passkey_remove" => {
            let (id, name, remove) = (form.passkey, form.name, form.action == "passkey_remove");
            let done = blocking(&state, move |ctx| {
                if remove {
                    security::remove_passkey(ctx, &who, &id, &address)
                } else {
                    security::rename_passkey(ctx, &who, &id, &name)
                }
            })
            .await?;
            if !done {
                return Err(OAuthError::invalid_request("no such passkey").into());
            }
        }
        "password_change" => {
            let (password, again) = (Secret::new(form.password), Secret::new(form.password_again));
            let changed = blocking(&state, move |ctx| {
                security::change_password(ctx, &who, &password, &again, &address)
            })
            .await?;
            match changed {
                Ok(ended) => {
                    // Every session of the user ended, this one too: sign in again.
                    crate::http::sign_out::forget(&state, &ended).await?;
                    let message = ui.t("security.password_changed");
                    return signed_out_here(&state, &ended, &session.sid, Some(message)).await;
                }
                Err(refused) => {
                    status = StatusCode::BAD_REQUEST;
                    extras.error = Some(match refused {
                        NewPasswordRefused::Mismatch => ui.t("security.password_mismatch"),
                        NewPasswordRefused::Rule(PasswordRuleError::Length) => {
                            ui.t("security.password_too_short")
                        }
                        NewPasswordRefused::Rule(PasswordRuleError::Guessable) => {
                            ui.t("security.password_guessable")
                        }
                    });
                }
            }
        }
        _ => return Err(OAuthError::invalid_request("unknown action").into()),
    }
    if extras.enrolment.is_none() && extras.new_codes.is_empty() && extras.error.is_none() {
        // A change made: back to the page (a reload does not post it again).
        if extras.notice.is_none() {
            return Ok(redirect(
                StatusCode::SEE_OTHER,
                &Links::new(&state.settings.issuer_path).security(),
            ));
        }
    }
    page(&req, &state, &session, &user, status, extras).await
}
