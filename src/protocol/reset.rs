//! Password reset (issue 23 §3): "Forgot your password?" sends a link to the account's
//! address; the link, opened in a browser, leads through the account's second factors
//! (the sign-in machine's own step, [`SignIn::for_reset`](super::sign_in::SignIn::for_reset))
//! to a form for the new password. Completing it uses the link (once, by a conditional
//! UPDATE), sets the password, ends every session and grant of the user (their apps are
//! told by back-channel logout), retires the user's other reset links and any pending
//! change of address, and queues the user's notice: one transaction
//! (`AdminChange::ResetPassword`), so nothing is half done.
//!
//! The request says the same whether or not an account has the address: the caller
//! answers before this runs (see `http::pages::reset`), so no stopwatch tells either.

use serde_json::json;

use super::interaction::PendingReset;
use super::links::{self, LinkPurpose, LinkRefused};
use super::security::{NewPasswordRefused, check_new_password};
use super::sign_in::{AccountFactors, stored};
use super::{Context, OAuthError};
use crate::crypto::password::hash_password;
use crate::crypto::tokens::token_hash;
use crate::domain::Secret;
use crate::mail::{EmailAddress, Link, Locale, MailKind, Outgoing};
use crate::store::{ActionLink, AdminChange, EndedSessions, NewAuditEvent, User};

/// A request for a reset link.
pub struct ResetRequest<'a> {
    /// The address typed on the request form.
    pub email: &'a str,
    /// The language of the page the request came from: the mail's.
    pub locale: Locale,
    /// The absolute URL of the link page; the token goes in its `code` parameter.
    pub link_page: &'a str,
    /// The client address, for the audit trail.
    pub address: &'a str,
}

/// Sends a reset link to every enabled account with the address (a few at most); how
/// many were queued, which the caller never shows. An address that is no address, or
/// no account's, sends nothing.
pub fn request(ctx: &Context<'_>, request: &ResetRequest<'_>) -> Result<usize, OAuthError> {
    let Ok(typed) = EmailAddress::parse(request.email) else {
        return Ok(0);
    };
    let mut sent = 0;
    for user in ctx.store.find_users_by_email(typed.as_str())? {
        if user.disabled_at.is_some() {
            continue;
        }
        let Some(to) = user
            .email
            .as_deref()
            .and_then(|e| EmailAddress::parse(e).ok())
        else {
            continue;
        };
        let purpose = LinkPurpose::PasswordReset;
        let new = links::issue(ctx, purpose, Some(&user.id), to.as_str(), None)?;
        let link = Link::new(format!("{}?code={}", request.link_page, new.token.expose()))
            .map_err(OAuthError::server)?;
        Outgoing {
            to,
            locale: request.locale,
            kind: MailKind::PasswordReset {
                link,
                valid_minutes: minutes(purpose),
            },
        }
        .send_later(ctx.store, ctx.kek, ctx.now)
        .map_err(OAuthError::server)?;
        // The event names the account and where the request came from, never the link.
        ctx.store.record_audit_event(&NewAuditEvent {
            at: ctx.now,
            actor: "system".to_owned(),
            action: "user.password_reset_requested".to_owned(),
            target: Some(user.id.clone()),
            address: Some(request.address.to_owned()),
            details: None,
        })?;
        crate::audit::password_reset_requested(&user.id, request.address);
        sent += 1;
    }
    Ok(sent)
}

fn minutes(purpose: LinkPurpose) -> u32 {
    u32::try_from(purpose.lifetime() / 60).unwrap_or(u32::MAX)
}

/// A reset link that works now, and the account it resets.
#[derive(Clone, Debug)]
pub struct Opened {
    /// The hash of the link: what pages keep between steps.
    pub link_hash: String,
    pub user: User,
}

/// The reset link `token` names, if it works now: unused, unexpired, its account enabled
/// and still at the address it was sent to. Nothing is used.
pub fn open(ctx: &Context<'_>, token: &str) -> Result<Result<Opened, LinkRefused>, OAuthError> {
    if token.len() > 128 {
        return Ok(Err(LinkRefused::Unknown));
    }
    opened(ctx, &token_hash(token))
}

