//! The second step of a sign-in: a second factor (a one-time code, a recovery code, a
//! passkey), the enrolment of one when the account must have one, or the step-up of a
//! session to a higher level. It renders what `protocol::sign_in` asks next and posts the
//! answers to it; the sign-in waits with its interaction in between.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use serde::Deserialize;

use super::login::complete;
use super::render;
use super::sign_in_ports::FormPorts;
use crate::domain::Secret;
use crate::http::client_address::client_address_of;
use crate::http::csrf::form_token;
use crate::http::error::{PageError, page_response};
use crate::http::interaction::{accepts, bound_browser, load, save, save_if_present};
use crate::http::paths::Links;
use crate::http::state::{State, blocking};
use crate::protocol::interaction::{FACTOR_FORM, Interaction, expired, other_browser};
use crate::protocol::sign_in::stored::{self, Enrolment};
use crate::protocol::sign_in::{Answer, CodeKind, Denied, Factor, Next, SignIn};
use crate::protocol::{ErrorCode, OAuthError};

#[derive(Template)]
#[template(path = "factor.html")]
struct FactorPage<'a> {
    ui: crate::http::ui::Ui,
    links: Links,
    id: &'a str,
    csrf: &'a str,
    client_name: &'a str,
    /// `otp`, `recovery`, `passkey` or `enrol`.
    shown: &'static str,
    enrolment: Option<Enrolment>,
    /// Links to the other factors: `(href, label)`.
    others: Vec<(String, &'static str)>,
    error: Option<&'a str>,
    /// This server has passkeys (`passkey` is shown with its button).
    passkeys_enabled: bool,
}

#[derive(Deserialize)]
pub struct FactorQuery {
    pub id: String,
    /// The factor chosen among those offered (`otp`, `recovery`, `passkey`).
    #[serde(default)]
    pub factor: Option<String>,
}

fn factor_name(factor: Factor) -> &'static str {
    match factor {
        Factor::OneTimeCode => "otp",
        Factor::RecoveryCode => "recovery",
        Factor::Passkey => "passkey",
        Factor::Password => "password",
        Factor::Upstream => "upstream",
    }
}

fn link_label(factor: Factor) -> &'static str {
    match factor {
        Factor::OneTimeCode => "factor.use_otp",
        Factor::RecoveryCode => "factor.use_recovery",
        Factor::Passkey | Factor::Password | Factor::Upstream => "factor.use_passkey",
    }
}

pub async fn show(req: HttpRequest, query: web::Query<FactorQuery>, state: State) -> HttpResponse {
    let settings = state.settings.clone();
    page_response(&settings, show_page(req, query.into_inner(), state).await)
}

async fn show_page(
    req: HttpRequest,
    query: FactorQuery,
    state: State,
) -> Result<HttpResponse, PageError> {
    let mut pending = load(&state, &query.id).await?;
    bound_browser(&pending, &req, &state).ok_or_else(other_browser)?;
    let Some(mut sign_in) = pending.sign_in.take() else {
        return Ok(to_login(&state, &query.id));
    };
    // A fresh look at the account: a step-up starts here, and a factor added or removed
    // elsewhere since the last step counts.
    let ports = FormPorts::new(&state, &req, &pending);
    match sign_in.resume(&ports).await? {
        Answer::Success(signed_in) => complete(&req, &state, &query.id, pending, signed_in).await,
        Answer::Continue(Next::FirstFactor) => Ok(to_login(&state, &query.id)),
        Answer::Continue(next) => {
            let chosen = query.factor.as_deref();
            let response = step_page(
                &req,
                &state,
                &query.id,
                &pending,
                &mut sign_in,
                &next,
                chosen,
                None,
                StatusCode::OK,
            )
            .await?;
            pending.sign_in = Some(sign_in);
            save_if_present(&state, &query.id, &pending).await?;
            Ok(response)
        }
        Answer::Denied(reason) => Err(denied(reason).into()),
    }
}

