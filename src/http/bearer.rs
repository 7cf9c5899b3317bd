//! The access token a request presents (RFC 6750 §2): one place for every endpoint that
//! takes one (userinfo, registration management, the DPoP scheme's reading of it).

use actix_web::HttpRequest;
use actix_web::http::header;

use crate::http::body::BodyType;
use crate::http::error::BearerError;
use crate::protocol::{OAuthError, Params};

/// The token from `Authorization: Bearer`, or from a form body's `access_token`;
/// RFC 6750 §2: a client must not use more than one method.
pub fn bearer_token(req: &HttpRequest, body: &[u8]) -> Result<String, BearerError> {
    let from_header = match req.headers().get(header::AUTHORIZATION) {
        None => None,
        Some(value) => {
            let value = value.to_str().unwrap_or("");
            match value.split_once(' ') {
                Some((scheme, token))
                    if scheme.eq_ignore_ascii_case("bearer") && !token.trim().is_empty() =>
                {
                    Some(token.trim().to_owned())
                }
                // Another scheme (or none at all) is "no Bearer token": RFC 6750 §3 answers
                // with a bare challenge.
                _ => None,
            }
        }
    };
    // §2.2: a body is read for the token only when it is declared a form; a body of
    // another kind beside a token in the header is not ours to judge.
    let form_type = BodyType::Form.require(req);
    let read_body = req.method() == actix_web::http::Method::POST
        && !body.is_empty()
        && (from_header.is_none() || form_type.is_ok());
    let from_body = if read_body {
        form_type?;
        let form = std::str::from_utf8(body)
            .ok()
            .and_then(|f| Params::from_urlencoded(f).ok());
        form.and_then(|p| p.single("access_token").ok().flatten().map(str::to_owned))
    } else {
        None
    };
    match (from_header, from_body) {
        (Some(_), Some(_)) => {
            Err(OAuthError::invalid_request("use only one way to send the access token").into())
        }
        (Some(t), None) | (None, Some(t)) => Ok(t),
        (None, None) => Err(BearerError::Missing),
    }
}
