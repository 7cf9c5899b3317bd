//! The audit trail (`AuditStore`): every administrative change is written in the same
//! transaction as its event, so neither exists without the other.

use diesel::prelude::*;

use super::events::insert_event;
use super::{SqlStore, clients, factors, groups, keys, links, mail, sessions, users};
use crate::domain::UnixTime;
use crate::store::schema::audit_events;
use crate::store::schema::users as users_table;
use crate::store::{
    ADDRESS_LINKS, AdminChange, AuditEvent, AuditStore, EndedSessions, NewAuditEvent,
    PASSWORD_LINKS, StoreError, StoreResult, User, UserImport, UserQuery,
};

/// Why an import's transaction rolled back.
enum ImportStop {
    Abandoned,
    Store(StoreError),
}

impl From<diesel::result::Error> for ImportStop {
    fn from(e: diesel::result::Error) -> Self {
        Self::Store(e.into())
    }
}

impl From<StoreError> for ImportStop {
    fn from(e: StoreError) -> Self {
        Self::Store(e)
    }
}

impl AuditStore for SqlStore {
    fn apply_audited(
        &self,
        change: AdminChange<'_>,
        event: &NewAuditEvent,
    ) -> StoreResult<Option<EndedSessions>> {
        let now = event.at;
        let applied = self.conn()?.transaction::<_, StoreError, _>(|conn| {
            let mut ended = EndedSessions::default();
            let applied = match change {
                AdminChange::CreateUser(user) => users::insert_user(conn, user).map(|()| true),
                AdminChange::UpdateUser(user) => {
                    // Links sent to the old address (or to one the user asked to change
                    // to) stop working with the change, in its transaction: a reset
                    // link racing it either used first or finds itself used.
                    let before: Option<Option<String>> = users_table::table
                        .find(&user.id)
                        .select(users_table::email)
                        .get_result(conn)
                        .optional()?;
                    let found = users::update_user_in(conn, user, now)?;
                    let moved = before.is_some_and(|before| {
                        match (before.as_deref(), user.email.as_deref()) {
                            (Some(a), Some(b)) => !a.trim().eq_ignore_ascii_case(b.trim()),
                            (a, b) => a != b,
                        }
                    });
                    if found && moved {
                        links::retire_in(conn, &user.id, &ADDRESS_LINKS, now)?;
                    }
                    if found && user.disabled_at.is_some() {
                        sessions::end_user_in(conn, &user.id, now, &mut ended)?;
                    }
                    Ok(found)
                }
                AdminChange::SetPassword { user_id, hash } => {
                    let found = users::set_password_in(conn, user_id, hash, now)?;
                    if found {
                        sessions::end_user_in(conn, user_id, now, &mut ended)?;
                        links::retire_in(conn, user_id, &PASSWORD_LINKS, now)?;
                    }
                    Ok(found)
                }
                AdminChange::ResetPassword {
                    link_hash,
                    user_id,
                    hash,
                    mail: notice,
                } => {
                    // The link first: a link that does not work changes nothing.
                    if links::use_for_user_in(conn, link_hash, "password_reset", user_id, now)?
                        && users::set_password_in(conn, user_id, hash, now)?
                    {
                        sessions::end_user_in(conn, user_id, now, &mut ended)?;
                        links::retire_in(conn, user_id, &PASSWORD_LINKS, now)?;
                        if let Some(notice) = notice {
                            mail::enqueue_mail_in(conn, notice)?;
                        }
                        Ok(true)
                    } else {
                        Ok(false)
                    }
                }
                AdminChange::Invite {
                    link,
                    mail: invitation,
                } => {
                    links::insert_link_in(conn, link)?;
                    mail::enqueue_mail_in(conn, invitation)?;
                    Ok(true)
                }
                AdminChange::DeleteUser(id) => {
                    sessions::lock_for_writing(conn)?;
                    sessions::end_user_in(conn, id, now, &mut ended)?;
                    users::delete_user_in(conn, id)
                }
                AdminChange::CreateClient(client) => {
                    clients::insert_client_in(conn, client).map(|()| true)
                }
                AdminChange::UpdateClient(client) => clients::update_client_in(conn, client),
                AdminChange::DeleteClient(id) => clients::delete_client_in(conn, id),
                AdminChange::UpdateRegisteredClient {
                    client,
                    token_hash,
                    keeps_secret,
                } => clients::update_registered_client_in(conn, client, token_hash, keeps_secret),
                AdminChange::DeleteRegisteredClient { id, token_hash } => {
                    if clients::registration_token_is_in(conn, id, token_hash)? {
                        clients::delete_client_in(conn, id)
                    } else {
                        Ok(false)
                    }
                }
                AdminChange::EndSession(sid) => {
                    sessions::end_one_in(conn, sid, now, &mut ended)?;
                    Ok(!ended.sessions.is_empty())
                }
                AdminChange::EndLostSession { sid, store_key } => {
                    sessions::end_lost_in(conn, sid, store_key, now, &mut ended)?;
                    Ok(!ended.sessions.is_empty())
                }
                AdminChange::EndUserSessions(user_id) => {
                    sessions::lock_for_writing(conn)?;
                    sessions::end_user_in(conn, user_id, now, &mut ended)?;
                    Ok(true)
                }
                AdminChange::WithdrawConsent { user_id, client_id } => {
                    keys::withdraw_consent_in(conn, user_id, client_id, now)
                }
                AdminChange::ResetSecondFactors(user_id) => {
                    sessions::lock_for_writing(conn)?;
                    factors::reset_in(conn, user_id)?;
                    sessions::end_user_in(conn, user_id, now, &mut ended)?;
                    Ok(true)
                }
                AdminChange::CreateGroup(group) => {
                    groups::insert_group_in(conn, group).map(|()| true)
                }
                AdminChange::RenameGroup(group) => groups::rename_group_in(conn, group),
                AdminChange::DeleteGroup(id) => groups::delete_group_in(conn, id),
                AdminChange::AddGroupMember { group_id, user_id } => {
                    groups::add_member_in(conn, group_id, user_id, now)
                }
                AdminChange::RemoveGroupMember { group_id, user_id } => {
                    groups::remove_member_in(conn, group_id, user_id)
                }
            }?;
            // Nothing changed, nothing to record (and the caller says "not found"); a
            // failed change rolls back what it began.
            if !applied {
                return Err(StoreError::Gone);
            }
            insert_event(conn, event)?;
            Ok(ended)
        });
        let applied = match applied {
            Ok(ended) => Some(ended),
            Err(StoreError::Gone)
                if !matches!(
                    change,
                    AdminChange::CreateUser(_)
                        | AdminChange::CreateClient(_)
                        | AdminChange::CreateGroup(_)
                ) =>
            {
                None
            }
            Err(e) => return Err(e),
        };
        // Users, groups, clients, consents and sessions: any of them may end grants,
        // change what userinfo and the tokens say (a group's name, its members) or what a
        // client may do. Forgotten here and, announced, on the other instances.
        self.liveness_changed();
        Ok(applied)
    }

