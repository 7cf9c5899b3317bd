//! Signing keys: generation, PKCS#8 storage form, JWS compact signing and verification
//! (aws-lc-rs), and the public JWKS.

use std::collections::HashMap;

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::{KeyPair as RsaKeyPair, KeySize};
use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_FIXED, ECDSA_P256_SHA256_FIXED_SIGNING, ED25519, EcdsaKeyPair,
    Ed25519KeyPair, KeyPair, ParsedPublicKey, RSA_PKCS1_2048_8192_SHA256, RSA_PKCS1_SHA256,
    RSA_PSS_2048_8192_SHA256, RSA_PSS_SHA256, RsaPublicKeyComponents, VerificationAlgorithm,
};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::Algorithm;
use serde::de::DeserializeOwned;
use serde_json::json;

pub use crate::domain::KeyAlgorithm;

/// The jsonwebtoken name of `alg`.
fn jwt_algorithm(alg: KeyAlgorithm) -> Algorithm {
    match alg {
        KeyAlgorithm::Rs256 => Algorithm::RS256,
        KeyAlgorithm::Ps256 => Algorithm::PS256,
        KeyAlgorithm::Es256 => Algorithm::ES256,
        KeyAlgorithm::EdDsa => Algorithm::EdDSA,
    }
}

enum Material {
    Rsa(RsaKeyPair),
    Ec(EcdsaKeyPair),
    Ed(Ed25519KeyPair),
}

/// The RFC 7638 thumbprint (SHA-256, base64url) of a public JWK given by its required
/// members (§3.2: `e`, `kty`, `n` for RSA; `crv`, `kty`, `x`, `y` for EC; `crv`, `kty`,
/// `x` for OKP). §3.3: the members sorted by name, as JSON without whitespace; built here
/// rather than left to a serializer's key order.
pub fn jwk_thumbprint(required: &[(&str, &str)]) -> String {
    let mut members = required.to_vec();
    members.sort_by(|a, b| a.0.cmp(b.0));
    let body: Vec<String> = members
        .iter()
        .map(|(name, value)| {
            // serde_json escapes a string as RFC 7159 asks (the values are base64url
            // and names, so nothing needs escaping in practice).
            format!("{}:{}", json!(name), json!(value))
        })
        .collect();
    let canonical = format!("{{{}}}", body.join(","));
    URL_SAFE_NO_PAD.encode(aws_lc_rs::digest::digest(
        &aws_lc_rs::digest::SHA256,
        canonical.as_bytes(),
    ))
}

/// A private signing key with its public JWK. The `kid` is the RFC 7638 thumbprint.
pub struct SigningKey {
    kid: String,
    alg: KeyAlgorithm,
    material: Material,
    public_jwk: serde_json::Value,
    /// The public key, parsed once: parsing an RSA key (its Montgomery constants) costs
    /// as much again as verifying with it, and every userinfo request verifies.
    verifier: ParsedPublicKey,
    /// Published before this instant, used for signing only from it on.
    activates_at: i64,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKey")
            .field("kid", &self.kid)
            .field("alg", &self.alg)
            .finish()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("key generation failed")]
    Generation,
    #[error("stored key is not a valid {0} PKCS#8 key")]
    Rejected(&'static str),
    #[error("signing failed")]
    Signing,
}

