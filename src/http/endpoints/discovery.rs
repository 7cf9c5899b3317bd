//! OIDC Discovery §4 and the JWKS (RFC 7517 §5): both serialized once at start.

use actix_web::HttpResponse;
use actix_web::http::header;

use crate::http::state::State;

/// Where the provider configuration is published (OIDC Discovery §4.1), below the issuer.
pub const CONFIGURATION: &str = "/.well-known/openid-configuration";

/// The well-known URIs (RFC 8615 §3), below the issuer: programs read them.
pub const WELL_KNOWN: &str = "/.well-known/";

pub async fn openid_configuration(state: State) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/json")
        .insert_header((header::ACCESS_CONTROL_ALLOW_ORIGIN, "*"))
        .insert_header((header::CACHE_CONTROL, "public, max-age=300"))
        .body(state.discovery_json.clone())
}

pub async fn jwks(state: State) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/jwk-set+json")
        .insert_header((header::ACCESS_CONTROL_ALLOW_ORIGIN, "*"))
        .insert_header((header::CACHE_CONTROL, "public, max-age=300"))
        .body(state.keys.current().jwks_json().to_owned())
}
