//! `portcullis users export`: every user as a line of the import format (`import`), with
//! the password hash as stored (ours, an argon2id PHC string, once the user has signed
//! in since an import), so that `users import` on another database brings them back.

use std::io::Write;

use serde_json::json;

use super::import::UserRecord;
use super::{Admin, AdminError, AdminResult};
use crate::protocol::claims;
use crate::store::{User, UserQuery};

/// Users read from the database at a time.
const PAGE: i64 = 500;

/// The claims that are not among a record's `claims`: fields of their own (`email`,
/// `email_verified`, `name`), the `sub` and username, and what the server keeps itself.
const NOT_CLAIMS: [&str; 6] = [
    "sub",
    "preferred_username",
    "updated_at",
    "email",
    "email_verified",
    "name",
];

/// The record of `user`, a member of `groups` (names), in the import format.
pub fn record_of(user: &User, groups: Vec<String>) -> UserRecord {
    let mut claims = claims::all_claims(user);
    for name in NOT_CLAIMS {
        claims.remove(name);
    }
    UserRecord {
        username: user.username.clone(),
        sub: Some(user.id.clone()),
        email: user.email.clone(),
        email_verified: Some(user.email_verified),
        name: user.name.clone(),
        password_hash: (!user.password_hash.is_empty()).then(|| user.password_hash.clone()),
        claims: Some(claims),
        groups: Some(groups),
        disabled: Some(user.disabled_at.is_some()),
    }
}

impl Admin<'_> {
    /// Writes every user to `out`, one JSON line each, by username; returns how many.
    /// Read a page at a time, so that memory stays flat however many there are.
    ///
    /// The file holds every password hash and claim, as the database does: the export is
    /// audited (`users.exported`, with how many users were written and whether all were),
    /// even when it fails part way, since what was written may have left.
    pub fn export_users(&self, out: &mut dyn Write) -> AdminResult<usize> {
        let mut count = 0;
        let written = self.write_users(out, &mut count);
        let event = self.event(
            "users.exported",
            "users",
            Some(json!({ "users": count, "complete": written.is_ok() })),
        );
        self.store.record_audit_event(&event)?;
        self.logged(&event);
        written.map(|()| count)
    }

    fn write_users(&self, out: &mut dyn Write, count: &mut usize) -> AdminResult<()> {
        let failed = |e: std::io::Error| AdminError::Internal(format!("cannot write: {e}"));
        let mut after: Option<String> = None;
        loop {
            let users = self.store.find_users(&UserQuery {
                search: None,
                after: after.as_deref(),
                limit: PAGE,
            })?;
            for user in &users {
                let groups = self.store.list_user_groups(&user.id)?;
                let names = groups.into_iter().map(|g| g.name).collect();
                serde_json::to_writer(&mut *out, &record_of(user, names))
                    .map_err(|e| AdminError::Internal(format!("cannot write: {e}")))?;
                out.write_all(b"\n").map_err(failed)?;
                *count += 1;
            }
            match users.last() {
                Some(last) if users.len() as i64 == PAGE => after = Some(last.username.clone()),
                _ => break,
            }
        }
        out.flush().map_err(failed)
    }
}