impl SigningKey {
    /// Generates a new key; returns it with its PKCS#8 DER, the form we store.
    pub fn generate(alg: KeyAlgorithm) -> Result<(Self, Vec<u8>), KeyError> {
        let der = match alg {
            KeyAlgorithm::Rs256 | KeyAlgorithm::Ps256 => RsaKeyPair::generate(KeySize::Rsa2048)
                .and_then(|k| k.as_der())
                .map(|d| d.as_ref().to_vec())
                .map_err(|_| KeyError::Generation)?,
            KeyAlgorithm::Es256 => {
                EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &SystemRandom::new())
                    .map(|d| d.as_ref().to_vec())
                    .map_err(|_| KeyError::Generation)?
            }
            KeyAlgorithm::EdDsa => Ed25519KeyPair::generate_pkcs8(&SystemRandom::new())
                .map(|d| d.as_ref().to_vec())
                .map_err(|_| KeyError::Generation)?,
        };
        Ok((Self::from_pkcs8(alg, &der)?, der))
    }

    pub fn from_pkcs8(alg: KeyAlgorithm, der: &[u8]) -> Result<Self, KeyError> {
        let (material, members) = match alg {
            KeyAlgorithm::Rs256 | KeyAlgorithm::Ps256 => {
                let key = RsaKeyPair::from_pkcs8(der).map_err(|_| KeyError::Rejected("RSA"))?;
                let public = RsaPublicKeyComponents::<Vec<u8>>::from(key.public_key());
                let members = json!({
                    "e": URL_SAFE_NO_PAD.encode(&public.e),
                    "kty": "RSA",
                    "n": URL_SAFE_NO_PAD.encode(&public.n),
                });
                (Material::Rsa(key), members)
            }
            KeyAlgorithm::Es256 => {
                let key = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, der)
                    .map_err(|_| KeyError::Rejected("P-256"))?;
                // Uncompressed SEC1 point: 0x04 || x || y.
                let point = key.public_key().as_ref();
                if point.len() != 65 {
                    return Err(KeyError::Rejected("P-256"));
                }
                let members = json!({
                    "crv": "P-256",
                    "kty": "EC",
                    "x": URL_SAFE_NO_PAD.encode(&point[1..33]),
                    "y": URL_SAFE_NO_PAD.encode(&point[33..65]),
                });
                (Material::Ec(key), members)
            }
            KeyAlgorithm::EdDsa => {
                let key =
                    Ed25519KeyPair::from_pkcs8(der).map_err(|_| KeyError::Rejected("Ed25519"))?;
                let members = json!({
                    "crv": "Ed25519",
                    "kty": "OKP",
                    "x": URL_SAFE_NO_PAD.encode(key.public_key().as_ref()),
                });
                (Material::Ed(key), members)
            }
        };
        let required: Vec<(&str, &str)> = members
            .as_object()
            .into_iter()
            .flatten()
            .filter_map(|(name, value)| Some((name.as_str(), value.as_str()?)))
            .collect();
        let kid = jwk_thumbprint(&required);
        let (algorithm, public): (&'static dyn VerificationAlgorithm, &[u8]) = match &material {
            Material::Rsa(key) if alg == KeyAlgorithm::Ps256 => {
                (&RSA_PSS_2048_8192_SHA256, key.public_key().as_ref())
            }
            Material::Rsa(key) => (&RSA_PKCS1_2048_8192_SHA256, key.public_key().as_ref()),
            Material::Ec(key) => (&ECDSA_P256_SHA256_FIXED, key.public_key().as_ref()),
            Material::Ed(key) => (&ED25519, key.public_key().as_ref()),
        };
        let verifier = ParsedPublicKey::new(algorithm, public)
            .map_err(|_| KeyError::Rejected(alg.as_str()))?;
        let mut public_jwk = members;
        public_jwk["kid"] = json!(kid);
        public_jwk["alg"] = json!(alg.as_str());
        public_jwk["use"] = json!("sig");
        Ok(Self {
            activates_at: 0,
            kid,
            alg,
            material,
            public_jwk,
            verifier,
        })
    }

    /// The same key, signing only from `at` (Unix seconds) on.
    pub fn activating_at(mut self, at: i64) -> Self {
        self.activates_at = at;
        self
    }

    pub fn kid(&self) -> &str {
        &self.kid
    }

    pub fn alg(&self) -> KeyAlgorithm {
        self.alg
    }

    pub fn public_jwk(&self) -> &serde_json::Value {
        &self.public_jwk
    }

    /// JWS compact serialization (RFC 7515 §7.1) of `payload` with header `typ`.
    pub fn sign_jwt(&self, typ: &str, payload: &serde_json::Value) -> Result<String, KeyError> {
        let header = json!({ "alg": self.alg.as_str(), "kid": self.kid, "typ": typ });
        let mut out = URL_SAFE_NO_PAD.encode(header.to_string());
        out.push('.');
        out.push_str(&URL_SAFE_NO_PAD.encode(payload.to_string()));
        let rng = SystemRandom::new();
        let signature = match &self.material {
            Material::Rsa(key) => {
                let padding = match self.alg {
                    KeyAlgorithm::Ps256 => &RSA_PSS_SHA256,
                    _ => &RSA_PKCS1_SHA256,
                };
                let mut sig = vec![0u8; key.public_modulus_len()];
                key.sign(padding, &rng, out.as_bytes(), &mut sig)
                    .map_err(|_| KeyError::Signing)?;
                sig
            }
            Material::Ed(key) => key.sign(out.as_bytes()).as_ref().to_vec(),
            Material::Ec(key) => key
                .sign(&rng, out.as_bytes())
                .map_err(|_| KeyError::Signing)?
                .as_ref()
                .to_vec(),
        };
        out.push('.');
        out.push_str(&URL_SAFE_NO_PAD.encode(signature));
        Ok(out)
    }
}

