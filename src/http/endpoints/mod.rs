//! One module per protocol endpoint.

pub mod authorize;
pub mod discovery;
pub mod health;
pub mod introspection;
pub mod par;
pub mod registration;
pub mod revocation;
pub mod token;
pub mod userinfo;

use crate::protocol::features;
use actix_web::dev::HttpServiceFactory;
use actix_web::http::{Method, header};
use actix_web::{FromRequest, Handler, HttpRequest, HttpResponse, Resource, Responder, guard, web};

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
    .service(at("/register/{client_id}").get(registration::read).done())
    .service(at("/healthz").get(health::healthz).done())
    .service(at("/readyz").get(health::readyz).done());
}

/// Whether errors at `path` (below the issuer's) are JSON, as back-channel clients read
/// them, rather than the error page a person reads: the endpoints called by programs.
/// Everything else (authorize, the pages, unknown paths) is a browser's.
pub fn answers_json(path: &str) -> bool {
    const JSON: [&str; 9] = [
        features::TOKEN.path,
        features::PUSHED_AUTHORIZATION.path,
        features::REVOCATION.path,
        features::INTROSPECTION.path,
        features::REGISTRATION.path,
        features::USERINFO.path,
        features::JWKS.path,
        "/healthz",
        "/readyz",
    ];
    JSON.contains(&path)
        // RFC 7592 §2: a registered client's configuration, below the registration path.
        || path
            .strip_prefix(features::REGISTRATION.path)
            .is_some_and(|rest| rest.starts_with('/'))
        || path.starts_with("/.well-known/")
        || path.starts_with("/admin/api/")
}

/// The routes of one path. Every GET route answers HEAD too (actix sends no body for
/// it), and any other method gets 405 Method Not Allowed with `Allow`, in the path's
/// error format; unknown paths stay 404.
pub struct Routes {
    path: &'static str,
    resource: Resource,
    allow: Vec<&'static str>,
}

/// The routes of `path`; `done` builds them.
pub fn at(path: &'static str) -> Routes {
    Routes {
        path,
        resource: web::resource(path),
        allow: Vec::new(),
    }
}

impl Routes {
    /// GET and HEAD.
    pub fn get<F, Args>(mut self, handler: F) -> Self
    where
        F: Handler<Args>,
        Args: FromRequest + 'static,
        F::Output: Responder + 'static,
    {
        let get_or_head = guard::Any(guard::Get()).or(guard::Head());
        self.resource = self
            .resource
            .route(web::route().guard(get_or_head).to(handler));
        self.allow.extend(["GET", "HEAD"]);
        self
    }

    pub fn post<F, Args>(mut self, handler: F) -> Self
    where
        F: Handler<Args>,
        Args: FromRequest + 'static,
        F::Output: Responder + 'static,
    {
        self.resource = self.resource.route(web::post().to(handler));
        self.allow.push("POST");
        self
    }

    pub fn patch<F, Args>(mut self, handler: F) -> Self
    where
        F: Handler<Args>,
        Args: FromRequest + 'static,
        F::Output: Responder + 'static,
    {
        self.resource = self.resource.route(web::patch().to(handler));
        self.allow.push("PATCH");
        self
    }

    pub fn delete<F, Args>(mut self, handler: F) -> Self
    where
        F: Handler<Args>,
        Args: FromRequest + 'static,
        F::Output: Responder + 'static,
    {
        self.resource = self.resource.route(web::delete().to(handler));
        self.allow.push("DELETE");
        self
    }

    /// OPTIONS: the CORS preflight.
    pub fn preflight(mut self) -> Self {
        self.resource = self
            .resource
            .route(web::method(Method::OPTIONS).to(cors_preflight));
        self.allow.push("OPTIONS");
        self
    }

    pub fn done(self) -> impl HttpServiceFactory {
        let allow = self.allow.join(", ");
        let json = answers_json(self.path);
        self.resource
            .default_service(web::to(move |req: HttpRequest| {
                let allow = allow.clone();
                async move { method_not_allowed(&req, &allow, json) }
            }))
    }
}

fn method_not_allowed(req: &HttpRequest, allow: &str, json: bool) -> HttpResponse {
    let base = req
        .app_data::<crate::http::State>()
        .map(|s| s.settings.issuer_path.clone())
        .unwrap_or_default();
    let mut response = crate::http::error::refusal(
        json,
        &base,
        actix_web::http::StatusCode::METHOD_NOT_ALLOWED,
        "this method is not allowed here",
    );
    if let Ok(value) = header::HeaderValue::from_str(allow) {
        response.headers_mut().insert(header::ALLOW, value);
    }
    response
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
    fn a_posted_authorization_request_continues_below_the_authorization_endpoint() {
        assert!(authorize::CONTINUE.starts_with(&format!("{}/", features::AUTHORIZATION.path)));
    }
}
