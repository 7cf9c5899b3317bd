//! The passkey glue's unit tests: settings, the user handle, and whole ceremonies against
//! a software authenticator (`soft_authenticator`), honest and bent.

use serde_json::{Value, json};

use super::soft_authenticator::{Authenticator, BE, BS, UP, UV};
use super::*;

const ISSUER: &str = "https://login.example.com";
const NOW: UnixTime = 1_800_000_000;

fn settings(issuer: &str) -> Option<PasskeySettings> {
    PasskeySettings::from_issuer(issuer, None, &[]).unwrap()
}

fn passkeys() -> Passkeys {
    Passkeys::new(&settings(ISSUER).unwrap()).unwrap()
}

/// A store of one account's passkeys, as the caller's lookup reads it.
struct Registered {
    passkey: NewPasskey,
}

impl Registered {
    fn lookup(&self, id: &str) -> Result<Option<StoredPasskey>, PasskeyError> {
        Ok((id == self.passkey.credential_id).then(|| StoredPasskey {
            user_id: self.passkey.user_id.clone(),
            passkey_json: self.passkey.passkey_json.clone(),
        }))
    }
}

fn register(passkeys: &Passkeys, authenticator: &mut Authenticator, user: &str) -> Registered {
    let (options, ceremony) = passkeys
        .start_registration(user, user, "", &[], NOW)
        .unwrap();
    let answer = authenticator.create(&options);
    let passkey = passkeys
        .finish_registration(&answer.to_string(), ceremony, user, NOW + 1)
        .unwrap();
    Registered { passkey }
}

fn sign_in(
    passkeys: &Passkeys,
    authenticator: &mut Authenticator,
    registered: &Registered,
) -> Result<VerifiedPasskey, PasskeyError> {
    let (options, ceremony) = passkeys.start_sign_in(NOW).unwrap();
    let answer = authenticator.get(&options, 0);
    passkeys.finish_sign_in(&answer.to_string(), ceremony, NOW + 1, |id| {
        registered.lookup(id)
    })
}

// ---- settings -------------------------------------------------------------------------

#[test]
fn the_rp_id_is_the_issuers_host_and_the_origin_its_origin() {
    let s = settings("https://Login.Example.com/auth").unwrap();
    assert_eq!(s.rp_id, "login.example.com");
    assert_eq!(s.rp_name, "login.example.com");
    let origins: Vec<String> = s
        .origins
        .iter()
        .map(|o| o.origin().ascii_serialization())
        .collect();
    assert_eq!(origins, ["https://login.example.com"]);
    let s = settings("https://login.example.com:8443").unwrap();
    assert_eq!(s.origins[0].as_str(), "https://login.example.com:8443/");
    assert_eq!(s.named("Acme").rp_name, "Acme");
}

#[test]
fn an_ip_address_issuer_turns_passkeys_off() {
    assert_eq!(settings("http://127.0.0.1:8080"), None);
    assert_eq!(settings("https://192.0.2.7"), None);
    assert_eq!(settings("https://[2001:db8::1]:8443"), None);
}

#[test]
fn plain_http_is_a_secure_context_only_on_localhost() {
    let s = settings("http://localhost:8080").unwrap();
    assert_eq!(s.rp_id, "localhost");
    assert_eq!(s.origins[0].as_str(), "http://localhost:8080/");
    assert!(settings("http://id.localhost:8080").is_some());
    assert_eq!(settings("http://login.example.com"), None);
}

#[test]
fn configured_rp_id_and_origins_replace_the_defaults() {
    let origins = [
        "https://login.example.com".to_owned(),
        "https://example.com:8443".to_owned(),
    ];
    let s = PasskeySettings::from_issuer("https://10.0.0.5", Some("Example.com"), &origins)
        .unwrap()
        .unwrap();
    assert_eq!(s.rp_id, "example.com");
    assert_eq!(s.origins.len(), 2);
    assert_eq!(s.origins[1].as_str(), "https://example.com:8443/");
    // A configured RP ID the issuer's host is under.
    let s = PasskeySettings::from_issuer(ISSUER, Some("example.com"), &[])
        .unwrap()
        .unwrap();
    assert_eq!(s.rp_id, "example.com");
    assert_eq!(s.origins[0].as_str(), "https://login.example.com/");
}

