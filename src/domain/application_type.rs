//! OIDC Registration §2 `application_type`: what kind of app a client is, which decides
//! the redirect URIs it may register.

/// `web` (the default) or `native` (RFC 8252: loopback and private-use schemes).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum ApplicationType {
    #[default]
    Web,
    Native,
}

impl ApplicationType {
    pub const ALL: [Self; 2] = [Self::Web, Self::Native];

    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Web => "web",
            Self::Native => "native",
        }
    }

    pub fn parse(value: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|a| a.as_str() == value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn application_types_parse_from_their_names_only_and_default_to_web() {
        for a in ApplicationType::ALL {
            assert_eq!(ApplicationType::parse(a.as_str()), Some(a));
        }
        for other in ["", "Web", "NATIVE", "browser", "native "] {
            assert_eq!(ApplicationType::parse(other), None, "{other:?}");
        }
        assert_eq!(ApplicationType::default(), ApplicationType::Web);
    }
}
