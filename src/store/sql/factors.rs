//! Second factors (`FactorStore`): the one-time code authenticator, recovery codes and
//! passkeys. Every single-use check is one conditional UPDATE, decided by the database
//! between racing callers (on PostgreSQL the second waits for the first's row lock and
//! then finds its condition false), never a read followed by a write.

use diesel::prelude::*;

use super::{AnyConnection, SqlStore};
use crate::domain::UnixTime;
use crate::store::schema::{passkeys, recovery_codes, totp_credentials};
use crate::store::{
    FactorStore, FactorSummary, PasskeySummary, RemovedFactors, StoreError, StoreResult,
    StoredPasskey, TotpCredential, TotpSummary,
};

/// Removes every second factor of the user, inside the caller's transaction.
pub(super) fn reset_in(conn: &mut AnyConnection, user_id: &str) -> StoreResult<RemovedFactors> {
    let totp = diesel::delete(totp_credentials::table.find(user_id)).execute(conn)?;
    let recovery_codes =
        diesel::delete(recovery_codes::table.filter(recovery_codes::user_id.eq(user_id)))
            .execute(conn)?;
    let passkeys =
        diesel::delete(passkeys::table.filter(passkeys::user_id.eq(user_id))).execute(conn)?;
    Ok(RemovedFactors {
        totp: totp > 0,
        recovery_codes,
        passkeys,
    })
}

/// Makes `sealed_secret` the user's pending enrolment if the user has one: `true` if it
/// did.
fn renew_pending_totp(
    conn: &mut AnyConnection,
    user_id: &str,
    sealed_secret: &str,
    now: UnixTime,
) -> StoreResult<bool> {
    let renewed = diesel::update(
        totp_credentials::table
            .find(user_id)
            .filter(totp_credentials::confirmed_at.is_null()),
    )
    .set((
        totp_credentials::sealed_secret.eq(sealed_secret),
        totp_credentials::created_at.eq(now),
        totp_credentials::last_used_step.eq(None::<i64>),
        totp_credentials::last_used_at.eq(None::<i64>),
    ))
    .execute(conn)?;
    Ok(renewed == 1)
}

impl FactorStore for SqlStore {
    fn find_totp(&self, user_id: &str) -> StoreResult<Option<TotpCredential>> {
        Ok(totp_credentials::table
            .find(user_id)
            .select(TotpCredential::as_select())
            .get_result(&mut *self.conn()?)
            .optional()?)
    }

    fn begin_totp(&self, user_id: &str, sealed_secret: &str, now: UnixTime) -> StoreResult<bool> {
        let mut conn = self.conn()?;
        let pending = TotpCredential {
            user_id: user_id.to_owned(),
            sealed_secret: sealed_secret.to_owned(),
            created_at: now,
            confirmed_at: None,
            last_used_step: None,
            last_used_at: None,
        };
        // Renew a pending enrolment, or insert a first one. An insert that finds a row
        // met a confirmed authenticator (refused) or a pending one that another call
        // inserted meanwhile (renewed on the second round). No transaction: on
        // PostgreSQL a failed insert would end it.
        for _ in 0..2 {
            if renew_pending_totp(&mut conn, user_id, sealed_secret, now)? {
                return Ok(true);
            }
            let inserted = diesel::insert_into(totp_credentials::table)
                .values(&pending)
                .execute(&mut *conn);
            match inserted.map_err(StoreError::from) {
                Ok(_) => return Ok(true),
                Err(StoreError::Conflict) => {}
                Err(e) => return Err(e),
            }
            let confirmed: Option<Option<i64>> = totp_credentials::table
                .find(user_id)
                .select(totp_credentials::confirmed_at)
                .get_result(&mut *conn)
                .optional()?;
            if matches!(confirmed, Some(Some(_))) {
                return Ok(false);
            }
        }
        Err(StoreError::Conflict)
    }

    fn confirm_totp(
        &self,
        user_id: &str,
        sealed_secret: &str,
        step: i64,
        now: UnixTime,
    ) -> StoreResult<bool> {
        let confirmed = diesel::update(
            totp_credentials::table
                .find(user_id)
                .filter(totp_credentials::sealed_secret.eq(sealed_secret))
                .filter(totp_credentials::confirmed_at.is_null()),
        )
        .set((
            totp_credentials::confirmed_at.eq(now),
            totp_credentials::last_used_step.eq(step),
            totp_credentials::last_used_at.eq(now),
        ))
        .execute(&mut *self.conn()?)?;
        Ok(confirmed == 1)
    }

    fn use_totp_step(&self, user_id: &str, step: i64, now: UnixTime) -> StoreResult<bool> {
        // RFC 6238 §5.2: "the verifier MUST NOT accept the second attempt of the OTP
        // after the successful validation has been issued for the first OTP". Steps only
        // move forward, so a code of an earlier step (still inside the skew window) is
        // refused too.
        let used = diesel::update(
            totp_credentials::table
                .find(user_id)
                .filter(totp_credentials::confirmed_at.is_not_null())
                .filter(
                    totp_credentials::last_used_step
                        .is_null()
                        .or(totp_credentials::last_used_step.lt(step)),
                ),
        )
        .set((
            totp_credentials::last_used_step.eq(step),
            totp_credentials::last_used_at.eq(now),
        ))
        .execute(&mut *self.conn()?)?;
        Ok(used == 1)
    }

