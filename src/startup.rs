//! Builds the application: storage, keys, sessions; `http::server` serves it.

use std::net::TcpListener;
use std::sync::Arc;

use anyhow::Context as _;

use crate::client_keys::JwksFetcher;
use crate::config::Settings;
use crate::crypto::kek::KeyEncryptionKey;
use crate::domain::{Clock, SystemClock};
use crate::http::{self, AppState};
use crate::keyring::{self, KeyRing};
use crate::liveness_sync::is_postgres;
use crate::protocol::ProtocolConfig;
use crate::protocol::discovery::provider_metadata;
use crate::protocol::passkeys::{self, PasskeySettings, Passkeys};
use crate::sessions::{MemorySessionStore, RedisSessionStore, SessionStore, Sessions};
use crate::store::Store;
use crate::store::sql::SqlStore;
use crate::store_loss::{StoreLoss, Watch};

/// The servers, where `serve`, the tests and the benchmarks have always found them.
pub use crate::http::server::{KEEP_ALIVE, run, run_metrics};

/// Opens storage and keys; shared by `serve` and the tests.
pub async fn build_state(settings: Settings) -> anyhow::Result<AppState> {
    build_state_with_clock(settings, Arc::new(SystemClock)).await
}

/// What protocol code reads of the configuration. Here, above both, because the
/// protocol names no `Settings` and the configuration knows no protocol.
impl From<&Settings> for ProtocolConfig {
    fn from(settings: &Settings) -> Self {
        Self {
            issuer: settings.issuer.clone(),
            authorization_code_ttl: settings.authorization_code_ttl,
            access_token_ttl: settings.access_token_ttl,
            id_token_ttl: settings.id_token_ttl,
            refresh_token_ttl: settings.refresh_token_ttl,
            refresh_token_absolute_ttl: settings.refresh_token_absolute_ttl,
            refresh_token_grace_period: settings.refresh_token_grace_period,
            session_ttl: settings.session_ttl,
            require_pushed_authorization_requests: settings.require_pushed_authorization_requests,
            dpop_nonce: settings.dpop_nonce,
            registration: settings.registration,
            registration_token_set: settings.registration_token.is_some(),
            mfa: settings.mfa,
            // Set from the passkey service once it is built (`build_state_with_clock`).
            passkeys: false,
        }
    }
}

/// The key-encryption key from the configuration or its file.
pub fn load_kek(settings: &Settings) -> anyhow::Result<KeyEncryptionKey> {
    Ok(match &settings.key_encryption_key {
        Some(key) => KeyEncryptionKey::from_base64(key.expose())?,
        None => KeyEncryptionKey::load_or_create(&settings.key_encryption_key_file)?,
    })
}

/// The database remembers the check value of the first KEK it met: an instance started
/// with another key would write secrets nobody else can read, so it refuses to start.
pub fn check_kek(store: &dyn Store, kek: &KeyEncryptionKey) -> anyhow::Result<()> {
    let stored = store.remember_fact("key_encryption_key_check", kek.check_value())?;
    if stored != kek.check_value() {
        anyhow::bail!(
            "key_encryption_key: this database was set up with another key-encryption key; \
             give every instance the same key_encryption_key (or key_encryption_key_file)"
        );
    }
    Ok(())
}

