//! Passkeys: WebAuthn Level 3 registration (§7.1) and authentication (§7.2) ceremonies,
//! as the first factor (discoverable credentials, no username: conditional mediation or a
//! button) and as a second factor after a password.
//!
//! `webauthn-rs` verifies what WebAuthn asks of a Relying Party: the client data's type,
//! the challenge, the exact origin (no subdomains, no other port), `crossOrigin`, the RP ID
//! hash, the UP and UV flags, the attestation ("none" requested, any verified), the
//! algorithm, the signature and the signature counter. A counter of 0 on both sides is legal
//! (synced passkeys keep none); a counter that goes backwards is refused as a possible clone
//! (§7.2 step 22). The backup flags are read and recorded: BS may change (it is stored
//! again), BS without BE is refused (§7.2 step 18), and flag bits WebAuthn reserves are
//! ignored. User verification is required in every ceremony and recorded.
//!
//! What is left to us, and done here: binding a ceremony to its user and its lifetime, the
//! user handle (§7.2 step 6: it must name the credential's owner), refusing a credential we
//! asked to exclude, and words a person understands for each failure.
//!
//! A ceremony ([`RegistrationCeremony`], [`SignInCeremony`], [`SecondFactorCeremony`]) is
//! kept on the server between the options and the answer, never in the browser: one sent
//! back to us could be replayed with its old challenge. The caller stores it in the session
//! store under a key derived from the browser's session or interaction handle (so it is
//! bound to that browser), for [`CEREMONY_TTL`], and *takes* it (read and delete at once)
//! when the answer comes: a ceremony is answered once, right or wrong.

mod settings;
#[cfg(test)]
#[allow(dead_code)] // what only the bench driver uses (saving credentials)
pub(crate) mod soft_authenticator;
pub mod stored;

#[cfg(test)]
mod tests;

pub use settings::{ORIGINS_KEY, PasskeySettings, RP_ID_KEY};

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use webauthn_rs::prelude::{
    AuthenticationResult, Credential, DiscoverableAuthentication, Passkey, PasskeyAuthentication,
    PasskeyRegistration, PublicKeyCredential, RegisterPublicKeyCredential, Uuid, Webauthn,
    WebauthnBuilder, WebauthnError,
};
use webauthn_rs_proto::ResidentKeyRequirement;

use crate::domain::UnixTime;

/// How long a ceremony waits for its answer: the authenticator timeout the browser is
/// told (WebAuthn L3 §5.4.1 recommends 300 s) and the lifetime of the ceremony's state.
pub const CEREMONY_TTL: Duration = Duration::from_secs(300);

/// What may go wrong with a passkey, in words a person can be shown.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PasskeyError {
    /// The answer is not a WebAuthn credential we can read (bad JSON, base64, CBOR,
    /// client data, or a credential type other than `public-key`).
    #[error("The browser's answer could not be read. Please try again.")]
    Malformed,
    /// The ceremony's time ran out (or it was already answered: it is gone).
    #[error("The passkey request has expired. Please try again.")]
    Expired,
    /// The answer is for another challenge, or the ceremony was started for another
    /// account than the one signed in now.
    #[error("This answer belongs to another passkey request. Please try again.")]
    ChallengeMismatch,
    /// The client data's origin is not one of ours (or the request was cross-origin).
    #[error("This passkey answer came from another website.")]
    WrongOrigin,
    /// The authenticator signed for another RP ID.
    #[error("This passkey belongs to another website.")]
    WrongRpId,
    /// No account has this credential (or it is not the signed-in account's).
    #[error("This passkey is not registered here.")]
    UnknownCredential,
    /// Registration of a credential the account already has.
    #[error("This passkey is already registered.")]
    AlreadyRegistered,
    /// The user handle is missing or names another account than the credential's.
    #[error("This passkey does not belong to the account it names.")]
    UserHandleMismatch,
    /// The authenticator did not report the user present and verified (PIN, biometrics).
    #[error("Your device did not confirm that it is you (PIN, fingerprint or face).")]
    UserNotVerified,
    /// Signature, attestation, algorithm, counter or backup-flag checks failed.
    #[error("The passkey could not be verified.")]
    VerificationFailed,
    /// A second factor was asked of an account without (readable) passkeys.
    #[error("This account has no passkey.")]
    NoPasskeys,
    /// Our fault, not the person's: the configuration or a stored passkey is unusable.
    #[error("passkeys are unavailable: {0}")]
    Server(String),
}