/// The stored form of a private key: its PKCS#8 DER sealed under the key-encryption key
/// (bound to its `kid`), so a database dump alone signs nothing.
pub fn seal_private_key(
    kek: &super::kek::KeyEncryptionKey,
    kid: &str,
    der: &[u8],
) -> Result<Vec<u8>, super::kek::KekError> {
    Ok(kek.encrypt(der, kid)?.into_bytes())
}

/// Whether a stored key is still in the clear (written before keys were sealed).
pub fn is_sealed(stored: &[u8]) -> bool {
    stored.starts_with(b"v1.")
}

/// The PKCS#8 DER of a stored key: opened with the key-encryption key, or as it is for a
/// key stored before sealing (which the key ring then seals).
pub fn open_private_key(
    kek: &super::kek::KeyEncryptionKey,
    kid: &str,
    stored: &[u8],
) -> Result<Vec<u8>, super::kek::KekError> {
    if !is_sealed(stored) {
        return Ok(stored.to_vec());
    }
    let text = std::str::from_utf8(stored).map_err(|_| super::kek::KekError::Decrypt)?;
    kek.decrypt(text, kid)
}

/// What a JWT we issued must satisfy to be accepted back.
pub struct JwtExpectations<'a> {
    pub issuer: &'a str,
    /// `typ` header, e.g. `at+jwt` for RFC 9068 access tokens (the `application/` prefix
    /// is optional, RFC 7515 §4.1.9).
    pub typ: Option<&'a str>,
    /// The current time, to check `exp` and `nbf` against; `None` accepts an expired token
    /// (an `id_token_hint` may be expired, OIDC Core §3.1.2.1). Time comes from the caller,
    /// never from the system clock, so lifetimes follow the injected clock.
    pub now: Option<i64>,
    /// A value `aud` must be or contain (RFC 9068 §4: the resource checks it is the audience).
    pub audience: Option<&'a str>,
}

/// Whether a `typ` header names `expected`, with or without the `application/` prefix.
pub fn typ_matches(typ: &str, expected: &str) -> bool {
    let bare = |t: &str| {
        let t = t.trim();
        match t.get(..12) {
            Some(prefix) if prefix.eq_ignore_ascii_case("application/") => t[12..].to_owned(),
            _ => t.to_owned(),
        }
    };
    bare(typ).eq_ignore_ascii_case(&bare(expected))
}

/// Whether an `aud` claim (a string or an array of strings) contains `wanted`.
pub fn audience_contains(aud: &serde_json::Value, wanted: &str) -> bool {
    match aud {
        serde_json::Value::String(a) => a == wanted,
        serde_json::Value::Array(items) => items.iter().any(|a| a.as_str() == Some(wanted)),
        _ => false,
    }
}

#[derive(Debug, thiserror::Error)]
pub enum JwtError {
    #[error("malformed token")]
    Malformed,
    #[error("unknown key")]
    UnknownKey,
    #[error("wrong token type")]
    WrongType,
    #[error("invalid token: {0}")]
    Invalid(String),
}

/// Every key we publish; the newest of each algorithm signs.
pub struct KeySet {
    keys: Vec<SigningKey>,
    by_kid: HashMap<String, usize>,
    jwks_json: String,
}

impl KeySet {
    /// `keys` ordered oldest first.
    pub fn new(keys: Vec<SigningKey>) -> Self {
        let by_kid = keys
            .iter()
            .enumerate()
            .map(|(i, k)| (k.kid.clone(), i))
            .collect();
        let jwks =
            json!({ "keys": keys.iter().rev().map(|k| k.public_jwk.clone()).collect::<Vec<_>>() });
        Self {
            keys,
            by_kid,
            jwks_json: jwks.to_string(),
        }
    }

    /// The JWKS document (RFC 7517 §5), serialized once.
    pub fn jwks_json(&self) -> &str {
        &self.jwks_json
    }

