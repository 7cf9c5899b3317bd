//! Server-rendered pages (askama): one module per page, one base layout, one stylesheet.

pub mod account;
pub mod consent;
pub mod device;
pub mod factor;
pub mod login;
pub mod logout;
pub mod passkey;
pub mod reset;
pub mod security;
pub mod sign_in_ports;
pub mod signed_out;
pub mod signup;
pub mod upstream;
pub mod upstream_form_post;
pub mod upstream_link;
pub mod upstream_logout;
pub mod upstream_start;
pub mod verify_email;

use actix_web::http::header;
use actix_web::{HttpResponse, web};

use crate::config::Settings;

const STYLESHEET: &str = include_str!("../../../static/style.css");
const FRONTCHANNEL_SCRIPT: &str = include_str!("../../../static/frontchannel.js");
const PASSKEY_SCRIPT: &str = include_str!("../../../static/passkey.js");
const FAVICON: &str = include_str!("../../../static/favicon.svg");

pub use crate::http::page::{error_page, not_found_page, render};

pub fn configure(cfg: &mut web::ServiceConfig, _settings: &Settings) {
    use crate::http::paths::{self, assets};
    use crate::http::routes::at;
    cfg.service(at(paths::LOGIN).get(login::show).post(login::submit).done())
        .service(
            at(paths::SECOND_FACTOR)
                .get(factor::show)
                .post(factor::submit)
                .done(),
        )
        .service(
            at(paths::CONSENT)
                .get(consent::show)
                .post(consent::submit)
                .done(),
        )
        .service(
            at(paths::DEVICE)
                .get(device::show)
                .post(device::submit)
                .done(),
        )
        .service(
            at(crate::protocol::features::END_SESSION.path)
                .get(logout::start)
                .post(logout::start)
                .done(),
        )
        .service(
            at(paths::PASSKEY_SIGN_IN_OPTIONS)
                .post(passkey::sign_in::options)
                .done(),
        )
        .service(
            at(paths::PASSKEY_SIGN_IN_FINISH)
                .post(passkey::sign_in::finish)
                .done(),
        )
        .service(
            at(paths::signup::INVITATION_PASSKEY_OPTIONS)
                .post(passkey::invitation::options)
                .done(),
        )
        .service(
            at(paths::signup::INVITATION_PASSKEY_FINISH)
                .post(passkey::invitation::finish)
                .done(),
        )
        .service(
            at(paths::account::PASSKEY_OPTIONS)
                .post(passkey::registration::options)
                .done(),
        )
        .service(
            at(paths::account::PASSKEY_FINISH)
                .post(passkey::registration::finish)
                .done(),
        )
        .service(
            at(paths::FORGOT_PASSWORD)
                .get(reset::show_request)
                .post(reset::submit_request)
                .done(),
        )
        .service(
            at(paths::RESET_PASSWORD)
                .get(reset::show_link)
                .post(reset::use_link)
                .done(),
        )
        .service(
            at(paths::RESET_NEW_PASSWORD)
                .get(reset::show_password)
                .post(reset::submit_password)
                .done(),
        )
        .service(
            at(paths::account::VERIFY_EMAIL)
                .get(verify_email::show_link)
                .post(verify_email::use_link)
                .done(),
        )
        .service(at(paths::account::EMAIL).post(verify_email::request).done())
        .service(at(paths::LOGOUT_CONFIRM).post(logout::confirm).done())
        .service(at(paths::account::HOME).get(account::show).done())
        .service(
            at(paths::account::SECURITY)
                .get(security::show)
                .post(security::submit)
                .done(),
        )
        .service(
            at(paths::account::END_SESSION)
                .post(account::end_session)
                .done(),
        )
        .service(
            at(paths::account::SIGN_OUT_EVERYWHERE)
                .post(account::sign_out_everywhere)
                .done(),
        )
        .service(
            at(paths::account::UNLINK_UPSTREAM)
                .post(account::unlink_upstream)
                .done(),
        )
        .service(
            at(paths::account::WITHDRAW_CONSENT)
                .post(account::withdraw_consent)
                .done(),
        )
        .service(at(assets::STYLESHEET).get(stylesheet).done())
        .service(at(assets::FAVICON).get(favicon).done())
        .service(at(assets::BRAND_STYLESHEET).get(brand_stylesheet).done())
        .service(
            at(assets::FRONTCHANNEL_SCRIPT)
                .get(frontchannel_script)
                .done(),
        )
        .service(at(assets::PASSKEY_SCRIPT).get(passkey_script).done())
        .configure(signup::configure)
        .configure(upstream::configure);
}

async fn stylesheet() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/css; charset=utf-8")
        .insert_header((header::CACHE_CONTROL, "public, max-age=3600"))
        .body(STYLESHEET)
}

/// The operator's branding (`brand_accent_color`, `brand_stylesheet`), after ours.
async fn brand_stylesheet(state: crate::http::state::State) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/css; charset=utf-8")
        .insert_header((header::CACHE_CONTROL, "public, max-age=3600"))
        .body(state.settings.brand.css())
}

async fn favicon() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("image/svg+xml")
        .insert_header((header::CACHE_CONTROL, "public, max-age=86400"))
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .body(FAVICON)
}

async fn frontchannel_script() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/javascript; charset=utf-8")
        .insert_header((header::CACHE_CONTROL, "public, max-age=3600"))
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .body(FRONTCHANNEL_SCRIPT)
}

/// The passkey ceremonies' browser side (pages that use it call
/// `csp::allow_passkey_script`).
async fn passkey_script() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/javascript; charset=utf-8")
        .insert_header((header::CACHE_CONTROL, "public, max-age=3600"))
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .body(PASSKEY_SCRIPT)
}
