use diesel::prelude::*;

use super::SqlStore;
use crate::domain::UnixTime;
use crate::store::schema::{
    action_links, authorization_codes, browser_sessions, client_assertion_jtis, grants,
    logout_deliveries, mail_outbox, opaque_access_tokens, refresh_tokens, revoked_access_tokens,
};
use crate::store::{
    AuthorizationCode, Grant, GrantStore, OpaqueAccessToken, RefreshToken, StoreError, StoreResult,
};

impl GrantStore for SqlStore {
    fn insert_code(&self, code: &AuthorizationCode) -> StoreResult<()> {
        diesel::insert_into(authorization_codes::table)
            .values(code)
            .execute(&mut *self.conn()?)?;
        Ok(())
    }

    fn find_code(&self, code_hash: &str) -> StoreResult<Option<AuthorizationCode>> {
        Ok(authorization_codes::table
            .find(code_hash)
            .select(AuthorizationCode::as_select())
            .get_result(&mut *self.conn()?)
            .optional()?)
    }

    fn redeem_code(
        &self,
        code_hash: &str,
        grant: &Grant,
        refresh: Option<&RefreshToken>,
        access: Option<&OpaqueAccessToken>,
        now: UnixTime,
    ) -> StoreResult<bool> {
        self.conn()?.transaction::<_, StoreError, _>(|conn| {
            // The conditional UPDATE is the single point of truth: under concurrent
            // redemption exactly one transaction sees one affected row (PostgreSQL row
            // locks re-check the predicate; SQLite serialises writers).
            let claimed = diesel::update(
                authorization_codes::table
                    .find(code_hash)
                    .filter(authorization_codes::consumed_at.is_null()),
            )
            .set(authorization_codes::consumed_at.eq(now))
            .execute(conn)?;
            if claimed != 1 {
                return Ok(false);
            }
            // A code from a session that has ended since makes no grant (the code is
            // spent either way).
            if let Some(sid) = &grant.session_id
                && !super::sessions::session_still_open(conn, sid)?
            {
                return Ok(false);
            }
            diesel::insert_into(grants::table)
                .values(grant)
                .execute(conn)?;
            if let Some(token) = refresh {
                diesel::insert_into(refresh_tokens::table)
                    .values(token)
                    .execute(conn)?;
            }
            if let Some(token) = access {
                diesel::insert_into(opaque_access_tokens::table)
                    .values(token)
                    .execute(conn)?;
            }
            Ok(true)
        })
    }

    fn find_grant(&self, id: &str) -> StoreResult<Option<Grant>> {
        Ok(grants::table
            .find(id)
            .select(Grant::as_select())
            .get_result(&mut *self.conn()?)
            .optional()?)
    }

    fn find_session_grant(
        &self,
        client_id: &str,
        user_id: &str,
        sid: &str,
        made_by: UnixTime,
    ) -> StoreResult<Option<Grant>> {
        Ok(grants::table
            .filter(grants::client_id.eq(client_id))
            .filter(grants::user_id.eq(user_id))
            .filter(grants::session_id.eq(sid))
            .filter(grants::created_at.le(made_by))
            .order(grants::created_at.desc())
            .select(Grant::as_select())
            .first(&mut *self.conn()?)
            .optional()?)
    }

    fn create_grant(&self, grant: &Grant) -> StoreResult<bool> {
        self.conn()?.transaction::<_, StoreError, _>(|conn| {
            // As for a code's grant: the session row is locked first (a write, as SQLite
            // wants), so a sign-out either sees this grant or refuses it.
            if let Some(sid) = &grant.session_id
                && !super::sessions::session_still_open(conn, sid)?
            {
                return Ok(false);
            }
            diesel::insert_into(grants::table)
                .values(grant)
                .execute(conn)?;
            Ok(true)
        })
    }

    fn revoke_grant(&self, id: &str, now: UnixTime) -> StoreResult<()> {
        diesel::update(grants::table.find(id).filter(grants::revoked_at.is_null()))
            .set(grants::revoked_at.eq(now))
            .execute(&mut *self.conn()?)?;
        self.liveness_changed();
        Ok(())
    }

    fn revoke_session_grants(&self, sid: &str, now: UnixTime) -> StoreResult<usize> {
        let revoked = diesel::update(
            grants::table
                .filter(grants::session_id.eq(sid))
                .filter(grants::revoked_at.is_null()),
        )
        .set(grants::revoked_at.eq(now))
        .execute(&mut *self.conn()?)?;
        self.liveness_changed();
        Ok(revoked)
    }

    fn purge_expired(&self, before: UnixTime) -> StoreResult<usize> {
        let mut conn = self.conn()?;
        let mut purged = diesel::delete(
            authorization_codes::table.filter(authorization_codes::expires_at.lt(before)),
        )
        .execute(&mut *conn)?;
        purged +=
            diesel::delete(refresh_tokens::table.filter(refresh_tokens::expires_at.lt(before)))
                .execute(&mut *conn)?;
        purged += diesel::delete(
            revoked_access_tokens::table.filter(revoked_access_tokens::expires_at.lt(before)),
        )
        .execute(&mut *conn)?;
        purged += diesel::delete(
            opaque_access_tokens::table.filter(opaque_access_tokens::expires_at.lt(before)),
        )
        .execute(&mut *conn)?;
        purged += diesel::delete(
            client_assertion_jtis::table.filter(client_assertion_jtis::expires_at.lt(before)),
        )
        .execute(&mut *conn)?;
        purged += diesel::delete(action_links::table.filter(action_links::expires_at.lt(before)))
            .execute(&mut *conn)?;
        purged += diesel::delete(
            logout_deliveries::table.filter(
                logout_deliveries::delivered_at
                    .lt(before)
                    .or(logout_deliveries::failed_at.lt(before)),
            ),
        )
        .execute(&mut *conn)?;
        // Sent and given-up mail (their messages are already gone): the rows only said
        // when and why.
        purged += diesel::delete(
            mail_outbox::table.filter(
                mail_outbox::sent_at
                    .lt(before)
                    .or(mail_outbox::failed_at.lt(before)),
            ),
        )
        .execute(&mut *conn)?;
        // Only ended sessions: one past its end but not yet ended (the sweeper was down)
        // is still to be announced.
        purged += diesel::delete(
            browser_sessions::table
                .filter(browser_sessions::expires_at.lt(before))
                .filter(browser_sessions::ended_at.is_not_null()),
        )
        .execute(&mut *conn)?;
        // A grant past its absolute end can issue nothing more; its tokens cascade.
        purged += diesel::delete(grants::table.filter(grants::expires_at.lt(before)))
            .execute(&mut *conn)?;
        Ok(purged)
    }
}
