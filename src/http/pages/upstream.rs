//! "Sign in with NAME" (issue 24), over HTTP: the start (the login page's button, or
//! `idp_hint`), the upstream's callback, the link of an identity no account has to the
//! account the person then signs in to, and unlinking from the account page. Thin: the
//! upstream conversation is `crate::upstream`'s, the rules `protocol::upstream`'s, the
//! sign-in `protocol::sign_in`'s.
//!
//! Every refusal is a page that says what happened (never a 500), writes nothing but its
//! audit line (`upstream.refused`), and clears the one-time cookie.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;

use super::login::{complete, to_second_step};
use super::render;
use super::sign_in_ports::{FormPorts, throttle_limits};
use super::upstream_start::{
    CallbackParams, Waiting, cookie, message_page, refused_unaudited, unreachable_page,
};
use crate::config::upstream::UpstreamResponseMode;
use crate::crypto::tokens::{constant_time_eq, token_hash};
use crate::http::client_address::client_address_of;
use crate::http::cookies::CookieNames;
use crate::http::error::{PageError, page_response};
use crate::http::interaction::{bound_browser, load, with_cookie};
use crate::http::paths::{self, Links};
use crate::http::state::{State, blocking};
use crate::protocol::OAuthError;
use crate::protocol::interaction::expired;
use crate::protocol::sign_in::{Answer, Denied, SignIn};
use crate::protocol::upstream::{Resolution, VerifiedIdentity};
use crate::upstream::UpstreamError;

/// A refused callback: the page, the audit line, and the one-time cookie cleared.
pub(super) async fn refused(
    req: &HttpRequest,
    state: &State,
    provider: &str,
    reason: &'static str,
    message: String,
    back: Option<&str>,
) -> Result<HttpResponse, PageError> {
    let address = client_address_of(req, &state.settings);
    let id = provider.to_owned();
    blocking(state, move |ctx| {
        crate::protocol::upstream::record_refusal(ctx, &id, reason, &address)
    })
    .await?;
    let ui = crate::http::ui::Ui::current();
    Ok(message_page(
        state,
        StatusCode::BAD_REQUEST,
        ui.t("upstream.refused_title"),
        &message,
        back,
    ))
}

fn clear_state_cookie(state: &State, response: HttpResponse) -> HttpResponse {
    with_cookie(
        response,
        &cookie(
            state,
            CookieNames::upstream_state(&state.settings),
            String::new(),
            0,
        ),
    )
}

/// `GET /upstream/{id}/callback`.
pub async fn callback(
    req: HttpRequest,
    path: web::Path<String>,
    query: Result<web::Query<CallbackParams>, actix_web::Error>,
    state: State,
) -> HttpResponse {
    let settings = state.settings.clone();
    let provider = path.into_inner();
    // A query the extractor refuses (a duplicated or malformed parameter): the page, not
    // a bare 400.
    let Ok(query) = query else {
        let ui = crate::http::ui::Ui::current();
        return refused_unaudited(
            &state,
            &provider,
            "bad_request",
            ui.t("upstream.refused").to_owned(),
            None,
        );
    };
    let result = callback_page(&req, provider, query.into_inner(), &state).await;
    clear_state_cookie(
        &state,
        interstitial(&state, page_response(&settings, result)),
    )
}

#[derive(Template)]
#[template(path = "upstream_continue.html")]
struct ContinuePage<'a> {
    ui: crate::http::ui::Ui,
    links: Links,
    target: &'a str,
}