/// [`open`] by the link's hash (the pages after the link's own).
pub fn opened(
    ctx: &Context<'_>,
    link_hash: &str,
) -> Result<Result<Opened, LinkRefused>, OAuthError> {
    let link = match links::look_up_hashed(ctx, LinkPurpose::PasswordReset, link_hash)? {
        Ok(link) => link,
        Err(refused) => return Ok(Err(refused)),
    };
    Ok(match account_of(ctx, &link)? {
        Some(user) => Ok(Opened {
            link_hash: link_hash.to_owned(),
            user,
        }),
        None => Err(LinkRefused::Unknown),
    })
}

/// The enabled account `link` speaks for, if its address is still the one the link
/// was sent to: a link outlives no change of address.
fn account_of(ctx: &Context<'_>, link: &ActionLink) -> Result<Option<User>, OAuthError> {
    let Some(user_id) = &link.user_id else {
        return Ok(None);
    };
    Ok(ctx.store.find_user(user_id)?.filter(|user| {
        user.disabled_at.is_none()
            && user
                .email
                .as_deref()
                .is_some_and(|e| e.eq_ignore_ascii_case(&link.email))
    }))
}

/// Why a new password by a reset link was not set (nothing changed).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ResetRefused {
    /// The link no longer works (used, by a racing request too; expired; its account
    /// changed address or was disabled).
    Link(LinkRefused),
    /// The password: the form is shown again.
    Password(NewPasswordRefused),
    /// The account holds a second factor it did not hold when the check of its factors
    /// began, so one that was not passed: the check runs again.
    FactorsGained,
}

/// Whether `now` holds a factor that raises the account's level (a one-time-code
/// authenticator, a passkey) which `held` did not.
pub fn gained_a_factor(held: &AccountFactors, now: &AccountFactors) -> bool {
    (now.one_time_codes && !held.one_time_codes) || (now.passkeys && !held.passkeys)
}

