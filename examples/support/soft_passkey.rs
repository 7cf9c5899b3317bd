//! A software passkey for `bench_driver`: discoverable ES256 credentials answering our
//! WebAuthn options as a browser and a platform authenticator would (WebAuthn L3 §5.1.3 and
//! §5.1.4: client data, authenticator data with user present and verified, "none"
//! attestation), in the `PublicKeyCredential.toJSON()` form `static/passkey.js` posts.
//!
//! Adapted from the unit tests' authenticator (`src/protocol/passkeys/soft_authenticator.rs`,
//! compiled only for tests so that the server binary never carries one), without its knobs
//! for faulty clients, and with its private keys exportable: the driver registers the
//! passkeys once (`passkey-register`) and signs in with them in later runs from a file.

use aws_lc_rs::digest::{SHA256, digest};
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{ECDSA_P256_SHA256_ASN1_SIGNING, EcdsaKeyPair, KeyPair};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};

/// authenticatorData flags (WebAuthn L3 §6.1): user present, user verified, backup
/// eligible, backed up (a synced passkey), attested credential data included.
const UP: u8 = 0x01;
const UV: u8 = 0x04;
const BE: u8 = 0x08;
const BS: u8 = 0x10;
const AT: u8 = 0x40;
const FLAGS: u8 = UP | UV | BE | BS;

/// One discoverable credential (a "public key credential source", WebAuthn L3 §4) and the
/// origin of the pages it is used from. Synced passkeys keep no signature counter: 0.
pub struct Passkey {
    pub username: String,
    origin: String,
    id: Vec<u8>,
    rp_id: String,
    user_handle: Vec<u8>,
    pkcs8: Vec<u8>,
    key: EcdsaKeyPair,
}

impl Passkey {
    /// `navigator.credentials.create({publicKey: options})` at `origin`: the new passkey
    /// and the credential to post, `toJSON()`'s form.
    pub fn create(username: &str, origin: &str, options: &Value) -> Result<(Self, Value), String> {
        let rp_id = text(&options["rp"]["id"], "rp.id")?.to_owned();
        let user_handle = b64(text(&options["user"]["id"], "user.id")?)?;
        let pkcs8 =
            EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &SystemRandom::new())
                .map_err(|_| "no P-256 key")?
                .as_ref()
                .to_vec();
        let key = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &pkcs8)
            .map_err(|_| "an unreadable P-256 key")?;
        let id = digest(&SHA256, key.public_key().as_ref()).as_ref().to_vec();
        let client_data = client_data("webauthn.create", origin, options);

        // The uncompressed point 0x04 || x || y as a COSE_Key (RFC 9053 §7.1.1).
        let point = key.public_key().as_ref();
        let cose_key = cbor_map(&[
            (cbor_int(1), cbor_int(2)),  // kty: EC2
            (cbor_int(3), cbor_int(-7)), // alg: ES256
            (cbor_int(-1), cbor_int(1)), // crv: P-256
            (cbor_int(-2), cbor_bytes(&point[1..33])),
            (cbor_int(-3), cbor_bytes(&point[33..65])),
        ]);
        let mut auth_data = auth_data(&rp_id, FLAGS | AT);
        auth_data.extend_from_slice(&[0; 16]); // AAGUID: none
        auth_data.extend_from_slice(&(id.len() as u16).to_be_bytes());
        auth_data.extend_from_slice(&id);
        auth_data.extend_from_slice(&cose_key);
        let attestation_object = cbor_map(&[
            (cbor_text("fmt"), cbor_text("none")),
            (cbor_text("attStmt"), cbor_map(&[])),
            (cbor_text("authData"), cbor_bytes(&auth_data)),
        ]);
        let credential = json!({
            "id": URL_SAFE_NO_PAD.encode(&id),
            "rawId": URL_SAFE_NO_PAD.encode(&id),
            "type": "public-key",
            "authenticatorAttachment": "platform",
            "clientExtensionResults": { "credProps": { "rk": true } },
            "response": {
                "clientDataJSON": URL_SAFE_NO_PAD.encode(client_data),
                "attestationObject": URL_SAFE_NO_PAD.encode(attestation_object),
                "transports": ["internal", "hybrid"],
            },
        });
        let passkey = Self {
            username: username.to_owned(),
            origin: origin.to_owned(),
            id,
            rp_id,
            user_handle,
            pkcs8,
            key,
        };
        Ok((passkey, credential))
    }

    /// `navigator.credentials.get({publicKey: options})` answered with this passkey (the
    /// one the person picks), then `toJSON()`.
    pub fn get(&self, options: &Value) -> Result<Value, String> {
        if let Some(asked) = options["rpId"].as_str()
            && asked != self.rp_id
        {
            return Err(format!(
                "no passkey for RP ID {asked:?} (ours: {:?})",
                self.rp_id
            ));
        }
        let client_data = client_data("webauthn.get", &self.origin, options);
        let auth_data = auth_data(&self.rp_id, FLAGS);
        // The signature covers authenticatorData || SHA-256(clientDataJSON) (§6.3.3).
        let mut signed = auth_data.clone();
        signed.extend_from_slice(digest(&SHA256, &client_data).as_ref());
        let signature = self
            .key
            .sign(&SystemRandom::new(), &signed)
            .map_err(|_| "ES256 signing failed")?;
        Ok(json!({
            "id": URL_SAFE_NO_PAD.encode(&self.id),
            "rawId": URL_SAFE_NO_PAD.encode(&self.id),
            "type": "public-key",
            "authenticatorAttachment": "platform",
            "clientExtensionResults": {},
            "response": {
                "clientDataJSON": URL_SAFE_NO_PAD.encode(&client_data),
                "authenticatorData": URL_SAFE_NO_PAD.encode(auth_data),
                "signature": URL_SAFE_NO_PAD.encode(signature.as_ref()),
                "userHandle": URL_SAFE_NO_PAD.encode(&self.user_handle),
            },
        }))
    }

    /// The passkey with its private key, for the driver's file of bench passkeys.
    pub fn to_json(&self) -> Value {
        json!({
            "username": self.username,
            "origin": self.origin,
            "id": URL_SAFE_NO_PAD.encode(&self.id),
            "rp_id": self.rp_id,
            "user_handle": URL_SAFE_NO_PAD.encode(&self.user_handle),
            "pkcs8": URL_SAFE_NO_PAD.encode(&self.pkcs8),
        })
    }

    pub fn from_json(saved: &Value) -> Result<Self, String> {
        let pkcs8 = b64(text(&saved["pkcs8"], "pkcs8")?)?;
        let key = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &pkcs8)
            .map_err(|_| "an unreadable P-256 key")?;
        Ok(Self {
            username: text(&saved["username"], "username")?.to_owned(),
            origin: text(&saved["origin"], "origin")?.to_owned(),
            id: b64(text(&saved["id"], "id")?)?,
            rp_id: text(&saved["rp_id"], "rp_id")?.to_owned(),
            user_handle: b64(text(&saved["user_handle"], "user_handle")?)?,
            pkcs8,
            key,
        })
    }
}

