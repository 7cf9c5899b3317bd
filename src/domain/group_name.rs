//! Group names: what the `groups` claim says, so what apps decide access by.
//!
//! A name is 1 to 64 characters once surrounding whitespace is trimmed, with no control
//! characters, no format characters (Unicode category Cf: the zero-width space and
//! joiners, the word joiner, the byte order mark, the soft hyphen and the bidirectional
//! controls, which make a name read as another: `admins\u{202E}` shows as something else
//! than it is, `ad\u{200B}mins` as `admins`), no line or paragraph separators and no
//! whitespace but the plain space. A name is kept in Unicode's composed form (NFC) as the
//! administrator wrote it, so `é` typed either way is one string in every token, and
//! compared by its key: its compatibility form (NFKC) in lower case. "Admins", "admins"
//! and "ａｄｍｉｎｓ" (full-width) are one group, so no two groups can pass for each other
//! in an app that compares names loosely. The key is stricter than the username key
//! (`UsernameKey`, case alone), which is kept for accounts as it was: group names are
//! released to apps to decide access by, usernames are not.

use unicode_normalization::UnicodeNormalization;

/// The most characters a group name has.
pub const MAX_GROUP_NAME: usize = 64;

/// The most groups a user may be in: the `groups` claim lists them all, in ID tokens,
/// JWT access tokens and the implicit flow's URL fragment, which must stay bounded
/// (100 names of at most 64 characters). Adding a member and an import refuse beyond.
pub const MAX_USER_GROUPS: usize = 100;

/// A checked group name, trimmed and in NFC.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GroupName(String);

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "a group name is 1 to 64 characters, without control, invisible or bidirectional formatting characters, and no whitespace but spaces"
)]
pub struct InvalidGroupName;

/// What no name may hold: control and format characters (the bidirectional controls are
/// among these), and any whitespace but U+0020 (no-break and zero-width spaces, tabs, the
/// line and paragraph separators U+2028 and U+2029).
fn refused(c: char) -> bool {
    c.is_control() || super::is_format(c) || (c.is_whitespace() && c != ' ')
}

impl GroupName {
    pub fn parse(text: &str) -> Result<Self, InvalidGroupName> {
        let name: String = text.trim().nfc().collect();
        let length = name.chars().count();
        if !(1..=MAX_GROUP_NAME).contains(&length) || name.chars().any(refused) {
            return Err(InvalidGroupName);
        }
        Ok(Self(name))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The form in which names are compared and kept unique.
    pub fn key(&self) -> String {
        Self::key_of(&self.0)
    }

    /// The key any text would have as a name (to find a group by what someone typed):
    /// trimmed, NFKC, lower case, and NFKC again (lower-casing can undo it), so that a
    /// key is its own key.
    pub fn key_of(text: &str) -> String {
        let folded: String = text.trim().nfkc().collect::<String>().to_lowercase();
        folded.nfkc().collect()
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

    #[test]
    fn invisible_characters_and_other_whitespace_are_refused() {
        for bad in [
            "ad\u{200B}mins",
            "ad\u{200C}mins",
            "ad\u{200D}mins",
            "ad\u{2060}mins",
            "\u{FEFF}admins",
            "ad\u{00AD}mins",
            "admins\u{E0041}",
            "a\u{2028}b",
            "a\u{2029}b",
            "a\u{00A0}b",
            "a\u{3000}b",
            "a\u{2009}b",
        ] {
            assert_eq!(GroupName::parse(bad), Err(InvalidGroupName), "{bad:?}");
        }
        assert!(GroupName::parse("sales team").is_ok(), "plain spaces stay");
    }

    #[test]
    fn names_are_kept_composed_and_compared_by_compatibility_form() {
        // "é" as e + combining acute is stored as the one character U+00E9.
        let decomposed = GroupName::parse("E\u{0301}quipe e\u{0301}te\u{0301}").unwrap();
        assert_eq!(decomposed.as_str(), "\u{00C9}quipe \u{00E9}t\u{00E9}");
        assert_eq!(
            decomposed.key(),
            GroupName::parse("ÉQUIPE ÉTÉ").unwrap().key()
        );
        // Full-width letters and the "ﬁ" ligature key as their plain forms.
        assert_eq!(GroupName::parse("ＡＤＭＩＮＳ").unwrap().key(), "admins");
        assert_eq!(GroupName::parse("ﬁnance").unwrap().key(), "finance");
        // The stored name keeps what was written (only composed).
        assert_eq!(
            GroupName::parse("ＡＤＭＩＮＳ").unwrap().as_str(),
            "ＡＤＭＩＮＳ"
        );
        for name in [
            "Admins",
            "ÉQUIPE",
            "Straße",
            "İstanbul",
            "ＡＤＭＩＮＳ",
            "Ⅻ",
        ] {
            let key = GroupName::key_of(name);
            assert_eq!(GroupName::key_of(&key), key, "a key is its own key: {name}");
        }
    }
}
