//! The actix-web adapter: parse HTTP into typed requests, call `protocol`, write responses.
//! Only this module (and below) knows actix-web: `server` builds the servers and hides
//! their runtime from `startup` and the CLI.

pub mod admin_api;
pub mod bearer;
pub mod body;
pub mod client_address;
pub mod console;
pub mod cookies;
pub mod csp;
pub mod csrf;
pub mod device;
pub mod dpop;
pub mod dpop_headers;
pub mod endpoints;
pub mod error;
pub mod interaction;
pub mod observability;
pub mod page;
pub mod pages;
pub mod paths;
pub mod routes;
pub mod server;
pub mod sign_out;
pub mod state;
pub mod ui;

use actix_web::web;

use crate::config::Settings;

// The names handlers have always imported from `crate::http`.
pub use body::{
    BODY_LIMIT, BODY_TIMEOUT, BodyType, form_params, is_media_type, read_body, request_params,
};
pub use client_address::{client_address, client_address_of, forwarded_for, limit_key};
pub use cookies::{
    CookieNames, browser_id, expired_session_cookie, known_browser, session_cookie, session_id,
};
pub use csp::{
    allow_form_redirect, allow_frames, allow_passkey_script, allow_script_nonce, frame_source,
};
pub use csrf::{form_token, from_our_pages};
pub use server::{HSTS, sends_hsts};
pub use state::{AppState, State, blocking, read_mostly_cached};

/// Mounts every route under the issuer's path.
pub fn routes(cfg: &mut web::ServiceConfig, settings: &Settings) {
    let scope = web::scope(&settings.issuer_path)
        .configure(endpoints::configure)
        .configure(admin_api::configure)
        .configure(console::configure)
        .configure(|c| pages::configure(c, settings));
    // Unknown paths, below the issuer's path or not: actix's default is an empty 404.
    cfg.service(scope)
        .default_service(web::to(error::not_found));
}
