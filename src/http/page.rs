//! What every page is rendered with (headers, the error page): what the error mapping
//! and the interaction need of the pages without depending on them.

use actix_web::HttpResponse;
use actix_web::http::{StatusCode, header};
use askama::Template;

use crate::http::paths::Links;
use crate::protocol::OAuthError;

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
    links: Links,
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
            links: Links::new(base),
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
            links: Links::new(base),
            code: error.code.as_str(),
            description,
        },
    )
}
