//! The rule every new password meets, whoever sets it (an administrator, the CLI, the
//! user on the security page): a length, and no composition rules (NIST SP 800-63B
//! §3.1.1.2: at least 8 characters; long passphrases welcome, up to a bound that keeps
//! hashing cheap to refuse).

use super::Secret;

/// The fewest characters (Unicode scalar values) a new password has.
pub const MIN_CHARS: usize = 8;
/// The most: a passphrase, not a file.
pub const MAX_CHARS: usize = 1024;

/// Why a new password is refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PasswordRuleError {
    #[error("password must be 8 to 1024 characters")]
    Length,
}

/// Checks `password` against the rule.
pub fn check_new_password(password: &Secret<String>) -> Result<(), PasswordRuleError> {
    let length = password.expose().chars().count();
    if !(MIN_CHARS..=MAX_CHARS).contains(&length) {
        return Err(PasswordRuleError::Length);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(password: &str) -> Result<(), PasswordRuleError> {
        check_new_password(&Secret::new(password.to_owned()))
    }

    #[test]
    fn length_is_counted_in_characters_between_the_bounds() {
        assert_eq!(check("1234567"), Err(PasswordRuleError::Length));
        assert_eq!(check("12345678"), Ok(()));
        // Eight characters, sixteen bytes.
        assert_eq!(check("éééééééé"), Ok(()));
        assert_eq!(check("ééééééé"), Err(PasswordRuleError::Length));
        assert_eq!(check(&"x".repeat(MAX_CHARS)), Ok(()));
        assert_eq!(
            check(&"x".repeat(MAX_CHARS + 1)),
            Err(PasswordRuleError::Length)
        );
    }
}
