//! The signing-key lifecycle: keys are created on first start, rotated by
//! `portcullis keys rotate`, and reloaded by every running instance, so that all instances
//! publish the same JWKS and sign with the same key.

use std::sync::{Arc, RwLock, Weak};

use crate::config::Settings;
use crate::crypto::kek::KeyEncryptionKey;
use crate::crypto::keys::{is_sealed, open_private_key, seal_private_key};
use crate::crypto::{KeyAlgorithm, KeySet, SigningKey};
use crate::domain::UnixTime;
use crate::store::{KeyStore, Store, StoreError, StoredKey};

/// Algorithms we always keep a key for: RS256 (required by OIDC Core §15.1) and ES256.
pub const ALGORITHMS: [KeyAlgorithm; 4] = [
    KeyAlgorithm::Rs256,
    KeyAlgorithm::Ps256,
    KeyAlgorithm::Es256,
    KeyAlgorithm::EdDsa,
];

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

    /// Loads the key set again now (after a rotation made here).
    pub fn reload(
        &self,
        store: &dyn KeyStore,
        kek: &KeyEncryptionKey,
        now: UnixTime,
    ) -> anyhow::Result<()> {
        self.replace(load(store, kek, now)?);
        Ok(())
    }

    fn replace(&self, keys: KeySet) {
        *self.current.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(keys);
    }
}

fn stored(
    key: &SigningKey,
    der: &[u8],
    kek: &KeyEncryptionKey,
    generation: i32,
    now: UnixTime,
    activates_at: UnixTime,
) -> anyhow::Result<StoredKey> {
    Ok(StoredKey {
        kid: key.kid().to_owned(),
        alg: key.alg().as_str().to_owned(),
        generation,
        private_key: seal_private_key(kek, key.kid(), der)?,
        created_at: now,
        activates_at,
        retired_at: None,
    })
}

