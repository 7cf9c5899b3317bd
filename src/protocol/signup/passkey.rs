//! An invitation accepted with a passkey instead of a password (issue 23 §4: "a username
//! and a password (or a passkey)"). Two steps, as every WebAuthn registration (L3 §7.1):
//!
//! 1. [`start_invitation_passkey`]: the invitation must work now (it is looked at, not
//!    used) and the username must be acceptable and free. A registration ceremony starts
//!    for a new account id, fixed now: the passkey's user handle is derived from it
//!    (`passkeys::user_handle`), so the account must get that id. The caller keeps the
//!    [`InvitationCeremony`] (the id, the username, the invitation) on the server, bound
//!    to the browser and to the invitation; nothing of it comes back from the browser, so
//!    the answer cannot name another username or account id.
//! 2. [`accept_invitation_with_passkey`]: the answer is verified against the ceremony,
//!    then the link is used, the account created (address verified, no password) and the
//!    passkey stored in one transaction (`SignupStore::accept_link`). A second or racing
//!    use, a username taken meanwhile, or a credential another account has creates
//!    nothing; only the first leaves the link spent.
//!
//! The account has no password hash: a password sign-in checks the dummy hash and fails
//! as a wrong password does (`crypto::password`). A password can be set later by the
//! mailed password reset (the passkey is then the second factor it asks for).

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::unusable;
use super::{FormProblem, Outcome, Refused, logged, look_up_invitation, new_account, signed_up};
use crate::crypto::tokens::random_uuid;
use crate::domain::{SignupMode, check_username};
use crate::protocol::passkeys::{PasskeyError, Passkeys, RegistrationCeremony};
use crate::protocol::security::passkey_record;
use crate::protocol::{Context, OAuthError};
use crate::store::{Accepted, User};

/// What the options step keeps for the answer: the registration ceremony (with the new
/// account's id) and what it was started for.
#[derive(Serialize, Deserialize)]
pub struct InvitationCeremony {
    /// The invitation's token hash (never the token).
    invitation: String,
    username: String,
    registration: RegistrationCeremony,
}

impl InvitationCeremony {
    pub fn username(&self) -> &str {
        &self.username
    }
    pub fn user_id(&self) -> &str {
        self.registration.user_id()
    }
}

// The registration state holds the challenge: not for logs.
impl std::fmt::Debug for InvitationCeremony {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InvitationCeremony")
            .field("username", &self.username)
            .field("registration", &self.registration)
            .finish_non_exhaustive()
    }
}

/// Why no account was made with the passkey: the invitation or the username (as the
/// password form says it), or the passkey's answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Declined {
    Refused(Refused),
    Passkey(PasskeyError),
}

impl From<Refused> for Declined {
    fn from(refused: Refused) -> Self {
        Self::Refused(refused)
    }
}

/// The options of a passkey for a new account `username` by the invitation `token`
/// names, and the ceremony to keep. Nothing is written.
pub fn start_invitation_passkey(
    ctx: &Context<'_>,
    mode: SignupMode,
    passkeys: &Passkeys,
    token: &str,
    username: &str,
) -> Outcome<(Value, InvitationCeremony)> {
    let link = match look_up_invitation(ctx, mode, token)? {
        Ok(link) => link,
        Err(refused) => return Ok(Err(refused)),
    };
    let Ok(username) = check_username(username) else {
        return Ok(Err(Refused::Form(FormProblem::Username)));
    };
    if ctx.store.username_in_use(&username)? {
        return Ok(Err(Refused::UsernameTaken));
    }
    let (options, registration) = passkeys
        .start_registration(&random_uuid(), &username, &username, &[], ctx.now)
        .map_err(OAuthError::server)?;
    Ok(Ok((
        options,
        InvitationCeremony {
            invitation: link.token_hash,
            username,
            registration,
        },
    )))
}

