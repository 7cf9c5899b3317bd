//! The authorization endpoint (RFC 6749 §3.1, OIDC Core §3.1.2), GET and POST, and the
//! interaction it starts: login and consent pages continue the same pending request.

use std::time::Duration;

use actix_web::cookie::Cookie;
use actix_web::http::{Method, StatusCode, header};
use actix_web::{HttpRequest, HttpResponse, web};
use serde::{Deserialize, Serialize};

use crate::crypto::tokens::{constant_time_eq, random_token, token_hash};
use crate::http::error::{PageError, page_response};
use crate::http::{
    State, blocking, browser_id, form_token, known_browser, request_params, session_id,
};
use crate::protocol::authorize::pushed::{self, PushedRequest};
use crate::protocol::authorize::request_object;
use crate::protocol::authorize::{
    Authentication, AuthorizationRequest, AuthorizationResponse, AuthorizeError, Next,
    drop_unconsented_offline_access, issue_response, next_step, resolve_redirect_uri, validate,
};
use crate::protocol::logout::session_user;
use crate::protocol::tokens::subject_for;
use crate::protocol::{ErrorCode, OAuthError, Params};
use crate::sessions::SsoSession;

/// How long a user has to finish logging in and consenting.
const INTERACTION_TTL: Duration = Duration::from_secs(600);

/// Pending requests one client address may open per window: far above what a person
/// does, far below what would fill the session store.
const MAX_PENDING_PER_ADDRESS: i64 = 120;
const PENDING_WINDOW: Duration = Duration::from_secs(60);

/// Every pending request is counted against its client address before it is stored.
async fn admit_pending(req: &HttpRequest, state: &State) -> Result<(), PageError> {
    let address = crate::http::client_address_of(req, &state.settings);
    let count = state
        .sessions
        .count_event("pending", &crate::http::limit_key(&address), PENDING_WINDOW)
        .await
        .map_err(OAuthError::from)?;
    if count > MAX_PENDING_PER_ADDRESS {
        return Err(OAuthError::new(
            ErrorCode::RateLimited,
            "too many sign-in requests from this address; wait a minute and try again",
        )
        .into());
    }
    Ok(())
}

/// An authorization request waiting for the user, bound to the browser that first
/// opened it. It holds nothing from which a cookie or a form token could be rebuilt:
/// only hashes of them (whoever reads the session store must not get a credential).
#[derive(Debug, Serialize, Deserialize)]
pub struct Pending {
    pub request: AuthorizationRequest,
    pub client_name: String,
    /// The client registered itself (dynamic registration): the consent page says so.
    #[serde(default)]
    pub client_unverified: bool,
    /// Hash of the browser id: pages and forms from any other browser are refused.
    pub browser: String,
    /// A POSTed request: hash of the one-time cookie set on the browser that posted it,
    /// so only that browser can continue it.
    #[serde(default)]
    pub continue_hash: Option<String>,
    /// Hash of the session created by a login during this interaction (a fresh
    /// authentication).
    pub logged_in_session: Option<String>,
    /// A sign-in to the account page, not an authorization request: it ends at the
    /// account page, with no client and no consent.
    #[serde(default)]
    pub for_account: bool,
}

/// What a form token is for: a token of one form is no good in another.
pub const LOGIN_FORM: &str = "login-form";
pub const CONSENT_FORM: &str = "consent-form";

impl Pending {
    /// The browser id of `req` if it is the browser this interaction is bound to.
    pub fn bound_browser(&self, req: &HttpRequest, state: &State) -> Option<String> {
        known_browser(req, state).filter(|b| {
            !self.browser.is_empty()
                && constant_time_eq(token_hash(b).as_bytes(), self.browser.as_bytes())
        })
    }

    /// Both CSRF defences: the request comes from the bound browser, and the form's token
    /// is the one derived for this interaction, form and browser.
    pub fn accepts(
        &self,
        req: &HttpRequest,
        state: &State,
        purpose: &str,
        handle: &str,
        csrf: &str,
    ) -> bool {
        self.bound_browser(req, state).is_some_and(|browser| {
            constant_time_eq(
                form_token(state, purpose, handle, &browser).as_bytes(),
                csrf.as_bytes(),
            )
        })
    }

    pub fn fresh_login_of(&self, session: &SsoSession) -> bool {
        self.logged_in_session
            .as_deref()
            .is_some_and(|h| constant_time_eq(h.as_bytes(), token_hash(&session.id).as_bytes()))
    }
}

/// The page shown when a sign-in link is opened in another browser than the one that
/// started it.
pub fn other_browser() -> OAuthError {
    OAuthError::invalid_request(
        "this sign-in was started in another browser; return to the application and start again",
    )
}

