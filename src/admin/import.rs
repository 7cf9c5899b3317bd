//! Moving users in and out (`portcullis users import` / `users export`): JSON lines, one
//! user each, with their password hashes as they were (README, "Moving in").
//!
//! An import is checked whole and written in one transaction: a line that is not valid
//! UTF-8 or JSON, names an unknown key, has a hash we do not accept (`crypto::password`,
//! within its cost ceilings) or a claim `users add --claim` would refuse, or repeats a
//! username (in any case) or `sub`, of the file or of the database, refuses the whole
//! file, naming its line, and nothing is written. Hashes are stored as given, not
//! recomputed; each is replaced by our argon2id at its user's first sign-in.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::io::{BufRead, Read};

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use super::users::{apply_json_claims, check_username};
use super::{Admin, AdminError, AdminResult};
use crate::crypto::password::hash_kind;
use crate::crypto::tokens::random_uuid;
use crate::domain::{GroupName, MAX_USER_GROUPS, UsernameKey};
use crate::protocol::claims;
use crate::store::{ImportAbandoned, ImportedUser, NewAuditEvent, StoreError, User, UserImport};

/// The longest line read: no user needs more, and a file without line breaks is not read
/// into memory whole.
pub const MAX_LINE: usize = 1 << 20;

/// How many group names the event lists, of those created and of those joined (their
/// counts are always there).
const MAX_LISTED_GROUPS: usize = 1000;

/// One line of an import or export file (CONTRACT.md, "Import/export format"). `sub` is
/// ours beyond the contract: an export keeps each user's `sub` (what the apps know them
/// by), and an import from elsewhere may bring the old provider's user id as the `sub`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserRecord {
    pub username: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sub: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    #[serde(default)]
    pub email_verified: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// A hash `crypto::password::hash_kind` accepts; `null` or absent: no password (the
    /// user signs in once an administrator sets one).
    #[serde(default)]
    pub password_hash: Option<String>,
    /// Other OIDC Core §5.1 claims, as the admin API takes them.
    #[serde(default)]
    pub claims: Option<Map<String, Value>>,
    #[serde(default)]
    pub groups: Option<Vec<String>>,
    #[serde(default)]
    pub disabled: Option<bool>,
}

/// The claims that are fields of their own in a record.
const TOP_LEVEL_CLAIMS: [&str; 3] = ["email", "email_verified", "name"];

/// What an import did, or would do.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ImportReport {
    pub dry_run: bool,
    pub users: usize,
    /// Users by the kind of their password hash; `none` for those without one.
    pub by_hash_kind: BTreeMap<&'static str, usize>,
    pub disabled: usize,
    /// Group memberships the file names (a group that does not exist is created).
    pub group_memberships: usize,
    /// For a dry run: each user that would be created, with its line.
    pub planned: Vec<(usize, String)>,
}

impl ImportReport {
    /// `argon2id 2, bcrypt 1, none 1`.
    pub fn kinds(&self) -> String {
        let kinds: Vec<String> = self
            .by_hash_kind
            .iter()
            .map(|(kind, n)| format!("{kind} {n}"))
            .collect();
        if kinds.is_empty() {
            "no users".to_owned()
        } else {
            kinds.join(", ")
        }
    }
}

fn on_line(line: usize, why: impl std::fmt::Display) -> AdminError {
    AdminError::invalid(format!("line {line}: {why}"))
}

/// `sub` (OIDC Core §2): at most 255 ASCII characters. We take RFC 3986's unreserved
/// characters (letters, digits, `-`, `.`, `_`, `~`) and `|`, `:` and `@`, which other
/// providers' ids hold (Auth0's `auth0|5f7c...`, `google-oauth2|...`, URNs, addresses):
/// the id is a path segment of the console and the admin API, and a `%` (`%76ictim`,
/// which the router decodes to `victim`), a `/` or a space there would name another
/// user or path. Controls and spaces would also break the CLI's columns.
fn check_sub(sub: &str) -> Result<(), String> {
    let allowed = |b: u8| b.is_ascii_alphanumeric() || b"-._~|:@".contains(&b);
    if sub.is_empty() || sub.len() > 255 || !sub.bytes().all(allowed) {
        return Err("sub must be 1 to 255 characters: letters, digits and - . _ ~ | : @".into());
    }
    Ok(())
}

