//! Usernames: shown as their owner chose them, compared without regard to case.

/// A username in the one form in which it is compared: surrounding whitespace trimmed and
/// every character lower-cased (Unicode's full lower-case mapping, as `str::to_lowercase`).
/// `Alice` and `ALICE` are one account: the store keeps usernames unique and finds them by
/// this key, and the login throttle counts attempts by it, so a name's case can neither
/// make a second account nor a second allowance of guesses.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct UsernameKey(String);

impl UsernameKey {
    pub fn new(username: &str) -> Self {
        Self(username.trim().to_lowercase())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for UsernameKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// The rule every username meets, chosen by an administrator or by the person: 1 to 255
/// bytes once trimmed, no control characters. Returns the name as it is kept (trimmed).
pub fn check_username(username: &str) -> Result<String, InvalidUsername> {
    let username = username.trim();
    // Nothing invisible that would make a look-alike of another's name: no control or
    // format characters (zero-width spaces and joiners, bidi controls, soft hyphens),
    // and no space but U+0020.
    let unseen = |c: char| c.is_control() || super::is_format(c) || (c.is_whitespace() && c != ' ');
    if username.is_empty() || username.len() > 255 || username.chars().any(unseen) {
        return Err(InvalidUsername);
    }
    Ok(username.to_owned())
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("username must be 1 to 255 characters, without control or invisible characters")]
pub struct InvalidUsername;

#[cfg(test)]
mod tests {
    use super::UsernameKey;

    #[test]
    fn a_new_name_has_no_invisible_characters() {
        use super::check_username;
        assert_eq!(check_username(" Alice ").unwrap(), "Alice");
        assert_eq!(check_username("Ana María").unwrap(), "Ana María");
        for unseen in [
            "alice\u{200B}",
            "al\u{00AD}ice",
            "\u{202E}ecila",
            "ali\u{00A0}ce",
            "a\tb",
            "",
        ] {
            assert!(check_username(unseen).is_err(), "{unseen:?}");
        }
    }

    #[test]
    fn names_that_differ_only_in_case_or_surrounding_space_have_one_key() {
        let key = |name| UsernameKey::new(name).as_str().to_owned();
        assert_eq!(key("Alice"), "alice");
        assert_eq!(key("ALICE"), key("alice"));
        assert_eq!(key("  Alice\t"), "alice");
        assert_eq!(key("ÉMILE"), "émile");
        assert_ne!(key("alice"), key("alice2"));
    }

    #[test]
    fn a_key_is_its_own_key() {
        // What the store keeps is found again by the same rule.
        for name in ["Alice", "ÉMILE", "Straße", "ΟΔΥΣΣΕΥΣ", "İstanbul"] {
            let key = UsernameKey::new(name);
            assert_eq!(UsernameKey::new(key.as_str()), key, "{name}");
        }
    }
}
