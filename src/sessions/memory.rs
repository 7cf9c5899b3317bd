//! In-process session store: one map shared by every worker of one process.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::{BoxFuture, SessionError, SessionResult, SessionStore};

/// Entries kept at most; past it, new entries are refused (503) rather than letting
/// anonymous authorization requests exhaust memory.
const MAX_ENTRIES: usize = 200_000;

/// The origin of the slot times of `reserve_slot` (an `Instant` has no number of its own).
static EPOCH: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();

#[derive(Default)]
pub struct MemorySessionStore {
    entries: Mutex<Entries>,
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
                if e.map.len() >= MAX_ENTRIES && !e.map.contains_key(key) {
                    e.map.retain(|_, (_, expires)| *expires > now);
                    if e.map.len() >= MAX_ENTRIES {
                        return Err(SessionError::Unavailable(
                            "in-process session store is full".into(),
                        ));
                    }
                }
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
                if e.map.len() >= MAX_ENTRIES {
                    e.map.retain(|_, (_, expires)| *expires > now);
                    if e.map.len() >= MAX_ENTRIES {
                        return Err(SessionError::Unavailable(
                            "in-process session store is full".into(),
                        ));
                    }
                }
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
            Ok(self.with(|e, now| {
                let current = e.live(key, now).and_then(|v| v.parse::<i64>().ok());
                let count = current.unwrap_or(0) + delta;
                let expires = match (current, e.map.get(key)) {
                    (Some(_), Some((_, expires))) => *expires,
                    _ => now + window,
                };
                e.map.insert(key.to_owned(), (count.to_string(), expires));
                count
            }))
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
            Ok(self.with(|e, now| {
                // The value is the next free slot, as an offset from the map's epoch.
                let epoch = *EPOCH.get_or_init(Instant::now);
                let now_ms = now.duration_since(epoch).as_millis() as u64;
                let next = e
                    .live(key, now)
                    .and_then(|v| v.parse::<u64>().ok())
                    .unwrap_or(0);
                let slot = next.max(now_ms);
                if slot - now_ms > max_wait.as_millis() as u64 {
                    return None;
                }
                let following = slot + spacing.as_millis() as u64;
                e.map.insert(
                    key.to_owned(),
                    (following.to_string(), now + window + (spacing * 2)),
                );
                Some(Duration::from_millis(slot - now_ms))
            }))
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
}