/// The user's groups by the group-name rule (`GroupName`); a name given twice (in any
/// case: one group) is kept once.
fn check_groups(groups: Vec<String>) -> Result<Vec<GroupName>, String> {
    // A user may be in at most `MAX_USER_GROUPS` groups (the claim stays bounded).
    if groups.len() > MAX_USER_GROUPS {
        return Err(format!("at most {MAX_USER_GROUPS} groups"));
    }
    let mut kept: Vec<GroupName> = Vec::with_capacity(groups.len());
    for group in groups {
        let name = GroupName::parse(&group).map_err(|e| format!("in groups, {group:?}: {e}"))?;
        if !kept.iter().any(|g| g.key() == name.key()) {
            kept.push(name);
        }
    }
    Ok(kept)
}

/// The user a record describes, checked as `users add` checks one, and the kind of its
/// hash (`None`: no password).
fn user_of(record: UserRecord, now: i64) -> Result<(ImportedUser, Option<&'static str>), String> {
    let username = check_username(&record.username).map_err(|e| description(&e))?;
    if let Some(sub) = &record.sub {
        check_sub(sub)?;
    }
    let kind = match &record.password_hash {
        Some(hash) => Some(
            hash_kind(hash)
                .map_err(|e| format!("password_hash: {e}"))?
                .as_str(),
        ),
        None => None,
    };
    let mut user = User::new(
        record.sub.unwrap_or_else(random_uuid),
        username,
        record.password_hash.unwrap_or_default(),
        now,
    );
    let set = |user: &mut User, name: &str, value: &str| {
        claims::set_claim(user, name, value).map_err(|e| e.to_string())
    };
    if let Some(email) = &record.email {
        set(&mut user, "email", email)?;
    }
    if record.email_verified == Some(true) {
        if record.email.is_none() {
            return Err("email_verified is true without an email".into());
        }
        user.email_verified = true;
    }
    if let Some(name) = &record.name {
        set(&mut user, "name", name)?;
    }
    let claims = record.claims.unwrap_or_default();
    if let Some(fixed) = TOP_LEVEL_CLAIMS.iter().find(|c| claims.contains_key(**c)) {
        return Err(format!(
            "claims.{fixed}: give email, email_verified and name as fields of their own"
        ));
    }
    apply_json_claims(&mut user, &claims).map_err(|e| format!("claims: {}", description(&e)))?;
    if record.disabled == Some(true) {
        user.disabled_at = Some(now);
    }
    let groups = check_groups(record.groups.unwrap_or_default())?;
    Ok((ImportedUser { user, groups }, kind))
}

/// An error's text without its OAuth-style code.
fn description(e: &AdminError) -> String {
    match e {
        AdminError::Invalid { description, .. } => description.clone(),
        other => other.to_string(),
    }
}

/// serde_json's message without its position: the line is the file's, not the JSON's.
fn json_error(e: &serde_json::Error) -> String {
    let text = e.to_string();
    let message = text
        .rsplit_once(" at line ")
        .map_or(text.as_str(), |(m, _)| m);
    format!("{message} (column {})", e.column())
}

/// The file read one line at a time, each checked into a user; the store takes them from
/// here (`UserImport`) inside its transaction.
struct Lines<'a, R> {
    admin: &'a Admin<'a>,
    source: &'a str,
    reader: R,
    line: usize,
    buf: Vec<u8>,
    /// Usernames (by key) and `sub`s seen so far, with their lines.
    usernames: HashMap<String, usize>,
    subs: HashMap<String, usize>,
    /// The registered clients' ids, read before the first line: no `sub` may be one.
    client_ids: HashSet<String>,
    /// The last user handed over, with its groups and how many of them it has joined so
    /// far: a conflict in the database is its (its name or `sub`, or the next group's).
    last: Option<(usize, User, Vec<GroupName>)>,
    last_joined: usize,
    /// The groups the import created and those it joined that were there, by name.
    created_groups: BTreeSet<String>,
    joined_groups: BTreeSet<String>,
    report: ImportReport,
    failure: Option<AdminError>,
}

