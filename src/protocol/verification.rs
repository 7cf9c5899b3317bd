//! Email verification (issue 23 §2): `email_verified` becomes true only through a link
//! sent to that address (or an operator's explicit flag, see `admin::users`).
//!
//! Two links, one page: "verify your address" (`LinkPurpose::EmailVerification`, bound
//! to the account's address: it does nothing once the address changed), and "change
//! your address" (`LinkPurpose::EmailChange`, sent to the new address, which it carries:
//! the pending address lives with its link, and the old address stays the account's,
//! verified or not, until the link is used). A new request retires the user's earlier
//! links of its kind, and an operator's change of the address retires both kinds
//! (`AdminChange::UpdateUser`, in its transaction): a live change link is always one asked from the address
//! the account has now.

use serde_json::json;

use super::links::{self, LinkPurpose, LinkRefused};
use super::{Context, OAuthError};
use crate::mail::{EmailAddress, Link, Locale, MailKind, Outgoing};
use crate::store::{ActionLink, NewAuditEvent, User};

/// Where a link goes and in which language: what every send needs besides the user.
pub struct Delivery<'a> {
    pub locale: Locale,
    /// The absolute URL of the link page; the token goes in its `code` parameter.
    pub link_page: &'a str,
    /// The client address, for the audit trail.
    pub address: &'a str,
}

/// What a request on the account page did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sent {
    /// A link went to the address.
    Link,
    /// Nothing to do: no address, or the address is verified already.
    Nothing,
    /// Not an email address.
    Invalid,
}

/// Sends a link that verifies the account's own address (unless it has none, or it is
/// verified); earlier ones stop working.
pub fn send_verification(
    ctx: &Context<'_>,
    user: &User,
    delivery: &Delivery<'_>,
) -> Result<Sent, OAuthError> {
    let Some(email) = user.email.as_deref().filter(|_| !user.email_verified) else {
        return Ok(Sent::Nothing);
    };
    let Ok(to) = EmailAddress::parse(email) else {
        return Ok(Sent::Invalid);
    };
    send(ctx, user, LinkPurpose::EmailVerification, to, delivery)?;
    Ok(Sent::Link)
}

/// A change of the account's address to `new_email`: a link goes to the new address,
/// which replaces the old one when the link is used. The same address as now is a
/// verification of it.
pub fn request_change(
    ctx: &Context<'_>,
    user: &User,
    new_email: &str,
    delivery: &Delivery<'_>,
) -> Result<Sent, OAuthError> {
    let Ok(to) = EmailAddress::parse(new_email) else {
        return Ok(Sent::Invalid);
    };
    if user
        .email
        .as_deref()
        .is_some_and(|e| e.eq_ignore_ascii_case(to.as_str()))
    {
        return send_verification(ctx, user, delivery);
    }
    send(ctx, user, LinkPurpose::EmailChange, to.clone(), delivery)?;
    tell_old_address(ctx, user, to.as_str(), false, delivery.locale);
    Ok(Sent::Link)
}

/// Tells the account's address as it is (the old one) of a change to `new_address`,
/// asked or made. A notice, best effort: the change stands if it cannot be queued.
fn tell_old_address(ctx: &Context<'_>, user: &User, new_address: &str, done: bool, locale: Locale) {
    let Some(to) = user
        .email
        .as_deref()
        .and_then(|e| EmailAddress::parse(e).ok())
    else {
        return;
    };
    let queued = Outgoing {
        to,
        locale,
        kind: MailKind::AddressChange {
            username: user.username.clone(),
            new_address: new_address.to_owned(),
            done,
        },
    }
    .send_later(ctx.store, ctx.kek, ctx.now);
    if let Err(error) = queued {
        tracing::warn!(error = %error, "the notice to the old address could not be queued");
    }
}

fn send(
    ctx: &Context<'_>,
    user: &User,
    purpose: LinkPurpose,
    to: EmailAddress,
    delivery: &Delivery<'_>,
) -> Result<(), OAuthError> {
    ctx.store
        .retire_links(&user.id, purpose.as_str(), ctx.now)?;
    let new = links::issue(ctx, purpose, Some(&user.id), to.as_str(), None)?;
    let link = Link::new(format!(
        "{}?code={}",
        delivery.link_page,
        new.token.expose()
    ))
    .map_err(OAuthError::server)?;
    Outgoing {
        to,
        locale: delivery.locale,
        kind: MailKind::EmailVerification {
            link,
            valid_minutes: u32::try_from(purpose.lifetime() / 60).unwrap_or(u32::MAX),
            username: Some(user.username.clone()),
        },
    }
    .send_later(ctx.store, ctx.kek, ctx.now)
    .map_err(OAuthError::server)?;
    ctx.store.record_audit_event(&NewAuditEvent {
        at: ctx.now,
        actor: format!("user:{}", user.username),
        action: format!("user.{}_requested", purpose.as_str()),
        target: Some(user.id.clone()),
        address: Some(delivery.address.to_owned()),
        details: None,
    })?;
    Ok(())
}