impl PasskeyError {
    /// Whether the server is to blame (a 500 and a log line with the cause), rather than
    /// the answer (a 4xx and the message).
    pub fn is_server_fault(&self) -> bool {
        matches!(self, Self::Server(_))
    }
}

fn refusal(error: WebauthnError) -> PasskeyError {
    use WebauthnError as W;
    match error {
        W::ParseBase64Failure(_)
        | W::ParseCBORFailure(_)
        | W::ParseJSONFailure(_)
        | W::ParseNOMFailure
        | W::ParseInsufficientBytesAvailable
        | W::InvalidClientDataType
        | W::MissingAttestationCredentialData => PasskeyError::Malformed,
        W::MismatchedChallenge | W::ChallengeNotFound => PasskeyError::ChallengeMismatch,
        W::InvalidRPOrigin | W::CredentialCrossOrigin => PasskeyError::WrongOrigin,
        W::InvalidRPIDHash => PasskeyError::WrongRpId,
        W::UserNotPresent | W::UserNotVerified => PasskeyError::UserNotVerified,
        W::CredentialNotFound => PasskeyError::UnknownCredential,
        W::CredentialAlreadyExists | W::CredentialExcludedFromRequest => {
            PasskeyError::AlreadyRegistered
        }
        W::InvalidUserUniqueId => PasskeyError::UserHandleMismatch,
        W::Configuration | W::InvalidUsername => PasskeyError::Server(error.to_string()),
        _ => PasskeyError::VerificationFailed,
    }
}

/// The WebAuthn user handle (`user.id`) of `user_id`: a UUID v8 (RFC 9562 §5.8) made of the
/// first 16 bytes of SHA-256("portcullis-webauthn-user:" + user_id). Stable, so every
/// passkey of a user carries the same handle; opaque and free of personal data, as §14.6.1
/// asks (it is stored on authenticators and returned to any site that asks with our RP
/// ID); and derived without a secret, so nothing has to be kept or rotated for it.
pub fn user_handle(user_id: &str) -> Uuid {
    let hash = aws_lc_rs::digest::digest(
        &aws_lc_rs::digest::SHA256,
        format!("portcullis-webauthn-user:{user_id}").as_bytes(),
    );
    let mut bytes = [0u8; 16];
    for (to, from) in bytes.iter_mut().zip(hash.as_ref()) {
        *to = *from;
    }
    // The version (8) and variant bits, set by the uuid crate (RFC 9562 §5.8).
    uuid::Builder::from_custom_bytes(bytes).into_uuid()
}

/// A credential ID as stored and compared: unpadded base64url (as in the WebAuthn JSON).
fn credential_id(raw: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(raw)
}

/// A registration in progress (`start_registration` → `finish_registration`).
#[derive(Clone, Serialize, Deserialize)]
pub struct RegistrationCeremony {
    user_id: String,
    excluded: Vec<String>,
    expires_at: UnixTime,
    state: PasskeyRegistration,
}

/// A username-less sign-in in progress (`start_sign_in` → `finish_sign_in`).
#[derive(Clone, Serialize, Deserialize)]
pub struct SignInCeremony {
    expires_at: UnixTime,
    state: DiscoverableAuthentication,
}

/// A second factor for a known user in progress (`start_second_factor` →
/// `finish_second_factor`).
#[derive(Clone, Serialize, Deserialize)]
pub struct SecondFactorCeremony {
    user_id: String,
    expires_at: UnixTime,
    state: PasskeyAuthentication,
}

impl RegistrationCeremony {
    pub fn user_id(&self) -> &str {
        &self.user_id
    }
    pub fn expires_at(&self) -> UnixTime {
        self.expires_at
    }
}