fn to_login(state: &State, handle: &str) -> HttpResponse {
    let location = format!(
        "{}?id={handle}",
        Links::new(&state.settings.issuer_path).login()
    );
    HttpResponse::SeeOther()
        .insert_header((actix_web::http::header::LOCATION, location))
        .finish()
}

fn denied(reason: Denied) -> OAuthError {
    match reason {
        Denied::Throttled => OAuthError::new(
            ErrorCode::RateLimited,
            crate::http::ui::Ui::current().t("factor.throttled"),
        ),
        Denied::Disabled { .. } => OAuthError::new(
            ErrorCode::AccessDenied,
            crate::http::ui::Ui::current().t("login.disabled"),
        ),
        Denied::Incorrect | Denied::WrongCode => expired(),
    }
}

/// The page of `next`: the factor `chosen` if it is offered, else the first offered, or
/// the enrolment.
#[allow(clippy::too_many_arguments)]
async fn step_page(
    req: &HttpRequest,
    state: &State,
    handle: &str,
    pending: &Interaction,
    sign_in: &mut SignIn,
    next: &Next,
    chosen: Option<&str>,
    error: Option<&str>,
    status: StatusCode,
) -> Result<HttpResponse, PageError> {
    let browser = bound_browser(pending, req, state).ok_or_else(other_browser)?;
    let csrf = form_token(state, FACTOR_FORM, handle, &browser);
    let links = Links::new(&state.settings.issuer_path);
    let (shown, others, enrolment) = match next {
        Next::SecondFactor(offered) => {
            let shown = offered
                .iter()
                .copied()
                .find(|f| Some(factor_name(*f)) == chosen)
                .or_else(|| offered.first().copied())
                .unwrap_or(Factor::OneTimeCode);
            let ui = crate::http::ui::Ui::current();
            let others = offered
                .iter()
                .filter(|f| **f != shown)
                .map(|f| {
                    (
                        links.second_factor_choice(handle, factor_name(*f)),
                        ui.t(link_label(*f)),
                    )
                })
                .collect();
            (factor_name(shown), others, None)
        }
        Next::Enrol | Next::FirstFactor => {
            let user_id = sign_in.user_id().unwrap_or_default().to_owned();
            let label = sign_in.username().to_owned();
            let issuer = state.settings.brand.name.clone();
            let shown = sign_in.enrolling().map(str::to_owned);
            let enrolment = blocking(state, move |ctx| {
                let label = if label.is_empty() {
                    ctx.store
                        .find_user(&user_id)?
                        .map(|u| u.username)
                        .unwrap_or_default()
                } else {
                    label
                };
                stored::enrolment(ctx, &user_id, &label, &issuer, shown.as_deref())
            })
            .await?;
            if let Some(e) = &enrolment {
                sign_in.show_enrolment(e.sealed.clone());
            }
            ("enrol", Vec::new(), enrolment)
        }
    };
    let mut response = render(
        status,
        &FactorPage {
            ui: crate::http::ui::Ui::current(),
            links,
            id: handle,
            csrf: &csrf,
            client_name: &pending.client_name,
            shown,
            enrolment,
            others,
            error,
            passkeys_enabled: state.passkeys.is_some(),
        },
    );
    // The code's submission may end at the client: the CSP must let the browser follow.
    crate::http::csp::allow_form_redirect(&mut response, &pending.request.redirect_uri);
    if shown == "passkey" && state.passkeys.is_some() {
        crate::http::csp::allow_passkey_script(&mut response);
    }
    Ok(response)
}

#[derive(Deserialize)]
pub struct FactorForm {
    id: String,
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    kind: String,
    #[serde(default)]
    code: String,
}

pub async fn submit(req: HttpRequest, form: web::Form<FactorForm>, state: State) -> HttpResponse {
    let settings = state.settings.clone();
    page_response(&settings, submit_page(req, form.into_inner(), state).await)
}

