//! argon2id password hashing (argon2 0.6 defaults: m=19 MiB, t=2, p=1).
//! Both calls take ~50 ms of CPU: run them on a blocking thread, never on an actix worker.

use argon2::{Argon2, PasswordHasher, PasswordVerifier};

use crate::domain::Secret;

pub fn hash_password(password: &Secret<String>) -> anyhow::Result<String> {
    Argon2::default()
        .hash_password(password.expose().as_bytes())
        .map(|hash| hash.to_string())
        .map_err(|e| anyhow::anyhow!("password hashing failed: {e}"))
}

/// Verifies `password` against a stored PHC string. With `None` (unknown user) it verifies
/// against a fixed dummy hash so that both failures take the same time.
pub fn verify_password(password: &Secret<String>, stored: Option<&str>) -> bool {
    let (phc, known) = match stored {
        Some(phc) => (phc, true),
        None => (dummy_hash(), false),
    };
    let ok = Argon2::default()
        .verify_password(password.expose().as_bytes(), phc)
        .is_ok();
    ok && known
}

fn dummy_hash() -> &'static str {
    static DUMMY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DUMMY.get_or_init(|| {
        hash_password(&Secret::new(crate::crypto::tokens::random_token(16))).unwrap_or_default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_is_argon2id_and_verifies_only_the_right_password() {
        let hash = hash_password(&Secret::new("correct horse".into())).unwrap();
        assert!(hash.starts_with("$argon2id$"));
        assert!(verify_password(
            &Secret::new("correct horse".into()),
            Some(&hash)
        ));
        assert!(!verify_password(&Secret::new("wrong".into()), Some(&hash)));
        assert!(!verify_password(&Secret::new("correct horse".into()), None));
    }
}
