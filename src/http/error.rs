//! THE place where a protocol error becomes a response: JSON (RFC 6749 §5.2), a Bearer
//! challenge (RFC 6750 §3), or an HTML error page. Internal causes are logged here and
//! never sent.

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpRequest, HttpResponse, ResponseError};
use serde_json::json;

use crate::config::Settings;
use crate::http::endpoints::{discovery, health};
use crate::http::page;
use crate::http::paths;
use crate::http::state::State;
use crate::protocol::features;
use crate::protocol::{ErrorCode, OAuthError};

fn status_of(code: ErrorCode) -> StatusCode {
    match code {
        ErrorCode::InvalidClient | ErrorCode::InvalidToken => StatusCode::UNAUTHORIZED,
        ErrorCode::InsufficientScope | ErrorCode::AccessDenied => StatusCode::FORBIDDEN,
        ErrorCode::ServerError => StatusCode::INTERNAL_SERVER_ERROR,
        ErrorCode::TemporarilyUnavailable => StatusCode::SERVICE_UNAVAILABLE,
        ErrorCode::RateLimited => StatusCode::TOO_MANY_REQUESTS,
        _ => StatusCode::BAD_REQUEST,
    }
}

/// Marks a response with the backend that failed it, for the metrics middleware.
fn mark(mut response: HttpResponse, error: &OAuthError) -> HttpResponse {
    if let Some(backend) = error.backend {
        response.extensions_mut().insert(backend);
    }
    response
}

fn log(error: &OAuthError) {
    if let Some(cause) = &error.cause {
        tracing::error!(error = error.code.as_str(), cause = %cause, "request failed");
    }
}

fn body(error: &OAuthError) -> serde_json::Value {
    let mut body = json!({ "error": error.code.as_str() });
    if let Some(d) = error.wire_description() {
        body["error_description"] = json!(d);
    }
    body
}

/// Errors of back-channel JSON endpoints (token, registration).
#[derive(Debug)]
pub struct ApiError(pub OAuthError);

impl From<OAuthError> for ApiError {
    fn from(e: OAuthError) -> Self {
        Self(e)
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self.0.code {
            // RFC 6749 §5.2 (which RFC 8628 §3.5 and RFC 9126 §2.3 follow): a refused
            // back-channel request is a 400; 403 is a protected resource's (RFC 6750).
            ErrorCode::AccessDenied => StatusCode::BAD_REQUEST,
            code => status_of(code),
        }
    }

    fn error_response(&self) -> HttpResponse {
        api_response(&self.0, self.status_code())
    }
}

/// The JSON error of a back-channel endpoint, sent with `status`.
fn api_response(error: &OAuthError, status: StatusCode) -> HttpResponse {
    log(error);
    let mut response = HttpResponse::build(status);
    response
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .insert_header((header::PRAGMA, "no-cache"))
        .insert_header((header::ACCESS_CONTROL_ALLOW_ORIGIN, "*"))
        .insert_header((
            header::ACCESS_CONTROL_EXPOSE_HEADERS,
            crate::http::dpop_headers::EXPOSED_HEADERS,
        ));
    if error.code == ErrorCode::InvalidClient {
        // RFC 6749 §5.2: 401 with a challenge matching the scheme the client can use.
        response.insert_header((header::WWW_AUTHENTICATE, "Basic realm=\"portcullis\""));
    }
    mark(response.json(body(error)), error)
}

/// Errors of Bearer-protected resources (userinfo, registration read).
#[derive(Debug)]
pub enum BearerError {
    /// No token at all: RFC 6750 §3.1 says the challenge then carries no error code.
    Missing,
    Rejected(OAuthError),
    /// RFC 9449 §7.1: a refusal under the `DPoP` scheme (a proof, or a DPoP-bound token
    /// sent as Bearer), with the server's nonce when it requires one (§9).
    Dpop {
        error: OAuthError,
        nonce: Option<String>,
    },
}

impl From<OAuthError> for BearerError {
    fn from(e: OAuthError) -> Self {
        Self::Rejected(e)
    }
}

impl std::fmt::Display for BearerError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Missing => f.write_str("missing bearer token"),
            Self::Rejected(e) | Self::Dpop { error: e, .. } => e.fmt(f),
        }
    }
}

/// Characters allowed inside an RFC 6750 §3 quoted auth-param value.
fn quoted(text: &str) -> String {
    text.chars()
        .filter(|c| *c != '"' && *c != '\\' && (' '..='~').contains(c))
        .collect()
}

