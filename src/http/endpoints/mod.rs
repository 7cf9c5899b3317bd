//! One module per protocol endpoint.

pub mod authorize;
pub mod client_request;
pub mod device_authorization;
pub mod discovery;
pub mod health;
pub mod introspection;
pub mod par;
pub mod registration;
pub mod revocation;
pub mod token;
pub mod userinfo;

use actix_web::web;

use crate::protocol::features;

pub use crate::http::error::answers_json;
pub use crate::http::routes::{Routes, at};

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        at(discovery::CONFIGURATION)
            .get(discovery::openid_configuration)
            .done(),
    )
    .service(at(features::JWKS.path).get(discovery::jwks).done())
    .service(
        at(features::AUTHORIZATION.path)
            .get(authorize::authorize)
            .post(authorize::authorize)
            .done(),
    )
    .service(at(authorize::CONTINUE).get(authorize::resume).done())
    .service(
        at(features::TOKEN.path)
            .post(token::token)
            .preflight()
            .done(),
    )
    .service(
        at(features::DEVICE_AUTHORIZATION.path)
            .post(device_authorization::device_authorization)
            .done(),
    )
    .service(
        at(features::PUSHED_AUTHORIZATION.path)
            .post(par::push)
            .done(),
    )
    .service(
        at(features::USERINFO.path)
            .get(userinfo::userinfo)
            .post(userinfo::userinfo)
            .preflight()
            .done(),
    )
    .service(
        at(features::REVOCATION.path)
            .post(revocation::revoke_token)
            .preflight()
            .done(),
    )
    .service(
        at(features::INTROSPECTION.path)
            .post(introspection::introspect_token)
            .done(),
    )
    .service(
        at(features::REGISTRATION.path)
            .post(registration::register)
            .done(),
    )
    .service(
        at(features::CLIENT_CONFIGURATION)
            .get(registration::read)
            .put(registration::update)
            .delete(registration::delete)
            .done(),
    )
    .service(at(health::LIVENESS).get(health::healthz).done())
    .service(at(health::READINESS).get(health::readyz).done());
}

#[cfg(test)]
mod tests {
    use super::{answers_json, authorize, discovery};
    use crate::protocol::features;

    #[test]
    fn back_channel_endpoints_answer_errors_as_json_and_browser_ones_as_pages() {
        for endpoint in features::ENDPOINTS {
            let browser = endpoint == features::AUTHORIZATION || endpoint == features::END_SESSION;
            assert_eq!(answers_json(endpoint.path), !browser, "{}", endpoint.path);
        }
        // RFC 7592: a registered client's configuration, below the registration endpoint.
        assert!(answers_json("/register/some-client"));
        assert!(!answers_json("/registers"));
        assert!(answers_json(discovery::CONFIGURATION));
        assert!(answers_json("/admin/api/users"));
        for page in [authorize::CONTINUE, "/login", "/admin/users", "/nowhere"] {
            assert!(!answers_json(page), "{page}");
        }
    }

    #[test]
    fn the_provider_configuration_is_a_well_known_uri() {
        assert!(discovery::CONFIGURATION.starts_with(discovery::WELL_KNOWN));
    }

    #[test]
    fn a_posted_authorization_request_continues_below_the_authorization_endpoint() {
        assert!(authorize::CONTINUE.starts_with(&format!("{}/", features::AUTHORIZATION.path)));
    }
}