async fn submit_page(
    req: HttpRequest,
    form: FactorForm,
    state: State,
) -> Result<HttpResponse, PageError> {
    let mut pending = load(&state, &form.id).await?;
    if !crate::http::csrf::from_our_pages(&req, &state.settings)
        || !accepts(&pending, &req, &state, FACTOR_FORM, &form.id, &form.csrf)
    {
        return Err(OAuthError::invalid_request(
            "the form could not be verified; return to the application and start again",
        )
        .into());
    }
    let Some(mut sign_in) = pending.sign_in.take() else {
        return Err(expired().into());
    };
    let kind = match form.kind.as_str() {
        "recovery" => CodeKind::Recovery,
        _ => CodeKind::OneTime,
    };
    let enrolling = sign_in.next() == Some(Next::Enrol);
    let ports = FormPorts::new(&state, &req, &pending);
    let address = client_address_of(&req, &state.settings);
    let user_id = sign_in.user_id().unwrap_or_default().to_owned();
    let answer = sign_in.code(kind, Secret::new(form.code), &ports).await?;
    match answer {
        Answer::Success(signed_in) => {
            if enrolling {
                record(&state, &user_id, "factor.enrolled", kind, &address).await?;
                crate::audit::factor_enrolled(&user_id, kind.as_str(), &address);
            }
            record(&state, &user_id, "factor.used", kind, &address).await?;
            crate::audit::factor_used(&user_id, kind.as_str(), &address);
            state.metrics.login(true);
            complete(&req, &state, &form.id, pending, signed_in).await
        }
        // Another factor still to come (a step-up of a session with none of them).
        Answer::Continue(next) => {
            let response = step_page(
                &req,
                &state,
                &form.id,
                &pending,
                &mut sign_in,
                &next,
                None,
                None,
                StatusCode::OK,
            )
            .await?;
            pending.sign_in = Some(sign_in);
            save(&state, &form.id, &pending).await?;
            Ok(response)
        }
        Answer::Denied(Denied::WrongCode) => {
            record(&state, &user_id, "factor.failed", kind, &address).await?;
            crate::audit::factor_failed(&user_id, kind.as_str(), &address);
            state.metrics.login(false);
            let next = sign_in.next().unwrap_or(Next::Enrol);
            let ui = crate::http::ui::Ui::current();
            let message = match kind {
                CodeKind::OneTime => ui.t("factor.wrong_code"),
                CodeKind::Recovery => ui.t("factor.wrong_recovery"),
            };
            let chosen = match kind {
                CodeKind::OneTime => "otp",
                CodeKind::Recovery => "recovery",
            };
            let response = step_page(
                &req,
                &state,
                &form.id,
                &pending,
                &mut sign_in,
                &next,
                Some(chosen),
                Some(message),
                StatusCode::UNAUTHORIZED,
            )
            .await?;
            pending.sign_in = Some(sign_in);
            save_if_present(&state, &form.id, &pending).await?;
            Ok(response)
        }
        Answer::Denied(reason) => {
            if reason == Denied::Throttled {
                record(&state, &user_id, "factor.throttled", kind, &address).await?;
                crate::audit::factor_throttled(&user_id, kind.as_str(), &address);
            }
            state.metrics.login(false);
            // The sign-in is over; the interaction stays, for a new sign-in later.
            save_if_present(&state, &form.id, &pending).await?;
            Err(denied(reason).into())
        }
    }
}

/// A second factor's use, failure or throttling, or its enrolment, in the audit table.
async fn record(
    state: &State,
    user_id: &str,
    action: &'static str,
    kind: CodeKind,
    address: &str,
) -> Result<(), PageError> {
    let (user_id, address) = (user_id.to_owned(), address.to_owned());
    blocking(state, move |ctx| {
        crate::protocol::security::record_sign_in_event(
            ctx,
            &user_id,
            action,
            kind.as_str(),
            &address,
        )
    })
    .await?;
    Ok(())
}
