//! Drives `protocol::interaction` over HTTP: stores interactions in the session store,
//! reads the browser's cookies, and turns each step into a redirect or a response.

use std::time::Duration;

use actix_web::cookie::Cookie;
use actix_web::http::{StatusCode, header};
use actix_web::{HttpRequest, HttpResponse};

use crate::crypto::tokens::{constant_time_eq, random_token};
use crate::http::cookies::{browser_id, known_browser, session_id};
use crate::http::csrf::form_token;
use crate::http::error::PageError;
use crate::http::paths::{self, Links};
use crate::http::state::{State, blocking};
use crate::protocol::authorize::{AuthorizationResponse, issue_response};
use crate::protocol::interaction::{self, Interaction, Step, expired};
use crate::protocol::sign_in::SignIn;
use crate::protocol::{ErrorCode, OAuthError};
use crate::sessions::SsoSession;

/// How long a user has to finish logging in and consenting.
pub const INTERACTION_TTL: Duration = Duration::from_secs(600);

/// The window of `pending_sign_ins_per_address`: pending requests one client address may
/// open per minute (the default, and why, in the README's "Limits per client address").
const PENDING_WINDOW: Duration = Duration::from_secs(60);

/// Every stored interaction is counted against its client address before it is stored.
pub async fn admit(req: &HttpRequest, state: &State) -> Result<(), PageError> {
    let address = crate::http::client_address::client_address_of(req, &state.settings);
    let count = state
        .sessions
        .count_event(
            "pending",
            &crate::http::client_address::limit_key(&address),
            PENDING_WINDOW,
        )
        .await
        .map_err(OAuthError::from)?;
    if count > state.settings.pending_sign_ins_per_address {
        return Err(OAuthError::new(
            ErrorCode::RateLimited,
            "too many sign-in requests from this address; wait a minute and try again",
        )
        .into());
    }
    Ok(())
}

/// The browser id of `req` if it is the browser `interaction` is bound to.
pub fn bound_browser(
    interaction: &Interaction,
    req: &HttpRequest,
    state: &State,
) -> Option<String> {
    known_browser(req, state).filter(|b| interaction.is_bound_to(b))
}

/// Both CSRF defences: the request comes from the bound browser, and the form's token
/// is the one derived for this interaction, form and browser.
pub fn accepts(
    interaction: &Interaction,
    req: &HttpRequest,
    state: &State,
    purpose: &str,
    handle: &str,
    csrf: &str,
) -> bool {
    bound_browser(interaction, req, state).is_some_and(|browser| {
        constant_time_eq(
            form_token(state, purpose, handle, &browser).as_bytes(),
            csrf.as_bytes(),
        )
    })
}

pub async fn save(state: &State, handle: &str, interaction: &Interaction) -> Result<(), PageError> {
    state
        .sessions
        .save_pending(handle, interaction, INTERACTION_TTL)
        .await
        .map_err(OAuthError::from)?;
    Ok(())
}

/// Loads the interaction named by a page's `id` parameter.
pub async fn load(state: &State, handle: &str) -> Result<Interaction, PageError> {
    state
        .sessions
        .load_pending::<Interaction>(handle)
        .await
        .map_err(OAuthError::from)?
        .ok_or_else(|| expired().into())
}

/// Saves the interaction back unless another request finished it meanwhile (a right code
/// or passkey in another tab or instance): a finished interaction is not brought back
/// under its old handle.
pub async fn save_if_present(
    state: &State,
    handle: &str,
    interaction: &Interaction,
) -> Result<(), PageError> {
    load(state, handle).await?;
    save(state, handle, interaction).await
}

/// Takes the interaction out of the store; `false` if it was gone (finished elsewhere).
pub async fn take(state: &State, handle: &str) -> Result<bool, PageError> {
    Ok(state
        .sessions
        .take_pending::<Interaction>(handle)
        .await
        .map_err(OAuthError::from)?
        .is_some())
}

/// The browser's SSO session, if it has one.
async fn browser_session(
    req: &HttpRequest,
    state: &State,
) -> Result<Option<SsoSession>, PageError> {
    let Some(id) = session_id(req, &state.settings) else {
        return Ok(None);
    };
    Ok(state
        .sessions
        .load_sso(&id, state.now())
        .await
        .map_err(OAuthError::from)?)
}

