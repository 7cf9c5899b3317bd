//! Links sent by mail (issue 23): "verify your address", "choose a new password", "you
//! are invited". Each is a random token of 256 bits that only the mail holds (the store
//! keeps its SHA-256), bound to the address it was sent to and to one purpose, working
//! once and for a time that suits what it does.
//!
//! A link is looked at ([`look_up`]: a page that shows what it will do, and asks for a
//! click) before it is used ([`take`]: the click). Mail scanners and link previews fetch
//! every URL in a mail with GET: a link that acted on GET would be spent by them.

use super::{Context, OAuthError};
use crate::crypto::tokens::{random_token, token_hash};
use crate::domain::Secret;
use crate::store::ActionLink;

/// What a link does, and for how long.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LinkPurpose {
    /// Proves that an address is the user's (24 hours).
    EmailVerification,
    /// Lets the user choose a new password (30 minutes).
    PasswordReset,
    /// Lets someone create an account (7 days).
    Invitation,
    /// Makes the address it was sent to the account's, verified (24 hours): a change of
    /// address asked on the account page. The old address stays until it is used.
    EmailChange,
    /// Creates the account an open sign-up waits for, proving its address (24 hours,
    /// as a verification).
    SignUp,
}

impl LinkPurpose {
    /// Its name in the store.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::EmailVerification => "email_verification",
            Self::PasswordReset => "password_reset",
            Self::Invitation => "invitation",
            Self::EmailChange => "email_change",
            Self::SignUp => "sign_up",
        }
    }

    /// How long a link of this purpose works, in seconds.
    pub fn lifetime(self) -> i64 {
        match self {
            Self::EmailVerification | Self::EmailChange | Self::SignUp => 24 * 3600,
            Self::PasswordReset => 30 * 60,
            Self::Invitation => 7 * 24 * 3600,
        }
    }
}

/// Why a link does nothing. The page says which, and offers to send a new one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LinkRefused {
    /// No such link (mistyped, cut short, made up, or purged long after it expired), or
    /// one for another purpose.
    Unknown,
    /// It was used already.
    Used,
    /// Its time ran out.
    Expired,
}

/// A new link: its token, for the mail only, and its record.
pub struct NewLink {
    pub token: Secret<String>,
    pub link: ActionLink,
}

/// The longest token looked up: ours are 43 characters; anything much longer is not one
/// of ours and is not hashed.
const MAX_TOKEN: usize = 128;

/// Makes and keeps a link of `purpose` for `email` (and the account `user_id`, if it acts
/// on one; `created_by` names who sent it).
pub fn issue(
    ctx: &Context<'_>,
    purpose: LinkPurpose,
    user_id: Option<&str>,
    email: &str,
    created_by: Option<&str>,
) -> Result<NewLink, OAuthError> {
    let new = make(purpose, user_id, email, created_by, ctx.now);
    ctx.store.insert_link(&new.link)?;
    Ok(new)
}

/// A new link, not stored yet: for a caller that stores it with more (a pending sign-up)
/// or outside a protocol context (the admin layer's invitations).
pub fn make(
    purpose: LinkPurpose,
    user_id: Option<&str>,
    email: &str,
    created_by: Option<&str>,
    now: crate::domain::UnixTime,
) -> NewLink {
    let token = Secret::new(random_token(32));
    let link = ActionLink {
        token_hash: token_hash(token.expose()),
        purpose: purpose.as_str().to_owned(),
        user_id: user_id.map(str::to_owned),
        email: email.to_owned(),
        created_at: now,
        expires_at: now.saturating_add(purpose.lifetime()),
        used_at: None,
        created_by: created_by.map(str::to_owned),
    };
    NewLink { token, link }
}

/// The link `token` names, if it is one of `purpose` that works now; nothing is used.
pub fn look_up(
    ctx: &Context<'_>,
    purpose: LinkPurpose,
    token: &str,
) -> Result<Result<ActionLink, LinkRefused>, OAuthError> {
    let Some(link) = find(ctx, purpose, token)? else {
        return Ok(Err(LinkRefused::Unknown));
    };
    Ok(match refusal(ctx, &link) {
        Some(refused) => Err(refused),
        None => Ok(link),
    })
}