#[test]
fn wrong_configured_values_name_their_key() {
    let key = |rp_id: Option<&str>, origins: &[&str]| {
        let origins: Vec<String> = origins.iter().map(|o| o.to_string()).collect();
        PasskeySettings::from_issuer(ISSUER, rp_id, &origins)
            .unwrap_err()
            .key
    };
    assert_eq!(key(Some("192.0.2.1"), &[]), RP_ID_KEY);
    assert_eq!(key(Some("https://example.com"), &[]), RP_ID_KEY);
    assert_eq!(key(Some("other.example"), &[]), RP_ID_KEY);
    // "badexample.com" is not under "example.com".
    assert_eq!(
        key(Some("example.com"), &["https://badexample.com"]),
        ORIGINS_KEY
    );
    assert_eq!(key(None, &["https://login.example.com/path"]), ORIGINS_KEY);
    assert_eq!(key(None, &["http://login.example.com"]), ORIGINS_KEY);
    assert_eq!(key(None, &["https://192.0.2.1"]), ORIGINS_KEY);
    assert_eq!(key(None, &["not a url"]), ORIGINS_KEY);
}

// ---- the user handle ------------------------------------------------------------------

#[test]
fn the_user_handle_is_stable_distinct_and_a_uuid_v8() {
    let alice = user_handle("alice-id");
    assert_eq!(alice, user_handle("alice-id"));
    assert_ne!(alice, user_handle("bob-id"));
    assert_ne!(alice, user_handle("alice-id "));
    assert_eq!(alice.get_version_num(), 8);
    assert_eq!(alice.as_bytes()[8] & 0xc0, 0x80, "the RFC 9562 variant");
    // Fixed by the derivation: SHA-256("portcullis-webauthn-user:alice-id")[..16], with
    // the version and variant bits set.
    let hash = aws_lc_rs::digest::digest(
        &aws_lc_rs::digest::SHA256,
        b"portcullis-webauthn-user:alice-id",
    );
    let bytes = alice.as_bytes();
    assert_eq!(bytes[..6], hash.as_ref()[..6]);
    assert_eq!(bytes[9..], hash.as_ref()[9..16]);
}

// ---- registration ---------------------------------------------------------------------

#[test]
fn registration_asks_for_a_discoverable_verified_credential() {
    let (options, ceremony) = passkeys()
        .start_registration(
            "alice-id",
            "alice",
            "Alice",
            &["AAEC".into(), "not base64!".into()],
            NOW,
        )
        .unwrap();
    let selection = &options["authenticatorSelection"];
    assert_eq!(selection["residentKey"], "required");
    assert_eq!(selection["requireResidentKey"], true);
    assert_eq!(selection["userVerification"], "required");
    assert_eq!(options["rp"]["id"], "login.example.com");
    assert_eq!(options["user"]["name"], "alice");
    assert_eq!(options["user"]["displayName"], "Alice");
    let handle = URL_SAFE_NO_PAD.encode(user_handle("alice-id").as_bytes());
    assert_eq!(options["user"]["id"], handle.as_str());
    assert_eq!(
        options["excludeCredentials"],
        json!([{"type": "public-key", "id": "AAEC"}])
    );
    assert_eq!(options["timeout"], 300_000);
    assert_eq!(ceremony.user_id(), "alice-id");
    assert_eq!(ceremony.expires_at(), NOW + 300);
    // The state kept server-side serializes (for Redis) and comes back.
    let kept = serde_json::to_string(&ceremony).unwrap();
    let _: RegistrationCeremony = serde_json::from_str(&kept).unwrap();
    assert!(!format!("{ceremony:?}").contains("challenge"));
}

#[test]
fn a_registered_passkey_records_its_flags_and_signs_in_without_a_username() {
    let passkeys = passkeys();
    let mut phone = Authenticator::new(ISSUER);
    let registered = register(&passkeys, &mut phone, "alice-id");
    let new = &registered.passkey;
    assert_eq!(new.user_id, "alice-id");
    assert_eq!(
        new.credential_id,
        URL_SAFE_NO_PAD.encode(&phone.credentials[0].id)
    );
    assert!(new.user_verified && new.backup_eligible && new.backed_up);
    let _: webauthn_rs::prelude::Passkey = serde_json::from_str(&new.passkey_json).unwrap();

    let verified = sign_in(&passkeys, &mut phone, &registered).unwrap();
    assert_eq!(verified.user_id, "alice-id");
    assert_eq!(verified.credential_id, new.credential_id);
    assert!(verified.user_verified);
    // A synced passkey's counter stays 0 (legal) and nothing changed: nothing to write.
    assert_eq!(verified.updated_passkey_json, None);
}

