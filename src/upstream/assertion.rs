//! `private_key_jwt` to an upstream's token endpoint (RFC 7523 §2.2, OIDC Core §9): a
//! client assertion signed with one of our own signing keys, "a key Portcullis holds".
//! The upstream reads its public half from our `/jwks`, the `jwks_uri` the operator
//! registers there for us; a rotation publishes a key before it signs, so the upstream
//! finds every key an assertion names.

use serde_json::json;

use super::{UpstreamError, refused};
use crate::crypto::KeySet;
use crate::crypto::tokens::random_token;
use crate::domain::{KeyAlgorithm, UnixTime};

/// RFC 7523 §2.2's `client_assertion_type`.
pub const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// How long an assertion is good for: one token request, sent at once.
pub const ASSERTION_LIFETIME: i64 = 60;

/// The assertion for one token request: `iss` and `sub` our client id there, `aud` the
/// upstream's token endpoint (OIDC Core §9), a fresh `jti` (the upstream takes each once),
/// `iat` now, `exp` a minute away; signed with our newest active key of `alg`.
pub fn client_assertion(
    keys: &KeySet,
    alg: KeyAlgorithm,
    client_id: &str,
    audience: &str,
    now: UnixTime,
) -> Result<String, UpstreamError> {
    let key = keys.signing_key(alg, now).ok_or_else(|| {
        refused(
            "client_assertion",
            format!("no active {} signing key", alg.as_str()),
        )
    })?;
    let claims = json!({
        "iss": client_id,
        "sub": client_id,
        "aud": audience,
        "jti": random_token(24),
        "iat": now,
        "exp": now + ASSERTION_LIFETIME,
    });
    key.sign_jwt("JWT", &claims)
        .map_err(|e| refused("client_assertion", e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::SigningKey;
    use crate::crypto::keys::JwtExpectations;

    #[test]
    fn an_assertion_names_the_client_and_the_token_endpoint_and_expires_soon() {
        let (key, _) = SigningKey::generate(KeyAlgorithm::Es256).unwrap();
        let kid = key.kid().to_owned();
        let keys = KeySet::new(vec![key]);
        let jwt = client_assertion(
            &keys,
            KeyAlgorithm::Es256,
            "ours",
            "https://up.example/token",
            1_000,
        )
        .unwrap();
        let claims: serde_json::Value = keys
            .verify(
                &jwt,
                &JwtExpectations {
                    issuer: "ours",
                    typ: Some("JWT"),
                    now: Some(1_000),
                    audience: Some("https://up.example/token"),
                },
            )
            .unwrap();
        assert_eq!(claims["sub"], "ours");
        assert_eq!(claims["aud"], "https://up.example/token");
        assert_eq!(claims["exp"], 1_060);
        assert!(claims["jti"].as_str().unwrap().len() >= 24);
        let header = jwt.split('.').next().unwrap();
        use base64::Engine;
        let header: serde_json::Value = serde_json::from_slice(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(header)
                .unwrap(),
        )
        .unwrap();
        assert_eq!(header["kid"], kid.as_str());
        assert_eq!(header["alg"], "ES256");
        let other = client_assertion(&keys, KeyAlgorithm::Rs256, "ours", "x", 1_000);
        assert!(other.is_err(), "no RS256 key: refused, not another alg");
    }
}
