//! Request parameters as sent: RFC 6749 §3.1 — "Parameters sent without a value MUST be
//! treated as if they were omitted" and "Request and response parameters MUST NOT be
//! included more than once."

use super::OAuthError;

#[derive(Clone, Debug, Default)]
pub struct Params(Vec<(String, String)>);

impl Params {
    pub fn new(pairs: Vec<(String, String)>) -> Self {
        Self(pairs)
    }

    pub fn pairs(&self) -> &[(String, String)] {
        &self.0
    }

    /// Parses an `application/x-www-form-urlencoded` string (query or body).
    pub fn from_urlencoded(text: &str) -> Result<Self, OAuthError> {
        serde_urlencoded::from_str::<Vec<(String, String)>>(text)
            .map(Self)
            .map_err(|_| OAuthError::invalid_request("malformed form encoding"))
    }

    /// The single non-empty value of `name`; a repeated parameter is `invalid_request`.
    pub fn single(&self, name: &str) -> Result<Option<&str>, OAuthError> {
        let mut found = None;
        for (key, value) in &self.0 {
            if key == name && !value.is_empty() {
                if found.is_some() {
                    return Err(OAuthError::invalid_request(format!(
                        "parameter {name} is repeated"
                    )));
                }
                found = Some(value.as_str());
            }
        }
        Ok(found)
    }

    /// Every non-empty value of a parameter that may repeat (RFC 8707 `resource`).
    pub fn all(&self, name: &str) -> Vec<&str> {
        self.0
            .iter()
            .filter(|(k, v)| k == name && !v.is_empty())
            .map(|(_, v)| v.as_str())
            .collect()
    }

    pub fn required(&self, name: &str) -> Result<&str, OAuthError> {
        self.single(name)?
            .ok_or_else(|| OAuthError::invalid_request(format!("parameter {name} is missing")))
    }

    /// Merges `other` (e.g. a POST body) after our own pairs.
    pub fn extend(&mut self, other: Params) {
        self.0.extend(other.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_values_count_as_absent_and_repeats_are_invalid_request() {
        let p = Params::from_urlencoded("a=1&b=&c=2&c=3").unwrap();
        assert_eq!(p.single("a").unwrap(), Some("1"));
        assert_eq!(p.single("b").unwrap(), None);
        assert_eq!(
            p.single("c").unwrap_err().code,
            crate::protocol::ErrorCode::InvalidRequest
        );
        assert!(p.required("d").is_err());
    }
}
