//! The signing-key lifecycle: keys are created on first start, rotated by
//! `portcullis keys rotate`, and reloaded by every running instance, so that all instances
//! publish the same JWKS and sign with the same key.

use std::sync::{Arc, RwLock, Weak};
use std::time::Duration;

use crate::config::Settings;
use crate::crypto::{KeyAlgorithm, KeySet, SigningKey};
use crate::domain::UnixTime;
use crate::store::{KeyStore, Store, StoreError, StoredKey};

/// Algorithms we always keep a key for: RS256 (required by OIDC Core §15.1) and ES256.
pub const ALGORITHMS: [KeyAlgorithm; 2] = [KeyAlgorithm::Rs256, KeyAlgorithm::Es256];

/// How long a rotated-in key is published before it signs, by default: longer than the
/// JWKS cache lifetime we advertise (5 minutes) plus every instance's reload interval.
pub const DEFAULT_ACTIVATION_DELAY: i64 = 900;

/// The current key set, swapped whole when keys change.
pub struct KeyRing {
    current: RwLock<Arc<KeySet>>,
}

impl KeyRing {
    pub fn new(keys: KeySet) -> Self {
        Self {
            current: RwLock::new(Arc::new(keys)),
        }
    }

    pub fn current(&self) -> Arc<KeySet> {
        self.current
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    fn replace(&self, keys: KeySet) {
        *self.current.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(keys);
    }
}

fn stored(
    key: &SigningKey,
    der: Vec<u8>,
    generation: i32,
    now: UnixTime,
    activates_at: UnixTime,
) -> StoredKey {
    StoredKey {
        kid: key.kid().to_owned(),
        alg: key.alg().as_str().to_owned(),
        generation,
        private_key: der,
        created_at: now,
        activates_at,
        retired_at: None,
    }
}

/// The published keys at `now`.
pub fn load(store: &dyn KeyStore, now: UnixTime) -> anyhow::Result<KeySet> {
    let keys = store
        .list_keys(now)?
        .iter()
        .map(|k| {
            let alg = KeyAlgorithm::parse(&k.alg).ok_or_else(|| {
                anyhow::anyhow!("signing key {} has unknown alg {}", k.kid, k.alg)
            })?;
            Ok(SigningKey::from_pkcs8(alg, &k.private_key)?.activating_at(k.activates_at))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    Ok(KeySet::new(keys))
}

/// Loads the keys, first creating a key for every algorithm that has no published one.
/// Instances starting together agree on one key per algorithm: the first insert of the
/// next generation wins and the others use it.
pub fn bootstrap(store: &dyn KeyStore, now: UnixTime) -> anyhow::Result<KeySet> {
    for alg in ALGORITHMS {
        // The generation is read before the published keys: an instance that sees no key
        // then claims the generation every racing instance also claims, and only one
        // insert succeeds. Read the other way round, a slower instance could claim the
        // next generation and add a second key.
        let generation = store.max_key_generation(alg.as_str())? + 1;
        if store.list_keys(now)?.iter().any(|k| k.alg == alg.as_str()) {
            continue;
        }
        let (key, der) = SigningKey::generate(alg)?;
        match store.insert_key(&stored(&key, der, generation, now, now)) {
            Ok(()) => tracing::info!(kid = %key.kid(), alg = alg.as_str(), "generated signing key"),
            Err(StoreError::Conflict) => {}
            Err(e) => return Err(e.into()),
        }
    }
    let keys = load(store, now)?;
    if let Some(missing) = ALGORITHMS
        .iter()
        .find(|alg| keys.signing_key(**alg, now).is_none())
    {
        anyhow::bail!(
            "no usable {} signing key; run `portcullis keys rotate --alg {0} --activate-in 0`",
            missing.as_str()
        );
    }
    Ok(keys)
}

/// Adds a new key for `alg` that is published at once and signs from
/// `now + activate_in`; the keys it replaces stay published until every token they signed
/// has expired.
pub fn rotate(
    store: &dyn KeyStore,
    alg: KeyAlgorithm,
    activate_in: i64,
    settings: &Settings,
    now: UnixTime,
) -> anyhow::Result<StoredKey> {
    let (key, der) = SigningKey::generate(alg)?;
    let activates_at = now + activate_in.max(0);
    let longest_token = settings.access_token_ttl.max(settings.id_token_ttl);
    let generation = store.max_key_generation(alg.as_str())? + 1;
    let record = stored(&key, der, generation, now, activates_at);
    match store.rotate_key(&record, activates_at + longest_token) {
        Ok(()) => Ok(record),
        Err(StoreError::Conflict) => anyhow::bail!(
            "another rotation of {} ran at the same time; try again",
            alg.as_str()
        ),
        Err(e) => Err(e.into()),
    }
}

/// Reloads the keys every `every` until the ring is dropped, so that rotations made by
/// the CLI or another instance are published (and later used) here too.
pub fn spawn_refresh(
    ring: Weak<KeyRing>,
    store: Arc<dyn Store>,
    every: Duration,
    clock: Arc<dyn crate::domain::Clock>,
) {
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(every).await;
            let Some(ring) = ring.upgrade() else { return };
            let store = store.clone();
            let now = clock.now();
            let loaded = tokio::task::spawn_blocking(move || load(&*store, now)).await;
            match loaded {
                Ok(Ok(keys)) => ring.replace(keys),
                Ok(Err(e)) => tracing::warn!(error = %e, "could not reload signing keys"),
                Err(e) => tracing::warn!(error = %e, "could not reload signing keys"),
            }
        }
    });
}
