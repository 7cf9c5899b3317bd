//! The part of the configuration protocol code reads. Built once at start from the
//! operator's settings (`startup`), so that protocol code depends on what it uses and its
//! tests can state every value without reading a configuration (`testing::TestWorld`).

use crate::domain::{MfaPolicy, RegistrationMode, Seconds};

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProtocolConfig {
    /// The exact `iss`, without a trailing slash.
    pub issuer: String,
    pub authorization_code_ttl: Seconds,
    pub access_token_ttl: Seconds,
    pub id_token_ttl: Seconds,
    /// How long an unused refresh token lives; each rotation starts it again.
    pub refresh_token_ttl: Seconds,
    /// How long from sign-in until no refresh token of the grant works, used or not.
    pub refresh_token_absolute_ttl: Seconds,
    /// How long after a rotation the rotated token still yields its successor (see
    /// `grants::refresh_token`); zero turns the window off.
    pub refresh_token_grace_period: Seconds,
    /// How long a browser session lasts.
    pub session_ttl: Seconds,
    /// RFC 9126 §5: every authorization request must be pushed first, for every client.
    pub require_pushed_authorization_requests: bool,
    /// RFC 9449 §8, §9: every DPoP proof must carry the server's nonce (`dpop_nonce`).
    pub dpop_nonce: bool,
    /// Who may use RFC 7591 registration.
    pub registration: RegistrationMode,
    /// Whether an initial access token is configured: `registration = token` without one
    /// leaves registration closed. The token itself is checked by the endpoint, never here.
    pub registration_token_set: bool,
    /// The second-factor policy: which levels sign-ins reach, and the least they must.
    pub mfa: MfaPolicy,
    /// Passkeys are on (the issuer is served at a domain): without them an account's
    /// passkeys are no factor it can use, and none is asked for.
    pub passkeys: bool,
}

impl ProtocolConfig {
    /// The URL of the endpoint at `path` below the issuer.
    pub fn endpoint(&self, path: &str) -> String {
        format!("{}{path}", self.issuer)
    }
}
