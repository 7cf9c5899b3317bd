//! RP-Initiated Logout 1.0: confirm with the user, end the SSO session, and return to a
//! registered `post_logout_redirect_uri` (with `state`) or show the signed-out page.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use serde::Deserialize;

use super::render;
use super::signed_out::{LoggedOutPage, signed_out_page};
use crate::crypto::tokens::constant_time_eq;
use crate::http::body::request_params;
use crate::http::cookies::{browser_id, expired_session_cookie, known_browser, session_id};
use crate::http::csrf::form_token;
use crate::http::error::{PageError, page_response};
use crate::http::interaction::with_cookie;
use crate::http::paths::Links;
use crate::http::sign_out::{self, Ending};
use crate::http::state::{State, blocking};
use crate::protocol::OAuthError;
use crate::protocol::sign_out::{
    LogoutRequest, check_post_logout_redirect, logout_request, post_logout_target,
};

#[derive(Template)]
#[template(path = "logout.html")]
struct LogoutPage<'a> {
    ui: crate::http::ui::Ui,
    links: Links,
    csrf: &'a str,
    client_name: Option<&'a str>,
    client_id: Option<&'a str>,
    post_logout_redirect_uri: Option<&'a str>,
    state: Option<&'a str>,
}

/// The logout form's CSRF token: derived from the browser id (which we issued), which a
/// cross-site page can neither read nor send along with a cross-site POST (SameSite=Lax).
fn logout_csrf(state: &State, browser: &str) -> String {
    form_token(state, "logout-form", "", browser)
}

pub async fn start(req: HttpRequest, body: web::Bytes, state: State) -> HttpResponse {
    let settings = state.settings.clone();
    page_response(&settings, start_page(req, body, state).await)
}

async fn start_page(
    req: HttpRequest,
    body: web::Bytes,
    state: State,
) -> Result<HttpResponse, PageError> {
    let params = request_params(&req, &body)?;
    let LogoutRequest {
        client_id,
        post_logout_redirect_uri: uri,
    } = logout_request(
        &params,
        &state.keys.current(),
        &state.settings.issuer,
        state.now(),
    )?;
    let client = match client_id.clone() {
        Some(id) => blocking(&state, move |ctx| Ok(ctx.store.find_client(&id)?)).await?,
        None => None,
    };
    if client_id.is_some() && client.is_none() {
        return Err(OAuthError::invalid_request("unknown client_id").into());
    }
    check_post_logout_redirect(client.as_ref(), uri.as_deref())?;
    let (browser, new_cookie) = browser_id(&req, &state);
    let base = &state.settings.issuer_path;
    let mut response = render(
        StatusCode::OK,
        &LogoutPage {
            ui: crate::http::ui::Ui::current(),
            links: Links::new(base),
            csrf: &logout_csrf(&state, &browser),
            client_name: client.as_ref().map(|c| c.name.as_str()),
            client_id: client_id.as_deref(),
            post_logout_redirect_uri: uri.as_deref(),
            state: params.single("state")?,
        },
    );
    if let Some(target) = &uri {
        // Confirming ends at the registered URI: the CSP must let the browser follow.
        crate::http::csp::allow_form_redirect(&mut response, target);
    }
    // Or at an upstream's logout first (issue 24, `end_session`).
    if let Some(id) = session_id(&req, &state.settings)
        && let Ok(Some(session)) = state.sessions.load_sso(&id, state.now()).await
        && let Some(endpoint) = super::upstream_logout::form_target(&state, &session).await
    {
        crate::http::csp::allow_form_redirect(&mut response, &endpoint);
    }
    Ok(match new_cookie {
        Some(c) => with_cookie(response, &c),
        None => response,
    })
}

#[derive(Deserialize)]
pub struct ConfirmForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    decision: String,
    client_id: Option<String>,
    post_logout_redirect_uri: Option<String>,
    state: Option<String>,
}

pub async fn confirm(req: HttpRequest, form: web::Form<ConfirmForm>, state: State) -> HttpResponse {
    let settings = state.settings.clone();
    page_response(&settings, confirm_page(req, form, state).await)
}

async fn confirm_page(
    req: HttpRequest,
    form: web::Form<ConfirmForm>,
    state: State,
) -> Result<HttpResponse, PageError> {
    let form = form.into_inner();
    let expected = known_browser(&req, &state).map(|b| logout_csrf(&state, &b));
    if !crate::http::csrf::from_our_pages(&req, &state.settings)
        || !expected.is_some_and(|e| constant_time_eq(form.csrf.as_bytes(), e.as_bytes()))
    {
        return Err(OAuthError::invalid_request("the form could not be verified").into());
    }
    let base = &state.settings.issuer_path;
    if form.decision != "logout" {
        return Ok(render(
            StatusCode::OK,
            &LoggedOutPage {
                ui: crate::http::ui::Ui::current(),
                links: Links::new(base),
                signed_out: false,
                frames: &[],
                continue_to: None,
                message: None,
            },
        ));
    }
    let mut frames = Vec::new();
    let mut idp = None;
    let mut upstream_id_token = None;
    if let Some(id) = session_id(&req, &state.settings) {
        // Signing out ends what the session granted: refresh tokens (offline ones too)
        // and the access tokens issued with them; every client that got tokens in it is
        // told (back-channel now, front-channel by this page's frames).
        let session = state
            .sessions
            .load_sso(&id, state.now())
            .await
            .map_err(OAuthError::from)?;
        if let Some(session) = session {
            idp = session.idp.clone();
            upstream_id_token = session.upstream_id_token.clone();
            let ending = Ending::Session {
                sid: session.sid.clone(),
                reason: "signed_out",
            };
            let ended = sign_out::end(&state, ending).await?;
            frames = sign_out::frontchannel_uris(&state, &ended, &session.sid).await?;
        }
        state
            .sessions
            .delete_sso(&id)
            .await
            .map_err(OAuthError::from)?;
    }
    let cookie = expired_session_cookie(&state.settings);
    // The redirect target travelled through the form: check it again.
    let target = match (form.client_id, form.post_logout_redirect_uri) {
        (Some(id), Some(uri)) => {
            let client = blocking(&state, move |ctx| Ok(ctx.store.find_client(&id)?)).await?;
            check_post_logout_redirect(client.as_ref(), Some(&uri))
                .ok()
                .map(|_| uri)
        }
        _ => None,
    };
    let target = match target {
        Some(uri) => Some(post_logout_target(&uri, form.state.as_deref())?),
        None => None,
    };
    // Issue 24: a session signed in through a provider with `end_session` goes on to
    // the upstream's logout, and comes back to `target`.
    let target = super::upstream_logout::after_sign_out(
        &req,
        &state,
        idp.as_deref(),
        upstream_id_token.as_deref(),
        target,
    )
    .await;
    let response = signed_out_page(base, &frames, target.as_deref(), None);
    Ok(with_cookie(response, &cookie))
}
