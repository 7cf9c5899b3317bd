//! The sign-in's reads and writes of an account's factors, over the store: what the HTTP
//! adapter's [`super::SignInPorts`] run on the blocking pool. The checks themselves are
//! `protocol::factors`; the single use of each code is the store's compare-and-set.

use super::AccountFactors;
use crate::protocol::factors::{qr, recovery, totp};
use crate::protocol::{Context, OAuthError};

/// What the account has (`None`: no such account).
pub fn account_factors(
    ctx: &Context<'_>,
    user_id: &str,
) -> Result<Option<AccountFactors>, OAuthError> {
    let Some(user) = ctx.store.find_user(user_id)? else {
        return Ok(None);
    };
    let summary = ctx.store.factor_summary(user_id)?;
    Ok(Some(AccountFactors {
        disabled: user.disabled_at.is_some(),
        mfa_required: user.mfa_required,
        one_time_codes: summary.totp.is_some(),
        passkeys: ctx.config.passkeys && !summary.passkeys.is_empty(),
        recovery_codes: summary.recovery_codes_left > 0,
    }))
}

/// Checks `code` against the account's TOTP credential and uses its time step up: at
/// most once, on every instance (RFC 6238 §5.2, the store's compare-and-set). A pending
/// enrolment is confirmed by its first right code, which is used up the same way, and
/// only by the flow that showed it (`enrolling`: its sealed key).
pub fn use_one_time_code(
    ctx: &Context<'_>,
    user_id: &str,
    code: &str,
    enrolling: Option<&str>,
) -> Result<bool, OAuthError> {
    let Some(credential) = ctx.store.find_totp(user_id)? else {
        return Ok(false);
    };
    if !credential.is_confirmed() && enrolling != Some(credential.sealed_secret.as_str()) {
        return Ok(false);
    }
    let secret = totp::TotpSecret::unseal(ctx.kek, &credential.sealed_secret, user_id)
        .map_err(OAuthError::server)?;
    let Some(step) = totp::check(&secret, code, ctx.now) else {
        return Ok(false);
    };
    Ok(if credential.is_confirmed() {
        ctx.store.use_totp_step(user_id, step, ctx.now)?
    } else {
        ctx.store
            .confirm_totp(user_id, &credential.sealed_secret, step, ctx.now)?
    })
}

/// Uses up `code` if it is one of the account's recovery codes not used yet.
pub fn use_recovery_code(ctx: &Context<'_>, user_id: &str, code: &str) -> Result<bool, OAuthError> {
    let Some(hash) = recovery::hash(ctx.kek, user_id, code) else {
        return Ok(false);
    };
    Ok(ctx.store.use_recovery_code(user_id, &hash, ctx.now)?)
}

/// A TOTP enrolment as its page shows it: the key as text and as an `otpauth://` URI,
/// and that URI as a QR code; `sealed`, the key as stored, names it to its flow.
#[derive(Clone)]
pub struct Enrolment {
    pub secret: String,
    pub uri: String,
    pub qr_svg: String,
    pub sealed: String,
}

/// The key is a credential: never in a log line.
impl std::fmt::Debug for Enrolment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Enrolment([redacted])")
    }
}