/// The cookie that lets the browser which POSTed an authorization request continue it.
fn continue_cookie_name(handle: &str) -> String {
    format!("portcullis_continue_{}", &handle[..handle.len().min(12)])
}

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
    let mut pending = Pending {
        request,
        client_unverified: client.registered_dynamically,
        client_name: client.name,
        browser: String::new(),
        continue_hash: None,
        logged_in_session: None,
        for_account: false,
    };
    if req.method() == Method::POST {
        admit_pending(&req, &state).await?;
        // A cross-site POST carries no SameSite=Lax cookies, so the session and browser
        // cookies are invisible here. Park the request and continue with a GET (a
        // top-level navigation, which does carry them). The response sets a one-time
        // cookie: a browser accepts cookies from it, and only the browser that posted can
        // then continue (a continue link passed to someone else is worthless).
        let handle = random_token(24);
        let nonce = random_token(24);
        pending.continue_hash = Some(token_hash(&nonce));
        state
            .sessions
            .save_pending(&handle, &pending, INTERACTION_TTL)
            .await
            .map_err(OAuthError::from)?;
        let location = format!(
            "{}/authorize/continue?id={handle}",
            state.settings.issuer_path
        );
        let cookie = Cookie::build(continue_cookie_name(&handle), nonce)
            .path(format!("{}/authorize/continue", state.settings.issuer_path))
            .http_only(true)
            .secure(state.settings.cookie_secure)
            .same_site(actix_web::cookie::SameSite::Lax)
            .max_age(actix_web::cookie::time::Duration::seconds(
                INTERACTION_TTL.as_secs() as i64,
            ))
            .finish();
        return Ok(with_cookie(
            redirect(StatusCode::SEE_OTHER, &location),
            &cookie,
        ));
    }
    let (browser, new_cookie) = browser_id(&req, &state);
    pending.browser = token_hash(&browser);
    let response = proceed(&req, &state, pending, None, None).await?;
    Ok(match new_cookie {
        Some(cookie) => with_cookie(response, &cookie),
        None => response,
    })
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
    let mut pending = load_pending(&state, &query.id).await?;
    if !pending.browser.is_empty() {
        // Already bound to a browser: this link was used before.
        return Err(expired().into());
    }
    let name = continue_cookie_name(&query.id);
    let posted_here = req.cookie(&name).is_some_and(|c| {
        pending
            .continue_hash
            .as_deref()
            .is_some_and(|h| constant_time_eq(token_hash(c.value()).as_bytes(), h.as_bytes()))
    });
    if !posted_here {
        return Err(other_browser().into());
    }
    let (browser, new_cookie) = browser_id(&req, &state);
    pending.browser = token_hash(&browser);
    pending.continue_hash = None;
    let mut response = proceed(&req, &state, pending, Some(query.into_inner().id), None).await?;
    let mut used = Cookie::build(name, "")
        .path(format!("{}/authorize/continue", state.settings.issuer_path))
        .finish();
    used.make_removal();
    response = with_cookie(response, &used);
    Ok(match new_cookie {
        Some(cookie) => with_cookie(response, &cookie),
        None => response,
    })
}

