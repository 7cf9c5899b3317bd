//! The per-client options of OIDC Dynamic Client Registration §2, RFC 9101 §10.1,
//! RFC 9126 §6 and RFC 9701 §6 that have no column of their own: one typed record,
//! stored as a JSON object whose members are the registration metadata names.

use serde::{Deserialize, Serialize};

use super::KeyAlgorithm;

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ClientMetadata {
    /// ID tokens signed with this (RS256 otherwise).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id_token_signed_response_alg: Option<KeyAlgorithm>,
    /// RFC 9068 access tokens signed with this (RS256 otherwise).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub access_token_signed_response_alg: Option<KeyAlgorithm>,
    /// Userinfo as a JWT signed with this; plain JSON otherwise.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub userinfo_signed_response_alg: Option<KeyAlgorithm>,
    /// RFC 9701: JWT introspection responses signed with this (RS256 otherwise).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub introspection_signed_response_alg: Option<KeyAlgorithm>,
    /// RFC 9101 §10.1: the one algorithm its request objects are signed with (`none`
    /// allows unsigned ones).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_object_signing_alg: Option<String>,
    /// OIDC Registration §2: the `request_uri` values it may send (fetched by us).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub request_uris: Vec<String>,
    /// RFC 9126 §6: its authorization requests must be pushed first.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub require_pushed_authorization_requests: bool,
    /// RFC 9449 §5.2: every token request of this client carries a DPoP proof, and its
    /// access tokens are all DPoP-bound.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub dpop_bound_access_tokens: bool,
    /// RFC 9449 §8: this client's proofs must carry the server's nonce (as with the
    /// server-wide `dpop_nonce`).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub require_dpop_nonce: bool,
    /// OIDC Core §8.
    #[serde(skip_serializing_if = "SubjectType::is_public")]
    pub subject_type: SubjectType,
    /// The sector pairwise subjects are derived from (ours, not registration metadata):
    /// the host of `sector_identifier_uri`, or of the redirect URIs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sector_identifier: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sector_identifier_uri: Option<String>,
    /// RFC 8693: what the client may exchange tokens for, set by the operator only (ours,
    /// not registration metadata). `None`: no token exchange.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token_exchange: Option<ExchangePolicy>,
    /// The security profile the operator put the client under (ours, not registration
    /// metadata; issue 25): what it demands is `protocol::profile`'s to say.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub profile: Option<Profile>,
    #[serde(flatten)]
    pub display: ClientDisplay,
}

/// A security profile a client is held to, by its stored name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Profile {
    /// FAPI 2.0 Security Profile (final).
    #[serde(rename = "fapi2")]
    Fapi2,
}

impl Profile {
    pub const SUPPORTED: [&'static str; 1] = ["fapi2"];

    pub fn parse(value: &str) -> Option<Self> {
        (value == "fapi2").then_some(Self::Fapi2)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Fapi2 => "fapi2",
        }
    }
}

/// A client's token exchange policy (RFC 8693 §1.1, §2.1): the audiences (resource URIs or
/// logical names) it may ask tokens for, and whether it may impersonate, that is ask for a
/// token with no actor. Without impersonation it may only delegate (an `actor_token`
/// makes an `act` claim).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ExchangePolicy {
    pub audiences: Vec<String>,
    pub impersonation: bool,
}

/// Display metadata (RFC 7591 §2), kept as given once checked.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ClientDisplay {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_uri: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub logo_uri: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub policy_uri: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tos_uri: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub contacts: Vec<String>,
}

/// OIDC Core §8: the same `sub` for every client, or one per sector.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SubjectType {
    #[default]
    Public,
    Pairwise,
}

impl SubjectType {
    pub const SUPPORTED: [&'static str; 2] = ["public", "pairwise"];

    pub fn parse(value: &str) -> Option<Self> {
        match value {
            "public" => Some(Self::Public),
            "pairwise" => Some(Self::Pairwise),
            _ => None,
        }
    }

    fn is_public(&self) -> bool {
        *self == Self::Public
    }
}

impl ClientMetadata {
    /// The sector of a client registered for pairwise subject identifiers (OIDC Core
    /// §8.1): its users' `sub` is derived from it; `None` for public subjects.
    pub fn pairwise_sector(&self) -> Option<&str> {
        match self.subject_type {
            SubjectType::Pairwise => self.sector_identifier.as_deref(),
            SubjectType::Public => None,
        }
    }

    /// As stored: registration metadata names, absent options left out.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|_| "{}".into())
    }

    /// What was stored; an empty column (an old row) is no options.
    pub fn from_json(text: &str) -> Result<Self, serde_json::Error> {
        match text.trim() {
            "" | "null" => Ok(Self::default()),
            text => serde_json::from_str(text),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata_is_stored_under_its_registration_names_and_read_back() {
        let metadata = ClientMetadata {
            id_token_signed_response_alg: Some(KeyAlgorithm::EdDsa),
            request_uris: vec!["https://rp.example/r".into()],
            require_pushed_authorization_requests: true,
            subject_type: SubjectType::Pairwise,
            sector_identifier: Some("rp.example".into()),
            display: ClientDisplay {
                logo_uri: Some("https://rp.example/logo.png".into()),
                ..Default::default()
            },
            ..Default::default()
        };
        let json: serde_json::Value = serde_json::from_str(&metadata.to_json()).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "id_token_signed_response_alg": "EdDSA",
                "request_uris": ["https://rp.example/r"],
                "require_pushed_authorization_requests": true,
                "subject_type": "pairwise",
                "sector_identifier": "rp.example",
                "logo_uri": "https://rp.example/logo.png",
            })
        );
        let back = ClientMetadata::from_json(&metadata.to_json()).unwrap();
        assert_eq!(back, metadata);
        let fapi = ClientMetadata {
            profile: Some(Profile::Fapi2),
            ..Default::default()
        };
        assert_eq!(fapi.to_json(), r#"{"profile":"fapi2"}"#);
        assert_eq!(ClientMetadata::from_json(&fapi.to_json()).unwrap(), fapi);
        assert_eq!(back.pairwise_sector(), Some("rp.example"));
    }

    #[test]
    fn defaults_are_left_out_and_old_rows_read_as_no_options() {
        assert_eq!(ClientMetadata::default().to_json(), "{}");
        for old in ["", "null", "{}"] {
            assert_eq!(
                ClientMetadata::from_json(old).unwrap(),
                ClientMetadata::default()
            );
        }
        assert!(ClientMetadata::from_json(r#"{"id_token_signed_response_alg":"HS1"}"#).is_err());
    }

    #[test]
    fn a_public_client_has_no_sector_even_with_one_stored() {
        let metadata = ClientMetadata {
            sector_identifier: Some("rp.example".into()),
            ..Default::default()
        };
        assert_eq!(metadata.pairwise_sector(), None);
    }
}
