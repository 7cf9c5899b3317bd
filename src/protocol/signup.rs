//! Accounts that people make themselves (issue 23 §4): by an administrator's invitation,
//! or, with `signup = open`, by the sign-up form.
//!
//! - An invitation's link (`LinkPurpose::Invitation`, 7 days) lets its holder choose a
//!   username and a password (or a passkey: [`passkey`]); the account is created with the
//!   invited address, verified (the link proved it), and the link used, in one transaction
//!   (`SignupStore::accept_link`): a second use, or a racing one, creates nothing.
//! - The sign-up form keeps what the person chose (username, argon2id hash) sealed under
//!   the key-encryption key beside a link (`LinkPurpose::SignUp`, 24 hours) mailed to the
//!   address; the account is created only when that link is used. So it never signs in
//!   before its address is verified, and an address nobody answers for leaves no account.
//! - The sign-up form's answer is the same whether or not an account has the address
//!   (nothing is sent then): it never tells who has an account here.
//!
//! Both links are looked at (GET shows a form) before they are used (POST): mail
//! scanners fetch every link in a mail, and must not spend it. Passwords follow NIST SP
//! 800-63B-3 §5.1.1.2: length and a strength estimate (`check_chosen_password`), with the
//! person's username and address counting as known words, no composition rules.

mod passkey;

pub use passkey::{
    Declined, InvitationCeremony, accept_invitation_with_passkey, start_invitation_passkey,
};

use serde::{Deserialize, Serialize};
use zeroize::Zeroize;

use super::links::{self, LinkPurpose, LinkRefused};
use super::{Context, OAuthError};
use crate::crypto::password::hash_password;
use crate::crypto::tokens::random_uuid;
use crate::domain::{
    PasswordRuleError, Secret, SignupMode, UnixTime, check_chosen_password, check_username,
};
use crate::mail::{EmailAddress, Link, Locale, MailKind, Outgoing};
use crate::store::{Accepted, ActionLink, NewAuditEvent, PendingSignup, User};

/// Why nothing was created. Each is a page that says what to do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refused {
    /// `signup` does not allow this (off; or not `open` for the form).
    Closed,
    /// The link does not work (unknown, used, expired).
    Link(LinkRefused),
    /// The form is not acceptable: the person corrects it.
    Form(FormProblem),
    /// Another account has the username (in any case).
    UsernameTaken,
    /// The password typed to confirm a sign-up is not the one chosen in its form.
    WrongPassword,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FormProblem {
    Username,
    Email,
    PasswordsDiffer,
    Password(PasswordRuleError),
}

/// What the person chose: a username and a password, typed twice.
#[derive(Debug)]
pub struct Choice {
    pub username: String,
    pub password: Secret<String>,
    pub confirmation: Secret<String>,
}

/// The sign-up form: a choice and an address.
#[derive(Debug)]
pub struct Registration {
    pub choice: Choice,
    pub email: String,
}

/// What the sign-up form asks for, besides the form: the language of the mail, the
/// address of the link's page for a token, and who is asking (for the audit trail).
pub struct Request<'a> {
    pub locale: Locale,
    pub link_for: &'a dyn Fn(&str) -> String,
    pub address: Option<&'a str>,
}

/// What waits, sealed, for the sign-up link (`pending_signups`).
#[derive(Serialize, Deserialize)]
struct Sealed {
    username: String,
    password_hash: String,
}

type Outcome<T> = Result<Result<T, Refused>, OAuthError>;

/// The associated data a pending sign-up is sealed under: it opens only as its link's.
fn sealing_context(token_hash: &str) -> String {
    format!("signup:{token_hash}")
}

/// Checks the choice for `email`; the username as it is kept.
fn checked(choice: &Choice, email: &str) -> Result<String, FormProblem> {
    let username = check_username(&choice.username).map_err(|_| FormProblem::Username)?;
    if !crate::crypto::tokens::constant_time_eq(
        choice.password.expose().as_bytes(),
        choice.confirmation.expose().as_bytes(),
    ) {
        return Err(FormProblem::PasswordsDiffer);
    }
    check_chosen_password(&choice.password, &[&username, email]).map_err(FormProblem::Password)?;
    Ok(username)
}

fn hashed(password: &Secret<String>) -> Result<String, OAuthError> {
    hash_password(password).map_err(OAuthError::server)
}

/// A new account `id` of `username` with `email`, verified, and the password hash (empty
/// for an account that signs in with a passkey: no password is then right).
fn new_account(
    id: String,
    username: String,
    email: &str,
    password_hash: String,
    now: UnixTime,
) -> User {
    let mut user = User::new(id, username, password_hash, now);
    user.email = Some(email.to_owned());
    user.email_verified = true;
    user
}