/// The callback's redirect, as a page that goes on by itself (`<meta http-equiv=refresh>`,
/// and a link). The browser came here by a redirect from the upstream's page, often
/// from its login form: browsers hold every redirect of a form's navigation to that
/// page's CSP `form-action`, which names us but not the application we send the browser
/// on to. A page of ours ends that navigation; the next one is ours alone. Its cookies
/// (the session just signed in to) are kept.
fn interstitial(state: &State, response: HttpResponse) -> HttpResponse {
    if !response.status().is_redirection() {
        return response;
    }
    let Some(target) = response
        .headers()
        .get(actix_web::http::header::LOCATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
    else {
        return response;
    };
    let mut page = render(
        StatusCode::OK,
        &ContinuePage {
            ui: crate::http::ui::Ui::current(),
            links: Links::new(&state.settings.issuer_path),
            target: &target,
        },
    );
    for cookie in response.cookies() {
        let _ = page.add_cookie(&cookie.into_owned());
    }
    page
}

async fn callback_page(
    req: &HttpRequest,
    provider: String,
    params: CallbackParams,
    state: &State,
) -> Result<HttpResponse, PageError> {
    let ui = crate::http::ui::Ui::current();
    let generic = || ui.t("upstream.refused").to_owned();
    let Some(settings) = state.upstreams.find(&provider).cloned() else {
        // A provider removed from the configuration: nothing to verify against.
        let id: String = provider
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_'))
            .take(32)
            .collect();
        return Ok(refused_unaudited(
            state,
            &id,
            "unknown_provider",
            ui.t("upstream.unknown_provider").to_owned(),
            None,
        ));
    };
    let name = settings.name.clone();
    let Some(state_value) = params.state.as_deref().filter(|s| !s.is_empty()) else {
        return Ok(refused_unaudited(
            state,
            &provider,
            "no_state",
            generic(),
            None,
        ));
    };
    // Read first, and taken (single use: a replayed callback finds nothing) only once
    // the browser proved it is the one that started it: someone who merely learned a
    // `state` (an upstream's logs, a leaked URL) cannot cancel that sign-in.
    let waiting: Option<Waiting> = state
        .sessions
        .load_upstream_state(state_value)
        .await
        .map_err(OAuthError::from)?;
    let Some(waiting) = waiting else {
        return Ok(refused_unaudited(
            state,
            &provider,
            "state_unknown",
            generic(),
            None,
        ));
    };
    let back = Some(waiting.interaction.as_str());
    if waiting.provider != provider {
        return Ok(refused_unaudited(
            state,
            &provider,
            "state_mismatch",
            generic(),
            back,
        ));
    }
    let ours = req
        .cookie(CookieNames::upstream_state(&state.settings))
        .is_some_and(|c| {
            constant_time_eq(token_hash(c.value()).as_bytes(), waiting.browser.as_bytes())
        });
    if !ours {
        return Ok(refused_unaudited(
            state,
            &provider,
            "browser_mismatch",
            generic(),
            back,
        ));
    }
    let taken: Option<Waiting> = state
        .sessions
        .take_upstream_state(state_value)
        .await
        .map_err(OAuthError::from)?;
    let Some(taken) = taken else {
        // Taken meanwhile by the same callback, twice (a replay).
        return Ok(refused_unaudited(
            state,
            &provider,
            "state_unknown",
            generic(),
            None,
        ));
    };
    // A form_post provider answers by POST (kept with the state by `callback_post`),
    // a query one in this URL: never the other way (a code in a URL of a form_post
    // provider was not sent by it, or went somewhere it should not have).
    let params = match (settings.response_mode, taken.response) {
        (UpstreamResponseMode::FormPost, Some(posted))
            if params.code.is_none() && params.error.is_none() =>
        {
            CallbackParams {
                state: params.state,
                code: posted.code,
                error: posted.error,
                error_description: posted.error_description,
                iss: posted.iss,
            }
        }
        (UpstreamResponseMode::Query, None) => params,
        _ => {
            return refused(
                req,
                state,
                &provider,
                "response_mode_mismatch",
                generic(),
                back,
            )
            .await;
        }
    };
    // RFC 9207 §2.4: an `iss` must be the provider's; a provider that says it sends one
    // must have sent it.
    match params.iss.as_deref() {
        Some(iss) if !state.upstreams.iss_matches(&provider, iss) => {
            return refused(req, state, &provider, "iss_mismatch", generic(), back).await;
        }
        None => match state.upstreams.sends_iss(&provider).await {
            Ok(true) => {
                return refused(req, state, &provider, "iss_missing", generic(), back).await;
            }
            Ok(false) => {}
            Err(_) => return Ok(unreachable_page(state, &name, back)),
        },
        _ => {}
    }
    if let Some(error) = params.error.as_deref() {
        let said: String = params
            .error_description
            .as_deref()
            .unwrap_or(error)
            .chars()
            .filter(|c| !c.is_control())
            .take(200)
            .collect();
        let message = ui.fill(
            "upstream.upstream_error",
            &[("name", &name), ("error", &said)],
        );
        return refused(req, state, &provider, "upstream_error", message, back).await;
    }
    let Some(code) = params.code.as_deref().filter(|c| !c.is_empty()) else {
        return refused(req, state, &provider, "no_code", generic(), back).await;
    };
    let token = match state
        .upstreams
        .finish(&provider, code, &waiting.nonce, &waiting.pkce_verifier)
        .await
    {
        Ok(token) => token,
        Err(UpstreamError::Unreachable(_)) => {
            return Ok(unreachable_page(state, &name, back));
        }
        Err(UpstreamError::Refused { reason, detail }) => {
            tracing::info!(upstream = %provider, reason, detail = %detail, "upstream sign-in refused");
            return refused(req, state, &provider, reason, generic(), back).await;
        }
    };
    // A forced authentication: the upstream's own auth_time must say it happened (a
    // silent upstream SSO is no fresh sign-in).
    if !crate::upstream::fresh_enough(
        waiting.force,
        token.auth_time,
        waiting.started_at,
        state.now(),
    ) {
        return refused(
            req,
            state,
            &provider,
            "upstream_auth_stale",
            generic(),
            back,
        )
        .await;
    }
    let auth_time = token.auth_time;
    let upstream_id_token = token.id_token.clone();
    // The interaction the sign-in is for, in the browser it is bound to.
    let handle = waiting.interaction.clone();
    let Ok(pending) = load(state, &handle).await else {
        return Err(expired().into());
    };
    if bound_browser(&pending, req, state).is_none() {
        return refused(req, state, &provider, "browser_mismatch", generic(), None).await;
    }
    let identity = VerifiedIdentity {
        provider: provider.clone(),
        issuer: token.issuer,
        subject: token.subject,
        claims: token.claims,
        email_unavailable: token.email_unavailable,
    };
    let address = client_address_of(req, &state.settings);
    let resolution = {
        let (settings, identity, address) = (settings.clone(), identity.clone(), address.clone());
        blocking(state, move |ctx| {
            crate::protocol::upstream::resolve(ctx, &settings, &identity, &address)
        })
        .await?
    };
    // The identity leads to no sign-in: a page that says why, back to the login page.
    let refused_page = |status, message: &str| {
        message_page(
            state,
            status,
            ui.t("upstream.refused_title"),
            message,
            Some(&handle),
        )
    };
    let mut by_email = false;
    let mut linked_before = false;
    let user = match resolution {
        Resolution::SignIn { user } => {
            linked_before = true;
            user
        }
        Resolution::Created { user } => user,
        Resolution::LinkByEmail { user } => {
            by_email = true;
            user
        }
        Resolution::Disabled { .. } => {
            return Ok(refused_page(StatusCode::FORBIDDEN, ui.t("login.disabled")));
        }
        Resolution::Removed => {
            let message = ui.fill("upstream.removed", &[("name", &name)]);
            return Ok(refused_page(StatusCode::FORBIDDEN, &message));
        }
        Resolution::UntrustedEmail => {
            let message = ui.fill("upstream.untrusted_email", &[("name", &name)]);
            return Ok(refused_page(StatusCode::FORBIDDEN, &message));
        }
        Resolution::EmailUnavailable => {
            let message = ui.fill("upstream.email_unavailable", &[("name", &name)]);
            return Ok(refused_page(StatusCode::BAD_GATEWAY, &message));
        }
        Resolution::NoUsername => {
            return Ok(refused_page(
                StatusCode::CONFLICT,
                ui.t("upstream.no_username"),
            ));
        }
        Resolution::AddressTaken => {
            let message = ui.fill("upstream.address_taken", &[("name", &name)]);
            return super::upstream_link::offer_link(req, state, &identity, &handle, &message)
                .await;
        }
        Resolution::NoAccount => {
            let message = ui.fill("upstream.no_account", &[("name", &name)]);
            return super::upstream_link::offer_link(req, state, &identity, &handle, &message)
                .await;
        }
    };
    // The sign-in state machine takes it from here: the account's second-factor rules
    // apply after an upstream sign-in as after a password.
    let ports = FormPorts::new(state, req, &pending);
    let mut sign_in = SignIn::begin(
        "",
        pending.asked,
        state.settings.mfa,
        throttle_limits(state),
        state.now(),
    );
    // `end_session`: the ID token is kept (sealed) for the logout's `id_token_hint`, in
    // the session this sign-in makes if it succeeds (review M2).
    if let Some(id_token) = &upstream_id_token
        && let Some(sealed) =
            super::upstream_logout::sealed_id_token(state, &provider, id_token).await?
    {
        sign_in.keep_upstream_id_token(sealed);
    }
    match sign_in
        .upstream(user.id.clone(), &provider, auth_time, &ports)
        .await?
    {
        Answer::Success(signed_in) => {
            if by_email {
                // The sign-in succeeded: now the link by verified address is made.
                let (settings, identity, user) = (settings.clone(), identity.clone(), user.clone());
                let linked = blocking(state, move |ctx| {
                    crate::protocol::upstream::link_by_email(
                        ctx, &settings, &identity, &user, &address,
                    )
                })
                .await?;
                if !linked {
                    return Ok(message_page(
                        state,
                        StatusCode::CONFLICT,
                        ui.t("upstream.refused_title"),
                        &generic(),
                        Some(&handle),
                    ));
                }
            }
            if linked_before {
                let (settings, identity) = (settings.clone(), identity.clone());
                blocking(state, move |ctx| {
                    crate::protocol::upstream::touch(ctx, &settings, &identity)
                })
                .await?;
            }
            state.metrics.login(true);
            complete(req, state, &handle, pending, signed_in).await
        }
        // An account with a second factor is not linked by its address on the strength
        // of the upstream alone: the person proves both sides (local sign-in with the
        // second factor, then confirms), as for any unknown identity.
        Answer::Continue(_) if by_email => {
            let message = ui.fill("upstream.address_taken", &[("name", &name)]);
            super::upstream_link::offer_link(req, state, &identity, &handle, &message).await
        }
        Answer::Continue(_) => to_second_step(state, &handle, pending, sign_in).await,
        Answer::Denied(Denied::Disabled { .. }) => Ok(message_page(
            state,
            StatusCode::FORBIDDEN,
            ui.t("upstream.refused_title"),
            ui.t("login.disabled"),
            Some(&handle),
        )),
        Answer::Denied(_) => Ok(message_page(
            state,
            StatusCode::FORBIDDEN,
            ui.t("upstream.refused_title"),
            &generic(),
            Some(&handle),
        )),
    }
}

pub fn configure(cfg: &mut web::ServiceConfig) {
    use crate::http::routes::at;
    cfg.service(
        at(paths::UPSTREAM_START)
            .post(super::upstream_start::start)
            .done(),
    )
    .service(
        at(paths::UPSTREAM_CALLBACK)
            .get(callback)
            .post(super::upstream_form_post::callback_post)
            .done(),
    )
    .service(
        at(super::upstream_logout::UPSTREAM_LOGGED_OUT)
            .get(super::upstream_logout::logged_out)
            .done(),
    )
    .service(
        at(paths::UPSTREAM_LINK)
            .get(super::upstream_link::show_link)
            .post(super::upstream_link::confirm_link)
            .done(),
    )
    .service(
        at(paths::UPSTREAM_LINK_SIGN_IN)
            .post(super::upstream_link::link_sign_in)
            .done(),
    );
}
