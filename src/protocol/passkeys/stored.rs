//! The ceremonies' reads and writes of the store, around [`Passkeys`]: what the HTTP
//! adapter runs on the blocking pool. A sign-in finds the credential by its ID in any
//! account (the passkey names its user), a second factor offers only the account's own,
//! a registration excludes the credentials the account has; every verified assertion
//! writes its passkey back (counter, backup state) with the time it was used.

use serde_json::Value;

use super::{
    PasskeyError, Passkeys, RegistrationCeremony, SecondFactorCeremony, SignInCeremony,
    StoredPasskey as Found, VerifiedPasskey,
};
use crate::protocol::{Context, OAuthError};
use crate::store::{StoreError, StoredPasskey, User};

/// Why a passkey step failed: the answer (the person is told why, [`PasskeyError`]'s
/// words), or the server (storage, configuration: logged, never shown).
#[derive(Debug)]
pub enum Failure {
    Refused(PasskeyError),
    Server(OAuthError),
}

impl From<PasskeyError> for Failure {
    fn from(e: PasskeyError) -> Self {
        if e.is_server_fault() {
            Self::Server(OAuthError::server(e))
        } else {
            Self::Refused(e)
        }
    }
}

impl From<OAuthError> for Failure {
    fn from(e: OAuthError) -> Self {
        Self::Server(e)
    }
}

impl From<StoreError> for Failure {
    fn from(e: StoreError) -> Self {
        Self::Server(e.into())
    }
}

/// The options and ceremony of a new passkey for `user`, excluding the credentials they
/// registered already (their authenticators then refuse to make a second one).
pub fn registration_options(
    ctx: &Context<'_>,
    passkeys: &Passkeys,
    user: &User,
) -> Result<(Value, RegistrationCeremony), Failure> {
    let exclude: Vec<String> = ctx
        .store
        .list_passkeys(&user.id)?
        .into_iter()
        .map(|p| p.credential_id)
        .collect();
    let display_name = user.name.as_deref().unwrap_or(&user.username);
    Ok(passkeys.start_registration(&user.id, &user.username, display_name, &exclude, ctx.now)?)
}

/// The options and ceremony of a passkey as the second factor of `user_id`: only their
/// passkeys are allowed.
pub fn second_factor_options(
    ctx: &Context<'_>,
    passkeys: &Passkeys,
    user_id: &str,
) -> Result<(Value, SecondFactorCeremony), Failure> {
    let stored = ctx.store.list_passkeys(user_id)?;
    Ok(passkeys.start_second_factor(user_id, stored.iter().map(|p| &p.passkey), ctx.now)?)
}

/// Verifies a username-less sign-in's `answer` to `ceremony` against the passkey stored
/// under its credential ID (whoever's it is), and records its use.
pub fn verify_sign_in(
    ctx: &Context<'_>,
    passkeys: &Passkeys,
    answer: &str,
    ceremony: SignInCeremony,
) -> Result<VerifiedPasskey, Failure> {
    let mut found = None;
    let verified = passkeys.finish_sign_in(answer, ceremony, ctx.now, |credential_id| {
        found = ctx.store.find_passkey_by_credential_id(credential_id)?;
        Ok::<_, Failure>(found.as_ref().map(as_found))
    })?;
    record_use(ctx, found, &verified)?;
    Ok(verified)
}

/// Verifies `answer` to `ceremony`, the second factor of `user_id`, and records its use.
pub fn verify_second_factor(
    ctx: &Context<'_>,
    passkeys: &Passkeys,
    answer: &str,
    ceremony: SecondFactorCeremony,
    user_id: &str,
) -> Result<VerifiedPasskey, Failure> {
    let mut found = None;
    let verified =
        passkeys.finish_second_factor(answer, ceremony, user_id, ctx.now, |credential_id| {
            found = ctx.store.find_passkey_by_credential_id(credential_id)?;
            Ok::<_, Failure>(found.as_ref().map(as_found))
        })?;
    record_use(ctx, found, &verified)?;
    Ok(verified)
}

