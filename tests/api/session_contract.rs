//! One session-store contract, run against the in-process store and Redis.

use std::sync::Arc;
use std::time::Duration;

use portcullis::sessions::{MemorySessionStore, RedisSessionStore, SessionStore};

use crate::backends::TempRedis;

pub(crate) async fn contract(store: Arc<dyn SessionStore>) {
    store.ping().await.unwrap();
    store
        .put("a", "1".into(), Duration::from_secs(60))
        .await
        .unwrap();
    assert_eq!(store.get("a").await.unwrap().as_deref(), Some("1"));
    store
        .put("a", "2".into(), Duration::from_secs(60))
        .await
        .unwrap();
    assert_eq!(
        store.get("a").await.unwrap().as_deref(),
        Some("2"),
        "put replaces"
    );
    assert_eq!(store.get("missing").await.unwrap(), None);

    // put_if_absent sets once, even when several callers race for it.
    let sets = futures::future::join_all((0..8).map(|n| {
        let store = store.clone();
        async move {
            store
                .put_if_absent("nx", n.to_string(), Duration::from_secs(60))
                .await
                .unwrap()
        }
    }))
    .await;
    assert_eq!(sets.iter().filter(|set| **set).count(), 1, "{sets:?}");
    let winner = sets.iter().position(|set| *set).unwrap().to_string();
    assert_eq!(store.get("nx").await.unwrap(), Some(winner));
    store.delete("nx").await.unwrap();

    store
        .put("short", "x".into(), Duration::from_millis(150))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(store.get("short").await.unwrap(), None, "entries expire");

    // take is one-time, even when several callers race for it.
    store
        .put("once", "v".into(), Duration::from_secs(60))
        .await
        .unwrap();
    let takes = futures::future::join_all((0..8).map(|_| store.take("once"))).await;
    assert_eq!(
        takes
            .iter()
            .filter(|t| t.as_ref().unwrap().is_some())
            .count(),
        1
    );
    assert_eq!(store.get("once").await.unwrap(), None);

    store.delete("a").await.unwrap();
    assert_eq!(store.get("a").await.unwrap(), None);
    store.delete("a").await.unwrap();

    // Counters count atomically within a window that later additions do not extend.
    let counts =
        futures::future::join_all((0..5).map(|_| store.add("n", 1, Duration::from_millis(600))))
            .await;
    let mut counts: Vec<i64> = counts.into_iter().map(Result::unwrap).collect();
    counts.sort();
    assert_eq!(counts, [1, 2, 3, 4, 5]);
    assert_eq!(store.get("n").await.unwrap().as_deref(), Some("5"));
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(
        store.add("n", 1, Duration::from_millis(600)).await.unwrap(),
        6
    );
    assert_eq!(
        store.add("n", -2, Duration::from_secs(60)).await.unwrap(),
        4
    );
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(
        store.get("n").await.unwrap(),
        None,
        "the window ran from the first increment"
    );
    assert_eq!(store.add("n", 1, Duration::from_secs(60)).await.unwrap(), 1);
    store.delete("n").await.unwrap();

    // Slots queue `spacing` apart, whoever reserves them, however many at once; one
    // further off than the longest wait is refused and takes no place.
    let spacing = Duration::from_secs(5);
    let max_wait = Duration::from_secs(12);
    let window = Duration::from_secs(60);
    let waits = futures::future::join_all(
        (0..5).map(|_| store.reserve_slot("q", spacing, max_wait, window)),
    )
    .await;
    let mut waits: Vec<Option<u64>> = waits
        .into_iter()
        .map(|w| w.unwrap().map(|w| (w.as_millis() as u64 + 500) / 1000))
        .collect();
    waits.sort();
    assert_eq!(waits, [None, None, Some(0), Some(5), Some(10)]);
    assert_eq!(
        store
            .reserve_slot("q", spacing, Duration::from_secs(15), window)
            .await
            .unwrap()
            .map(|w| (w.as_millis() as u64 + 500) / 1000),
        Some(15),
        "the refused ones did not push the queue back"
    );
    store.delete("q").await.unwrap();
    assert_eq!(
        store
            .reserve_slot("q", spacing, max_wait, window)
            .await
            .unwrap(),
        Some(Duration::ZERO),
        "an idle queue does not wait"
    );
    store.delete("q").await.unwrap();

    // Which keys hold a value, in order, in one call (on a Cluster, keys on every
    // master): how a reconciliation asks about a page of sessions (issue 26).
    let keys: Vec<String> = (0..40).map(|i| format!("p:{i}")).collect();
    for key in keys.iter().step_by(3) {
        store
            .put(key, "x".into(), Duration::from_secs(60))
            .await
            .unwrap();
    }
    let present = store.present(&keys).await.unwrap();
    let expected: Vec<bool> = (0..40).map(|i| i % 3 == 0).collect();
    assert_eq!(present, expected);
    assert!(store.present(&[]).await.unwrap().is_empty());
    for key in keys.iter().step_by(3) {
        store.delete(key).await.unwrap();
    }

    // A lease is extended and released only by its holder; releasing it can write a
    // lasting key beside it (one hash tag: one Cluster slot), and nothing changes once
    // the lease is gone or another's.
    let (lease, mark) = ("{contract}:lease", "{contract}:mark");
    assert!(
        !store
            .extend_if(lease, "a", Duration::from_secs(60))
            .await
            .unwrap(),
        "no lease: not recreated"
    );
    assert_eq!(store.get(lease).await.unwrap(), None);
    assert!(
        store
            .put_if_absent(lease, "a".into(), Duration::from_millis(300))
            .await
            .unwrap()
    );
    assert!(
        !store
            .extend_if(lease, "b", Duration::from_secs(60))
            .await
            .unwrap()
    );
    assert!(
        store
            .extend_if(lease, "a", Duration::from_secs(60))
            .await
            .unwrap()
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        store.get(lease).await.unwrap().as_deref(),
        Some("a"),
        "extended"
    );
    assert!(
        !store
            .release_if(lease, "b", Some((mark, "1".into())))
            .await
            .unwrap()
    );
    assert_eq!(store.get(mark).await.unwrap(), None);
    assert!(
        store
            .release_if(lease, "a", Some((mark, "1".into())))
            .await
            .unwrap()
    );
    assert_eq!(store.get(lease).await.unwrap(), None);
    assert_eq!(store.get(mark).await.unwrap().as_deref(), Some("1"));
    store.delete(mark).await.unwrap();
    assert!(!store.release_if(lease, "a", None).await.unwrap(), "gone");
    assert_eq!(store.get(mark).await.unwrap(), None);
    store
        .put(lease, "b".into(), Duration::from_secs(60))
        .await
        .unwrap();
    assert!(store.release_if(lease, "b", None).await.unwrap());
    assert_eq!(store.get(lease).await.unwrap(), None);
    assert_eq!(store.get(mark).await.unwrap(), None, "nothing written");

    // The marker lasts; a raised counter is raised, never lowered, and keeps its window.
    store.put_lasting("mark", "1".into()).await.unwrap();
    assert_eq!(store.get("mark").await.unwrap().as_deref(), Some("1"));
    store.delete("mark").await.unwrap();
    store
        .raise("r", 3, Duration::from_millis(500))
        .await
        .unwrap();
    store.raise("r", 2, Duration::from_secs(60)).await.unwrap();
    assert_eq!(store.get("r").await.unwrap().as_deref(), Some("3"));
    store.raise("r", 7, Duration::from_secs(60)).await.unwrap();
    assert_eq!(store.add("r", 1, Duration::from_secs(60)).await.unwrap(), 8);
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert_eq!(
        store.get("r").await.unwrap(),
        None,
        "the window ran from the first raise"
    );
}

