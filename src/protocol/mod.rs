//! OAuth 2.0 / OpenID Connect logic as plain Rust: typed inputs, `now` passed in, storage
//! and keys behind traits. No actix, diesel or redis here.

pub mod access_claims;
pub mod authorize;
pub mod claims;
pub mod claims_request;
pub mod client_auth;
pub mod config;
pub mod consent;
pub mod device;
pub mod discovery;
pub mod dpop;
pub mod error;
pub mod factors;
pub mod features;
pub mod grants;
pub mod groups;
pub mod interaction;
pub mod introspection;
pub mod jwt;
pub mod links;
pub mod logout;
pub mod opaque_token;
pub mod params;
pub mod passkeys;
pub mod profile;
pub mod registration;
pub mod reset;
pub mod resource_indicators;
pub mod revocation;
pub mod security;
pub mod sign_in;
pub mod sign_out;
pub mod signup;
pub mod stored_amr;
#[cfg(test)]
pub mod testing;
pub mod throttle;
pub mod tokens;
pub mod upstream;
pub mod userinfo;
pub mod verification;

pub use config::ProtocolConfig;
pub use error::{Challenge, ErrorCode, OAuthError};
pub use params::Params;

use crate::crypto::KeySet;
use crate::crypto::kek::KeyEncryptionKey;
use crate::domain::UnixTime;
use crate::store::Store;

/// Scopes of the user's identity this provider understands (OIDC Core §5.4, §11, and
/// `groups`, see `groups`); others are dropped from authorization requests (RFC 6749
/// §3.3) unless the client was registered with them (API scopes).
pub const SUPPORTED_SCOPES: [&str; 7] = [
    "openid",
    "profile",
    "email",
    "address",
    "phone",
    groups::GROUPS,
    "offline_access",
];

/// OIDC Core §11: the scope that asks for a refresh token.
pub const OFFLINE_ACCESS: &str = "offline_access";
/// The scope of the admin API. It is never one of the OpenID scopes every client may
/// ask for: only a client registered with it by an operator gets it, and a user's token
/// carries it only for an administrator.
pub const ADMIN_SCOPE: &str = "admin";

/// The JWK Sets clients publish at their `jwks_uri` (for `private_key_jwt`).
pub trait ClientKeySource: Send + Sync {
    /// The JWK Set at `uri`: from a cache unless `refetch`, which asks the client's server
    /// again (once per unknown `kid`; the source may refuse to fetch too often).
    fn jwk_set(&self, uri: &str, refetch: bool) -> Result<serde_json::Value, OAuthError>;
    /// Another JSON document at a URL the client registers (a sector identifier).
    fn document(&self, uri: &str) -> Result<serde_json::Value, OAuthError>;
    /// A text document at a URL the client registers (a request object).
    fn text(&self, uri: &str) -> Result<String, OAuthError>;
}

/// A source with no keys: for contexts where no client authenticates (CLI, tests).
pub struct NoClientKeys;

impl ClientKeySource for NoClientKeys {
    fn jwk_set(&self, _uri: &str, _refetch: bool) -> Result<serde_json::Value, OAuthError> {
        Err(OAuthError::invalid_client("client authentication failed"))
    }

    fn document(&self, _uri: &str) -> Result<serde_json::Value, OAuthError> {
        Err(OAuthError::server("no documents are fetched here"))
    }

    fn text(&self, _uri: &str) -> Result<String, OAuthError> {
        Err(OAuthError::server("no documents are fetched here"))
    }
}

/// What protocol code may use: storage, keys, its configuration and the current time.
pub struct Context<'a> {
    pub store: &'a dyn Store,
    pub keys: &'a KeySet,
    pub config: &'a ProtocolConfig,
    pub kek: &'a KeyEncryptionKey,
    pub client_keys: &'a dyn ClientKeySource,
    pub now: UnixTime,
    /// The key a token request proved possession of (RFC 9449), as the client's
    /// registration binds it: the access tokens issued in this context carry its
    /// `cnf.jkt`, and a public client's refresh tokens are bound to it. Set by the token
    /// endpoint only (`with_dpop`).
    pub dpop: Option<&'a dpop::Binding>,
}

impl<'a> Context<'a> {
    /// This context, issuing tokens bound as `binding` says.
    pub fn with_dpop<'b>(&self, binding: Option<&'b dpop::Binding>) -> Context<'b>
    where
        'a: 'b,
    {
        Context {
            dpop: binding,
            ..*self
        }
    }
}
