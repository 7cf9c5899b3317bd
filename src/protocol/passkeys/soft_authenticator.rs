//! A software passkey for the tests and the bench driver: a CTAP2-style authenticator
//! holding discoverable ES256 credentials, answering the options our ceremonies send as a
//! browser would (WebAuthn L3 §5.1.3 and §5.1.4: client data, authenticator data, "none"
//! attestation). Compiled into the unit tests only (so the server never carries one), and
//! by path into `tests/api` and `examples/bench_driver.rs`; a credential can be saved with
//! its private key ([`Credential::to_json`]) for the driver's later runs.
//!
//! webauthn-rs's own test authenticators (webauthn-authenticator-rs `SoftPasskey` and
//! `SoftToken`) make neither resident keys nor user handles, so they cannot answer a
//! username-less sign-in; this one does, and lets a test bend what a faulty or hostile
//! client would (flags, counter, origin, RP ID, user handle).

use aws_lc_rs::digest::{SHA256, digest};
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{ECDSA_P256_SHA256_ASN1_SIGNING, EcdsaKeyPair, KeyPair};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};

/// authenticatorData flags (WebAuthn L3 §6.1).
pub const UP: u8 = 0x01;
pub const UV: u8 = 0x04;
pub const BE: u8 = 0x08;
pub const BS: u8 = 0x10;
const AT: u8 = 0x40;

/// One discoverable credential (a "public key credential source", §4).
pub struct Credential {
    pub id: Vec<u8>,
    pub rp_id: String,
    pub user_handle: Vec<u8>,
    /// The private key as generated (PKCS#8), to save it; `key` is made from it.
    pkcs8: Vec<u8>,
    key: EcdsaKeyPair,
    pub counter: u32,
}

impl Credential {
    /// The credential with its private key and counter, to be read back by [`from_json`].
    ///
    /// [`from_json`]: Credential::from_json
    pub fn to_json(&self) -> Value {
        json!({
            "id": URL_SAFE_NO_PAD.encode(&self.id),
            "rp_id": self.rp_id,
            "user_handle": URL_SAFE_NO_PAD.encode(&self.user_handle),
            "pkcs8": URL_SAFE_NO_PAD.encode(&self.pkcs8),
            "counter": self.counter,
        })
    }

    /// A credential [`to_json`] saved; `None` if `saved` is not one.
    ///
    /// [`to_json`]: Credential::to_json
    pub fn from_json(saved: &Value) -> Option<Self> {
        let bytes = |name: &str| URL_SAFE_NO_PAD.decode(saved[name].as_str()?).ok();
        let pkcs8 = bytes("pkcs8")?;
        let key = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &pkcs8).ok()?;
        Some(Self {
            id: bytes("id")?,
            rp_id: saved["rp_id"].as_str()?.to_owned(),
            user_handle: bytes("user_handle")?,
            pkcs8,
            key,
            counter: u32::try_from(saved["counter"].as_u64()?).ok()?,
        })
    }

    /// The answer to `get()` (`toJSON()`'s form) of a client at `origin`, signed for
    /// `rp_id` with `flags` and the credential's counter as it is.
    pub fn assertion(&self, origin: &str, rp_id: &str, flags: u8, options: &Value) -> Value {
        let client_data = client_data("webauthn.get", origin, options);
        let auth_data = auth_data(rp_id, flags, self.counter);
        // The signature covers authenticatorData || SHA-256(clientDataJSON) (§6.3.3).
        let mut signed = auth_data.clone();
        signed.extend_from_slice(digest(&SHA256, &client_data).as_ref());
        let signature = self.key.sign(&SystemRandom::new(), &signed).unwrap();
        json!({
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
        })
    }
}

/// What the client and authenticator put in the next answer. The defaults are those of
/// an honest synced passkey at `origin`: user present and verified, backup eligible and
/// backed up, signature counter 0.
pub struct Authenticator {
    pub origin: String,
    pub flags: u8,
    /// Added to the counter before each assertion (0 for synced passkeys).
    pub counter_step: u32,
    /// Signs for this RP ID instead of the one asked for (a phishing site's).
    pub rp_id: Option<String>,
    pub credentials: Vec<Credential>,
}

impl Authenticator {
    pub fn new(origin: &str) -> Self {
        Self {
            origin: origin.to_owned(),
            flags: UP | UV | BE | BS,
            counter_step: 0,
            rp_id: None,
            credentials: Vec::new(),
        }
    }

    /// `navigator.credentials.create({publicKey: options})`, then `toJSON()`.
    pub fn create(&mut self, options: &Value) -> Value {
        let rp_id = options["rp"]["id"].as_str().unwrap().to_owned();
        let user_handle = b64(options["user"]["id"].as_str().unwrap());
        let pkcs8 =
            EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &SystemRandom::new())
                .unwrap()
                .as_ref()
                .to_vec();
        let key = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &pkcs8).unwrap();
        let id = digest(&SHA256, key.public_key().as_ref()).as_ref().to_vec();
        let client_data = client_data("webauthn.create", &self.origin, options);

        let point = key.public_key().as_ref();
        let cose_key = cbor_map(&[
            (cbor_int(1), cbor_int(2)),  // kty: EC2
            (cbor_int(3), cbor_int(-7)), // alg: ES256
            (cbor_int(-1), cbor_int(1)), // crv: P-256
            (cbor_int(-2), cbor_bytes(&point[1..33])),
            (cbor_int(-3), cbor_bytes(&point[33..65])),
        ]);
        let signed_rp_id = self.rp_id.as_deref().unwrap_or(&rp_id);
        let mut auth_data = auth_data(signed_rp_id, self.flags | AT, 0);
        auth_data.extend_from_slice(&[0; 16]); // AAGUID
        auth_data.extend_from_slice(&(id.len() as u16).to_be_bytes());
        auth_data.extend_from_slice(&id);
        auth_data.extend_from_slice(&cose_key);
        let attestation_object = cbor_map(&[
            (cbor_text("fmt"), cbor_text("none")),
            (cbor_text("attStmt"), cbor_map(&[])),
            (cbor_text("authData"), cbor_bytes(&auth_data)),
        ]);

        self.credentials.push(Credential {
            id: id.clone(),
            rp_id,
            user_handle,
            pkcs8,
            key,
            counter: 0,
        });
        json!({
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
        })
    }

    /// `navigator.credentials.get({publicKey: options})` with credential `index` (the one
    /// a person picks), then `toJSON()`.
    pub fn get(&mut self, options: &Value, index: usize) -> Value {
        let credential = &mut self.credentials[index];
        credential.counter += self.counter_step;
        let rp_id = self.rp_id.as_deref().unwrap_or(&credential.rp_id);
        credential.assertion(&self.origin, rp_id, self.flags, options)
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

/// rpIdHash || flags || signCount (§6.1).
fn auth_data(rp_id: &str, flags: u8, counter: u32) -> Vec<u8> {
    let mut data = digest(&SHA256, rp_id.as_bytes()).as_ref().to_vec();
    data.push(flags);
    data.extend_from_slice(&counter.to_be_bytes());
    data
}

fn b64(text: &str) -> Vec<u8> {
    URL_SAFE_NO_PAD.decode(text).unwrap()
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
