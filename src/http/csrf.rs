//! Cross-site request forgery defences of our forms: where a POST comes from, and the
//! tokens the forms carry.

use actix_web::HttpRequest;

use crate::config::Settings;
use crate::http::state::AppState;

/// Whether a form POST comes from one of our own pages. Cookies ignore ports, so a sibling
/// site (another port or subdomain) can plant or use our cookies; `Origin` (and
/// `Sec-Fetch-Site`, which browsers send with it) cannot be forged by a page. A request
/// with neither (an old browser, a script) is left to the CSRF token alone.
pub fn from_our_pages(req: &HttpRequest, settings: &Settings) -> bool {
    let ours = url::Url::parse(&settings.issuer)
        .map(|u| u.origin().ascii_serialization())
        .unwrap_or_default();
    if let Some(origin) = req.headers().get("origin") {
        return origin.to_str().is_ok_and(|o| o == ours);
    }
    match req.headers().get("sec-fetch-site") {
        Some(site) => site.to_str().is_ok_and(|s| s == "same-origin"),
        None => true,
    }
}

/// The CSRF token of a form of the interaction `handle` in `browser`: derived, never
/// stored, and worthless in any other browser.
pub fn form_token(state: &AppState, purpose: &str, handle: &str, browser: &str) -> String {
    state.kek.derive(purpose, &format!("{handle}\n{browser}"))
}
