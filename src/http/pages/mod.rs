//! Server-rendered pages (askama): one module per page, one base layout, one stylesheet.

pub mod account;
pub mod consent;
pub mod login;
pub mod logout;

use actix_web::http::{StatusCode, header};
use actix_web::{HttpResponse, web};
use askama::Template;

use crate::config::Settings;
use crate::protocol::OAuthError;

const STYLESHEET: &str = include_str!("../../../static/style.css");
const FRONTCHANNEL_SCRIPT: &str = include_str!("../../../static/frontchannel.js");
const FAVICON: &str = include_str!("../../../static/favicon.svg");

/// The pages an interaction sends the browser to, below the issuer.
pub const LOGIN: &str = "/login";
pub const CONSENT: &str = "/consent";
pub const ACCOUNT: &str = "/account";

pub fn configure(cfg: &mut web::ServiceConfig, _settings: &Settings) {
    use super::endpoints::at;
    cfg.service(at(LOGIN).get(login::show).post(login::submit).done())
        .service(at(CONSENT).get(consent::show).post(consent::submit).done())
        .service(
            at(crate::protocol::features::END_SESSION.path)
                .get(logout::start)
                .post(logout::start)
                .done(),
        )
        .service(at("/logout/confirm").post(logout::confirm).done())
        .service(at(ACCOUNT).get(account::show).done())
        .service(
            at("/account/sessions/end")
                .post(account::end_session)
                .done(),
        )
        .service(
            at("/account/sign-out-everywhere")
                .post(account::sign_out_everywhere)
                .done(),
        )
        .service(
            at("/account/consents/withdraw")
                .post(account::withdraw_consent)
                .done(),
        )
        .service(at("/static/style.css").get(stylesheet).done())
        .service(at("/static/favicon.svg").get(favicon).done())
        .service(at("/static/brand.css").get(brand_stylesheet).done())
        .service(
            at("/static/frontchannel.js")
                .get(frontchannel_script)
                .done(),
        );
}

async fn stylesheet() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/css; charset=utf-8")
        .insert_header((header::CACHE_CONTROL, "public, max-age=3600"))
        .body(STYLESHEET)
}

/// The operator's branding (`brand_accent_color`, `brand_stylesheet`), after ours.
async fn brand_stylesheet(state: crate::http::State) -> HttpResponse {
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

/// Renders a page with the headers every page carries: no caching, no framing, no scripts.
pub fn render(status: StatusCode, page: &impl Template) -> HttpResponse {
    match page.render() {
        Ok(html) => HttpResponse::build(status)
            .content_type("text/html; charset=utf-8")
            .insert_header((header::CACHE_CONTROL, "no-store"))
            .insert_header((header::X_FRAME_OPTIONS, "DENY"))
            .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
            .insert_header((
                header::CONTENT_SECURITY_POLICY,
                "default-src 'none'; style-src 'self'; img-src 'self' https: data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
            ))
            // same-origin, not no-referrer: under no-referrer browsers send `Origin: null`
            // with the page's own form POSTs, which `from_our_pages` must refuse. Other
            // sites (the client a code goes to) still get no Referer.
            .insert_header((header::REFERRER_POLICY, "same-origin"))
            .body(html),
        Err(e) => {
            tracing::error!(cause = %e, "template rendering failed");
            HttpResponse::InternalServerError().content_type("text/plain").body("server_error")
        }
    }
}

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage<'a> {
    ui: crate::http::ui::Ui,
    base: &'a str,
    code: &'a str,
    description: &'a str,
}

/// The error page of an address that serves nothing (404): no OAuth error applies, so
/// the code shown is `not_found`, as the admin API says it.
pub fn not_found_page(base: &str) -> HttpResponse {
    let ui = crate::http::ui::Ui::current();
    render(
        StatusCode::NOT_FOUND,
        &ErrorPage {
            ui: ui.clone(),
            base,
            code: "not_found",
            description: ui.t("error.not_found"),
        },
    )
}

pub fn error_page(base: &str, status: StatusCode, error: &OAuthError) -> HttpResponse {
    let ui = crate::http::ui::Ui::current();
    // The protocol's own descriptions are in English, for developers; the page's
    // words are in the reader's language.
    let description = match error.code {
        crate::protocol::ErrorCode::ServerError => ui.t("error.server"),
        crate::protocol::ErrorCode::TemporarilyUnavailable => ui.t("error.unavailable"),
        _ => error
            .description
            .as_deref()
            .unwrap_or(ui.t("error.generic")),
    };
    render(
        status,
        &ErrorPage {
            ui: crate::http::ui::Ui::current(),
            base,
            code: error.code.as_str(),
            description,
        },
    )
}
