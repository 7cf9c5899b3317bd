use diesel::prelude::*;

use super::SqlStore;
use crate::domain::UnixTime;
use crate::store::schema::{consents, grants, signing_keys};
use crate::store::{Consent, ConsentStore, KeyStore, StoreError, StoreResult, StoredKey};

impl KeyStore for SqlStore {
    fn list_keys(&self, now: UnixTime) -> StoreResult<Vec<StoredKey>> {
        Ok(signing_keys::table
            .filter(
                signing_keys::retired_at
                    .is_null()
                    .or(signing_keys::retired_at.gt(now)),
            )
            .order((
                signing_keys::generation,
                signing_keys::created_at,
                signing_keys::kid,
            ))
            .select(StoredKey::as_select())
            .load(&mut *self.conn()?)?)
    }

    fn insert_key(&self, key: &StoredKey) -> StoreResult<()> {
        diesel::insert_into(signing_keys::table)
            .values(key)
            .execute(&mut *self.conn()?)?;
        Ok(())
    }

    fn all_keys(&self) -> StoreResult<Vec<StoredKey>> {
        Ok(signing_keys::table
            .order((signing_keys::generation, signing_keys::kid))
            .select(StoredKey::as_select())
            .load(&mut *self.conn()?)?)
    }

    fn replace_key_material(&self, kid: &str, private_key: &[u8]) -> StoreResult<()> {
        diesel::update(signing_keys::table.find(kid))
            .set(signing_keys::private_key.eq(private_key))
            .execute(&mut *self.conn()?)?;
        Ok(())
    }

    fn rotate_key(&self, key: &StoredKey, retire_others_at: UnixTime) -> StoreResult<()> {
        self.conn()?.transaction::<_, StoreError, _>(|conn| {
            diesel::update(
                signing_keys::table
                    .filter(signing_keys::alg.eq(&key.alg))
                    .filter(signing_keys::retired_at.is_null()),
            )
            .set(signing_keys::retired_at.eq(retire_others_at))
            .execute(conn)?;
            diesel::insert_into(signing_keys::table)
                .values(key)
                .execute(conn)?;
            Ok(())
        })
    }

    fn max_key_generation(&self, alg: &str) -> StoreResult<i32> {
        let max: Option<i32> = signing_keys::table
            .filter(signing_keys::alg.eq(alg))
            .select(diesel::dsl::max(signing_keys::generation))
            .first(&mut *self.conn()?)?;
        Ok(max.unwrap_or(0))
    }
}

impl ConsentStore for SqlStore {
    fn find_consent(&self, user_id: &str, client_id: &str) -> StoreResult<Option<Consent>> {
        Ok(consents::table
            .find((user_id, client_id))
            .select(Consent::as_select())
            .get_result(&mut *self.conn()?)
            .optional()?)
    }

    fn add_consent(&self, consent: &Consent) -> StoreResult<Consent> {
        // Read, merge and write in one transaction. Two first-time consents racing both
        // insert; the loser's Conflict means the row now exists, so a second try merges.
        match self.merge_consent(consent) {
            Err(StoreError::Conflict) => self.merge_consent(consent),
            other => other,
        }
    }

    fn list_consents(&self, user_id: &str) -> StoreResult<Vec<Consent>> {
        Ok(consents::table
            .filter(consents::user_id.eq(user_id))
            .order(consents::granted_at.desc())
            .select(Consent::as_select())
            .load(&mut *self.conn()?)?)
    }

    fn withdraw_consent(&self, user_id: &str, client_id: &str, now: UnixTime) -> StoreResult<bool> {
        let withdrawn = self.conn()?.transaction::<_, StoreError, _>(|conn| {
            withdraw_consent_in(conn, user_id, client_id, now)
        });
        self.liveness_changed();
        withdrawn
    }
}

/// Inside the caller's transaction: the consent goes, and every grant the user gave the
/// client is revoked.
pub(super) fn withdraw_consent_in(
    conn: &mut super::AnyConnection,
    user_id: &str,
    client_id: &str,
    now: UnixTime,
) -> StoreResult<bool> {
    let removed = diesel::delete(consents::table.find((user_id, client_id))).execute(conn)?;
    diesel::update(
        grants::table
            .filter(grants::user_id.eq(user_id))
            .filter(grants::client_id.eq(client_id))
            .filter(grants::revoked_at.is_null()),
    )
    .set(grants::revoked_at.eq(now))
    .execute(conn)?;
    Ok(removed > 0)
}

impl SqlStore {
    fn merge_consent(&self, consent: &Consent) -> StoreResult<Consent> {
        self.conn()?.transaction::<_, StoreError, _>(|conn| {
            let key = (&consent.user_id, &consent.client_id);
            // Lock the row (if any) before reading it: two consents submitted together
            // must not each write their own union over the other's.
            diesel::update(consents::table.find(key))
                .set(consents::granted_at.eq(consents::granted_at))
                .execute(conn)?;
            let previous: Option<Consent> = consents::table
                .find(key)
                .select(Consent::as_select())
                .get_result(conn)
                .optional()?;
            let Some(previous) = previous else {
                diesel::insert_into(consents::table)
                    .values(consent)
                    .execute(conn)?;
                return Ok(consent.clone());
            };
            let merged = Consent {
                scope: union_of_words(&previous.scope, &consent.scope),
                claims: union_of_words(&previous.claims, &consent.claims),
                ..consent.clone()
            };
            diesel::update(consents::table.find(key))
                .set((
                    consents::scope.eq(&merged.scope),
                    consents::claims.eq(&merged.claims),
                    consents::granted_at.eq(merged.granted_at),
                ))
                .execute(conn)?;
            Ok(merged)
        })
    }
}

/// The space-separated words of both, once each, sorted.
fn union_of_words(a: &str, b: &str) -> String {
    let words: std::collections::BTreeSet<&str> =
        a.split_whitespace().chain(b.split_whitespace()).collect();
    words.into_iter().collect::<Vec<_>>().join(" ")
}
