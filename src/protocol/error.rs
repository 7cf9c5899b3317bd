//! The one error vocabulary: RFC 6749 §4.1.2.1 / §5.2, RFC 6750 §3.1, OIDC Core §3.1.2.6,
//! RFC 7591 §3.2.2. `http::error` decides how each is written to the wire.

use std::borrow::Cow;
use std::fmt;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorCode {
    InvalidRequest,
    InvalidClient,
    InvalidGrant,
    UnauthorizedClient,
    UnsupportedGrantType,
    UnsupportedResponseType,
    InvalidScope,
    AccessDenied,
    ServerError,
    TemporarilyUnavailable,
    LoginRequired,
    ConsentRequired,
    InteractionRequired,
    /// OIDC Core §3.1.2.6, RFC 9101 §7: a request_uri that cannot be used.
    InvalidRequestUri,
    /// OIDC Core §3.1.2.6, RFC 9101 §7: a request object that cannot be used.
    InvalidRequestObject,
    InvalidToken,
    InsufficientScope,
    InvalidRedirectUri,
    InvalidClientMetadata,
    /// RFC 8707 §2: the requested resource is invalid or not allowed.
    InvalidTarget,
    /// RFC 7009 §2.2.1.
    UnsupportedTokenType,
    /// RFC 9449 §5, §7.1: the DPoP proof is missing where required, or invalid.
    InvalidDpopProof,
    /// RFC 9449 §8, §9: the proof must carry the server's current nonce (`DPoP-Nonce`).
    UseDpopNonce,
    /// Too many requests from one source: `temporarily_unavailable` on the wire (the
    /// closest registered code), with status 429.
    RateLimited,
    /// RFC 8628 §3.5: the user has not decided yet.
    AuthorizationPending,
    /// RFC 8628 §3.5: polled faster than the interval; the interval grows by 5 s.
    SlowDown,
    /// RFC 8628 §3.5: the device code expired.
    ExpiredToken,
}

impl ErrorCode {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InvalidRequest => "invalid_request",
            Self::InvalidClient => "invalid_client",
            Self::InvalidGrant => "invalid_grant",
            Self::UnauthorizedClient => "unauthorized_client",
            Self::UnsupportedGrantType => "unsupported_grant_type",
            Self::UnsupportedResponseType => "unsupported_response_type",
            Self::InvalidScope => "invalid_scope",
            Self::AccessDenied => "access_denied",
            Self::ServerError => "server_error",
            Self::TemporarilyUnavailable => "temporarily_unavailable",
            Self::LoginRequired => "login_required",
            Self::ConsentRequired => "consent_required",
            Self::InteractionRequired => "interaction_required",
            Self::InvalidRequestUri => "invalid_request_uri",
            Self::InvalidRequestObject => "invalid_request_object",
            Self::InvalidToken => "invalid_token",
            Self::InsufficientScope => "insufficient_scope",
            Self::InvalidRedirectUri => "invalid_redirect_uri",
            Self::InvalidClientMetadata => "invalid_client_metadata",
            Self::InvalidTarget => "invalid_target",
            Self::UnsupportedTokenType => "unsupported_token_type",
            Self::InvalidDpopProof => "invalid_dpop_proof",
            Self::UseDpopNonce => "use_dpop_nonce",
            Self::RateLimited => "temporarily_unavailable",
            Self::AuthorizationPending => "authorization_pending",
            Self::SlowDown => "slow_down",
            Self::ExpiredToken => "expired_token",
        }
    }
}

/// A backing service whose failure caused an error (for metrics).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Database,
    Sessions,
}

/// An error for the client, plus (for `server_error`) the internal cause, which is logged
/// and never sent.
#[derive(Debug)]
pub struct OAuthError {
    pub code: ErrorCode,
    pub description: Option<Cow<'static, str>>,
    pub cause: Option<String>,
    pub backend: Option<Backend>,
    /// The scheme a resource's refusal is challenged with when it is not the one the
    /// request used (RFC 9449 §7.1: a DPoP-bound token sent as Bearer gets `DPoP`).
    pub challenge: Option<Challenge>,
}

