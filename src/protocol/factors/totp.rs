//! One-time codes from an authenticator app (RFC 6238 TOTP over RFC 4226 HOTP):
//! HMAC-SHA-1, 6 digits, 30-second steps, one step of skew either way. These are the
//! values every authenticator app supports; apps told otherwise often ignore it and
//! silently use them anyway.
//!
//! The secret is sealed under the key-encryption key at rest (`seal`, `unseal`), bound to
//! its user. `check` says which time step a code belongs to; the caller then spends that
//! step with `FactorStore::use_totp_step` (or `confirm_totp`), so that a code is accepted
//! at most once (RFC 6238 §5.2), however many instances race.

use totp_rs::{Algorithm, Builder, Totp};

use crate::crypto::kek::{KekError, KeyEncryptionKey};
use crate::crypto::tokens::{constant_time_eq, random_bytes};
use crate::domain::{Secret, UnixTime};

pub const DIGITS: u8 = 6;
/// RFC 6238 §5.2: "We RECOMMEND a default time-step size of 30 seconds."
pub const PERIOD: u64 = 30;
/// RFC 6238 §5.2: "We RECOMMEND that at most one time step is allowed as the network
/// delay."
pub const SKEW: u16 = 1;
/// RFC 4226 §4 R6: at least 128 bits, 160 recommended (the length of SHA-1's output).
pub const SECRET_LEN: usize = 20;

/// The shared secret of an authenticator. `Debug` prints nothing.
pub struct TotpSecret(Secret<Vec<u8>>);

impl std::fmt::Debug for TotpSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TotpSecret([redacted])")
    }
}

/// The KEK context of a user's secret: a sealed secret moved to another user's row does
/// not open.
fn sealing_context(user_id: &str) -> String {
    format!("totp:{user_id}")
}

impl TotpSecret {
    /// A new random secret of `SECRET_LEN` bytes from the OS generator.
    pub fn generate() -> Self {
        Self(Secret::new(random_bytes(SECRET_LEN)))
    }

    pub fn from_bytes(bytes: Vec<u8>) -> Self {
        Self(Secret::new(bytes))
    }

    pub fn as_bytes(&self) -> &[u8] {
        self.0.expose()
    }

    /// RFC 4648 base32 without padding, as the enrolment page shows it for typing in by
    /// hand (and as the `otpauth://` URI carries it).
    pub fn to_base32(&self) -> String {
        totp_rs::Secret::from(self.as_bytes().to_vec()).to_base32()
    }

    /// The secret sealed under the KEK for the user's `totp_credentials` row.
    pub fn seal(&self, kek: &KeyEncryptionKey, user_id: &str) -> Result<String, KekError> {
        kek.encrypt(self.as_bytes(), &sealing_context(user_id))
    }

    pub fn unseal(kek: &KeyEncryptionKey, sealed: &str, user_id: &str) -> Result<Self, KekError> {
        kek.decrypt(sealed, &sealing_context(user_id))
            .map(Self::from_bytes)
    }

    fn totp(&self, digits: u8) -> Option<Totp> {
        Builder::new()
            .with_algorithm(Algorithm::SHA1)
            .with_digits(digits)
            .with_skew(SKEW)
            .with_step_duration(PERIOD)
            .with_secret(self.as_bytes().to_vec())
            .build()
            .ok()
    }
}

/// The `otpauth://` URI an authenticator app reads from the QR code (the Key Uri Format
/// of Google Authenticator, which every app follows): the label is `issuer:account`, and
/// the issuer is repeated as a parameter. Each part is percent-encoded, so a colon or a
/// space in a username is fine.
pub fn otpauth_uri(secret: &TotpSecret, issuer: &str, account_name: &str) -> String {
    let issuer = percent_encode(issuer);
    format!(
        "otpauth://totp/{issuer}:{account}?secret={secret}&issuer={issuer}&algorithm=SHA1&digits={DIGITS}&period={PERIOD}",
        account = percent_encode(account_name),
        secret = secret.to_base32(),
    )
}

/// RFC 3986 §2.1: every byte but the unreserved characters as `%XX`.
fn percent_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// The code of the time step holding `time`, with `digits` digits (6 for our codes; the
/// RFC's test vectors have 8). For tests, and for tools that play an authenticator.
pub fn code_at(secret: &TotpSecret, time: UnixTime, digits: u8) -> Option<String> {
    let time = u64::try_from(time).ok()?;
    Some(secret.totp(digits)?.generate(time).to_string())
}