#[test]
fn sign_in_options_ask_any_discoverable_credential_with_verification() {
    let (options, ceremony) = passkeys().start_sign_in(NOW).unwrap();
    assert_eq!(options["allowCredentials"], json!([]));
    assert_eq!(options["userVerification"], "required");
    assert_eq!(options["rpId"], "login.example.com");
    assert!(options["challenge"].as_str().unwrap().len() >= 43);
    assert_eq!(ceremony.expires_at(), NOW + 300);
    let kept = serde_json::to_string(&ceremony).unwrap();
    let back: SignInCeremony = serde_json::from_str(&kept).unwrap();
    assert_eq!(back.expires_at(), NOW + 300);
}

#[test]
fn a_registration_answer_to_another_challenge_is_refused() {
    let passkeys = passkeys();
    let mut phone = Authenticator::new(ISSUER);
    let (first, _) = passkeys
        .start_registration("alice-id", "alice", "", &[], NOW)
        .unwrap();
    let (_, second) = passkeys
        .start_registration("alice-id", "alice", "", &[], NOW)
        .unwrap();
    let answer = phone.create(&first);
    assert_eq!(
        passkeys.finish_registration(&answer.to_string(), second, "alice-id", NOW),
        Err(PasskeyError::ChallengeMismatch)
    );
}

#[test]
fn a_registration_ceremony_is_bound_to_its_account_and_its_time() {
    let passkeys = passkeys();
    let mut phone = Authenticator::new(ISSUER);
    let (options, ceremony) = passkeys
        .start_registration("alice-id", "alice", "", &[], NOW)
        .unwrap();
    let answer = phone.create(&options).to_string();
    assert_eq!(
        passkeys.finish_registration(&answer, ceremony.clone(), "mallory-id", NOW),
        Err(PasskeyError::ChallengeMismatch)
    );
    assert_eq!(
        passkeys.finish_registration(&answer, ceremony.clone(), "alice-id", NOW + 300),
        Err(PasskeyError::Expired)
    );
    assert!(
        passkeys
            .finish_registration(&answer, ceremony, "alice-id", NOW + 299)
            .is_ok()
    );
}

#[test]
fn a_registration_from_another_origin_or_for_another_rp_id_is_refused() {
    let passkeys = passkeys();
    for (origin, rp_id, refused) in [
        ("https://evil.example", None, PasskeyError::WrongOrigin),
        (
            "https://sub.login.example.com",
            None,
            PasskeyError::WrongOrigin,
        ),
        (
            "https://login.example.com:8443",
            None,
            PasskeyError::WrongOrigin,
        ),
        (ISSUER, Some("evil.example"), PasskeyError::WrongRpId),
    ] {
        let mut bent = Authenticator::new(origin);
        bent.rp_id = rp_id.map(str::to_owned);
        let (options, ceremony) = passkeys
            .start_registration("alice-id", "alice", "", &[], NOW)
            .unwrap();
        let answer = bent.create(&options).to_string();
        assert_eq!(
            passkeys.finish_registration(&answer, ceremony, "alice-id", NOW),
            Err(refused),
            "{origin} {rp_id:?}"
        );
    }
}

#[test]
fn a_registration_without_user_verification_or_presence_is_refused() {
    let passkeys = passkeys();
    for flags in [UP, UV | BE] {
        let mut lax = Authenticator::new(ISSUER);
        lax.flags = flags;
        let (options, ceremony) = passkeys
            .start_registration("alice-id", "alice", "", &[], NOW)
            .unwrap();
        let answer = lax.create(&options).to_string();
        assert_eq!(
            passkeys.finish_registration(&answer, ceremony, "alice-id", NOW),
            Err(PasskeyError::UserNotVerified),
            "flags {flags:#04x}"
        );
    }
}

