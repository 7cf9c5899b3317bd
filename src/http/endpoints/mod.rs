//! One module per protocol endpoint.

pub mod authorize;
pub mod discovery;
pub mod health;
pub mod registration;
pub mod token;
pub mod userinfo;

use actix_web::web;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route(
        "/.well-known/openid-configuration",
        web::get().to(discovery::openid_configuration),
    )
    .route("/jwks", web::get().to(discovery::jwks))
    .route("/authorize", web::get().to(authorize::authorize))
    .route("/authorize", web::post().to(authorize::authorize))
    .route("/token", web::post().to(token::token))
    .route("/userinfo", web::get().to(userinfo::userinfo))
    .route("/userinfo", web::post().to(userinfo::userinfo))
    .route("/register", web::post().to(registration::register))
    .route("/register/{client_id}", web::get().to(registration::read))
    .route("/healthz", web::get().to(health::healthz))
    .route("/readyz", web::get().to(health::readyz));
}
