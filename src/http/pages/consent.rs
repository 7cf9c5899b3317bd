//! The consent page: the client's name, each scope in plain words, the resources the
//! tokens are for, allow or deny.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use serde::Deserialize;

use super::login::PageQuery;
use super::render;
use crate::http::cookies::session_id;
use crate::http::csrf::form_token;
use crate::http::error::{PageError, page_response};
use crate::http::interaction::{accepts, bound_browser, finish_with_error, load, proceed};
use crate::http::paths::Links;
use crate::http::state::{State, blocking};
use crate::http::ui::Ui;
use crate::protocol::claims_request::ClaimsRequest;
use crate::protocol::consent::{self, Decision, Outcome};
use crate::protocol::device::open_user_code;
use crate::protocol::interaction::{CONSENT_FORM, other_browser};
use crate::protocol::logout::session_user;
use crate::protocol::{ErrorCode, OAuthError, SUPPORTED_SCOPES};

#[derive(Template)]
#[template(path = "consent.html")]
struct ConsentPage<'a> {
    ui: crate::http::ui::Ui,
    links: Links,
    id: &'a str,
    csrf: &'a str,
    client_name: &'a str,
    username: &'a str,
    /// Where the browser goes next (RFC 9700 §4.1: the user should see who gets the code).
    redirect_host: String,
    unverified: bool,
    scopes: Vec<(String, &'static str)>,
    /// The RFC 8707 resources the tokens would be for: the user sees where they go.
    resources: &'a [String],
    /// A device asks (RFC 8628 §5.4): the user is told to allow only a device in front
    /// of them, and nothing is sent anywhere.
    device: bool,
    /// The user code the user typed (RFC 8628 §3.3.1: shown, to check against the device).
    device_user_code: Option<String>,
}

/// The consent page's words for an OpenID scope: what it lets the client do, and a detail.
fn describe(scope: &str, ui: &Ui) -> Option<(String, &'static str)> {
    SUPPORTED_SCOPES.contains(&scope).then(|| {
        (
            ui.t(&format!("scope.{scope}")).to_owned(),
            ui.t(&format!("scope.{scope}.detail")),
        )
    })
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
    let pending = load(&state, &query.id).await?.consentable()?;
    let browser = bound_browser(&pending, &req, &state).ok_or_else(other_browser)?;
    let csrf = form_token(&state, CONSENT_FORM, &query.id, &browser);
    let Some(sid) = session_id(&req, &state.settings) else {
        // Session gone (expired, or logged out elsewhere): start over through login.
        return proceed(&req, &state, pending, Some(query.id.clone()), None).await;
    };
    let Some(session) = state
        .sessions
        .load_sso(&sid, state.now())
        .await
        .map_err(OAuthError::from)?
    else {
        return proceed(&req, &state, pending, Some(query.id.clone()), None).await;
    };
    let user = blocking(&state, move |ctx| Ok(session_user(ctx.store, &session)?)).await?;
    let Some(user) = user else {
        // The session no longer speaks for its user: through login again.
        return proceed(&req, &state, pending, Some(query.id.clone()), None).await;
    };
    let username = user.username;
    let scopes = pending.request.scopes();
    let base = &state.settings.issuer_path;
    let ui = Ui::current();
    let mut response = render(
        StatusCode::OK,
        &ConsentPage {
            ui: ui.clone(),
            links: Links::new(base),
            id: &query.id,
            csrf: &csrf,
            client_name: &pending.client_name,
            username: &username,
            redirect_host: url::Url::parse(&pending.request.redirect_uri)
                .ok()
                .and_then(|u| {
                    u.host_str()
                        .map(str::to_owned)
                        .or_else(|| Some(u.scheme().to_owned()))
                })
                .unwrap_or_default(),
            unverified: pending.client_unverified,
            // In a fixed, meaningful order (sign-in first), not the request's; then the
            // API scopes the client was registered with, by name.
            scopes: SUPPORTED_SCOPES
                .iter()
                .filter(|s| scopes.contains(s))
                .filter_map(|s| describe(s, &ui))
                .chain(
                    scopes
                        .iter()
                        .filter(|s| !SUPPORTED_SCOPES.contains(s))
                        .map(|s| {
                            (
                                ui.fill("scope.api", &[("scope", s)]),
                                ui.t("scope.api.detail"),
                            )
                        }),
                )
                // OIDC Core §5.5: single claims asked for beyond the scopes.
                .chain(
                    ClaimsRequest::from_stored(pending.request.claims.as_deref())
                        .map(|r| r.names().join(", "))
                        .filter(|names| !names.is_empty())
                        .map(|names| (ui.fill("scope.claims", &[("names", &names)]), "")),
                )
                .collect(),
            resources: &pending.request.resources,
            device: pending.device.is_some(),
            device_user_code: pending.device.as_ref().and_then(|device| {
                let sealed = pending.device_user_code.as_deref()?;
                open_user_code(&state.kek, device, sealed)
            }),
        },
    );
    // Allow and deny both end at the client: the CSP must let the browser follow.
    crate::http::csp::allow_form_redirect(&mut response, &pending.request.redirect_uri);
    Ok(response)
}

