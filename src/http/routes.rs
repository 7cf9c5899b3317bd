//! How a path's routes are declared: every GET answers HEAD, another method gets 405 with
//! `Allow` in the path's error format, and the CORS preflight where asked.

use actix_web::dev::HttpServiceFactory;
use actix_web::http::{Method, header};
use actix_web::{FromRequest, Handler, HttpRequest, HttpResponse, Resource, Responder, guard, web};

use crate::http::error::answers_json;

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

    pub fn put<F, Args>(mut self, handler: F) -> Self
    where
        F: Handler<Args>,
        Args: FromRequest + 'static,
        F::Output: Responder + 'static,
    {
        self.resource = self.resource.route(web::put().to(handler));
        self.allow.push("PUT");
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
        .app_data::<crate::http::state::State>()
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
/// the credentials. A browser client sends its DPoP proof in the `DPoP` header (RFC 9449
/// §4.1).
async fn cors_preflight() -> HttpResponse {
    HttpResponse::NoContent()
        .insert_header((header::ACCESS_CONTROL_ALLOW_ORIGIN, "*"))
        .insert_header((header::ACCESS_CONTROL_ALLOW_METHODS, "GET, POST"))
        .insert_header((
            header::ACCESS_CONTROL_ALLOW_HEADERS,
            "Authorization, Content-Type, DPoP",
        ))
        .insert_header((header::ACCESS_CONTROL_MAX_AGE, "600"))
        .finish()
}
