//! Browser sessions and short-lived interaction state (pending authorization requests).
//!
//! `SessionStore` is a small key-value contract with TTLs: in process by default, Redis
//! when several instances share sessions. `Sessions` adds the typed records on top.

mod memory;
mod redis;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use serde::{Serialize, de::DeserializeOwned};

pub use memory::MemorySessionStore;
pub use redis::RedisSessionStore;

use crate::domain::UnixTime;

pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    #[error("session store unavailable: {0}")]
    Unavailable(String),
    #[error("corrupt session record: {0}")]
    Corrupt(String),
}

pub type SessionResult<T> = Result<T, SessionError>;

pub trait SessionStore: Send + Sync {
    fn put<'a>(
        &'a self,
        key: &'a str,
        value: String,
        ttl: Duration,
    ) -> BoxFuture<'a, SessionResult<()>>;
    fn get<'a>(&'a self, key: &'a str) -> BoxFuture<'a, SessionResult<Option<String>>>;
    /// Reads and deletes in one step, so a one-time record is used at most once.
    fn take<'a>(&'a self, key: &'a str) -> BoxFuture<'a, SessionResult<Option<String>>>;
    fn delete<'a>(&'a self, key: &'a str) -> BoxFuture<'a, SessionResult<()>>;
    /// Adds one to a counter and returns the new count, atomically. A new counter lives
    /// for `window`; later increments do not extend it.
    fn increment<'a>(&'a self, key: &'a str, window: Duration)
    -> BoxFuture<'a, SessionResult<u64>>;
    fn ping(&self) -> BoxFuture<'_, SessionResult<()>>;
    /// Every value held: for audits of what the store contains (and the tests that check
    /// it holds no credential). Walks the whole store: not for request paths.
    fn values(&self) -> BoxFuture<'_, SessionResult<Vec<String>>>;
}

/// The browser's single sign-on session (`sid` in ID tokens).
#[derive(Clone, Debug, Serialize, serde::Deserialize)]
pub struct SsoSession {
    /// The cookie value: a bearer credential, never shown to clients and never stored
    /// (the record lives under its hash; this field is filled in when it is loaded).
    #[serde(skip)]
    pub id: String,
    /// The public session identifier (`sid` in ID tokens, OIDC Front-Channel Logout §2):
    /// unrelated to `id`, so a client that sees it cannot take over the session.
    pub sid: String,
    pub user_id: String,
    /// When the user last entered credentials (OIDC `auth_time`).
    pub auth_time: UnixTime,
    pub expires_at: UnixTime,
}

/// Typed access to the session store.
#[derive(Clone)]
pub struct Sessions {
    store: Arc<dyn SessionStore>,
}

const SSO: &str = "sso:";
const PENDING: &str = "authz:";
const FAILED_LOGINS: &str = "failed:";

/// Records are stored under a hash of their id: the ids are bearer credentials (the
/// session cookie, the interaction handle), and whoever can read the store's keys
/// (`KEYS`, `MONITOR`, a backup) must not be able to use them.
fn key(namespace: &str, id: &str) -> String {
    format!("{namespace}{}", crate::crypto::tokens::token_hash(id))
}

impl Sessions {
    pub fn new(store: Arc<dyn SessionStore>) -> Self {
        Self { store }
    }

    pub async fn ping(&self) -> SessionResult<()> {
        self.store.ping().await
    }

    /// Counts a failed login for `username`; returns the failures in the current window.
    pub async fn count_failed_login(&self, username: &str, window: Duration) -> SessionResult<u64> {
        self.store
            .increment(&key(FAILED_LOGINS, &username.to_lowercase()), window)
            .await
    }

    /// Failed logins for `username` in the current window.
    pub async fn failed_logins(&self, username: &str) -> SessionResult<u64> {
        let count = self
            .store
            .get(&key(FAILED_LOGINS, &username.to_lowercase()))
            .await?;
        Ok(count.and_then(|c| c.parse().ok()).unwrap_or(0))
    }

    pub async fn clear_failed_logins(&self, username: &str) -> SessionResult<()> {
        self.store
            .delete(&key(FAILED_LOGINS, &username.to_lowercase()))
            .await
    }

    pub async fn save_sso(&self, session: &SsoSession, now: UnixTime) -> SessionResult<()> {
        let ttl = (session.expires_at - now).max(1) as u64;
        self.put(SSO, &session.id, session, Duration::from_secs(ttl))
            .await
    }

    pub async fn load_sso(&self, id: &str, now: UnixTime) -> SessionResult<Option<SsoSession>> {
        let session: Option<SsoSession> = self.get(SSO, id).await?;
        Ok(session.filter(|s| s.expires_at > now).map(|s| SsoSession {
            id: id.to_owned(),
            ..s
        }))
    }

    /// Every value in the store (see `SessionStore::values`).
    pub async fn values(&self) -> SessionResult<Vec<String>> {
        self.store.values().await
    }

    pub async fn delete_sso(&self, id: &str) -> SessionResult<()> {
        self.store.delete(&key(SSO, id)).await
    }

    pub async fn save_pending<T: Serialize>(
        &self,
        handle: &str,
        value: &T,
        ttl: Duration,
    ) -> SessionResult<()> {
        self.put(PENDING, handle, value, ttl).await
    }

    pub async fn load_pending<T: DeserializeOwned>(
        &self,
        handle: &str,
    ) -> SessionResult<Option<T>> {
        self.get(PENDING, handle).await
    }

    /// Removes the pending request and returns it: a completed interaction cannot be replayed.
    pub async fn take_pending<T: DeserializeOwned>(
        &self,
        handle: &str,
    ) -> SessionResult<Option<T>> {
        match self.store.take(&key(PENDING, handle)).await? {
            Some(json) => serde_json::from_str(&json)
                .map(Some)
                .map_err(|e| SessionError::Corrupt(e.to_string())),
            None => Ok(None),
        }
    }

    async fn put<T: Serialize>(
        &self,
        ns: &str,
        id: &str,
        value: &T,
        ttl: Duration,
    ) -> SessionResult<()> {
        let json =
            serde_json::to_string(value).map_err(|e| SessionError::Corrupt(e.to_string()))?;
        self.store.put(&key(ns, id), json, ttl).await
    }

    async fn get<T: DeserializeOwned>(&self, ns: &str, id: &str) -> SessionResult<Option<T>> {
        match self.store.get(&key(ns, id)).await? {
            // A record we cannot read (e.g. written by another version) counts as absent.
            Some(json) => Ok(serde_json::from_str(&json).ok()),
            None => Ok(None),
        }
    }
}