    /// The newest key of `alg` that is active at `now`.
    pub fn signing_key(&self, alg: KeyAlgorithm, now: i64) -> Option<&SigningKey> {
        self.keys
            .iter()
            .rev()
            .find(|k| k.alg == alg && k.activates_at <= now)
    }

    pub fn algorithms(&self) -> Vec<KeyAlgorithm> {
        let mut algs: Vec<KeyAlgorithm> = Vec::new();
        for key in &self.keys {
            if !algs.contains(&key.alg) {
                algs.push(key.alg);
            }
        }
        algs
    }

    /// Verifies a JWT we signed: known `kid`, matching `alg` (so `none` and algorithm
    /// confusion are refused), signature, issuer, and expiry when asked.
    pub fn verify<T: DeserializeOwned>(
        &self,
        token: &str,
        expect: &JwtExpectations<'_>,
    ) -> Result<T, JwtError> {
        let claims = self.verify_signature(token, expect.typ)?;
        if claims["iss"].as_str() != Some(expect.issuer) {
            return Err(JwtError::Invalid("wrong issuer".into()));
        }
        if claims.get("sub").is_none() || claims.get("exp").is_none() {
            return Err(JwtError::Invalid("sub or exp is missing".into()));
        }
        if let Some(now) = expect.now {
            check_times(&claims, now)?;
        }
        if let Some(audience) = expect.audience
            && !audience_contains(&claims["aud"], audience)
        {
            return Err(JwtError::Invalid("wrong audience".into()));
        }
        serde_json::from_value(claims).map_err(|e| JwtError::Invalid(e.to_string()))
    }

    /// The payload of a JWT we signed, its claims not looked at: known `kid`, matching
    /// `alg`, the `typ` header when one is expected, and the signature. The claims are the
    /// caller's (`verify` above, or `protocol::jwt` for a token of ours that comes back
    /// from outside, such as an `id_token_hint`).
    pub fn verify_signature(
        &self,
        token: &str,
        typ: Option<&str>,
    ) -> Result<serde_json::Value, JwtError> {
        let header = jsonwebtoken::decode_header(token).map_err(|_| JwtError::Malformed)?;
        let kid = header.kid.as_deref().ok_or(JwtError::UnknownKey)?;
        let key = self
            .by_kid
            .get(kid)
            .map(|i| &self.keys[*i])
            .ok_or(JwtError::UnknownKey)?;
        if header.alg != jwt_algorithm(key.alg) {
            return Err(JwtError::UnknownKey);
        }
        if let Some(typ) = typ
            && !header.typ.as_deref().is_some_and(|t| typ_matches(t, typ))
        {
            return Err(JwtError::WrongType);
        }
        // JWS compact form (RFC 7515 §7.1): the signature covers "header.payload".
        let (signing_input, signature) = token.rsplit_once('.').ok_or(JwtError::Malformed)?;
        let (_, payload) = signing_input.split_once('.').ok_or(JwtError::Malformed)?;
        let signature = URL_SAFE_NO_PAD
            .decode(signature)
            .map_err(|_| JwtError::Malformed)?;
        key.verifier
            .verify_sig(signing_input.as_bytes(), &signature)
            .map_err(|_| JwtError::Invalid("bad signature".into()))?;
        let payload = URL_SAFE_NO_PAD
            .decode(payload)
            .map_err(|_| JwtError::Malformed)?;
        serde_json::from_slice(&payload).map_err(|_| JwtError::Malformed)
    }
}

