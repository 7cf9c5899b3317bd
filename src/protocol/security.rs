//! The account's own changes to how it signs in: an authenticator app (TOTP) added or
//! removed, a new set of recovery codes, a passkey registered, renamed or removed, a new
//! password. Each needs a
//! recent sign-in at the account's full strength ([`may_change_factors`]): a session left
//! open an hour ago, or one signed in by the password alone on an account that has a
//! second factor, changes nothing (Keycloak CVE-2026-37982 and Pocket ID
//! GHSA-hp74-gm6m-2qm5 show what a weaker check lets through). Nothing here is reached by
//! a link: every change is a form of a signed-in session.

use serde_json::json;

use super::factors::recovery;
use super::passkeys::NewPasskey;
use super::sign_in::recent_enough;
use super::sign_in::stored::{self, Enrolment};
use super::{Context, OAuthError};
use crate::crypto::password::hash_password;
use crate::crypto::tokens::constant_time_eq;
use crate::domain::{Level, PasswordRuleError, Secret, check_chosen_password};
use crate::sessions::SsoSession;
use crate::store::{AdminChange, EndedSessions, NewAuditEvent, StoreError, StoredPasskey, User};

/// How long after a sign-in its methods count as recent.
pub use super::sign_in::RECENT;

/// The level the account signs in at: two factors once it has a second one (as the
/// server's policy allows: with `mfa = off`, one).
pub fn account_level(ctx: &Context<'_>, user_id: &str) -> Result<Level, OAuthError> {
    let summary = ctx.store.factor_summary(user_id)?;
    // Passkeys count only while the server has them (an issuer moved to an IP address
    // must not lock their owners out of this page).
    let usable = summary.totp.is_some() || (ctx.config.passkeys && !summary.passkeys.is_empty());
    let own = if usable {
        Level::MultiFactor
    } else {
        Level::SingleFactor
    };
    Ok(ctx.config.mfa.required(own))
}

/// Whether `session` may change the account's factors now: its methods reaching the
/// account's level were proved in the last [`RECENT`] seconds.
pub fn may_change_factors(ctx: &Context<'_>, session: &SsoSession) -> Result<bool, OAuthError> {
    let level = account_level(ctx, &session.user_id)?;
    Ok(recent_enough(session, level, ctx.now, RECENT))
}

/// Records a second factor's use, failure or throttling in a sign-in, or its enrolment
/// there, in the audit trail (table and log line); never the code or assertion itself.
pub fn record_sign_in_event(
    ctx: &Context<'_>,
    user_id: &str,
    action: &str,
    kind: &str,
    address: &str,
) -> Result<(), OAuthError> {
    let actor = match ctx.store.find_user(user_id)? {
        Some(user) => format!("user:{}", user.username),
        None => "system".to_owned(),
    };
    ctx.store.record_audit_event(&NewAuditEvent {
        at: ctx.now,
        actor,
        action: action.to_owned(),
        target: Some(user_id.to_owned()),
        address: Some(address.to_owned()),
        details: Some(json!({ "kind": kind }).to_string()),
    })?;
    Ok(())
}

/// Records a change the user made to their own factors, in the audit trail.
fn audited(
    ctx: &Context<'_>,
    user: &User,
    action: &str,
    kind: &str,
    address: &str,
) -> Result<(), OAuthError> {
    ctx.store.record_audit_event(&NewAuditEvent {
        at: ctx.now,
        actor: format!("user:{}", user.username),
        action: action.to_owned(),
        target: Some(user.id.clone()),
        address: Some(address.to_owned()),
        details: Some(json!({ "kind": kind }).to_string()),
    })?;
    if action == "factor.enrolled" {
        crate::audit::factor_enrolled(&user.id, kind, address);
    } else {
        crate::audit::factor_removed(&user.id, kind, address);
    }
    Ok(())
}