fn signed_up(
    user: &User,
    now: UnixTime,
    address: Option<&str>,
    details: serde_json::Value,
) -> NewAuditEvent {
    NewAuditEvent {
        at: now,
        actor: format!("user:{}", user.username),
        action: "user.signed_up".to_owned(),
        target: Some(user.id.clone()),
        address: address.map(str::to_owned),
        details: Some(details.to_string()),
    }
}

/// Creates `user` by using `link` (one transaction); why not, if it did not.
fn accept(
    ctx: &Context<'_>,
    link: &ActionLink,
    user: User,
    event: &NewAuditEvent,
) -> Outcome<User> {
    let purpose = link.purpose.clone();
    match ctx
        .store
        .accept_link(&link.token_hash, &purpose, ctx.now, &user, None, event)?
    {
        Accepted::Created => {
            logged(&user, event);
            Ok(Ok(user))
        }
        Accepted::UsernameTaken => Ok(Err(Refused::UsernameTaken)),
        // No passkey was offered: no passkey can be taken.
        Accepted::PasskeyTaken => Err(OAuthError::server("a passkey taken without a passkey")),
        Accepted::LinkUnusable => Ok(Err(Refused::Link(unusable(ctx, link)?))),
    }
}

/// The audit log line of an account just created.
fn logged(user: &User, event: &NewAuditEvent) {
    crate::audit::admin_change(
        &event.actor,
        &event.action,
        &user.id,
        event.address.as_deref().unwrap_or(""),
    );
}

/// Why `link`, which worked when it was looked at, was used or expired by the time it
/// was to be used: say which.
fn unusable(ctx: &Context<'_>, link: &ActionLink) -> Result<LinkRefused, OAuthError> {
    Ok(match ctx.store.find_link(&link.token_hash)? {
        Some(found) if found.used_at.is_some() => LinkRefused::Used,
        Some(_) => LinkRefused::Expired,
        None => LinkRefused::Unknown,
    })
}

/// The invitation `token` names, if `mode` takes invitations and it works now: what its
/// page shows (the invited address). Nothing is used.
pub fn look_up_invitation(ctx: &Context<'_>, mode: SignupMode, token: &str) -> Outcome<ActionLink> {
    if !mode.invitations() {
        return Ok(Err(Refused::Closed));
    }
    Ok(links::look_up(ctx, LinkPurpose::Invitation, token)?.map_err(Refused::Link))
}

/// Accepts the invitation `token` names with `choice`: the account, its address
/// verified, and the link used, together.
pub fn accept_invitation(
    ctx: &Context<'_>,
    mode: SignupMode,
    token: &str,
    choice: &Choice,
    address: Option<&str>,
) -> Outcome<User> {
    let link = match look_up_invitation(ctx, mode, token)? {
        Ok(link) => link,
        Err(refused) => return Ok(Err(refused)),
    };
    let username = match checked(choice, &link.email) {
        Ok(name) => name,
        Err(problem) => return Ok(Err(Refused::Form(problem))),
    };
    let user = new_account(
        random_uuid(),
        username,
        &link.email,
        hashed(&choice.password)?,
        ctx.now,
    );
    let event = signed_up(
        &user,
        ctx.now,
        address,
        serde_json::json!({ "username": user.username, "via": "invitation", "invited_by": link.created_by }),
    );
    accept(ctx, &link, user, &event)
}

