//! Links sent by mail (`LinkStore`). A link is used by one conditional UPDATE: of two
//! requests racing with the same link, the database lets one through.

use diesel::prelude::*;

use super::SqlStore;
use crate::domain::UnixTime;
use crate::store::schema::action_links;
use crate::store::{ActionLink, LinkStore, StoreError, StoreResult};

impl LinkStore for SqlStore {
    fn insert_link(&self, link: &ActionLink) -> StoreResult<()> {
        diesel::insert_into(action_links::table)
            .values(link)
            .execute(&mut *self.conn()?)?;
        Ok(())
    }

    fn find_link(&self, token_hash: &str) -> StoreResult<Option<ActionLink>> {
        Ok(action_links::table
            .find(token_hash)
            .select(ActionLink::as_select())
            .first(&mut *self.conn()?)
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
                    .first(conn)?,
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
}
