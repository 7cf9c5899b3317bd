//! OpenID Provider Metadata (OIDC Discovery §3, RFC 8414 §2): only what works.

use serde_json::{Value, json};

use super::authorize::request_object::REQUEST_OBJECT_ALGS;
use super::authorize::{DISPLAY_VALUES, PkceMethod, Prompt, ResponseMode};
use super::client_auth::ASSERTION_ALGS;
use super::registration::SUPPORTED_RESPONSE_TYPES;
use super::{ProtocolConfig, SUPPORTED_SCOPES, features};

/// The languages of the pages (`templates/i18n`), English first.
pub const UI_LOCALES: [&str; 2] = ["en", "fr"];
use crate::crypto::KeySet;
use crate::domain::SubjectType;
use crate::store::AuthMethod;

pub const CLAIMS_SUPPORTED: [&str; 30] = [
    "sub",
    "iss",
    "aud",
    "exp",
    "iat",
    "auth_time",
    "nonce",
    "at_hash",
    "sid",
    "name",
    "given_name",
    "family_name",
    "middle_name",
    "nickname",
    "preferred_username",
    "profile",
    "picture",
    "website",
    "email",
    "email_verified",
    "gender",
    "birthdate",
    "zoneinfo",
    "locale",
    "updated_at",
    "address",
    "phone_number",
    "phone_number_verified",
    "c_hash",
    super::groups::GROUPS,
];

pub fn provider_metadata(config: &ProtocolConfig, keys: &KeySet) -> Value {
    let algs: Vec<&str> = keys.algorithms().into_iter().map(|a| a.as_str()).collect();
    let mut doc = json!({
        "issuer": config.issuer,
        "require_pushed_authorization_requests": config.require_pushed_authorization_requests,
        "scopes_supported": SUPPORTED_SCOPES,
        "response_types_supported": SUPPORTED_RESPONSE_TYPES,
        "response_modes_supported": ResponseMode::SUPPORTED,
        "grant_types_supported": features::grant_types_supported(config),
        "subject_types_supported": SubjectType::SUPPORTED,
        "id_token_signing_alg_values_supported": algs,
        "userinfo_signing_alg_values_supported": algs,
        // "none" is how public clients (PKCE only) use the token endpoint.
        "token_endpoint_auth_methods_supported": AuthMethod::SUPPORTED,
        "token_endpoint_auth_signing_alg_values_supported": ASSERTION_ALGS,
        // Public clients may revoke their own tokens (RFC 7009 §2.1); only authenticated
        // clients may introspect (RFC 7662 §2.1).
        "revocation_endpoint_auth_methods_supported": AuthMethod::SUPPORTED,
        "revocation_endpoint_auth_signing_alg_values_supported": ASSERTION_ALGS,
        "introspection_endpoint_auth_methods_supported": &AuthMethod::SUPPORTED[..4],
        "introspection_endpoint_auth_signing_alg_values_supported": ASSERTION_ALGS,
        "introspection_signing_alg_values_supported": algs,
        "code_challenge_methods_supported": PkceMethod::SUPPORTED,
        "claims_supported": CLAIMS_SUPPORTED,
        "claim_types_supported": ["normal"],
        "prompt_values_supported": Prompt::SUPPORTED,
        "claims_parameter_supported": true,
        "acr_values_supported": config.mfa.levels().iter().map(|l| l.acr()).collect::<Vec<_>>(),
        "display_values_supported": DISPLAY_VALUES,
        "ui_locales_supported": UI_LOCALES,
        "request_parameter_supported": true,
        "request_uri_parameter_supported": true,
        // Only registered request_uri values are fetched (OIDC Registration §2).
        "require_request_uri_registration": true,
        // `none` only for a client that registered it.
        "request_object_signing_alg_values_supported": REQUEST_OBJECT_ALGS
            .iter()
            .chain(&["none"])
            .collect::<Vec<_>>(),
        "authorization_response_iss_parameter_supported": true,
        // RFC 9449 §5.1: the algorithms the proof verifier accepts, from its own list.
        "dpop_signing_alg_values_supported": super::dpop::DPOP_ALGS,
        // OIDC Front-Channel Logout §3 and Back-Channel Logout §2.1: every logout
        // carries `iss` and `sid` (the iframe's query, the logout token's claims).
        "frontchannel_logout_supported": true,
        "frontchannel_logout_session_supported": true,
        "backchannel_logout_supported": true,
        "backchannel_logout_session_supported": true,
    });
    for endpoint in features::enabled_endpoints(config) {
        doc[endpoint.metadata] = json!(config.endpoint(endpoint.path));
    }
    doc
}
