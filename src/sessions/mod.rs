//! Browser sessions and short-lived interaction state (pending authorization requests).
//!
//! `SessionStore` is a small key-value contract with TTLs: in process by default, Redis
//! when several instances share sessions. `Sessions` adds the typed records on top.

mod device;
mod loss;
mod memory;
mod redis;
mod redis_topology;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use serde::{Serialize, de::DeserializeOwned};

pub use loss::RECONCILIATION_LEASE;
pub use memory::MemorySessionStore;
pub use redis::{
    RedisSessionStore, open_client as open_redis_client,
    open_client_with_push as open_redis_client_with_push,
};
pub use redis_topology::{RedisClient, RedisConn, Topology as RedisTopology};

use crate::domain::{Level, MethodUse, UnixTime, UsernameKey};

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
    /// Puts `value` only if `key` holds nothing live, atomically (SET NX); `false` if it
    /// did (nothing changes then).
    fn put_if_absent<'a>(
        &'a self,
        key: &'a str,
        value: String,
        ttl: Duration,
    ) -> BoxFuture<'a, SessionResult<bool>>;
    fn get<'a>(&'a self, key: &'a str) -> BoxFuture<'a, SessionResult<Option<String>>>;
    /// Reads and deletes in one step, so a one-time record is used at most once.
    fn take<'a>(&'a self, key: &'a str) -> BoxFuture<'a, SessionResult<Option<String>>>;
    fn delete<'a>(&'a self, key: &'a str) -> BoxFuture<'a, SessionResult<()>>;
    /// Adds `delta` to a counter and returns the new count, atomically. A new counter
    /// lives for `window`; later additions do not extend it.
    fn add<'a>(
        &'a self,
        key: &'a str,
        delta: i64,
        window: Duration,
    ) -> BoxFuture<'a, SessionResult<i64>>;
    /// Reserves the next slot of a queue whose slots are `spacing` apart, atomically, and
    /// returns how long the caller waits for its slot (zero if the queue is idle). A slot
    /// further off than `max_wait` is not reserved (`None`): refused callers do not push
    /// the queue further back. The queue is forgotten `window` after its last reservation.
    fn reserve_slot<'a>(
        &'a self,
        key: &'a str,
        spacing: Duration,
        max_wait: Duration,
        window: Duration,
    ) -> BoxFuture<'a, SessionResult<Option<Duration>>>;
    /// Remembers a one-time `key` for at least `window`, atomically: `true` the first
    /// time, `false` while it is remembered (a DPoP proof's `jti`, RFC 9449 §11.1).
    /// Nothing is read back, so a store may keep these apart from its records.
    fn remember_once<'a>(
        &'a self,
        key: &'a str,
        window: Duration,
    ) -> BoxFuture<'a, SessionResult<bool>> {
        self.put_if_absent(key, "1".to_owned(), window)
    }
    /// Writes `value` under `key` with no TTL: the store's marker (`Sessions::has_marker`),
    /// which is there for as long as the store has kept what it was given.
    fn put_lasting<'a>(&'a self, key: &'a str, value: String) -> BoxFuture<'a, SessionResult<()>>;
    /// Gives `key` a TTL of `ttl` again if it holds `value`, atomically; `false` (and
    /// nothing changes) if it holds anything else or nothing: a lease renewed only by its
    /// holder, so a lease lost or taken over is never recreated.
    fn extend_if<'a>(
        &'a self,
        key: &'a str,
        value: &'a str,
        ttl: Duration,
    ) -> BoxFuture<'a, SessionResult<bool>>;
    /// Deletes `key` if it holds `value` and then (with `lasting`) writes that key and
    /// value with no TTL, atomically; `false` (and nothing changes) otherwise. Both keys
    /// must hash to one Cluster slot (a common hash tag).
    fn release_if<'a>(
        &'a self,
        key: &'a str,
        value: &'a str,
        lasting: Option<(&'a str, String)>,
    ) -> BoxFuture<'a, SessionResult<bool>>;
    /// Which of `keys` hold a live value, in their order, in one round trip.
    fn present<'a>(&'a self, keys: &'a [String]) -> BoxFuture<'a, SessionResult<Vec<bool>>>;
    /// Raises the counter `key` to `at_least` if it holds less, atomically; a counter
    /// that was not there lives for `window`, one that was keeps its time. Raising
    /// rather than adding makes a restore that runs twice count once.
    fn raise<'a>(
        &'a self,
        key: &'a str,
        at_least: i64,
        window: Duration,
    ) -> BoxFuture<'a, SessionResult<()>>;
    fn ping(&self) -> BoxFuture<'_, SessionResult<()>>;
    /// Every value held: for audits of what the store contains (and the tests that check
    /// it holds no credential). Walks the whole store: not for request paths.
    fn values(&self) -> BoxFuture<'_, SessionResult<Vec<String>>>;
}