#[tokio::test]
async fn memory_session_store_meets_the_session_contract() {
    contract(Arc::new(MemorySessionStore::new())).await;
}

#[tokio::test]
async fn redis_session_store_meets_the_session_contract_with_prefixed_expiring_keys() {
    let Some(redis) = TempRedis::create() else {
        return;
    };
    let store = RedisSessionStore::connect(&redis.url, &redis.prefix)
        .await
        .unwrap();
    contract(Arc::new(store)).await;

    let store = RedisSessionStore::connect(&redis.url, &redis.prefix)
        .await
        .unwrap();
    store
        .put("sso:x", "{}".into(), Duration::from_secs(30))
        .await
        .unwrap();
    assert_eq!(redis.keys(), vec![format!("{}sso:x", redis.prefix)]);
    let ttl: i64 = redis::cmd("PTTL")
        .arg(format!("{}sso:x", redis.prefix))
        .query(&mut redis.connection())
        .unwrap();
    assert!(ttl > 0 && ttl <= 30_000, "every key has a TTL: {ttl}");
    store
        .add("failed:y", 1, Duration::from_secs(30))
        .await
        .unwrap();
    let ttl: i64 = redis::cmd("PTTL")
        .arg(format!("{}failed:y", redis.prefix))
        .query(&mut redis.connection())
        .unwrap();
    assert!(ttl > 0 && ttl <= 30_000, "counters have a TTL too: {ttl}");
}
