//! Builds the application: storage, keys, sessions, routes.

use std::net::TcpListener;
use std::sync::Arc;

use actix_web::dev::Server;
use actix_web::{App, HttpServer, web};

use crate::config::Settings;
use crate::domain::now;
use crate::http::{self, AppState};
use crate::keyring::{self, KeyRing};
use crate::protocol::discovery::provider_metadata;
use crate::sessions::{MemorySessionStore, RedisSessionStore, SessionStore, Sessions};
use crate::store::Store;
use crate::store::sql::SqlStore;

/// Opens storage and keys; shared by `serve` and the tests.
pub async fn build_state(settings: Settings) -> anyhow::Result<AppState> {
    let url = settings.database_url.clone();
    let (store, keys) = tokio::task::spawn_blocking(move || -> anyhow::Result<_> {
        let store = SqlStore::open(&url)?;
        let keys = keyring::bootstrap(&store, now())?;
        Ok((store, keys))
    })
    .await??;
    let session_store: Arc<dyn SessionStore> = match &settings.redis_url {
        Some(url) => Arc::new(
            RedisSessionStore::connect(url, &settings.redis_prefix)
                .await
                .map_err(|e| anyhow::anyhow!("redis_url: {e}"))?,
        ),
        None => Arc::new(MemorySessionStore::new()),
    };
    let discovery_json = provider_metadata(&settings, &keys).to_string();
    let store: Arc<dyn Store> = Arc::new(store);
    let keys = Arc::new(KeyRing::new(keys));
    keyring::spawn_refresh(
        Arc::downgrade(&keys),
        store.clone(),
        std::time::Duration::from_secs(settings.key_refresh_interval as u64),
    );
    spawn_code_purge(Arc::downgrade(&store));
    Ok(AppState {
        settings: Arc::new(settings),
        store,
        sessions: Sessions::new(session_store),
        keys,
        discovery_json,
        metrics: Arc::new(http::observability::Metrics::default()),
        password_checks: Arc::new(tokio::sync::Semaphore::new(
            std::thread::available_parallelism().map_or(2, |n| n.get()) * 2,
        )),
    })
}

/// How long an expired code is kept: a late reuse within this time still revokes what the
/// code issued (RFC 6749 §4.1.2); afterwards it is merely unknown.
const EXPIRED_CODE_RETENTION: i64 = 86_400;

/// Deletes long-expired authorization codes every hour, until the store is dropped.
fn spawn_code_purge(store: std::sync::Weak<dyn Store>) {
    tokio::spawn(async move {
        loop {
            let Some(store) = store.upgrade() else { return };
            let purged = tokio::task::spawn_blocking(move || {
                store.purge_codes(now() - EXPIRED_CODE_RETENTION)
            })
            .await;
            match purged {
                Ok(Ok(n)) if n > 0 => {
                    tracing::info!(codes = n, "purged expired authorization codes")
                }
                Ok(Ok(_)) => {}
                Ok(Err(e)) => tracing::warn!(error = %e, "could not purge expired codes"),
                Err(e) => tracing::warn!(error = %e, "could not purge expired codes"),
            }
            tokio::time::sleep(std::time::Duration::from_secs(3600)).await;
        }
    });
}

/// Serves `state` on `listener`; the returned server runs until stopped (SIGTERM/SIGINT
/// stop it gracefully: in-flight requests finish first).
pub fn run(
    listener: TcpListener,
    state: AppState,
    workers: Option<usize>,
) -> anyhow::Result<Server> {
    let settings = state.settings.clone();
    let state = web::Data::new(state);
    let mut server = HttpServer::new(move || {
        App::new()
            .app_data(state.clone())
            .app_data(
                web::FormConfig::default()
                    .limit(64 * 1024)
                    .error_handler(http::error::bad_page_input),
            )
            .app_data(web::QueryConfig::default().error_handler(http::error::bad_page_input))
            .app_data(web::PayloadConfig::default().limit(64 * 1024))
            .wrap(actix_web::middleware::from_fn(http::observability::observe))
            .configure(|cfg| http::routes(cfg, &settings))
    })
    .listen(listener)?;
    if let Some(n) = workers {
        server = server.workers(n);
    }
    Ok(server.run())
}
