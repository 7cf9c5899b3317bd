//! OpenID Provider Metadata (OIDC Discovery §3, RFC 8414 §2): only what works.

use serde_json::{Value, json};

use super::SUPPORTED_SCOPES;
use super::authorize::{DISPLAY_VALUES, PkceMethod, Prompt, ResponseMode};
use super::claims_request::ACR_VALUES_SUPPORTED;
use super::grants::SUPPORTED_GRANT_TYPES;
use super::registration::SUPPORTED_RESPONSE_TYPES;
use crate::config::{RegistrationMode, Settings};
use crate::crypto::KeySet;
use crate::store::AuthMethod;

pub const CLAIMS_SUPPORTED: [&str; 29] = [
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
];

/// Algorithms of client assertions (RFC 7523): HMAC for client_secret_jwt, signatures for
/// private_key_jwt.
pub const ASSERTION_ALGS: [&str; 9] = [
    "HS256", "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384",
];

/// RFC 9101: what request objects may be signed with; `none` only for a client that
/// registered it.
const REQUEST_OBJECT_SIGNING_ALGS: [&str; 5] = ["RS256", "PS256", "ES256", "EdDSA", "none"];

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
        "pushed_authorization_request_endpoint": settings.endpoint("/par"),
        "require_pushed_authorization_requests": settings.require_pushed_authorization_requests,
        "userinfo_endpoint": settings.endpoint("/userinfo"),
        "revocation_endpoint": settings.endpoint("/revoke"),
        "introspection_endpoint": settings.endpoint("/introspect"),
        "jwks_uri": settings.endpoint("/jwks"),
        "end_session_endpoint": settings.endpoint("/logout"),
        "scopes_supported": SUPPORTED_SCOPES,
        "response_types_supported": SUPPORTED_RESPONSE_TYPES,
        "response_modes_supported": ResponseMode::SUPPORTED,
        "grant_types_supported": SUPPORTED_GRANT_TYPES,
        "subject_types_supported": ["public", "pairwise"],
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
        "acr_values_supported": ACR_VALUES_SUPPORTED,
        "display_values_supported": DISPLAY_VALUES,
        "ui_locales_supported": ["en"],
        "request_parameter_supported": true,
        "request_uri_parameter_supported": true,
        // Only registered request_uri values are fetched (OIDC Registration §2).
        "require_request_uri_registration": true,
        "request_object_signing_alg_values_supported": REQUEST_OBJECT_SIGNING_ALGS,
        "authorization_response_iss_parameter_supported": true,
        // OIDC Front-Channel Logout §3 and Back-Channel Logout §2.1: every logout
        // carries `iss` and `sid` (the iframe's query, the logout token's claims).
        "frontchannel_logout_supported": true,
        "frontchannel_logout_session_supported": true,
        "backchannel_logout_supported": true,
        "backchannel_logout_session_supported": true,
    });
    if registration_enabled(settings) {
        doc["registration_endpoint"] = json!(settings.endpoint("/register"));
    }
    doc
}
