//! `portcullis groups ...` (CONTRACT.md): groups and their members, named as people name
//! them (the group's name in any case, the user's username). Every change is audited
//! (actor `cli`) and announced to the running instances like a user change.

use clap::Subcommand;

use super::{as_operator, find_user, not_found_as};
use crate::admin::{AdminError, GroupView};
use crate::config::Settings;
use crate::store::sql::SqlStore;

#[derive(Subcommand, Debug)]
pub enum GroupsCommand {
    /// Create a group (1 to 64 characters; names are unique in any case). Prints its id.
    Create {
        #[arg(allow_hyphen_values = true)]
        name: String,
    },
    /// Give a group another name; apps see it in the next tokens, and at once at
    /// userinfo and introspection.
    Rename {
        #[arg(allow_hyphen_values = true)]
        name: String,
        #[arg(allow_hyphen_values = true)]
        new_name: String,
    },
    /// Delete a group; its members leave it.
    Delete {
        #[arg(allow_hyphen_values = true)]
        name: String,
    },
    /// List groups, tab-separated: id, name, member count.
    List,
    /// List a group's members, tab-separated: sub, username.
    Members {
        #[arg(allow_hyphen_values = true)]
        group: String,
    },
    /// Add a user (by username) to a group.
    Add {
        #[arg(allow_hyphen_values = true)]
        group: String,
        user: String,
    },
    /// Remove a user (by username) from a group.
    Remove {
        #[arg(allow_hyphen_values = true)]
        group: String,
        user: String,
    },
}

fn named(settings: &Settings, store: &SqlStore, name: &str) -> anyhow::Result<GroupView> {
    as_operator(settings, store, |a| a.find_group_named(name))
        .map_err(|e| not_found_as(e, format!("no group {name}")))
}

pub(super) fn groups(
    cmd: GroupsCommand,
    settings: &Settings,
    store: &SqlStore,
) -> anyhow::Result<()> {
    match cmd {
        GroupsCommand::Create { name } => {
            let group = as_operator(settings, store, |a| a.create_group(&name))?;
            println!("{}", group.id);
        }
        GroupsCommand::Rename { name, new_name } => {
            let group = named(settings, store, &name)?;
            as_operator(settings, store, |a| a.rename_group(&group.id, &new_name))?;
        }
        GroupsCommand::Delete { name } => {
            let group = named(settings, store, &name)?;
            as_operator(settings, store, |a| a.delete_group(&group.id))?;
        }
        GroupsCommand::List => {
            for group in as_operator(settings, store, |a| a.list_groups())? {
                println!("{}\t{}\t{}", group.id, group.name, group.members);
            }
        }
        GroupsCommand::Members { group } => {
            let group = named(settings, store, &group)?;
            for member in as_operator(settings, store, |a| a.list_members(&group.id))? {
                println!("{}\t{}", member.id, member.username);
            }
        }
        GroupsCommand::Add { group, user } => {
            let group = named(settings, store, &group)?;
            let user = find_user(store, &user)?;
            as_operator(settings, store, |a| a.add_member(&group.id, &user.id))?;
        }
        GroupsCommand::Remove { group, user } => {
            let group = named(settings, store, &group)?;
            let user = find_user(store, &user)?;
            as_operator(settings, store, |a| a.remove_member(&group.id, &user.id)).map_err(
                |e| match e.downcast_ref::<AdminError>() {
                    Some(AdminError::NotFound(_)) => {
                        anyhow::anyhow!("{} is not a member of {}", user.username, group.name)
                    }
                    _ => e,
                },
            )?;
        }
    }
    Ok(())
}
