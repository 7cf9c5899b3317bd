//! Users: create, read, list, change (claims, admin role, disabled), set password,
//! delete.

use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::{Actor, Admin, AdminError, AdminResult, UserPage, UserView, page_limit};
use crate::crypto::password::hash_password;
use crate::crypto::tokens::random_uuid;
use crate::domain::Secret;
use crate::protocol::claims;
use crate::store::{AdminChange, EndedSessions, User, UserQuery};

/// A new user, as the admin API takes it.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewUser {
    pub username: String,
    pub password: Secret<String>,
    #[serde(default)]
    pub admin: bool,
    /// Standard claims (OIDC Core §5.1) by name; `address` is an object of its members.
    #[serde(default)]
    pub claims: Map<String, Value>,
}

/// A change to a user: claims to set (`null` removes one), the admin role, disabled, a
/// second factor required.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserPatch {
    #[serde(default)]
    pub claims: Map<String, Value>,
    pub admin: Option<bool>,
    pub disabled: Option<bool>,
    /// Require a second factor of the user (or stop requiring it).
    pub mfa_required: Option<bool>,
}

/// The password rule of every new password set by an administrator
/// (`domain::check_new_password`).
pub fn check_password(password: &Secret<String>) -> AdminResult<()> {
    crate::domain::check_new_password(password).map_err(|e| AdminError::invalid(e.to_string()))
}

/// Applies claims given as JSON to `user`, checking every one (the CLI's `--claim` rules).
pub fn apply_json_claims(user: &mut User, claims: &Map<String, Value>) -> AdminResult<()> {
    let invalid = |e: claims::ClaimError| AdminError::invalid(e.to_string());
    for (name, value) in claims {
        match (name.as_str(), value) {
            ("address", Value::Object(members)) => {
                for (member, value) in members {
                    let name = format!("address.{member}");
                    match value {
                        Value::Null => claims::unset_claim(user, &name),
                        Value::String(s) => claims::set_claim(user, &name, s),
                        _ => {
                            return Err(AdminError::invalid(format!("{name} must be a string")));
                        }
                    }
                    .map_err(invalid)?;
                }
            }
            (_, Value::Null) => claims::unset_claim(user, name).map_err(invalid)?,
            (_, Value::String(s)) => claims::set_claim(user, name, s).map_err(invalid)?,
            (_, Value::Bool(b)) => {
                claims::set_claim(user, name, if *b { "true" } else { "false" }).map_err(invalid)?
            }
            _ => {
                return Err(AdminError::invalid(format!(
                    "claim {name} must be a string, a boolean or null"
                )));
            }
        }
    }
    Ok(())
}

pub(super) fn check_username(username: &str) -> AdminResult<String> {
    crate::domain::check_username(username).map_err(|e| AdminError::invalid(e.to_string()))
}

