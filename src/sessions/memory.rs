//! In-process session store: one map shared by every worker of one process.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::{BoxFuture, SessionError, SessionResult, SessionStore};

/// Entries kept at most; past it, new entries are refused (503) rather than letting
/// anonymous authorization requests exhaust memory.
const MAX_ENTRIES: usize = 200_000;

/// One-time keys (DPoP proofs' `jti`s) remembered at most. They have a set of their own, so
/// a flood of proofs (10,000 a second is 600,000 in a minute's window) neither crowds out
/// the session records above nor grows without bound; at 16 bytes a key this is about
/// 70 MiB at worst, and a rate of about 30,000 proofs a second over a 60 s window.
const MAX_ONCE_KEYS: usize = 4_000_000;

/// The origin of the slot times of `reserve_slot` (an `Instant` has no number of its own).
static EPOCH: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();

#[derive(Default)]
pub struct MemorySessionStore {
    entries: Mutex<Entries>,
    once: Mutex<OnceKeys>,
}

/// Keys remembered for a window, in two generations: a key goes into the current one,
/// which becomes the previous one after a window, which is dropped whole after another.
/// So every key is remembered for at least its window, and forgetting costs nothing per
/// key (no sweep over a map of hundreds of thousands).
#[derive(Default)]
struct OnceKeys {
    current: HashSet<u128>,
    previous: HashSet<u128>,
    started: Option<Instant>,
}

impl OnceKeys {
    /// `true` if `key` was not remembered, and now is; `Err` when the set is full.
    fn remember(&mut self, key: u128, window: Duration, now: Instant) -> SessionResult<bool> {
        let started = *self.started.get_or_insert(now);
        let age = now.saturating_duration_since(started);
        if age >= window * 2 {
            self.previous.clear();
            self.current.clear();
            self.started = Some(now);
        } else if age >= window {
            self.previous = std::mem::take(&mut self.current);
            self.started = Some(now);
        }
        if self.current.contains(&key) || self.previous.contains(&key) {
            return Ok(false);
        }
        if self.current.len() + self.previous.len() >= MAX_ONCE_KEYS {
            return Err(SessionError::Unavailable(
                "in-process store of one-time keys is full".into(),
            ));
        }
        self.current.insert(key);
        Ok(true)
    }
}

/// 128 bits of the key's SHA-256: the keys are already digests of what they name, and
/// 2^64 keys are needed before two collide by chance.
fn once_digest(key: &str) -> u128 {
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, key.as_bytes());
    let mut first = [0u8; 16];
    first.copy_from_slice(&digest.as_ref()[..16]);
    u128::from_be_bytes(first)
}

#[derive(Default)]
struct Entries {
    map: HashMap<String, (String, Instant)>,
    writes_since_sweep: usize,
}

impl Entries {
    /// Drops expired entries every so often so the map cannot grow without bound.
    fn sweep_now_and_then(&mut self, now: Instant) {
        self.writes_since_sweep += 1;
        if self.writes_since_sweep >= 1024 {
            self.writes_since_sweep = 0;
            self.map.retain(|_, (_, expires)| *expires > now);
        }
    }

    /// Refuses a new key once the map holds `MAX_ENTRIES` live ones (an existing key may
    /// always be written again), so anonymous requests cannot exhaust memory.
    fn make_room_for(&mut self, key: &str, now: Instant) -> SessionResult<()> {
        if self.map.len() >= MAX_ENTRIES && !self.map.contains_key(key) {
            self.map.retain(|_, (_, expires)| *expires > now);
            if self.map.len() >= MAX_ENTRIES {
                return Err(SessionError::Unavailable(
                    "in-process session store is full".into(),
                ));
            }
        }
        Ok(())
    }

    fn live(&mut self, key: &str, now: Instant) -> Option<&String> {
        if self
            .map
            .get(key)
            .is_some_and(|(_, expires)| *expires <= now)
        {
            self.map.remove(key);
        }
        self.map.get(key).map(|(value, _)| value)
    }
}

impl MemorySessionStore {
    pub fn new() -> Self {
        Self::default()
    }

    fn with<T>(&self, f: impl FnOnce(&mut Entries, Instant) -> T) -> T {
        // A poisoned lock only means another thread panicked mid-update of a plain map.
        let mut guard = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut guard, Instant::now())
    }
}