/// The account's TOTP enrolment for one flow (a sign-in, a security page): the one that
/// flow showed before (`shown`, its sealed key) while it is still pending, else a new key
/// that replaces any other pending one. A pending key is never shown to another flow (a
/// key begun on the security page must not appear on a sign-in's enrolment page, nor the
/// other way round). `None` if the account has a confirmed credential already (remove it
/// first). `label` names the account in the authenticator app, `issuer` the provider.
pub fn enrolment(
    ctx: &Context<'_>,
    user_id: &str,
    label: &str,
    issuer: &str,
    shown: Option<&str>,
) -> Result<Option<Enrolment>, OAuthError> {
    let pending = match ctx.store.find_totp(user_id)? {
        Some(c) if c.is_confirmed() => return Ok(None),
        Some(c) if shown == Some(c.sealed_secret.as_str()) => Some(c.sealed_secret),
        _ => None,
    };
    let (secret, sealed) = match pending {
        Some(sealed) => (
            totp::TotpSecret::unseal(ctx.kek, &sealed, user_id).map_err(OAuthError::server)?,
            sealed,
        ),
        None => {
            let secret = totp::TotpSecret::generate();
            let sealed = secret.seal(ctx.kek, user_id).map_err(OAuthError::server)?;
            if !ctx.store.begin_totp(user_id, &sealed, ctx.now)? {
                return Ok(None);
            }
            (secret, sealed)
        }
    };
    let uri = totp::otpauth_uri(&secret, issuer, label);
    let qr_svg = qr::qr_svg(&uri, "QR code").unwrap_or_default();
    Ok(Some(Enrolment {
        secret: secret.to_base32(),
        uri,
        qr_svg,
        sealed,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::testing::TestWorld;

    /// Alice's authenticator app, pending (shown, not confirmed yet): its sealed key and
    /// the code it shows now.
    fn pending(world: &TestWorld) -> (String, String) {
        let alice = world.add_user("alice");
        let ctx = world.ctx();
        let shown = enrolment(&ctx, &alice.id, "alice", "Portcullis", None)
            .unwrap()
            .unwrap();
        let secret = totp::TotpSecret::unseal(ctx.kek, &shown.sealed, &alice.id).unwrap();
        let code = totp::code_at(&secret, ctx.now, totp::DIGITS).unwrap();
        (shown.sealed, code)
    }

    #[test]
    fn a_pending_app_is_confirmed_only_by_the_flow_that_showed_it_then_each_code_works_once() {
        let world = TestWorld::default();
        let (sealed, code) = pending(&world);
        let ctx = world.ctx();
        let alice = "alice-id";
        assert!(!use_one_time_code(&ctx, "nobody-id", &code, None).unwrap());
        // Not by another flow, nor by a sign-in that was shown nothing.
        assert!(!use_one_time_code(&ctx, alice, &code, None).unwrap());
        assert!(!use_one_time_code(&ctx, alice, &code, Some("another key")).unwrap());
        let wrong = if code == "123456" { "654321" } else { "123456" };
        assert!(!use_one_time_code(&ctx, alice, wrong, Some(&sealed)).unwrap());
        assert!(use_one_time_code(&ctx, alice, &code, Some(&sealed)).unwrap());
        assert!(ctx.store.find_totp(alice).unwrap().unwrap().is_confirmed());
        // Confirmed: the same code again is refused (RFC 6238 §5.2), the next step's
        // code works, once.
        assert!(!use_one_time_code(&ctx, alice, &code, None).unwrap());
        world.clock.advance(i64::try_from(totp::PERIOD).unwrap());
        let later = world.ctx();
        let secret = totp::TotpSecret::unseal(later.kek, &sealed, alice).unwrap();
        let next = totp::code_at(&secret, later.now, totp::DIGITS).unwrap();
        assert!(use_one_time_code(&later, alice, &next, None).unwrap());
        assert!(!use_one_time_code(&later, alice, &next, None).unwrap());
        // A confirmed app is shown to nobody again.
        assert!(
            enrolment(&later, alice, "alice", "Portcullis", Some(&sealed))
                .unwrap()
                .is_none()
        );
    }

    #[test]
    fn recovery_codes_count_while_one_is_left_and_each_works_once() {
        let world = TestWorld::default();
        let alice = world.add_user("alice");
        let ctx = world.ctx();
        let factors = |ctx: &Context<'_>| account_factors(ctx, &alice.id).unwrap().unwrap();
        assert!(!factors(&ctx).recovery_codes, "none yet");
        assert_eq!(account_factors(&ctx, "nobody-id").unwrap(), None);
        let codes = [recovery::generate()[0].clone()];
        let hashes = recovery::hashes(ctx.kek, &alice.id, &codes);
        ctx.store
            .replace_recovery_codes(&alice.id, &hashes, ctx.now)
            .unwrap();
        assert!(factors(&ctx).recovery_codes, "one left");
        assert!(!use_recovery_code(&ctx, &alice.id, "not-a-code").unwrap());
        assert!(use_recovery_code(&ctx, &alice.id, &codes[0]).unwrap());
        assert!(
            !use_recovery_code(&ctx, &alice.id, &codes[0]).unwrap(),
            "once"
        );
        assert!(!factors(&ctx).recovery_codes, "none left");
    }

    #[test]
    fn an_enrolment_prints_no_key() {
        let world = TestWorld::default();
        let alice = world.add_user("alice");
        let shown = enrolment(&world.ctx(), &alice.id, "alice", "Portcullis", None)
            .unwrap()
            .unwrap();
        assert_eq!(format!("{shown:?}"), "Enrolment([redacted])");
    }

    #[test]
    fn an_enrolment_shows_its_flow_the_same_key_and_another_flow_a_new_one() {
        let world = TestWorld::default();
        let (sealed, _) = pending(&world);
        let ctx = world.ctx();
        let again = enrolment(&ctx, "alice-id", "alice", "Portcullis", Some(&sealed))
            .unwrap()
            .unwrap();
        assert_eq!(again.sealed, sealed, "the page reloaded shows the same key");
        assert!(again.uri.starts_with("otpauth://totp/"), "{}", again.uri);
        let other = enrolment(&ctx, "alice-id", "alice", "Portcullis", None)
            .unwrap()
            .unwrap();
        assert_ne!(other.sealed, sealed, "another flow gets a key of its own");
        let stored = ctx.store.find_totp("alice-id").unwrap().unwrap();
        assert_eq!(
            stored.sealed_secret, other.sealed,
            "which replaces the pending one"
        );
    }
}
