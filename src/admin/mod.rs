//! Administration as plain Rust: the operations of the admin API, the console and the
//! command line, each checked whole before anything is written and written together
//! with its audit event. No HTTP here; callers bring who is acting (`Actor`) and from
//! where, and finish what lives outside the database (session-store records, the
//! back-channel outbox, the key ring) with what the operations return.

mod access;
mod clients;
mod export;
mod factors;
mod groups;
mod import;
mod invitations;
mod users;
mod views;

pub use access::{ADMIN_SCOPE, authenticate};
pub use clients::{CONSOLE_CLIENT_ID, ClientChange, RegisteredClient};
pub use export::record_of;
pub use groups::{GroupNameBody, NewMember};
pub use import::{ImportReport, MAX_LINE, UserRecord};
pub use invitations::{InvitationView, NewInvitation};
pub use users::{NewUser, UserPatch};
pub use views::{
    AuditView, ClientPage, ConsentView, FactorsView, GroupRef, GroupView, KeyView, MemberView,
    PasskeyView, SessionView, TotpView, UserPage, UserView,
};

use serde_json::Value;

use crate::config::Settings;
use crate::crypto::kek::KeyEncryptionKey;
use crate::domain::UnixTime;
use crate::protocol::{ErrorCode, OAuthError};
use crate::store::{AdminChange, EndedSessions, NewAuditEvent, Store, StoreError};

/// Who makes a change: a signed-in administrator, a client with the admin scope, or the
/// operator at the command line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Actor {
    User { id: String, username: String },
    Client { id: String },
    Operator,
}

impl Actor {
    /// How audit events name the actor.
    pub fn label(&self) -> String {
        match self {
            Self::User { username, .. } => format!("user:{username}"),
            Self::Client { id } => format!("client:{id}"),
            Self::Operator => "cli".to_owned(),
        }
    }
}

/// The errors of administration, mapped to responses in `http::error`.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    /// Bad input: `code` is the OAuth-style error code (`invalid_request`,
    /// `invalid_client_metadata`, `invalid_redirect_uri`).
    #[error("{code}: {description}")]
    Invalid {
        code: &'static str,
        description: String,
    },
    #[error("no such {0}")]
    NotFound(&'static str),
    #[error("{0}")]
    Conflict(String),
    #[error("storage unavailable: {0}")]
    Unavailable(String),
    #[error("internal error: {0}")]
    Internal(String),
}

impl AdminError {
    pub fn invalid(description: impl Into<String>) -> Self {
        Self::Invalid {
            code: "invalid_request",
            description: description.into(),
        }
    }
}

impl From<StoreError> for AdminError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Conflict => Self::Conflict("it exists already".into()),
            StoreError::Gone => Self::Conflict("what it refers to no longer exists".into()),
            StoreError::Unavailable(m) => Self::Unavailable(m),
            StoreError::Internal(m) => Self::Internal(m),
        }
    }
}

impl From<OAuthError> for AdminError {
    fn from(e: OAuthError) -> Self {
        let description = e.wire_description().unwrap_or_default();
        match e.code {
            ErrorCode::ServerError => Self::Internal(e.cause.unwrap_or(description)),
            ErrorCode::TemporarilyUnavailable => Self::Unavailable(e.cause.unwrap_or(description)),
            code => Self::Invalid {
                code: code.as_str(),
                description,
            },
        }
    }
}

pub type AdminResult<T> = Result<T, AdminError>;

/// Why a key rotation failed: storage failures as such (their text is for the log, not
/// for the caller), anything else (a rotation racing ours) as a conflict.
fn rotation_refused(e: anyhow::Error) -> AdminError {
    match e.downcast::<StoreError>() {
        Ok(storage) => storage.into(),
        Err(other) => AdminError::Conflict(other.to_string()),
    }
}