#[derive(Deserialize)]
pub struct ConsentForm {
    id: String,
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    decision: String,
}

pub async fn submit(req: HttpRequest, form: web::Form<ConsentForm>, state: State) -> HttpResponse {
    let settings = state.settings.clone();
    page_response(&settings, submit_page(req, form, state).await)
}

async fn submit_page(
    req: HttpRequest,
    form: web::Form<ConsentForm>,
    state: State,
) -> Result<HttpResponse, PageError> {
    let form = form.into_inner();
    let mut pending = load(&state, &form.id).await?.consentable()?;
    if !crate::http::csrf::from_our_pages(&req, &state.settings)
        || !accepts(&pending, &req, &state, CONSENT_FORM, &form.id, &form.csrf)
    {
        return Err(OAuthError::invalid_request(
            "the form could not be verified; return to the application and start again",
        )
        .into());
    }
    let session = match session_id(&req, &state.settings) {
        Some(sid) => state
            .sessions
            .load_sso(&sid, state.now())
            .await
            .map_err(OAuthError::from)?,
        None => None,
    };
    let Some(session) = session else {
        return proceed(&req, &state, pending, Some(form.id), None).await;
    };
    // Parsed once the session is known: without one, the form goes through the sign-in
    // whatever it says.
    let decision = Decision::parse(&form.decision)
        .ok_or_else(|| OAuthError::invalid_request("decision must be allow or deny"))?;
    let user_id = session.user_id.clone();
    let outcome = match decision {
        // Nothing to record: no trip to the database.
        Decision::Deny => consent::deny(&pending.request, &session),
        Decision::Allow => {
            // A device's consent is recorded only if its code can still be decided on
            // (not expired, not decided in another tab).
            if let Some(device) = &pending.device {
                let waiting: Option<crate::protocol::device::DeviceAuthorization> = state
                    .sessions
                    .find_device_by_user_code(&device.user_code_hash)
                    .await
                    .map_err(OAuthError::from)?;
                if !waiting.is_some_and(|d| d.is_live(state.now())) {
                    return Err(crate::http::device::code_gone().into());
                }
            }
            let request = pending.request.clone();
            blocking(&state, move |ctx| {
                consent::record_consent(ctx.store, &request, &session, ctx.now)
            })
            .await?
        }
    };
    match outcome {
        // A device's denial goes to its polls (RFC 8628 §3.5 `access_denied`).
        Outcome::Denied if pending.device.is_some() => {
            crate::http::device::deny(&req, &state, &form.id, &pending, &user_id).await
        }
        Outcome::Denied => {
            finish_with_error(&state, &form.id, &pending, ErrorCode::AccessDenied).await
        }
        // `proceed` ends the stale session and asks for a sign-in.
        Outcome::SessionGone => proceed(&req, &state, pending, Some(form.id), None).await,
        Outcome::Recorded(_) => {
            pending.consented();
            proceed(&req, &state, pending, Some(form.id), None).await
        }
    }
}