impl<'a, R: BufRead> Lines<'a, R> {
    fn new(
        admin: &'a Admin<'a>,
        source: &'a str,
        reader: R,
        dry_run: bool,
        client_ids: HashSet<String>,
    ) -> Self {
        Self {
            admin,
            source,
            reader,
            line: 0,
            buf: Vec::new(),
            usernames: HashMap::new(),
            subs: HashMap::new(),
            client_ids,
            last: None,
            last_joined: 0,
            created_groups: BTreeSet::new(),
            joined_groups: BTreeSet::new(),
            report: ImportReport {
                dry_run,
                ..ImportReport::default()
            },
            failure: None,
        }
    }

    /// The next line's bytes without its line break; `None` at the end.
    fn read(&mut self) -> Option<AdminResult<()>> {
        self.buf.clear();
        self.line += 1;
        let limit = (MAX_LINE + 1) as u64;
        match (&mut self.reader)
            .take(limit)
            .read_until(b'\n', &mut self.buf)
        {
            Ok(0) => None,
            Ok(_) if self.buf.len() > MAX_LINE => Some(Err(on_line(
                self.line,
                format!("longer than {MAX_LINE} bytes"),
            ))),
            Ok(_) => {
                while matches!(self.buf.last(), Some(b'\n' | b'\r')) {
                    self.buf.pop();
                }
                Some(Ok(()))
            }
            Err(e) => Some(Err(on_line(self.line, format!("cannot be read: {e}")))),
        }
    }

    /// The next user of the file, checked; `None` at its end.
    fn next_checked(&mut self) -> Option<AdminResult<ImportedUser>> {
        loop {
            if let Err(e) = self.read()? {
                return Some(Err(e));
            }
            if self.buf.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            return Some(self.check_line());
        }
    }

    fn check_line(&mut self) -> AdminResult<ImportedUser> {
        let line = self.line;
        let mut bytes = self.buf.as_slice();
        if line == 1 {
            bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
        }
        let text = std::str::from_utf8(bytes).map_err(|e| {
            on_line(
                line,
                format!("not valid UTF-8 (at byte {})", e.valid_up_to() + 1),
            )
        })?;
        let record: UserRecord =
            serde_json::from_str(text).map_err(|e| on_line(line, json_error(&e)))?;
        let (imported, kind) = user_of(record, self.admin.now).map_err(|why| on_line(line, why))?;
        let key = UsernameKey::new(&imported.user.username);
        if let Some(first) = self.usernames.get(key.as_str()) {
            return Err(on_line(
                line,
                format!(
                    "username {} is already on line {first}",
                    imported.user.username
                ),
            ));
        }
        if let Some(first) = self.subs.get(&imported.user.id) {
            return Err(on_line(
                line,
                format!("sub {} is already on line {first}", imported.user.id),
            ));
        }
        // A client's own access tokens carry its id as their `sub` (RFC 9068 §2.2): a
        // user with that `sub` could not be told from the client (RFC 9068 §5).
        if self.client_ids.contains(&imported.user.id) {
            return Err(on_line(
                line,
                format!("sub {} is a client's id", imported.user.id),
            ));
        }
        if self.report.dry_run {
            self.check_free(line, &imported.user)?;
            self.report
                .planned
                .push((line, imported.user.username.clone()));
        }
        self.usernames.insert(key.as_str().to_owned(), line);
        self.subs.insert(imported.user.id.clone(), line);
        let report = &mut self.report;
        report.users += 1;
        *report
            .by_hash_kind
            .entry(kind.unwrap_or("none"))
            .or_default() += 1;
        report.disabled += usize::from(imported.user.disabled_at.is_some());
        report.group_memberships += imported.groups.len();
        self.last = Some((line, imported.user.clone(), imported.groups.clone()));
        self.last_joined = 0;
        Ok(imported)
    }

    /// Refuses a user whose username or `sub` an existing user has.
    fn check_free(&self, line: usize, user: &User) -> AdminResult<()> {
        if let Some(existing) = self.admin.store.find_user_by_username(&user.username)? {
            return Err(on_line(
                line,
                format!(
                    "username {} exists already (as {})",
                    user.username, existing.username
                ),
            ));
        }
        if self.admin.store.find_user(&user.id)?.is_some() {
            return Err(on_line(line, format!("sub {} exists already", user.id)));
        }
        Ok(())
    }

    fn details(&self) -> Value {
        let r = &self.report;
        let listed = |names: &BTreeSet<String>| -> Vec<String> {
            names.iter().take(MAX_LISTED_GROUPS).cloned().collect()
        };
        json!({
            "users": r.users,
            "hash_kinds": r.by_hash_kind,
            "disabled": r.disabled,
            "group_memberships": r.group_memberships,
            "groups_created": listed(&self.created_groups),
            "groups_created_count": self.created_groups.len(),
            "groups_joined": listed(&self.joined_groups),
            "groups_joined_count": self.joined_groups.len(),
        })
    }

