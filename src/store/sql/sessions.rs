//! Browser sessions and the back-channel logout outbox (`SessionRecordStore`).

use diesel::prelude::*;

use super::{AnyConnection, SqlStore};
use crate::crypto::tokens::random_uuid;
use crate::domain::UnixTime;
use crate::store::schema::{
    browser_sessions, clients, grants, login_failures, logout_deliveries, users,
};
use crate::store::{
    BrowserSession, DeliveryOutcome, EndedSessions, FailureCount, LogoutDelivery,
    SessionRecordStore, StoreError, StoreResult,
};

/// Ends the session `sid` inside the caller's transaction: marks it ended (only if it
/// had not ended: the conditional UPDATE decides between racing instances), revokes its
/// grants and queues one logout token per client with a back-channel logout URI.
///
/// The UPDATE comes first: on SQLite a transaction that reads before it writes cannot
/// take the write lock if another connection wrote meanwhile ("database is locked").
/// With `keep_offline` (a session that merely ran out), grants with `offline_access`
/// outlive it (OIDC Core §11: access "even when the End-User is not logged in";
/// Back-Channel Logout §2.7): only what depended on the session goes.
fn end_in(
    conn: &mut AnyConnection,
    sid: &str,
    now: UnixTime,
    keep_offline: bool,
    ended: &mut EndedSessions,
) -> StoreResult<()> {
    end_if_in(conn, sid, None, now, keep_offline, ended)
}

/// `end_in`, with `store_key`: only if the session is still under that record.
fn end_if_in(
    conn: &mut AnyConnection,
    sid: &str,
    store_key: Option<&str>,
    now: UnixTime,
    keep_offline: bool,
    ended: &mut EndedSessions,
) -> StoreResult<()> {
    let live = browser_sessions::table
        .find(sid)
        .filter(browser_sessions::ended_at.is_null());
    let claimed = match store_key {
        Some(key) => diesel::update(live.filter(browser_sessions::store_key.eq(key)))
            .set(browser_sessions::ended_at.eq(now))
            .execute(conn)?,
        None => diesel::update(live)
            .set(browser_sessions::ended_at.eq(now))
            .execute(conn)?,
    };
    if claimed != 1 {
        return Ok(());
    }
    let session = browser_sessions::table
        .find(sid)
        .select(BrowserSession::as_select())
        .get_result(conn)?;
    let client_ids: Vec<String> = grants::table
        .filter(grants::session_id.eq(sid))
        .select(grants::client_id)
        .distinct()
        .load(conn)?;
    let session_grants = grants::table
        .filter(grants::session_id.eq(sid))
        .filter(grants::revoked_at.is_null());
    if keep_offline {
        diesel::update(session_grants.filter(grants::scope.not_like("%offline_access%")))
            .set(grants::revoked_at.eq(now))
            .execute(conn)?;
    } else {
        diesel::update(session_grants)
            .set(grants::revoked_at.eq(now))
            .execute(conn)?;
    }
    let listeners: Vec<String> = clients::table
        .filter(clients::id.eq_any(&client_ids))
        .filter(clients::backchannel_logout_uri.is_not_null())
        .select(clients::id)
        .load(conn)?;
    for client_id in listeners {
        diesel::insert_into(logout_deliveries::table)
            .values(&LogoutDelivery {
                id: random_uuid(),
                client_id,
                sid: sid.to_owned(),
                subject: session.user_id.clone(),
                created_at: now,
                next_attempt_at: now,
                attempts: 0,
                delivered_at: None,
                failed_at: None,
                last_error: None,
            })
            .execute(conn)?;
        ended.deliveries += 1;
    }
    ended.clients.push((sid.to_owned(), client_ids));
    ended.sessions.push(session);
    Ok(())
}

/// Makes the caller's transaction a writing one before it reads: SQLite takes its write
/// lock at a transaction's first write, and one that read first cannot take it once
/// another connection has written ("database is locked"). The UPDATE matches no row, so
/// PostgreSQL locks nothing.
fn take_write_lock(conn: &mut AnyConnection) -> StoreResult<()> {
    diesel::update(browser_sessions::table.filter(browser_sessions::sid.eq("")))
        .set(browser_sessions::ended_at.eq(browser_sessions::ended_at))
        .execute(conn)?;
    Ok(())
}