#[test]
fn backup_flags_are_read_as_reported_and_reserved_bits_ignored() {
    let passkeys = passkeys();
    // A device-bound passkey with the reserved bits 0x02 and 0x20 set.
    let mut key = Authenticator::new(ISSUER);
    key.flags = UP | UV | 0x02 | 0x20;
    let registered = register(&passkeys, &mut key, "alice-id");
    assert!(!registered.passkey.backup_eligible && !registered.passkey.backed_up);
    assert!(sign_in(&passkeys, &mut key, &registered).is_ok());

    // A synced passkey whose backup comes and goes: recorded, not refused.
    let mut phone = Authenticator::new(ISSUER);
    phone.flags = UP | UV | BE;
    let registered = register(&passkeys, &mut phone, "alice-id");
    assert!(registered.passkey.backup_eligible && !registered.passkey.backed_up);
    phone.flags = UP | UV | BE | BS;
    let verified = sign_in(&passkeys, &mut phone, &registered).unwrap();
    assert!(verified.backed_up);
    let updated: Value = serde_json::from_str(&verified.updated_passkey_json.unwrap()).unwrap();
    assert_eq!(updated["cred"]["backup_state"], true);

    // Backed up but not backup eligible contradicts itself (§7.1 step 17).
    let mut odd = Authenticator::new(ISSUER);
    odd.flags = UP | UV | BS;
    let (options, ceremony) = passkeys
        .start_registration("alice-id", "alice", "", &[], NOW)
        .unwrap();
    let answer = odd.create(&options).to_string();
    assert_eq!(
        passkeys.finish_registration(&answer, ceremony, "alice-id", NOW),
        Err(PasskeyError::VerificationFailed)
    );
}

#[test]
fn an_excluded_credential_is_not_registered_twice() {
    let passkeys = passkeys();
    let mut phone = Authenticator::new(ISSUER);
    let registered = register(&passkeys, &mut phone, "alice-id");
    let (options, ceremony) = passkeys
        .start_registration(
            "alice-id",
            "alice",
            "",
            std::slice::from_ref(&registered.passkey.credential_id),
            NOW,
        )
        .unwrap();
    // An authenticator that ignores excludeCredentials answers with the same credential.
    let mut again = phone.create(&options);
    let id = registered.passkey.credential_id.clone();
    again["id"] = json!(id);
    again["rawId"] = json!(id);
    assert_eq!(
        passkeys.finish_registration(&again.to_string(), ceremony, "alice-id", NOW),
        Err(PasskeyError::AlreadyRegistered)
    );
}

#[test]
fn malformed_registration_answers_are_refused_as_malformed() {
    let passkeys = passkeys();
    let mut phone = Authenticator::new(ISSUER);
    let (options, ceremony) = passkeys
        .start_registration("alice-id", "alice", "", &[], NOW)
        .unwrap();
    let good = phone.create(&options);
    let mut bent = Vec::new();
    for (pointer, value) in [
        ("/type", json!("password")),
        ("/id", json!("c29tZXRoaW5nIGVsc2U")),
        ("/rawId", json!("not base64!")),
        ("/response/clientDataJSON", json!("bm90IGpzb24")),
        ("/response/attestationObject", json!("bm90IGNib3I")),
        ("/response/attestationObject", json!(12)),
        ("/response", json!(null)),
    ] {
        let mut answer = good.clone();
        *answer.pointer_mut(pointer).unwrap() = value;
        bent.push(answer.to_string());
    }
    bent.extend([
        "".into(),
        "{".into(),
        "[]".into(),
        "null".into(),
        "{}".into(),
    ]);
    for answer in bent {
        assert_eq!(
            passkeys.finish_registration(&answer, ceremony.clone(), "alice-id", NOW),
            Err(PasskeyError::Malformed),
            "{answer}"
        );
    }
    // Client data of another ceremony type (a get() answer's).
    let mut answer = good.clone();
    let client_data =
        json!({"type": "webauthn.get", "challenge": options["challenge"], "origin": ISSUER});
    answer["response"]["clientDataJSON"] = json!(URL_SAFE_NO_PAD.encode(client_data.to_string()));
    assert_eq!(
        passkeys.finish_registration(&answer.to_string(), ceremony, "alice-id", NOW),
        Err(PasskeyError::Malformed)
    );
}

// ---- sign-in --------------------------------------------------------------------------

#[test]
fn a_sign_in_ceremony_is_single_purpose_and_expires() {
    let passkeys = passkeys();
    let mut phone = Authenticator::new(ISSUER);
    let registered = register(&passkeys, &mut phone, "alice-id");
    let (options, ceremony) = passkeys.start_sign_in(NOW).unwrap();
    let answer = phone.get(&options, 0).to_string();
    let lookup = |id: &str| registered.lookup(id);
    assert_eq!(
        passkeys.finish_sign_in(&answer, ceremony.clone(), NOW + 300, lookup),
        Err(PasskeyError::Expired)
    );
    // Another ceremony's challenge.
    let (_, other) = passkeys.start_sign_in(NOW).unwrap();
    assert_eq!(
        passkeys.finish_sign_in(&answer, other, NOW, lookup),
        Err(PasskeyError::ChallengeMismatch)
    );
    assert!(
        passkeys
            .finish_sign_in(&answer, ceremony, NOW, lookup)
            .is_ok()
    );
}

