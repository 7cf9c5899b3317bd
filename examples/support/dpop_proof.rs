//! DPoP proofs (RFC 9449 §4) for the bench driver: one ES256 key per run, a fresh proof
//! (new `jti`, `iat` now) for every request, `ath` at resources (§4.3).

use aws_lc_rs::digest;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};

pub struct ProofKey {
    key: EcdsaKeyPair,
    /// The protected header, base64url, the same for every proof of the run.
    header: String,
    rng: SystemRandom,
}

fn b64(bytes: impl AsRef<[u8]>) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

impl ProofKey {
    /// A new P-256 key: generated once per run.
    pub fn generate() -> Self {
        let key = EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING).expect("a P-256 key");
        let point = key.public_key().as_ref();
        let jwk =
            json!({"kty": "EC", "crv": "P-256", "x": b64(&point[1..33]), "y": b64(&point[33..65])});
        let header = b64(json!({"typ": "dpop+jwt", "alg": "ES256", "jwk": jwk}).to_string());
        Self {
            key,
            header,
            rng: SystemRandom::new(),
        }
    }

    /// A proof for `htm` `htu` now; `access_token` at a resource (`ath`).
    pub fn proof(&self, htm: &str, htu: &str, access_token: Option<&str>) -> String {
        let iat = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let mut claims = json!({
            "htm": htm,
            "htu": htu,
            "iat": iat,
            "jti": portcullis::crypto::tokens::random_token(16),
        });
        if let Some(token) = access_token {
            claims["ath"] = Value::from(b64(digest::digest(&digest::SHA256, token.as_bytes())));
        }
        let input = format!("{}.{}", self.header, b64(claims.to_string()));
        let signature = self
            .key
            .sign(&self.rng, input.as_bytes())
            .expect("a signature");
        format!("{input}.{}", b64(signature))
    }
}