/// Uses the link `token` names: once, by one caller however many race, if it is one of
/// `purpose` that works now.
pub fn take(
    ctx: &Context<'_>,
    purpose: LinkPurpose,
    token: &str,
) -> Result<Result<ActionLink, LinkRefused>, OAuthError> {
    if token.len() > MAX_TOKEN {
        return Ok(Err(LinkRefused::Unknown));
    }
    take_hashed(ctx, purpose, &token_hash(token))
}

/// [`look_up`] by the token's hash: what a page that keeps the hash (never the token)
/// between steps looks at.
pub fn look_up_hashed(
    ctx: &Context<'_>,
    purpose: LinkPurpose,
    hash: &str,
) -> Result<Result<ActionLink, LinkRefused>, OAuthError> {
    let found = ctx
        .store
        .find_link(hash)?
        .filter(|link| link.purpose == purpose.as_str());
    Ok(match found {
        None => Err(LinkRefused::Unknown),
        Some(link) => match refusal(ctx, &link) {
            Some(refused) => Err(refused),
            None => Ok(link),
        },
    })
}

/// [`take`] by the token's hash.
pub fn take_hashed(
    ctx: &Context<'_>,
    purpose: LinkPurpose,
    hash: &str,
) -> Result<Result<ActionLink, LinkRefused>, OAuthError> {
    if let Some(link) = ctx.store.use_link(hash, purpose.as_str(), ctx.now)? {
        return Ok(Ok(link));
    }
    // Why not: read after the failed use, so a link used by a racing request is said
    // to be used.
    Ok(Err(match look_up_hashed(ctx, purpose, hash)? {
        Ok(_) => LinkRefused::Used,
        Err(refused) => refused,
    }))
}

fn find(
    ctx: &Context<'_>,
    purpose: LinkPurpose,
    token: &str,
) -> Result<Option<ActionLink>, OAuthError> {
    if token.len() > MAX_TOKEN {
        return Ok(None);
    }
    Ok(ctx
        .store
        .find_link(&token_hash(token))?
        .filter(|link| link.purpose == purpose.as_str()))
}