impl SignInCeremony {
    pub fn expires_at(&self) -> UnixTime {
        self.expires_at
    }
}

impl SecondFactorCeremony {
    pub fn user_id(&self) -> &str {
        &self.user_id
    }
    pub fn expires_at(&self) -> UnixTime {
        self.expires_at
    }
}

// The states hold the challenge: not for logs.
impl std::fmt::Debug for RegistrationCeremony {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RegistrationCeremony")
            .field("user_id", &self.user_id)
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

impl std::fmt::Debug for SignInCeremony {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SignInCeremony")
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

impl std::fmt::Debug for SecondFactorCeremony {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SecondFactorCeremony")
            .field("user_id", &self.user_id)
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

/// A passkey just registered, for the caller to store. The caller's store must refuse a
/// `credential_id` that any account already has (§7.1 step 26).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewPasskey {
    /// The account it was registered for (the ceremony's).
    pub user_id: String,
    /// Unpadded base64url, the key to look it up by when it signs in.
    pub credential_id: String,
    /// The serialized webauthn-rs `Passkey` (public key, counter, flags): no secret.
    pub passkey_json: String,
    pub user_verified: bool,
    pub backup_eligible: bool,
    pub backed_up: bool,
}

/// A stored passkey, as the caller's lookup finds it by credential ID.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredPasskey {
    pub user_id: String,
    pub passkey_json: String,
}

/// A passkey that just proved its user.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifiedPasskey {
    pub user_id: String,
    pub credential_id: String,
    /// Always true today (every ceremony requires it); kept for `amr` and the record.
    pub user_verified: bool,
    pub backup_eligible: bool,
    pub backed_up: bool,
    /// The stored passkey with its new counter or backup state, when either changed:
    /// the caller writes it back (with `last_used_at`).
    pub updated_passkey_json: Option<String>,
}

/// The WebAuthn Relying Party: starts and finishes ceremonies. Built once at start from
/// [`PasskeySettings`] and shared (it holds only the configuration).
#[derive(Clone)]
pub struct Passkeys {
    webauthn: Webauthn,
}

impl std::fmt::Debug for Passkeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Passkeys")
            .field("origins", &self.webauthn.get_allowed_origins())
            .finish_non_exhaustive()
    }
}

impl Passkeys {
    pub fn new(settings: &PasskeySettings) -> Result<Self, PasskeyError> {
        let server = |e: WebauthnError| PasskeyError::Server(e.to_string());
        let (first, others) = settings
            .origins
            .split_first()
            .ok_or_else(|| PasskeyError::Server("no origin".into()))?;
        let mut builder = WebauthnBuilder::new(&settings.rp_id, first)
            .map_err(server)?
            .rp_name(&settings.rp_name)
            .timeout(CEREMONY_TTL)
            // Exact origins only (§7.1 step 9): the configuration names each one.
            .allow_subdomains(false)
            .allow_any_port(false);
        for origin in others {
            builder = builder.append_allowed_origin(origin);
        }
        Ok(Self {
            webauthn: builder.build().map_err(server)?,
        })
    }

