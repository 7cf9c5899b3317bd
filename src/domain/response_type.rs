//! `response_type` (RFC 6749 §3.1.1, OAuth 2.0 Multiple Response Types §3, OIDC Core
//! §3): which of a code, an ID token and an access token the authorization endpoint
//! returns.

use serde::{Deserialize, Serialize};

/// A set of response type values; the order of the words does not matter (Multiple
/// Response Types §3: "the order of values does not matter"). Its serde form (the three
/// flags) is how pending authorization requests are stored: keep it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResponseType {
    pub code: bool,
    pub id_token: bool,
    pub token: bool,
}

impl Default for ResponseType {
    fn default() -> Self {
        Self::CODE
    }
}

impl ResponseType {
    pub const CODE: Self = Self {
        code: true,
        id_token: false,
        token: false,
    };

    /// Every combination this provider answers (OIDC Core §3: code, implicit, hybrid).
    /// `token` alone, plain OAuth implicit without an ID token, is not among them
    /// (RFC 9700 §2.1.2).
    pub const SUPPORTED: [&'static str; 6] = [
        "code",
        "id_token",
        "id_token token",
        "code id_token",
        "code token",
        "code id_token token",
    ];

    pub fn parse(value: &str) -> Option<Self> {
        let mut parsed = Self {
            code: false,
            id_token: false,
            token: false,
        };
        for word in value.split(' ') {
            let seen = match word {
                "code" => &mut parsed.code,
                "id_token" => &mut parsed.id_token,
                "token" => &mut parsed.token,
                _ => return None,
            };
            if *seen {
                return None;
            }
            *seen = true;
        }
        // `token` alone is not supported; an empty value is no value.
        (parsed.code || parsed.id_token).then_some(parsed)
    }

    /// The canonical spelling (as registered and in discovery).
    pub fn as_str(self) -> &'static str {
        match (self.code, self.id_token, self.token) {
            (true, false, false) => "code",
            (false, true, false) => "id_token",
            (false, true, true) => "id_token token",
            (true, true, false) => "code id_token",
            (true, false, true) => "code token",
            (true, true, true) => "code id_token token",
            // Not constructed by `parse`.
            (false, false, _) => "token",
        }
    }

    /// Whether the front channel carries a token (ID or access token).
    pub fn returns_tokens(self) -> bool {
        self.id_token || self.token
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_supported_value_parses_in_any_order_and_prints_canonically() {
        for value in ResponseType::SUPPORTED {
            let parsed = ResponseType::parse(value).unwrap();
            assert_eq!(parsed.as_str(), value);
            let reversed: Vec<&str> = value.split(' ').rev().collect();
            assert_eq!(ResponseType::parse(&reversed.join(" ")), Some(parsed));
        }
    }

    #[test]
    fn the_stored_form_is_the_three_flags() {
        // Pending authorization requests in the session store hold it so.
        assert_eq!(
            serde_json::to_value(ResponseType::CODE).unwrap(),
            serde_json::json!({"code": true, "id_token": false, "token": false})
        );
    }

    #[test]
    fn unknown_repeated_empty_and_bare_token_values_are_refused() {
        for value in [
            "",
            "token",
            "code code",
            "code  token",
            "none",
            "Code",
            "code id-token",
        ] {
            assert_eq!(ResponseType::parse(value), None, "{value:?}");
        }
    }
}