/// Sets the new password of `reset`: the reset by the link of hash `link_hash`, for
/// `user_id` (the account whose second factors the browser passed, of those it `held`
/// when the check began: one added since refuses). The link is used here, once:
/// of two completions racing, one sets its password and the other nothing. The caller
/// forgets the ended sessions' records (`sign_out::forget`) and wakes the mail.
pub fn complete(
    ctx: &Context<'_>,
    reset: &PendingReset,
    password: &Secret<String>,
    again: &Secret<String>,
    locale: Locale,
    address: &str,
) -> Result<Result<EndedSessions, ResetRefused>, OAuthError> {
    let PendingReset {
        link_hash,
        user_id,
        held,
        ..
    } = reset;
    let user = match opened(ctx, link_hash)? {
        Ok(opened) if opened.user.id == *user_id => opened.user,
        Ok(_) => return Ok(Err(ResetRefused::Link(LinkRefused::Unknown))),
        Err(refused) => return Ok(Err(ResetRefused::Link(refused))),
    };
    // The check passed what the account held when it began: an authenticator enrolled
    // since (by the user, racing whoever holds the link) was not passed.
    let now_held = stored::account_factors(ctx, user_id)?.unwrap_or_default();
    if gained_a_factor(held, &now_held) {
        return Ok(Err(ResetRefused::FactorsGained));
    }
    // Checked before the link is used: a refused password leaves it working.
    if let Err(refused) = check_new_password(&user, password, again) {
        return Ok(Err(ResetRefused::Password(refused)));
    }
    let hash = hash_password(password).map_err(OAuthError::server)?;
    // The notice is sealed before the transaction and queued inside it: the new
    // password, the link's use, the ended sessions, the retired links, the notice and
    // the audit event are written together, or none of them (issue 23 §3).
    let notice = match user
        .email
        .as_deref()
        .and_then(|e| EmailAddress::parse(e).ok())
    {
        Some(to) => Some(
            Outgoing {
                to,
                locale,
                kind: MailKind::PasswordChanged {
                    username: user.username.clone(),
                },
            }
            .queue(ctx.kek, ctx.now)
            .map_err(OAuthError::server)?,
        ),
        None => None,
    };
    let event = NewAuditEvent {
        at: ctx.now,
        actor: format!("user:{}", user.username),
        action: "user.password_reset".to_owned(),
        target: Some(user.id.clone()),
        address: Some(address.to_owned()),
        details: Some(json!({ "by": "link" }).to_string()),
    };
    let change = AdminChange::ResetPassword {
        link_hash,
        user_id: &user.id,
        hash: &hash,
        mail: notice.as_ref(),
    };
    let Some(ended) = ctx.store.apply_audited(change, &event)? else {
        // Why not: read after the refusal, so a link used by a racing request is said
        // to be used.
        return Ok(Err(ResetRefused::Link(match opened(ctx, link_hash)? {
            Ok(_) => LinkRefused::Used,
            Err(refused) => refused,
        })));
    };
    crate::audit::password_reset(&user.id, address);
    crate::audit::sessions_ended(&user.id, ended.sessions.len(), "password_reset");
    Ok(Ok(ended))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mail::Outgoing;
    use crate::protocol::testing::TestWorld;
    use crate::store::{BrowserSession, QueuedMail};

    const PAGE: &str = "https://op.example/login/reset";
    const GOOD: &str = "violet tugboat anthem drizzle";

    fn with_email(world: &TestWorld, name: &str, email: &str) -> User {
        let mut user = world.add_user(name);
        user.email = Some(email.to_owned());
        world.store.update_user(&user, world.ctx().now).unwrap();
        user
    }

    fn ask(world: &TestWorld, email: &str) -> usize {
        request(
            &world.ctx(),
            &ResetRequest {
                email,
                locale: Locale::En,
                link_page: PAGE,
                address: "198.51.100.7",
            },
        )
        .unwrap()
    }

    /// The mails queued, opened, oldest first.
    fn mails(world: &TestWorld) -> Vec<Outgoing> {
        let ctx = world.ctx();
        let mut queued: Vec<QueuedMail> = world
            .store
            .claim_mail(ctx.now + 10_000, ctx.now + 20_000, 100)
            .unwrap();
        queued.sort_by_key(|m| m.created_at);
        queued
            .iter()
            .filter_map(|m| Outgoing::open(m, ctx.kek).unwrap())
            .collect()
    }

    fn token_of(mail: &Outgoing) -> String {
        let (link, _) = mail.kind.link().unwrap();
        link.expose().split("code=").nth(1).unwrap().to_owned()
    }

    fn secret(text: &str) -> Secret<String> {
        Secret::new(text.to_owned())
    }

    /// The reset of `opened`, its check passed, with `held` when it began.
    fn pending(opened: &Opened, held: &AccountFactors) -> PendingReset {
        PendingReset {
            link_hash: opened.link_hash.clone(),
            user_id: opened.user.id.clone(),
            checked: true,
            held: *held,
        }
    }

    #[test]
    fn a_request_mails_a_link_to_the_accounts_address_and_nothing_for_an_unknown_one() {
        let world = TestWorld::default();
        with_email(&world, "alice", "Alice@Example.com");
        assert_eq!(ask(&world, "nobody@example.com"), 0);
        assert_eq!(ask(&world, "not an address"), 0);
        assert_eq!(ask(&world, " alice@example.COM "), 1);
        let sent = mails(&world);
        assert_eq!(sent.len(), 1);
        assert_eq!(sent[0].to.as_str(), "Alice@Example.com");
        let (link, minutes) = sent[0].kind.link().unwrap();
        assert_eq!(minutes, 30);
        assert!(link.expose().starts_with(&format!("{PAGE}?code=")));
        let events = world.store.list_audit_events(None, 10).unwrap();
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].action, "user.password_reset_requested");
        let token = token_of(&sent[0]);
        assert!(
            !format!("{:?}", events[0]).contains(&token),
            "the audit trail never holds the link"
        );
    }

    #[test]
    fn a_disabled_account_gets_no_link() {
        let world = TestWorld::default();
        let mut bob = with_email(&world, "bob", "bob@example.com");
        bob.disabled_at = Some(1);
        world.store.update_user(&bob, world.ctx().now).unwrap();
        assert_eq!(ask(&world, "bob@example.com"), 0);
    }

    #[test]
    fn completing_a_reset_sets_the_password_once_ends_sessions_retires_links_and_tells_the_user() {
        let world = TestWorld::default();
        let alice = with_email(&world, "alice", "alice@example.com");
        ask(&world, "alice@example.com");
        ask(&world, "alice@example.com");
        let sent = mails(&world);
        let (first, second) = (token_of(&sent[0]), token_of(&sent[1]));
        world.clock.advance(5);
        let ctx = world.ctx();
        assert!(
            world
                .store
                .record_session(&BrowserSession {
                    sid: "sid-1".into(),
                    user_id: alice.id.clone(),
                    store_key: "key-1".into(),
                    created_at: ctx.now - 1,
                    expires_at: ctx.now + 3600,
                    ended_at: None,
                    user_agent: None,
                    ip_address: None,
                })
                .unwrap()
        );
        let opened = open(&ctx, &first).unwrap().unwrap();
        assert_eq!(opened.user.id, alice.id);
        let finish = |pw: &str, again: &str| {
            complete(
                &world.ctx(),
                &pending(&opened, &AccountFactors::default()),
                &secret(pw),
                &secret(again),
                Locale::Fr,
                "198.51.100.7",
            )
            .unwrap()
        };
        // A refused password leaves the link working.
        assert_eq!(
            finish("short", "short").unwrap_err(),
            ResetRefused::Password(NewPasswordRefused::Rule(
                crate::domain::PasswordRuleError::Length
            ))
        );
        assert_eq!(
            finish(GOOD, "other").unwrap_err(),
            ResetRefused::Password(NewPasswordRefused::Mismatch)
        );
        let ended = finish(GOOD, GOOD).unwrap();
        assert_eq!(ended.sessions.len(), 1);
        let changed = world.store.find_user(&alice.id).unwrap().unwrap();
        assert!(changed.password_hash.starts_with("$argon2id$"));
        assert!(!changed.accepts_session_from(ctx.now));
        // Once only; and the other link of the user was retired.
        assert_eq!(
            finish(GOOD, GOOD).unwrap_err(),
            ResetRefused::Link(LinkRefused::Used)
        );
        assert_eq!(
            open(&world.ctx(), &second).unwrap().unwrap_err(),
            LinkRefused::Used
        );
        let notice = mails(&world);
        assert_eq!(notice.len(), 1);
        assert_eq!(notice[0].locale, Locale::Fr);
        assert_eq!(
            notice[0].kind,
            MailKind::PasswordChanged {
                username: "alice".into()
            }
        );
        let actions: Vec<String> = world
            .store
            .list_audit_events(None, 10)
            .unwrap()
            .into_iter()
            .map(|e| e.action)
            .collect();
        assert!(actions.contains(&"user.password_reset".to_owned()));
    }

    #[test]
    fn a_link_does_nothing_once_expired_tampered_or_after_the_address_changed() {
        let world = TestWorld::default();
        let mut alice = with_email(&world, "alice", "alice@example.com");
        ask(&world, "alice@example.com");
        ask(&world, "alice@example.com");
        let sent = mails(&world);
        let token = token_of(&sent[0]);
        let mut tampered = token.clone();
        tampered.replace_range(0..1, if token.starts_with('A') { "B" } else { "A" });
        assert_eq!(
            open(&world.ctx(), &tampered).unwrap().unwrap_err(),
            LinkRefused::Unknown
        );
        alice.email = Some("new@example.com".into());
        world.store.update_user(&alice, world.ctx().now).unwrap();
        assert_eq!(
            open(&world.ctx(), &token).unwrap().unwrap_err(),
            LinkRefused::Unknown
        );
        alice.email = Some("alice@example.com".into());
        world.store.update_user(&alice, world.ctx().now).unwrap();
        world.clock.advance(30 * 60);
        assert_eq!(
            open(&world.ctx(), &token_of(&sent[1]))
                .unwrap()
                .unwrap_err(),
            LinkRefused::Expired
        );
    }

    #[test]
    fn a_reset_that_fails_midway_changes_nothing_and_leaves_its_link_working() {
        let world = TestWorld::default();
        let alice = with_email(&world, "alice", "alice@example.com");
        ask(&world, "alice@example.com");
        let token = token_of(&mails(&world)[0]);
        let ctx = world.ctx();
        let opened = open(&ctx, &token).unwrap().unwrap();
        let before = world.store.find_user(&alice.id).unwrap().unwrap();
        // The notice cannot be queued (its id is taken): the last write of the reset
        // fails, and every earlier one must go with it.
        let notice = Outgoing {
            to: EmailAddress::parse("alice@example.com").unwrap(),
            locale: Locale::En,
            kind: MailKind::PasswordChanged {
                username: "alice".into(),
            },
        }
        .queue(ctx.kek, ctx.now)
        .unwrap();
        world.store.enqueue_mail(&notice).unwrap();
        let event = NewAuditEvent {
            at: ctx.now,
            actor: "user:alice".into(),
            action: "user.password_reset".into(),
            target: Some(alice.id.clone()),
            address: None,
            details: None,
        };
        let change = AdminChange::ResetPassword {
            link_hash: &opened.link_hash,
            user_id: &alice.id,
            hash: "$argon2id$new",
            mail: Some(&notice),
        };
        assert!(world.store.apply_audited(change, &event).is_err());
        let after = world.store.find_user(&alice.id).unwrap().unwrap();
        assert_eq!(after.password_hash, before.password_hash);
        assert_eq!(
            open(&world.ctx(), &token).unwrap().unwrap().user.id,
            alice.id,
            "the link still works"
        );
        assert!(
            !world
                .store
                .list_audit_events(None, 10)
                .unwrap()
                .iter()
                .any(|e| e.action == "user.password_reset")
        );
        // And the whole of it, once the mail can be queued.
        let ended = complete(
            &world.ctx(),
            &pending(&opened, &AccountFactors::default()),
            &secret(GOOD),
            &secret(GOOD),
            Locale::En,
            "198.51.100.7",
        )
        .unwrap()
        .unwrap();
        assert!(ended.sessions.is_empty());
    }

    #[test]
    fn a_reset_ends_a_pending_change_of_address_and_a_link_of_another_account_does_nothing() {
        let world = TestWorld::default();
        let alice = with_email(&world, "alice", "alice@example.com");
        let bob = with_email(&world, "bob", "bob@example.com");
        ask(&world, "alice@example.com");
        let token = token_of(&mails(&world)[0]);
        let ctx = world.ctx();
        let change = links::issue(
            &ctx,
            LinkPurpose::EmailChange,
            Some(&alice.id),
            "intruder@example.net",
            None,
        )
        .unwrap();
        let opened = open(&ctx, &token).unwrap().unwrap();
        // The store itself refuses a link used for another account.
        let event = NewAuditEvent {
            at: ctx.now,
            actor: "user:bob".into(),
            action: "user.password_reset".into(),
            target: Some(bob.id.clone()),
            address: None,
            details: None,
        };
        let wrong = AdminChange::ResetPassword {
            link_hash: &opened.link_hash,
            user_id: &bob.id,
            hash: "$argon2id$new",
            mail: None,
        };
        assert!(world.store.apply_audited(wrong, &event).unwrap().is_none());
        complete(
            &ctx,
            &pending(&opened, &AccountFactors::default()),
            &secret(GOOD),
            &secret(GOOD),
            Locale::En,
            "198.51.100.7",
        )
        .unwrap()
        .unwrap();
        assert_eq!(
            links::take(
                &world.ctx(),
                LinkPurpose::EmailChange,
                change.token.expose()
            )
            .unwrap(),
            Err(LinkRefused::Used),
            "whoever asked for the change may be whom the new password locks out"
        );
    }

    #[test]
    fn a_second_factor_gained_since_the_check_began_refuses_the_new_password() {
        let world = TestWorld::default();
        let alice = with_email(&world, "alice", "alice@example.com");
        ask(&world, "alice@example.com");
        let token = token_of(&mails(&world)[0]);
        let ctx = world.ctx();
        let opened = open(&ctx, &token).unwrap().unwrap();
        // The check began with no factor; an authenticator is enrolled since.
        assert!(
            world
                .store
                .begin_totp(&alice.id, "sealed", ctx.now)
                .unwrap()
        );
        assert!(
            world
                .store
                .confirm_totp(&alice.id, "sealed", 1, ctx.now)
                .unwrap()
        );
        let finish = |held: &AccountFactors| {
            complete(
                &ctx,
                &pending(&opened, held),
                &secret(GOOD),
                &secret(GOOD),
                Locale::En,
                "198.51.100.7",
            )
            .unwrap()
        };
        assert_eq!(
            finish(&AccountFactors::default()).unwrap_err(),
            ResetRefused::FactorsGained
        );
        let unchanged = world.store.find_user(&alice.id).unwrap().unwrap();
        assert_eq!(unchanged.password_hash, alice.password_hash);
        assert!(open(&ctx, &token).unwrap().is_ok(), "the link still works");
        // Held (and so passed) when the check began: the password is set.
        let held = AccountFactors {
            one_time_codes: true,
            ..AccountFactors::default()
        };
        assert!(finish(&held).is_ok());
    }
}