    /// Options for `navigator.credentials.create()` (the `publicKey` member, in the
    /// WebAuthn L3 JSON form `PublicKeyCredential.parseCreationOptionsFromJSON` reads) and
    /// the ceremony to keep. `exclude`: the account's credential IDs, so its authenticators
    /// do not register twice.
    ///
    /// webauthn-rs's `start_passkey_registration` asks for `residentKey: "discouraged"`
    /// (it does not rely on discoverable credentials), and its resident-key variant
    /// (`start_attested_resident_key_registration`, feature `resident-key-support`)
    /// requires an attestation CA list and refuses synced passkeys. So we take the stock
    /// passkey options (user verification required, credProtect, credProps, no
    /// attestation) and ask for a discoverable credential ourselves: `residentKey:
    /// "required"` and `requireResidentKey: true` (§5.4.4). webauthn-rs does not check
    /// residency when it finishes (its state ignores the flag), and the client must not
    /// create a credential without it, so a username-less sign-in finds every passkey
    /// registered here.
    pub fn start_registration(
        &self,
        user_id: &str,
        username: &str,
        display_name: &str,
        exclude: &[String],
        now: UnixTime,
    ) -> Result<(Value, RegistrationCeremony), PasskeyError> {
        let excluded: Vec<Vec<u8>> = exclude
            .iter()
            .filter_map(|id| URL_SAFE_NO_PAD.decode(id).ok())
            .collect();
        let display_name = if display_name.trim().is_empty() {
            username
        } else {
            display_name
        };
        let (mut options, state) = self
            .webauthn
            .start_passkey_registration(
                user_handle(user_id),
                username,
                display_name,
                (!excluded.is_empty()).then(|| excluded.clone()),
            )
            .map_err(refusal)?;
        if let Some(selection) = options.public_key.authenticator_selection.as_mut() {
            selection.resident_key = Some(ResidentKeyRequirement::Required);
            selection.require_resident_key = true;
        }
        let options = serde_json::to_value(&options.public_key)
            .map_err(|e| PasskeyError::Server(e.to_string()))?;
        Ok((
            options,
            RegistrationCeremony {
                user_id: user_id.to_owned(),
                excluded: excluded.iter().map(|id| credential_id(id)).collect(),
                expires_at: expiry(now),
                state,
            },
        ))
    }

    /// Verifies the browser's answer (`credential.toJSON()`) to `ceremony`, started for
    /// `user_id` (the account signed in now; another one's ceremony is refused).
    pub fn finish_registration(
        &self,
        response_json: &str,
        ceremony: RegistrationCeremony,
        user_id: &str,
        now: UnixTime,
    ) -> Result<NewPasskey, PasskeyError> {
        if ceremony.user_id != user_id {
            return Err(PasskeyError::ChallengeMismatch);
        }
        if now >= ceremony.expires_at {
            return Err(PasskeyError::Expired);
        }
        let response: RegisterPublicKeyCredential =
            serde_json::from_str(response_json).map_err(|_| PasskeyError::Malformed)?;
        if response.type_ != "public-key" || response.id != credential_id(&response.raw_id) {
            return Err(PasskeyError::Malformed);
        }
        if ceremony.excluded.contains(&credential_id(&response.raw_id)) {
            return Err(PasskeyError::AlreadyRegistered);
        }
        let passkey = self
            .webauthn
            .finish_passkey_registration(&response, &ceremony.state)
            .map_err(refusal)?;
        // The attested credential data's ID is the one stored (§7.1 step 25); the
        // browser's rawId must be that one.
        if passkey.cred_id().as_slice() != response.raw_id.as_slice() {
            return Err(PasskeyError::Malformed);
        }
        let passkey_json =
            serde_json::to_string(&passkey).map_err(|e| PasskeyError::Server(e.to_string()))?;
        // Read-only look at the flags webauthn-rs verified (`danger-credential-internals`).
        let credential: Credential = passkey.clone().into();
        Ok(NewPasskey {
            user_id: ceremony.user_id,
            credential_id: credential_id(passkey.cred_id()),
            passkey_json,
            user_verified: credential.user_verified,
            backup_eligible: credential.backup_eligible,
            backed_up: credential.backup_state,
        })
    }

    /// Options for a username-less sign-in (`navigator.credentials.get()`, with
    /// `mediation: "conditional"` for the username field's autofill or without it for the
    /// "Sign in with a passkey" button): an empty `allowCredentials`, user verification
    /// required.
    pub fn start_sign_in(&self, now: UnixTime) -> Result<(Value, SignInCeremony), PasskeyError> {
        let (options, state) = self
            .webauthn
            .start_discoverable_authentication()
            .map_err(refusal)?;
        let options = serde_json::to_value(&options.public_key)
            .map_err(|e| PasskeyError::Server(e.to_string()))?;
        Ok((
            options,
            SignInCeremony {
                expires_at: expiry(now),
                state,
            },
        ))
    }