/// The sign-up form: checks it, and (unless an account has the address) keeps it sealed
/// beside a new link and queues the mail that carries the link. The answer is the same
/// either way. `Ok(Ok(true))` when a mail was queued (the caller wakes the delivery).
pub fn register(
    ctx: &Context<'_>,
    mode: SignupMode,
    form: &Registration,
    request: &Request<'_>,
) -> Outcome<bool> {
    if !mode.open() {
        return Ok(Err(Refused::Closed));
    }
    let Ok(to) = EmailAddress::parse(&form.email) else {
        return Ok(Err(Refused::Form(FormProblem::Email)));
    };
    let email = to.as_str().to_owned();
    let username = match checked(&form.choice, &email) {
        Ok(name) => name,
        Err(problem) => return Ok(Err(Refused::Form(problem))),
    };
    if ctx.store.username_in_use(&username)? {
        return Ok(Err(Refused::UsernameTaken));
    }
    // Hashed whether or not the address is taken, so the answer's time says nothing.
    let password_hash = hashed(&form.choice.password)?;
    if ctx.store.email_in_use(&email)? {
        tracing::info!(
            domain = to.domain(),
            "sign-up with an address that has an account: nothing sent"
        );
        return Ok(Ok(false));
    }
    let new = links::make(LinkPurpose::SignUp, None, &email, None, ctx.now);
    let named = username.clone();
    let mut json = serde_json::to_vec(&Sealed {
        username,
        password_hash,
    })
    .map_err(OAuthError::server)?;
    let sealed = ctx
        .kek
        .encrypt(&json, &sealing_context(&new.link.token_hash));
    json.zeroize();
    let pending = PendingSignup {
        token_hash: new.link.token_hash.clone(),
        sealed_registration: sealed.map_err(OAuthError::server)?,
        created_at: ctx.now,
    };
    ctx.store.insert_pending_signup(&new.link, &pending)?;
    let link = Link::new((request.link_for)(new.token.expose())).map_err(OAuthError::server)?;
    Outgoing {
        to,
        locale: request.locale,
        kind: MailKind::EmailVerification {
            link,
            valid_minutes: (LinkPurpose::SignUp.lifetime() / 60) as u32,
            username: Some(named),
        },
    }
    .send_later(ctx.store, ctx.kek, ctx.now)
    .map_err(OAuthError::server)?;
    Ok(Ok(true))
}

/// The sign-up link `token` names, if it works now (and `signup` is still open).
pub fn look_up_sign_up(ctx: &Context<'_>, mode: SignupMode, token: &str) -> Outcome<ActionLink> {
    if !mode.open() {
        return Ok(Err(Refused::Closed));
    }
    Ok(links::look_up(ctx, LinkPurpose::SignUp, token)?.map_err(Refused::Link))
}