/// The browser's single sign-on session (`sid` in ID tokens).
#[derive(Clone, Serialize, serde::Deserialize)]
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
    /// How they did: the authentication method references of the sign-in (RFC 8176 §2),
    /// in the order proved. Grants made in the session carry them into ID tokens.
    #[serde(default = "amr_before_it_was_recorded")]
    pub amr: Vec<String>,
    /// The level the sign-in reached (`acr`). Sessions saved before levels were recorded
    /// were signed in with a password alone: one factor.
    #[serde(default)]
    pub level: Level,
    /// Each method proved, and when (empty in sessions saved before they were
    /// recorded: see [`SsoSession::method_uses`]).
    #[serde(default)]
    pub methods: Vec<MethodUse>,
    pub expires_at: UnixTime,
    /// The upstream identity provider the session signed in through (its `[[upstream]]`
    /// id; issue 24): ID tokens of grants made in it carry it as `idp`.
    #[serde(default)]
    pub idp: Option<String>,
    /// The upstream's ID token, sealed under the key-encryption key, for a provider with
    /// `end_session` (issue 24): the `id_token_hint` of its logout. Kept inside the
    /// session so that it is written only by a sign-in that succeeded and goes whenever
    /// the session does (expiry, replacement, sign-out anywhere).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upstream_id_token: Option<String>,
}

impl SsoSession {
    /// Each method proved and when; for a session saved before they were recorded, its
    /// `amr` at its `auth_time`.
    pub fn method_uses(&self) -> Vec<MethodUse> {
        if !self.methods.is_empty() {
            return self.methods.clone();
        }
        self.amr
            .iter()
            .map(|amr| MethodUse {
                amr: amr.clone(),
                at: self.auth_time,
            })
            .collect()
    }
}

/// Sessions saved before `amr` was recorded were all signed in with a password alone.
fn amr_before_it_was_recorded() -> Vec<String> {
    vec!["pwd".to_owned()]
}

/// `id` is the cookie's credential: never in a log line.
impl std::fmt::Debug for SsoSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SsoSession")
            .field("id", &"[redacted]")
            .field("sid", &self.sid)
            .field("user_id", &self.user_id)
            .field("auth_time", &self.auth_time)
            .field("amr", &self.amr)
            .field("level", &self.level)
            .field("methods", &self.methods)
            .field("expires_at", &self.expires_at)
            .field("idp", &self.idp)
            .finish()
    }
}

/// Typed access to the session store.
#[derive(Clone)]
pub struct Sessions {
    store: Arc<dyn SessionStore>,
}

const SSO: &str = "sso:";
const PENDING: &str = "authz:";
const FAILED_LOGINS: &str = "failed:";
const FAILED_FROM: &str = "failed-from:";
const LOGIN_QUEUE: &str = "login-queue:";
const FAILED_SOURCE: &str = "failed-source:";
const FAILED_BROWSER: &str = "failed-browser:";
const SOURCE_QUEUE: &str = "login-queue-source:";
const KNOWN_BROWSER: &str = "known-browser:";
const PUSHED: &str = "par:";
const PASSKEY_CEREMONY: &str = "passkey-ceremony:";
const PASSKEY_CEREMONIES_OPEN: &str = "passkey-ceremonies:";
/// An upstream sign-in waiting for its callback, under its `state` (issue 24).
const UPSTREAM_STATE: &str = "upstream-state:";
/// A link proof waiting for a local sign-in and its confirmation (issue 24).
const UPSTREAM_LINK_PROOF: &str = "upstream-link:";

/// Passkey ceremonies one owner may have open at once (within a ceremony's lifetime):
/// every view of the login page starts one for the username field's autofill, so a few
/// are normal; more is a script asking in a loop, refused before it fills the store.
pub const MAX_OPEN_CEREMONIES: i64 = 30;