    /// Verifies a username-less sign-in: the credential is found by its ID (`lookup`,
    /// given the unpadded base64url ID: `Ok(None)` when no account has it), its user
    /// handle must be that of the account that owns it (§7.2 step 6), then the assertion is
    /// verified with its public key. `lookup`'s own errors (the store's) pass through.
    pub fn finish_sign_in<E: From<PasskeyError>>(
        &self,
        response_json: &str,
        ceremony: SignInCeremony,
        now: UnixTime,
        lookup: impl FnOnce(&str) -> Result<Option<StoredPasskey>, E>,
    ) -> Result<VerifiedPasskey, E> {
        if now >= ceremony.expires_at {
            return Err(PasskeyError::Expired.into());
        }
        let response = assertion(response_json)?;
        let id = credential_id(&response.raw_id);
        let stored = lookup(&id)?.ok_or(PasskeyError::UnknownCredential)?;
        let handle = response
            .get_user_unique_id()
            .ok_or(PasskeyError::UserHandleMismatch)?;
        if handle != user_handle(&stored.user_id).as_bytes() {
            return Err(PasskeyError::UserHandleMismatch.into());
        }
        let passkey = stored_passkey(&stored.passkey_json)?;
        let result = self
            .webauthn
            .finish_discoverable_authentication_v2(&response, ceremony.state, &passkey)
            .map_err(refusal)?;
        Ok(verified(stored.user_id, id, passkey, &result))
    }

    /// Options for a passkey as the second factor of `user_id`, who has `passkeys`
    /// (their stored `passkey_json`s; one that cannot be read is left out and logged).
    pub fn start_second_factor<I>(
        &self,
        user_id: &str,
        passkeys: I,
        now: UnixTime,
    ) -> Result<(Value, SecondFactorCeremony), PasskeyError>
    where
        I: IntoIterator,
        I::Item: AsRef<str>,
    {
        let passkeys: Vec<Passkey> = passkeys
            .into_iter()
            .filter_map(|json| match stored_passkey(json.as_ref()) {
                Ok(passkey) => Some(passkey),
                Err(_) => {
                    tracing::warn!(user_id, "a stored passkey cannot be read; it is left out");
                    None
                }
            })
            .collect();
        if passkeys.is_empty() {
            // webauthn-rs would start a discoverable request with no allowCredentials.
            return Err(PasskeyError::NoPasskeys);
        }
        let (options, state) = self
            .webauthn
            .start_passkey_authentication(&passkeys)
            .map_err(refusal)?;
        let options = serde_json::to_value(&options.public_key)
            .map_err(|e| PasskeyError::Server(e.to_string()))?;
        Ok((
            options,
            SecondFactorCeremony {
                user_id: user_id.to_owned(),
                expires_at: expiry(now),
                state,
            },
        ))
    }

    /// Verifies the second factor of `user_id` (who must be the ceremony's): the
    /// credential must be one of those offered, and a user handle, if the authenticator
    /// returns one, must be theirs (§7.2 step 6). `lookup` then reads the stored passkey
    /// again, so that one removed meanwhile is refused and the counter is updated on the
    /// current record.
    pub fn finish_second_factor<E: From<PasskeyError>>(
        &self,
        response_json: &str,
        ceremony: SecondFactorCeremony,
        user_id: &str,
        now: UnixTime,
        lookup: impl FnOnce(&str) -> Result<Option<StoredPasskey>, E>,
    ) -> Result<VerifiedPasskey, E> {
        if ceremony.user_id != user_id {
            return Err(PasskeyError::ChallengeMismatch.into());
        }
        if now >= ceremony.expires_at {
            return Err(PasskeyError::Expired.into());
        }
        let response = assertion(response_json)?;
        if let Some(handle) = response.get_user_unique_id()
            && handle != user_handle(user_id).as_bytes()
        {
            return Err(PasskeyError::UserHandleMismatch.into());
        }
        let result = self
            .webauthn
            .finish_passkey_authentication(&response, &ceremony.state)
            .map_err(refusal)?;
        let id = credential_id(&response.raw_id);
        let stored = lookup(&id)?
            .filter(|stored| stored.user_id == user_id)
            .ok_or(PasskeyError::UnknownCredential)?;
        let passkey = stored_passkey(&stored.passkey_json)?;
        // webauthn-rs compared the counter with the copy taken when the ceremony began;
        // another sign-in may have moved it on since. Compare with the record as it is now.
        if !counter_moves_on(Credential::from(passkey.clone()).counter, result.counter()) {
            tracing::warn!(
                user_id,
                credential_id = id,
                "a passkey's signature counter did not move past the stored one (a cloned \
                 authenticator?): refused"
            );
            return Err(PasskeyError::VerificationFailed.into());
        }
        Ok(verified(stored.user_id, id, passkey, &result))
    }
}