impl ResponseError for BearerError {
    fn status_code(&self) -> StatusCode {
        match self {
            Self::Missing => StatusCode::UNAUTHORIZED,
            Self::Rejected(e) => status_of(e.code),
            // §7.1, §9: a proof refused at a resource is 401, like its token; a malformed
            // request stays 400 (RFC 6750 §3.1, which §7.1 reuses).
            Self::Dpop { error, .. } => match error.code {
                ErrorCode::InvalidDpopProof | ErrorCode::UseDpopNonce => StatusCode::UNAUTHORIZED,
                code => status_of(code),
            },
        }
    }

    fn error_response(&self) -> HttpResponse {
        let mut response = HttpResponse::build(self.status_code());
        response
            .insert_header((header::CACHE_CONTROL, "no-store"))
            .insert_header((header::ACCESS_CONTROL_ALLOW_ORIGIN, "*"))
            .insert_header((
                header::ACCESS_CONTROL_EXPOSE_HEADERS,
                crate::http::dpop_headers::EXPOSED_HEADERS,
            ));
        let error = match self {
            Self::Missing => {
                // RFC 9449 §7.1: both schemes are accepted here, so both are challenged,
                // the DPoP one with the algorithms a proof may use.
                let dpop = format!(
                    "DPoP algs=\"{}\"",
                    crate::protocol::dpop::DPOP_ALGS.join(" ")
                );
                return response
                    .append_header((header::WWW_AUTHENTICATE, "Bearer realm=\"portcullis\""))
                    .append_header((header::WWW_AUTHENTICATE, dpop))
                    .finish();
            }
            Self::Dpop { error, nonce } => {
                log(error);
                // §7.1: the challenge names the algorithms a proof may use.
                let challenge = format!(
                    "DPoP algs=\"{}\", error=\"{}\", error_description=\"{}\"",
                    crate::protocol::dpop::DPOP_ALGS.join(" "),
                    error.code.as_str(),
                    quoted(&error.wire_description().unwrap_or_default())
                );
                if let Ok(value) = HeaderValue::from_str(&challenge) {
                    response.insert_header((header::WWW_AUTHENTICATE, value));
                }
                if let Some(value) = nonce.as_deref().and_then(|n| HeaderValue::from_str(n).ok()) {
                    response.insert_header((crate::http::dpop_headers::DPOP_NONCE, value));
                }
                return mark(response.json(body(error)), error);
            }
            Self::Rejected(error) => error,
        };
        log(error);
        let challenge = format!(
            "Bearer realm=\"portcullis\", error=\"{}\", error_description=\"{}\"",
            error.code.as_str(),
            quoted(&error.wire_description().unwrap_or_default())
        );
        if let Ok(value) = HeaderValue::from_str(&challenge) {
            response.insert_header((header::WWW_AUTHENTICATE, value));
        }
        mark(response.json(body(error)), error)
    }
}

/// Errors shown to a person in the browser, never redirected. Page handlers end with
/// `page_response`, which renders them with the site's base path.
#[derive(Debug)]
pub struct PageError(pub OAuthError);

impl From<OAuthError> for PageError {
    fn from(e: OAuthError) -> Self {
        Self(e)
    }
}

impl PageError {
    fn status(&self) -> StatusCode {
        match self.0.code {
            ErrorCode::InvalidClient => StatusCode::BAD_REQUEST,
            code => status_of(code),
        }
    }

    pub fn render(&self, base: &str) -> HttpResponse {
        log(&self.0);
        mark(page::error_page(base, self.status(), &self.0), &self.0)
    }
}

/// Errors of the passkey ceremonies' JSON endpoints, which `static/passkey.js` shows as
/// they are: `{"error": "text a person understands"}`, in the page's language, with a 4xx
/// status for what the request got wrong. A server fault is logged (with its cause) and
/// said in general words, with its 5xx status.
#[derive(Debug)]
pub struct PasskeyApiError {
    status: StatusCode,
    message: String,
    cause: Option<OAuthError>,
}

impl PasskeyApiError {
    /// The request is refused with `status` (4xx), and `message` for the person.
    pub fn refused(status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
            cause: None,
        }
    }
}