impl Admin<'_> {
    pub(super) fn user(&self, id: &str) -> AdminResult<User> {
        self.store
            .find_user(id)?
            .ok_or(AdminError::NotFound("user"))
    }

    /// The user, with the groups they belong to.
    pub fn get_user(&self, id: &str) -> AdminResult<UserView> {
        let mut view = UserView::of(&self.user(id)?);
        view.groups = Some(self.user_groups(id)?);
        Ok(view)
    }

    /// A page of users by username, after `after`, matching `search`.
    pub fn list_users(
        &self,
        search: Option<&str>,
        after: Option<&str>,
        limit: Option<i64>,
    ) -> AdminResult<UserPage> {
        let limit = page_limit(limit)?;
        // One more than asked tells whether there is a next page.
        let mut users = self.store.find_users(&UserQuery {
            search,
            after,
            limit: limit + 1,
        })?;
        let more = users.len() as i64 > limit;
        users.truncate(limit as usize);
        Ok(UserPage {
            next_after: more
                .then(|| users.last().map(|u| u.username.clone()))
                .flatten(),
            users: users.iter().map(UserView::of).collect(),
        })
    }

    pub fn create_user(&self, new: NewUser) -> AdminResult<UserView> {
        let username = check_username(&new.username)?;
        check_password(&new.password)?;
        let mut user = User::new(random_uuid(), username, String::new(), self.now);
        apply_json_claims(&mut user, &new.claims)?;
        user.is_admin = new.admin;
        user.password_hash =
            hash_password(&new.password).map_err(|e| AdminError::Internal(e.to_string()))?;
        self.add_user(user)
    }

    /// Stores a new user whose claims are checked and password hashed (the CLI builds
    /// them from its flags).
    pub fn add_user(&self, user: User) -> AdminResult<UserView> {
        let event = self.event(
            "user.created",
            &user.id,
            Some(json!({ "username": user.username, "admin": user.is_admin })),
        );
        match self
            .store
            .apply_audited(AdminChange::CreateUser(&user), &event)
        {
            Ok(_) => {}
            Err(crate::store::StoreError::Conflict) => {
                return Err(AdminError::Conflict(format!(
                    "user {} already exists",
                    user.username
                )));
            }
            Err(e) => return Err(e.into()),
        }
        self.logged(&event);
        let mut view = UserView::of(&user);
        view.groups = Some(Vec::new());
        Ok(view)
    }

    /// Changes claims, role or disabled state. Disabling ends every session of the user
    /// and revokes every grant (returned, for the session store and the outbox).
    pub fn update_user(
        &self,
        id: &str,
        patch: &UserPatch,
    ) -> AdminResult<(UserView, EndedSessions)> {
        let before = self.user(id)?;
        let mut user = before.clone();
        apply_json_claims(&mut user, &patch.claims)?;
        if let Some(admin) = patch.admin {
            user.is_admin = admin;
        }
        if let Some(required) = patch.mfa_required {
            user.mfa_required = required;
        }
        match patch.disabled {
            Some(true) if user.disabled_at.is_none() => user.disabled_at = Some(self.now),
            Some(false) => user.disabled_at = None,
            _ => {}
        }
        let mut changed: Vec<&str> = patch.claims.keys().map(String::as_str).collect();
        if patch.admin.is_some() {
            changed.push("admin");
        }
        if patch.disabled.is_some() {
            changed.push("disabled");
        }
        if patch.mfa_required.is_some() {
            changed.push("mfa_required");
        }
        self.save_user(&before, user, &changed)
    }

    /// Stores `user` as changed from `before` (`changed` names the fields, for the audit).
    ///
    /// A new address is not verified unless the operator says so in the same change
    /// (`email_verified` among `changed`): `email_verified` is true only through a link
    /// sent to the address or an operator's explicit word (issue 23 §2). Links sent to
    /// the old address, or to one the user asked to change to, stop working.
    pub fn save_user(
        &self,
        before: &User,
        mut user: User,
        changed: &[&str],
    ) -> AdminResult<(UserView, EndedSessions)> {
        let new_address = !same_address(before.email.as_deref(), user.email.as_deref());
        if new_address && !changed.contains(&"email_verified") {
            user.email_verified = false;
        }
        // An administrator cannot lock themselves out: another one must do it.
        if self.is_acting_user(&user.id) && (!user.is_admin || user.disabled_at.is_some()) {
            return Err(AdminError::invalid(
                "you cannot disable your own account or remove your own admin role",
            ));
        }
        let action = match (before.disabled_at, user.disabled_at) {
            (None, Some(_)) => "user.disabled",
            (Some(_), None) => "user.enabled",
            _ => "user.updated",
        };
        let event = self.event(action, &user.id, Some(json!({ "changed": changed })));
        // A disabled user's sessions and grants end in the same transaction.
        let ended = self.audited(AdminChange::UpdateUser(&user), &event, "user")?;
        // Links sent to the old address (a reset among them) or to one the user asked to
        // change to stopped working in the same transaction (`AdminChange::UpdateUser`).
        Ok((self.get_user(&user.id)?, ended))
    }

    fn is_acting_user(&self, id: &str) -> bool {
        matches!(self.actor, Actor::User { id: me, .. } if me == id)
    }

    /// Sets the password; the user's sessions and grants end (a reset after a compromise
    /// locks the intruder out).
    pub fn set_password(&self, id: &str, password: &Secret<String>) -> AdminResult<EndedSessions> {
        check_password(password)?;
        self.user(id)?;
        let hash = hash_password(password).map_err(|e| AdminError::Internal(e.to_string()))?;
        self.set_password_hash(id, &hash)
    }

    /// `set_password` with the hash made by the caller (the CLI's own password rule).
    pub fn set_password_hash(&self, id: &str, hash: &str) -> AdminResult<EndedSessions> {
        let event = self.event("user.password_set", id, None);
        let change = AdminChange::SetPassword { user_id: id, hash };
        let ended = self.audited(change, &event, "user")?;
        crate::audit::password_changed(id);
        Ok(ended)
    }

    /// Deletes the user after ending their sessions (their apps are told).
    pub fn delete_user(&self, id: &str) -> AdminResult<EndedSessions> {
        let user = self.user(id)?;
        if self.is_acting_user(id) {
            return Err(AdminError::invalid("you cannot delete your own account"));
        }
        let event = self.event(
            "user.deleted",
            id,
            Some(json!({ "username": user.username })),
        );
        // Its sessions end (their apps are told) in the same transaction.
        self.audited(AdminChange::DeleteUser(id), &event, "user")
    }
}