#[test]
fn an_unknown_credential_is_refused() {
    let passkeys = passkeys();
    let mut stranger = Authenticator::new(ISSUER);
    let registered = register(&passkeys, &mut Authenticator::new(ISSUER), "alice-id");
    register(&passkeys, &mut stranger, "alice-id"); // known to the authenticator only
    assert_eq!(
        sign_in(&passkeys, &mut stranger, &registered),
        Err(PasskeyError::UnknownCredential)
    );
}

#[test]
fn a_user_handle_of_another_account_or_none_is_refused() {
    let passkeys = passkeys();
    let mut phone = Authenticator::new(ISSUER);
    let registered = register(&passkeys, &mut phone, "alice-id");
    phone.credentials[0].user_handle = user_handle("bob-id").as_bytes().to_vec();
    assert_eq!(
        sign_in(&passkeys, &mut phone, &registered),
        Err(PasskeyError::UserHandleMismatch)
    );
    let (options, ceremony) = passkeys.start_sign_in(NOW).unwrap();
    let mut answer = phone.get(&options, 0);
    answer["response"]["userHandle"] = Value::Null;
    assert_eq!(
        passkeys.finish_sign_in(&answer.to_string(), ceremony, NOW, |id| registered
            .lookup(id)),
        Err(PasskeyError::UserHandleMismatch)
    );
}

#[test]
fn a_sign_in_from_another_origin_or_rp_id_or_without_verification_is_refused() {
    let passkeys = passkeys();
    let mut phone = Authenticator::new(ISSUER);
    let registered = register(&passkeys, &mut phone, "alice-id");
    phone.origin = "https://login.example.com.evil.example".into();
    assert_eq!(
        sign_in(&passkeys, &mut phone, &registered),
        Err(PasskeyError::WrongOrigin)
    );
    phone.origin = ISSUER.into();
    phone.rp_id = Some("evil.example".into());
    assert_eq!(
        sign_in(&passkeys, &mut phone, &registered),
        Err(PasskeyError::WrongRpId)
    );
    phone.rp_id = None;
    phone.flags = UP | BE | BS;
    assert_eq!(
        sign_in(&passkeys, &mut phone, &registered),
        Err(PasskeyError::UserNotVerified)
    );
    phone.flags = UV | BE | BS;
    assert_eq!(
        sign_in(&passkeys, &mut phone, &registered),
        Err(PasskeyError::UserNotVerified)
    );
    phone.flags = UP | UV | BE | BS;
    assert!(sign_in(&passkeys, &mut phone, &registered).is_ok());
}

#[test]
fn a_forged_signature_is_refused() {
    let passkeys = passkeys();
    let mut phone = Authenticator::new(ISSUER);
    let registered = register(&passkeys, &mut phone, "alice-id");
    let (options, ceremony) = passkeys.start_sign_in(NOW).unwrap();
    let mut answer = phone.get(&options, 0);
    // Claim to be backed up after signing: the signature no longer covers the data.
    let mut data = URL_SAFE_NO_PAD
        .decode(answer["response"]["authenticatorData"].as_str().unwrap())
        .unwrap();
    data[32] ^= BS;
    answer["response"]["authenticatorData"] = json!(URL_SAFE_NO_PAD.encode(data));
    assert_eq!(
        passkeys.finish_sign_in(&answer.to_string(), ceremony, NOW, |id| registered
            .lookup(id)),
        Err(PasskeyError::VerificationFailed)
    );
}

#[test]
fn a_counter_that_moves_on_is_stored_and_one_that_goes_back_refused() {
    let passkeys = passkeys();
    let mut key = Authenticator::new(ISSUER);
    key.counter_step = 1;
    let mut registered = register(&passkeys, &mut key, "alice-id");
    let verified = sign_in(&passkeys, &mut key, &registered).unwrap();
    let updated = verified.updated_passkey_json.unwrap();
    assert_eq!(
        serde_json::from_str::<Value>(&updated).unwrap()["cred"]["counter"],
        1
    );
    registered.passkey.passkey_json = updated;
    // A clone still at 1 (§7.2 step 22).
    key.counter_step = 0;
    assert_eq!(
        sign_in(&passkeys, &mut key, &registered),
        Err(PasskeyError::VerificationFailed)
    );
}