    /// Why the database refused the last user handed over: its username or `sub` taken
    /// (by a user written meanwhile), or the group it was about to join created
    /// meanwhile by someone else.
    fn conflict(&mut self) -> AdminError {
        let Some((line, user, groups)) = self.last.take() else {
            return AdminError::Conflict("a user exists already".into());
        };
        if let Err(e) = self.check_free(line, &user) {
            return e;
        }
        match groups.get(self.last_joined) {
            Some(group) => on_line(
                line,
                format!("group {group} was created meanwhile by someone else: import again"),
            ),
            None => on_line(line, "conflicts with an existing user"),
        }
    }
}

impl<R: BufRead> UserImport for Lines<'_, R> {
    fn next_user(&mut self) -> Option<Result<ImportedUser, ImportAbandoned>> {
        match self.next_checked()? {
            Ok(user) => Some(Ok(user)),
            Err(e) => {
                self.failure = Some(e);
                Some(Err(ImportAbandoned))
            }
        }
    }

    fn joined_group(&mut self, name: &str, created: bool) {
        self.last_joined += 1;
        // A group this import created and then joined again is still one it created.
        if created {
            self.created_groups.insert(name.to_owned());
        } else if !self.created_groups.contains(name) {
            self.joined_groups.insert(name.to_owned());
        }
    }

    fn event(&self) -> NewAuditEvent {
        self.admin
            .event("users.imported", self.source, Some(self.details()))
    }
}