/// Registers the admin console's own client, or points it at this issuer again (the
/// issuer may have changed since it was registered).
fn ensure_console_client(
    store: &dyn Store,
    settings: &Settings,
    kek: &KeyEncryptionKey,
    now: crate::domain::UnixTime,
) -> anyhow::Result<()> {
    use crate::store::{AdminChange, NewAuditEvent};
    let draft = http::console::console_client_draft(settings);
    let registered = crate::protocol::registration::register(draft, &settings.issuer, kek, now);
    let mut client = match registered {
        Ok(registered) => registered.client,
        // An issuer the rules give no valid redirect URI (plain http on a host that is
        // not this machine): the server runs, without its console.
        Err(e) => {
            tracing::warn!(error = %e, "the admin console is off: its redirect URI is refused");
            return Ok(());
        }
    };
    client.id = crate::admin::CONSOLE_CLIENT_ID.to_owned();
    let existing = store.find_client(&client.id)?;
    let change = match &existing {
        None => AdminChange::CreateClient(&client),
        Some(c)
            // Anything that decides where its codes go, what it may ask for, or whether
            // its administrator is asked to consent.
            if c.redirect_uris != client.redirect_uris
                || c.post_logout_redirect_uris != client.post_logout_redirect_uris
                || c.scope != client.scope
                || c.grant_types != client.grant_types
                || c.auth_method != client.auth_method
                || c.first_party != client.first_party =>
        {
            client.created_at = c.created_at;
            AdminChange::UpdateClient(&client)
        }
        Some(_) => return Ok(()),
    };
    let event = NewAuditEvent {
        at: now,
        actor: "system".into(),
        action: if existing.is_some() {
            "client.updated"
        } else {
            "client.registered"
        }
        .into(),
        target: Some(client.id.clone()),
        address: None,
        details: Some(serde_json::json!({ "client_name": client.name }).to_string()),
    };
    match store.apply_audited(change, &event) {
        // Another instance starting at the same time registered it first.
        Ok(_) | Err(crate::store::StoreError::Conflict) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// On a database without users, how to create the first administrator (said once, at
/// start: the admin console has nobody to let in yet).
pub fn first_run_hint(store: &dyn Store, settings: &Settings) -> anyhow::Result<Option<String>> {
    let any = store.find_users(&crate::store::UserQuery {
        limit: 1,
        ..Default::default()
    })?;
    Ok(any.is_empty().then(|| {
        format!(
            "no users yet: create the first administrator with \
             `portcullis users add --username admin --admin --password-stdin`, \
             then sign in to the admin console at {}",
            settings.endpoint(http::paths::console::HOME)
        )
    }))
}

/// The passkeys' Relying Party, from the issuer and `webauthn_rp_id` / `webauthn_origins`
/// (named after the brand); `None` when passkeys are off, which `PasskeySettings` has
/// said in a warning. A wrong configured value stops the start with the key's name.
pub fn passkey_service(settings: &Settings) -> anyhow::Result<Option<Passkeys>> {
    let Some(relying_party) = PasskeySettings::from_issuer(
        &settings.issuer,
        settings.webauthn_rp_id.as_deref(),
        &settings.webauthn_origins,
    )?
    else {
        return Ok(None);
    };
    let relying_party = relying_party.named(&settings.brand.name);
    let passkeys = Passkeys::new(&relying_party)
        .map_err(|e| anyhow::anyhow!("configuration: {}: {e}", passkeys::ORIGINS_KEY))?;
    Ok(Some(passkeys))
}

/// Opens storage and keys with time from `clock` (tests move a manual clock).
pub async fn build_state_with_clock(
    settings: Settings,
    clock: Arc<dyn Clock>,
) -> anyhow::Result<AppState> {
    let passkeys = passkey_service(&settings)?;
    // Before the database: a CA file that cannot be read stops the start at once.
    let mailer = Arc::new(crate::mail::Mailer::new(&settings)?);
    let url = settings.database_url.clone();
    let kek = load_kek(&settings)?;
    let now = clock.now();
    let settings_for_console = settings.clone();
    let (store, keys, kek) = tokio::task::spawn_blocking(move || -> anyhow::Result<_> {
        let store = SqlStore::open(&url)?;
        check_kek(&store, &kek)?;
        let keys = keyring::bootstrap(&store, &kek, now)?;
        ensure_console_client(&store, &settings_for_console, &kek, now)?;
        Ok((store, keys, kek))
    })
    .await??;
    let session_store: Arc<dyn SessionStore> = match &settings.redis_url {
        Some(url) => Arc::new(
            RedisSessionStore::connect_with_ca(
                url,
                &settings.redis_prefix,
                settings.redis_ca_file.as_deref(),
            )
            .await
            .map_err(|e| anyhow::anyhow!("redis_url: {e}"))?,
        ),
        None => Arc::new(MemorySessionStore::new()),
    };
    let liveness_channel = crate::liveness_sync::channel(&settings.redis_prefix);
    if let Some(url) = &settings.redis_url {
        crate::liveness_sync::spawn_for_url(
            url,
            settings.redis_ca_file.as_deref(),
            liveness_channel,
            &store.liveness_cache(),
        )
        .map_err(|e| anyhow::anyhow!("redis_url: {e}"))?;
    } else if is_postgres(&settings.database_url) {
        // Several instances on PostgreSQL alone: LISTEN/NOTIFY instead.
        crate::liveness_sync::spawn_postgres(
            settings.database_url.clone(),
            liveness_channel,
            &store.liveness_cache(),
        )?;
    }
    let protocol_config = ProtocolConfig {
        passkeys: passkeys.is_some(),
        ..ProtocolConfig::from(&settings)
    };
    let discovery_json = provider_metadata(&protocol_config, &keys).to_string();
    let local_development = crate::protocol::registration::local_development(&settings.issuer);
    let store: Arc<dyn Store> = Arc::new(store);
    let keys = Arc::new(KeyRing::new(keys));
    let settings = Arc::new(settings);
    let kek = Arc::new(kek);
    keyring::spawn_refresh(
        Arc::downgrade(&keys),
        store.clone(),
        kek.clone(),
        settings.clone(),
        clock.clone(),
    );
    spawn_purge(
        Arc::downgrade(&store),
        clock.clone(),
        settings.audit_retention.as_secs(),
    );
    spawn_failure_purge(Arc::downgrade(&store), clock.clone());
    let metrics = Arc::new(http::observability::Metrics::default());
    let outbox = crate::logout_delivery::spawn(
        Arc::downgrade(&store),
        Arc::downgrade(&keys),
        kek.clone(),
        settings.issuer.clone(),
        clock.clone(),
        metrics.clone(),
        local_development,
    )?;
    let mail = crate::mail_delivery::MailDelivery::new(
        Arc::downgrade(&store),
        mailer,
        kek.clone(),
        clock.clone(),
        metrics.clone(),
    )
    .spawn();
    let sessions = Sessions::new(session_store);
    // A session store that came back empty (issue 26): the database's sessions and the
    // throttle's counts are put right (`store_loss`).
    let watch = match (&settings.redis_url, is_postgres(&settings.database_url)) {
        (Some(_), _) => Watch::Shared,
        (None, false) => Watch::Alone,
        (None, true) => Watch::CountersOnly,
    };
    crate::store_loss::spawn(
        StoreLoss {
            sessions: sessions.clone(),
            store: Arc::downgrade(&store),
            clock: clock.clone(),
            holder: crate::crypto::tokens::random_uuid(),
            recheck: crate::store_loss::RECHECK_AFTER,
            walk: crate::store_loss::Walk::default(),
            outbox: Some(outbox.clone()),
        },
        watch,
    );
    // Nothing is fetched here: an upstream's discovery waits for its first use, so one
    // that is down delays no start (issue 24).
    let upstreams = Arc::new(crate::upstream::Upstreams::new(
        &settings,
        clock.clone(),
        keys.clone(),
    )?);
    Ok(AppState {
        settings,
        protocol_config,
        store,
        sessions,
        keys,
        discovery_json,
        metrics,
        password_checks: Arc::new(tokio::sync::Semaphore::new(
            std::thread::available_parallelism().map_or(2, |n| n.get()) * 2,
        )),
        clock,
        kek,
        client_keys: Arc::new(JwksFetcher::new(local_development)?),
        upstreams,
        outbox,
        mail,
        passkeys,
    })
}

/// How long an expired code or refresh token is kept: a late reuse within this time still
/// revokes what it issued (RFC 6749 §4.1.2, RFC 9700 §4.14.2); afterwards it is merely
/// unknown.
const EXPIRED_RETENTION: i64 = 86_400;

/// Deletes long-expired codes, refresh and opaque access tokens, denylist entries and
/// assertion ids, and audit events older than `audit_retention`, every hour, until the
/// store is dropped.
fn spawn_purge(store: std::sync::Weak<dyn Store>, clock: Arc<dyn Clock>, audit_retention: i64) {
    tokio::spawn(async move {
        loop {
            let Some(store) = store.upgrade() else { return };
            let now = clock.now();
            let before = now - EXPIRED_RETENTION;
            let purged = tokio::task::spawn_blocking(move || {
                let audit = store.purge_audit_events(now - audit_retention)?;
                Ok::<_, crate::store::StoreError>(store.purge_expired(before)? + audit)
            })
            .await;
            match purged {
                Ok(Ok(n)) if n > 0 => {
                    tracing::info!(rows = n, "purged expired codes and tokens")
                }
                Ok(Ok(_)) => {}
                Ok(Err(e)) => tracing::warn!(error = %e, "could not purge expired tokens"),
                Err(e) => tracing::warn!(error = %e, "could not purge expired tokens"),
            }
            tokio::time::sleep(std::time::Duration::from_secs(3600)).await;
        }
    });
}

/// Deletes failed sign-ins older than the throttle's window, once a window, until the
/// store is dropped: only that window is ever restored from them (`store_loss`), so
/// under password spraying the table holds two windows' failures at most.
fn spawn_failure_purge(store: std::sync::Weak<dyn Store>, clock: Arc<dyn Clock>) {
    let window = crate::protocol::throttle::WINDOW;
    tokio::spawn(async move {
        loop {
            let Some(store) = store.upgrade() else { return };
            let before = clock.now() - window.as_secs() as i64;
            let purged =
                tokio::task::spawn_blocking(move || store.purge_login_failures(before)).await;
            match purged {
                Ok(Ok(_)) => {}
                Ok(Err(e)) => tracing::warn!(error = %e, "could not purge failed sign-ins"),
                Err(e) => tracing::warn!(error = %e, "could not purge failed sign-ins"),
            }
            tokio::time::sleep(window).await;
        }
    });
}

/// glibc gives every thread that allocates its own heap arena (up to 8 per core), and each
/// keeps what it once held: with request, blocking and hashing threads that is tens of
/// MiB of memory nobody uses. Two arenas serve this process's allocation rate as well.
/// Called first thing in `main`, before any thread exists.
pub fn tune_allocator() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets a glibc tunable; called before other threads start.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 2);
    }
}