/// Uses the sign-up link `token` names: the account it waited for is created, its
/// address verified, if `password` is the one chosen in the form. The link alone is not
/// enough: whoever fills the form with someone else's address would otherwise get an
/// account with that address verified, and a password of their choosing, from one
/// careless click of the address's owner. Asking for the password proves that whoever
/// confirms is whoever registered. A wrong one spends nothing.
pub fn complete_sign_up(
    ctx: &Context<'_>,
    mode: SignupMode,
    token: &str,
    password: &Secret<String>,
    address: Option<&str>,
) -> Outcome<User> {
    let link = match look_up_sign_up(ctx, mode, token)? {
        Ok(link) => link,
        Err(refused) => return Ok(Err(refused)),
    };
    let Some(pending) = ctx.store.find_pending_signup(&link.token_hash)? else {
        return Ok(Err(Refused::Link(LinkRefused::Unknown)));
    };
    let mut json = ctx
        .kek
        .decrypt(
            &pending.sealed_registration,
            &sealing_context(&pending.token_hash),
        )
        .map_err(OAuthError::server)?;
    let sealed: Result<Sealed, _> = serde_json::from_slice(&json);
    json.zeroize();
    let sealed = sealed.map_err(OAuthError::server)?;
    if !crate::crypto::password::is_password_of(password, &sealed.password_hash) {
        return Ok(Err(Refused::WrongPassword));
    }
    let user = new_account(
        random_uuid(),
        sealed.username,
        &link.email,
        sealed.password_hash,
        ctx.now,
    );
    let event = signed_up(
        &user,
        ctx.now,
        address,
        serde_json::json!({ "username": user.username, "via": "sign_up" }),
    );
    accept(ctx, &link, user, &event)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::testing::TestWorld;

    /// An outcome as tests compare it (a `User` is not comparable): the username.
    fn named(outcome: Result<User, Refused>) -> Result<String, Refused> {
        outcome.map(|u| u.username)
    }

    const STRONG: &str = "plum tuba quasar ledge 77";

    fn choice(username: &str, password: &str, confirmation: &str) -> Choice {
        Choice {
            username: username.to_owned(),
            password: Secret::new(password.to_owned()),
            confirmation: Secret::new(confirmation.to_owned()),
        }
    }

    fn invite(world: &TestWorld, email: &str) -> String {
        links::issue(
            &world.ctx(),
            LinkPurpose::Invitation,
            None,
            email,
            Some("user:root"),
        )
        .unwrap()
        .token
        .expose()
        .clone()
    }

    #[test]
    fn an_invitation_creates_a_verified_account_once() {
        let world = TestWorld::default();
        let token = invite(&world, "carol@example.org");
        let ctx = world.ctx();
        let link = look_up_invitation(&ctx, SignupMode::Invite, &token)
            .unwrap()
            .unwrap();
        assert_eq!(link.email, "carol@example.org");
        let carol = accept_invitation(
            &ctx,
            SignupMode::Invite,
            &token,
            &choice(" Carol ", STRONG, STRONG),
            Some("192.0.2.1"),
        )
        .unwrap()
        .unwrap();
        let stored = world.store.find_user_by_username("carol").unwrap().unwrap();
        assert_eq!(stored.id, carol.id);
        assert_eq!(stored.username, "Carol");
        assert_eq!(stored.email.as_deref(), Some("carol@example.org"));
        assert!(stored.email_verified);
        assert!(stored.password_hash.starts_with("$argon2id$"));
        let events = world.store.list_audit_events(None, 10).unwrap();
        assert_eq!(events[0].action, "user.signed_up");
        assert_eq!(events[0].actor, "user:Carol");
        assert!(!events[0].details.as_deref().unwrap().contains(&token));
        // Used: a second answer creates nothing.
        assert_eq!(
            named(
                accept_invitation(
                    &ctx,
                    SignupMode::Invite,
                    &token,
                    &choice("carol2", STRONG, STRONG),
                    None
                )
                .unwrap()
            ),
            Err(Refused::Link(LinkRefused::Used))
        );
        assert!(
            world
                .store
                .find_user_by_username("carol2")
                .unwrap()
                .is_none()
        );
    }

    #[test]
    fn an_invitation_is_refused_when_signup_is_off_and_after_seven_days() {
        let world = TestWorld::default();
        let token = invite(&world, "dan@example.org");
        let answer = |world: &TestWorld, mode| {
            accept_invitation(
                &world.ctx(),
                mode,
                &token,
                &choice("dan", STRONG, STRONG),
                None,
            )
            .unwrap()
            .map(|u| u.username)
        };
        assert_eq!(answer(&world, SignupMode::Off), Err(Refused::Closed));
        world.clock.advance(7 * 24 * 3600);
        assert_eq!(
            answer(&world, SignupMode::Open),
            Err(Refused::Link(LinkRefused::Expired))
        );
        assert_eq!(
            look_up_invitation(&world.ctx(), SignupMode::Open, "made-up")
                .unwrap()
                .map(|l| l.email),
            Err(Refused::Link(LinkRefused::Unknown))
        );
        assert!(world.store.find_user_by_username("dan").unwrap().is_none());
    }

    #[test]
    fn a_bad_choice_creates_nothing_and_leaves_the_link_working() {
        let world = TestWorld::default();
        world.add_user("alice");
        let token = invite(&world, "erin@example.org");
        let ctx = world.ctx();
        let answer = |c: Choice| {
            named(accept_invitation(&ctx, SignupMode::Invite, &token, &c, None).unwrap())
        };
        assert_eq!(
            answer(choice("erin", STRONG, "plum tuba quasar ledge 78")),
            Err(Refused::Form(FormProblem::PasswordsDiffer))
        );
        assert_eq!(
            answer(choice("erin", "password1", "password1")),
            Err(Refused::Form(FormProblem::Password(
                PasswordRuleError::Guessable
            )))
        );
        assert_eq!(
            answer(choice("erin", "erin@example.org", "erin@example.org")),
            Err(Refused::Form(FormProblem::Password(
                PasswordRuleError::Guessable
            )))
        );
        assert_eq!(
            answer(choice("short", "abc", "abc")),
            Err(Refused::Form(FormProblem::Password(
                PasswordRuleError::Length
            )))
        );
        assert_eq!(
            answer(choice("  ", STRONG, STRONG)),
            Err(Refused::Form(FormProblem::Username))
        );
        // Taken in another case: the link is not spent, another name works.
        assert_eq!(
            answer(choice("ALICE", STRONG, STRONG)),
            Err(Refused::UsernameTaken)
        );
        assert!(answer(choice("erin", STRONG, STRONG)).is_ok());
    }

    fn strong() -> Secret<String> {
        Secret::new(STRONG.to_owned())
    }

    fn registration(username: &str, email: &str) -> Registration {
        Registration {
            choice: choice(username, STRONG, STRONG),
            email: email.to_owned(),
        }
    }

    /// Registers, and returns the token of the mail's link (read from the outbox).
    fn register_and_read_link(world: &TestWorld, form: &Registration) -> Option<String> {
        let ctx = world.ctx();
        let link_for = |token: &str| format!("https://op.example/signup/verify?token={token}");
        let request = Request {
            locale: Locale::Fr,
            link_for: &link_for,
            address: None,
        };
        let queued = register(&ctx, SignupMode::Open, form, &request)
            .unwrap()
            .unwrap();
        let due = world.store.claim_mail(ctx.now, ctx.now + 60, 10).unwrap();
        assert_eq!(queued, !due.is_empty());
        let mail = Outgoing::open(due.first()?, &world.kek).unwrap().unwrap();
        assert_eq!(mail.locale, Locale::Fr);
        let (link, minutes) = mail.kind.link().unwrap();
        assert_eq!(minutes, 24 * 60);
        Some(link.expose().split_once("token=").unwrap().1.to_owned())
    }

    #[test]
    fn a_sign_up_makes_the_account_only_when_its_link_is_used() {
        let world = TestWorld::default();
        let form = registration("frank", "Frank@Example.org");
        let token = register_and_read_link(&world, &form).unwrap();
        // Nothing to sign in to yet; what waits is sealed.
        assert!(
            world
                .store
                .find_user_by_username("frank")
                .unwrap()
                .is_none()
        );
        let link = look_up_sign_up(&world.ctx(), SignupMode::Open, &token)
            .unwrap()
            .unwrap();
        let pending = world
            .store
            .find_pending_signup(&link.token_hash)
            .unwrap()
            .unwrap();
        assert!(!pending.sealed_registration.contains("frank"));
        assert!(!pending.sealed_registration.contains("argon2"));
        // Someone else (the address's owner, clicking a mail they did not ask for)
        // does not know the password chosen: nothing is made, nothing spent.
        assert_eq!(
            named(
                complete_sign_up(
                    &world.ctx(),
                    SignupMode::Open,
                    &token,
                    &Secret::new("not the one chosen".into()),
                    None
                )
                .unwrap()
            ),
            Err(Refused::WrongPassword)
        );
        // Closed meanwhile: the link does nothing.
        assert_eq!(
            named(
                complete_sign_up(&world.ctx(), SignupMode::Invite, &token, &strong(), None)
                    .unwrap()
            ),
            Err(Refused::Closed)
        );
        let frank = complete_sign_up(&world.ctx(), SignupMode::Open, &token, &strong(), None)
            .unwrap()
            .unwrap();
        assert_eq!(frank.email.as_deref(), Some("Frank@Example.org"));
        assert!(frank.email_verified);
        assert!(
            world
                .store
                .find_pending_signup(&link.token_hash)
                .unwrap()
                .is_none()
        );
        assert_eq!(
            named(
                complete_sign_up(&world.ctx(), SignupMode::Open, &token, &strong(), None).unwrap()
            ),
            Err(Refused::Link(LinkRefused::Used))
        );
    }

    #[test]
    fn a_sign_up_with_an_address_that_has_an_account_answers_the_same_and_sends_nothing() {
        let world = TestWorld::default();
        let mut alice = world.add_user("alice");
        alice.email = Some("alice@example.org".into());
        world.store.update_user(&alice, START_PLUS).unwrap();
        assert_eq!(
            register_and_read_link(&world, &registration("alice2", "ALICE@example.org")),
            None
        );
        assert!(
            world
                .store
                .find_user_by_username("alice2")
                .unwrap()
                .is_none()
        );
    }

    const START_PLUS: UnixTime = crate::protocol::testing::START + 1;

    #[test]
    fn a_sign_up_checks_the_form_and_the_mode() {
        let world = TestWorld::default();
        world.add_user("grace");
        let ctx = world.ctx();
        let link_for = |t: &str| format!("https://op.example/v?token={t}");
        let request = Request {
            locale: Locale::En,
            link_for: &link_for,
            address: None,
        };
        let answer = |mode, form: &Registration| register(&ctx, mode, form, &request).unwrap();
        assert_eq!(
            answer(SignupMode::Invite, &registration("heidi", "h@example.org")),
            Err(Refused::Closed)
        );
        assert_eq!(
            answer(SignupMode::Open, &registration("heidi", "not an address")),
            Err(Refused::Form(FormProblem::Email))
        );
        assert_eq!(
            answer(SignupMode::Open, &registration("Grace", "g@example.org")),
            Err(Refused::UsernameTaken)
        );
        // A username taken between the form and the link: the link's page says so.
        let token = register_and_read_link(&world, &registration("ivan", "i@example.org")).unwrap();
        world.add_user("IVAN");
        assert_eq!(
            named(
                complete_sign_up(&world.ctx(), SignupMode::Open, &token, &strong(), None).unwrap()
            ),
            Err(Refused::UsernameTaken)
        );
    }
}
