//! "Sign in with NAME" (issue 24), over HTTP: the start (the login page's button, or
//! `idp_hint`), the upstream's callback, the link of an identity no account has to the
//! account the person then signs in to, and unlinking from the account page. Thin: the
//! upstream conversation is `crate::upstream`'s, the rules `protocol::upstream`'s, the
//! sign-in `protocol::sign_in`'s.
//!
//! Every refusal is a page that says what happened (never a 500), writes nothing but its
//! audit line (`upstream.refused`), and clears the one-time cookie.

use std::time::Duration;

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use serde::Deserialize;

use super::login::{complete, to_second_step};
use super::render;
use super::sign_in_ports::{FormPorts, throttle_limits};
use super::upstream_start::{MessagePage, Waiting, cookie, message_page, unreachable_page};
use crate::crypto::tokens::{constant_time_eq, random_token, token_hash};
use crate::http::client_address::client_address_of;
use crate::http::cookies::{CookieNames, known_browser};
use crate::http::csrf::form_token;
use crate::http::error::{PageError, page_response};
use crate::http::interaction::{bound_browser, load, proceed, redirect, with_cookie};
use crate::http::paths::{self, Links};
use crate::http::state::{State, blocking};
use crate::protocol::OAuthError;
use crate::protocol::interaction::{Interaction, expired};
use crate::protocol::sign_in::{Answer, Denied, SignIn};
use crate::protocol::upstream::{LinkProof, Resolution, VerifiedIdentity, check_proof};
use crate::upstream::UpstreamError;

/// The CSRF purposes of this module's forms.
const LINK_SIGN_IN_FORM: &str = "upstream-link-sign-in";
const LINK_CONFIRM_FORM: &str = "upstream-link-confirm";

#[derive(Template)]
#[template(path = "upstream_link.html")]
struct ConfirmPage<'a> {
    ui: crate::http::ui::Ui,
    links: Links,
    question: &'a str,
    proof: &'a str,
    csrf: &'a str,
}