/// Serves `settings` until SIGTERM or SIGINT (`portcullis serve`): binds the listeners
/// first, so that a taken port fails before anything is opened, then builds the state and
/// runs the public server and, with `metrics_bind`, the metrics one beside it.
pub fn serve(settings: Settings) -> anyhow::Result<()> {
    crate::http::server::block_on(async move {
        let listener = TcpListener::bind(&settings.bind)
            .with_context(|| format!("cannot listen on {}", settings.bind))?;
        let metrics_listener = match &settings.metrics_bind {
            Some(addr) => Some(
                TcpListener::bind(addr)
                    .with_context(|| format!("metrics_bind: cannot listen on {addr}"))?,
            ),
            None => None,
        };
        let issuer = settings.issuer.clone();
        let state = build_state(settings).await?;
        tracing::info!(issuer = %issuer, address = %listener.local_addr()?, "portcullis is serving");
        if let Some(hint) = first_run_hint(&*state.store, &state.settings)? {
            tracing::warn!("{hint}");
        }
        let metrics = match metrics_listener {
            Some(l) => {
                tracing::info!(address = %l.local_addr()?, "metrics are served");
                Some(run_metrics(l, state.metrics.clone())?)
            }
            None => None,
        };
        let main = run(listener, state, None)?;
        crate::http::server::until_stopped(main, metrics).await?;
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::RegistrationMode;

    #[test]
    fn the_protocol_gets_the_operators_issuer_lifetimes_and_registration() {
        let settings = Settings::from_sources(
            Some(
                "issuer = \"https://id.example/\"\nauthorization_code_ttl = 30\n\
                 refresh_token_grace_period = 0\nregistration = \"open\"\n\
                 require_pushed_authorization_requests = true",
            ),
            |_| None,
        )
        .unwrap();
        let config = ProtocolConfig::from(&settings);
        assert_eq!(config.issuer, "https://id.example");
        assert_eq!(config.endpoint("/token"), settings.endpoint("/token"));
        assert_eq!(config.authorization_code_ttl.as_secs(), 30);
        assert!(config.refresh_token_grace_period.is_zero());
        assert_eq!(config.registration, RegistrationMode::Open);
        assert!(!config.registration_token_set);
        assert!(config.require_pushed_authorization_requests);
    }

    fn settings_of(toml: &str) -> Settings {
        Settings::from_sources(Some(toml), |_| None).unwrap()
    }

    #[test]
    fn passkeys_are_on_at_a_domain_and_off_at_an_ip_address() {
        let on = passkey_service(&settings_of(
            "issuer = \"https://id.example/\"\nbrand_name = \"Acme\"",
        ))
        .unwrap();
        assert!(on.is_some());
        let local = passkey_service(&settings_of("issuer = \"http://localhost:8080\""));
        assert!(local.unwrap().is_some(), "localhost is a secure context");
        let ip = passkey_service(&settings_of("issuer = \"http://127.0.0.1:8080\"")).unwrap();
        assert!(ip.is_none());
    }

    #[test]
    fn a_wrong_passkey_setting_stops_the_start_naming_its_key() {
        let error = passkey_service(&settings_of(
            "issuer = \"https://id.example\"\nwebauthn_origins = \"https://elsewhere.example\"",
        ))
        .unwrap_err();
        assert!(error.to_string().contains("webauthn_origins"), "{error:#}");
        let error = passkey_service(&settings_of(
            "issuer = \"https://id.example\"\nwebauthn_rp_id = \"other.example\"",
        ))
        .unwrap_err();
        assert!(error.to_string().contains("webauthn_rp_id"), "{error:#}");
    }

    #[test]
    fn the_unit_tests_configuration_is_the_defaults_under_another_issuer() {
        let settings = Settings::from_sources(None, |_| None).unwrap();
        // `passkeys` is what the passkey service makes of the settings: on for the
        // default issuer (http://localhost), as in the unit tests.
        let defaults = ProtocolConfig {
            passkeys: passkey_service(&settings).unwrap().is_some(),
            ..ProtocolConfig::from(&settings)
        };
        assert_eq!(
            ProtocolConfig {
                issuer: defaults.issuer.clone(),
                ..crate::protocol::testing::config()
            },
            defaults
        );
    }
}
