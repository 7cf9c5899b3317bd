//! Signing in to the console (authorize with PKCE, then the callback redeems the code)
//! and signing out of it.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;

use super::{
    CsrfForm, LOGIN_CONTEXT, LOGIN_COOKIE, Page, SESSION_CONTEXT, SESSION_COOKIE, cookie, finish,
    links, see_other, verified,
};
use crate::admin::CONSOLE_CLIENT_ID;
use crate::crypto::tokens::{constant_time_eq, pkce_s256, random_token};
use crate::http::error::PageError;
use crate::http::interaction::{redirect, with_cookie};
use crate::http::paths::console::{CALLBACK, HOME};
use crate::http::state::State;
use crate::protocol::features;
use crate::protocol::grants::{TokenRequest, exchange};
use crate::protocol::{ErrorCode, OAuthError, Params};

/// Sends the browser to sign in: authorize with PKCE, the state and verifier sealed in
/// a short-lived cookie.
pub(super) fn start(state: &State) -> HttpResponse {
    let verifier = random_token(32);
    let nonce = random_token(16);
    let login = serde_json::json!({ "state": nonce, "verifier": verifier });
    let Ok(sealed) = state
        .kek
        .encrypt(login.to_string().as_bytes(), LOGIN_CONTEXT)
    else {
        return PageError(OAuthError::server("cannot seal the console sign-in"))
            .render(&state.settings.issuer_path);
    };
    let Ok(mut url) = url::Url::parse(&state.settings.endpoint(features::AUTHORIZATION.path))
    else {
        return PageError(OAuthError::server("the issuer is not a URL"))
            .render(&state.settings.issuer_path);
    };
    url.query_pairs_mut()
        .append_pair("response_type", "code")
        .append_pair("client_id", CONSOLE_CLIENT_ID)
        .append_pair("redirect_uri", &state.settings.endpoint(CALLBACK))
        .append_pair("scope", "openid admin")
        .append_pair("state", &nonce)
        .append_pair("code_challenge", &pkce_s256(&verifier))
        .append_pair("code_challenge_method", "S256");
    with_cookie(
        redirect(StatusCode::SEE_OTHER, url.as_str()),
        &cookie(state, LOGIN_COOKIE, sealed, 600),
    )
}

#[derive(Deserialize)]
pub(super) struct CallbackQuery {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
}

#[derive(Deserialize)]
struct PendingLogin {
    state: String,
    verifier: String,
}

pub(super) async fn callback(
    req: HttpRequest,
    query: web::Query<CallbackQuery>,
    state: State,
) -> HttpResponse {
    let page = callback_page(&req, query.into_inner(), &state).await;
    finish(&state, page)
}

async fn callback_page(req: &HttpRequest, query: CallbackQuery, state: &State) -> Page {
    let refused = || {
        OAuthError::new(
            ErrorCode::AccessDenied,
            "the console sign-in did not complete",
        )
    };
    let pending: PendingLogin = req
        .cookie(LOGIN_COOKIE)
        .and_then(|c| state.kek.decrypt(c.value(), LOGIN_CONTEXT).ok())
        .and_then(|plain| serde_json::from_slice(&plain).ok())
        .ok_or_else(refused)?;
    let same_state = query
        .state
        .as_deref()
        .is_some_and(|s| constant_time_eq(s.as_bytes(), pending.state.as_bytes()));
    if !same_state || query.error.is_some() {
        return Err(refused().into());
    }
    let code = query.code.ok_or_else(refused)?;
    let form = serde_urlencoded::to_string([
        ("grant_type", "authorization_code"),
        ("code", &code),
        ("redirect_uri", &state.settings.endpoint(CALLBACK)),
        ("code_verifier", &pending.verifier),
        ("client_id", CONSOLE_CLIENT_ID),
    ])
    .map_err(OAuthError::server)?;
    let params = Params::from_urlencoded(&form)?;
    let tokens = crate::http::state::blocking(state, move |ctx| {
        let client = ctx
            .store
            .find_client(CONSOLE_CLIENT_ID)?
            .ok_or_else(|| OAuthError::server("the console client is not registered"))?;
        exchange(TokenRequest::parse(&params)?, &client, None, ctx)
    })
    .await?;
    let sealed = state
        .kek
        .encrypt(tokens.access_token.as_bytes(), SESSION_CONTEXT)
        .map_err(OAuthError::server)?;
    let response = with_cookie(
        see_other(&links(state).console_users()),
        &cookie(
            state,
            SESSION_COOKIE,
            sealed,
            state.settings.access_token_ttl.as_secs(),
        ),
    );
    Ok(with_cookie(
        response,
        &cookie(state, LOGIN_COOKIE, String::new(), 0),
    ))
}

/// Signs out of the console and of the provider (RP-initiated logout, back to `/admin`).
pub(super) async fn logout(
    req: HttpRequest,
    form: web::Form<CsrfForm>,
    state: State,
) -> HttpResponse {
    let page = async {
        verified(&req, &state, &form.csrf).await?;
        let mut url = url::Url::parse(&state.settings.endpoint(features::END_SESSION.path))
            .map_err(|_| OAuthError::server("the issuer is not a URL"))?;
        url.query_pairs_mut()
            .append_pair("client_id", CONSOLE_CLIENT_ID)
            .append_pair("post_logout_redirect_uri", &state.settings.endpoint(HOME));
        Ok(with_cookie(
            redirect(StatusCode::SEE_OTHER, url.as_str()),
            &cookie(&state, SESSION_COOKIE, String::new(), 0),
        ))
    }
    .await;
    finish(&state, page)
}