/// Whether a code redeemed now may still make a grant in the session `sid`: not if the
/// session has ended or its user is disabled. The no-op UPDATE locks the session row (PostgreSQL), so an
/// `end_session` running at the same time either sees the new grant (and revokes it) or
/// has already ended the session (and the code is refused). A session with no row (begun
/// before sessions were recorded) cannot be told ended.
pub(super) fn session_still_open(conn: &mut AnyConnection, sid: &str) -> StoreResult<bool> {
    // A disabled user's session makes no grant either (one that signed in while the
    // account was being disabled, after its sessions were ended).
    let active_users = users::table
        .filter(users::disabled_at.is_null())
        .select(users::id);
    let touched = diesel::update(
        browser_sessions::table
            .find(sid)
            .filter(browser_sessions::ended_at.is_null())
            .filter(browser_sessions::user_id.eq_any(active_users)),
    )
    .set(browser_sessions::expires_at.eq(browser_sessions::expires_at))
    .execute(conn)?;
    if touched == 1 {
        return Ok(true);
    }
    let known: i64 = browser_sessions::table.find(sid).count().get_result(conn)?;
    Ok(known == 0)
}

/// Ends every live session of the user and revokes all the user's grants, inside the
/// caller's transaction (which must already hold the write lock: see `take_write_lock`).
pub(super) fn end_user_in(
    conn: &mut AnyConnection,
    user_id: &str,
    now: UnixTime,
    ended: &mut EndedSessions,
) -> StoreResult<()> {
    let live: Vec<String> = browser_sessions::table
        .filter(browser_sessions::user_id.eq(user_id))
        .filter(browser_sessions::ended_at.is_null())
        .order(browser_sessions::sid)
        .select(browser_sessions::sid)
        .load(conn)?;
    // Session rows before grants, in `sid` order, as `end_session` locks them
    // (PostgreSQL): no deadlock between the two.
    for sid in live {
        end_in(conn, &sid, now, false, ended)?;
    }
    diesel::update(
        grants::table
            .filter(grants::user_id.eq(user_id))
            .filter(grants::revoked_at.is_null()),
    )
    .set(grants::revoked_at.eq(now))
    .execute(conn)?;
    Ok(())
}

/// `end_in` for one session, made visible to the audited changes.
pub(super) fn end_one_in(
    conn: &mut AnyConnection,
    sid: &str,
    now: UnixTime,
    ended: &mut EndedSessions,
) -> StoreResult<()> {
    end_in(conn, sid, now, false, ended)
}

/// Ends a session lost with the session store (`AdminChange::EndLostSession`), only while
/// it is still under `store_key`. As a session that ran out, not one signed out of: its
/// user never signed out, so its `offline_access` grants live on.
pub(super) fn end_lost_in(
    conn: &mut AnyConnection,
    sid: &str,
    store_key: &str,
    now: UnixTime,
    ended: &mut EndedSessions,
) -> StoreResult<()> {
    end_if_in(conn, sid, Some(store_key), now, true, ended)
}

pub(super) fn lock_for_writing(conn: &mut AnyConnection) -> StoreResult<()> {
    take_write_lock(conn)
}