/// What a working verification link will do (its page says so before the click).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pending {
    pub purpose: LinkPurpose,
    /// The address it verifies (and, for a change, makes the account's).
    pub email: String,
    pub username: String,
}

/// What a verification link did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verified {
    /// The account's address is verified.
    Address { email: String },
    /// The account's address is now this one, verified.
    Changed { email: String },
}

/// The verification link `token` names, if it works now; nothing is used.
pub fn look(ctx: &Context<'_>, token: &str) -> Result<Result<Pending, LinkRefused>, OAuthError> {
    Ok(match find(ctx, token)? {
        Ok((purpose, link, user)) => Ok(Pending {
            purpose,
            email: link.email,
            username: user.username,
        }),
        Err(refused) => Err(refused),
    })
}

/// Uses the verification link `token` names: once, by one caller however many race.
pub fn verify(
    ctx: &Context<'_>,
    token: &str,
    address: &str,
    locale: Locale,
) -> Result<Result<Verified, LinkRefused>, OAuthError> {
    let (purpose, link, user) = match find(ctx, token)? {
        Ok(found) => found,
        Err(refused) => return Ok(Err(refused)),
    };
    let (action, verified) = match purpose {
        LinkPurpose::EmailChange => (
            "user.email_changed",
            Verified::Changed {
                email: link.email.clone(),
            },
        ),
        _ => (
            "user.email_verified",
            Verified::Address {
                email: link.email.clone(),
            },
        ),
    };
    let event = NewAuditEvent {
        at: ctx.now,
        actor: format!("user:{}", user.username),
        action: action.to_owned(),
        target: Some(user.id.clone()),
        address: Some(address.to_owned()),
        details: Some(json!({ "by": "link" }).to_string()),
    };
    // The link's use and the two columns it changes, together; the address only if it
    // is still the one read: the rest of the row (an administrator may be disabling the
    // account, or changing its address, right now) is never written back.
    let confirmed = ctx.store.confirm_address(
        &link.token_hash,
        purpose.as_str(),
        &user.id,
        user.email.as_deref(),
        &event,
    )?;
    if !confirmed {
        // Why not: read after the refusal, so a link used by a racing request is said
        // to be used; one whose account changed since is no link of the account's.
        return Ok(Err(match find(ctx, token)? {
            Ok(_) => LinkRefused::Unknown,
            Err(refused) => refused,
        }));
    }
    crate::audit::email_verified(&user.id, address);
    if purpose == LinkPurpose::EmailChange {
        tell_old_address(ctx, &user, &link.email, true, locale);
    }
    Ok(Ok(verified))
}

/// The link of either purpose `token` names, with its account, if it works now.
fn find(
    ctx: &Context<'_>,
    token: &str,
) -> Result<Result<(LinkPurpose, ActionLink, User), LinkRefused>, OAuthError> {
    let mut refused = LinkRefused::Unknown;
    for purpose in [LinkPurpose::EmailVerification, LinkPurpose::EmailChange] {
        match links::look_up(ctx, purpose, token)? {
            Ok(link) => {
                return Ok(match bound_user(ctx, purpose, &link)? {
                    Some(user) => Ok((purpose, link, user)),
                    None => Err(LinkRefused::Unknown),
                });
            }
            Err(LinkRefused::Unknown) => {}
            Err(other) => refused = other,
        }
    }
    Ok(Err(refused))
}