    fn record_audit_event(&self, event: &NewAuditEvent) -> StoreResult<()> {
        insert_event(&mut *self.conn()?, event)
    }

    fn purge_audit_events(&self, before: UnixTime) -> StoreResult<usize> {
        Ok(
            diesel::delete(audit_events::table.filter(audit_events::at.lt(before)))
                .execute(&mut *self.conn()?)?,
        )
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
            .load(&mut *self.conn()?)?)
    }

    fn find_users(&self, query: &UserQuery<'_>) -> StoreResult<Vec<User>> {
        users::find_users_in(&mut *self.conn()?, query)
    }

    fn import_users(&self, import: &mut dyn UserImport) -> StoreResult<bool> {
        // One transaction however long the file: on SQLite it holds the write lock
        // throughout (README: import when the server is quiet).
        let done = self.conn()?.transaction::<_, ImportStop, _>(|conn| {
            while let Some(next) = import.next_user() {
                let imported = next.map_err(|_| ImportStop::Abandoned)?;
                users::insert_user(conn, &imported.user)?;
                for name in &imported.groups {
                    let (group, stored, created) =
                        groups::find_or_create_in(conn, name, imported.user.created_at)?;
                    groups::add_member_in(
                        conn,
                        &group,
                        &imported.user.id,
                        imported.user.created_at,
                    )?;
                    import.joined_group(&stored, created);
                }
            }
            insert_event(conn, &import.event())?;
            Ok(())
        });
        match done {
            Ok(()) => {
                self.liveness_changed();
                Ok(true)
            }
            Err(ImportStop::Abandoned) => Ok(false),
            Err(ImportStop::Store(e)) => Err(e),
        }
    }
}