impl SessionRecordStore for SqlStore {
    fn record_session(&self, session: &BrowserSession) -> StoreResult<bool> {
        // Renew first, insert if there was nothing to renew; no transaction (see
        // `end_in`): a unique `sid` decides a race.
        let mut conn = self.conn()?;
        let renewed = diesel::update(
            browser_sessions::table
                .find(&session.sid)
                .filter(browser_sessions::ended_at.is_null()),
        )
        .set((
            browser_sessions::store_key.eq(&session.store_key),
            browser_sessions::expires_at.eq(session.expires_at),
            browser_sessions::user_agent.eq(&session.user_agent),
            browser_sessions::ip_address.eq(&session.ip_address),
        ))
        .execute(&mut *conn)?;
        if renewed == 1 {
            return Ok(true);
        }
        match diesel::insert_into(browser_sessions::table)
            .values(session)
            .execute(&mut *conn)
        {
            Ok(_) => Ok(true),
            // The sid is taken by a session that has ended: it stays ended.
            Err(diesel::result::Error::DatabaseError(
                diesel::result::DatabaseErrorKind::UniqueViolation,
                _,
            )) => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    fn find_session(&self, sid: &str) -> StoreResult<Option<BrowserSession>> {
        Ok(browser_sessions::table
            .find(sid)
            .select(BrowserSession::as_select())
            .get_result(&mut *self.conn()?)
            .optional()?)
    }

    fn list_user_sessions(&self, user_id: &str, now: UnixTime) -> StoreResult<Vec<BrowserSession>> {
        Ok(browser_sessions::table
            .filter(browser_sessions::user_id.eq(user_id))
            .filter(browser_sessions::ended_at.is_null())
            .filter(browser_sessions::expires_at.gt(now))
            .order(browser_sessions::created_at.desc())
            .select(BrowserSession::as_select())
            .load(&mut *self.conn()?)?)
    }

    fn end_session(&self, sid: &str, now: UnixTime) -> StoreResult<EndedSessions> {
        let ended = self.conn()?.transaction::<_, StoreError, _>(|conn| {
            let mut ended = EndedSessions::default();
            end_in(conn, sid, now, false, &mut ended)?;
            Ok(ended)
        });
        self.liveness_changed();
        ended
    }

    fn end_user_sessions(&self, user_id: &str, now: UnixTime) -> StoreResult<EndedSessions> {
        let ended = self.conn()?.transaction::<_, StoreError, _>(|conn| {
            take_write_lock(conn)?;
            let mut ended = EndedSessions::default();
            end_user_in(conn, user_id, now, &mut ended)?;
            Ok(ended)
        });
        self.liveness_changed();
        ended
    }

    fn end_expired_sessions(&self, now: UnixTime, limit: i64) -> StoreResult<EndedSessions> {
        let expired: Vec<String> = browser_sessions::table
            .filter(browser_sessions::ended_at.is_null())
            .filter(browser_sessions::expires_at.le(now))
            .order(browser_sessions::expires_at)
            .limit(limit)
            .select(browser_sessions::sid)
            .load(&mut *self.conn()?)?;
        // Each in a transaction of its own, which another instance may have beaten.
        let mut ended = EndedSessions::default();
        for sid in expired {
            let one = self.conn()?.transaction::<_, StoreError, _>(|conn| {
                let mut one = EndedSessions::default();
                end_in(conn, &sid, now, true, &mut one)?;
                Ok(one)
            })?;
            ended.deliveries += one.deliveries;
            ended.sessions.extend(one.sessions);
            ended.clients.extend(one.clients);
        }
        if !ended.sessions.is_empty() {
            self.liveness_changed();
        }
        Ok(ended)
    }

    fn claim_logout_deliveries(
        &self,
        now: UnixTime,
        lease_until: UnixTime,
        limit: i64,
    ) -> StoreResult<Vec<LogoutDelivery>> {
        let mut conn = self.conn()?;
        let due = logout_deliveries::table
            .filter(logout_deliveries::delivered_at.is_null())
            .filter(logout_deliveries::failed_at.is_null())
            .filter(logout_deliveries::next_attempt_at.le(now))
            .order(logout_deliveries::next_attempt_at)
            .limit(limit)
            .select(LogoutDelivery::as_select())
            .load(&mut *conn)?;
        let mut claimed = Vec::with_capacity(due.len());
        for mut delivery in due {
            // Optimistic: the row is ours only if nobody moved its due time meanwhile.
            let won = diesel::update(
                logout_deliveries::table
                    .find(&delivery.id)
                    .filter(logout_deliveries::next_attempt_at.eq(delivery.next_attempt_at))
                    .filter(logout_deliveries::delivered_at.is_null())
                    .filter(logout_deliveries::failed_at.is_null()),
            )
            .set((
                logout_deliveries::next_attempt_at.eq(lease_until),
                logout_deliveries::attempts.eq(logout_deliveries::attempts + 1),
            ))
            .execute(&mut *conn)?;
            if won == 1 {
                delivery.attempts += 1;
                delivery.next_attempt_at = lease_until;
                claimed.push(delivery);
            }
        }
        Ok(claimed)
    }

    fn settle_logout_delivery(
        &self,
        id: &str,
        outcome: DeliveryOutcome<'_>,
        now: UnixTime,
    ) -> StoreResult<()> {
        let row = logout_deliveries::table.find(id);
        let mut conn = self.conn()?;
        match outcome {
            DeliveryOutcome::Delivered => diesel::update(row)
                .set(logout_deliveries::delivered_at.eq(now))
                .execute(&mut *conn)?,
            DeliveryOutcome::Failed {
                error,
                retry_at: Some(at),
            } => diesel::update(row)
                .set((
                    logout_deliveries::next_attempt_at.eq(at),
                    logout_deliveries::last_error.eq(error),
                ))
                .execute(&mut *conn)?,
            DeliveryOutcome::Failed {
                error,
                retry_at: None,
            } => diesel::update(row)
                .set((
                    logout_deliveries::failed_at.eq(now),
                    logout_deliveries::last_error.eq(error),
                ))
                .execute(&mut *conn)?,
        };
        Ok(())
    }

    fn find_logout_deliveries(&self, sid: &str) -> StoreResult<Vec<LogoutDelivery>> {
        Ok(logout_deliveries::table
            .filter(logout_deliveries::sid.eq(sid))
            .order(logout_deliveries::created_at)
            .select(LogoutDelivery::as_select())
            .load(&mut *self.conn()?)?)
    }

    fn list_live_sessions(
        &self,
        after: Option<&str>,
        now: UnixTime,
        limit: i64,
    ) -> StoreResult<Vec<BrowserSession>> {
        let mut query = browser_sessions::table
            .filter(browser_sessions::ended_at.is_null())
            .filter(browser_sessions::expires_at.gt(now))
            .into_boxed();
        if let Some(after) = after {
            query = query.filter(browser_sessions::sid.gt(after.to_owned()));
        }
        Ok(query
            .order(browser_sessions::sid)
            .limit(limit)
            .select(BrowserSession::as_select())
            .load(&mut *self.conn()?)?)
    }

    fn record_login_failure(&self, counter_keys: &[String], at: UnixTime) -> StoreResult<()> {
        // One statement per key rather than one multi-row INSERT: the rows are few, and
        // it reads the same on both backends.
        self.conn()?.transaction::<_, StoreError, _>(|conn| {
            for key in counter_keys {
                diesel::insert_into(login_failures::table)
                    .values((
                        login_failures::id.eq(random_uuid()),
                        login_failures::counter_key.eq(key),
                        login_failures::at.eq(at),
                    ))
                    .execute(conn)?;
            }
            Ok(())
        })
    }

    fn login_failures_since(&self, since: UnixTime) -> StoreResult<Vec<FailureCount>> {
        use diesel::dsl::{count_star, min};
        let rows: Vec<(String, i64, Option<i64>)> = login_failures::table
            .filter(login_failures::at.gt(since))
            .group_by(login_failures::counter_key)
            .select((
                login_failures::counter_key,
                count_star(),
                min(login_failures::at),
            ))
            .load(&mut *self.conn()?)?;
        Ok(rows
            .into_iter()
            .map(|(counter_key, failures, first_at)| FailureCount {
                counter_key,
                failures,
                first_at: first_at.unwrap_or(since),
            })
            .collect())
    }

    fn purge_login_failures(&self, before: UnixTime) -> StoreResult<usize> {
        Ok(
            diesel::delete(login_failures::table.filter(login_failures::at.lt(before)))
                .execute(&mut *self.conn()?)?,
        )
    }
}
