//! The registry of what this provider implements: its endpoints (the routes mount these
//! paths, discovery publishes these URLs, a switched-off feature loses both) and the
//! supported values discovery lists, each taken from the type or constant that the
//! validation itself uses, so the three cannot drift.

use super::ProtocolConfig;
use crate::domain::{GrantType, RegistrationMode};

/// One endpoint: where it is mounted and the provider-metadata name of its URL.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Endpoint {
    /// OIDC Discovery §3 / RFC 8414 §2 member (`token_endpoint`, ...).
    pub metadata: &'static str,
    /// Below the issuer.
    pub path: &'static str,
    pub feature: Feature,
}

/// A capability that can be switched off, with everything that publishes it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Feature {
    /// Always on.
    Core,
    /// RFC 7591 dynamic registration: `registration = open`, or `token` with a token.
    Registration,
}

impl Feature {
    pub fn enabled(self, config: &ProtocolConfig) -> bool {
        match self {
            Self::Core => true,
            Self::Registration => match config.registration {
                RegistrationMode::Open => true,
                RegistrationMode::Token => config.registration_token_set,
                RegistrationMode::Off => false,
            },
        }
    }
}

const fn core(metadata: &'static str, path: &'static str) -> Endpoint {
    Endpoint {
        metadata,
        path,
        feature: Feature::Core,
    }
}

pub const AUTHORIZATION: Endpoint = core("authorization_endpoint", "/authorize");
pub const TOKEN: Endpoint = core("token_endpoint", "/token");
pub const PUSHED_AUTHORIZATION: Endpoint = core("pushed_authorization_request_endpoint", "/par");
pub const USERINFO: Endpoint = core("userinfo_endpoint", "/userinfo");
pub const REVOCATION: Endpoint = core("revocation_endpoint", "/revoke");
pub const INTROSPECTION: Endpoint = core("introspection_endpoint", "/introspect");
pub const JWKS: Endpoint = core("jwks_uri", "/jwks");
pub const END_SESSION: Endpoint = core("end_session_endpoint", "/logout");
/// RFC 8628 §3.1: where a device asks for a device code and a user code.
pub const DEVICE_AUTHORIZATION: Endpoint =
    core("device_authorization_endpoint", "/device_authorization");
pub const REGISTRATION: Endpoint = Endpoint {
    metadata: "registration_endpoint",
    path: "/register",
    feature: Feature::Registration,
};

/// RFC 7592 §3: a registered client's configuration endpoint, below the registration
/// endpoint. Not in discovery: the registration response gives each client its URL.
pub const CLIENT_CONFIGURATION: &str = "/register/{client_id}";

/// Every endpoint discovery may publish.
pub const ENDPOINTS: [Endpoint; 10] = [
    AUTHORIZATION,
    TOKEN,
    PUSHED_AUTHORIZATION,
    USERINFO,
    REVOCATION,
    INTROSPECTION,
    JWKS,
    END_SESSION,
    REGISTRATION,
    DEVICE_AUTHORIZATION,
];

/// Every grant type, with the feature that brings it: discovery's
/// `grant_types_supported` is read from here. Token exchange (RFC 8693) is always on: a
/// client uses it only once an operator gave it an exchange policy.
pub const GRANT_TYPES: [(GrantType, Feature); 6] = [
    (GrantType::AuthorizationCode, Feature::Core),
    (GrantType::Implicit, Feature::Core),
    (GrantType::RefreshToken, Feature::Core),
    (GrantType::ClientCredentials, Feature::Core),
    (GrantType::TokenExchange, Feature::Core),
    (GrantType::DeviceCode, Feature::Core),
];

/// The grant types switched on under `config`.
pub fn grant_types_supported(config: &ProtocolConfig) -> Vec<&'static str> {
    GRANT_TYPES
        .iter()
        .filter(|(_, feature)| feature.enabled(config))
        .map(|(grant, _)| grant.as_str())
        .collect()
}

/// The endpoints switched on under `config`.
pub fn enabled_endpoints(config: &ProtocolConfig) -> impl Iterator<Item = Endpoint> + '_ {
    ENDPOINTS.into_iter().filter(|e| e.feature.enabled(config))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_have_distinct_paths_and_names() {
        for (i, a) in ENDPOINTS.iter().enumerate() {
            for b in &ENDPOINTS[i + 1..] {
                assert_ne!(a.path, b.path);
                assert_ne!(a.metadata, b.metadata);
            }
        }
    }

    #[test]
    fn every_grant_type_is_in_the_registry_once_and_token_exchange_is_listed() {
        let config = crate::protocol::testing::config();
        let listed = grant_types_supported(&config);
        assert_eq!(listed.len(), GrantType::ALL.len());
        for grant in GrantType::ALL {
            assert_eq!(GRANT_TYPES.iter().filter(|(g, _)| *g == grant).count(), 1);
            assert!(listed.contains(&grant.as_str()), "{grant:?}");
        }
        assert!(listed.contains(&"urn:ietf:params:oauth:grant-type:token-exchange"));
        assert!(listed.contains(&"urn:ietf:params:oauth:grant-type:device_code"));
    }

    #[test]
    fn a_clients_configuration_is_below_the_registration_endpoint() {
        let below = CLIENT_CONFIGURATION.strip_prefix(REGISTRATION.path);
        assert_eq!(below, Some("/{client_id}"));
    }

    #[test]
    fn registration_is_on_only_when_it_can_be_used() {
        let mut config = crate::protocol::testing::config();
        for (mode, token_set, on) in [
            (RegistrationMode::Open, false, true),
            (RegistrationMode::Token, false, false),
            (RegistrationMode::Token, true, true),
            (RegistrationMode::Off, true, false),
        ] {
            config.registration = mode;
            config.registration_token_set = token_set;
            assert_eq!(Feature::Registration.enabled(&config), on, "{mode:?}");
            assert_eq!(
                enabled_endpoints(&config).any(|e| e == REGISTRATION),
                on,
                "{mode:?}"
            );
            assert_eq!(enabled_endpoints(&config).count(), 9 + usize::from(on));
        }
    }
}