/// Whether two addresses are the same (the domain and, in practice, the local part are
/// compared without case).
fn same_address(a: Option<&str>, b: Option<&str>) -> bool {
    match (a, b) {
        (Some(a), Some(b)) => a.trim().eq_ignore_ascii_case(b.trim()),
        (None, None) => true,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Settings;
    use crate::protocol::links::{self, LinkPurpose, LinkRefused};
    use crate::protocol::testing::TestWorld;

    #[test]
    fn an_operators_new_address_is_unverified_unless_they_say_so_and_old_links_stop() {
        let world = TestWorld::default();
        let mut alice = world.add_user("alice");
        alice.email = Some("a@example.com".into());
        alice.email_verified = true;
        world.store.update_user(&alice, 1).unwrap();
        let ctx = world.ctx();
        let link = links::issue(
            &ctx,
            LinkPurpose::EmailVerification,
            Some(&alice.id),
            "a@example.com",
            None,
        )
        .unwrap();
        let settings = Settings::from_sources(None, |_| None).unwrap();
        let admin = Admin {
            store: &*world.store,
            kek: None,
            settings: &settings,
            now: ctx.now,
            actor: &Actor::Operator,
            address: None,
        };
        let stored = || world.store.find_user(&alice.id).unwrap().unwrap();
        let reset = links::issue(
            &ctx,
            LinkPurpose::PasswordReset,
            Some(&alice.id),
            "a@example.com",
            None,
        )
        .unwrap();
        let change = links::issue(
            &ctx,
            LinkPurpose::EmailChange,
            Some(&alice.id),
            "new@example.com",
            None,
        )
        .unwrap();

        // The same address in another case, and other changes: still verified.
        let mut same = stored();
        same.email = Some("A@example.com".into());
        admin.save_user(&stored(), same, &["email"]).unwrap();
        assert!(stored().email_verified);

        let mut moved = stored();
        moved.email = Some("b@example.com".into());
        admin.save_user(&stored(), moved, &["email"]).unwrap();
        assert!(!stored().email_verified, "kept verified by nobody's word");
        assert_eq!(
            links::take(&ctx, LinkPurpose::EmailVerification, link.token.expose()).unwrap(),
            Err(LinkRefused::Used)
        );
        // A reset link sent to the old address, a change asked before: gone with it.
        assert_eq!(
            links::take(&ctx, LinkPurpose::PasswordReset, reset.token.expose()).unwrap(),
            Err(LinkRefused::Used)
        );
        assert_eq!(
            links::take(&ctx, LinkPurpose::EmailChange, change.token.expose()).unwrap(),
            Err(LinkRefused::Used)
        );

        let mut vouched = stored();
        vouched.email = Some("c@example.com".into());
        vouched.email_verified = true;
        admin
            .save_user(&stored(), vouched, &["email", "email_verified"])
            .unwrap();
        assert!(stored().email_verified, "the operator said so");
    }

    #[test]
    fn an_operators_new_password_ends_reset_links_and_a_pending_change_of_address() {
        let world = TestWorld::default();
        let mut alice = world.add_user("alice");
        alice.email = Some("a@example.com".into());
        world.store.update_user(&alice, 1).unwrap();
        let ctx = world.ctx();
        let issue = |purpose, to| {
            links::issue(&ctx, purpose, Some(&alice.id), to, None)
                .unwrap()
                .token
        };
        let reset = issue(LinkPurpose::PasswordReset, "a@example.com");
        let change = issue(LinkPurpose::EmailChange, "new@example.com");
        let verify = issue(LinkPurpose::EmailVerification, "a@example.com");
        let settings = Settings::from_sources(None, |_| None).unwrap();
        let admin = Admin {
            store: &*world.store,
            kek: None,
            settings: &settings,
            now: ctx.now,
            actor: &Actor::Operator,
            address: None,
        };
        admin
            .set_password(
                &alice.id,
                &Secret::new("violet tugboat anthem drizzle".into()),
            )
            .unwrap();
        for (purpose, token) in [
            (LinkPurpose::PasswordReset, &reset),
            (LinkPurpose::EmailChange, &change),
        ] {
            assert_eq!(
                links::take(&ctx, purpose, token.expose()).unwrap(),
                Err(LinkRefused::Used)
            );
        }
        // The address is the same: proving it still makes sense.
        assert!(
            links::take(&ctx, LinkPurpose::EmailVerification, verify.expose())
                .unwrap()
                .is_ok()
        );
    }
}
