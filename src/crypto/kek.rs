//! The key-encryption key (KEK): a 256-bit secret from the configuration or a key file,
//! never stored in the database. It encrypts the secrets the provider must be able to read
//! back (client secrets of `client_secret_jwt` clients, which verify an HMAC) and keys the
//! MACs that derive values an attacker must not be able to compute (refresh token
//! successors). A database dump alone therefore reveals none of them.

use std::path::Path;

use aws_lc_rs::aead::{AES_256_GCM, Aad, NONCE_LEN, Nonce, RandomizedNonceKey};
use aws_lc_rs::hmac;
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};

use super::tokens::random_bytes;

pub const KEK_LEN: usize = 32;

#[derive(Debug, thiserror::Error)]
pub enum KekError {
    #[error("the key-encryption key must be {KEK_LEN} bytes, base64-encoded")]
    Malformed,
    #[error("cannot read or create the key file {path}: {cause}")]
    File { path: String, cause: String },
    #[error("a value could not be decrypted: it was encrypted under another key or altered")]
    Decrypt,
    #[error("encryption failed")]
    Encrypt,
}

/// Versioned prefix of ciphertexts, so a later key rotation can tell generations apart.
const CIPHERTEXT_PREFIX: &str = "v1.";

pub struct KeyEncryptionKey {
    aead: RandomizedNonceKey,
    /// Subkeys for MACs, one per purpose, derived from the KEK (HMAC as a PRF).
    mac: hmac::Key,
    check: String,
}

impl std::fmt::Debug for KeyEncryptionKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("KeyEncryptionKey([redacted])")
    }
}

impl KeyEncryptionKey {
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, KekError> {
        if bytes.len() != KEK_LEN {
            return Err(KekError::Malformed);
        }
        let root = hmac::Key::new(hmac::HMAC_SHA256, bytes);
        let subkey = |label: &str| hmac::sign(&root, label.as_bytes());
        let aead = RandomizedNonceKey::new(&AES_256_GCM, subkey("portcullis aead").as_ref())
            .map_err(|_| KekError::Malformed)?;
        let mac = hmac::Key::new(hmac::HMAC_SHA256, subkey("portcullis mac").as_ref());
        let check = URL_SAFE_NO_PAD.encode(subkey("portcullis check"));
        Ok(Self { aead, mac, check })
    }

    /// Parses base64 (standard or URL-safe, padding optional).
    pub fn from_base64(text: &str) -> Result<Self, KekError> {
        let text = text.trim();
        let bytes = STANDARD
            .decode(text)
            .or_else(|_| URL_SAFE_NO_PAD.decode(text.trim_end_matches('=')))
            .map_err(|_| KekError::Malformed)?;
        Self::from_bytes(&bytes)
    }

