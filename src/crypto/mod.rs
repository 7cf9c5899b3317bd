//! Cryptography: random tokens and their hashes, argon2id passwords, signing keys and JWKS.
//! Everything here runs on aws-lc-rs (constant-time, fast); see `../shared/STACK.md` §0.

pub mod kek;
pub mod keys;
pub mod password;
pub mod tokens;

pub use keys::{KeyAlgorithm, KeySet, SigningKey};

/// Makes aws-lc-rs the process's rustls provider (rustls is built without one, so that
/// there is a single crypto stack); idempotent.
pub fn install_tls_provider() {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
}