impl Admin<'_> {
    /// Imports the users of `reader` (JSON lines; `source` names it in the audit event):
    /// all of them in one transaction, or none. With `dry_run`, checks everything the
    /// import would (the database included) and writes nothing.
    pub fn import_users(
        &self,
        reader: impl BufRead,
        source: &str,
        dry_run: bool,
    ) -> AdminResult<ImportReport> {
        let client_ids = self
            .store
            .list_clients()?
            .into_iter()
            .map(|c| c.id)
            .collect();
        let mut lines = Lines::new(self, source, reader, dry_run, client_ids);
        if dry_run {
            while let Some(checked) = lines.next_checked() {
                checked?;
            }
            return Ok(lines.report);
        }
        match self.store.import_users(&mut lines) {
            Ok(true) => {
                self.logged(&lines.event());
                Ok(lines.report)
            }
            Ok(false) => Err(lines
                .failure
                .take()
                .unwrap_or_else(|| AdminError::Internal("the import stopped".into()))),
            // The user just handed over took a name or `sub` that is taken, or a group it
            // names was created meanwhile (the file's own repeats were caught before): say
            // which, by its line.
            Err(StoreError::Conflict) => Err(lines.conflict()),
            Err(e) => Err(e.into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(json: &str) -> Result<(ImportedUser, Option<&'static str>), String> {
        let record: UserRecord = serde_json::from_str(json).map_err(|e| json_error(&e))?;
        user_of(record, 1_000)
    }

    #[test]
    fn a_full_record_becomes_the_user_it_describes() {
        let (imported, kind) = record(
            r#"{"username": " Alice ", "sub": "kc-1234", "email": "a@example.com",
                "email_verified": true, "name": "Alice A", "disabled": true,
                "password_hash": "$2b$10$DCq7YPn5Rq63x1Lad4cll.TV4S6ytwfsfvkgY8jIucDrjc8deX1s.",
                "claims": {"phone_number": "+1 555 0100", "phone_number_verified": true,
                           "address": {"locality": "Paris"}},
                "groups": ["staff", " staff", "ops"]}"#,
        )
        .unwrap();
        let user = &imported.user;
        assert_eq!(kind, Some("bcrypt"));
        assert_eq!(user.username, "Alice");
        assert_eq!(user.id, "kc-1234");
        assert_eq!(user.email.as_deref(), Some("a@example.com"));
        assert!(user.email_verified && user.phone_number_verified);
        assert_eq!(user.name.as_deref(), Some("Alice A"));
        assert_eq!(user.disabled_at, Some(1_000));
        assert!(user.password_hash.starts_with("$2b$10$"));
        assert_eq!(user.address.as_deref(), Some(r#"{"locality":"Paris"}"#));
        let groups: Vec<&str> = imported.groups.iter().map(GroupName::as_str).collect();
        assert_eq!(groups, ["staff", "ops"], "trimmed, and one group once");
        assert!(!user.is_admin);
    }

    #[test]
    fn a_minimal_record_has_no_password_and_a_new_sub() {
        let (imported, kind) = record(r#"{"username": "bob", "password_hash": null}"#).unwrap();
        assert_eq!(kind, None);
        assert_eq!(imported.user.password_hash, "");
        assert_eq!(imported.user.id.len(), 36);
        assert!(imported.user.disabled_at.is_none() && !imported.user.email_verified);
    }

    #[test]
    fn other_providers_ids_are_taken_as_subs() {
        for sub in [
            "auth0|64a1f0c2e1d3b4a5c6d7e8f9",
            "google-oauth2|1234",
            "urn:example:user:7",
            "alice@example.com",
            "f81d4fae-7dec-11d0-a765-00a0c91e6bf6",
            "A.b_c~9",
        ] {
            let json = serde_json::json!({ "username": "a", "sub": sub }).to_string();
            assert_eq!(record(&json).unwrap().0.user.id, sub);
        }
    }

    #[test]
    fn bad_records_are_refused_with_the_reason() {
        for (json, why) in [
            (
                r#"{"username": "a", "admin": true}"#,
                "unknown field `admin`",
            ),
            (r#"{"email": "a@example.com"}"#, "missing field `username`"),
            (r#"{"username": ""}"#, "username must be"),
            (r#"{"username": "a", "sub": "has space"}"#, "sub must be"),
            (r#"{"username": "a", "sub": "%76ictim"}"#, "sub must be"),
            (r#"{"username": "a", "sub": "a/b"}"#, "sub must be"),
            (r#"{"username": "a", "sub": "a+b"}"#, "sub must be"),
            (r#"{"username": "a", "sub": "a#b"}"#, "sub must be"),
            (
                r#"{"username": "a", "password_hash": "md5:abc"}"#,
                "unknown password hash",
            ),
            (
                r#"{"username": "a", "password_hash": ""}"#,
                "unknown password hash",
            ),
            (r#"{"username": "a", "email": "nope"}"#, "must be an email"),
            (
                r#"{"username": "a", "email_verified": true}"#,
                "without an email",
            ),
            (
                r#"{"username": "a", "claims": {"shoe_size": "42"}}"#,
                "unknown claim",
            ),
            (
                r#"{"username": "a", "claims": {"birthdate": "31/01/1990"}}"#,
                "birthdate",
            ),
            (
                r#"{"username": "a", "claims": {"email": "a@example.com"}}"#,
                "claims.email",
            ),
            (
                r#"{"username": "a", "claims": {"sub": "x"}}"#,
                "not set this way",
            ),
            (
                r#"{"username": "a", "groups": [""]}"#,
                "a group name is 1 to 64",
            ),
            (
                r#"{"username": "a", "groups": ["\u202Eevil"]}"#,
                "bidirectional",
            ),
            (r#"{"username": "a", "groups": "staff"}"#, "invalid type"),
            (r#"{"username": "a", "username": "b"}"#, "duplicate field"),
        ] {
            let error = record(json)
                .err()
                .unwrap_or_else(|| panic!("{json} was accepted"));
            assert!(error.contains(why), "{json}: {error}");
        }
    }

    #[test]
    fn an_exported_record_reads_back_as_the_same_user() {
        let (imported, _) = record(
            r#"{"username": "carol", "sub": "s-1", "email": "c@example.com",
                "name": "Carol", "password_hash": null,
                "claims": {"locale": "fr-CA", "address": {"country": "CA"}}}"#,
        )
        .unwrap();
        let exported = super::super::export::record_of(&imported.user, vec!["Ops".into()]);
        assert_eq!(exported.groups, Some(vec!["Ops".to_owned()]));
        let text = serde_json::to_string(&exported).unwrap();
        let (again, _) = record(&text).unwrap();
        let strip = |u: &User| User {
            created_at: 0,
            updated_at: 0,
            ..u.clone()
        };
        assert_eq!(
            format!("{:?}", strip(&again.user)),
            format!("{:?}", strip(&imported.user))
        );
    }
}
