//! The rules new passwords meet (NIST SP 800-63B-3 §5.1.1.2, memorized secrets): a
//! length, and no composition rules ("one digit, one capital"). Every new password an
//! administrator (console, admin API) or the person sets is 8 to 1024 characters
//! ([`check_new_password`]): 8 is that revision's floor, and accounts here may add a
//! second factor. One a person chooses for themselves (on the
//! security page, at a reset, at sign-up) must also not be easy to guess
//! ([`check_chosen_password`]): §5.1.1.2 asks that it be compared with lists of common
//! and breached passwords and with context-specific words (the service's and the user's
//! names); zxcvbn does both, and scores what is left. An administrator's password meets
//! the length alone: it is often a first one, for the person to change.

use super::Secret;

/// The fewest characters (Unicode scalar values) a new password has.
pub const MIN_CHARS: usize = 8;
/// The most: a passphrase, not a file.
pub const MAX_CHARS: usize = 1024;

/// The least zxcvbn score a chosen password reaches: `Three`, more than 10^8 guesses
/// (zxcvbn's "safely unguessable" band starts there; `Two` is within reach of an online
/// attack that the throttle slows but does not stop).
const LEAST_SCORE: zxcvbn::Score = zxcvbn::Score::Three;

/// zxcvbn's matching grows faster than linearly with the length: it looks at this many
/// characters, as its JavaScript original's demos advise. A longer password is a
/// passphrase whose start alone decides.
const SCORED_CHARS: usize = 100;

/// Why a new password is refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PasswordRuleError {
    #[error("password must be 8 to 1024 characters")]
    Length,
    /// Common, breached, a pattern (`qwerty123`, a date), or made of the person's names.
    #[error("password is too easy to guess")]
    Guessable,
}

/// Checks `password` against the rule.
pub fn check_new_password(password: &Secret<String>) -> Result<(), PasswordRuleError> {
    let length = password.expose().chars().count();
    if !(MIN_CHARS..=MAX_CHARS).contains(&length) {
        return Err(PasswordRuleError::Length);
    }
    Ok(())
}

/// Checks a password a person chose for themselves: the length, and that it is not easy
/// to guess, `about_them` (their username, email address, name) and the service's name
/// counting as known words.
pub fn check_chosen_password(
    password: &Secret<String>,
    about_them: &[&str],
) -> Result<(), PasswordRuleError> {
    check_new_password(password)?;
    let scored: String = password.expose().chars().take(SCORED_CHARS).collect();
    // Each whole, and each word in it: a full name's given and family names, an
    // address's local part and its domain's labels, are words of their own.
    let mut words: Vec<&str> = about_them
        .iter()
        .copied()
        .filter(|w| !w.is_empty())
        .collect();
    let parts = about_them
        .iter()
        .flat_map(|w| w.split(|c: char| !c.is_alphanumeric()))
        .filter(|part| part.chars().count() >= 3);
    words.extend(parts);
    words.push("portcullis");
    let estimate = zxcvbn::zxcvbn(&scored, &words);
    if estimate.score() < LEAST_SCORE {
        return Err(PasswordRuleError::Guessable);
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

    fn chosen(password: &str, about: &[&str]) -> Result<(), PasswordRuleError> {
        check_chosen_password(&Secret::new(password.to_owned()), about)
    }

    #[test]
    fn a_chosen_password_must_not_be_common_a_pattern_or_the_persons_own_words() {
        for common in [
            "password1",
            "qwertyuiop",
            "12345678",
            "iloveyou123",
            "P@ssw0rd!",
        ] {
            assert_eq!(
                chosen(common, &[]),
                Err(PasswordRuleError::Guessable),
                "{common}"
            );
        }
        // The person's own name and address, a little dressed up.
        let about = [
            "margaretha",
            "margaretha.zelle@example.org",
            "Margaretha Zelle",
        ];
        assert_eq!(
            chosen("margaretha1", &about),
            Err(PasswordRuleError::Guessable)
        );
        assert_eq!(
            chosen("zelle2024!", &about),
            Err(PasswordRuleError::Guessable)
        );
        // Still refused for its length first.
        assert_eq!(chosen("a1!", &[]), Err(PasswordRuleError::Length));
        // No composition rule: lowercase words pass; so does a random string.
        assert_eq!(chosen("violet tugboat anthem drizzle", &about), Ok(()));
        assert_eq!(chosen("kX9#vQ2!mZ", &about), Ok(()));
        // A long passphrase is scored by its start, quickly.
        let long = format!("violet tugboat anthem drizzle {}", "z".repeat(900));
        assert_eq!(chosen(&long, &[]), Ok(()));
    }
}
