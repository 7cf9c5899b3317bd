//! OAuth 2.0 / OpenID Connect logic as plain Rust: typed inputs, `now` passed in, storage
//! and keys behind traits. No actix, diesel or redis here.

pub mod authorize;
pub mod client_auth;
pub mod discovery;
pub mod error;
pub mod grants;
pub mod params;
pub mod registration;
pub mod tokens;
pub mod userinfo;

pub use error::{ErrorCode, OAuthError};
pub use params::Params;

use crate::config::Settings;
use crate::crypto::KeySet;
use crate::domain::UnixTime;
use crate::store::Store;

/// Scopes this provider understands; others are dropped from requests (RFC 6749 §3.3).
pub const SUPPORTED_SCOPES: [&str; 4] = ["openid", "profile", "email", "phone"];

/// What protocol code may use: storage, keys, settings and the current time.
pub struct Context<'a> {
    pub store: &'a dyn Store,
    pub keys: &'a KeySet,
    pub settings: &'a Settings,
    pub now: UnixTime,
}