    fn remove_totp(&self, user_id: &str) -> StoreResult<bool> {
        let removed =
            diesel::delete(totp_credentials::table.find(user_id)).execute(&mut *self.conn()?)?;
        Ok(removed > 0)
    }

    fn replace_recovery_codes(
        &self,
        user_id: &str,
        code_hashes: &[String],
        now: UnixTime,
    ) -> StoreResult<()> {
        // The DELETE comes first: on SQLite a transaction that reads before it writes may
        // not get the write lock.
        self.conn()?.transaction::<_, StoreError, _>(|conn| {
            diesel::delete(recovery_codes::table.filter(recovery_codes::user_id.eq(user_id)))
                .execute(conn)?;
            for code_hash in code_hashes {
                diesel::insert_into(recovery_codes::table)
                    .values((
                        recovery_codes::user_id.eq(user_id),
                        recovery_codes::code_hash.eq(code_hash),
                        recovery_codes::created_at.eq(now),
                    ))
                    .execute(conn)?;
            }
            Ok(())
        })
    }

    fn use_recovery_code(
        &self,
        user_id: &str,
        code_hash: &str,
        now: UnixTime,
    ) -> StoreResult<bool> {
        let used = diesel::update(
            recovery_codes::table
                .find((user_id, code_hash))
                .filter(recovery_codes::used_at.is_null()),
        )
        .set(recovery_codes::used_at.eq(now))
        .execute(&mut *self.conn()?)?;
        Ok(used == 1)
    }

    fn count_recovery_codes(&self, user_id: &str) -> StoreResult<i64> {
        count_unused_codes(&mut *self.conn()?, user_id)
    }

    fn insert_passkey(&self, passkey: &StoredPasskey) -> StoreResult<()> {
        diesel::insert_into(passkeys::table)
            .values(passkey)
            .execute(&mut *self.conn()?)?;
        Ok(())
    }

    fn list_passkeys(&self, user_id: &str) -> StoreResult<Vec<StoredPasskey>> {
        list_passkeys_in(&mut *self.conn()?, user_id)
    }

    fn find_passkey_by_credential_id(
        &self,
        credential_id: &str,
    ) -> StoreResult<Option<StoredPasskey>> {
        Ok(passkeys::table
            .filter(passkeys::credential_id.eq(credential_id))
            .select(StoredPasskey::as_select())
            .first(&mut *self.conn()?)
            .optional()?)
    }

    fn rename_passkey(&self, user_id: &str, id: &str, name: &str) -> StoreResult<bool> {
        let renamed = diesel::update(
            passkeys::table
                .find(id)
                .filter(passkeys::user_id.eq(user_id)),
        )
        .set(passkeys::name.eq(name))
        .execute(&mut *self.conn()?)?;
        Ok(renamed == 1)
    }

    fn remove_passkey(&self, user_id: &str, id: &str) -> StoreResult<bool> {
        let removed = diesel::delete(
            passkeys::table
                .find(id)
                .filter(passkeys::user_id.eq(user_id)),
        )
        .execute(&mut *self.conn()?)?;
        Ok(removed == 1)
    }

    fn record_passkey_use(
        &self,
        id: &str,
        verified_against: &str,
        passkey: &str,
        backed_up: bool,
        now: UnixTime,
    ) -> StoreResult<bool> {
        let recorded = diesel::update(
            passkeys::table
                .find(id)
                .filter(passkeys::passkey.eq(verified_against)),
        )
        .set((
            passkeys::passkey.eq(passkey),
            passkeys::backed_up.eq(backed_up),
            passkeys::last_used_at.eq(now),
        ))
        .execute(&mut *self.conn()?)?;
        Ok(recorded == 1)
    }

    fn factor_summary(&self, user_id: &str) -> StoreResult<FactorSummary> {
        let mut conn = self.conn()?;
        let totp = totp_credentials::table
            .find(user_id)
            .select(TotpCredential::as_select())
            .get_result(&mut *conn)
            .optional()?
            .and_then(|t| {
                t.confirmed_at.map(|confirmed_at| TotpSummary {
                    created_at: t.created_at,
                    confirmed_at,
                    last_used_at: t.last_used_at,
                })
            });
        let passkeys = list_passkeys_in(&mut conn, user_id)?
            .iter()
            .map(PasskeySummary::of)
            .collect();
        Ok(FactorSummary {
            totp,
            passkeys,
            recovery_codes_left: count_unused_codes(&mut conn, user_id)?,
        })
    }

    fn reset_second_factors(&self, user_id: &str) -> StoreResult<RemovedFactors> {
        self.conn()?
            .transaction::<_, StoreError, _>(|conn| reset_in(conn, user_id))
    }
}

fn list_passkeys_in(conn: &mut AnyConnection, user_id: &str) -> StoreResult<Vec<StoredPasskey>> {
    Ok(passkeys::table
        .filter(passkeys::user_id.eq(user_id))
        .order((passkeys::created_at, passkeys::id))
        .select(StoredPasskey::as_select())
        .load(conn)?)
}

fn count_unused_codes(conn: &mut AnyConnection, user_id: &str) -> StoreResult<i64> {
    Ok(recovery_codes::table
        .filter(recovery_codes::user_id.eq(user_id))
        .filter(recovery_codes::used_at.is_null())
        .count()
        .get_result(conn)?)
}
