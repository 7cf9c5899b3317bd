//! The provider's browser cookies: the SSO session and the browser id.

use actix_web::HttpRequest;
use actix_web::cookie::{Cookie, SameSite, time::Duration as CookieDuration};

use crate::config::Settings;
use crate::crypto::tokens::random_token;
use crate::http::state::AppState;

/// The browser's cookies, named so that Secure cookies get the `__Host-` guarantee
/// (RFC 6265bis §4.1.3.2: Secure, Path=/, no Domain).
pub struct CookieNames;

impl CookieNames {
    pub fn session(settings: &Settings) -> &'static str {
        if settings.cookie_secure {
            "__Host-portcullis_session"
        } else {
            "portcullis_session"
        }
    }

    pub fn browser(settings: &Settings) -> &'static str {
        if settings.cookie_secure {
            "__Host-portcullis_browser"
        } else {
            "portcullis_browser"
        }
    }

    /// The one-time cookie binding an upstream sign-in to the browser that started it.
    pub fn upstream_state(settings: &Settings) -> &'static str {
        if settings.cookie_secure {
            "__Host-portcullis_upstream"
        } else {
            "portcullis_upstream"
        }
    }

    /// The cookie binding a link proof to the browser the upstream sign-in came back to.
    pub fn upstream_link(settings: &Settings) -> &'static str {
        if settings.cookie_secure {
            "__Host-portcullis_upstream_link"
        } else {
            "portcullis_upstream_link"
        }
    }
}

fn cookie(
    settings: &Settings,
    name: &'static str,
    value: String,
    max_age: Option<i64>,
) -> Cookie<'static> {
    let mut c = Cookie::build(name, value)
        .path("/")
        .http_only(true)
        .secure(settings.cookie_secure)
        .same_site(SameSite::Lax)
        .finish();
    if let Some(seconds) = max_age {
        c.set_max_age(CookieDuration::seconds(seconds));
    }
    c
}

pub fn session_cookie(settings: &Settings, session_id: String) -> Cookie<'static> {
    cookie(
        settings,
        CookieNames::session(settings),
        session_id,
        Some(settings.session_ttl.as_secs()),
    )
}

pub fn expired_session_cookie(settings: &Settings) -> Cookie<'static> {
    cookie(
        settings,
        CookieNames::session(settings),
        String::new(),
        Some(0),
    )
}

const BROWSER_ID: &str = "browser-id";

/// A new browser id: random, with our MAC, so that a value the client made up (or one a
/// sibling site planted) is never taken for one we issued.
fn new_browser_id(state: &AppState) -> String {
    let nonce = random_token(24);
    format!("{nonce}.{}", state.kek.derive(BROWSER_ID, &nonce))
}

fn issued_by_us(state: &AppState, value: &str) -> bool {
    value.split_once('.').is_some_and(|(nonce, mac)| {
        crate::crypto::tokens::constant_time_eq(
            state.kek.derive(BROWSER_ID, nonce).as_bytes(),
            mac.as_bytes(),
        )
    })
}

/// The id of this browser, if it carries one we issued.
pub fn known_browser(req: &HttpRequest, state: &AppState) -> Option<String> {
    req.cookie(CookieNames::browser(&state.settings))
        .map(|c| c.value().to_owned())
        .filter(|v| issued_by_us(state, v))
}

/// The browser id that binds interactions (authorization requests, their forms, logout)
/// to this browser: the one it carries, or a new one to set.
pub fn browser_id(req: &HttpRequest, state: &AppState) -> (String, Option<Cookie<'static>>) {
    match known_browser(req, state) {
        Some(id) => (id, None),
        None => {
            let id = new_browser_id(state);
            let c = cookie(
                &state.settings,
                CookieNames::browser(&state.settings),
                id.clone(),
                Some(400 * 86_400),
            );
            (id, Some(c))
        }
    }
}

pub fn session_id(req: &HttpRequest, settings: &Settings) -> Option<String> {
    req.cookie(CookieNames::session(settings))
        .map(|c| c.value().to_owned())
        .filter(|v| !v.is_empty())
}