/// The enrolment of an authenticator app this page shows: the one it showed before
/// (`shown`, its sealed key) while pending, else a new one; `None` when the account has
/// one already. Refused with `mfa = off`: no second factor is offered.
pub fn begin_totp(
    ctx: &Context<'_>,
    user: &User,
    issuer: &str,
    shown: Option<&str>,
) -> Result<Option<Enrolment>, OAuthError> {
    if ctx.config.mfa == crate::domain::MfaPolicy::Off {
        return Err(OAuthError::invalid_request("second factors are turned off"));
    }
    stored::enrolment(ctx, &user.id, &user.username, issuer, shown)
}

/// Confirms the enrolment this page showed (`shown`, its sealed key) with its first
/// code; `false` for a wrong code, or an enrolment replaced meanwhile.
pub fn confirm_totp(
    ctx: &Context<'_>,
    user: &User,
    code: &str,
    shown: &str,
    address: &str,
) -> Result<bool, OAuthError> {
    let pending = ctx
        .store
        .find_totp(&user.id)?
        .is_some_and(|c| !c.is_confirmed());
    if !pending || !stored::use_one_time_code(ctx, &user.id, code, Some(shown))? {
        return Ok(false);
    }
    audited(ctx, user, "factor.enrolled", "totp", address)?;
    Ok(true)
}

pub fn remove_totp(ctx: &Context<'_>, user: &User, address: &str) -> Result<bool, OAuthError> {
    let removed = ctx.store.remove_totp(&user.id)?;
    if removed {
        audited(ctx, user, "factor.removed", "totp", address)?;
    }
    Ok(removed)
}

/// A new set of recovery codes, shown once: the old set stops working.
pub fn new_recovery_codes(
    ctx: &Context<'_>,
    user: &User,
    address: &str,
) -> Result<[String; recovery::COUNT], OAuthError> {
    let codes = recovery::generate();
    let hashes = recovery::hashes(ctx.kek, &user.id, &codes);
    ctx.store
        .replace_recovery_codes(&user.id, &hashes, ctx.now)?;
    audited(ctx, user, "factor.enrolled", "recovery_codes", address)?;
    Ok(codes)
}

/// The most passkeys one account keeps.
pub const MAX_PASSKEYS: usize = 20;

/// The longest passkey name kept (what the page shows fits a line).
const MAX_PASSKEY_NAME: usize = 60;

/// A passkey's name as kept: trimmed, without control characters, bounded.
fn passkey_name(name: &str) -> String {
    name.trim()
        .chars()
        .filter(|c| !c.is_control())
        .take(MAX_PASSKEY_NAME)
        .collect::<String>()
        .trim()
        .to_owned()
}

/// The record of a passkey the registration ceremony verified, for its account
/// (`new.user_id`), named `name` ("Passkey" if that is empty once cleaned).
pub fn passkey_record(new: &NewPasskey, name: &str, now: crate::domain::UnixTime) -> StoredPasskey {
    let name = match passkey_name(name) {
        name if name.is_empty() => "Passkey".to_owned(),
        name => name,
    };
    StoredPasskey {
        id: crate::crypto::tokens::random_uuid(),
        user_id: new.user_id.clone(),
        credential_id: new.credential_id.clone(),
        name,
        passkey: new.passkey_json.clone(),
        created_at: now,
        last_used_at: None,
        backup_eligible: new.backup_eligible,
        backed_up: new.backed_up,
        user_verified: new.user_verified,
    }
}

