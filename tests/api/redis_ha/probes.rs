//! What the Sentinel and Cluster tests ask of a running provider and of two liveness
//! caches kept in step over Redis.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use portcullis::liveness_sync;
use portcullis::store::sql::liveness::LivenessCache;

use crate::faults::sign_in_once;
use crate::helpers::{TestApp, TestClient};

/// Signs in over and over (each time from another loopback address, so that per-address
/// limits stay out of it) until one succeeds; returns how long that took.
pub(super) async fn until_sign_in_works(
    app: &TestApp,
    client: &TestClient,
    username: &str,
    within: Duration,
) -> Duration {
    let start = Instant::now();
    let mut n: u32 = 0;
    loop {
        n += 1;
        let address = IpAddr::from([127, 3, (n / 250 % 250) as u8, (n % 250 + 1) as u8]);
        if sign_in_once(app, client, username, address).await {
            return start.elapsed();
        }
        assert!(
            start.elapsed() < within,
            "sign-in did not work again within {within:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn poll(what: &str, within: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + within;
    while !done() {
        assert!(Instant::now() < deadline, "timed out: {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Two liveness caches kept in step over `url`; returns them once both have subscribed
/// (which clears a cache).
pub(super) async fn two_synced_caches(
    url: &str,
    prefix: &str,
) -> (Arc<LivenessCache>, Arc<LivenessCache>) {
    let long = Duration::from_secs(3600);
    let (a, b) = (
        Arc::new(LivenessCache::with_ttl(long)),
        Arc::new(LivenessCache::with_ttl(long)),
    );
    let (a_before, b_before) = (a.generation(), b.generation());
    for cache in [&a, &b] {
        liveness_sync::spawn_for_url(url, None, liveness_sync::channel(prefix), cache).unwrap();
    }
    poll("both have subscribed", Duration::from_secs(20), || {
        a.generation() != a_before && b.generation() != b_before
    })
    .await;
    (a, b)
}

/// A change on `a` is heard on `b`: the token `b` remembered is forgotten.
pub(super) async fn a_change_on_a_reaches_b(
    a: &LivenessCache,
    b: &LivenessCache,
    within: Duration,
) {
    // Retried: a subscription confirmed may still be settling (a cluster node's).
    let deadline = Instant::now() + within;
    loop {
        b.remember_token(b.generation(), "j1", None, Instant::now());
        a.changed();
        let heard = Instant::now() + Duration::from_secs(1);
        while Instant::now() < heard {
            if b.token_live("j1", None, 0).is_none() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert!(Instant::now() < deadline, "B never heard A's change");
    }
}