fn as_found(passkey: &StoredPasskey) -> Found {
    Found {
        user_id: passkey.user_id.clone(),
        passkey_json: passkey.passkey.clone(),
    }
}

/// Writes the passkey back as the assertion left it (a new counter or backup state; the
/// same passkey otherwise) with the time of its use, if the record is still the one it
/// was verified against. One removed while it was being verified signs nobody in; one
/// another assertion changed meanwhile (its counter moved on) refuses this one, as a
/// counter that did not move past the stored one would be.
fn record_use(
    ctx: &Context<'_>,
    found: Option<StoredPasskey>,
    verified: &VerifiedPasskey,
) -> Result<(), Failure> {
    let stored = found.ok_or(PasskeyError::UnknownCredential)?;
    let passkey = verified
        .updated_passkey_json
        .as_deref()
        .unwrap_or(&stored.passkey);
    if !ctx.store.record_passkey_use(
        &stored.id,
        &stored.passkey,
        passkey,
        verified.backed_up,
        ctx.now,
    )? {
        return Err(match ctx
            .store
            .find_passkey_by_credential_id(&stored.credential_id)?
        {
            Some(_) => PasskeyError::VerificationFailed,
            None => PasskeyError::UnknownCredential,
        }
        .into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::soft_authenticator::Authenticator;
    use super::*;
    use crate::domain::Clock;
    use crate::protocol::passkeys::PasskeySettings;
    use crate::protocol::security::register_passkey;
    use crate::protocol::testing::TestWorld;

    const ORIGIN: &str = "https://login.example.com";

    fn passkeys() -> Passkeys {
        let settings = PasskeySettings::from_issuer(ORIGIN, None, &[])
            .unwrap()
            .unwrap();
        Passkeys::new(&settings).unwrap()
    }

    /// Registers a passkey of `authenticator` for `user`, as the security page does.
    fn register(
        world: &TestWorld,
        passkeys: &Passkeys,
        authenticator: &mut Authenticator,
        user: &User,
    ) -> bool {
        let ctx = world.ctx();
        let (options, ceremony) = registration_options(&ctx, passkeys, user).unwrap();
        let answer = authenticator.create(&options);
        let new = passkeys
            .finish_registration(&answer.to_string(), ceremony, &user.id, ctx.now)
            .unwrap();
        register_passkey(&ctx, user, &new, "Phone", "198.51.100.7").unwrap()
    }

    fn sign_in(
        world: &TestWorld,
        passkeys: &Passkeys,
        authenticator: &mut Authenticator,
    ) -> Result<VerifiedPasskey, Failure> {
        let ctx = world.ctx();
        let (options, ceremony) = passkeys.start_sign_in(ctx.now).unwrap();
        let answer = authenticator.get(&options, 0);
        verify_sign_in(&ctx, passkeys, &answer.to_string(), ceremony)
    }

    #[test]
    fn a_registered_passkey_signs_its_user_in_and_its_use_is_recorded() {
        let world = TestWorld::default();
        let alice = world.add_user("alice");
        let passkeys = passkeys();
        let mut phone = Authenticator::new(ORIGIN);
        assert!(register(&world, &passkeys, &mut phone, &alice));
        let stored = world.store.list_passkeys(&alice.id).unwrap();
        assert_eq!(stored.len(), 1);
        assert_eq!(stored[0].name, "Phone");
        assert_eq!(stored[0].last_used_at, None);
        assert!(stored[0].user_verified && stored[0].backup_eligible);

        world.clock.advance(60);
        let verified = sign_in(&world, &passkeys, &mut phone).unwrap();
        assert_eq!(verified.user_id, alice.id);
        let used = world.store.list_passkeys(&alice.id).unwrap();
        assert_eq!(used[0].last_used_at, Some(world.clock.now()));
    }

    /// Alice, with a registered passkey of a key that counts its signatures.
    fn with_a_counting_key() -> (TestWorld, User, Passkeys, Authenticator) {
        let world = TestWorld::default();
        let alice = world.add_user("alice");
        let passkeys = passkeys();
        let mut key = Authenticator::new(ORIGIN);
        key.counter_step = 1;
        assert!(register(&world, &passkeys, &mut key, &alice));
        (world, alice, passkeys, key)
    }

    #[test]
    fn a_counter_that_moves_on_is_written_back() {
        let (world, alice, passkeys, mut key) = with_a_counting_key();
        let before = world.store.list_passkeys(&alice.id).unwrap()[0]
            .passkey
            .clone();
        sign_in(&world, &passkeys, &mut key).unwrap();
        let after = world.store.list_passkeys(&alice.id).unwrap()[0]
            .passkey
            .clone();
        assert_ne!(before, after, "the new counter is stored");
    }

    #[test]
    fn a_second_factor_checks_the_counter_against_the_record_as_it_is_now() {
        let (world, alice, passkeys, mut key) = with_a_counting_key();
        let ctx = world.ctx();
        // Two ceremonies begin while the stored counter is 0...
        let (options, ceremony) = second_factor_options(&ctx, &passkeys, &alice.id).unwrap();
        let (options_2, ceremony_2) = second_factor_options(&ctx, &passkeys, &alice.id).unwrap();
        // ...then the key signs in elsewhere, and the record's counter moves to 1.
        sign_in(&world, &passkeys, &mut key).unwrap();
        let after_sign_in = world.store.list_passkeys(&alice.id).unwrap().remove(0);
        // A clone of the key as it was (counter 0) answers with 1: above the ceremony's
        // copy, not above the record.
        key.credentials[0].counter = 0;
        let answer = key.get(&options, 0);
        assert!(matches!(
            verify_second_factor(&ctx, &passkeys, &answer.to_string(), ceremony, &alice.id),
            Err(Failure::Refused(PasskeyError::VerificationFailed))
        ));
        // One that answers 0 (as a synced passkey would) once the record counts is no
        // better: only both at 0 is legal.
        key.credentials[0].counter = 0;
        key.counter_step = 0;
        let answer = key.get(&options_2, 0);
        assert!(matches!(
            verify_second_factor(&ctx, &passkeys, &answer.to_string(), ceremony_2, &alice.id),
            Err(Failure::Refused(PasskeyError::VerificationFailed))
        ));
        let now = world.store.list_passkeys(&alice.id).unwrap().remove(0);
        assert_eq!(now, after_sign_in, "nothing written");
        key.counter_step = 1;

        // The key itself, a step on, still works.
        key.credentials[0].counter = 1;
        let (options, ceremony) = second_factor_options(&ctx, &passkeys, &alice.id).unwrap();
        let answer = key.get(&options, 0);
        verify_second_factor(&ctx, &passkeys, &answer.to_string(), ceremony, &alice.id).unwrap();
    }

    #[test]
    fn an_assertion_verified_against_a_record_changed_since_writes_nothing() {
        let (world, alice, passkeys, mut key) = with_a_counting_key();
        let stale = world.store.list_passkeys(&alice.id).unwrap().remove(0);
        // Another assertion is recorded (counter 1) while this one is verified against
        // the record as it was (counter 0), with counter 2.
        sign_in(&world, &passkeys, &mut key).unwrap();
        let current = world.store.list_passkeys(&alice.id).unwrap().remove(0);
        let ctx = world.ctx();
        let (options, ceremony) = passkeys.start_sign_in(ctx.now).unwrap();
        let answer = key.get(&options, 0);
        let verified = passkeys
            .finish_sign_in(&answer.to_string(), ceremony, ctx.now, |_| {
                Ok::<_, Failure>(Some(as_found(&stale)))
            })
            .unwrap();
        assert!(matches!(
            record_use(&ctx, Some(stale), &verified),
            Err(Failure::Refused(PasskeyError::VerificationFailed))
        ));
        let now = world.store.list_passkeys(&alice.id).unwrap().remove(0);
        assert_eq!(now, current, "the newer record stands");
    }

    #[test]
    fn a_credential_no_account_has_or_one_removed_is_refused() {
        let world = TestWorld::default();
        let alice = world.add_user("alice");
        let passkeys = passkeys();
        let mut stranger = Authenticator::new(ORIGIN);
        // A credential made for this RP but never registered here.
        let (options, _) = passkeys
            .start_registration("someone", "someone", "", &[], world.clock.now())
            .unwrap();
        stranger.create(&options);
        assert!(matches!(
            sign_in(&world, &passkeys, &mut stranger),
            Err(Failure::Refused(PasskeyError::UnknownCredential))
        ));

        let mut phone = Authenticator::new(ORIGIN);
        assert!(register(&world, &passkeys, &mut phone, &alice));
        let id = world.store.list_passkeys(&alice.id).unwrap()[0].id.clone();
        assert!(world.store.remove_passkey(&alice.id, &id).unwrap());
        assert!(matches!(
            sign_in(&world, &passkeys, &mut phone),
            Err(Failure::Refused(PasskeyError::UnknownCredential))
        ));
    }

    #[test]
    fn a_second_factor_offers_and_accepts_only_the_accounts_own_passkeys() {
        let world = TestWorld::default();
        let alice = world.add_user("alice");
        let bob = world.add_user("bob");
        let passkeys = passkeys();
        let mut alices = Authenticator::new(ORIGIN);
        let mut bobs = Authenticator::new(ORIGIN);
        assert!(register(&world, &passkeys, &mut alices, &alice));
        assert!(register(&world, &passkeys, &mut bobs, &bob));
        let ctx = world.ctx();
        let (options, ceremony) = second_factor_options(&ctx, &passkeys, &alice.id).unwrap();
        assert_eq!(options["allowCredentials"].as_array().unwrap().len(), 1);
        let answer = alices.get(&options, 0);
        let verified =
            verify_second_factor(&ctx, &passkeys, &answer.to_string(), ceremony, &alice.id)
                .unwrap();
        assert_eq!(verified.user_id, alice.id);

        let (options, ceremony) = second_factor_options(&ctx, &passkeys, &alice.id).unwrap();
        let answer = bobs.get(&options, 0);
        assert!(matches!(
            verify_second_factor(&ctx, &passkeys, &answer.to_string(), ceremony, &alice.id),
            Err(Failure::Refused(_))
        ));
        let carol = world.add_user("carol");
        assert!(matches!(
            second_factor_options(&ctx, &passkeys, &carol.id),
            Err(Failure::Refused(PasskeyError::NoPasskeys))
        ));
    }

    #[test]
    fn a_registration_excludes_the_accounts_credentials_and_a_taken_one_is_not_stored() {
        let world = TestWorld::default();
        let alice = world.add_user("alice");
        let bob = world.add_user("bob");
        let passkeys = passkeys();
        let mut phone = Authenticator::new(ORIGIN);
        assert!(register(&world, &passkeys, &mut phone, &alice));
        let ctx = world.ctx();
        let (options, _) = registration_options(&ctx, &passkeys, &alice).unwrap();
        assert_eq!(options["excludeCredentials"].as_array().unwrap().len(), 1);

        // The same credential offered for another account: the store refuses it.
        let stored = world.store.list_passkeys(&alice.id).unwrap().remove(0);
        let again = super::super::NewPasskey {
            user_id: bob.id.clone(),
            credential_id: stored.credential_id.clone(),
            passkey_json: stored.passkey.clone(),
            user_verified: true,
            backup_eligible: true,
            backed_up: true,
        };
        assert!(!register_passkey(&ctx, &bob, &again, "Stolen", "198.51.100.7").unwrap());
        assert!(world.store.list_passkeys(&bob.id).unwrap().is_empty());
    }
}