/// What a change needs: the store, the key-encryption key (client secrets, keys), the
/// configuration, the time, and who acts from where.
pub struct Admin<'a> {
    pub store: &'a dyn Store,
    /// Client secrets and signing keys are sealed with it; user changes do without (the
    /// CLI opens it only for commands that need it).
    pub kek: Option<&'a KeyEncryptionKey>,
    pub settings: &'a Settings,
    pub now: UnixTime,
    pub actor: &'a Actor,
    /// The caller's address, for the audit trail.
    pub address: Option<&'a str>,
}

/// The most of anything one listing returns.
pub const MAX_PAGE: i64 = 200;

impl<'a> Admin<'a> {
    /// `actor` acting from `address` with what a protocol context holds (the admin API,
    /// the console), and the whole configuration, which the protocol's does not carry
    /// (a key rotation reads lifetimes of its own).
    pub fn in_context(
        ctx: &'a crate::protocol::Context<'a>,
        settings: &'a Settings,
        actor: &'a Actor,
        address: Option<&'a str>,
    ) -> Self {
        Self {
            store: ctx.store,
            kek: Some(ctx.kek),
            settings,
            now: ctx.now,
            actor,
            address,
        }
    }
}

impl Admin<'_> {
    fn kek(&self) -> AdminResult<&KeyEncryptionKey> {
        self.kek
            .ok_or_else(|| AdminError::Internal("no key-encryption key was loaded".into()))
    }

    /// The audit event of `action` on `target`; `details` names what changed, never a
    /// secret.
    fn event(&self, action: &str, target: &str, details: Option<Value>) -> NewAuditEvent {
        NewAuditEvent {
            at: self.now,
            actor: self.actor.label(),
            action: action.to_owned(),
            target: Some(target.to_owned()),
            address: self.address.map(str::to_owned),
            details: details.map(|d| d.to_string()),
        }
    }

    /// Writes the event's log line (target `audit`) once the change is stored.
    fn logged(&self, event: &NewAuditEvent) {
        crate::audit::admin_change(
            &event.actor,
            &event.action,
            event.target.as_deref().unwrap_or(""),
            event.address.as_deref().unwrap_or(""),
        );
    }

    /// Applies `change` with its audit event (one transaction) and logs it; `NotFound`
    /// (`what`) when there was nothing to change. Returns the sessions it ended.
    fn audited(
        &self,
        change: crate::store::AdminChange<'_>,
        event: &NewAuditEvent,
        what: &'static str,
    ) -> AdminResult<EndedSessions> {
        let ended = self
            .store
            .apply_audited(change, event)?
            .ok_or(AdminError::NotFound(what))?;
        self.logged(event);
        Ok(ended)
    }

    /// Records an event for a change the store made by other means.
    fn record(&self, action: &str, target: &str, details: Option<Value>) -> AdminResult<()> {
        let event = self.event(action, target, details);
        self.store.record_audit_event(&event)?;
        self.logged(&event);
        Ok(())
    }

    /// Ends one browser session (its grants are revoked, its apps told).
    pub fn end_session(&self, sid: &str) -> AdminResult<EndedSessions> {
        let user = self.store.find_session(sid)?.map(|s| s.user_id);
        let event = self.event(
            "session.ended",
            sid,
            Some(serde_json::json!({ "user": user })),
        );
        self.audited(AdminChange::EndSession(sid), &event, "live session")
    }

    /// Ends every session of the user and revokes every grant the user gave (offline
    /// ones too): "sign out everywhere".
    pub fn end_user_sessions(&self, user_id: &str) -> AdminResult<EndedSessions> {
        self.user(user_id)?;
        let event = self.event("user.signed_out_everywhere", user_id, None);
        self.audited(AdminChange::EndUserSessions(user_id), &event, "user")
    }

    /// The user's live sessions.
    pub fn list_sessions(&self, user_id: &str) -> AdminResult<Vec<SessionView>> {
        self.user(user_id)?;
        Ok(self
            .store
            .list_user_sessions(user_id, self.now)?
            .iter()
            .map(SessionView::of)
            .collect())
    }

    pub fn list_consents(&self, user_id: &str) -> AdminResult<Vec<ConsentView>> {
        self.user(user_id)?;
        Ok(self
            .store
            .list_consents(user_id)?
            .iter()
            .map(ConsentView::of)
            .collect())
    }

    /// Withdraws the user's consent for a client and revokes what it granted.
    pub fn withdraw_consent(&self, user_id: &str, client_id: &str) -> AdminResult<()> {
        let event = self.event(
            "consent.withdrawn",
            user_id,
            Some(serde_json::json!({ "client_id": client_id })),
        );
        let change = AdminChange::WithdrawConsent { user_id, client_id };
        self.audited(change, &event, "consent").map(|_| ())
    }

    pub fn list_keys(&self) -> AdminResult<Vec<KeyView>> {
        Ok(self
            .store
            .list_keys(self.now)?
            .iter()
            .map(KeyView::of)
            .collect())
    }

    /// Adds a new key for `alg` (every algorithm with `None`), published now and signing
    /// after `activate_in` seconds. The caller reloads its key ring.
    pub fn rotate_keys(&self, alg: Option<&str>, activate_in: i64) -> AdminResult<Vec<KeyView>> {
        let algorithms = match alg {
            None => crate::keyring::ALGORITHMS.to_vec(),
            Some(name) => vec![crate::crypto::KeyAlgorithm::parse(name).ok_or_else(|| {
                AdminError::invalid("alg must be one of RS256, PS256, ES256, EdDSA")
            })?],
        };
        if !(0..=30 * 86_400).contains(&activate_in) {
            return Err(AdminError::invalid(
                "activate_in must be 0 to 2592000 seconds",
            ));
        }
        let mut rotated = Vec::new();
        for alg in algorithms {
            let key = crate::keyring::rotate(
                self.store,
                self.kek()?,
                alg,
                activate_in,
                self.settings,
                self.now,
            )
            .map_err(rotation_refused)?;
            crate::audit::key_rotated(&key.kid, &key.alg, false);
            self.record(
                "key.rotated",
                &key.kid,
                Some(serde_json::json!({ "alg": key.alg, "activates_at": key.activates_at })),
            )?;
            rotated.push(KeyView::of(&key));
        }
        Ok(rotated)
    }

    /// Audit events, newest first, before the event `before`.
    pub fn list_audit(
        &self,
        before: Option<i64>,
        limit: Option<i64>,
    ) -> AdminResult<Vec<AuditView>> {
        let limit = page_limit(limit)?;
        Ok(self
            .store
            .list_audit_events(before, limit)?
            .into_iter()
            .map(AuditView::of)
            .collect())
    }
}

/// A listing's `limit`: 1 to `MAX_PAGE`, 50 when left out.
fn page_limit(limit: Option<i64>) -> AdminResult<i64> {
    match limit {
        None => Ok(50),
        Some(n) if (1..=MAX_PAGE).contains(&n) => Ok(n),
        Some(_) => Err(AdminError::invalid(format!(
            "limit must be 1 to {MAX_PAGE}"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::{AdminError, rotation_refused};
    use crate::store::StoreError;

    #[test]
    fn a_key_rotation_that_storage_failed_is_not_a_conflict_carrying_its_text() {
        let down = anyhow::Error::from(StoreError::Unavailable("db.internal:5432 refused".into()));
        assert!(matches!(rotation_refused(down), AdminError::Unavailable(_)));
        let broken = anyhow::Error::from(StoreError::Internal("relation keys".into()));
        assert!(matches!(rotation_refused(broken), AdminError::Internal(_)));
        let raced = anyhow::anyhow!("another rotation of ES256 ran at the same time; try again");
        assert!(matches!(rotation_refused(raced), AdminError::Conflict(_)));
    }
}
