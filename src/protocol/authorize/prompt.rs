//! `prompt` (OIDC Core §3.1.2.1): what the user must be shown, or must not be.

use serde::{Deserialize, Serialize};

use crate::protocol::OAuthError;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Prompt {
    /// No page at all: an error if one would be needed.
    None,
    /// Sign in again, even with a session.
    Login,
    /// Ask for consent again, even if it was given.
    Consent,
    /// Let the user choose the account: the login page, which is where one is chosen.
    SelectAccount,
}

impl Prompt {
    pub const SUPPORTED: [&'static str; 4] = ["none", "login", "consent", "select_account"];

    pub fn parse(value: &str) -> Option<Self> {
        match value {
            "none" => Some(Self::None),
            "login" => Some(Self::Login),
            "consent" => Some(Self::Consent),
            "select_account" => Some(Self::SelectAccount),
            _ => None,
        }
    }

    /// The space-separated `prompt` parameter; `none` must stand alone.
    pub fn parse_list(value: &str) -> Result<Vec<Self>, OAuthError> {
        let prompts = value
            .split(' ')
            .filter(|s| !s.is_empty())
            .map(|v| {
                Self::parse(v)
                    .ok_or_else(|| OAuthError::invalid_request("unsupported prompt value"))
            })
            .collect::<Result<Vec<_>, _>>()?;
        if prompts.len() > 1 && prompts.contains(&Self::None) {
            return Err(OAuthError::invalid_request(
                "prompt=none cannot be combined with other values",
            ));
        }
        Ok(prompts)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prompts_parse_as_a_list_with_none_alone() {
        assert_eq!(Prompt::parse_list("").unwrap(), vec![]);
        assert_eq!(
            Prompt::parse_list("login  consent").unwrap(),
            vec![Prompt::Login, Prompt::Consent]
        );
        assert!(Prompt::parse_list("none login").is_err());
        assert!(Prompt::parse_list("create").is_err());
        assert_eq!(Prompt::parse_list("none").unwrap(), vec![Prompt::None]);
        for value in Prompt::SUPPORTED {
            let parsed = Prompt::parse(value).unwrap();
            assert_eq!(
                serde_json::to_value(parsed).unwrap(),
                value,
                "stored as its name"
            );
        }
    }
}
