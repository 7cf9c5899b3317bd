use diesel::prelude::*;

use super::SqlStore;
use crate::domain::UnixTime;
use crate::store::schema::{
    client_assertion_jtis, grants, instance_facts, opaque_access_tokens, refresh_tokens,
    revoked_access_tokens,
};
use crate::store::{
    FactStore, Grant, OpaqueAccessToken, RefreshToken, StoreError, StoreResult, TokenStore,
};

impl TokenStore for SqlStore {
    fn find_refresh_token(&self, token_hash: &str) -> StoreResult<Option<(RefreshToken, Grant)>> {
        Ok(refresh_tokens::table
            .inner_join(grants::table)
            .filter(refresh_tokens::token_hash.eq(token_hash))
            .select((RefreshToken::as_select(), Grant::as_select()))
            .get_result(&mut *self.conn()?)
            .optional()?)
    }

    fn rotate_refresh_token(
        &self,
        presented_hash: &str,
        successor: &RefreshToken,
        access: Option<&OpaqueAccessToken>,
        now: UnixTime,
    ) -> StoreResult<bool> {
        self.conn()?.transaction::<_, StoreError, _>(|conn| {
            // As for codes: the conditional UPDATE decides which of concurrent uses
            // rotates; the others see the row consumed and take the grace-window path.
            let claimed = diesel::update(
                refresh_tokens::table
                    .find(presented_hash)
                    .filter(refresh_tokens::consumed_at.is_null()),
            )
            .set((
                refresh_tokens::consumed_at.eq(now),
                refresh_tokens::successor_hash.eq(&successor.token_hash),
            ))
            .execute(conn)?;
            if claimed != 1 {
                return Ok(false);
            }
            // The grant must still be live, checked under its row lock (the no-op UPDATE):
            // a refresh racing a sign-out either sees the grant revoked, or finishes
            // before the revocation, which then ends its successor too.
            let live = diesel::update(
                grants::table
                    .find(&successor.grant_id)
                    .filter(grants::revoked_at.is_null())
                    .filter(grants::expires_at.gt(now)),
            )
            .set(grants::revoked_at.eq(grants::revoked_at))
            .execute(conn)?;
            if live != 1 {
                return Err(StoreError::Gone);
            }
            diesel::insert_into(refresh_tokens::table)
                .values(successor)
                .execute(conn)?;
            if let Some(token) = access {
                diesel::insert_into(opaque_access_tokens::table)
                    .values(token)
                    .execute(conn)?;
            }
            Ok(true)
        })
    }

    fn revoke_access_token(&self, jti: &str, expires_at: UnixTime) -> StoreResult<()> {
        // Held until the error is converted: a lost server retires this connection.
        let mut conn = self.conn()?;
        let inserted = diesel::insert_into(revoked_access_tokens::table)
            .values((
                revoked_access_tokens::jti.eq(jti),
                revoked_access_tokens::expires_at.eq(expires_at),
            ))
            .execute(&mut *conn);
        self.liveness_changed();
        match inserted.map_err(StoreError::from) {
            // Revoking twice is revoking once (RFC 7009 §2.2).
            Ok(_) | Err(StoreError::Conflict) => Ok(()),
            Err(e) => Err(e),
        }
    }

    fn access_token_live(
        &self,
        jti: &str,
        grant_id: Option<&str>,
        now: UnixTime,
    ) -> StoreResult<bool> {
        use diesel::dsl::{exists, not};
        if let Some(live) = self.liveness.token_live(jti, grant_id, now) {
            return Ok(live);
        }
        let seen = self.liveness.generation();
        let asked_at = std::time::Instant::now();
        // One round trip on the userinfo path: the denylist and the grant in one query.
        let unrevoked = not(exists(revoked_access_tokens::table.find(jti)));
        let mut conn = self.conn()?;
        match grant_id {
            Some(id) => {
                let found: Option<(bool, UnixTime)> = grants::table
                    .find(id)
                    .filter(grants::revoked_at.is_null())
                    .select((unrevoked, grants::expires_at))
                    .get_result(&mut *conn)
                    .optional()?;
                let Some((unrevoked, expires_at)) = found else {
                    return Ok(false);
                };
                if unrevoked {
                    self.liveness
                        .remember_token(seen, jti, Some((id, expires_at)), asked_at);
                }
                Ok(unrevoked && expires_at > now)
            }
            None => {
                let unrevoked = diesel::select(unrevoked).get_result::<bool>(&mut *conn)?;
                if unrevoked {
                    self.liveness.remember_token(seen, jti, None, asked_at);
                }
                Ok(unrevoked)
            }
        }
    }

    fn insert_opaque_access_token(&self, token: &OpaqueAccessToken) -> StoreResult<()> {
        diesel::insert_into(opaque_access_tokens::table)
            .values(token)
            .execute(&mut *self.conn()?)?;
        Ok(())
    }

    fn find_opaque_access_token(&self, token_hash: &str) -> StoreResult<Option<OpaqueAccessToken>> {
        Ok(opaque_access_tokens::table
            .find(token_hash)
            .select(OpaqueAccessToken::as_select())
            .get_result(&mut *self.conn()?)
            .optional()?)
    }

    fn use_assertion_id(&self, jti_hash: &str, expires_at: UnixTime) -> StoreResult<bool> {
        // Held until the error is converted: a lost server retires this connection.
        let mut conn = self.conn()?;
        let inserted = diesel::insert_into(client_assertion_jtis::table)
            .values((
                client_assertion_jtis::jti_hash.eq(jti_hash),
                client_assertion_jtis::expires_at.eq(expires_at),
            ))
            .execute(&mut *conn);
        match inserted.map_err(StoreError::from) {
            Ok(_) => Ok(true),
            Err(StoreError::Conflict) => Ok(false),
            Err(e) => Err(e),
        }
    }
}

impl FactStore for SqlStore {
    fn remember_fact(&self, name: &str, value: &str) -> StoreResult<String> {
        let mut conn = self.conn()?;
        let inserted = diesel::insert_into(instance_facts::table)
            .values((
                instance_facts::name.eq(name),
                instance_facts::value.eq(value),
            ))
            .execute(&mut *conn);
        match inserted.map_err(StoreError::from) {
            Ok(_) | Err(StoreError::Conflict) => {}
            Err(e) => return Err(e),
        }
        Ok(instance_facts::table
            .find(name)
            .select(instance_facts::value)
            .get_result(&mut *conn)?)
    }
}