impl SessionStore for MemorySessionStore {
    fn put<'a>(
        &'a self,
        key: &'a str,
        value: String,
        ttl: Duration,
    ) -> BoxFuture<'a, SessionResult<()>> {
        Box::pin(async move {
            self.with(|e, now| {
                e.sweep_now_and_then(now);
                e.make_room_for(key, now)?;
                e.map.insert(key.to_owned(), (value, now + ttl));
                Ok(())
            })
        })
    }

    fn put_if_absent<'a>(
        &'a self,
        key: &'a str,
        value: String,
        ttl: Duration,
    ) -> BoxFuture<'a, SessionResult<bool>> {
        Box::pin(async move {
            self.with(|e, now| {
                if e.live(key, now).is_some() {
                    return Ok(false);
                }
                e.sweep_now_and_then(now);
                e.make_room_for(key, now)?;
                e.map.insert(key.to_owned(), (value, now + ttl));
                Ok(true)
            })
        })
    }

    fn get<'a>(&'a self, key: &'a str) -> BoxFuture<'a, SessionResult<Option<String>>> {
        Box::pin(async move { Ok(self.with(|e, now| e.live(key, now).cloned())) })
    }

    fn take<'a>(&'a self, key: &'a str) -> BoxFuture<'a, SessionResult<Option<String>>> {
        Box::pin(async move {
            Ok(self.with(|e, now| {
                let live = e.live(key, now).is_some();
                e.map.remove(key).filter(|_| live).map(|(v, _)| v)
            }))
        })
    }

    fn delete<'a>(&'a self, key: &'a str) -> BoxFuture<'a, SessionResult<()>> {
        Box::pin(async move {
            self.with(|e, _| e.map.remove(key));
            Ok(())
        })
    }

    fn add<'a>(
        &'a self,
        key: &'a str,
        delta: i64,
        window: Duration,
    ) -> BoxFuture<'a, SessionResult<i64>> {
        Box::pin(async move {
            self.with(|e, now| {
                e.sweep_now_and_then(now);
                e.make_room_for(key, now)?;
                let current = e.live(key, now).and_then(|v| v.parse::<i64>().ok());
                let count = current.unwrap_or(0) + delta;
                let expires = match (current, e.map.get(key)) {
                    (Some(_), Some((_, expires))) => *expires,
                    _ => now + window,
                };
                e.map.insert(key.to_owned(), (count.to_string(), expires));
                Ok(count)
            })
        })
    }

    fn reserve_slot<'a>(
        &'a self,
        key: &'a str,
        spacing: Duration,
        max_wait: Duration,
        window: Duration,
    ) -> BoxFuture<'a, SessionResult<Option<Duration>>> {
        Box::pin(async move {
            self.with(|e, now| {
                e.sweep_now_and_then(now);
                e.make_room_for(key, now)?;
                // The value is the next free slot, as an offset from the map's epoch.
                let epoch = *EPOCH.get_or_init(Instant::now);
                let now_ms = now.duration_since(epoch).as_millis() as u64;
                let next = e
                    .live(key, now)
                    .and_then(|v| v.parse::<u64>().ok())
                    .unwrap_or(0);
                let slot = next.max(now_ms);
                if slot - now_ms > max_wait.as_millis() as u64 {
                    return Ok(None);
                }
                let following = slot + spacing.as_millis() as u64;
                e.map.insert(
                    key.to_owned(),
                    (following.to_string(), now + window + (spacing * 2)),
                );
                Ok(Some(Duration::from_millis(slot - now_ms)))
            })
        })
    }

    fn remember_once<'a>(
        &'a self,
        key: &'a str,
        window: Duration,
    ) -> BoxFuture<'a, SessionResult<bool>> {
        Box::pin(async move {
            let digest = once_digest(key);
            let mut once = self.once.lock().unwrap_or_else(|p| p.into_inner());
            once.remember(digest, window, Instant::now())
        })
    }

    fn put_lasting<'a>(&'a self, key: &'a str, value: String) -> BoxFuture<'a, SessionResult<()>> {
        Box::pin(async move {
            self.with(|e, now| {
                // As good as never, without overflowing an `Instant`.
                let never = now + Duration::from_secs(100 * 365 * 86_400);
                e.map.insert(key.to_owned(), (value, never));
            });
            Ok(())
        })
    }

    fn extend_if<'a>(
        &'a self,
        key: &'a str,
        value: &'a str,
        ttl: Duration,
    ) -> BoxFuture<'a, SessionResult<bool>> {
        Box::pin(async move {
            // Under the map's lock: compare and extend are one step, as in Redis.
            Ok(self.with(|e, now| {
                if e.live(key, now).map(String::as_str) != Some(value) {
                    return false;
                }
                if let Some((_, expires)) = e.map.get_mut(key) {
                    *expires = now + ttl;
                }
                true
            }))
        })
    }

    fn release_if<'a>(
        &'a self,
        key: &'a str,
        value: &'a str,
        lasting: Option<(&'a str, String)>,
    ) -> BoxFuture<'a, SessionResult<bool>> {
        Box::pin(async move {
            Ok(self.with(|e, now| {
                if e.live(key, now).map(String::as_str) != Some(value) {
                    return false;
                }
                e.map.remove(key);
                if let Some((other, lasting_value)) = lasting {
                    let never = now + Duration::from_secs(100 * 365 * 86_400);
                    e.map.insert(other.to_owned(), (lasting_value, never));
                }
                true
            }))
        })
    }

    fn present<'a>(&'a self, keys: &'a [String]) -> BoxFuture<'a, SessionResult<Vec<bool>>> {
        Box::pin(async move {
            Ok(self.with(|e, now| keys.iter().map(|k| e.live(k, now).is_some()).collect()))
        })
    }

    fn raise<'a>(
        &'a self,
        key: &'a str,
        at_least: i64,
        window: Duration,
    ) -> BoxFuture<'a, SessionResult<()>> {
        Box::pin(async move {
            self.with(|e, now| {
                let current = e.live(key, now).and_then(|v| v.parse::<i64>().ok());
                let expires = match (current, e.map.get(key)) {
                    (Some(_), Some((_, expires))) => *expires,
                    _ => now + window,
                };
                if current.is_none_or(|c| c < at_least) {
                    e.map
                        .insert(key.to_owned(), (at_least.to_string(), expires));
                }
            });
            Ok(())
        })
    }

    fn ping(&self) -> BoxFuture<'_, SessionResult<()>> {
        Box::pin(async { Ok(()) })
    }

    fn values(&self) -> BoxFuture<'_, SessionResult<Vec<String>>> {
        Box::pin(async move {
            Ok(self.with(|e, now| {
                e.map
                    .values()
                    .filter(|(_, expires)| *expires > now)
                    .map(|(v, _)| v.clone())
                    .collect()
            }))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn values_expire_and_take_is_one_time() {
        let store = MemorySessionStore::new();
        store
            .put("a", "1".into(), Duration::from_secs(60))
            .await
            .unwrap();
        store
            .put("b", "2".into(), Duration::from_millis(1))
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(5)).await;
        assert_eq!(store.get("a").await.unwrap().as_deref(), Some("1"));
        assert_eq!(store.get("b").await.unwrap(), None);
        assert_eq!(store.take("a").await.unwrap().as_deref(), Some("1"));
        assert_eq!(store.take("a").await.unwrap(), None);
    }

    #[test]
    fn a_one_time_key_is_remembered_for_at_least_its_window_then_forgotten() {
        let window = Duration::from_secs(60);
        let t0 = Instant::now();
        let mut once = OnceKeys::default();
        assert!(once.remember(1, window, t0).unwrap());
        assert!(!once.remember(1, window, t0).unwrap());
        // Late in the first generation: still remembered, and so is a key added then.
        let late = t0 + window - Duration::from_millis(1);
        assert!(!once.remember(1, window, late).unwrap());
        assert!(once.remember(2, window, late).unwrap());
        // One window on, the first generation is the previous one: both still remembered.
        let next = t0 + window;
        assert!(!once.remember(1, window, next).unwrap());
        assert!(
            !once
                .remember(2, window, next + window - Duration::from_millis(1))
                .unwrap()
        );
        // Two windows after key 2 was added, it is forgotten (a proof that old is refused
        // by its `iat` anyway).
        assert!(once.remember(2, window, late + window * 2).unwrap());
    }

    #[test]
    fn one_time_keys_idle_for_two_windows_are_all_forgotten() {
        let window = Duration::from_secs(60);
        let t0 = Instant::now();
        let mut once = OnceKeys::default();
        assert!(once.remember(7, window, t0).unwrap());
        assert!(once.remember(7, window, t0 + window * 2).unwrap());
        assert_eq!(once.previous.len(), 0);
        assert_eq!(once.current.len(), 1);
    }

    #[tokio::test]
    async fn one_time_keys_do_not_take_the_room_of_session_records() {
        let store = MemorySessionStore::new();
        let window = Duration::from_secs(60);
        for i in 0..(MAX_ENTRIES + 10) {
            assert!(
                store
                    .remember_once(&format!("dpop:{i}"), window)
                    .await
                    .unwrap()
            );
        }
        assert!(!store.remember_once("dpop:0", window).await.unwrap());
        store
            .put("sso:a", "1".into(), Duration::from_secs(60))
            .await
            .unwrap();
        assert_eq!(store.get("sso:a").await.unwrap().as_deref(), Some("1"));
    }

    #[tokio::test]
    async fn counters_are_bounded_like_records() {
        let store = MemorySessionStore::new();
        let window = Duration::from_secs(60);
        for i in 0..MAX_ENTRIES {
            store.add(&format!("count:{i}"), 1, window).await.unwrap();
        }
        assert!(matches!(
            store.add("count:new", 1, window).await,
            Err(SessionError::Unavailable(_))
        ));
        // An existing counter still counts.
        assert_eq!(store.add("count:0", 1, window).await.unwrap(), 2);
    }
}
