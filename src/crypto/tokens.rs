//! High-entropy random values (codes, secrets, session ids) and their stored form.

use aws_lc_rs::digest;
use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// `bytes` of OS randomness, base64url without padding. 32 bytes = 256 bits.
pub fn random_token(bytes: usize) -> String {
    URL_SAFE_NO_PAD.encode(random_bytes(bytes))
}

#[allow(
    clippy::expect_used,
    reason = "without the OS RNG nothing can be issued safely: stopping is the only answer"
)]
pub fn random_bytes(len: usize) -> Vec<u8> {
    let mut buf = vec![0u8; len];
    // SystemRandom only fails if the OS RNG is unavailable, which is unrecoverable.
    SystemRandom::new()
        .fill(&mut buf)
        .expect("operating system RNG failed");
    buf
}

/// A random UUID (v4) string, used as the stable `sub` of a user.
pub fn random_uuid() -> String {
    let mut b = random_bytes(16);
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

/// The stored form of a high-entropy token (code, client secret, registration token):
/// SHA-256, base64url. A slow password hash would add nothing against 256-bit secrets and
/// would put tens of milliseconds on the token endpoint.
pub fn token_hash(token: &str) -> String {
    URL_SAFE_NO_PAD.encode(digest::digest(&digest::SHA256, token.as_bytes()))
}

/// Constant-time equality for secrets and their hashes.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    #[allow(deprecated)]
    aws_lc_rs::constant_time::verify_slices_are_equal(a, b).is_ok()
}

/// Left half of SHA-256, base64url: `at_hash` / `c_hash` (OIDC Core §3.1.3.6) for the
/// 256-bit algorithms we sign with; and the PKCE S256 transform (RFC 7636 §4.2) is the full hash.
pub fn left_half_sha256(value: &str) -> String {
    let digest = digest::digest(&digest::SHA256, value.as_bytes());
    URL_SAFE_NO_PAD.encode(&digest.as_ref()[..16])
}

/// Left half of SHA-512, base64url: `at_hash` / `c_hash` for EdDSA (Ed25519).
pub fn left_half_sha512(value: &str) -> String {
    let digest = digest::digest(&digest::SHA512, value.as_bytes());
    URL_SAFE_NO_PAD.encode(&digest.as_ref()[..32])
}

/// RFC 7636 §4.6: `BASE64URL-ENCODE(SHA256(ASCII(code_verifier))) == code_challenge`.
pub fn pkce_s256(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(digest::digest(&digest::SHA256, verifier.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pkce_matches_the_rfc_7636_appendix_b_example() {
        assert_eq!(
            pkce_s256("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
    }

    #[test]
    fn random_tokens_are_distinct_and_url_safe() {
        let a = random_token(32);
        assert_eq!(a.len(), 43);
        assert_ne!(a, random_token(32));
        assert!(
            a.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        );
    }

    #[test]
    fn uuid_has_version_4_layout() {
        let id = random_uuid();
        assert_eq!(id.len(), 36);
        assert_eq!(&id[14..15], "4");
    }

    #[test]
    fn constant_time_eq_compares_content_and_length() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"abcd"));
    }
}