/// Whom a passkey ceremony (`protocol::passkeys`) is kept for, and so the key it is kept
/// under: bound to one browser, never to something a browser could name for another.
#[derive(Clone, Copy, Debug)]
pub enum CeremonyOwner<'a> {
    /// A sign-in: its interaction's handle and the id of the browser the interaction is
    /// bound to (the caller checked that it is). Another browser with the handle derives
    /// another key.
    SignIn {
        interaction: &'a str,
        browser: &'a str,
    },
    /// A passkey registration of the signed-in session `sid` (the session the browser's
    /// cookie loaded, not one the request names).
    Registration { sid: &'a str },
    /// A passkey chosen on an invitation's page (`protocol::signup`): the invitation's
    /// token hash (never the token) and the id of the browser its form token is bound
    /// to. A ceremony started for one invitation cannot answer another's.
    Invitation {
        invitation: &'a str,
        browser: &'a str,
    },
}

impl CeremonyOwner<'_> {
    fn id(&self) -> String {
        match self {
            Self::SignIn {
                interaction,
                browser,
            } => format!("sign-in\n{interaction}\n{browser}"),
            Self::Registration { sid } => format!("registration\n{sid}"),
            Self::Invitation {
                invitation,
                browser,
            } => format!("invitation\n{invitation}\n{browser}"),
        }
    }
}

/// Login attempts (reserved, less the successful ones) in the current window.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LoginAttempts {
    pub for_account: i64,
    /// For this account from this address.
    pub from_address: i64,
    /// From this address, for any account.
    pub from_source: i64,
    /// For this account from this browser (0 when the attempt names no browser).
    pub from_browser: i64,
}

/// Attempts count per account, whatever case the name is typed in: by the key the store
/// finds the account by (`UsernameKey`).
fn login_keys(username: &str, address: &str) -> [String; 3] {
    let name = UsernameKey::new(username);
    [
        key(FAILED_LOGINS, name.as_str()),
        key(FAILED_FROM, &format!("{name}\n{address}")),
        key(FAILED_SOURCE, address),
    ]
}

fn code_keys(kind: &str, user_id: &str, address: &str) -> [String; 2] {
    [
        key(&format!("failed-code:{kind}:"), user_id),
        key(&format!("failed-code-source:{kind}:"), address),
    ]
}