/// Keeps a passkey the registration ceremony verified as the user's, named `name`
/// ("Passkey" if that is empty once cleaned), and audits it.
/// `false`, and nothing written, when the credential is registered already, to this
/// account or another (WebAuthn L3 §7.1 step 26).
pub fn register_passkey(
    ctx: &Context<'_>,
    user: &User,
    new: &NewPasskey,
    name: &str,
    address: &str,
) -> Result<bool, OAuthError> {
    if new.user_id != user.id {
        return Err(OAuthError::invalid_request(
            "this passkey was made for another account",
        ));
    }
    // Every second-factor ceremony lists them all: a bound keeps that answer small.
    if ctx.store.list_passkeys(&user.id)?.len() >= MAX_PASSKEYS {
        return Err(OAuthError::invalid_request(
            "this account has as many passkeys as it may have; remove one first",
        ));
    }
    let passkey = passkey_record(new, name, ctx.now);
    match ctx.store.insert_passkey(&passkey) {
        Ok(()) => {}
        Err(StoreError::Conflict) => return Ok(false),
        Err(e) => return Err(e.into()),
    }
    audited(ctx, user, "factor.enrolled", "passkey", address)?;
    Ok(true)
}

/// Renames one of the user's passkeys; `false` if it is not theirs.
pub fn rename_passkey(
    ctx: &Context<'_>,
    user: &User,
    id: &str,
    name: &str,
) -> Result<bool, OAuthError> {
    let name = passkey_name(name);
    if name.is_empty() {
        return Err(OAuthError::invalid_request("a passkey needs a name"));
    }
    Ok(ctx.store.rename_passkey(&user.id, id, &name)?)
}

/// Removes one of the user's passkeys; `false` if it is not theirs.
pub fn remove_passkey(
    ctx: &Context<'_>,
    user: &User,
    id: &str,
    address: &str,
) -> Result<bool, OAuthError> {
    // An account without a password (made by invitation with a passkey) signs in by its
    // passkeys alone: the last one stays until a password is set (a reset by mail), or
    // while no upstream identity is linked (issue 24: a link is a way in too).
    if user.password_hash.is_empty() && ctx.store.list_upstream_identities(&user.id)?.is_empty() {
        let passkeys = ctx.store.list_passkeys(&user.id)?;
        if passkeys.len() == 1 && passkeys[0].id == id {
            return Err(OAuthError::invalid_request(
                "the last passkey of an account without a password cannot be removed; set a password first",
            ));
        }
    }
    let removed = ctx.store.remove_passkey(&user.id, id)?;
    if removed {
        audited(ctx, user, "factor.removed", "passkey", address)?;
    }
    Ok(removed)
}

/// Why a new password from the security page is refused (nothing is changed).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NewPasswordRefused {
    /// The two entries differ.
    Mismatch,
    /// It breaks the password rule.
    Rule(PasswordRuleError),
}

/// Whether `password` (typed twice: `again`) may be `user`'s new password: both entries
/// agree, and it meets the password rule (length, and not guessable from what is known
/// of the user).
pub fn check_new_password(
    user: &User,
    password: &Secret<String>,
    again: &Secret<String>,
) -> Result<(), NewPasswordRefused> {
    if !constant_time_eq(password.expose().as_bytes(), again.expose().as_bytes()) {
        return Err(NewPasswordRefused::Mismatch);
    }
    let email = user.email.as_deref().unwrap_or_default();
    let name = user.name.as_deref().unwrap_or_default();
    check_chosen_password(password, &[&user.username, email, name])
        .map_err(NewPasswordRefused::Rule)
}