/// The enabled account a link speaks for, if it is still bound to it: a verification
/// link to the account's address as it is now; a change link to an account (its old
/// address unchanged since, which retiring on every change ensures).
fn bound_user(
    ctx: &Context<'_>,
    purpose: LinkPurpose,
    link: &ActionLink,
) -> Result<Option<User>, OAuthError> {
    let Some(user_id) = &link.user_id else {
        return Ok(None);
    };
    Ok(ctx.store.find_user(user_id)?.filter(|user| {
        user.disabled_at.is_none()
            && match purpose {
                LinkPurpose::EmailVerification => user
                    .email
                    .as_deref()
                    .is_some_and(|e| e.eq_ignore_ascii_case(&link.email)),
                _ => true,
            }
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::testing::TestWorld;

    const DELIVERY: Delivery<'static> = Delivery {
        locale: Locale::En,
        link_page: "https://op.example/account/verify",
        address: "198.51.100.7",
    };

    fn tokens(world: &TestWorld) -> Vec<(String, String)> {
        let ctx = world.ctx();
        let mut queued = world
            .store
            .claim_mail(ctx.now + 10_000, ctx.now + 20_000, 100)
            .unwrap();
        queued.sort_by_key(|m| m.created_at);
        queued
            .iter()
            .filter_map(|m| Outgoing::open(m, ctx.kek).unwrap())
            // The notices to an old address carry no link.
            .filter_map(|m| {
                let (link, _) = m.kind.link()?;
                let token = link.expose().split("code=").nth(1).unwrap().to_owned();
                Some((m.to.as_str().to_owned(), token))
            })
            .collect()
    }

    fn alice(world: &TestWorld, email: &str) -> User {
        let mut user = world.add_user("alice");
        user.email = Some(email.into());
        world.store.update_user(&user, world.ctx().now).unwrap();
        user
    }

    #[test]
    fn a_link_to_the_address_verifies_it_once() {
        let world = TestWorld::default();
        let user = alice(&world, "alice@example.com");
        let ctx = world.ctx();
        assert_eq!(
            send_verification(&ctx, &user, &DELIVERY).unwrap(),
            Sent::Link
        );
        let sent = tokens(&world);
        assert_eq!(sent[0].0, "alice@example.com");
        let token = &sent[0].1;
        assert_eq!(
            look(&ctx, token).unwrap().unwrap().purpose,
            LinkPurpose::EmailVerification
        );
        assert!(
            !world
                .store
                .find_user(&user.id)
                .unwrap()
                .unwrap()
                .email_verified,
            "looking verifies nothing"
        );
        assert_eq!(
            verify(&ctx, token, "x", Locale::En).unwrap().unwrap(),
            Verified::Address {
                email: "alice@example.com".into()
            }
        );
        let now = world.store.find_user(&user.id).unwrap().unwrap();
        assert!(now.email_verified);
        assert_eq!(
            verify(&ctx, token, "x", Locale::En).unwrap(),
            Err(LinkRefused::Used)
        );
        // Verified already: nothing more is sent.
        assert_eq!(
            send_verification(&ctx, &now, &DELIVERY).unwrap(),
            Sent::Nothing
        );
    }

    #[test]
    fn a_new_address_replaces_the_old_only_once_its_link_is_used() {
        let world = TestWorld::default();
        let mut user = alice(&world, "old@example.com");
        user.email_verified = true;
        world.store.update_user(&user, world.ctx().now).unwrap();
        let ctx = world.ctx();
        assert_eq!(
            request_change(&ctx, &user, "nope", &DELIVERY).unwrap(),
            Sent::Invalid
        );
        request_change(&ctx, &user, "first@example.com", &DELIVERY).unwrap();
        request_change(&ctx, &user, "new@example.com", &DELIVERY).unwrap();
        let sent = tokens(&world);
        assert_eq!(sent[1].0, "new@example.com");
        let still = world.store.find_user(&user.id).unwrap().unwrap();
        assert_eq!(still.email.as_deref(), Some("old@example.com"));
        assert!(still.email_verified, "the old address stays meanwhile");
        // The earlier request's link was retired by the later one.
        assert_eq!(
            verify(&ctx, &sent[0].1, "x", Locale::En).unwrap(),
            Err(LinkRefused::Used)
        );
        assert_eq!(
            verify(&ctx, &sent[1].1, "x", Locale::En).unwrap().unwrap(),
            Verified::Changed {
                email: "new@example.com".into()
            }
        );
        let changed = world.store.find_user(&user.id).unwrap().unwrap();
        assert_eq!(changed.email.as_deref(), Some("new@example.com"));
        assert!(changed.email_verified);
    }

    #[test]
    fn a_verification_link_does_nothing_once_the_address_changed_or_its_time_ran_out() {
        let world = TestWorld::default();
        let mut user = alice(&world, "alice@example.com");
        let ctx = world.ctx();
        send_verification(&ctx, &user, &DELIVERY).unwrap();
        send_verification(&ctx, &user, &DELIVERY).unwrap();
        let sent = tokens(&world);
        assert_eq!(look(&ctx, &sent[0].1).unwrap(), Err(LinkRefused::Used));
        user.email = Some("other@example.com".into());
        world.store.update_user(&user, ctx.now).unwrap();
        assert_eq!(
            verify(&ctx, &sent[1].1, "x", Locale::En).unwrap(),
            Err(LinkRefused::Unknown)
        );
        assert!(
            !world
                .store
                .find_user(&user.id)
                .unwrap()
                .unwrap()
                .email_verified
        );
        send_verification(&ctx, &user, &DELIVERY).unwrap();
        let late = tokens(&world);
        world.clock.advance(24 * 3600);
        assert_eq!(
            verify(&world.ctx(), &late[0].1, "x", Locale::En).unwrap(),
            Err(LinkRefused::Expired)
        );
        assert_eq!(
            look(&world.ctx(), "tampered").unwrap(),
            Err(LinkRefused::Unknown)
        );
    }

    #[test]
    fn confirming_an_address_writes_two_columns_and_yields_to_a_change_made_since_the_read() {
        let world = TestWorld::default();
        let mut user = alice(&world, "alice@example.com");
        user.is_admin = true;
        world.store.update_user(&user, world.ctx().now).unwrap();
        let ctx = world.ctx();
        request_change(&ctx, &user, "new@example.com", &DELIVERY).unwrap();
        let token = tokens(&world).remove(0).1;
        let hash = crate::crypto::tokens::token_hash(&token);
        let event = |action: &str| NewAuditEvent {
            at: ctx.now,
            actor: "user:alice".into(),
            action: action.into(),
            target: Some(user.id.clone()),
            address: None,
            details: None,
        };
        // Read by the verification (`user`), then an operator demotes the account.
        let mut demoted = user.clone();
        demoted.is_admin = false;
        world.store.update_user(&demoted, ctx.now).unwrap();
        assert!(
            world
                .store
                .confirm_address(
                    &hash,
                    "email_change",
                    &user.id,
                    user.email.as_deref(),
                    &event("user.email_changed"),
                )
                .unwrap()
        );
        let now = world.store.find_user(&user.id).unwrap().unwrap();
        assert_eq!(now.email.as_deref(), Some("new@example.com"));
        assert!(now.email_verified);
        assert!(!now.is_admin, "the demotion made meanwhile stands");

        // A disable made since the read: nothing is written, the link is not spent.
        request_change(&ctx, &now, "third@example.com", &DELIVERY).unwrap();
        let token = tokens(&world).remove(0).1;
        let hash = crate::crypto::tokens::token_hash(&token);
        let mut disabled = now.clone();
        disabled.disabled_at = Some(ctx.now);
        world.store.update_user(&disabled, ctx.now).unwrap();
        assert!(
            !world
                .store
                .confirm_address(
                    &hash,
                    "email_change",
                    &now.id,
                    now.email.as_deref(),
                    &event("user.email_changed"),
                )
                .unwrap()
        );
        let after = world.store.find_user(&user.id).unwrap().unwrap();
        assert_eq!(after.disabled_at, Some(ctx.now));
        assert_eq!(after.email.as_deref(), Some("new@example.com"));
        assert!(
            world
                .store
                .find_link(&hash)
                .unwrap()
                .unwrap()
                .used_at
                .is_none()
        );
        // An address changed since the read: nothing either.
        let mut enabled = after.clone();
        enabled.disabled_at = None;
        enabled.email = Some("operator@example.com".into());
        world.store.update_user(&enabled, ctx.now).unwrap();
        assert!(
            !world
                .store
                .confirm_address(
                    &hash,
                    "email_change",
                    &now.id,
                    Some("new@example.com"),
                    &event("user.email_changed"),
                )
                .unwrap()
        );
        let last = world.store.find_user(&user.id).unwrap().unwrap();
        assert_eq!(last.email.as_deref(), Some("operator@example.com"));
    }

    #[test]
    fn the_old_address_is_told_of_a_change_asked_and_made() {
        let world = TestWorld::default();
        let user = alice(&world, "old@example.com");
        let ctx = world.ctx();
        request_change(&ctx, &user, "new@example.com", &DELIVERY).unwrap();
        let notices = |world: &TestWorld| -> Vec<(String, MailKind)> {
            let ctx = world.ctx();
            world
                .store
                .claim_mail(ctx.now + 10_000, ctx.now + 20_000, 100)
                .unwrap()
                .iter()
                .filter_map(|m| Outgoing::open(m, ctx.kek).unwrap())
                .map(|m| (m.to.as_str().to_owned(), m.kind))
                .collect()
        };
        let sent = notices(&world);
        let asked = MailKind::AddressChange {
            username: "alice".into(),
            new_address: "new@example.com".into(),
            done: false,
        };
        assert!(
            sent.contains(&("old@example.com".into(), asked)),
            "{sent:?}"
        );
        let token = sent
            .iter()
            .find_map(|(_, kind)| kind.link())
            .map(|(link, _)| link.expose().split("code=").nth(1).unwrap().to_owned())
            .unwrap();
        verify(&ctx, &token, "x", Locale::En).unwrap().unwrap();
        let made = MailKind::AddressChange {
            username: "alice".into(),
            new_address: "new@example.com".into(),
            done: true,
        };
        assert_eq!(notices(&world), vec![("old@example.com".into(), made)]);
    }
}