fn browser_login_key(username: &str, browser: &str) -> String {
    key(
        FAILED_BROWSER,
        &format!("{}\n{browser}", username.to_lowercase()),
    )
}

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

    /// Counts a login attempt before its password is checked, so that attempts sent at
    /// once (to any instance) are all counted before any is verified. `browser` is
    /// counted too when given (a browser that signed in to the account before).
    pub async fn reserve_login(
        &self,
        username: &str,
        address: &str,
        browser: Option<&str>,
        window: Duration,
    ) -> SessionResult<LoginAttempts> {
        let [account, pair, source] = login_keys(username, address);
        Ok(LoginAttempts {
            for_account: self.store.add(&account, 1, window).await?,
            from_address: self.store.add(&pair, 1, window).await?,
            from_source: self.store.add(&source, 1, window).await?,
            from_browser: match browser {
                Some(b) => {
                    self.store
                        .add(&browser_login_key(username, b), 1, window)
                        .await?
                }
                None => 0,
            },
        })
    }

    /// A successful attempt is not held against anyone: its reservation is returned
    /// (`browser` as it was given to `reserve_login`).
    pub async fn login_succeeded(
        &self,
        username: &str,
        address: &str,
        browser: Option<&str>,
        window: Duration,
    ) -> SessionResult<()> {
        for key in login_keys(username, address) {
            self.store.add(&key, -1, window).await?;
        }
        if let Some(b) = browser {
            self.store
                .add(&browser_login_key(username, b), -1, window)
                .await?;
        }
        Ok(())
    }

    /// Counts a code attempt (`kind`: one-time or recovery codes, each counted apart) on
    /// an account and from an address before the code is checked, atomically across
    /// instances; returns `(for_account, from_address)` in the window.
    pub async fn reserve_code(
        &self,
        kind: &str,
        user_id: &str,
        address: &str,
        window: Duration,
    ) -> SessionResult<(i64, i64)> {
        let [account, source] = code_keys(kind, user_id, address);
        Ok((
            self.store.add(&account, 1, window).await?,
            self.store.add(&source, 1, window).await?,
        ))
    }

    /// A right code's reservation is returned.
    pub async fn code_succeeded(
        &self,
        kind: &str,
        user_id: &str,
        address: &str,
        window: Duration,
    ) -> SessionResult<()> {
        for key in code_keys(kind, user_id, address) {
            self.store.add(&key, -1, window).await?;
        }
        Ok(())
    }

    /// Counts one more event of `kind` from `source` in the current window (rate limits:
    /// registrations, pending authorization requests); returns the count.
    pub async fn count_event(
        &self,
        kind: &str,
        source: &str,
        window: Duration,
    ) -> SessionResult<i64> {
        self.store
            .add(&key(&format!("rate:{kind}:"), source), 1, window)
            .await
    }

    /// Records a DPoP proof's `jti` (RFC 9449 §11.1) under `replay_key` for `window`, on
    /// every instance at once (SET NX, or the in-process set of one-time keys): `true` the
    /// first time only.
    pub async fn first_dpop_proof(
        &self,
        replay_key: &str,
        window: Duration,
    ) -> SessionResult<bool> {
        self.store
            .remember_once(&key("dpop:", replay_key), window)
            .await
    }

    /// Queues an attempt on `username` behind the previous one, `spacing` apart; returns
    /// the wait.
    pub async fn queue_login(
        &self,
        username: &str,
        spacing: Duration,
        max_wait: Duration,
        window: Duration,
    ) -> SessionResult<Option<Duration>> {
        let key = key(LOGIN_QUEUE, UsernameKey::new(username).as_str());
        self.store
            .reserve_slot(&key, spacing, max_wait, window)
            .await
    }

    /// Queues an attempt from `address` (a `limit_key`) behind the address's previous one,
    /// `spacing` apart; returns the wait.
    pub async fn queue_login_from(
        &self,
        address: &str,
        spacing: Duration,
        max_wait: Duration,
        window: Duration,
    ) -> SessionResult<Option<Duration>> {
        self.store
            .reserve_slot(&key(SOURCE_QUEUE, address), spacing, max_wait, window)
            .await
    }

    /// Remembers that `browser` signed in as `username`: later it skips the account-wide
    /// queue and is held to its own attempts rather than its address's, so guesses from
    /// elsewhere, or from behind the same address, never keep the owner's own browser out.
    pub async fn remember_browser(
        &self,
        username: &str,
        browser: &str,
        ttl: Duration,
    ) -> SessionResult<()> {
        let id = format!("{}\n{browser}", UsernameKey::new(username));
        self.store
            .put(&key(KNOWN_BROWSER, &id), "1".into(), ttl)
            .await
    }

    pub async fn is_known_browser(&self, username: &str, browser: &str) -> SessionResult<bool> {
        let id = format!("{}\n{browser}", UsernameKey::new(username));
        Ok(self.store.get(&key(KNOWN_BROWSER, &id)).await?.is_some())
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

    /// The key suffix a session is stored under (a hash of its cookie): what the session
    /// list in the database keeps, so that a session can be ended without its cookie.
    pub fn sso_record_key(id: &str) -> String {
        crate::crypto::tokens::token_hash(id)
    }

    /// A session by `sso_record_key` (without its cookie), if it is still there.
    pub async fn load_sso_record(&self, record_key: &str) -> SessionResult<Option<SsoSession>> {
        Ok(self
            .store
            .get(&format!("{SSO}{record_key}"))
            .await?
            .and_then(|json| serde_json::from_str(&json).ok()))
    }

    /// Deletes a session by `sso_record_key`.
    pub async fn delete_sso_record(&self, record_key: &str) -> SessionResult<()> {
        self.store.delete(&format!("{SSO}{record_key}")).await
    }

    /// A pushed authorization request (RFC 9126), under its handle, for `ttl`.
    pub async fn save_pushed<T: Serialize>(
        &self,
        handle: &str,
        value: &T,
        ttl: Duration,
    ) -> SessionResult<()> {
        self.put(PUSHED, handle, value, ttl).await
    }

    /// Takes a pushed request: a `request_uri` is good for one authorization request.
    pub async fn take_pushed<T: DeserializeOwned>(&self, handle: &str) -> SessionResult<Option<T>> {
        match self.store.take(&key(PUSHED, handle)).await? {
            Some(json) => serde_json::from_str(&json)
                .map(Some)
                .map_err(|e| SessionError::Corrupt(e.to_string())),
            None => Ok(None),
        }
    }

    /// Keeps a passkey ceremony of `owner` for `ttl`, under its `challenge` (so that the
    /// username field's autofill and the button, each with a ceremony of its own, do not
    /// replace each other's). `false`, and nothing kept, when the owner has
    /// [`MAX_OPEN_CEREMONIES`] already.
    pub async fn save_ceremony<T: Serialize>(
        &self,
        owner: CeremonyOwner<'_>,
        challenge: &str,
        ceremony: &T,
        ttl: Duration,
    ) -> SessionResult<bool> {
        let open = self
            .store
            .add(&key(PASSKEY_CEREMONIES_OPEN, &owner.id()), 1, ttl)
            .await?;
        if open > MAX_OPEN_CEREMONIES {
            return Ok(false);
        }
        let id = format!("{}\n{challenge}", owner.id());
        self.put(PASSKEY_CEREMONY, &id, ceremony, ttl).await?;
        Ok(true)
    }

    /// Takes (reads and deletes at once) the ceremony of `owner` with `challenge`: it is
    /// answered once, right or wrong. `None` when there is none (expired, answered
    /// already, another browser's or another owner's), or it cannot be read (written by
    /// another version): either way the person starts a new one.
    pub async fn take_ceremony<T: DeserializeOwned>(
        &self,
        owner: CeremonyOwner<'_>,
        challenge: &str,
    ) -> SessionResult<Option<T>> {
        let id = format!("{}\n{challenge}", owner.id());
        Ok(self
            .store
            .take(&key(PASSKEY_CEREMONY, &id))
            .await?
            .and_then(|json| serde_json::from_str(&json).ok()))
    }

    /// Keeps an upstream sign-in (its nonce, PKCE verifier, browser binding) under its
    /// `state` until the callback: server-side, so any instance sharing the store can
    /// take the callback.
    pub async fn save_upstream_state<T: Serialize>(
        &self,
        state: &str,
        value: &T,
        ttl: Duration,
    ) -> SessionResult<()> {
        self.put(UPSTREAM_STATE, state, value, ttl).await
    }

    /// Reads the upstream sign-in of `state` without taking it (its browser is checked
    /// before it is spent).
    pub async fn load_upstream_state<T: DeserializeOwned>(
        &self,
        state: &str,
    ) -> SessionResult<Option<T>> {
        self.get(UPSTREAM_STATE, state).await
    }

    /// Takes (reads and deletes at once) the upstream sign-in of `state`: a callback is
    /// answered once. `None` when there is none, or it cannot be read.
    pub async fn take_upstream_state<T: DeserializeOwned>(
        &self,
        state: &str,
    ) -> SessionResult<Option<T>> {
        Ok(self
            .store
            .take(&key(UPSTREAM_STATE, state))
            .await?
            .and_then(|json| serde_json::from_str(&json).ok()))
    }

    /// Keeps a link proof under its handle (the value of its one-time cookie's twin).
    pub async fn save_link_proof<T: Serialize>(
        &self,
        handle: &str,
        value: &T,
        ttl: Duration,
    ) -> SessionResult<()> {
        self.put(UPSTREAM_LINK_PROOF, handle, value, ttl).await
    }

    pub async fn load_link_proof<T: DeserializeOwned>(
        &self,
        handle: &str,
    ) -> SessionResult<Option<T>> {
        self.get(UPSTREAM_LINK_PROOF, handle).await
    }

    /// Takes a link proof: it links once.
    pub async fn take_link_proof<T: DeserializeOwned>(
        &self,
        handle: &str,
    ) -> SessionResult<Option<T>> {
        Ok(self
            .store
            .take(&key(UPSTREAM_LINK_PROOF, handle))
            .await?
            .and_then(|json| serde_json::from_str(&json).ok()))
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

#[cfg(test)]
mod tests {
    use super::*;

    const WINDOW: Duration = Duration::from_secs(900);

    fn counts(account: i64, pair: i64, source: i64, browser: i64) -> LoginAttempts {
        LoginAttempts {
            for_account: account,
            from_address: pair,
            from_source: source,
            from_browser: browser,
        }
    }

    #[tokio::test]
    async fn a_known_browser_is_counted_on_its_own_and_a_success_gives_every_count_back() {
        let sessions = Sessions::new(Arc::new(MemorySessionStore::new()));
        let address = "198.51.100.1";
        let first = sessions
            .reserve_login("Alice", address, Some("b1"), WINDOW)
            .await
            .unwrap();
        assert_eq!(first, counts(1, 1, 1, 1));
        // Another name from the same address, in a browser not counted on its own.
        let other = sessions
            .reserve_login("bob", address, None, WINDOW)
            .await
            .unwrap();
        assert_eq!(other, counts(1, 1, 2, 0));
        sessions
            .login_succeeded("alice", address, Some("b1"), WINDOW)
            .await
            .unwrap();
        let again = sessions
            .reserve_login("alice", address, Some("b1"), WINDOW)
            .await
            .unwrap();
        assert_eq!(again, counts(1, 1, 2, 1));
        let elsewhere = sessions
            .reserve_login("alice", address, Some("b2"), WINDOW)
            .await
            .unwrap();
        assert_eq!(elsewhere, counts(2, 2, 3, 1));
    }

    #[tokio::test]
    async fn a_session_saved_before_amr_was_recorded_loads_as_signed_in_with_a_password() {
        let store = Arc::new(MemorySessionStore::new());
        let old = r#"{"sid":"public-sid","user_id":"user-1","auth_time":1,"expires_at":100}"#;
        store
            .put(&key(SSO, "cookie"), old.into(), Duration::from_secs(60))
            .await
            .unwrap();
        let session = Sessions::new(store)
            .load_sso("cookie", 2)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(session.amr, ["pwd"]);
        assert_eq!(session.sid, "public-sid");
    }

    #[tokio::test]
    async fn a_ceremony_is_taken_once_and_only_by_its_owner_with_its_challenge() {
        let sessions = Sessions::new(Arc::new(MemorySessionStore::new()));
        let ttl = Duration::from_secs(300);
        let mine = CeremonyOwner::SignIn {
            interaction: "handle",
            browser: "browser-1",
        };
        assert!(
            sessions
                .save_ceremony(mine, "challenge-1", &"state-1", ttl)
                .await
                .unwrap()
        );
        // The same interaction handle in another browser, another challenge, a session
        // of the same name: none of them finds it.
        let other_browser = CeremonyOwner::SignIn {
            interaction: "handle",
            browser: "browser-2",
        };
        let taken: Option<String> = sessions
            .take_ceremony(other_browser, "challenge-1")
            .await
            .unwrap();
        assert_eq!(taken, None);
        let taken: Option<String> = sessions.take_ceremony(mine, "challenge-2").await.unwrap();
        assert_eq!(taken, None);
        let registration = CeremonyOwner::Registration { sid: "handle" };
        let taken: Option<String> = sessions
            .take_ceremony(registration, "challenge-1")
            .await
            .unwrap();
        assert_eq!(taken, None);
        let taken: Option<String> = sessions.take_ceremony(mine, "challenge-1").await.unwrap();
        assert_eq!(taken.as_deref(), Some("state-1"));
        let again: Option<String> = sessions.take_ceremony(mine, "challenge-1").await.unwrap();
        assert_eq!(again, None, "single use");
    }

    #[tokio::test]
    async fn an_owner_asking_for_ceremonies_in_a_loop_is_refused_before_the_store_fills() {
        let sessions = Sessions::new(Arc::new(MemorySessionStore::new()));
        let ttl = Duration::from_secs(300);
        let owner = CeremonyOwner::Registration { sid: "sid-1" };
        for n in 0..MAX_OPEN_CEREMONIES {
            let saved = sessions
                .save_ceremony(owner, &format!("c{n}"), &n, ttl)
                .await
                .unwrap();
            assert!(saved, "ceremony {n}");
        }
        let saved = sessions
            .save_ceremony(owner, "one-more", &0, ttl)
            .await
            .unwrap();
        assert!(!saved);
        let kept: Option<i64> = sessions.take_ceremony(owner, "one-more").await.unwrap();
        assert_eq!(kept, None, "nothing kept");
        let other = CeremonyOwner::Registration { sid: "sid-2" };
        assert!(sessions.save_ceremony(other, "c", &0, ttl).await.unwrap());
    }

    #[test]
    fn debug_output_never_contains_the_session_cookie() {
        let session = SsoSession {
            id: "the-cookie-value".into(),
            sid: "public-sid".into(),
            user_id: "user-1".into(),
            auth_time: 1,
            amr: vec!["pwd".into()],
            level: Default::default(),
            methods: Vec::new(),
            expires_at: 2,
            idp: None,
            upstream_id_token: None,
        };
        let shown = format!("{session:?}");
        assert!(!shown.contains("the-cookie-value"), "{shown}");
        assert!(shown.contains("public-sid"), "{shown}");
    }
}
