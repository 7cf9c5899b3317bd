//! Groups and their members (`GroupStore`); the changes are written by
//! `AuditStore::apply_audited` with these functions, in its transaction.

use std::collections::HashMap;

use diesel::prelude::*;

use super::{AnyConnection, SqlStore};
use crate::domain::{GroupName, UnixTime};
use crate::store::schema::{grants, group_members, groups, users};
use crate::store::{Group, GroupMember, GroupStore, GroupSummary, StoreResult};

/// `Conflict` if the name's key is taken (`name_key` is unique).
pub(super) fn insert_group_in(conn: &mut AnyConnection, group: &Group) -> StoreResult<()> {
    diesel::insert_into(groups::table)
        .values(group)
        .execute(conn)?;
    Ok(())
}

/// The group named `name` (in any case), created (its id new, its name as written) if
/// there is none: what an import joins its users to. Its id, its name as stored, and
/// whether it was created here.
pub(super) fn find_or_create_in(
    conn: &mut AnyConnection,
    name: &GroupName,
    now: UnixTime,
) -> StoreResult<(String, String, bool)> {
    let found: Option<(String, String)> = groups::table
        .filter(groups::name_key.eq(name.key()))
        .select((groups::id, groups::name))
        .first(conn)
        .optional()?;
    if let Some((id, stored)) = found {
        return Ok((id, stored, false));
    }
    let group = Group::new(crate::crypto::tokens::random_uuid(), name, now);
    insert_group_in(conn, &group)?;
    Ok((group.id, group.name, true))
}

/// `false` if there is no such group; `Conflict` if another group has the name.
pub(super) fn rename_group_in(conn: &mut AnyConnection, group: &Group) -> StoreResult<bool> {
    let n = diesel::update(groups::table.find(&group.id))
        .set((
            groups::name.eq(&group.name),
            groups::name_key.eq(&group.name_key),
            groups::updated_at.eq(group.updated_at),
        ))
        .execute(conn)?;
    Ok(n > 0)
}

/// The memberships go with it (`ON DELETE CASCADE`).
pub(super) fn delete_group_in(conn: &mut AnyConnection, id: &str) -> StoreResult<bool> {
    Ok(diesel::delete(groups::table.find(id)).execute(conn)? > 0)
}

/// `Conflict` if the user is a member already; `Gone` if the group or the user is not
/// there (the foreign keys).
pub(super) fn add_member_in(
    conn: &mut AnyConnection,
    group_id: &str,
    user_id: &str,
    now: UnixTime,
) -> StoreResult<bool> {
    diesel::insert_into(group_members::table)
        .values((
            group_members::group_id.eq(group_id),
            group_members::user_id.eq(user_id),
            group_members::added_at.eq(now),
        ))
        .execute(conn)?;
    Ok(true)
}

pub(super) fn remove_member_in(
    conn: &mut AnyConnection,
    group_id: &str,
    user_id: &str,
) -> StoreResult<bool> {
    let n = diesel::delete(group_members::table.find((group_id, user_id))).execute(conn)?;
    Ok(n > 0)
}

fn by_key(groups: &mut [Group]) {
    groups.sort_by(|a, b| a.name_key.cmp(&b.name_key));
}

impl GroupStore for SqlStore {
    fn find_group(&self, id: &str) -> StoreResult<Option<Group>> {
        Ok(groups::table
            .find(id)
            .select(Group::as_select())
            .get_result(&mut *self.conn()?)
            .optional()?)
    }

    fn find_group_by_name(&self, name: &str) -> StoreResult<Option<Group>> {
        Ok(groups::table
            .filter(groups::name_key.eq(GroupName::key_of(name)))
            .select(Group::as_select())
            .first(&mut *self.conn()?)
            .optional()?)
    }

    fn list_groups(&self) -> StoreResult<Vec<GroupSummary>> {
        let mut conn = self.conn()?;
        let mut all: Vec<Group> = groups::table.select(Group::as_select()).load(&mut *conn)?;
        let counts: HashMap<String, i64> = group_members::table
            .group_by(group_members::group_id)
            .select((group_members::group_id, diesel::dsl::count_star()))
            .load::<(String, i64)>(&mut *conn)?
            .into_iter()
            .collect();
        by_key(&mut all);
        Ok(all
            .into_iter()
            .map(|group| GroupSummary {
                members: counts.get(&group.id).copied().unwrap_or(0),
                group,
            })
            .collect())
    }

    fn count_group_members(&self, group_id: &str) -> StoreResult<i64> {
        Ok(group_members::table
            .filter(group_members::group_id.eq(group_id))
            .count()
            .get_result(&mut *self.conn()?)?)
    }

    fn list_group_members(&self, group_id: &str) -> StoreResult<Vec<GroupMember>> {
        let mut members: Vec<GroupMember> = group_members::table
            .inner_join(users::table)
            .filter(group_members::group_id.eq(group_id))
            .select((users::id, users::username, group_members::added_at))
            .load(&mut *self.conn()?)?;
        members.sort_by_cached_key(|m| (m.username.to_lowercase(), m.username.clone()));
        Ok(members)
    }

    fn list_user_groups(&self, user_id: &str) -> StoreResult<Vec<Group>> {
        let mut found: Vec<Group> = group_members::table
            .inner_join(groups::table)
            .filter(group_members::user_id.eq(user_id))
            .select(Group::as_select())
            .load(&mut *self.conn()?)?;
        by_key(&mut found);
        Ok(found)
    }

    fn grant_group_names(&self, grant_id: &str) -> StoreResult<Vec<String>> {
        if let Some(names) = self.liveness.grant_groups(grant_id) {
            return Ok(names);
        }
        let seen = self.liveness.generation();
        let read_at = std::time::Instant::now();
        let mut found: Vec<(String, String)> = group_members::table
            .inner_join(groups::table)
            .inner_join(grants::table.on(grants::user_id.eq(group_members::user_id)))
            .filter(grants::id.eq(grant_id))
            .select((groups::name_key, groups::name))
            .load(&mut *self.conn()?)?;
        found.sort_unstable();
        let names: Vec<String> = found.into_iter().map(|(_, name)| name).collect();
        self.liveness
            .remember_grant_groups(seen, grant_id, &names, read_at);
        Ok(names)
    }
}