/// A protocol error: a server fault in general words, anything else with its own
/// description (the sign-in's "not asked now", an unknown account).
impl From<OAuthError> for PasskeyApiError {
    fn from(error: OAuthError) -> Self {
        let status = status_of(error.code);
        let general = || {
            crate::http::ui::Ui::current()
                .t("passkey.failed")
                .to_owned()
        };
        let message = if status.is_server_error() {
            general()
        } else {
            error.wire_description().unwrap_or_else(general)
        };
        Self {
            status,
            message,
            cause: Some(error),
        }
    }
}

impl From<PageError> for PasskeyApiError {
    fn from(error: PageError) -> Self {
        error.0.into()
    }
}

impl std::fmt::Display for PasskeyApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.status, self.message)
    }
}

impl ResponseError for PasskeyApiError {
    fn status_code(&self) -> StatusCode {
        self.status
    }

    fn error_response(&self) -> HttpResponse {
        let response = HttpResponse::build(self.status)
            .insert_header((header::CACHE_CONTROL, "no-store"))
            .json(json!({ "error": self.message }));
        match &self.cause {
            Some(cause) => {
                log(cause);
                mark(response, cause)
            }
            None => response,
        }
    }
}

/// A page handler's result as a response: errors become the HTML error page.
pub fn page_response(settings: &Settings, result: Result<HttpResponse, PageError>) -> HttpResponse {
    result.unwrap_or_else(|e| e.render(&settings.issuer_path))
}

/// Malformed form or query input on a page (missing fields, bad encoding): the error page,
/// not actix's plain-text default.
pub fn bad_page_input<E: std::fmt::Debug + std::fmt::Display + 'static>(
    cause: E,
    req: &HttpRequest,
) -> actix_web::Error {
    let base = req
        .app_data::<State>()
        .map(|s| s.settings.issuer_path.clone())
        .unwrap_or_default();
    let page = PageError(OAuthError::invalid_request("the request is malformed")).render(&base);
    actix_web::error::InternalError::from_response(cause, page).into()
}

/// A refusal at the HTTP level, before any handler parsed the request (a body too large
/// or too slow, a method the path does not serve): `invalid_request` with `status`, as
/// JSON for the back-channel endpoints (`json`), as the error page for the browser's
/// pages, so that no answer falls back to actix's plain text.
pub fn refusal(
    json: bool,
    base: &str,
    status: StatusCode,
    description: &'static str,
) -> HttpResponse {
    let error = OAuthError::invalid_request(description);
    if json {
        api_response(&error, status)
    } else {
        mark(page::error_page(base, status, &error), &error)
    }
}

/// Whether an `Accept` header asks for HTML, as a browser's navigation does
/// (`text/html,application/xhtml+xml,...`); `q=0` refuses a type (RFC 9110 §12.5.1).
pub fn accepts_html(accept: &str) -> bool {
    accept.split(',').any(|range| {
        let mut parts = range.split(';').map(str::trim);
        let is_html = parts
            .next()
            .is_some_and(|t| t.eq_ignore_ascii_case("text/html"));
        let refused = parts.any(|p| {
            p.split_once('=').is_some_and(|(name, value)| {
                name.trim().eq_ignore_ascii_case("q")
                    && value.trim().parse::<f32>().is_ok_and(|q| q <= 0.0)
            })
        });
        is_html && !refused
    })
}

/// What an address that serves nothing answers (404, the app's default service): the
/// error page to a browser, a small JSON error to anything else.
pub async fn not_found(req: HttpRequest) -> HttpResponse {
    let html = req
        .headers()
        .get_all(header::ACCEPT)
        .filter_map(|v| v.to_str().ok())
        .any(accepts_html);
    if html {
        let base = req
            .app_data::<State>()
            .map(|s| s.settings.issuer_path.clone())
            .unwrap_or_default();
        return page::not_found_page(&base);
    }
    HttpResponse::NotFound().json(json!({
        "error": "not_found",
        "error_description": "there is nothing at this address",
    }))
}

/// Errors of the admin API: the bearer check (RFC 6750 challenges), or what the
/// operation refused, as `{"error", "error_description"}` JSON with its status.
#[derive(Debug)]
pub enum AdminApiError {
    Bearer(BearerError),
    Refused(crate::admin::AdminError),
}

impl From<BearerError> for AdminApiError {
    fn from(e: BearerError) -> Self {
        Self::Bearer(e)
    }
}

impl From<crate::admin::AdminError> for AdminApiError {
    fn from(e: crate::admin::AdminError) -> Self {
        Self::Refused(e)
    }
}

