//! OpenID Provider Metadata (OIDC Discovery §3, RFC 8414 §2): only what works.

use serde_json::{Value, json};

use super::SUPPORTED_SCOPES;
use super::registration::{SUPPORTED_GRANT_TYPES, SUPPORTED_RESPONSE_TYPES};
use crate::config::{RegistrationMode, Settings};
use crate::crypto::KeySet;
use crate::store::AuthMethod;

pub const CLAIMS_SUPPORTED: [&str; 22] = [
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
    "phone_number",
    "phone_number_verified",
];

pub fn registration_enabled(settings: &Settings) -> bool {
    match settings.registration {
        RegistrationMode::Open => true,
        RegistrationMode::Token => settings.registration_token.is_some(),
        RegistrationMode::Off => false,
    }
}

pub fn provider_metadata(settings: &Settings, keys: &KeySet) -> Value {
    let algs: Vec<&str> = keys.algorithms().into_iter().map(|a| a.as_str()).collect();
    let mut doc = json!({
        "issuer": settings.issuer,
        "authorization_endpoint": settings.endpoint("/authorize"),
        "token_endpoint": settings.endpoint("/token"),
        "userinfo_endpoint": settings.endpoint("/userinfo"),
        "jwks_uri": settings.endpoint("/jwks"),
        "end_session_endpoint": settings.endpoint("/logout"),
        "scopes_supported": SUPPORTED_SCOPES,
        "response_types_supported": SUPPORTED_RESPONSE_TYPES,
        "response_modes_supported": ["query"],
        "grant_types_supported": SUPPORTED_GRANT_TYPES,
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": algs,
        // "none" is how public clients (PKCE only) use the token endpoint.
        "token_endpoint_auth_methods_supported": AuthMethod::SUPPORTED,
        "code_challenge_methods_supported": ["S256"],
        "claims_supported": CLAIMS_SUPPORTED,
        "claim_types_supported": ["normal"],
        "prompt_values_supported": ["none", "login", "consent", "select_account"],
        "claims_parameter_supported": false,
        "request_parameter_supported": false,
        "request_uri_parameter_supported": false,
        "require_request_uri_registration": false,
        "authorization_response_iss_parameter_supported": true,
        "frontchannel_logout_supported": false,
        "backchannel_logout_supported": false,
    });
    if registration_enabled(settings) {
        doc["registration_endpoint"] = json!(settings.endpoint("/register"));
    }
    doc
}
