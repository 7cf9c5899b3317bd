//! The DPoP header names (RFC 9449), apart from the proof checks so that the one place
//! errors become responses (`error.rs`) can name them without depending on those checks.

use actix_web::http::header::HeaderName;

/// §4.1: the request header that carries a proof.
pub const DPOP: HeaderName = HeaderName::from_static("dpop");
/// §8.1: the response header that gives the server's nonce.
pub const DPOP_NONCE: HeaderName = HeaderName::from_static("dpop-nonce");

/// What a browser client's script may read of our responses (CORS,
/// `Access-Control-Expose-Headers`): the nonce to put in its next proof (§8.1) and the
/// challenge that says why a request was refused (§7.1).
pub const EXPOSED_HEADERS: &str = "DPoP-Nonce, WWW-Authenticate";