/// The time step of `code` if it is the code of the step holding `now` or of one step
/// either side (RFC 6238 §5.2); `None` for a wrong or malformed code. Spaces are ignored
/// (apps show "123 456"); anything but six digits matches no step's code (each is six
/// ASCII digits), so it needs no check of its own. Every step of the window is compared,
/// in constant time, whatever matched first. Of two steps with the same code the later is
/// returned: the compare-and-set then refuses both older ones.
pub fn check(secret: &TotpSecret, code: &str, now: UnixTime) -> Option<i64> {
    let code: String = code.chars().filter(|c| !c.is_whitespace()).collect();
    let totp = secret.totp(DIGITS)?;
    let origin = u64::try_from(now).ok()? / PERIOD;
    let skew = u64::from(SKEW);
    let mut matched = None;
    for step in origin.saturating_sub(skew)..=origin.saturating_add(skew) {
        let expected = totp.generate(step.saturating_mul(PERIOD)).to_string();
        if constant_time_eq(expected.as_bytes(), code.as_bytes()) {
            matched = i64::try_from(step).ok();
        }
    }
    matched
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 6238 Appendix B: the SHA-1 seed is the ASCII of "12345678901234567890".
    fn rfc_secret() -> TotpSecret {
        TotpSecret::from_bytes(b"12345678901234567890".to_vec())
    }

    #[test]
    fn codes_match_the_rfc_6238_appendix_b_sha1_vectors() {
        let secret = rfc_secret();
        for (time, code) in [
            (59, "94287082"),
            (1_111_111_109, "07081804"),
            (1_111_111_111, "14050471"),
            (1_234_567_890, "89005924"),
            (2_000_000_000, "69279037"),
            (20_000_000_000, "65353130"),
        ] {
            assert_eq!(code_at(&secret, time, 8).unwrap(), code, "T = {time}");
            // Our six digits are the last six of the RFC's eight (RFC 4226 §5.3: the
            // value modulo 10^digits).
            assert_eq!(
                code_at(&secret, time, DIGITS).unwrap(),
                code[2..],
                "T = {time}"
            );
        }
    }

    #[test]
    fn a_code_is_accepted_one_step_either_side_and_not_two() {
        let secret = rfc_secret();
        let now = 1_800_000_015;
        let step = now / 30;
        for (offset, expected) in [
            (-2, None),
            (-1, Some(step - 1)),
            (0, Some(step)),
            (1, Some(step + 1)),
            (2, None),
        ] {
            let code = code_at(&secret, now + offset * 30, DIGITS).unwrap();
            assert_eq!(check(&secret, &code, now), expected, "offset {offset}");
        }
        // The window's edges are the steps' edges: the last second of a step still
        // accepts the next step's code, the first second of the step after does not
        // accept the code of two steps back.
        let first_second = step * 30;
        let previous = code_at(&secret, first_second - 30, DIGITS).unwrap();
        assert_eq!(check(&secret, &previous, first_second + 29), Some(step - 1));
        assert_eq!(check(&secret, &previous, first_second + 30), None);
    }

    #[test]
    fn malformed_codes_are_refused_without_panicking() {
        let secret = rfc_secret();
        let now = 59;
        let good = code_at(&secret, now, DIGITS).unwrap();
        assert_eq!(good, "287082");
        assert_eq!(check(&secret, &good, now), Some(1));
        assert_eq!(check(&secret, " 287 082\n", now), Some(1), "spaces ignored");
        for bad in [
            "",
            "28708",
            "2870820",
            "28708a",
            "abcdef",
            "+28708",
            "-28708",
            "２８７０８２",
            "287082287082",
            "28 70 8",
            "٢٨٧٠٨٢",
        ] {
            assert_eq!(check(&secret, bad, now), None, "{bad:?}");
        }
        assert_eq!(check(&secret, &good, -1), None, "a time before 1970");
        assert_eq!(check(&secret, &good, i64::MAX), None);
        let short = TotpSecret::from_bytes(vec![1; 10]);
        assert_eq!(
            check(&short, "000000", now),
            None,
            "a secret under 128 bits"
        );
    }

    #[test]
    fn secrets_are_random_sealed_per_user_and_shown_as_base32() {
        let a = TotpSecret::generate();
        assert_eq!(a.as_bytes().len(), SECRET_LEN);
        assert_ne!(a.as_bytes(), TotpSecret::generate().as_bytes());
        assert_eq!(rfc_secret().to_base32(), "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ");
        assert_eq!(format!("{a:?}"), "TotpSecret([redacted])");

        let kek = KeyEncryptionKey::from_bytes(&[7; 32]).unwrap();
        let sealed = a.seal(&kek, "user-1").unwrap();
        assert!(!sealed.contains(&a.to_base32()));
        let opened = TotpSecret::unseal(&kek, &sealed, "user-1").unwrap();
        assert_eq!(opened.as_bytes(), a.as_bytes());
        assert!(TotpSecret::unseal(&kek, &sealed, "user-2").is_err());
    }

    #[test]
    fn the_otpauth_uri_names_issuer_account_and_parameters() {
        let uri = otpauth_uri(&rfc_secret(), "Portcullis", "alice");
        assert_eq!(
            uri,
            "otpauth://totp/Portcullis:alice?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ\
             &issuer=Portcullis&algorithm=SHA1&digits=6&period=30"
        );
        let odd = otpauth_uri(&rfc_secret(), "ACME Corp", "a:b c@é");
        assert!(
            odd.starts_with("otpauth://totp/ACME%20Corp:a%3Ab%20c%40%C3%A9?"),
            "{odd}"
        );
        assert!(odd.contains("&issuer=ACME%20Corp&"), "{odd}");
    }
}