/// Takes the interaction one step further: to the login page, the consent page, or
/// back to the client with a response or an error.
///
/// `handle` is the interaction's id when it is already stored; `fresh_session` is a
/// session created by a login in this very request (its cookie is not on `req` yet).
pub async fn proceed(
    req: &HttpRequest,
    state: &State,
    mut interaction: Interaction,
    handle: Option<String>,
    fresh_session: Option<SsoSession>,
) -> Result<HttpResponse, PageError> {
    let session = match fresh_session {
        Some(s) => Some(s),
        None => browser_session(req, state).await?,
    };
    let signed_in = match session {
        None => None,
        Some(session) => {
            let (lookup, request) = (session.clone(), interaction.request.clone());
            let found = blocking(state, move |ctx| {
                interaction::signed_in(&request, lookup, ctx)
            })
            .await?;
            if found.is_none() {
                // The session no longer speaks for its user: it is worthless.
                state
                    .sessions
                    .delete_sso(&session.id)
                    .await
                    .map_err(OAuthError::from)?;
            }
            found
        }
    };
    let page = match interaction::step(
        &mut interaction,
        signed_in.as_ref(),
        &state.settings.issuer,
        state.now(),
    ) {
        Step::Login => paths::LOGIN,
        Step::StepUp => {
            // Only the missing factor is asked for, in the same session (`sid` kept).
            let Some(signed_in) = &signed_in else {
                return Err(OAuthError::server("a step-up without a session").into());
            };
            interaction.sign_in = Some(SignIn::step_up(
                &signed_in.session,
                signed_in.required,
                state.settings.mfa,
                crate::protocol::sign_in::ThrottleLimits {
                    failures_per_address: state.settings.password_failures_per_address,
                },
                state.now(),
            ));
            paths::SECOND_FACTOR
        }
        Step::Consent => paths::CONSENT,
        Step::Account => {
            forget(state, handle.as_deref()).await?;
            let links = Links::new(&state.settings.issuer_path);
            if let Some(proof) = &interaction.upstream_link {
                // A link proof's sign-in: the session it made is recorded on the proof
                // (only it may confirm the link), then on to the link's confirmation.
                if let Some(signed_in) = &signed_in {
                    bind_link_proof(state, proof, &signed_in.session).await?;
                }
                let target = format!("{}?proof={proof}", links.upstream_link());
                return Ok(redirect(StatusCode::SEE_OTHER, &target));
            }
            let account = if interaction.reauth {
                links.security()
            } else {
                links.account()
            };
            return Ok(redirect(StatusCode::SEE_OTHER, &account));
        }
        Step::Fail(response) => {
            forget(state, handle.as_deref()).await?;
            // A device's request has no redirect URI: its user is told on the page.
            if interaction.device.is_some() {
                return Err(crate::http::device::code_gone().into());
            }
            return Ok(respond(&response, state));
        }
        Step::Issue => {
            // One-time: if another tab already finished this request, stop here.
            if let Some(h) = &handle
                && !take(state, h).await?
            {
                return Err(expired().into());
            }
            let Some(signed_in) = signed_in else {
                return Err(OAuthError::server("no session").into());
            };
            if let Some(device) = &interaction.device {
                return crate::http::device::approve(
                    req,
                    state,
                    &interaction,
                    device,
                    signed_in.session,
                )
                .await;
            }
            let request = interaction.request.clone();
            let session = signed_in.session;
            return match blocking(state, move |ctx| issue_response(&request, &session, ctx)).await {
                Ok(response) => Ok(respond(&response, state)),
                Err(error) => {
                    // Nothing was issued: give the interaction back so that the user can
                    // retry (e.g. once the database is back) instead of starting over.
                    if let Some(h) = &handle {
                        let _ = save(state, h, &interaction).await;
                    }
                    Err(error.into())
                }
            };
        }
    };
    let handle = match handle {
        Some(h) => h,
        None => {
            // Only interactions that are stored count (an SSO sign-in stores nothing).
            admit(req, state).await?;
            random_token(24)
        }
    };
    save(state, &handle, &interaction).await?;
    let location = format!("{}{page}?id={handle}", state.settings.issuer_path);
    Ok(redirect(StatusCode::SEE_OTHER, &location))
}

