//! Accounts made by invitation and by open sign-up (`SignupStore`). Accepting a link is
//! one transaction: the link's conditional UPDATE (as `LinkStore::use_link`), the new
//! user (and its passkey, when it signs in by one), its audit event. A second use, or a racing one, finds the link used and writes
//! nothing; a username taken meanwhile rolls the whole back, so the link still works for
//! another name.

use diesel::prelude::*;

use super::events::insert_event;
use super::{SqlStore, users};
use crate::domain::{UnixTime, UsernameKey};
use crate::store::schema::{action_links, passkeys, pending_signups, users as users_table};
use crate::store::{
    Accepted, ActionLink, NewAuditEvent, PendingSignup, SignupStore, StoreError, StoreResult,
    StoredPasskey, User,
};

/// Why an acceptance's transaction rolled back: a record that is taken (said as such),
/// or the store.
enum Abort {
    Taken(Accepted),
    Store(StoreError),
}

impl Abort {
    /// A unique violation is `taken`; anything else is the store's.
    fn taken(error: StoreError, taken: Accepted) -> Self {
        match error {
            StoreError::Conflict => Self::Taken(taken),
            other => Self::Store(other),
        }
    }
}

impl From<diesel::result::Error> for Abort {
    fn from(e: diesel::result::Error) -> Self {
        Self::Store(e.into())
    }
}

diesel::define_sql_function!(fn lower(x: diesel::sql_types::Text) -> diesel::sql_types::Text);

impl SignupStore for SqlStore {
    fn accept_link(
        &self,
        token_hash: &str,
        purpose: &str,
        now: UnixTime,
        user: &User,
        passkey: Option<&StoredPasskey>,
        event: &NewAuditEvent,
    ) -> StoreResult<Accepted> {
        let outcome = self.conn()?.transaction::<_, Abort, _>(|conn| {
            let used = diesel::update(
                action_links::table
                    .find(token_hash)
                    .filter(action_links::purpose.eq(purpose))
                    .filter(action_links::used_at.is_null())
                    .filter(action_links::expires_at.gt(now)),
            )
            .set(action_links::used_at.eq(now))
            .execute(conn)?;
            if used != 1 {
                return Ok(Accepted::LinkUnusable);
            }
            // A conflict (the name, or the passkey's credential, is taken) rolls the
            // link's use back with the rest.
            users::insert_user(conn, user).map_err(|e| Abort::taken(e, Accepted::UsernameTaken))?;
            if let Some(passkey) = passkey {
                diesel::insert_into(passkeys::table)
                    .values(passkey)
                    .execute(conn)
                    .map_err(|e| Abort::taken(e.into(), Accepted::PasskeyTaken))?;
            }
            insert_event(conn, event).map_err(Abort::Store)?;
            diesel::delete(pending_signups::table.find(token_hash)).execute(conn)?;
            Ok(Accepted::Created)
        });
        match outcome {
            Err(Abort::Taken(taken)) => Ok(taken),
            Err(Abort::Store(e)) => Err(e),
            Ok(Accepted::Created) => {
                self.liveness_changed();
                Ok(Accepted::Created)
            }
            Ok(other) => Ok(other),
        }
    }

    fn insert_pending_signup(&self, link: &ActionLink, pending: &PendingSignup) -> StoreResult<()> {
        self.conn()?.transaction::<_, StoreError, _>(|conn| {
            diesel::insert_into(action_links::table)
                .values(link)
                .execute(conn)?;
            diesel::insert_into(pending_signups::table)
                .values(pending)
                .execute(conn)?;
            Ok(())
        })
    }

    fn find_pending_signup(&self, token_hash: &str) -> StoreResult<Option<PendingSignup>> {
        Ok(pending_signups::table
            .find(token_hash)
            .select(PendingSignup::as_select())
            .get_result(&mut *self.conn()?)
            .optional()?)
    }

    fn email_in_use(&self, email: &str) -> StoreResult<bool> {
        let wanted = email.trim().to_lowercase();
        let found: i64 = users_table::table
            .filter(lower(users_table::email.assume_not_null()).eq(wanted))
            .count()
            .get_result(&mut *self.conn()?)?;
        Ok(found > 0)
    }

    fn username_in_use(&self, username: &str) -> StoreResult<bool> {
        let key = UsernameKey::new(username);
        let found: i64 = users_table::table
            .filter(users_table::username_key.eq(key.as_str()))
            .count()
            .get_result(&mut *self.conn()?)?;
        Ok(found > 0)
    }
}
