//! Groups: create, rename, delete, add and remove members, list them. Each change is
//! written with its audit event (`group.created`, `group.renamed`, `group.deleted`,
//! `group.member_added`, `group.member_removed`) in one transaction, which also clears
//! the liveness cache here and on the other instances: the next token, userinfo and
//! introspection answer say what the group is now.

use serde::Deserialize;
use serde_json::json;

use super::{Admin, AdminError, AdminResult, GroupView, MemberView};
use crate::crypto::tokens::random_uuid;
use crate::domain::{GroupName, MAX_USER_GROUPS};
use crate::store::{AdminChange, Group, GroupSummary, StoreError};

/// A new group, or a group's new name, as the admin API takes it.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GroupNameBody {
    pub name: String,
}

/// A member to add, by the user's id (their `sub`).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewMember {
    pub user_id: String,
}

fn checked(name: &str) -> AdminResult<GroupName> {
    GroupName::parse(name).map_err(|e| AdminError::invalid(e.to_string()))
}

fn name_taken(name: &GroupName) -> AdminError {
    AdminError::Conflict(format!("a group named {name} exists already"))
}

impl Admin<'_> {
    fn group(&self, id: &str) -> AdminResult<Group> {
        self.store
            .find_group(id)?
            .ok_or(AdminError::NotFound("group"))
    }

    /// Every group with its member count, by name.
    pub fn list_groups(&self) -> AdminResult<Vec<GroupView>> {
        Ok(self
            .store
            .list_groups()?
            .iter()
            .map(GroupView::of)
            .collect())
    }

    pub fn get_group(&self, id: &str) -> AdminResult<GroupView> {
        let group = self.group(id)?;
        let members = self.store.count_group_members(id)?;
        Ok(GroupView::of(&GroupSummary { group, members }))
    }

    /// The group named `name` (in any case): how the command line names groups.
    pub fn find_group_named(&self, name: &str) -> AdminResult<GroupView> {
        let group = self
            .store
            .find_group_by_name(name)?
            .ok_or(AdminError::NotFound("group"))?;
        self.get_group(&group.id)
    }

    pub fn create_group(&self, name: &str) -> AdminResult<GroupView> {
        let name = checked(name)?;
        let group = Group::new(random_uuid(), &name, self.now);
        let event = self.event(
            "group.created",
            &group.id,
            Some(json!({ "name": group.name })),
        );
        match self
            .store
            .apply_audited(AdminChange::CreateGroup(&group), &event)
        {
            Ok(_) => {}
            Err(StoreError::Conflict) => return Err(name_taken(&name)),
            Err(e) => return Err(e.into()),
        }
        self.logged(&event);
        Ok(GroupView::of(&GroupSummary { group, members: 0 }))
    }

    /// Gives the group another name (its case alone may change). Apps see the new name
    /// in the next token, and at once at userinfo and introspection.
    pub fn rename_group(&self, id: &str, name: &str) -> AdminResult<GroupView> {
        let name = checked(name)?;
        let before = self.group(id)?;
        let group = before.renamed(&name, self.now);
        let event = self.event(
            "group.renamed",
            id,
            Some(json!({ "from": before.name, "to": group.name })),
        );
        match self.audited(AdminChange::RenameGroup(&group), &event, "group") {
            Ok(_) => self.get_group(id),
            Err(AdminError::Conflict(_)) => Err(name_taken(&name)),
            Err(e) => Err(e),
        }
    }

    /// Deletes the group; its members leave it.
    pub fn delete_group(&self, id: &str) -> AdminResult<()> {
        let group = self.get_group(id)?;
        let event = self.event(
            "group.deleted",
            id,
            Some(json!({ "name": group.name, "members": group.members })),
        );
        self.audited(AdminChange::DeleteGroup(id), &event, "group")
            .map(|_| ())
    }

    /// The group's members, by username.
    pub fn list_members(&self, group_id: &str) -> AdminResult<Vec<MemberView>> {
        self.group(group_id)?;
        Ok(self
            .store
            .list_group_members(group_id)?
            .iter()
            .map(MemberView::of)
            .collect())
    }

    pub fn add_member(&self, group_id: &str, user_id: &str) -> AdminResult<MemberView> {
        let group = self.group(group_id)?;
        let user = self.user(user_id)?;
        // Checked before the insert, not in its transaction: two additions racing may
        // pass it together, which leaves the claim bounded all the same.
        let groups = self.store.list_user_groups(user_id)?;
        if groups.len() >= MAX_USER_GROUPS && !groups.iter().any(|g| g.id == group_id) {
            return Err(AdminError::Conflict(format!(
                "{} is in {MAX_USER_GROUPS} groups, the most a user may be in",
                user.username
            )));
        }
        let event = self.event(
            "group.member_added",
            group_id,
            Some(json!({ "group": group.name, "user": user.id, "username": user.username })),
        );
        let change = AdminChange::AddGroupMember { group_id, user_id };
        match self.audited(change, &event, "group or user") {
            Ok(_) => {}
            Err(AdminError::Conflict(_)) => {
                return Err(AdminError::Conflict(format!(
                    "{} is a member of {} already",
                    user.username, group.name
                )));
            }
            Err(e) => return Err(e),
        }
        Ok(MemberView {
            id: user.id,
            username: user.username,
            added_at: self.now,
        })
    }

    /// `add_member` for the user of that username (the console's form and the command
    /// line name users so).
    pub fn add_member_named(&self, group_id: &str, username: &str) -> AdminResult<MemberView> {
        let user = self
            .store
            .find_user_by_username(username)?
            .ok_or(AdminError::NotFound("user"))?;
        self.add_member(group_id, &user.id)
    }

    pub fn remove_member(&self, group_id: &str, user_id: &str) -> AdminResult<()> {
        let group = self.group(group_id)?;
        let username = self.store.find_user(user_id)?.map(|u| u.username);
        let event = self.event(
            "group.member_removed",
            group_id,
            Some(json!({ "group": group.name, "user": user_id, "username": username })),
        );
        let change = AdminChange::RemoveGroupMember { group_id, user_id };
        self.audited(change, &event, "group member").map(|_| ())
    }

    /// The groups the user belongs to, by name.
    pub fn user_groups(&self, user_id: &str) -> AdminResult<Vec<super::GroupRef>> {
        self.user(user_id)?;
        Ok(self
            .store
            .list_user_groups(user_id)?
            .iter()
            .map(super::GroupRef::of)
            .collect())
    }
}
