use std::collections::BTreeSet;
use std::fmt;

/// One scope token (RFC 6749 §3.3: `1*( %x21 / %x23-5B / %x5D-7E )`).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Scope(String);

impl Scope {
    pub fn parse(token: &str) -> Option<Self> {
        let valid = !token.is_empty()
            && token
                .bytes()
                .all(|b| b == 0x21 || (0x23..=0x5b).contains(&b) || (0x5d..=0x7e).contains(&b));
        valid.then(|| Self(token.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A set of scopes, written space-separated in a stable (sorted) order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Scopes(BTreeSet<Scope>);

impl Scopes {
    /// Parses a space-delimited scope string; `None` if any token is malformed.
    pub fn parse(value: &str) -> Option<Self> {
        value
            .split(' ')
            .filter(|t| !t.is_empty())
            .map(Scope::parse)
            .collect::<Option<BTreeSet<_>>>()
            .map(Self)
    }

    pub fn contains(&self, scope: &str) -> bool {
        self.0.iter().any(|s| s.as_str() == scope)
    }

    pub fn is_subset(&self, other: &Scopes) -> bool {
        self.0.is_subset(&other.0)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(Scope::as_str)
    }

    /// Keeps only the scopes `keep` accepts.
    pub fn retain(&mut self, mut keep: impl FnMut(&str) -> bool) {
        self.0.retain(|s| keep(s.as_str()));
    }

    pub fn union(&self, other: &Scopes) -> Scopes {
        Scopes(self.0.union(&other.0).cloned().collect())
    }
}

impl fmt::Display for Scopes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        for scope in &self.0 {
            if !first {
                f.write_str(" ")?;
            }
            f.write_str(scope.as_str())?;
            first = false;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_parse_ignore_extra_spaces_and_print_sorted() {
        let scopes = Scopes::parse("profile  openid email").unwrap();
        assert_eq!(scopes.to_string(), "email openid profile");
        assert!(scopes.contains("openid"));
    }

    #[test]
    fn scope_with_a_quote_or_backslash_is_malformed() {
        assert!(Scopes::parse("openid \"x").is_none());
        assert!(Scopes::parse("a\\b").is_none());
    }

    #[test]
    fn subset_is_checked_per_scope() {
        let all = Scopes::parse("openid profile email").unwrap();
        let some = Scopes::parse("openid email").unwrap();
        assert!(some.is_subset(&all));
        assert!(!all.is_subset(&some));
    }
}
