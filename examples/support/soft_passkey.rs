//! A passkey for `bench_driver`: a credential of the tests' software authenticator
//! (`src/protocol/passkeys/soft_authenticator.rs`, compiled in by path beside this file)
//! with the name of its account and the origin of the pages it is used from, answering as
//! an honest synced passkey does (user present and verified, backed up, counter 0). The
//! driver registers the passkeys once (`passkey-register`) and signs in with them in later
//! runs from a file, private keys included.

use serde_json::{Value, json};

use super::soft_authenticator::{Authenticator, BE, BS, Credential, UP, UV};

const FLAGS: u8 = UP | UV | BE | BS;

pub struct Passkey {
    pub username: String,
    origin: String,
    credential: Credential,
}

impl Passkey {
    /// `navigator.credentials.create({publicKey: options})` at `origin`: the new passkey
    /// and the credential to post, `toJSON()`'s form.
    pub fn create(username: &str, origin: &str, options: &Value) -> Result<(Self, Value), String> {
        if !options["rp"]["id"].is_string() || !options["user"]["id"].is_string() {
            return Err(format!("not registration options: {options}"));
        }
        let mut authenticator = Authenticator::new(origin);
        let created = authenticator.create(options);
        let credential = authenticator
            .credentials
            .pop()
            .ok_or("no credential made")?;
        let passkey = Self {
            username: username.to_owned(),
            origin: origin.to_owned(),
            credential,
        };
        Ok((passkey, created))
    }

    /// `navigator.credentials.get({publicKey: options})` answered with this passkey (the
    /// one the person picks), then `toJSON()`.
    pub fn get(&self, options: &Value) -> Result<Value, String> {
        let rp_id = &self.credential.rp_id;
        if let Some(asked) = options["rpId"].as_str()
            && asked != rp_id
        {
            return Err(format!("no passkey for RP ID {asked:?} (ours: {rp_id:?})"));
        }
        Ok(self
            .credential
            .assertion(&self.origin, rp_id, FLAGS, options))
    }

    /// The passkey with its private key, for the driver's file of bench passkeys.
    pub fn to_json(&self) -> Value {
        json!({
            "username": self.username,
            "origin": self.origin,
            "credential": self.credential.to_json(),
        })
    }

    pub fn from_json(saved: &Value) -> Result<Self, String> {
        let text = |name: &str| {
            saved[name]
                .as_str()
                .map(str::to_owned)
                .ok_or_else(|| format!("no {name} in a saved passkey"))
        };
        Ok(Self {
            username: text("username")?,
            origin: text("origin")?,
            credential: Credential::from_json(&saved["credential"])
                .ok_or("an unreadable saved credential")?,
        })
    }
}
