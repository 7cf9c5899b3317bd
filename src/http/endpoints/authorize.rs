//! The authorization endpoint (RFC 6749 §3.1, OIDC Core §3.1.2), GET and POST: validates
//! the request and starts its interaction (`http::interaction`), which the login and
//! consent pages continue.

use actix_web::cookie::Cookie;
use actix_web::http::{Method, StatusCode};
use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;

use crate::crypto::tokens::random_token;
use crate::http::body::request_params;
use crate::http::cookies::browser_id;
use crate::http::error::{PageError, page_response};
use crate::http::interaction::{
    INTERACTION_TTL, admit, load, proceed, redirect, respond, save, start, with_cookie,
};
use crate::http::state::{State, blocking};
use crate::protocol::authorize::pushed::{self, PushedRequest};
use crate::protocol::authorize::request_object;
use crate::protocol::authorize::{AuthorizeError, resolve_redirect_uri, validate};
use crate::protocol::interaction::{Interaction, continue_cookie_name};
use crate::protocol::{OAuthError, Params};

/// Where a POSTed authorization request continues as a GET (`resume`), below the issuer.
pub const CONTINUE: &str = "/authorize/continue";

pub async fn authorize(req: HttpRequest, body: web::Bytes, state: State) -> HttpResponse {
    let settings = state.settings.clone();
    page_response(&settings, authorize_page(req, body, state).await)
}

async fn authorize_page(
    req: HttpRequest,
    body: web::Bytes,
    state: State,
) -> Result<HttpResponse, PageError> {
    let params = pushed_request(request_params(&req, &body)?, &state).await?;
    let pushed = params.is_some();
    let params = match params {
        Some(p) => p,
        None => request_params(&req, &body)?,
    };
    let (client, request) = blocking(&state, move |ctx| {
        let client_id = params.required("client_id")?;
        let client = ctx
            .store
            .find_client(client_id)?
            .ok_or_else(|| OAuthError::invalid_client("unknown client_id"))?;
        // RFC 9101: a request object (by value or by a registered reference) is verified
        // before anything of the request is trusted, its redirect URI included.
        let params = request_object::expand(params, &client, ctx)?;
        let redirect_uri = resolve_redirect_uri(&params, &client)?;
        Ok((
            client.clone(),
            validate(&params, &client, redirect_uri, pushed, ctx),
        ))
    })
    .await?;
    let request = match request {
        Ok(request) => request,
        Err(AuthorizeError::Page(error)) => return Err(error.into()),
        Err(AuthorizeError::Redirect { response, .. }) => return Ok(respond(&response, &state)),
    };
    let mut interaction = Interaction::new(request, &client);
    if req.method() != Method::POST {
        return start(&req, &state, interaction).await;
    }
    admit(&req, &state).await?;
    // A cross-site POST carries no SameSite=Lax cookies, so the session and browser
    // cookies are invisible here. Park the request and continue with a GET (a top-level
    // navigation, which does carry them). The response sets a one-time cookie: a browser
    // accepts cookies from it, and only the browser that posted can then continue (a
    // continue link passed to someone else is worthless).
    let handle = random_token(24);
    let nonce = interaction.park();
    save(&state, &handle, &interaction).await?;
    let location = format!("{}{CONTINUE}?id={handle}", state.settings.issuer_path);
    let cookie = Cookie::build(continue_cookie_name(&handle), nonce)
        .path(format!("{}{CONTINUE}", state.settings.issuer_path))
        .http_only(true)
        .secure(state.settings.cookie_secure)
        .same_site(actix_web::cookie::SameSite::Lax)
        .max_age(actix_web::cookie::time::Duration::seconds(
            INTERACTION_TTL.as_secs() as i64,
        ))
        .finish();
    Ok(with_cookie(
        redirect(StatusCode::SEE_OTHER, &location),
        &cookie,
    ))
}

#[derive(Deserialize)]
pub struct ContinueQuery {
    id: String,
}

/// The GET that follows a POSTed authorization request: binds it to this browser, then
/// continues as a GET request would have.
pub async fn resume(
    req: HttpRequest,
    query: web::Query<ContinueQuery>,
    state: State,
) -> HttpResponse {
    let settings = state.settings.clone();
    page_response(&settings, resume_page(req, query, state).await)
}

async fn resume_page(
    req: HttpRequest,
    query: web::Query<ContinueQuery>,
    state: State,
) -> Result<HttpResponse, PageError> {
    let mut interaction = load(&state, &query.id).await?;
    let name = continue_cookie_name(&query.id);
    let (browser, new_cookie) = browser_id(&req, &state);
    interaction.claim_parked(req.cookie(&name).as_ref().map(|c| c.value()), &browser)?;
    let mut response =
        proceed(&req, &state, interaction, Some(query.into_inner().id), None).await?;
    let mut used = Cookie::build(name, "")
        .path(format!("{}{CONTINUE}", state.settings.issuer_path))
        .finish();
    used.make_removal();
    response = with_cookie(response, &used);
    Ok(match new_cookie {
        Some(cookie) => with_cookie(response, &cookie),
        None => response,
    })
}

/// The parameters of the pushed request a `request_uri` of ours names (RFC 9126 §4),
/// taken (it is good once); `None` for a request that names none. The pushed parameters
/// are the request: the others (but `client_id`, which must match) are ignored.
async fn pushed_request(params: Params, state: &State) -> Result<Option<Params>, PageError> {
    let Some(handle) = params.single("request_uri")?.and_then(pushed::handle_of) else {
        return Ok(None);
    };
    let stored: Option<PushedRequest> = state
        .sessions
        .take_pushed(handle)
        .await
        .map_err(OAuthError::from)?;
    let stored = stored.ok_or_else(pushed::invalid_request_uri)?;
    Ok(Some(
        stored.redeem(params.single("client_id")?, state.now())?,
    ))
}