/// Takes the pending request one step further: to the login page, the consent page, or
/// back to the client with a code or an error.
///
/// `handle` is the pending request's id when it is already stored; `fresh_session` is a
/// session created by a login in this very request (its cookie is not on `req` yet).
pub async fn proceed(
    req: &HttpRequest,
    state: &State,
    mut pending: Pending,
    handle: Option<String>,
    fresh_session: Option<SsoSession>,
) -> Result<HttpResponse, PageError> {
    let now = state.now();
    let session = match fresh_session {
        Some(s) => Some(s),
        None => match session_id(req, &state.settings) {
            Some(id) => state
                .sessions
                .load_sso(&id, now)
                .await
                .map_err(OAuthError::from)?,
            None => None,
        },
    };
    let (session, consent) = match session {
        Some(s) => {
            let (session, client_id) = (s.clone(), pending.request.client_id.clone());
            let hint = pending.request.hinted_sub.clone();
            let (user_exists, consent, hint_names_user) = blocking(state, move |ctx| {
                Ok(match session_user(ctx.store, &session)? {
                    Some(user) => {
                        // An id_token_hint names the user as this client knows them
                        // (a pairwise `sub`, perhaps): is it this session's user?
                        let hinted = match (&hint, ctx.store.find_client(&client_id)?) {
                            (Some(h), Some(c)) => *h == subject_for(&c, &user.id, ctx.kek),
                            _ => false,
                        };
                        (true, ctx.store.find_consent(&user.id, &client_id)?, hinted)
                    }
                    None => (false, None, false),
                })
            })
            .await?;
            if hint_names_user {
                pending.request.hinted_sub = Some(s.user_id.clone());
            }
            if user_exists {
                (Some(s), consent)
            } else {
                // The user was removed, or changed the password, since signing in: the
                // session is worthless.
                state
                    .sessions
                    .delete_sso(&s.id)
                    .await
                    .map_err(OAuthError::from)?;
                (None, None)
            }
        }
        None => (None, None),
    };
    drop_unconsented_offline_access(&mut pending.request, consent.as_ref());
    let auth = session.as_ref().map(|s| Authentication {
        session: s,
        fresh: pending.fresh_login_of(s),
    });
    let step = match (pending.for_account, &session) {
        (false, _) => next_step(&pending.request, auth.as_ref(), consent.as_ref(), now),
        (true, None) => Next::Login,
        (true, Some(_)) => {
            forget_pending(state, handle.as_deref()).await?;
            let account = format!("{}/account", state.settings.issuer_path);
            return Ok(redirect(StatusCode::SEE_OTHER, &account));
        }
    };
    let page = match step {
        Next::Login => "/login",
        Next::Consent => "/consent",
        Next::Fail(code) => {
            forget_pending(state, handle.as_deref()).await?;
            let response = AuthorizationResponse::error_for(
                &pending.request,
                &OAuthError::bare(code),
                &state.settings.issuer,
            );
            return Ok(respond(&response, state));
        }
        Next::IssueCode => {
            if let Some(h) = &handle {
                // One-time: if another tab already finished this request, stop here.
                if state
                    .sessions
                    .take_pending::<Pending>(h)
                    .await
                    .map_err(OAuthError::from)?
                    .is_none()
                {
                    return Err(expired().into());
                }
            }
            let Some(session) = session else {
                return Err(OAuthError::server("no session").into());
            };
            let request = pending.request.clone();
            return match blocking(state, move |ctx| issue_response(&request, &session, ctx)).await {
                Ok(response) => Ok(respond(&response, state)),
                Err(error) => {
                    // Nothing was issued: give the interaction back so that the user can
                    // retry (e.g. once the database is back) instead of starting over.
                    if let Some(h) = &handle {
                        let _ = state
                            .sessions
                            .save_pending(h, &pending, INTERACTION_TTL)
                            .await;
                    }
                    Err(error.into())
                }
            };
        }
    };
    let handle = match handle {
        Some(h) => h,
        None => {
            // Only requests that are stored count (an SSO sign-in stores nothing).
            admit_pending(req, state).await?;
            random_token(24)
        }
    };
    state
        .sessions
        .save_pending(&handle, &pending, INTERACTION_TTL)
        .await
        .map_err(OAuthError::from)?;
    let location = format!("{}{page}?id={handle}", state.settings.issuer_path);
    Ok(redirect(StatusCode::SEE_OTHER, &location))
}

/// Sends a browser with no session through the login page to the account page.
pub async fn sign_in_to_account(
    req: &HttpRequest,
    state: &State,
) -> Result<HttpResponse, PageError> {
    let (browser, new_cookie) = browser_id(req, state);
    let pending = Pending {
        request: AuthorizationRequest::default(),
        client_name: "your account".into(),
        client_unverified: false,
        browser: token_hash(&browser),
        continue_hash: None,
        logged_in_session: None,
        for_account: true,
    };
    let response = proceed(req, state, pending, None, None).await?;
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

/// Ends a stored interaction that is over (finished, or failed back to the client).
async fn forget_pending(state: &State, handle: Option<&str>) -> Result<(), PageError> {
    if let Some(h) = handle {
        state
            .sessions
            .take_pending::<Pending>(h)
            .await
            .map_err(OAuthError::from)?;
    }
    Ok(())
}

pub fn expired() -> OAuthError {
    OAuthError::invalid_request(
        "this sign-in request has expired or was already completed; return to the application and start again",
    )
}

pub fn redirect(status: StatusCode, location: &str) -> HttpResponse {
    HttpResponse::build(status)
        .insert_header((header::LOCATION, location))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .finish()
}

/// Loads the pending request named by a page's `id` parameter.
pub async fn load_pending(state: &State, handle: &str) -> Result<Pending, PageError> {
    state
        .sessions
        .load_pending::<Pending>(handle)
        .await
        .map_err(OAuthError::from)?
        .ok_or_else(|| expired().into())
}

/// Ends the interaction with an error sent to the client (e.g. `access_denied`).
pub async fn finish_with_error(
    state: &State,
    handle: &str,
    pending: &Pending,
    code: ErrorCode,
) -> Result<HttpResponse, PageError> {
    state
        .sessions
        .take_pending::<Pending>(handle)
        .await
        .map_err(OAuthError::from)?;
    let response = AuthorizationResponse::error_for(
        &pending.request,
        &OAuthError::bare(code),
        &state.settings.issuer,
    );
    Ok(respond(&response, state))
}

#[derive(askama::Template)]
#[template(path = "form_post.html")]
struct FormPostPage<'a> {
    base: &'a str,
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
    let mut page = crate::http::pages::render(
        StatusCode::OK,
        &FormPostPage {
            base: &state.settings.issuer_path,
            action: &response.redirect_uri,
            params: &response.params,
            nonce: &nonce,
        },
    );
    crate::http::allow_form_redirect(&mut page, &response.redirect_uri);
    crate::http::allow_script_nonce(&mut page, &nonce);
    page
}

pub fn with_cookie(mut response: HttpResponse, cookie: &Cookie<'_>) -> HttpResponse {
    let _ = response.add_cookie(cookie);
    response
}
