//! What every handler shares: the application state, and running protocol code with it.

use std::sync::Arc;

use actix_web::web;

use crate::client_keys::JwksFetcher;
use crate::config::Settings;
use crate::crypto::kek::KeyEncryptionKey;
use crate::domain::{Clock, UnixTime};
use crate::keyring::KeyRing;
use crate::metrics::Metrics;
use crate::protocol::{Context, OAuthError, ProtocolConfig};
use crate::sessions::Sessions;
use crate::store::Store;

/// Everything a handler may use; built once in `startup` and shared by every worker.
pub struct AppState {
    pub settings: Arc<Settings>,
    /// What protocol code reads of `settings`, taken from it once at start.
    pub protocol_config: ProtocolConfig,
    pub store: Arc<dyn Store>,
    pub sessions: Sessions,
    pub keys: Arc<KeyRing>,
    /// The discovery document, serialized once.
    pub discovery_json: String,
    pub metrics: Arc<Metrics>,
    /// Bounds concurrent password verifications (argon2 is deliberately expensive).
    pub password_checks: Arc<tokio::sync::Semaphore>,
    pub clock: Arc<dyn Clock>,
    pub kek: Arc<KeyEncryptionKey>,
    pub client_keys: Arc<JwksFetcher>,
    /// The upstream identity providers (`[[upstream]]`) and their cached discovery.
    pub upstreams: Arc<crate::upstream::Upstreams>,
    /// Wakes this instance's back-channel logout delivery after a session ends here.
    pub outbox: crate::logout_delivery::Outbox,
    /// Wakes this instance's mail delivery after a request queued mail.
    pub mail: crate::mail_delivery::MailOutbox,
    /// The WebAuthn Relying Party; `None`: passkeys are off (the issuer's host is an IP
    /// address, or it is no secure context; see `protocol::passkeys::PasskeySettings`).
    pub passkeys: Option<crate::protocol::passkeys::Passkeys>,
}

pub type State = web::Data<AppState>;

impl AppState {
    /// Runs `f` with a protocol context over the current keys and the current time.
    pub fn with_context<T>(&self, f: impl FnOnce(&Context<'_>) -> T) -> T {
        let keys = self.keys.current();
        f(&Context {
            store: &*self.store,
            keys: &keys,
            config: &self.protocol_config,
            kek: &self.kek,
            client_keys: &*self.client_keys,
            now: self.clock.now(),
            dpop: None,
        })
    }

    pub fn now(&self) -> UnixTime {
        self.clock.now()
    }
}

/// Runs protocol code that touches the database on the blocking pool, off the actix worker.
pub async fn blocking<T, F>(state: &State, f: F) -> Result<T, OAuthError>
where
    T: Send + 'static,
    F: FnOnce(&Context<'_>) -> Result<T, OAuthError> + Send + 'static,
{
    let state = state.clone();
    // The blocking thread logs under the request's span (its request id).
    let span = tracing::Span::current();
    web::block(move || span.in_scope(|| state.with_context(f)))
        .await
        .map_err(OAuthError::server)?
}

/// Like [`blocking`], for reads that memory usually answers (userinfo, introspection):
/// tried on this thread with I/O refused first, and on the blocking pool only if it needed
/// I/O (`memory_only`). `f` must change nothing before its first I/O.
pub async fn read_mostly_cached<T, F>(state: &State, f: F) -> Result<T, OAuthError>
where
    T: Send + 'static,
    F: Fn(&Context<'_>) -> Result<T, OAuthError> + Send + 'static,
{
    if let Some(done) = crate::memory_only::attempt(|| state.with_context(&f)) {
        return done;
    }
    blocking(state, f).await
}
