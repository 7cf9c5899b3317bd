//! Upstream identities and their links (`UpstreamStore`, issue 24). Every change is one
//! transaction with its audit event; a link races safely (the (issuer, subject) key is
//! unique, and an existing row is taken over only by a conditional UPDATE of an unlinked
//! row).

use diesel::prelude::*;

use super::events::insert_event;
use super::{SqlStore, users};
use crate::domain::UnixTime;
use crate::store::schema::{passkeys, upstream_identities as ids, users as users_table};
use crate::store::{
    NewAuditEvent, StoreError, StoreResult, Unlinked, UpstreamIdentity, UpstreamStore, User, WaysIn,
};

use super::AnyConnection;

/// Links `identity` inside a transaction: `false` if it is linked or a tombstone.
fn link_in(conn: &mut AnyConnection, identity: &UpstreamIdentity) -> StoreResult<bool> {
    let existing = ids::table
        .find((&identity.issuer, &identity.subject))
        .select(UpstreamIdentity::as_select())
        .get_result(conn)
        .optional()?;
    match existing {
        None => {
            diesel::insert_into(ids::table)
                .values(identity)
                .execute(conn)?;
            Ok(true)
        }
        Some(_) => {
            // Only an identity its user unlinked is taken over (not a linked one, not a
            // removed account's tombstone). `unlinked_at` is cleared: a linked identity
            // refuses every proof anyway, and the next unlink sets a later time (so a
            // proof issued before the first unlink stays dead), while a row whose
            // account is removed later must read as a tombstone.
            let updated = diesel::update(
                ids::table
                    .find((&identity.issuer, &identity.subject))
                    .filter(ids::user_id.is_null())
                    .filter(ids::unlinked_at.is_not_null()),
            )
            .set((
                ids::user_id.eq(&identity.user_id),
                ids::provider.eq(&identity.provider),
                ids::email.eq(&identity.email),
                ids::created_at.eq(identity.created_at),
                ids::last_used_at.eq(identity.last_used_at),
                ids::unlinked_at.eq(None::<i64>),
            ))
            .execute(conn)?;
            Ok(updated == 1)
        }
    }
}

impl UpstreamStore for SqlStore {
    fn find_upstream_identity(
        &self,
        issuer: &str,
        subject: &str,
    ) -> StoreResult<Option<UpstreamIdentity>> {
        Ok(ids::table
            .find((issuer, subject))
            .select(UpstreamIdentity::as_select())
            .get_result(&mut *self.conn()?)
            .optional()?)
    }

    fn list_upstream_identities(&self, user_id: &str) -> StoreResult<Vec<UpstreamIdentity>> {
        Ok(ids::table
            .filter(ids::user_id.eq(user_id))
            .order((ids::created_at, ids::issuer, ids::subject))
            .select(UpstreamIdentity::as_select())
            .load(&mut *self.conn()?)?)
    }

    fn touch_upstream_identity(
        &self,
        issuer: &str,
        subject: &str,
        email: Option<&str>,
        now: UnixTime,
    ) -> StoreResult<()> {
        diesel::update(ids::table.find((issuer, subject)))
            .set((ids::last_used_at.eq(now), ids::email.eq(email)))
            .execute(&mut *self.conn()?)?;
        Ok(())
    }

    fn link_upstream_identity(
        &self,
        identity: &UpstreamIdentity,
        event: &NewAuditEvent,
    ) -> StoreResult<bool> {
        let outcome = self.conn()?.transaction::<_, StoreError, _>(|conn| {
            if !link_in(conn, identity)? {
                return Ok(false);
            }
            insert_event(conn, event)?;
            Ok(true)
        });
        match outcome {
            // Linked by a racing request meanwhile (the key is unique).
            Err(StoreError::Conflict) => Ok(false),
            other => other,
        }
    }

    fn create_upstream_user(
        &self,
        user: &User,
        identity: &UpstreamIdentity,
        event: &NewAuditEvent,
    ) -> StoreResult<bool> {
        let created = self.conn()?.transaction::<_, StoreError, _>(|conn| {
            // `Conflict` (the username is taken) rolls everything back.
            users::insert_user(conn, user)?;
            if !link_in(conn, identity)? {
                return Err(StoreError::Gone);
            }
            insert_event(conn, event)?;
            Ok(true)
        });
        match created {
            // The identity was linked meanwhile: the new account was rolled back.
            Err(StoreError::Gone) => Ok(false),
            Ok(true) => {
                self.liveness_changed();
                Ok(true)
            }
            other => other,
        }
    }

    fn unlink_upstream_identity(
        &self,
        user_id: &str,
        issuer: &str,
        subject: &str,
        now: UnixTime,
        ways: &WaysIn<'_>,
        event: &NewAuditEvent,
    ) -> StoreResult<Unlinked> {
        self.conn()?.transaction::<_, StoreError, _>(|conn| {
            // The user's row is written first: it locks it (PostgreSQL: a row lock until
            // commit; SQLite: the database's write lock), so two unlinks of the same
            // account run one after the other, and the second counts what the first
            // left. Without it, under READ COMMITTED each would see the other's link
            // still there, and both go: no way in left.
            diesel::update(users_table::table.find(user_id))
                .set(users_table::id.eq(users_table::id))
                .execute(conn)?;
            // The other links that can still sign in (their provider is configured).
            let other_links: i64 = ids::table
                .filter(ids::user_id.eq(user_id))
                .filter(ids::provider.eq_any(ways.providers))
                .filter(diesel::dsl::not(
                    ids::issuer.eq(issuer).and(ids::subject.eq(subject)),
                ))
                .count()
                .get_result(conn)?;
            let mine: i64 = ids::table
                .find((issuer, subject))
                .filter(ids::user_id.eq(user_id))
                .count()
                .get_result(conn)?;
            if mine == 0 {
                return Ok(Unlinked::NotFound);
            }
            let password_hash: Option<String> = users_table::table
                .find(user_id)
                .select(users_table::password_hash)
                .get_result(conn)
                .optional()?;
            let has_password = password_hash.is_some_and(|h| !h.is_empty());
            let keys: i64 = passkeys::table
                .filter(passkeys::user_id.eq(user_id))
                .count()
                .get_result(conn)?;
            if other_links == 0 && !has_password && (keys == 0 || !ways.passkeys) {
                return Ok(Unlinked::LastWay);
            }
            diesel::update(
                ids::table
                    .find((issuer, subject))
                    .filter(ids::user_id.eq(user_id)),
            )
            .set((
                ids::user_id.eq(None::<String>),
                ids::unlinked_at.eq(Some(now)),
            ))
            .execute(conn)?;
            insert_event(conn, event)?;
            Ok(Unlinked::Done)
        })
    }
}