/// An authentication scheme a refusal asks for (`WWW-Authenticate`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Challenge {
    /// RFC 9449 §7.1.
    Dpop,
}

impl OAuthError {
    pub fn new(code: ErrorCode, description: impl Into<Cow<'static, str>>) -> Self {
        Self {
            code,
            description: Some(description.into()),
            cause: None,
            backend: None,
            challenge: None,
        }
    }

    pub fn bare(code: ErrorCode) -> Self {
        Self {
            code,
            description: None,
            cause: None,
            backend: None,
            challenge: None,
        }
    }

    pub fn invalid_request(description: impl Into<Cow<'static, str>>) -> Self {
        Self::new(ErrorCode::InvalidRequest, description)
    }

    pub fn invalid_grant(description: impl Into<Cow<'static, str>>) -> Self {
        Self::new(ErrorCode::InvalidGrant, description)
    }

    pub fn invalid_client(description: impl Into<Cow<'static, str>>) -> Self {
        Self::new(ErrorCode::InvalidClient, description)
    }

    pub fn invalid_token(description: impl Into<Cow<'static, str>>) -> Self {
        Self::new(ErrorCode::InvalidToken, description)
    }

    /// An internal failure: the client sees `server_error`, the log sees `cause`.
    pub fn server(cause: impl fmt::Display) -> Self {
        Self {
            code: ErrorCode::ServerError,
            description: None,
            cause: Some(cause.to_string()),
            backend: None,
            challenge: None,
        }
    }

    pub fn unavailable(cause: impl fmt::Display) -> Self {
        Self {
            code: ErrorCode::TemporarilyUnavailable,
            description: Some("the service is temporarily unavailable".into()),
            cause: Some(cause.to_string()),
            backend: None,
            challenge: None,
        }
    }

    /// This refusal, challenged with `scheme` whatever scheme the request used.
    pub fn with_challenge(mut self, scheme: Challenge) -> Self {
        self.challenge = Some(scheme);
        self
    }

    fn caused_by(mut self, backend: Backend) -> Self {
        self.backend = Some(backend);
        self
    }
}

impl OAuthError {
    /// The description as it may be sent: RFC 6749 §4.1.2.1 / §5.2 allow only
    /// %x20-21 / %x23-5B / %x5D-7E, so anything else (it may echo input) is dropped.
    pub fn wire_description(&self) -> Option<String> {
        self.description.as_deref().map(|d| {
            d.chars()
                .filter(|c| matches!(*c as u32, 0x20..=0x21 | 0x23..=0x5B | 0x5D..=0x7E))
                .collect()
        })
    }
}

impl fmt::Display for OAuthError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code.as_str())?;
        if let Some(d) = &self.description {
            write!(f, ": {d}")?;
        }
        Ok(())
    }
}

impl std::error::Error for OAuthError {}

impl From<crate::store::StoreError> for OAuthError {
    fn from(e: crate::store::StoreError) -> Self {
        match e {
            crate::store::StoreError::Unavailable(_) => {
                OAuthError::unavailable(e).caused_by(Backend::Database)
            }
            crate::store::StoreError::Gone => {
                OAuthError::invalid_request("the client or user of this request no longer exists")
            }
            other => OAuthError::server(other).caused_by(Backend::Database),
        }
    }
}

impl From<crate::sessions::SessionError> for OAuthError {
    fn from(e: crate::sessions::SessionError) -> Self {
        match e {
            crate::sessions::SessionError::Unavailable(_) => {
                OAuthError::unavailable(e).caused_by(Backend::Sessions)
            }
            other => OAuthError::server(other).caused_by(Backend::Sessions),
        }
    }
}