#[test]
fn a_store_error_in_the_lookup_passes_through() {
    #[derive(Debug, PartialEq)]
    enum Failure {
        Store,
        Passkey(PasskeyError),
    }
    impl From<PasskeyError> for Failure {
        fn from(e: PasskeyError) -> Self {
            Self::Passkey(e)
        }
    }
    let passkeys = passkeys();
    let mut phone = Authenticator::new(ISSUER);
    register(&passkeys, &mut phone, "alice-id");
    let (options, ceremony) = passkeys.start_sign_in(NOW).unwrap();
    let answer = phone.get(&options, 0).to_string();
    assert_eq!(
        passkeys.finish_sign_in(&answer, ceremony.clone(), NOW, |_| Err(Failure::Store)),
        Err(Failure::Store)
    );
    // A stored passkey we cannot read is our fault, not the person's.
    let unreadable = passkeys.finish_sign_in(&answer, ceremony, NOW, |_| {
        Ok::<_, Failure>(Some(StoredPasskey {
            user_id: "alice-id".into(),
            passkey_json: "{}".into(),
        }))
    });
    assert!(matches!(unreadable, Err(Failure::Passkey(e)) if e.is_server_fault()));
}

#[test]
fn malformed_sign_in_answers_are_refused_as_malformed() {
    let passkeys = passkeys();
    let mut phone = Authenticator::new(ISSUER);
    let registered = register(&passkeys, &mut phone, "alice-id");
    let (options, ceremony) = passkeys.start_sign_in(NOW).unwrap();
    let good = phone.get(&options, 0);
    let mut bent: Vec<String> = ["", "{", "[]", "{}", "\"x\""].map(String::from).to_vec();
    for (pointer, value) in [
        ("/type", json!("public-key ")),
        ("/rawId", json!("***")),
        ("/id", json!("AAAA")),
        ("/response/signature", json!(null)),
        ("/response/authenticatorData", json!("AAAA")),
        ("/response/clientDataJSON", json!("e30")),
    ] {
        let mut answer = good.clone();
        *answer.pointer_mut(pointer).unwrap() = value;
        bent.push(answer.to_string());
    }
    for answer in bent {
        assert_eq!(
            passkeys.finish_sign_in(&answer, ceremony.clone(), NOW, |id| registered.lookup(id)),
            Err(PasskeyError::Malformed),
            "{answer}"
        );
    }
}

// ---- second factor --------------------------------------------------------------------

#[test]
fn a_passkey_is_a_second_factor_for_its_own_account_only() {
    let passkeys = passkeys();
    let mut phone = Authenticator::new(ISSUER);
    let registered = register(&passkeys, &mut phone, "alice-id");
    let jsons = [registered.passkey.passkey_json.as_str()];
    let (options, ceremony) = passkeys
        .start_second_factor("alice-id", jsons, NOW)
        .unwrap();
    assert_eq!(
        options["allowCredentials"][0]["id"],
        registered.passkey.credential_id.as_str()
    );
    assert_eq!(options["userVerification"], "required");
    let kept: SecondFactorCeremony =
        serde_json::from_str(&serde_json::to_string(&ceremony).unwrap()).unwrap();
    assert_eq!(kept.user_id(), "alice-id");

    let answer = phone.get(&options, 0).to_string();
    let lookup = |id: &str| registered.lookup(id);
    assert_eq!(
        passkeys.finish_second_factor(&answer, ceremony.clone(), "bob-id", NOW, lookup),
        Err(PasskeyError::ChallengeMismatch)
    );
    assert_eq!(
        passkeys.finish_second_factor(&answer, ceremony.clone(), "alice-id", NOW + 300, lookup),
        Err(PasskeyError::Expired)
    );
    // Removed between the options and the answer.
    assert_eq!(
        passkeys.finish_second_factor(&answer, ceremony.clone(), "alice-id", NOW, |_| {
            Ok::<_, PasskeyError>(None)
        }),
        Err(PasskeyError::UnknownCredential)
    );
    let verified = passkeys
        .finish_second_factor(&answer, ceremony, "alice-id", NOW, lookup)
        .unwrap();
    assert_eq!(verified.user_id, "alice-id");
    assert!(verified.user_verified);
}

