use std::fmt;

use zeroize::Zeroize;

/// A value that must never reach a log line: `Debug` and `Display` print a placeholder.
/// It has no `==` (compare secrets with `crypto::tokens::constant_time_eq`, on hashes),
/// and its memory is zeroed when it is dropped.
///
/// ```compile_fail
/// use portcullis::domain::Secret;
/// let (a, b) = (Secret::new(String::from("x")), Secret::new(String::from("x")));
/// let _ = a == b; // no `==` on secrets: it would not be constant-time
/// ```
#[derive(Clone)]
pub struct Secret<T: Zeroize>(T);

impl<T: Zeroize> Secret<T> {
    pub fn new(value: T) -> Self {
        Self(value)
    }

    /// The secret itself; call sites are few and easy to audit.
    pub fn expose(&self) -> &T {
        &self.0
    }
}

impl<T: Zeroize> Drop for Secret<T> {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

impl<T: Zeroize> fmt::Debug for Secret<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret([redacted])")
    }
}

impl<T: Zeroize> From<T> for Secret<T> {
    fn from(value: T) -> Self {
        Self(value)
    }
}

/// A secret read from a request body (a password in the admin API): taken straight into
/// a `Secret`, so no plain copy outlives parsing.
impl<'de> serde::Deserialize<'de> for Secret<String> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d).map(Self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_output_never_contains_the_secret() {
        let secret = Secret::new("hunter2".to_string());
        assert!(!format!("{secret:?}").contains("hunter2"));
        assert_eq!(secret.expose(), "hunter2");
    }
}