impl std::fmt::Display for AdminApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Bearer(e) => e.fmt(f),
            Self::Refused(e) => e.fmt(f),
        }
    }
}

impl ResponseError for AdminApiError {
    fn status_code(&self) -> StatusCode {
        use crate::admin::AdminError;
        match self {
            Self::Bearer(e) => e.status_code(),
            Self::Refused(AdminError::Invalid { .. }) => StatusCode::BAD_REQUEST,
            Self::Refused(AdminError::NotFound(_)) => StatusCode::NOT_FOUND,
            Self::Refused(AdminError::Conflict(_)) => StatusCode::CONFLICT,
            Self::Refused(AdminError::Unavailable(_)) => StatusCode::SERVICE_UNAVAILABLE,
            Self::Refused(AdminError::Internal(_)) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        use crate::admin::AdminError;
        let refused = match self {
            Self::Bearer(bearer) => return bearer.error_response(),
            Self::Refused(refused) => refused,
        };
        let (code, description) = match refused {
            AdminError::Invalid { code, description } => (*code, description.clone()),
            AdminError::NotFound(what) => ("not_found", format!("no such {what}")),
            AdminError::Conflict(why) => ("conflict", why.clone()),
            AdminError::Unavailable(cause) => {
                tracing::error!(cause = %cause, "admin request failed: storage unavailable");
                (
                    "temporarily_unavailable",
                    "storage is unavailable; try again".to_owned(),
                )
            }
            AdminError::Internal(cause) => {
                tracing::error!(cause = %cause, "admin request failed");
                ("server_error", "the request failed".to_owned())
            }
        };
        let mut response = HttpResponse::build(self.status_code())
            .insert_header((header::CACHE_CONTROL, "no-store"))
            .json(json!({ "error": code, "error_description": description }));
        if matches!(refused, AdminError::Unavailable(_)) {
            response
                .extensions_mut()
                .insert(crate::protocol::error::Backend::Database);
        }
        response
    }
}

/// Whether errors at `path` (below the issuer's) are JSON, as back-channel clients read
/// them, rather than the error page a person reads: the endpoints called by programs.
/// Everything else (authorize, the pages, unknown paths) is a browser's.
pub fn answers_json(path: &str) -> bool {
    const JSON: [&str; 10] = [
        features::TOKEN.path,
        features::DEVICE_AUTHORIZATION.path,
        features::PUSHED_AUTHORIZATION.path,
        features::REVOCATION.path,
        features::INTROSPECTION.path,
        features::REGISTRATION.path,
        features::USERINFO.path,
        features::JWKS.path,
        health::LIVENESS,
        health::READINESS,
    ];
    JSON.contains(&path)
        // RFC 7592 §2: a registered client's configuration, below the registration path.
        || path
            .strip_prefix(features::REGISTRATION.path)
            .is_some_and(|rest| rest.starts_with('/'))
        || path.starts_with(discovery::WELL_KNOWN)
        || path
            .strip_prefix(paths::admin_api::PREFIX)
            .is_some_and(|rest| rest.starts_with('/'))
}

#[cfg(test)]
mod tests {
    use super::accepts_html;
    use super::{BearerError, ErrorCode, OAuthError, ResponseError, StatusCode};

    #[test]
    fn under_the_dpop_scheme_a_malformed_request_is_400_and_a_refused_proof_401() {
        let dpop = |error| BearerError::Dpop { error, nonce: None };
        // RFC 6750 §3.1, reused by RFC 9449 §7.1.
        let malformed = dpop(OAuthError::invalid_request("the DPoP scheme needs a token"));
        assert_eq!(malformed.status_code(), StatusCode::BAD_REQUEST);
        for code in [ErrorCode::InvalidDpopProof, ErrorCode::UseDpopNonce] {
            assert_eq!(
                dpop(OAuthError::bare(code)).status_code(),
                StatusCode::UNAUTHORIZED
            );
        }
    }

    #[test]
    fn a_browsers_navigation_accepts_html_and_a_program_does_not() {
        assert!(accepts_html(
            "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
        ));
        assert!(accepts_html("TEXT/HTML; q=0.5"));
        assert!(!accepts_html("*/*"));
        assert!(!accepts_html("application/json"));
        assert!(!accepts_html(""));
        assert!(!accepts_html("text/html;q=0, application/json"));
    }
}
