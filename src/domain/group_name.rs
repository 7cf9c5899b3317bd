//! Group names: what the `groups` claim says, so what apps decide access by.
//!
//! A name is 1 to 64 characters once surrounding whitespace is trimmed, with no control
//! characters and no bidirectional formatting characters (which make a name read as
//! another: `admins\u{202E}` shows as something else than it is). Names are kept as the
//! administrator wrote them and compared without regard to case, by the rule of
//! usernames (`UsernameKey`): "Admins" and "admins" are one group, so no two groups can
//! pass for each other in an app that compares names loosely.

use super::UsernameKey;

/// The most characters a group name has.
pub const MAX_GROUP_NAME: usize = 64;

/// A checked group name, trimmed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GroupName(String);

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "a group name is 1 to 64 characters, without control or bidirectional formatting characters"
)]
pub struct InvalidGroupName;

/// Unicode's bidirectional formatting characters (the marks, embeddings, overrides and
/// isolates), as client names refuse them.
fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{200E}' | '\u{200F}' | '\u{061C}')
}

impl GroupName {
    pub fn parse(text: &str) -> Result<Self, InvalidGroupName> {
        let name = text.trim();
        let length = name.chars().count();
        if !(1..=MAX_GROUP_NAME).contains(&length)
            || name.chars().any(|c| c.is_control() || is_bidi_control(c))
        {
            return Err(InvalidGroupName);
        }
        Ok(Self(name.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The form in which names are compared and kept unique.
    pub fn key(&self) -> String {
        Self::key_of(&self.0)
    }

    /// The key any text would have as a name (to find a group by what someone typed).
    pub fn key_of(text: &str) -> String {
        UsernameKey::new(text).as_str().to_owned()
    }
}

impl std::fmt::Display for GroupName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_trimmed_kept_as_written_and_compared_without_case() {
        let name = GroupName::parse("  Sales Team ").unwrap();
        assert_eq!(name.as_str(), "Sales Team");
        assert_eq!(name.key(), "sales team");
        assert_eq!(GroupName::parse("SALES team").unwrap().key(), name.key());
        assert_eq!(GroupName::key_of(" sales TEAM"), name.key());
        assert_eq!(GroupName::parse("Équipe").unwrap().key(), "équipe");
    }

    #[test]
    fn empty_long_control_and_bidi_names_are_refused() {
        for bad in [
            "",
            "   ",
            "a\tb",
            "line\nbreak",
            "admins\u{202E}",
            "\u{2066}x",
        ] {
            assert_eq!(GroupName::parse(bad), Err(InvalidGroupName), "{bad:?}");
        }
        let longest = "é".repeat(MAX_GROUP_NAME);
        assert!(GroupName::parse(&longest).is_ok(), "characters, not bytes");
        assert!(GroupName::parse(&format!("{longest}x")).is_err());
        assert!(GroupName::parse("ops/on-call: EU (24×7)").is_ok());
    }
}