#[test]
fn a_second_factor_from_a_passkey_not_offered_or_of_another_user_is_refused() {
    let passkeys = passkeys();
    let mut phone = Authenticator::new(ISSUER);
    let alice = register(&passkeys, &mut phone, "alice-id");
    let mut other = Authenticator::new(ISSUER);
    register(&passkeys, &mut other, "alice-id");
    let (options, ceremony) = passkeys
        .start_second_factor("alice-id", [&alice.passkey.passkey_json], NOW)
        .unwrap();
    let answer = other.get(&options, 0).to_string();
    assert_eq!(
        passkeys.finish_second_factor(&answer, ceremony.clone(), "alice-id", NOW, |id| alice
            .lookup(id)),
        Err(PasskeyError::UnknownCredential)
    );
    phone.credentials[0].user_handle = user_handle("bob-id").as_bytes().to_vec();
    let answer = phone.get(&options, 0).to_string();
    assert_eq!(
        passkeys.finish_second_factor(&answer, ceremony, "alice-id", NOW, |id| alice.lookup(id)),
        Err(PasskeyError::UserHandleMismatch)
    );
}

#[test]
fn no_readable_passkey_means_no_second_factor() {
    let none: [&str; 0] = [];
    assert_eq!(
        passkeys()
            .start_second_factor("alice-id", none, NOW)
            .map(|_| ()),
        Err(PasskeyError::NoPasskeys)
    );
    assert_eq!(
        passkeys()
            .start_second_factor("alice-id", ["{}"], NOW)
            .map(|_| ()),
        Err(PasskeyError::NoPasskeys)
    );
}

// ---- no panic on any input ------------------------------------------------------------

mod properties {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        #[test]
        fn any_answer_is_refused_without_a_panic(text in ".{0,300}", bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let passkeys = passkeys();
            let b64 = URL_SAFE_NO_PAD.encode(&bytes);
            let shaped = json!({
                "id": b64, "rawId": b64, "type": "public-key",
                "response": {
                    "clientDataJSON": b64, "attestationObject": b64,
                    "authenticatorData": b64, "signature": b64, "userHandle": b64,
                },
            }).to_string();
            for answer in [text.as_str(), shaped.as_str()] {
                let (_, registration) = passkeys.start_registration("a", "a", "", &[], NOW).unwrap();
                prop_assert!(passkeys.finish_registration(answer, registration, "a", NOW).is_err());
                let (_, sign_in) = passkeys.start_sign_in(NOW).unwrap();
                let found = passkeys.finish_sign_in(answer, sign_in, NOW, |_| {
                    Ok::<_, PasskeyError>(Some(StoredPasskey { user_id: "a".into(), passkey_json: "{}".into() }))
                });
                prop_assert!(found.is_err());
            }
        }
    }
}

// ---- the challenge a ceremony is kept by ------------------------------------------------

#[test]
fn the_challenge_of_the_options_is_the_one_the_answer_signed() {
    let passkeys = passkeys();
    let mut phone = Authenticator::new(ISSUER);
    let (options, _) = passkeys
        .start_registration("alice-id", "alice", "", &[], NOW)
        .unwrap();
    let created = phone.create(&options);
    let challenge = challenge_of_options(&options).unwrap();
    assert_eq!(
        challenge_of_answer(&created.to_string()).as_deref(),
        Some(challenge.as_str())
    );
    let (options, _) = passkeys.start_sign_in(NOW).unwrap();
    let asserted = phone.get(&options, 0);
    let challenge = challenge_of_options(&options).unwrap();
    assert_eq!(
        challenge_of_answer(&asserted.to_string()).as_deref(),
        Some(challenge.as_str())
    );
    // Padded or in standard base64, it is the same challenge.
    let padded = json!({ "challenge": format!("{challenge}==") });
    assert_eq!(challenge_of_options(&padded), Some(challenge));
}

#[test]
fn an_answer_without_readable_client_data_has_no_challenge() {
    for answer in [
        "",
        "null",
        "{}",
        r#"{"response": {}}"#,
        r#"{"response": {"clientDataJSON": "!!"}}"#,
        r#"{"response": {"clientDataJSON": "bm90IGpzb24"}}"#,
        r#"{"response": {"clientDataJSON": "e30"}}"#,
        r#"{"response": {"clientDataJSON": "eyJjaGFsbGVuZ2UiOiIifQ"}}"#,
    ] {
        assert_eq!(challenge_of_answer(answer), None, "{answer}");
    }
}

