//! The audit trail (`AuditStore`): every administrative change is written in the same
//! transaction as its event, so neither exists without the other.

use diesel::prelude::*;

use super::{AnyConnection, SqlStore, clients, users};
use crate::store::schema::audit_events;
use crate::store::{
    AdminChange, AuditEvent, AuditStore, NewAuditEvent, StoreError, StoreResult, User, UserQuery,
};

fn insert_event(conn: &mut AnyConnection, event: &NewAuditEvent) -> StoreResult<()> {
    diesel::insert_into(audit_events::table)
        .values(event)
        .execute(conn)?;
    Ok(())
}

impl AuditStore for SqlStore {
    fn apply_audited(&self, change: AdminChange<'_>, event: &NewAuditEvent) -> StoreResult<bool> {
        let now = event.at;
        let applied = self.conn()?.transaction::<_, StoreError, _>(|conn| {
            let applied = match change {
                AdminChange::CreateUser(user) => users::insert_user(conn, user).map(|()| true),
                AdminChange::UpdateUser(user) => users::update_user_in(conn, user, now),
                AdminChange::SetPassword { user_id, hash } => {
                    users::set_password_in(conn, user_id, hash, now)
                }
                AdminChange::DeleteUser(id) => users::delete_user_in(conn, id),
                AdminChange::CreateClient(client) => {
                    clients::insert_client_in(conn, client).map(|()| true)
                }
                AdminChange::UpdateClient(client) => clients::update_client_in(conn, client),
                AdminChange::DeleteClient(id) => clients::delete_client_in(conn, id),
            }?;
            // Nothing changed, nothing to record (and the caller says "not found").
            if applied {
                insert_event(conn, event)?;
            }
            Ok(applied)
        })?;
        match change {
            AdminChange::UpdateClient(client) => self.forget_client(&client.id),
            AdminChange::DeleteClient(id) => self.forget_client(id),
            _ => {}
        }
        Ok(applied)
    }

    fn record_audit_event(&self, event: &NewAuditEvent) -> StoreResult<()> {
        insert_event(&mut *self.conn()?, event)
    }

    fn list_audit_events(&self, before: Option<i64>, limit: i64) -> StoreResult<Vec<AuditEvent>> {
        let mut query = audit_events::table
            .select(AuditEvent::as_select())
            .into_boxed();
        if let Some(before) = before {
            query = query.filter(audit_events::id.lt(before));
        }
        Ok(query
            .order(audit_events::id.desc())
            .limit(limit)
            .load(&mut self.conn()?)?)
    }

    fn find_users(&self, query: &UserQuery<'_>) -> StoreResult<Vec<User>> {
        users::find_users_in(&mut *self.conn()?, query)
    }
}