/// WebAuthn L3 §7.2, the `signCount` step: when either the stored signature counter or the
/// assertion's is non-zero, the assertion's must be greater; otherwise the authenticator
/// may have been cloned. Both zero is legal (synced passkeys keep no counter).
fn counter_moves_on(stored: u32, asserted: u32) -> bool {
    (asserted == 0 && stored == 0) || asserted > stored
}

/// The challenge of a ceremony's options (`challenge`), as its stored ceremony is found
/// by: unpadded base64url.
pub fn challenge_of_options(options: &Value) -> Option<String> {
    options["challenge"].as_str().and_then(canonical_base64url)
}

/// The challenge the browser's answer (`credential.toJSON()`) signed: its client data's
/// `challenge` (WebAuthn L3 §5.8.1), to find the ceremony it answers. `None` for an
/// answer that cannot be read that far. Only a key to look the ceremony up by:
/// webauthn-rs compares it with the ceremony's own when it verifies the answer.
pub fn challenge_of_answer(response_json: &str) -> Option<String> {
    let response: Value = serde_json::from_str(response_json).ok()?;
    let client_data = decode_base64url(response["response"]["clientDataJSON"].as_str()?)?;
    let client_data: Value = serde_json::from_slice(&client_data).ok()?;
    client_data["challenge"]
        .as_str()
        .and_then(canonical_base64url)
}

/// base64url (WebAuthn's encoding) with or without padding; standard base64 is read too,
/// as webauthn-rs reads it.
fn decode_base64url(text: &str) -> Option<Vec<u8>> {
    use base64::engine::general_purpose::STANDARD_NO_PAD;
    let text = text.trim_end_matches('=');
    URL_SAFE_NO_PAD
        .decode(text)
        .or_else(|_| STANDARD_NO_PAD.decode(text))
        .ok()
}

fn canonical_base64url(text: &str) -> Option<String> {
    decode_base64url(text)
        .filter(|bytes| !bytes.is_empty())
        .map(|bytes| URL_SAFE_NO_PAD.encode(bytes))
}

fn expiry(now: UnixTime) -> UnixTime {
    now.saturating_add(CEREMONY_TTL.as_secs() as i64)
}

/// The browser's answer to a `get()` (`credential.toJSON()`).
fn assertion(response_json: &str) -> Result<PublicKeyCredential, PasskeyError> {
    let response: PublicKeyCredential =
        serde_json::from_str(response_json).map_err(|_| PasskeyError::Malformed)?;
    if response.type_ != "public-key" || response.id != credential_id(&response.raw_id) {
        return Err(PasskeyError::Malformed);
    }
    Ok(response)
}

fn stored_passkey(json: &str) -> Result<Passkey, PasskeyError> {
    serde_json::from_str(json)
        .map_err(|e| PasskeyError::Server(format!("a stored passkey cannot be read: {e}")))
}

/// What a verified assertion says, with the passkey as it is to be stored back when the
/// assertion changed it (counter, backup state).
fn verified(
    user_id: String,
    credential_id: String,
    mut passkey: Passkey,
    result: &AuthenticationResult,
) -> VerifiedPasskey {
    let updated = passkey.update_credential(result) == Some(true);
    VerifiedPasskey {
        user_id,
        credential_id,
        user_verified: result.user_verified(),
        backup_eligible: result.backup_eligible(),
        backed_up: result.backup_state(),
        updated_passkey_json: updated
            .then(|| serde_json::to_string(&passkey).ok())
            .flatten(),
    }
}