/// The client data a browser at `origin` hashes into the signature (§5.8.1): the challenge
/// as the options carried it (base64url), never cross-origin.
fn client_data(kind: &str, origin: &str, options: &Value) -> Vec<u8> {
    json!({
        "type": kind,
        "challenge": options["challenge"],
        "origin": origin,
        "crossOrigin": false,
    })
    .to_string()
    .into_bytes()
}

/// rpIdHash || flags || signCount (§6.1), the counter 0.
fn auth_data(rp_id: &str, flags: u8) -> Vec<u8> {
    let mut data = digest(&SHA256, rp_id.as_bytes()).as_ref().to_vec();
    data.push(flags);
    data.extend_from_slice(&0u32.to_be_bytes());
    data
}

fn text<'a>(value: &'a Value, name: &str) -> Result<&'a str, String> {
    value
        .as_str()
        .ok_or_else(|| format!("no {name} in {value}"))
}

fn b64(text: &str) -> Result<Vec<u8>, String> {
    URL_SAFE_NO_PAD
        .decode(text.trim_end_matches('='))
        .map_err(|e| format!("not base64url: {e}"))
}

// The few CBOR (RFC 8949) items an attestation object needs.

fn cbor_head(major: u8, length: u64) -> Vec<u8> {
    let major = major << 5;
    match length {
        0..=23 => vec![major | length as u8],
        24..=0xff => vec![major | 24, length as u8],
        0x100..=0xffff => {
            let mut head = vec![major | 25];
            head.extend_from_slice(&(length as u16).to_be_bytes());
            head
        }
        _ => {
            let mut head = vec![major | 26];
            head.extend_from_slice(&(length as u32).to_be_bytes());
            head
        }
    }
}

fn cbor_int(value: i64) -> Vec<u8> {
    if value >= 0 {
        cbor_head(0, value as u64)
    } else {
        cbor_head(1, (-1 - value) as u64)
    }
}

fn cbor_bytes(bytes: &[u8]) -> Vec<u8> {
    let mut item = cbor_head(2, bytes.len() as u64);
    item.extend_from_slice(bytes);
    item
}

fn cbor_text(text: &str) -> Vec<u8> {
    let mut item = cbor_head(3, text.len() as u64);
    item.extend_from_slice(text.as_bytes());
    item
}

fn cbor_map(entries: &[(Vec<u8>, Vec<u8>)]) -> Vec<u8> {
    let mut item = cbor_head(5, entries.len() as u64);
    for (key, value) in entries {
        item.extend_from_slice(key);
        item.extend_from_slice(value);
    }
    item
}
