/// What a client's access tokens are (issue 26): RFC 9068 JWTs a resource server can
/// verify on its own (the default), or opaque reference tokens that only introspection
/// (RFC 7662) resolves. Chosen per client by the operator, never by a registrant.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum AccessTokenFormat {
    #[default]
    Jwt,
    Opaque,
}

impl AccessTokenFormat {
    pub const SUPPORTED: [&'static str; 2] = ["jwt", "opaque"];

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "jwt" => Some(Self::Jwt),
            "opaque" => Some(Self::Opaque),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Jwt => "jwt",
            Self::Opaque => "opaque",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::AccessTokenFormat;

    #[test]
    fn each_supported_name_parses_to_the_format_it_names_and_nothing_else_does() {
        for name in AccessTokenFormat::SUPPORTED {
            assert_eq!(AccessTokenFormat::parse(name).unwrap().as_str(), name);
        }
        assert_eq!(AccessTokenFormat::parse("JWT"), None);
        assert_eq!(AccessTokenFormat::parse("reference"), None);
        assert_eq!(AccessTokenFormat::default(), AccessTokenFormat::Jwt);
    }
}
