//! Cryptography: random tokens and their hashes, argon2id passwords, signing keys and JWKS.
//! Everything here runs on aws-lc-rs (constant-time, fast); see `../shared/STACK.md` §0.

pub mod kek;
pub mod keys;
pub mod password;
pub mod tokens;

pub use keys::{KeyAlgorithm, KeySet, SigningKey};
