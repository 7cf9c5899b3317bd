//! The form of PKCE values (RFC 7636), shared by the authorization endpoint (challenges)
//! and the token endpoint (verifiers).

/// RFC 7636 §4.1: `code-verifier = 43*128unreserved`, unreserved being
/// `[A-Z] / [a-z] / [0-9] / "-" / "." / "_" / "~"`. The token endpoint holds verifiers to
/// it; challenges are held to it too (§4.2: an S256 challenge is 43 characters of
/// base64url, within the same alphabet).
pub fn is_pkce_string(value: &str) -> bool {
    (43..=128).contains(&value.len())
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b))
}
