//! PKCE (RFC 7636) at the authorization endpoint: the challenge and its method.

use serde::{Deserialize, Serialize};

use crate::protocol::profile::ClientProfile;
use crate::protocol::{OAuthError, Params};
use crate::store::Client;

/// RFC 7636 §4.2 `code_challenge_method`: S256 alone (`plain` protects nothing once the
/// request leaks, RFC 9700 §2.1.1). Serialized as its RFC name, as pending requests in
/// the session store have always held it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum PkceMethod {
    #[serde(rename = "S256")]
    S256,
}

impl PkceMethod {
    pub const SUPPORTED: [&'static str; 1] = ["S256"];

    pub fn parse(value: &str) -> Option<Self> {
        (value == "S256").then_some(Self::S256)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::S256 => "S256",
        }
    }
}

pub use crate::domain::is_pkce_string;

/// RFC 7636 §4.3/§4.4.1: S256 only (plain offers no protection against a leaked request),
/// required for every client (RFC 9700 §2.1.1) but a confidential one registered with an
/// explicit opt-out.
pub fn challenge(
    params: &Params,
    client: &Client,
) -> Result<(Option<String>, Option<PkceMethod>), OAuthError> {
    let challenge = params.single("code_challenge")?;
    let method = params.single("code_challenge_method")?;
    match (challenge, method) {
        (None, None) if client.requires_pkce() || ClientProfile::of(client).requires_pkce() => Err(
            OAuthError::invalid_request("PKCE (code_challenge with S256) is required"),
        ),
        (None, None) => Ok((None, None)),
        (None, Some(_)) => Err(OAuthError::invalid_request(
            "code_challenge_method without code_challenge",
        )),
        (Some(_), None | Some("plain")) => Err(OAuthError::invalid_request(
            "code_challenge_method must be S256",
        )),
        (Some(c), Some(m)) => {
            let Some(method) = PkceMethod::parse(m) else {
                return Err(OAuthError::invalid_request(
                    "code_challenge_method must be S256",
                ));
            };
            if !is_pkce_string(c) {
                return Err(OAuthError::invalid_request("malformed code_challenge"));
            }
            Ok((Some(c.to_owned()), Some(method)))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{PkceMethod, is_pkce_string};

    #[test]
    fn the_method_is_stored_under_its_rfc_name() {
        // Pending authorization requests in the session store hold it as this string.
        assert_eq!(
            serde_json::to_string(&PkceMethod::S256).unwrap(),
            r#""S256""#
        );
        let stored: Option<PkceMethod> = serde_json::from_str(r#""S256""#).unwrap();
        assert_eq!(stored, Some(PkceMethod::S256));
        assert!(serde_json::from_str::<PkceMethod>(r#""plain""#).is_err());
        assert_eq!(PkceMethod::SUPPORTED, [PkceMethod::S256.as_str()]);
    }

    #[test]
    fn a_pending_request_stored_with_the_method_as_text_reads_back_typed() {
        let stored = serde_json::json!({
            "client_id": "rp",
            "redirect_uri": "https://rp.example/cb",
            "redirect_uri_sent": true,
            "scope": "openid",
            "code_challenge": "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
            "code_challenge_method": "S256",
            "prompt": [],
        });
        let request: crate::protocol::authorize::AuthorizationRequest =
            serde_json::from_value(stored).unwrap();
        assert_eq!(request.code_challenge_method, Some(PkceMethod::S256));
        let again = serde_json::to_value(&request).unwrap();
        assert_eq!(again["code_challenge_method"], "S256");
    }

    #[test]
    fn a_verifier_is_43_to_128_unreserved_characters() {
        assert!(!is_pkce_string(&"a".repeat(42)));
        assert!(is_pkce_string(&"a".repeat(43)));
        assert!(is_pkce_string(&"a".repeat(128)));
        assert!(!is_pkce_string(&"a".repeat(129)));
        assert!(!is_pkce_string(""));
        // Every unreserved character, in a verifier of the shortest length.
        let unreserved = "AZaz09-._~";
        assert!(is_pkce_string(&format!("{unreserved}{}", "x".repeat(33))));
        for refused in ['+', '/', '=', ' ', '%', '!', '*', '\'', 'é'] {
            let verifier = format!("{}{refused}", "a".repeat(42));
            assert!(!is_pkce_string(&verifier), "{verifier:?}");
        }
    }
}