    /// Reads the key file, creating it with a new random key (mode 0600) if it does not
    /// exist yet: the embedded default needs no set-up.
    pub fn load_or_create(path: &Path) -> Result<Self, KekError> {
        let file_error = |e: std::io::Error| KekError::File {
            path: path.display().to_string(),
            cause: e.to_string(),
        };
        match std::fs::read_to_string(path) {
            Ok(text) => Self::from_base64(&text),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                    std::fs::create_dir_all(dir).map_err(file_error)?;
                }
                let encoded = STANDARD.encode(random_bytes(KEK_LEN));
                write_private(path, &format!("{encoded}\n")).map_err(file_error)?;
                // Another process may have won the race to create it: read what is there.
                Self::from_base64(&std::fs::read_to_string(path).map_err(file_error)?)
            }
            Err(e) => Err(file_error(e)),
        }
    }

    /// A value that identifies this key without revealing it: stored in the database so
    /// that an instance started with another key refuses to run instead of failing later.
    pub fn check_value(&self) -> &str {
        &self.check
    }

    /// AES-256-GCM with a random nonce; `context` (e.g. the client id) is bound as
    /// associated data, so a ciphertext moved to another row does not decrypt.
    pub fn encrypt(&self, plaintext: &[u8], context: &str) -> Result<String, KekError> {
        let mut buf = plaintext.to_vec();
        let nonce = self
            .aead
            .seal_in_place_append_tag(Aad::from(context.as_bytes()), &mut buf)
            .map_err(|_| KekError::Encrypt)?;
        let mut out = nonce.as_ref().to_vec();
        out.extend_from_slice(&buf);
        Ok(format!(
            "{CIPHERTEXT_PREFIX}{}",
            URL_SAFE_NO_PAD.encode(out)
        ))
    }

    pub fn decrypt(&self, ciphertext: &str, context: &str) -> Result<Vec<u8>, KekError> {
        let body = ciphertext
            .strip_prefix(CIPHERTEXT_PREFIX)
            .ok_or(KekError::Decrypt)?;
        let raw = URL_SAFE_NO_PAD
            .decode(body)
            .map_err(|_| KekError::Decrypt)?;
        if raw.len() < NONCE_LEN {
            return Err(KekError::Decrypt);
        }
        let (nonce, sealed) = raw.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| KekError::Decrypt)?;
        let mut buf = sealed.to_vec();
        let plain = self
            .aead
            .open_in_place(nonce, Aad::from(context.as_bytes()), &mut buf)
            .map_err(|_| KekError::Decrypt)?;
        Ok(plain.to_vec())
    }

    /// HMAC-SHA256 of `purpose` and `input` under the MAC subkey, base64url: a value only
    /// the holder of the KEK can compute from `input`.
    pub fn derive(&self, purpose: &str, input: &str) -> String {
        let mut ctx = hmac::Context::with_key(&self.mac);
        ctx.update(purpose.as_bytes());
        ctx.update(&[0]);
        ctx.update(input.as_bytes());
        URL_SAFE_NO_PAD.encode(ctx.sign())
    }
}

#[cfg(unix)]
fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path);
    match &mut file {
        Ok(f) => f.write_all(text.as_bytes()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(_) => file.map(|_| ()),
    }
}

#[cfg(not(unix))]
fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    std::fs::write(path, text)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kek(byte: u8) -> KeyEncryptionKey {
        KeyEncryptionKey::from_bytes(&[byte; KEK_LEN]).unwrap()
    }

    #[test]
    fn ciphertexts_decrypt_only_with_the_same_key_and_context() {
        let a = kek(1);
        let sealed = a.encrypt(b"client secret", "client-1").unwrap();
        assert!(!sealed.contains("client secret"));
        assert_eq!(a.decrypt(&sealed, "client-1").unwrap(), b"client secret");
        assert!(a.decrypt(&sealed, "client-2").is_err());
        assert!(kek(2).decrypt(&sealed, "client-1").is_err());
        assert_ne!(sealed, a.encrypt(b"client secret", "client-1").unwrap());
        let mut tampered = sealed.clone();
        tampered.pop();
        assert!(a.decrypt(&tampered, "client-1").is_err());
    }

    #[test]
    fn derived_values_and_check_values_depend_on_the_key() {
        let (a, b) = (kek(1), kek(2));
        assert_eq!(a.derive("p", "x"), kek(1).derive("p", "x"));
        assert_ne!(a.derive("p", "x"), b.derive("p", "x"));
        assert_ne!(a.derive("p", "x"), a.derive("q", "x"));
        assert_ne!(a.check_value(), b.check_value());
    }

    #[test]
    fn keys_parse_from_base64_and_files_are_created_once() {
        assert!(KeyEncryptionKey::from_base64(&STANDARD.encode([7u8; 32])).is_ok());
        assert!(KeyEncryptionKey::from_base64("c2hvcnQ=").is_err());
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/kek");
        let first = KeyEncryptionKey::load_or_create(&path).unwrap();
        let again = KeyEncryptionKey::load_or_create(&path).unwrap();
        assert_eq!(first.check_value(), again.check_value());
    }
}