/// Verifies `answer` (`PublicKeyCredential.toJSON()`) to `ceremony`, then accepts the
/// invitation `token` names with it: the account the ceremony was started for, its
/// address verified, no password, and the passkey (named `name`), together.
#[allow(clippy::too_many_arguments)]
pub fn accept_invitation_with_passkey(
    ctx: &Context<'_>,
    mode: SignupMode,
    passkeys: &Passkeys,
    token: &str,
    ceremony: InvitationCeremony,
    answer: &str,
    name: &str,
    address: Option<&str>,
) -> Result<Result<User, Declined>, OAuthError> {
    let link = match look_up_invitation(ctx, mode, token)? {
        Ok(link) => link,
        Err(refused) => return Ok(Err(refused.into())),
    };
    // The caller found the ceremony by this invitation; this says it again, here.
    if !crate::crypto::tokens::constant_time_eq(
        ceremony.invitation.as_bytes(),
        link.token_hash.as_bytes(),
    ) {
        return Ok(Err(Declined::Passkey(PasskeyError::ChallengeMismatch)));
    }
    // The account will have no password: only a discoverable credential can sign it in
    // (username-less, on the login page). `residentKey: required` is a request the
    // browser may not honour and webauthn-rs does not check, so an answer whose
    // `credProps` says it made a non-discoverable one is refused (WebAuthn L3 §10.1.3;
    // the value is unsigned, which is enough against an authenticator that cannot).
    if made_a_server_side_credential(answer) {
        return Ok(Err(Declined::Passkey(PasskeyError::VerificationFailed)));
    }
    let user_id = ceremony.user_id().to_owned();
    let username = ceremony.username.clone();
    let new = match passkeys.finish_registration(answer, ceremony.registration, &user_id, ctx.now) {
        Ok(new) => new,
        Err(error) if error.is_server_fault() => return Err(OAuthError::server(error)),
        Err(error) => return Ok(Err(Declined::Passkey(error))),
    };
    let user = new_account(user_id, username, &link.email, String::new(), ctx.now);
    let passkey = passkey_record(&new, name, ctx.now);
    let event = signed_up(
        &user,
        ctx.now,
        address,
        serde_json::json!({
            "username": user.username,
            "via": "invitation",
            "with": "passkey",
            "invited_by": link.created_by,
        }),
    );
    match ctx.store.accept_link(
        &link.token_hash,
        &link.purpose,
        ctx.now,
        &user,
        Some(&passkey),
        &event,
    )? {
        Accepted::Created => {
            logged(&user, &event);
            // The factor trail sees the passkey as the security page's would.
            crate::audit::factor_enrolled(&user.id, "passkey", address.unwrap_or(""));
            Ok(Ok(user))
        }
        Accepted::UsernameTaken => Ok(Err(Refused::UsernameTaken.into())),
        Accepted::PasskeyTaken => Ok(Err(Declined::Passkey(PasskeyError::AlreadyRegistered))),
        Accepted::LinkUnusable => Ok(Err(Refused::Link(unusable(ctx, &link)?).into())),
    }
}

