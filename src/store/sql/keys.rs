use diesel::prelude::*;

use super::SqlStore;
use crate::store::schema::{consents, signing_keys};
use crate::store::{Consent, ConsentStore, KeyStore, StoreError, StoreResult, StoredKey};

impl KeyStore for SqlStore {
    fn list_keys(&self) -> StoreResult<Vec<StoredKey>> {
        Ok(signing_keys::table
            .filter(signing_keys::retired_at.is_null())
            .order((signing_keys::created_at, signing_keys::kid))
            .select(StoredKey::as_select())
            .load(&mut self.conn()?)?)
    }

    fn insert_key(&self, key: &StoredKey) -> StoreResult<()> {
        diesel::insert_into(signing_keys::table)
            .values(key)
            .execute(&mut self.conn()?)?;
        Ok(())
    }
}

impl ConsentStore for SqlStore {
    fn find_consent(&self, user_id: &str, client_id: &str) -> StoreResult<Option<Consent>> {
        Ok(consents::table
            .find((user_id, client_id))
            .select(Consent::as_select())
            .first(&mut self.conn()?)
            .optional()?)
    }

    fn save_consent(&self, consent: &Consent) -> StoreResult<()> {
        // Update-then-insert: MultiConnection has no portable upsert.
        self.conn()?.transaction::<_, StoreError, _>(|conn| {
            let updated =
                diesel::update(consents::table.find((&consent.user_id, &consent.client_id)))
                    .set((
                        consents::scope.eq(&consent.scope),
                        consents::granted_at.eq(consent.granted_at),
                    ))
                    .execute(conn)?;
            if updated == 0 {
                diesel::insert_into(consents::table)
                    .values(consent)
                    .execute(conn)?;
            }
            Ok(())
        })
    }
}