/// The published keys at `now` (a key stored in the clear, from before keys were sealed,
/// is still read; `bootstrap` seals it).
pub fn load(store: &dyn KeyStore, kek: &KeyEncryptionKey, now: UnixTime) -> anyhow::Result<KeySet> {
    let keys = store
        .list_keys(now)?
        .iter()
        .map(|k| {
            let alg = KeyAlgorithm::parse(&k.alg).ok_or_else(|| {
                anyhow::anyhow!("signing key {} has unknown alg {}", k.kid, k.alg)
            })?;
            let der = open_private_key(kek, &k.kid, &k.private_key).map_err(|e| {
                anyhow::anyhow!("signing key {}: {e} (is key_encryption_key right?)", k.kid)
            })?;
            Ok(SigningKey::from_pkcs8(alg, &der)?.activating_at(k.activates_at))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    Ok(KeySet::new(keys))
}

/// Seals every key still stored in the clear (written before keys were sealed), retired
/// ones too: a database dump must sign nothing, not even with an old key.
fn seal_legacy_keys(store: &dyn KeyStore, kek: &KeyEncryptionKey) -> anyhow::Result<()> {
    for key in store.all_keys()? {
        if !is_sealed(&key.private_key) {
            let sealed = seal_private_key(kek, &key.kid, &key.private_key)?;
            store.replace_key_material(&key.kid, &sealed)?;
            tracing::info!(kid = %key.kid, "sealed a signing key stored in the clear");
        }
    }
    Ok(())
}

/// Loads the keys, first creating a key for every algorithm that has no published one.
/// Instances starting together agree on one key per algorithm: the first insert of the
/// next generation wins and the others use it.
pub fn bootstrap(
    store: &dyn KeyStore,
    kek: &KeyEncryptionKey,
    now: UnixTime,
) -> anyhow::Result<KeySet> {
    seal_legacy_keys(store, kek)?;
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
        match store.insert_key(&stored(&key, &der, kek, generation, now, now)?) {
            Ok(()) => tracing::info!(kid = %key.kid(), alg = alg.as_str(), "generated signing key"),
            Err(StoreError::Conflict) => {}
            Err(e) => return Err(e.into()),
        }
    }
    let keys = load(store, kek, now)?;
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
    kek: &KeyEncryptionKey,
    alg: KeyAlgorithm,
    activate_in: i64,
    settings: &Settings,
    now: UnixTime,
) -> anyhow::Result<StoredKey> {
    let (key, der) = SigningKey::generate(alg)?;
    let activates_at = now + activate_in.max(0);
    let longest_token = settings.access_token_ttl.max(settings.id_token_ttl);
    let generation = store.max_key_generation(alg.as_str())? + 1;
    let record = stored(&key, &der, kek, generation, now, activates_at)?;
    match store.rotate_key(&record, activates_at + longest_token) {
        Ok(()) => Ok(record),
        Err(StoreError::Conflict) => anyhow::bail!(
            "another rotation of {} ran at the same time; try again",
            alg.as_str()
        ),
        Err(e) => Err(e.into()),
    }
}

/// Whether `alg` is due for its scheduled rotation: its newest key was created
/// `interval` seconds ago or more (0 turns the schedule off).
pub fn rotation_due(keys: &[StoredKey], alg: KeyAlgorithm, interval: i64, now: UnixTime) -> bool {
    interval > 0
        && keys
            .iter()
            .filter(|k| k.alg == alg.as_str())
            .max_by_key(|k| k.generation)
            .is_some_and(|newest| now - newest.created_at >= interval)
}

/// One pass of the schedule: rotates every algorithm that is due (published at once,
/// signing after `DEFAULT_ACTIVATION_DELAY`, the old key retired once its tokens expired).
/// Instances racing to do it agree: one rotation wins, the others find it done.
pub fn rotate_when_due(
    store: &dyn KeyStore,
    kek: &KeyEncryptionKey,
    settings: &Settings,
    now: UnixTime,
) -> anyhow::Result<()> {
    let keys = store.list_keys(now)?;
    for alg in ALGORITHMS {
        if !rotation_due(&keys, alg, settings.key_rotation_interval.as_secs(), now) {
            continue;
        }
        match rotate(store, kek, alg, DEFAULT_ACTIVATION_DELAY, settings, now) {
            Ok(key) => crate::audit::key_rotated(&key.kid, alg.as_str(), true),
            // Another instance rotated first.
            Err(e) if e.to_string().contains("at the same time") => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Every `key_refresh_interval` until the ring is dropped: rotates keys that are due and
/// reloads the key set, so that rotations made by the CLI, the schedule or another
/// instance are published (and later used) here too.
pub fn spawn_refresh(
    ring: Weak<KeyRing>,
    store: Arc<dyn Store>,
    kek: Arc<KeyEncryptionKey>,
    settings: Arc<Settings>,
    clock: Arc<dyn crate::domain::Clock>,
) {
    let every = settings.key_refresh_interval.as_duration();
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(every).await;
            let Some(ring) = ring.upgrade() else { return };
            let (store, kek, settings) = (store.clone(), kek.clone(), settings.clone());
            let now = clock.now();
            let loaded = tokio::task::spawn_blocking(move || {
                if let Err(e) = rotate_when_due(&*store, &kek, &settings, now) {
                    tracing::warn!(error = %e, "scheduled key rotation failed");
                }
                load(&*store, &kek, now)
            })
            .await;
            match loaded {
                Ok(Ok(keys)) => ring.replace(keys),
                Ok(Err(e)) => tracing::warn!(error = %e, "could not reload signing keys"),
                Err(e) => tracing::warn!(error = %e, "could not reload signing keys"),
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(alg: &str, generation: i32, created_at: i64) -> StoredKey {
        StoredKey {
            kid: format!("{alg}-{generation}"),
            alg: alg.into(),
            generation,
            private_key: vec![],
            created_at,
            activates_at: created_at,
            retired_at: None,
        }
    }

    #[test]
    fn a_key_is_due_for_rotation_when_its_newest_key_is_as_old_as_the_interval() {
        let keys = [key("RS256", 1, 0), key("RS256", 2, 500), key("ES256", 1, 0)];
        assert!(!rotation_due(&keys, KeyAlgorithm::Rs256, 1000, 1499));
        assert!(rotation_due(&keys, KeyAlgorithm::Rs256, 1000, 1500));
        assert!(rotation_due(&keys, KeyAlgorithm::Es256, 1000, 1000));
        assert!(
            !rotation_due(&keys, KeyAlgorithm::Es256, 0, 1_000_000),
            "0 is never"
        );
        assert!(!rotation_due(&[], KeyAlgorithm::Es256, 1000, 5000));
    }
}