// ---- what is said, and what is not -------------------------------------------------------

#[test]
fn each_webauthn_refusal_is_told_in_the_persons_words_or_blamed_on_the_server() {
    use WebauthnError as W;
    for (error, expected) in [
        (W::ParseNOMFailure, PasskeyError::Malformed),
        (W::InvalidClientDataType, PasskeyError::Malformed),
        (W::MismatchedChallenge, PasskeyError::ChallengeMismatch),
        (W::InvalidRPOrigin, PasskeyError::WrongOrigin),
        (W::CredentialCrossOrigin, PasskeyError::WrongOrigin),
        (W::InvalidRPIDHash, PasskeyError::WrongRpId),
        (W::UserNotVerified, PasskeyError::UserNotVerified),
        (W::CredentialNotFound, PasskeyError::UnknownCredential),
        (W::CredentialAlreadyExists, PasskeyError::AlreadyRegistered),
        (
            W::CredentialExcludedFromRequest,
            PasskeyError::AlreadyRegistered,
        ),
        (W::InvalidUserUniqueId, PasskeyError::UserHandleMismatch),
        (
            W::CredentialPossibleCompromise,
            PasskeyError::VerificationFailed,
        ),
    ] {
        assert_eq!(refusal(error), expected);
    }
    for error in [W::Configuration, W::InvalidUsername] {
        let refused = refusal(error);
        assert!(refused.is_server_fault(), "{refused:?}");
    }
}

#[test]
fn a_ceremony_prints_its_account_and_expiry_never_its_challenge() {
    let passkeys = passkeys();
    let mut phone = Authenticator::new(ISSUER);
    let registered = register(&passkeys, &mut phone, "alice-id");
    let expires = NOW + CEREMONY_TTL.as_secs() as i64;

    let (options, ceremony) = passkeys
        .start_registration("alice-id", "alice", "", &[], NOW)
        .unwrap();
    let printed = format!("{ceremony:?}");
    assert_eq!(
        printed,
        format!("RegistrationCeremony {{ user_id: \"alice-id\", expires_at: {expires}, .. }}")
    );
    assert!(!printed.contains(options["challenge"].as_str().unwrap()));

    let (options, ceremony) = passkeys.start_sign_in(NOW).unwrap();
    assert_eq!(ceremony.expires_at(), expires);
    let printed = format!("{ceremony:?}");
    assert_eq!(
        printed,
        format!("SignInCeremony {{ expires_at: {expires}, .. }}")
    );
    assert!(!printed.contains(options["challenge"].as_str().unwrap()));

    let (options, ceremony) = passkeys
        .start_second_factor("alice-id", [&registered.passkey.passkey_json], NOW)
        .unwrap();
    assert_eq!(ceremony.expires_at(), expires);
    let printed = format!("{ceremony:?}");
    assert_eq!(
        printed,
        format!("SecondFactorCeremony {{ user_id: \"alice-id\", expires_at: {expires}, .. }}")
    );
    assert!(!printed.contains(options["challenge"].as_str().unwrap()));

    let printed = format!("{passkeys:?}");
    assert!(printed.starts_with("Passkeys { origins: ["), "{printed}");
    assert!(printed.contains("login.example.com"), "{printed}");
}

#[test]
fn a_saved_software_credential_still_signs_in_when_read_back() {
    // What the bench driver does between runs (its passkeys file).
    let passkeys = passkeys();
    let mut phone = Authenticator::new(ISSUER);
    phone.counter_step = 1;
    let registered = register(&passkeys, &mut phone, "alice-id");
    sign_in(&passkeys, &mut phone, &registered).unwrap();
    let saved = phone.credentials[0].to_json();
    let mut restored = Authenticator::new(ISSUER);
    restored.counter_step = 1;
    restored
        .credentials
        .push(super::soft_authenticator::Credential::from_json(&saved).unwrap());
    assert_eq!(
        restored.credentials[0].counter, 1,
        "the counter comes along"
    );
    let verified = sign_in(&passkeys, &mut restored, &registered).unwrap();
    assert_eq!(verified.user_id, "alice-id");
    assert!(super::soft_authenticator::Credential::from_json(&json!({"pkcs8": "AAAA"})).is_none());
}
