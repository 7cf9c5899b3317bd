//! Builds the application: storage, keys, sessions, routes.

use std::net::TcpListener;
use std::sync::Arc;

use actix_web::dev::Server;
use actix_web::{App, HttpServer, web};

use crate::config::Settings;
use crate::crypto::{KeyAlgorithm, KeySet, SigningKey};
use crate::domain::now;
use crate::http::{self, AppState};
use crate::protocol::discovery::provider_metadata;
use crate::sessions::{MemorySessionStore, RedisSessionStore, SessionStore, Sessions};
use crate::store::sql::SqlStore;
use crate::store::{KeyStore, StoreError, StoredKey};

/// Algorithms we always keep a key for: RS256 (required by OIDC Core §15.1) and ES256.
const KEY_ALGORITHMS: [KeyAlgorithm; 2] = [KeyAlgorithm::Rs256, KeyAlgorithm::Es256];

/// Loads the signing keys, generating and storing any that are missing.
pub fn load_or_create_keys(store: &dyn KeyStore) -> anyhow::Result<KeySet> {
    let mut stored = store.list_keys()?;
    for alg in KEY_ALGORITHMS {
        if !stored.iter().any(|k| k.alg == alg.as_str()) {
            let (key, der) = SigningKey::generate(alg)?;
            let record = StoredKey {
                kid: key.kid().to_owned(),
                alg: alg.as_str().to_owned(),
                generation: 1,
                private_key: der,
                created_at: now(),
                retired_at: None,
            };
            match store.insert_key(&record) {
                Ok(()) => {
                    tracing::info!(kid = %record.kid, alg = %record.alg, "generated signing key")
                }
                // Another instance created this generation first: use theirs.
                Err(StoreError::Conflict) => {}
                Err(e) => return Err(e.into()),
            }
            stored = store.list_keys()?;
        }
    }
    let keys = stored
        .iter()
        .map(|k| {
            let alg = KeyAlgorithm::parse(&k.alg).ok_or_else(|| {
                anyhow::anyhow!("signing key {} has unknown alg {}", k.kid, k.alg)
            })?;
            Ok(SigningKey::from_pkcs8(alg, &k.private_key)?)
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    Ok(KeySet::new(keys))
}

/// Opens storage and keys; shared by `serve` and the tests.
pub async fn build_state(settings: Settings) -> anyhow::Result<AppState> {
    let url = settings.database_url.clone();
    let (store, keys) = tokio::task::spawn_blocking(move || -> anyhow::Result<_> {
        let store = SqlStore::open(&url)?;
        let keys = load_or_create_keys(&store)?;
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
    Ok(AppState {
        settings: Arc::new(settings),
        store: Arc::new(store),
        sessions: Sessions::new(session_store),
        keys: Arc::new(keys),
        discovery_json,
        metrics: Arc::new(http::observability::Metrics::default()),
        password_checks: Arc::new(tokio::sync::Semaphore::new(
            std::thread::available_parallelism().map_or(2, |n| n.get()) * 2,
        )),
    })
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
