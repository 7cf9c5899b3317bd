//! Request bodies: their declared types, their parameters, and the one limit and deadline
//! every route reads them under.

use actix_web::{HttpRequest, web};

use crate::http::error;
use crate::http::state::State;
use crate::protocol::{OAuthError, Params};

/// Query string and (for POST forms) body parameters, in that order.
pub fn request_params(req: &HttpRequest, body: &[u8]) -> Result<Params, OAuthError> {
    let mut params = Params::from_urlencoded(req.query_string())?;
    if !body.is_empty() {
        let form = std::str::from_utf8(body)
            .map_err(|_| OAuthError::invalid_request("body is not UTF-8"))?;
        params.extend(Params::from_urlencoded(form)?);
    }
    Ok(params)
}

/// The media types request bodies are read as. Each endpoint that reads a body checks its
/// declared type here, so that a body is never read as something its sender did not say
/// it was.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BodyType {
    /// The OAuth back-channel endpoints (RFC 6749 §3.2, §4.1.3; RFC 7009 §2.1, RFC 7662
    /// §2.1, RFC 9126 §2.1) and a bearer token sent in a body (RFC 6750 §2.2).
    Form,
    /// Client registration (RFC 7591 §3.1) and the admin API.
    Json,
}

impl BodyType {
    pub fn media_type(self) -> &'static str {
        match self {
            Self::Form => "application/x-www-form-urlencoded",
            Self::Json => "application/json",
        }
    }

    /// What a sender of another type is told.
    pub fn refusal(self) -> &'static str {
        match self {
            Self::Form => "the content type must be application/x-www-form-urlencoded",
            Self::Json => "the content type must be application/json",
        }
    }

    /// Whether the request's `Content-Type` declares this type.
    pub fn declared_by(self, req: &HttpRequest) -> bool {
        let declared = req
            .headers()
            .get(actix_web::http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok());
        is_media_type(declared, self.media_type())
    }

    /// `invalid_request` unless the request declares this type.
    pub fn require(self, req: &HttpRequest) -> Result<(), OAuthError> {
        if self.declared_by(req) {
            Ok(())
        } else {
            Err(OAuthError::invalid_request(self.refusal()))
        }
    }
}

/// Whether a `Content-Type` value is `media_type`: type and subtype compare without case,
/// and parameters after a `;` (`charset=UTF-8`) do not matter (RFC 9110 §8.3.1).
pub fn is_media_type(content_type: Option<&str>, media_type: &str) -> bool {
    content_type
        .and_then(|v| v.split(';').next())
        .is_some_and(|essence| essence.trim().eq_ignore_ascii_case(media_type))
}

/// Only the body, for endpoints whose parameters must not travel in the URL.
pub fn form_params(req: &HttpRequest, body: &[u8]) -> Result<Params, OAuthError> {
    BodyType::Form.require(req)?;
    let form =
        std::str::from_utf8(body).map_err(|_| OAuthError::invalid_request("body is not UTF-8"))?;
    Params::from_urlencoded(form)
}

/// The largest request body read, on every route (forms and registration documents are
/// far smaller).
pub const BODY_LIMIT: usize = 64 * 1024;

/// How long a request body may take to arrive once its head has been read. actix times
/// out only the head (`client_request_timeout`) and idle connections (keep-alive): a
/// request that announces a body and never sends it would hold its connection for good.
pub const BODY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// Whether the request's path answers errors as JSON (a back-channel endpoint) rather
/// than with the error page (a browser's page).
fn answers_json(req: &actix_web::dev::ServiceRequest) -> bool {
    let base = req
        .app_data::<State>()
        .map(|s| s.settings.issuer_path.clone())
        .unwrap_or_default();
    let path = req.path();
    error::answers_json(path.strip_prefix(base.as_str()).unwrap_or(path))
}

/// Reads each request's body before routing, so that every route shares one limit, one
/// deadline and one way to answer them: a body over `BODY_LIMIT` gets 413 (left unread
/// when its `Content-Length` says so), one that has not arrived within `BODY_TIMEOUT`
/// gets 408, both as `invalid_request` in the path's format (`error::refusal`). actix
/// closes a connection whose request body was left unread once it has answered. The
/// handlers then extract the buffered body as before.
pub async fn read_body(
    mut req: actix_web::dev::ServiceRequest,
    next: actix_web::middleware::Next<impl actix_web::body::MessageBody + 'static>,
) -> Result<actix_web::dev::ServiceResponse, actix_web::Error> {
    use actix_web::http::{StatusCode, header};
    let announced = req.headers().contains_key(header::CONTENT_LENGTH)
        || req.headers().contains_key(header::TRANSFER_ENCODING);
    if announced {
        let read = tokio::time::timeout(BODY_TIMEOUT, req.extract::<web::Bytes>()).await;
        let refused = match read {
            Ok(Ok(body)) => {
                req.set_payload(body.into());
                None
            }
            Ok(Err(e)) => Some(match e.as_error::<actix_web::error::PayloadError>() {
                Some(actix_web::error::PayloadError::Overflow) => (
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "the request body is too large",
                ),
                _ => (
                    StatusCode::BAD_REQUEST,
                    "the request body could not be read",
                ),
            }),
            Err(_) => Some((
                StatusCode::REQUEST_TIMEOUT,
                "the request body did not arrive in time",
            )),
        };
        if let Some((status, description)) = refused {
            let base = req
                .app_data::<State>()
                .map(|s| s.settings.issuer_path.clone())
                .unwrap_or_default();
            let response = error::refusal(answers_json(&req), &base, status, description);
            return Ok(req.into_response(response));
        }
    }
    Ok(next.call(req).await?.map_into_boxed_body())
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_body_type_is_its_media_type_whatever_the_case_and_parameters() {
        use super::is_media_type;
        let form = "application/x-www-form-urlencoded";
        assert!(is_media_type(Some(form), form));
        assert!(is_media_type(
            Some("Application/X-WWW-Form-URLEncoded; charset=UTF-8"),
            form
        ));
        assert!(is_media_type(
            Some("application/json ;charset=utf-8"),
            "application/json"
        ));
        assert!(!is_media_type(None, form));
        assert!(!is_media_type(Some(""), form));
        assert!(!is_media_type(Some("text/plain"), form));
        for other in [
            "application/x-www-form-urlencodedx",
            "multipart/form-data; boundary=x",
            "application/json",
        ] {
            assert!(!is_media_type(Some(other), form), "{other}");
        }
        assert!(!is_media_type(
            Some("application/json-patch+json"),
            "application/json"
        ));
    }
}