/// Whether the browser said (`credProps.rk == false`) that the credential it made is not
/// discoverable. Absent or unreadable says nothing: older browsers do not report it.
fn made_a_server_side_credential(answer: &str) -> bool {
    serde_json::from_str::<serde_json::Value>(answer).is_ok_and(|a| {
        a["clientExtensionResults"]["credProps"]["rk"] == serde_json::Value::Bool(false)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Clock;
    use crate::protocol::links::{self, LinkPurpose, LinkRefused};
    use crate::protocol::passkeys::soft_authenticator::Authenticator;
    use crate::protocol::passkeys::{PasskeySettings, stored::verify_sign_in};
    use crate::protocol::testing::TestWorld;

    const ORIGIN: &str = "https://login.example.com";

    fn passkeys() -> Passkeys {
        let settings = PasskeySettings::from_issuer(ORIGIN, None, &[])
            .unwrap()
            .unwrap();
        Passkeys::new(&settings).unwrap()
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

    /// Starts a ceremony for `username` and has `authenticator` answer it.
    fn answered(
        world: &TestWorld,
        passkeys: &Passkeys,
        authenticator: &mut Authenticator,
        token: &str,
        username: &str,
    ) -> (InvitationCeremony, String) {
        let (options, ceremony) =
            start_invitation_passkey(&world.ctx(), SignupMode::Invite, passkeys, token, username)
                .unwrap()
                .unwrap();
        assert_eq!(options["user"]["name"], username.trim());
        (ceremony, authenticator.create(&options).to_string())
    }

    fn finish(
        world: &TestWorld,
        passkeys: &Passkeys,
        token: &str,
        ceremony: InvitationCeremony,
        answer: &str,
    ) -> Result<String, Declined> {
        accept_invitation_with_passkey(
            &world.ctx(),
            SignupMode::Invite,
            passkeys,
            token,
            ceremony,
            answer,
            "Phone",
            Some("192.0.2.1"),
        )
        .unwrap()
        .map(|user| user.id)
    }

    #[test]
    fn a_credential_the_browser_says_is_not_discoverable_makes_no_account() {
        let world = TestWorld::default();
        let passkeys = passkeys();
        let token = invite(&world, "rex@example.org");
        let mut key = Authenticator::new(ORIGIN);
        let (ceremony, answer) = answered(&world, &passkeys, &mut key, &token, "rex");
        let mut answer: Value = serde_json::from_str(&answer).unwrap();
        assert_eq!(answer["clientExtensionResults"]["credProps"]["rk"], true);
        answer["clientExtensionResults"]["credProps"]["rk"] = Value::Bool(false);
        assert!(matches!(
            finish(&world, &passkeys, &token, ceremony, &answer.to_string()),
            Err(Declined::Passkey(PasskeyError::VerificationFailed))
        ));
        assert!(world.store.find_user_by_username("rex").unwrap().is_none());
        // The link still works for a passkey that can sign the account in.
        let (ceremony, answer) = answered(&world, &passkeys, &mut key, &token, "rex");
        assert!(finish(&world, &passkeys, &token, ceremony, &answer).is_ok());
    }

    #[test]
    fn a_passkey_invitation_creates_a_verified_account_with_no_password_and_one_passkey_once() {
        let world = TestWorld::default();
        let passkeys = passkeys();
        let token = invite(&world, "pia@example.org");
        let mut phone = Authenticator::new(ORIGIN);
        let (ceremony, answer) = answered(&world, &passkeys, &mut phone, &token, " Pia ");
        let chosen_id = ceremony.user_id().to_owned();
        // Only looked at so far: no account, the link still works.
        assert!(world.store.find_user_by_username("pia").unwrap().is_none());
        let id = finish(&world, &passkeys, &token, ceremony, &answer).unwrap();
        assert_eq!(id, chosen_id, "the account the passkey's user handle names");

        let pia = world.store.find_user_by_username("pia").unwrap().unwrap();
        assert_eq!(pia.id, id);
        assert_eq!(pia.username, "Pia");
        assert_eq!(pia.email.as_deref(), Some("pia@example.org"));
        assert!(pia.email_verified);
        assert_eq!(pia.password_hash, "", "no password");
        assert!(!crate::crypto::password::is_password_of(
            &crate::domain::Secret::new(String::new()),
            &pia.password_hash
        ));
        let stored = world.store.list_passkeys(&pia.id).unwrap();
        assert_eq!(stored.len(), 1);
        assert_eq!(stored[0].name, "Phone");
        let events = world.store.list_audit_events(None, 10).unwrap();
        let joined = events
            .iter()
            .find(|e| e.action == "user.signed_up")
            .unwrap();
        let details: Value = serde_json::from_str(joined.details.as_deref().unwrap()).unwrap();
        assert_eq!(details["via"], "invitation");
        assert_eq!(details["with"], "passkey");
        assert!(!joined.details.as_deref().unwrap().contains(&token));

        // The passkey signs its new account in, with no username.
        world.clock.advance(10);
        let (options, sign_in) = passkeys.start_sign_in(world.clock.now()).unwrap();
        let assertion = phone.get(&options, 0).to_string();
        let verified = verify_sign_in(&world.ctx(), &passkeys, &assertion, sign_in).unwrap();
        assert_eq!(verified.user_id, pia.id);

        // The link is spent: neither a new ceremony nor a second answer makes anything.
        assert_eq!(
            start_invitation_passkey(&world.ctx(), SignupMode::Invite, &passkeys, &token, "pia2")
                .unwrap()
                .map(|_| ()),
            Err(Refused::Link(LinkRefused::Used))
        );
        assert!(world.store.find_user_by_username("pia2").unwrap().is_none());
    }

    #[test]
    fn a_second_use_of_the_invitation_creates_nothing() {
        let world = TestWorld::default();
        let passkeys = passkeys();
        let token = invite(&world, "quinn@example.org");
        let mut first = Authenticator::new(ORIGIN);
        let mut second = Authenticator::new(ORIGIN);
        // Two ceremonies started while the link works; both are answered.
        let (one, one_answer) = answered(&world, &passkeys, &mut first, &token, "quinn");
        let (two, two_answer) = answered(&world, &passkeys, &mut second, &token, "quinn2");
        let two_id = two.user_id().to_owned();
        finish(&world, &passkeys, &token, one, &one_answer).unwrap();
        assert_eq!(
            finish(&world, &passkeys, &token, two, &two_answer),
            Err(Declined::Refused(Refused::Link(LinkRefused::Used)))
        );
        assert!(
            world
                .store
                .find_user_by_username("quinn2")
                .unwrap()
                .is_none()
        );
        assert!(world.store.list_passkeys(&two_id).unwrap().is_empty());
    }

    #[test]
    fn a_username_taken_meanwhile_creates_nothing_and_leaves_the_link_usable() {
        let world = TestWorld::default();
        let passkeys = passkeys();
        world.add_user("alice");
        let token = invite(&world, "rae@example.org");
        let ctx = world.ctx();
        // Taken (in any case) or not a username: said before any ceremony starts.
        let start = |username: &str| {
            start_invitation_passkey(&ctx, SignupMode::Invite, &passkeys, &token, username)
                .unwrap()
                .map(|_| ())
        };
        assert_eq!(start("ALICE"), Err(Refused::UsernameTaken));
        assert_eq!(start("   "), Err(Refused::Form(FormProblem::Username)));

        let mut phone = Authenticator::new(ORIGIN);
        let (ceremony, answer) = answered(&world, &passkeys, &mut phone, &token, "rae");
        let id = ceremony.user_id().to_owned();
        world.add_user("RAE");
        assert_eq!(
            finish(&world, &passkeys, &token, ceremony, &answer),
            Err(Declined::Refused(Refused::UsernameTaken))
        );
        assert!(world.store.list_passkeys(&id).unwrap().is_empty());
        assert!(!world.store.email_in_use("rae@example.org").unwrap());
        // The link still works, for another name.
        let (ceremony, answer) = answered(&world, &passkeys, &mut phone, &token, "rae2");
        finish(&world, &passkeys, &token, ceremony, &answer).unwrap();
        assert!(world.store.find_user_by_username("rae2").unwrap().is_some());
    }

    #[test]
    fn a_passkey_invitation_is_refused_when_signup_is_off_or_the_answer_is_not_its_own() {
        let world = TestWorld::default();
        let passkeys = passkeys();
        let token = invite(&world, "sam@example.org");
        let other = invite(&world, "tess@example.org");
        assert_eq!(
            start_invitation_passkey(&world.ctx(), SignupMode::Off, &passkeys, &token, "sam")
                .unwrap()
                .map(|_| ()),
            Err(Refused::Closed)
        );
        let mut phone = Authenticator::new(ORIGIN);
        let (ceremony, answer) = answered(&world, &passkeys, &mut phone, &token, "sam");
        // Turned off between the options and the answer.
        let off = accept_invitation_with_passkey(
            &world.ctx(),
            SignupMode::Off,
            &passkeys,
            &token,
            ceremony,
            &answer,
            "",
            None,
        )
        .unwrap()
        .map(|u| u.id);
        assert_eq!(off, Err(Declined::Refused(Refused::Closed)));
        // A ceremony of one invitation does not accept another.
        let (ceremony, answer) = answered(&world, &passkeys, &mut phone, &token, "sam");
        assert_eq!(
            finish(&world, &passkeys, &other, ceremony, &answer),
            Err(Declined::Passkey(PasskeyError::ChallengeMismatch))
        );
        assert!(world.store.find_user_by_username("sam").unwrap().is_none());
        // Both links still work.
        for t in [&token, &other] {
            assert!(
                look_up_invitation(&world.ctx(), SignupMode::Invite, t)
                    .unwrap()
                    .is_ok()
            );
        }
    }
}