/// The user's own change of their password. Like an administrator's, it ends every
/// session and grant of the user, this session included (their apps are told): whoever
/// signed in with the old password, or holds a token got with it, is out. The caller
/// forgets the ended sessions' records (`sign_out::forget`). `Ok(Err(_))`: refused,
/// nothing changed.
pub fn change_password(
    ctx: &Context<'_>,
    user: &User,
    password: &Secret<String>,
    again: &Secret<String>,
    address: &str,
) -> Result<Result<EndedSessions, NewPasswordRefused>, OAuthError> {
    if let Err(refused) = check_new_password(user, password, again) {
        return Ok(Err(refused));
    }
    let hash = hash_password(password).map_err(OAuthError::server)?;
    let event = NewAuditEvent {
        at: ctx.now,
        actor: format!("user:{}", user.username),
        action: "user.password_changed".to_owned(),
        target: Some(user.id.clone()),
        address: Some(address.to_owned()),
        details: None,
    };
    let change = AdminChange::SetPassword {
        user_id: &user.id,
        hash: &hash,
    };
    let ended = ctx
        .store
        .apply_audited(change, &event)?
        .ok_or_else(|| OAuthError::invalid_request("this account no longer exists"))?;
    crate::audit::password_changed(&user.id);
    crate::audit::sessions_ended(&user.id, ended.sessions.len(), "password_changed");
    Ok(Ok(ended))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::testing::{TestWorld, config};
    use crate::store::StoredPasskey;

    fn with_a_passkey(world: &TestWorld, user: &User, n: usize) {
        let now = world.ctx().now;
        world
            .store
            .insert_passkey(&StoredPasskey {
                id: format!("pk-{n}"),
                user_id: user.id.clone(),
                credential_id: format!("cred-{n}"),
                name: "Laptop".into(),
                passkey: "{}".into(),
                created_at: now,
                last_used_at: None,
                backup_eligible: true,
                backed_up: true,
                user_verified: true,
            })
            .unwrap();
    }

    fn secret(text: &str) -> Secret<String> {
        Secret::new(text.to_owned())
    }

    #[test]
    fn the_last_passkey_of_an_account_without_a_password_stays() {
        let world = TestWorld::default();
        let mut pia = world.add_user("pia");
        pia.password_hash = String::new();
        with_a_passkey(&world, &pia, 1);
        with_a_passkey(&world, &pia, 2);
        let ctx = world.ctx();
        assert!(remove_passkey(&ctx, &pia, "pk-1", "192.0.2.1").unwrap());
        assert!(remove_passkey(&ctx, &pia, "pk-2", "192.0.2.1").is_err());
        assert_eq!(world.store.list_passkeys(&pia.id).unwrap().len(), 1);
        // With a password, the last passkey may go.
        let mut bob = world.add_user("bob");
        bob.password_hash = "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA".to_owned();
        with_a_passkey(&world, &bob, 3);
        assert!(remove_passkey(&ctx, &bob, "pk-3", "192.0.2.1").unwrap());
        // With a linked upstream identity (issue 24), too: it is a way in.
        let linked = world
            .store
            .link_upstream_identity(
                &crate::store::UpstreamIdentity {
                    issuer: "https://id.example".into(),
                    subject: "s".into(),
                    provider: "corp".into(),
                    user_id: Some(pia.id.clone()),
                    email: None,
                    created_at: ctx.now,
                    last_used_at: None,
                    unlinked_at: None,
                },
                &crate::store::NewAuditEvent {
                    at: ctx.now,
                    actor: "user:pia".into(),
                    action: "upstream.linked".into(),
                    target: Some(pia.id.clone()),
                    address: None,
                    details: None,
                },
            )
            .unwrap();
        assert!(linked);
        assert!(remove_passkey(&ctx, &pia, "pk-2", "192.0.2.1").unwrap());
        assert!(world.store.list_passkeys(&pia.id).unwrap().is_empty());
    }

    #[test]
    fn a_new_password_is_refused_unless_both_entries_agree_and_it_meets_the_rule() {
        let world = TestWorld::default();
        let alice = world.add_user("alice");
        let ctx = world.ctx();
        let change = |a: &str, b: &str| {
            change_password(&ctx, &alice, &secret(a), &secret(b), "198.51.100.7").unwrap()
        };
        assert_eq!(
            change("long enough", "long enougH").unwrap_err(),
            NewPasswordRefused::Mismatch
        );
        assert_eq!(
            change("short", "short").unwrap_err(),
            NewPasswordRefused::Rule(PasswordRuleError::Length)
        );
        assert_eq!(
            change("alice2024!", "alice2024!").unwrap_err(),
            NewPasswordRefused::Rule(PasswordRuleError::Guessable)
        );
        let unchanged = world.store.find_user(&alice.id).unwrap().unwrap();
        assert_eq!(unchanged.password_hash, "", "nothing written");
        assert!(world.store.list_audit_events(None, 10).unwrap().is_empty());
    }

    #[test]
    fn a_changed_password_is_hashed_audited_and_ends_the_users_sessions() {
        let world = TestWorld::default();
        let alice = world.add_user("alice");
        world.clock.advance(10);
        let ctx = world.ctx();
        let session = crate::store::BrowserSession {
            sid: "sid-1".into(),
            user_id: alice.id.clone(),
            store_key: "key-1".into(),
            created_at: ctx.now - 5,
            expires_at: ctx.now + 3600,
            ended_at: None,
            user_agent: None,
            ip_address: None,
        };
        assert!(world.store.record_session(&session).unwrap());
        let pending = |purpose| {
            crate::protocol::links::issue(&ctx, purpose, Some(&alice.id), "x@example.com", None)
                .unwrap()
                .token
        };
        use crate::protocol::links::{LinkPurpose, LinkRefused, take};
        let (reset, moving) = (
            pending(LinkPurpose::PasswordReset),
            pending(LinkPurpose::EmailChange),
        );
        let ended = change_password(
            &ctx,
            &alice,
            &secret("violet tugboat anthem drizzle"),
            &secret("violet tugboat anthem drizzle"),
            "198.51.100.7",
        )
        .unwrap()
        .unwrap();
        let sids: Vec<&str> = ended.sessions.iter().map(|s| s.sid.as_str()).collect();
        assert_eq!(sids, ["sid-1"]);
        assert_eq!(
            ended.sessions[0].store_key, "key-1",
            "its record is to be forgotten"
        );
        let changed = world.store.find_user(&alice.id).unwrap().unwrap();
        assert!(changed.password_hash.starts_with("$argon2id$"));
        assert!(
            !changed.accepts_session_from(ctx.now),
            "no session from before the change speaks for the user"
        );
        let events = world.store.list_audit_events(None, 10).unwrap();
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].action, "user.password_changed");
        assert_eq!(events[0].actor, "user:alice");
        assert_eq!(events[0].target.as_deref(), Some(alice.id.as_str()));
        // A pending change of address, and a reset link, end with the old password.
        for (purpose, token) in [
            (LinkPurpose::PasswordReset, &reset),
            (LinkPurpose::EmailChange, &moving),
        ] {
            assert_eq!(
                take(&ctx, purpose, token.expose()).unwrap(),
                Err(LinkRefused::Used)
            );
        }
    }

    #[test]
    fn passkeys_count_toward_the_accounts_level_only_while_the_server_has_them() {
        let world = TestWorld::with_config(config());
        let alice = world.add_user("alice");
        assert_eq!(
            account_level(&world.ctx(), &alice.id).unwrap(),
            Level::SingleFactor
        );
        with_a_passkey(&world, &alice, 1);
        assert_eq!(
            account_level(&world.ctx(), &alice.id).unwrap(),
            Level::MultiFactor
        );
        let factors = stored::account_factors(&world.ctx(), &alice.id)
            .unwrap()
            .unwrap();
        assert!(factors.passkeys);
        // The issuer moved to an IP address: the passkey is no factor its owner can use.
        let off = TestWorld::with_config(crate::protocol::ProtocolConfig {
            passkeys: false,
            ..config()
        });
        let bob = off.add_user("bob");
        with_a_passkey(&off, &bob, 2);
        assert_eq!(
            account_level(&off.ctx(), &bob.id).unwrap(),
            Level::SingleFactor
        );
        let factors = stored::account_factors(&off.ctx(), &bob.id)
            .unwrap()
            .unwrap();
        assert!(!factors.passkeys, "not offered, not required");
    }
}