/// Starts `interaction` in the browser of `req` (issuing it a browser id if it has none).
/// Records on link proof `handle` the session its local sign-in made
/// (`protocol::upstream::bind_session`), for what is left of its lifetime.
async fn bind_link_proof(
    state: &State,
    handle: &str,
    session: &crate::sessions::SsoSession,
) -> Result<(), PageError> {
    use crate::protocol::upstream::{LINK_PROOF_TTL, LinkProof, bind_session};
    let proof: Option<LinkProof> = state
        .sessions
        .load_link_proof(handle)
        .await
        .map_err(OAuthError::from)?;
    let Some(mut proof) = proof else {
        return Ok(());
    };
    let left = LINK_PROOF_TTL - (state.now() - proof.issued_at);
    if left > 0 && bind_session(&mut proof, session) {
        state
            .sessions
            .save_link_proof(handle, &proof, std::time::Duration::from_secs(left as u64))
            .await
            .map_err(OAuthError::from)?;
    }
    Ok(())
}

pub async fn start(
    req: &HttpRequest,
    state: &State,
    mut interaction: Interaction,
) -> Result<HttpResponse, PageError> {
    let (browser, new_cookie) = browser_id(req, state);
    interaction.bind(&browser);
    let response = proceed(req, state, interaction, None, None).await?;
    Ok(match new_cookie {
        Some(cookie) => with_cookie(response, &cookie),
        None => response,
    })
}

/// Sends a browser with no session through the login page to the account page.
pub async fn sign_in_to_account(
    req: &HttpRequest,
    state: &State,
) -> Result<HttpResponse, PageError> {
    start(req, state, Interaction::for_account()).await
}

/// Ends a stored interaction that is over (finished, or failed back to the client).
async fn forget(state: &State, handle: Option<&str>) -> Result<(), PageError> {
    if let Some(h) = handle {
        take(state, h).await?;
    }
    Ok(())
}

/// Ends the interaction with an error sent to the client (e.g. `access_denied`).
pub async fn finish_with_error(
    state: &State,
    handle: &str,
    interaction: &Interaction,
    code: ErrorCode,
) -> Result<HttpResponse, PageError> {
    take(state, handle).await?;
    let response = interaction.error_response(code, &state.settings.issuer);
    Ok(respond(&response, state))
}

pub fn redirect(status: StatusCode, location: &str) -> HttpResponse {
    HttpResponse::build(status)
        .insert_header((header::LOCATION, location))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .finish()
}

pub fn with_cookie(mut response: HttpResponse, cookie: &Cookie<'_>) -> HttpResponse {
    let _ = response.add_cookie(cookie);
    response
}

#[derive(askama::Template)]
#[template(path = "form_post.html")]
struct FormPostPage<'a> {
    ui: crate::http::ui::Ui,
    links: Links,
    action: &'a str,
    params: &'a [(&'static str, String)],
    nonce: &'a str,
}

/// Delivers an authorization response in its mode: a redirect (query, fragment), or the
/// auto-submitting form of OAuth 2.0 Form Post Response Mode §2. The form needs no
/// script (its button submits it); the one inline script that submits it at once runs
/// under a per-response CSP nonce, and the policy lets the form go to this redirect URI
/// alone.
pub fn respond(response: &AuthorizationResponse, state: &State) -> HttpResponse {
    if let Some(url) = response.redirect_url() {
        return redirect(StatusCode::SEE_OTHER, &url);
    }
    let nonce = random_token(16);
    let mut page = crate::http::page::render(
        StatusCode::OK,
        &FormPostPage {
            ui: crate::http::ui::Ui::current(),
            links: Links::new(&state.settings.issuer_path),
            action: &response.redirect_uri,
            params: &response.params,
            nonce: &nonce,
        },
    );
    crate::http::csp::allow_form_redirect(&mut page, &response.redirect_uri);
    crate::http::csp::allow_script_nonce(&mut page, &nonce);
    page
}
