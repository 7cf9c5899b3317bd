//! What an access token says (RFC 9068 §2.2), whatever its format: a JWT carries these
//! claims signed, an opaque reference token (`opaque_token`) has them stored. A leaf, so
//! that both formats and everything that reads tokens share one typed value.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// RFC 9068 §2.1: the `typ` of our access tokens.
pub const ACCESS_TOKEN_TYP: &str = "at+jwt";

/// Whom an access token speaks for: a user (through a grant) or the client itself
/// (`client_credentials`, RFC 9068 §2.2: `sub` is then the client id).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Subject {
    User { user_id: String, grant_id: String },
    Client { client_id: String },
}

/// RFC 9068 §2.2 claims, plus `gid`: the grant a user's token belongs to, checked at use
/// so that revoking the grant revokes the token. A client's own token has no `gid`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct AccessTokenClaims {
    pub iss: String,
    pub sub: String,
    /// A string, or an array for several resources (RFC 8707 §2).
    pub aud: Value,
    pub client_id: String,
    pub scope: String,
    pub jti: String,
    pub exp: i64,
    pub iat: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth_time: Option<i64>,
    /// The sign-in's authentication context class and methods (RFC 9068 §2.2.1), for a
    /// resource server that wants to know how its user signed in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acr: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub amr: Option<Vec<String>>,
    /// The user's groups when the token was issued, for a token with the `groups` scope
    /// (RFC 9068 §2.2.3.1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub groups: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gid: Option<String>,
    /// RFC 8693 §4.1: who acts for the subject (a token from a delegating exchange), with
    /// the earlier actors of a chain nested inside.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub act: Option<Value>,
    /// Ours (RFC 8693 leaves it open): for a token issued by an exchange, the `jti` of
    /// its subject token, then of the tokens that one was exchanged from. Each is checked
    /// at use: a token revoked (RFC 7009) takes the tokens exchanged from it along.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub exchanged_from: Vec<String>,
    /// RFC 9449 §6.1 (RFC 7800 §3.1): `{"jkt": ...}` for a DPoP-bound token, whose
    /// resources accept it only with a proof by that key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cnf: Option<Value>,
}

impl AccessTokenClaims {
    /// The thumbprint of the key the token is bound to (DPoP), if it is.
    pub fn dpop_jkt(&self) -> Option<&str> {
        super::dpop::bound_jkt(self.cnf.as_ref())
    }
}

impl AccessTokenClaims {
    /// The subject as a type. A token without a grant is a client's own, and then its
    /// `sub` must be that client.
    pub fn subject(&self) -> Option<Subject> {
        match &self.gid {
            Some(gid) => Some(Subject::User {
                user_id: self.sub.clone(),
                grant_id: gid.clone(),
            }),
            None if self.sub == self.client_id => Some(Subject::Client {
                client_id: self.client_id.clone(),
            }),
            None => None,
        }
    }
}

/// An issued access token (a JWT, or an opaque reference) and what it says.
pub struct AccessToken {
    pub token: String,
    pub claims: AccessTokenClaims,
}

/// The token is the credential (an opaque one is nothing else): never in a log line.
impl std::fmt::Debug for AccessToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AccessToken")
            .field("token", &"[redacted]")
            .field("claims", &self.claims)
            .finish()
    }
}
