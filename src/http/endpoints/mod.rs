//! One module per protocol endpoint.

pub mod authorize;
pub mod discovery;
pub mod health;
pub mod introspection;
pub mod registration;
pub mod revocation;
pub mod token;
pub mod userinfo;

use actix_web::http::{Method, header};
use actix_web::{HttpResponse, web};

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route(
        "/.well-known/openid-configuration",
        web::get().to(discovery::openid_configuration),
    )
    .route("/jwks", web::get().to(discovery::jwks))
    .route("/authorize", web::get().to(authorize::authorize))
    .route("/authorize", web::post().to(authorize::authorize))
    .route("/authorize/continue", web::get().to(authorize::resume))
    .route("/token", web::post().to(token::token))
    .route("/token", web::method(Method::OPTIONS).to(cors_preflight))
    .route("/userinfo", web::method(Method::OPTIONS).to(cors_preflight))
    .route("/userinfo", web::get().to(userinfo::userinfo))
    .route("/userinfo", web::post().to(userinfo::userinfo))
    .route("/revoke", web::post().to(revocation::revoke_token))
    .route("/revoke", web::method(Method::OPTIONS).to(cors_preflight))
    .route(
        "/introspect",
        web::post().to(introspection::introspect_token),
    )
    .route("/register", web::post().to(registration::register))
    .route("/register/{client_id}", web::get().to(registration::read))
    .route("/healthz", web::get().to(health::healthz))
    .route("/readyz", web::get().to(health::readyz));
}

/// CORS preflight for the endpoints browser-based clients call directly (token, userinfo).
/// No cookies are involved there, so any origin may call them; the tokens themselves are
/// the credentials.
async fn cors_preflight() -> HttpResponse {
    HttpResponse::NoContent()
        .insert_header((header::ACCESS_CONTROL_ALLOW_ORIGIN, "*"))
        .insert_header((header::ACCESS_CONTROL_ALLOW_METHODS, "GET, POST"))
        .insert_header((
            header::ACCESS_CONTROL_ALLOW_HEADERS,
            "Authorization, Content-Type",
        ))
        .insert_header((header::ACCESS_CONTROL_MAX_AGE, "600"))
        .finish()
}
