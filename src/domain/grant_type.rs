//! OAuth 2.0 grant types (RFC 6749 §4, RFC 7591 §2 `grant_types` values) this provider
//! implements.

/// `implicit` is the authorization endpoint's own (tokens in the front channel), never a
/// token request's.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum GrantType {
    AuthorizationCode,
    Implicit,
    RefreshToken,
    ClientCredentials,
    /// RFC 8693 token exchange: for clients an operator gave an exchange policy.
    TokenExchange,
    /// RFC 8628 device authorization grant: polled at the token endpoint by a device
    /// whose user approves on another screen.
    DeviceCode,
}

impl GrantType {
    pub const ALL: [Self; 6] = [
        Self::AuthorizationCode,
        Self::Implicit,
        Self::RefreshToken,
        Self::ClientCredentials,
        Self::TokenExchange,
        Self::DeviceCode,
    ];

    /// What registration accepts (discovery lists them through the feature registry,
    /// `protocol::features::grant_types_supported`).
    pub const SUPPORTED: [&'static str; 6] = [
        Self::ALL[0].as_str(),
        Self::ALL[1].as_str(),
        Self::ALL[2].as_str(),
        Self::ALL[3].as_str(),
        Self::ALL[4].as_str(),
        Self::ALL[5].as_str(),
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            Self::AuthorizationCode => "authorization_code",
            Self::Implicit => "implicit",
            Self::RefreshToken => "refresh_token",
            Self::ClientCredentials => "client_credentials",
            Self::TokenExchange => "urn:ietf:params:oauth:grant-type:token-exchange",
            Self::DeviceCode => "urn:ietf:params:oauth:grant-type:device_code",
        }
    }

    pub fn parse(value: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|g| g.as_str() == value)
    }

    /// Grant types that send a user to the authorization endpoint (and so need a
    /// redirect URI).
    pub fn uses_browser(self) -> bool {
        matches!(self, Self::AuthorizationCode | Self::Implicit)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_grant_type_parses_from_its_name_and_nothing_else_does() {
        for g in GrantType::ALL {
            assert_eq!(GrantType::parse(g.as_str()), Some(g));
        }
        assert_eq!(GrantType::SUPPORTED.len(), GrantType::ALL.len());
        for other in [
            "password",
            "AUTHORIZATION_CODE",
            "",
            "urn:ietf:params:oauth:grant-type:device-code",
            "device_code",
        ] {
            assert_eq!(GrantType::parse(other), None, "{other}");
        }
        assert!(GrantType::Implicit.uses_browser() && GrantType::AuthorizationCode.uses_browser());
        assert!(
            !GrantType::RefreshToken.uses_browser() && !GrantType::ClientCredentials.uses_browser()
        );
        // RFC 8628: the user's browser is another device's; the client has no redirect URI.
        assert!(!GrantType::DeviceCode.uses_browser());
    }
}