/// `exp` must be in the future and `nbf`, when present, not (RFC 7519 §4.1.4, §4.1.5).
pub fn check_times(claims: &serde_json::Value, now: i64) -> Result<(), JwtError> {
    let exp = claims["exp"]
        .as_i64()
        .ok_or_else(|| JwtError::Invalid("exp is missing".into()))?;
    if exp <= now {
        return Err(JwtError::Invalid("expired".into()));
    }
    if let Some(nbf) = claims.get("nbf")
        && nbf.as_i64().is_none_or(|nbf| nbf > now)
    {
        return Err(JwtError::Invalid("not yet valid".into()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 7638 §3.1: the example RSA key and its thumbprint, members given out of order.
    #[test]
    fn thumbprints_match_the_rfc_7638_example() {
        let n = "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw";
        assert_eq!(
            jwk_thumbprint(&[("n", n), ("kty", "RSA"), ("e", "AQAB")]),
            "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"
        );
    }

    #[test]
    fn a_keys_kid_is_the_thumbprint_of_its_published_members() {
        for alg in [
            KeyAlgorithm::Rs256,
            KeyAlgorithm::Ps256,
            KeyAlgorithm::Es256,
            KeyAlgorithm::EdDsa,
        ] {
            let (key, _) = SigningKey::generate(alg).unwrap();
            let jwk = key.public_jwk();
            let names: &[&str] = match alg {
                KeyAlgorithm::Rs256 | KeyAlgorithm::Ps256 => &["e", "kty", "n"],
                KeyAlgorithm::Es256 => &["crv", "kty", "x", "y"],
                KeyAlgorithm::EdDsa => &["crv", "kty", "x"],
            };
            let members: Vec<(&str, &str)> = names
                .iter()
                .map(|n| (*n, jwk[*n].as_str().unwrap()))
                .collect();
            assert_eq!(key.kid(), jwk_thumbprint(&members), "{alg:?}");
        }
    }

    const ALL: [KeyAlgorithm; 4] = [
        KeyAlgorithm::Rs256,
        KeyAlgorithm::Ps256,
        KeyAlgorithm::Es256,
        KeyAlgorithm::EdDsa,
    ];

    fn keyset() -> KeySet {
        KeySet::new(
            ALL.iter()
                .map(|alg| SigningKey::generate(*alg).unwrap().0)
                .collect(),
        )
    }

    /// A token over `claims`, signed by `keys`' key of `alg`.
    fn signed(keys: &KeySet, alg: KeyAlgorithm, claims: &serde_json::Value) -> String {
        keys.signing_key(alg, 0)
            .unwrap()
            .sign_jwt("JWT", claims)
            .unwrap()
    }

    fn expect(issuer: &str) -> JwtExpectations<'_> {
        JwtExpectations {
            issuer,
            typ: Some("JWT"),
            now: Some(1_000_000),
            audience: None,
        }
    }

    #[test]
    fn tokens_signed_by_either_key_verify_and_round_trip_through_pkcs8() {
        let keys = keyset();
        let claims = json!({"iss": "https://op", "sub": "u1", "exp": 4_000_000_000u64});
        for alg in ALL {
            let token = signed(&keys, alg, &claims);
            let back: serde_json::Value = keys.verify(&token, &expect("https://op")).unwrap();
            assert_eq!(back["sub"], "u1");
        }
        let (_, der) = SigningKey::generate(KeyAlgorithm::Es256).unwrap();
        let a = SigningKey::from_pkcs8(KeyAlgorithm::Es256, &der).unwrap();
        let b = SigningKey::from_pkcs8(KeyAlgorithm::Es256, &der).unwrap();
        assert_eq!(a.kid(), b.kid());
    }

    #[test]
    fn tampered_foreign_issuer_and_alg_none_tokens_are_rejected() {
        let keys = keyset();
        let claims = json!({"iss": "https://op", "sub": "u1", "exp": 4_000_000_000u64});
        let token = signed(&keys, KeyAlgorithm::Rs256, &claims);
        let mut parts: Vec<&str> = token.split('.').collect();
        let forged = URL_SAFE_NO_PAD.encode(
            json!({"iss": "https://op", "sub": "admin", "exp": 4_000_000_000u64}).to_string(),
        );
        parts[1] = &forged;
        assert!(
            keys.verify::<serde_json::Value>(&parts.join("."), &expect("https://op"))
                .is_err()
        );
        assert!(
            keys.verify::<serde_json::Value>(&token, &expect("https://other"))
                .is_err()
        );
        let header = URL_SAFE_NO_PAD.encode(r#"{"alg":"none","typ":"JWT"}"#);
        let none = format!("{header}.{}.", token.split('.').nth(1).unwrap());
        assert!(
            keys.verify::<serde_json::Value>(&none, &expect("https://op"))
                .is_err()
        );
    }

    #[test]
    fn a_flipped_signature_bit_or_a_stray_segment_is_refused_for_every_algorithm() {
        let keys = keyset();
        let claims = json!({"iss": "https://op", "sub": "u1", "exp": 4_000_000_000u64});
        for alg in ALL {
            let token = signed(&keys, alg, &claims);
            let (input, signature) = token.rsplit_once('.').unwrap();
            let mut bytes = URL_SAFE_NO_PAD.decode(signature).unwrap();
            bytes[0] ^= 1;
            let flipped = format!("{input}.{}", URL_SAFE_NO_PAD.encode(&bytes));
            let refused = |t: &str| keys.verify::<serde_json::Value>(t, &expect("https://op"));
            assert!(
                matches!(refused(&flipped), Err(JwtError::Invalid(_))),
                "{alg:?}"
            );
            assert!(
                matches!(refused(&format!("{token}.x")), Err(JwtError::Malformed)),
                "{alg:?}"
            );
            assert!(matches!(
                refused(&format!("{input}.!")),
                Err(JwtError::Malformed)
            ));
            assert!(refused(&token).is_ok());
        }
    }

    #[test]
    fn a_token_without_sub_or_exp_is_refused_even_when_expiry_is_not_checked() {
        let keys = keyset();
        let lenient = JwtExpectations {
            now: None,
            ..expect("https://op")
        };
        for claims in [
            json!({"iss": "https://op", "exp": 4_000_000_000u64}),
            json!({"iss": "https://op", "sub": "u1"}),
            json!({"sub": "u1", "exp": 4_000_000_000u64}),
        ] {
            let token = signed(&keys, KeyAlgorithm::Es256, &claims);
            assert!(
                matches!(
                    keys.verify::<serde_json::Value>(&token, &lenient),
                    Err(JwtError::Invalid(_))
                ),
                "{claims}"
            );
        }
    }

    #[test]
    fn expired_tokens_are_rejected_unless_expiry_is_not_checked() {
        let keys = keyset();
        let claims = json!({"iss": "https://op", "sub": "u1", "exp": 1000});
        let not_before =
            json!({"iss": "https://op", "sub": "u1", "exp": 4_000_000_000u64, "nbf": 2_000_000});
        let token = signed(&keys, KeyAlgorithm::Es256, &claims);
        assert!(
            keys.verify::<serde_json::Value>(&token, &expect("https://op"))
                .is_err()
        );
        let lenient = JwtExpectations {
            now: None,
            ..expect("https://op")
        };
        assert!(keys.verify::<serde_json::Value>(&token, &lenient).is_ok());
        let early = signed(&keys, KeyAlgorithm::Es256, &not_before);
        assert!(
            keys.verify::<serde_json::Value>(&early, &expect("https://op"))
                .is_err()
        );
    }

    #[test]
    fn typ_may_carry_the_application_prefix_and_audience_may_be_a_list() {
        assert!(typ_matches("application/at+jwt", "at+jwt"));
        assert!(typ_matches("AT+JWT", "at+jwt"));
        assert!(!typ_matches("JWT", "at+jwt"));
        assert!(
            !typ_matches("aaaaaaaaaaaé", "at+jwt"),
            "no panic inside a character"
        );
        assert!(!typ_matches("", "at+jwt"));
        assert!(audience_contains(&json!(["a", "b"]), "b"));
        assert!(audience_contains(&json!("a"), "a"));
        assert!(!audience_contains(&json!(["a"]), "b"));
        assert!(!audience_contains(&json!(null), "a"));
    }

    #[test]
    fn a_published_key_signs_only_once_it_is_active() {
        let (old, _) = SigningKey::generate(KeyAlgorithm::Es256).unwrap();
        let (new, _) = SigningKey::generate(KeyAlgorithm::Es256).unwrap();
        let (old_kid, new_kid) = (old.kid().to_owned(), new.kid().to_owned());
        let keys = KeySet::new(vec![old, new.activating_at(100)]);
        assert_eq!(
            keys.signing_key(KeyAlgorithm::Es256, 99).unwrap().kid(),
            old_kid
        );
        assert_eq!(
            keys.signing_key(KeyAlgorithm::Es256, 100).unwrap().kid(),
            new_kid
        );
        assert!(keys.jwks_json().contains(&new_kid) && keys.jwks_json().contains(&old_kid));
    }

    #[test]
    fn jwks_publishes_only_public_members_with_kid_alg_and_use() {
        let keys = keyset();
        let jwks: serde_json::Value = serde_json::from_str(keys.jwks_json()).unwrap();
        for jwk in jwks["keys"].as_array().unwrap() {
            assert!(jwk["kid"].is_string() && jwk["alg"].is_string());
            assert_eq!(jwk["use"], "sig");
            assert!(jwk.get("d").is_none() && jwk.get("p").is_none());
        }
    }
}
