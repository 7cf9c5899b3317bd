//! Links sent by mail (`LinkStore`). A link is used by one conditional UPDATE: of two
//! requests racing with the same link, the database lets one through.

use diesel::prelude::*;

use super::events::insert_event;
use super::{AnyConnection, SqlStore};
use crate::domain::UnixTime;
use crate::store::schema::{action_links, users};
use crate::store::{
    ADDRESS_CONFIRMATIONS, ActionLink, LinkStore, NewAuditEvent, StoreError, StoreResult,
};

/// Marks used every unused link of the user with one of `purposes`, inside the caller's
/// transaction.
pub(super) fn retire_in(
    conn: &mut AnyConnection,
    user_id: &str,
    purposes: &[&str],
    now: UnixTime,
) -> StoreResult<usize> {
    Ok(diesel::update(
        action_links::table
            .filter(action_links::user_id.eq(user_id))
            .filter(action_links::purpose.eq_any(purposes))
            .filter(action_links::used_at.is_null()),
    )
    .set(action_links::used_at.eq(now))
    .execute(conn)?)
}

/// Uses the link of hash `token_hash`, inside the caller's transaction, if it is one of
/// `purpose` for `user_id` that works now.
fn take_in(
    conn: &mut AnyConnection,
    token_hash: &str,
    purpose: &str,
    user_id: &str,
    now: UnixTime,
) -> StoreResult<bool> {
    let used = diesel::update(
        action_links::table
            .find(token_hash)
            .filter(action_links::purpose.eq(purpose))
            .filter(action_links::user_id.eq(user_id))
            .filter(action_links::used_at.is_null())
            .filter(action_links::expires_at.gt(now)),
    )
    .set(action_links::used_at.eq(now))
    .execute(conn)?;
    Ok(used == 1)
}

/// Uses the link of hash `token_hash`, inside the caller's transaction, if it is one of
/// `purpose` for `user_id` that works now and the user is enabled and still at the
/// link's address. `false` if not: the caller rolls back (the UPDATE may have run).
///
/// The UPDATE locks the link's row: a concurrent change of address, which retires the
/// user's links in its own transaction, either commits first (and this UPDATE finds the
/// link used) or waits for this one.
pub(super) fn use_for_user_in(
    conn: &mut AnyConnection,
    token_hash: &str,
    purpose: &str,
    user_id: &str,
    now: UnixTime,
) -> StoreResult<bool> {
    if !take_in(conn, token_hash, purpose, user_id, now)? {
        return Ok(false);
    }
    let sent_to: String = action_links::table
        .find(token_hash)
        .select(action_links::email)
        .get_result(conn)?;
    let account: Option<(Option<String>, Option<i64>)> = users::table
        .find(user_id)
        .select((users::email, users::disabled_at))
        .get_result(conn)
        .optional()?;
    Ok(matches!(
        account,
        Some((Some(email), None)) if email.eq_ignore_ascii_case(&sent_to)
    ))
}

/// Keeps a new link, inside the caller's transaction.
pub(super) fn insert_link_in(conn: &mut AnyConnection, link: &ActionLink) -> StoreResult<()> {
    diesel::insert_into(action_links::table)
        .values(link)
        .execute(conn)?;
    Ok(())
}

impl LinkStore for SqlStore {
    fn insert_link(&self, link: &ActionLink) -> StoreResult<()> {
        insert_link_in(&mut *self.conn()?, link)
    }

    fn find_link(&self, token_hash: &str) -> StoreResult<Option<ActionLink>> {
        Ok(action_links::table
            .find(token_hash)
            .select(ActionLink::as_select())
            .get_result(&mut *self.conn()?)
            .optional()?)
    }

    fn use_link(
        &self,
        token_hash: &str,
        purpose: &str,
        now: UnixTime,
    ) -> StoreResult<Option<ActionLink>> {
        self.conn()?.transaction::<_, StoreError, _>(|conn| {
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
                return Ok(None);
            }
            Ok(Some(
                action_links::table
                    .find(token_hash)
                    .select(ActionLink::as_select())
                    .get_result(conn)?,
            ))
        })
    }

    fn retire_links(&self, user_id: &str, purpose: &str, now: UnixTime) -> StoreResult<usize> {
        Ok(diesel::update(
            action_links::table
                .filter(action_links::user_id.eq(user_id))
                .filter(action_links::purpose.eq(purpose))
                .filter(action_links::used_at.is_null()),
        )
        .set(action_links::used_at.eq(now))
        .execute(&mut *self.conn()?)?)
    }

    fn confirm_address(
        &self,
        token_hash: &str,
        purpose: &str,
        user_id: &str,
        expected: Option<&str>,
        event: &NewAuditEvent,
    ) -> StoreResult<bool> {
        let now = event.at;
        let done = self.conn()?.transaction::<_, StoreError, _>(|conn| {
            if !take_in(conn, token_hash, purpose, user_id, now)? {
                return Err(StoreError::Gone);
            }
            let email: String = action_links::table
                .find(token_hash)
                .select(action_links::email)
                .get_result(conn)?;
            // Two columns, only if the row still has the address read: an
            // administrator's concurrent change (a disable, a new address) is kept.
            let row = users::table
                .find(user_id)
                .filter(users::disabled_at.is_null());
            let set = (
                users::email.eq(Some(&email)),
                users::email_verified.eq(true),
                users::updated_at.eq(now),
            );
            let updated = match expected {
                Some(expected) => diesel::update(row.filter(users::email.eq(expected)))
                    .set(set)
                    .execute(conn)?,
                None => diesel::update(row.filter(users::email.is_null()))
                    .set(set)
                    .execute(conn)?,
            };
            if updated != 1 {
                return Err(StoreError::Gone);
            }
            // Whatever else was pending for an address is settled by this one.
            retire_in(conn, user_id, &ADDRESS_CONFIRMATIONS, now)?;
            insert_event(conn, event)?;
            Ok(())
        });
        match done {
            Ok(()) => {
                self.liveness_changed();
                Ok(true)
            }
            Err(StoreError::Gone) => Ok(false),
            Err(e) => Err(e),
        }
    }
}