fn refusal(ctx: &Context<'_>, link: &ActionLink) -> Option<LinkRefused> {
    if link.used_at.is_some() {
        Some(LinkRefused::Used)
    } else if ctx.now >= link.expires_at {
        Some(LinkRefused::Expired)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::testing::TestWorld;

    #[test]
    fn the_stores_lists_of_purposes_name_ours() {
        use crate::store::{ADDRESS_CONFIRMATIONS, ADDRESS_LINKS, PASSWORD_LINKS};
        let names = |purposes: &[LinkPurpose]| -> Vec<&str> {
            purposes.iter().map(|p| p.as_str()).collect()
        };
        assert_eq!(
            PASSWORD_LINKS.to_vec(),
            names(&[LinkPurpose::PasswordReset, LinkPurpose::EmailChange])
        );
        assert_eq!(
            ADDRESS_LINKS.to_vec(),
            names(&[
                LinkPurpose::PasswordReset,
                LinkPurpose::EmailChange,
                LinkPurpose::EmailVerification
            ])
        );
        assert_eq!(
            ADDRESS_CONFIRMATIONS.to_vec(),
            names(&[LinkPurpose::EmailVerification, LinkPurpose::EmailChange])
        );
    }

    #[test]
    fn a_link_is_kept_hashed_bound_to_its_address_and_purpose() {
        let world = TestWorld::default();
        let alice = world.add_user("alice");
        let ctx = world.ctx();
        let new = issue(
            &ctx,
            LinkPurpose::EmailVerification,
            Some(&alice.id),
            "alice@example.com",
            None,
        )
        .unwrap();
        let token = new.token.expose();
        assert_eq!(token.len(), 43, "256 bits, base64url");
        assert_ne!(new.link.token_hash, *token);
        let stored = world
            .store
            .find_link(&new.link.token_hash)
            .unwrap()
            .unwrap();
        assert_eq!(stored, new.link);
        assert_eq!(stored.email, "alice@example.com");
        assert_eq!(stored.expires_at, ctx.now + 24 * 3600);
        // Not a reset link, whatever it is.
        assert_eq!(
            look_up(&ctx, LinkPurpose::PasswordReset, token).unwrap(),
            Err(LinkRefused::Unknown)
        );
        assert_eq!(
            take(&ctx, LinkPurpose::PasswordReset, token).unwrap(),
            Err(LinkRefused::Unknown)
        );
        assert_eq!(
            look_up(&ctx, LinkPurpose::EmailVerification, token).unwrap(),
            Ok(stored)
        );
    }

    #[test]
    fn a_link_works_once_and_only_in_its_time() {
        let world = TestWorld::default();
        let alice = world.add_user("alice");
        let ctx = world.ctx();
        let reset = |ctx: &Context<'_>| {
            issue(
                ctx,
                LinkPurpose::PasswordReset,
                Some(&alice.id),
                "a@example.com",
                None,
            )
            .unwrap()
        };
        let first = reset(&ctx);
        let token = first.token.expose();
        // Looking does not use it.
        assert!(
            look_up(&ctx, LinkPurpose::PasswordReset, token)
                .unwrap()
                .is_ok()
        );
        assert_eq!(
            take(&ctx, LinkPurpose::PasswordReset, token).unwrap(),
            Ok(ActionLink {
                used_at: Some(ctx.now),
                ..first.link.clone()
            })
        );
        assert_eq!(
            take(&ctx, LinkPurpose::PasswordReset, token).unwrap(),
            Err(LinkRefused::Used)
        );
        assert_eq!(
            look_up(&ctx, LinkPurpose::PasswordReset, token).unwrap(),
            Err(LinkRefused::Used)
        );

        let second = reset(&ctx);
        world.clock.advance(30 * 60 - 1);
        assert!(
            look_up(
                &world.ctx(),
                LinkPurpose::PasswordReset,
                second.token.expose()
            )
            .unwrap()
            .is_ok()
        );
        world.clock.advance(1);
        let late = world.ctx();
        assert_eq!(
            look_up(&late, LinkPurpose::PasswordReset, second.token.expose()).unwrap(),
            Err(LinkRefused::Expired)
        );
        assert_eq!(
            take(&late, LinkPurpose::PasswordReset, second.token.expose()).unwrap(),
            Err(LinkRefused::Expired)
        );
        for made_up in ["", "not a token", &"x".repeat(10_000)] {
            assert_eq!(
                take(&late, LinkPurpose::PasswordReset, made_up).unwrap(),
                Err(LinkRefused::Unknown)
            );
        }
    }

    #[test]
    fn retiring_a_users_links_of_a_purpose_leaves_the_others() {
        let world = TestWorld::default();
        let alice = world.add_user("alice");
        let ctx = world.ctx();
        let reset = issue(
            &ctx,
            LinkPurpose::PasswordReset,
            Some(&alice.id),
            "a@x.org",
            None,
        )
        .unwrap();
        let verify = issue(
            &ctx,
            LinkPurpose::EmailVerification,
            Some(&alice.id),
            "a@x.org",
            None,
        )
        .unwrap();
        let retired = world
            .store
            .retire_links(&alice.id, LinkPurpose::PasswordReset.as_str(), ctx.now)
            .unwrap();
        assert_eq!(retired, 1);
        assert_eq!(
            take(&ctx, LinkPurpose::PasswordReset, reset.token.expose()).unwrap(),
            Err(LinkRefused::Used)
        );
        assert!(
            take(&ctx, LinkPurpose::EmailVerification, verify.token.expose())
                .unwrap()
                .is_ok()
        );
    }
}