/// A refused callback: the page, the audit line, and the one-time cookie cleared.
async fn refused(
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

/// A callback refused before its state and its one-time cookie matched: anyone can send
/// one, so it is a log line (no value it carries), never an audit row.
fn refused_unaudited(
    state: &State,
    provider: &str,
    reason: &'static str,
    message: String,
    back: Option<&str>,
) -> HttpResponse {
    tracing::info!(upstream = %provider, reason, "upstream callback refused before its state matched");
    let ui = crate::http::ui::Ui::current();
    message_page(
        state,
        StatusCode::BAD_REQUEST,
        ui.t("upstream.refused_title"),
        &message,
        back,
    )
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

#[derive(Deserialize)]
pub struct CallbackParams {
    state: Option<String>,
    code: Option<String>,
    error: Option<String>,
    error_description: Option<String>,
    iss: Option<String>,
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

/// `POST /upstream/{id}/callback` (a `form_post` provider): answered by a redirect to the
/// GET with the same parameters. The cross-site POST carries no `SameSite=Lax` cookie
/// (neither ours nor the browser's id), while the redirect's top-level GET carries them
/// all: so the one-time cookie stays `Lax`, and no cookie of ours ever needs
/// `SameSite=None`.
pub async fn callback_post(
    path: web::Path<String>,
    form: Result<web::Form<std::collections::BTreeMap<String, String>>, actix_web::Error>,
    state: State,
) -> HttpResponse {
    let provider = path.into_inner();
    let ui = crate::http::ui::Ui::current();
    if state.upstreams.find(&provider).is_none() {
        return refused_unaudited(
            &state,
            "unknown",
            "unknown_provider",
            ui.t("upstream.unknown_provider").to_owned(),
            None,
        );
    }
    let (Ok(form), Ok(mut url)) = (
        form,
        url::Url::parse(&crate::upstream::callback_url(
            &state.settings.issuer,
            &provider,
        )),
    ) else {
        return refused_unaudited(
            &state,
            &provider,
            "bad_request",
            ui.t("upstream.refused").to_owned(),
            None,
        );
    };
    {
        let mut query = url.query_pairs_mut();
        for name in ["state", "code", "error", "error_description", "iss"] {
            if let Some(value) = form.get(name) {
                query.append_pair(name, value);
            }
        }
    }
    redirect(StatusCode::SEE_OTHER, url.as_str())
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
    if taken.is_none() {
        // Taken meanwhile by the same callback, twice (a replay).
        return Ok(refused_unaudited(
            state,
            &provider,
            "state_unknown",
            generic(),
            None,
        ));
    }
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
        Resolution::NoUsername => {
            return Ok(refused_page(
                StatusCode::CONFLICT,
                ui.t("upstream.no_username"),
            ));
        }
        Resolution::AddressTaken => {
            let message = ui.fill("upstream.address_taken", &[("name", &name)]);
            return offer_link(req, state, &identity, &handle, &message).await;
        }
        Resolution::NoAccount => {
            let message = ui.fill("upstream.no_account", &[("name", &name)]);
            return offer_link(req, state, &identity, &handle, &message).await;
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
            offer_link(req, state, &identity, &handle, &message).await
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

/// "No account here for this NAME identity": a link proof is kept (bound to the
/// identity and this browser), and the page offers to sign in locally to link it.
async fn offer_link(
    req: &HttpRequest,
    state: &State,
    identity: &VerifiedIdentity,
    handle: &str,
    message: &str,
) -> Result<HttpResponse, PageError> {
    let ui = crate::http::ui::Ui::current();
    let Some(browser) = known_browser(req, state) else {
        return Err(expired().into());
    };
    let settings = state
        .upstreams
        .find(&identity.provider)
        .cloned()
        .ok_or_else(expired)?;
    let profile = crate::protocol::upstream::profile_of(&settings, &identity.claims);
    let proof_handle = random_token(24);
    let binding = random_token(32);
    let proof = LinkProof {
        provider: identity.provider.clone(),
        issuer: identity.issuer.clone(),
        subject: identity.subject.clone(),
        email: profile.shown_email().map(str::to_owned),
        browser: token_hash(&binding),
        known_browser: token_hash(&browser),
        session: None,
        issued_at: state.now(),
        interaction: Some(handle.to_owned()),
    };
    state
        .sessions
        .save_link_proof(
            &proof_handle,
            &proof,
            Duration::from_secs(crate::protocol::upstream::LINK_PROOF_TTL as u64),
        )
        .await
        .map_err(OAuthError::from)?;
    let csrf = form_token(state, LINK_SIGN_IN_FORM, &proof_handle, &browser);
    let links = Links::new(&state.settings.issuer_path);
    let back = format!("{}?id={handle}", links.login());
    let response = render(
        StatusCode::OK,
        &MessagePage {
            ui: ui.clone(),
            links,
            title: ui.t("upstream.no_account_title"),
            message,
            link: Some((&proof_handle, &csrf)),
            back: Some(back),
        },
    );
    Ok(with_cookie(
        response,
        &cookie(
            state,
            CookieNames::upstream_link(&state.settings),
            binding,
            crate::protocol::upstream::LINK_PROOF_TTL,
        ),
    ))
}

#[derive(Deserialize)]
pub struct ProofForm {
    #[serde(default)]
    proof: String,
    #[serde(default)]
    csrf: String,
}

/// `POST /upstream/link/sign-in`: the person signs in locally (a fresh sign-in, at the
/// account's full strength), which then leads to the link's confirmation.
pub async fn link_sign_in(
    req: HttpRequest,
    form: web::Form<ProofForm>,
    state: State,
) -> HttpResponse {
    let settings = state.settings.clone();
    page_response(
        &settings,
        link_sign_in_page(req, form.into_inner(), state).await,
    )
}

async fn link_sign_in_page(
    req: HttpRequest,
    form: ProofForm,
    state: State,
) -> Result<HttpResponse, PageError> {
    let refused = || OAuthError::invalid_request("the form could not be verified");
    let browser = known_browser(&req, &state).ok_or_else(refused)?;
    let expected = form_token(&state, LINK_SIGN_IN_FORM, &form.proof, &browser);
    if !crate::http::csrf::from_our_pages(&req, &state.settings)
        || !constant_time_eq(expected.as_bytes(), form.csrf.as_bytes())
    {
        return Err(refused().into());
    }
    let proof: Option<LinkProof> = state
        .sessions
        .load_link_proof(&form.proof)
        .await
        .map_err(OAuthError::from)?;
    if proof.is_none() {
        return Err(expired().into());
    }
    let mut interaction = Interaction::for_account();
    // A fresh sign-in even if this browser has a session: the link rests on a sign-in
    // made after the proof, in this flow.
    interaction.reauth = true;
    interaction.upstream_link = Some(form.proof);
    crate::http::interaction::start(&req, &state, interaction).await
}

#[derive(Deserialize)]
pub struct ProofQuery {
    #[serde(default)]
    proof: String,
}

/// The proof, the browser's binding value, the signed-in session and user, and the
/// account's level: what both sides of the confirmation check.
async fn proof_context(
    req: &HttpRequest,
    state: &State,
    handle: &str,
    take: bool,
) -> Result<Option<(LinkProof, crate::sessions::SsoSession, crate::store::User)>, PageError> {
    let proof: Option<LinkProof> = if take {
        state.sessions.take_link_proof(handle).await
    } else {
        state.sessions.load_link_proof(handle).await
    }
    .map_err(OAuthError::from)?;
    let Some(proof) = proof else {
        return Ok(None);
    };
    let Some((session, user)) = super::account::signed_in(req, state).await? else {
        return Ok(None);
    };
    let binding = req
        .cookie(CookieNames::upstream_link(&state.settings))
        .map(|c| c.value().to_owned());
    let browser_id = known_browser(req, state);
    let (issuer, subject, user_id) = (proof.issuer.clone(), proof.subject.clone(), user.id.clone());
    let (row, level) = blocking(state, move |ctx| {
        Ok((
            ctx.store.find_upstream_identity(&issuer, &subject)?,
            crate::protocol::security::account_level(ctx, &user_id)?,
        ))
    })
    .await?;
    if let Err(why) = check_proof(
        &proof,
        binding.as_deref(),
        browser_id.as_deref(),
        &session,
        level,
        row.as_ref(),
        state.now(),
    ) {
        let address = client_address_of(req, &state.settings);
        let provider = proof.provider.clone();
        blocking(state, move |ctx| {
            crate::protocol::upstream::record_refusal(ctx, &provider, why.reason(), &address)
        })
        .await?;
        return Ok(None);
    }
    Ok(Some((proof, session, user)))
}

fn link_refused(state: &State) -> HttpResponse {
    let ui = crate::http::ui::Ui::current();
    clear_link_cookie(
        state,
        message_page(
            state,
            StatusCode::BAD_REQUEST,
            ui.t("upstream.refused_title"),
            ui.t("upstream.link_refused"),
            None,
        ),
    )
}

fn clear_link_cookie(state: &State, response: HttpResponse) -> HttpResponse {
    with_cookie(
        response,
        &cookie(
            state,
            CookieNames::upstream_link(&state.settings),
            String::new(),
            0,
        ),
    )
}

/// `GET /upstream/link?proof=`: "Link your NAME account EMAIL to USERNAME?"
pub async fn show_link(
    req: HttpRequest,
    query: web::Query<ProofQuery>,
    state: State,
) -> HttpResponse {
    let settings = state.settings.clone();
    page_response(
        &settings,
        show_link_page(req, query.into_inner(), state).await,
    )
}

async fn show_link_page(
    req: HttpRequest,
    query: ProofQuery,
    state: State,
) -> Result<HttpResponse, PageError> {
    let Some((proof, session, user)) = proof_context(&req, &state, &query.proof, false).await?
    else {
        return Ok(link_refused(&state));
    };
    let Some(browser) = known_browser(&req, &state) else {
        return Ok(link_refused(&state));
    };
    let ui = crate::http::ui::Ui::current();
    let name = state
        .upstreams
        .find(&proof.provider)
        .map(|p| p.name.clone())
        .unwrap_or_else(|| proof.provider.clone());
    let who = proof.email.clone().unwrap_or_else(|| proof.subject.clone());
    let question = ui.fill(
        "upstream.link_question",
        &[
            ("name", &name),
            ("email", &who),
            ("username", &user.username),
        ],
    );
    let csrf = form_token(
        &state,
        LINK_CONFIRM_FORM,
        &format!("{}\n{}", query.proof, session.sid),
        &browser,
    );
    let mut response = render(
        StatusCode::OK,
        &ConfirmPage {
            ui: ui.clone(),
            links: Links::new(&state.settings.issuer_path),
            question: &question,
            proof: &query.proof,
            csrf: &csrf,
        },
    );
    // The confirmation goes on to the application's redirect URI: the CSP must let the
    // form's redirect go there (as the login page's does).
    if let Some(handle) = &proof.interaction
        && let Ok(pending) = load(&state, handle).await
    {
        crate::http::csp::allow_form_redirect(&mut response, &pending.request.redirect_uri);
    }
    Ok(response)
}

/// `POST /upstream/link`: takes the proof (once), checks it again, links, and continues
/// the authorization the upstream sign-in came from (or shows the account page).
pub async fn confirm_link(
    req: HttpRequest,
    form: web::Form<ProofForm>,
    state: State,
) -> HttpResponse {
    let settings = state.settings.clone();
    page_response(
        &settings,
        confirm_link_page(req, form.into_inner(), state).await,
    )
}

async fn confirm_link_page(
    req: HttpRequest,
    form: ProofForm,
    state: State,
) -> Result<HttpResponse, PageError> {
    let refused = || OAuthError::invalid_request("the form could not be verified");
    let browser = known_browser(&req, &state).ok_or_else(refused)?;
    let Some((session, _)) = super::account::signed_in(&req, &state).await? else {
        return Err(refused().into());
    };
    let expected = form_token(
        &state,
        LINK_CONFIRM_FORM,
        &format!("{}\n{}", form.proof, session.sid),
        &browser,
    );
    if !crate::http::csrf::from_our_pages(&req, &state.settings)
        || !constant_time_eq(expected.as_bytes(), form.csrf.as_bytes())
    {
        return Err(refused().into());
    }
    let Some((proof, _, user)) = proof_context(&req, &state, &form.proof, true).await? else {
        return Ok(link_refused(&state));
    };
    // A provider removed from the configuration since: nothing is linked.
    if state.upstreams.find(&proof.provider).is_none() {
        let address = client_address_of(&req, &state.settings);
        let provider = proof.provider.clone();
        blocking(&state, move |ctx| {
            crate::protocol::upstream::record_refusal(ctx, &provider, "unknown_provider", &address)
        })
        .await?;
        return Ok(link_refused(&state));
    }
    let address = client_address_of(&req, &state.settings);
    let linked = {
        let (proof, user) = (proof.clone(), user.clone());
        blocking(&state, move |ctx| {
            crate::protocol::upstream::link_by_proof(ctx, &proof, &user, &address)
        })
        .await?
    };
    if !linked {
        return Ok(link_refused(&state));
    }
    // The authorization the upstream sign-in came from goes on, in this browser, with
    // the session just signed in to.
    if let Some(handle) = &proof.interaction
        && let Ok(pending) = load(&state, handle).await
        && bound_browser(&pending, &req, &state).is_some()
    {
        let response = proceed(&req, &state, pending, Some(handle.clone()), None).await?;
        return Ok(clear_link_cookie(&state, response));
    }
    Ok(clear_link_cookie(
        &state,
        redirect(
            StatusCode::SEE_OTHER,
            &Links::new(&state.settings.issuer_path).account(),
        ),
    ))
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
            .post(callback_post)
            .done(),
    )
    .service(
        at(paths::UPSTREAM_LINK)
            .get(show_link)
            .post(confirm_link)
            .done(),
    )
    .service(at(paths::UPSTREAM_LINK_SIGN_IN).post(link_sign_in).done());
}
