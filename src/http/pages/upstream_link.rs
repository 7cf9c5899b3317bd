//! Linking an upstream identity no account has to the account the person then signs in
//! to (issue 24): the link proof kept by the callback's "No account here" page, the local
//! sign-in it leads to, and the confirmation.

use std::time::Duration;

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use serde::Deserialize;

use super::render;
use super::upstream_start::{MessagePage, cookie, message_page};
use crate::crypto::tokens::{constant_time_eq, random_token, token_hash};
use crate::http::client_address::client_address_of;
use crate::http::cookies::{CookieNames, known_browser};
use crate::http::csrf::form_token;
use crate::http::error::{PageError, page_response};
use crate::http::interaction::{bound_browser, load, proceed, redirect, with_cookie};
use crate::http::paths::Links;
use crate::http::state::{State, blocking};
use crate::protocol::OAuthError;
use crate::protocol::interaction::{Interaction, expired};
use crate::protocol::upstream::{LinkProof, VerifiedIdentity, check_proof};

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

/// "No account here for this NAME identity": a link proof is kept (bound to the
/// identity and this browser), and the page offers to sign in locally to link it.
pub(super) async fn offer_link(
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
