//! The instances' liveness caches kept in step over Redis pub/sub: a change on one is
//! forgotten on the other at once, not after the TTL (which is an hour here, so a pass
//! cannot come from the cache running out). Clients are kept there too.

use std::sync::Arc;
use std::time::{Duration, Instant};

use portcullis::liveness_sync;
use portcullis::protocol::registration::ClientDraft;
use portcullis::store::Client;
use portcullis::store::sql::liveness::{LIVENESS_TTL, LivenessCache};

use crate::backends::TempRedis;

const LONG: Duration = Duration::from_secs(3600);

async fn subscribers(redis: &TempRedis, channel: &str) -> i64 {
    let mut conn = redis.connection();
    let counts: Vec<(String, i64)> = redis::cmd("PUBSUB")
        .arg("NUMSUB")
        .arg(channel)
        .query(&mut conn)
        .unwrap();
    counts.first().map_or(0, |(_, n)| *n)
}

async fn poll(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !done() {
        assert!(Instant::now() < deadline, "{what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Two instances' caches kept in step over `redis`, once both have subscribed (and so
/// cleared themselves).
async fn two_synced_caches(redis: &TempRedis) -> (Arc<LivenessCache>, Arc<LivenessCache>) {
    let channel = liveness_sync::channel(&redis.prefix);
    let client = || redis::Client::open(redis.url.as_str()).unwrap();
    let a = Arc::new(LivenessCache::with_ttl(LONG));
    let b = Arc::new(LivenessCache::with_ttl(LONG));
    let (a_before, b_before) = (a.generation(), b.generation());
    liveness_sync::spawn(client(), channel.clone(), &a);
    liveness_sync::spawn(client(), channel.clone(), &b);
    let deadline = Instant::now() + Duration::from_secs(10);
    while subscribers(redis, &channel).await < 2 {
        assert!(Instant::now() < deadline, "both instances subscribe");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // Subscribing clears a cache; what is remembered after it stays until a change.
    poll("both have subscribed and cleared", || {
        a.generation() != a_before && b.generation() != b_before
    })
    .await;
    (a, b)
}

#[tokio::test]
async fn a_change_on_one_instance_is_forgotten_on_the_other_at_once() {
    let Some(redis) = TempRedis::create() else {
        return;
    };
    let (a, b) = two_synced_caches(&redis).await;
    let now = 1_000;
    for cache in [&a, &b] {
        cache.remember_token(
            cache.generation(),
            "j1",
            Some(("g1", 2_000)),
            Instant::now(),
        );
    }
    assert_eq!(b.token_live("j1", Some("g1"), now), Some(true));
    assert_eq!(a.token_live("j1", Some("g1"), now), Some(true));

    a.changed();
    assert_eq!(a.token_live("j1", Some("g1"), now), None, "here at once");
    poll("B hears A's change", || {
        b.token_live("j1", Some("g1"), now).is_none()
    })
    .await;

    // And the other way round; A's own announcement did not make it deaf.
    a.remember_token(a.generation(), "j2", None, Instant::now());
    b.changed();
    poll("A hears B's change", || {
        a.token_live("j2", None, now).is_none()
    })
    .await;
}

#[tokio::test]
async fn instances_under_other_prefixes_are_not_disturbed() {
    let (Some(one), Some(other)) = (TempRedis::create(), TempRedis::create()) else {
        return;
    };
    let client = |r: &TempRedis| redis::Client::open(r.url.as_str()).unwrap();
    let a = Arc::new(LivenessCache::with_ttl(LONG));
    let b = Arc::new(LivenessCache::with_ttl(LONG));
    let (a_channel, b_channel) = (
        liveness_sync::channel(&one.prefix),
        liveness_sync::channel(&other.prefix),
    );
    let witness = Arc::new(LivenessCache::with_ttl(LONG));
    let (b_before, w_before) = (b.generation(), witness.generation());
    liveness_sync::spawn(client(&one), a_channel.clone(), &a);
    liveness_sync::spawn(client(&other), b_channel.clone(), &b);
    // A third listener on A's channel shows when A's announcement has gone out.
    liveness_sync::spawn(client(&one), a_channel.clone(), &witness);
    let deadline = Instant::now() + Duration::from_secs(10);
    while subscribers(&one, &a_channel).await < 2 || subscribers(&other, &b_channel).await < 1 {
        assert!(Instant::now() < deadline, "the instances subscribe");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    poll("the listeners have subscribed and cleared", || {
        b.generation() != b_before && witness.generation() != w_before
    })
    .await;
    b.remember_token(b.generation(), "j1", None, Instant::now());
    witness.remember_token(witness.generation(), "j1", None, Instant::now());
    a.changed();
    poll("the witness hears A", || {
        witness.token_live("j1", None, 0).is_none()
    })
    .await;
    assert_eq!(
        b.token_live("j1", None, 0),
        Some(true),
        "another deployment"
    );
}

fn registered_client() -> Client {
    crate::helpers::register_client(ClientDraft {
        grant_types: vec!["client_credentials".into()],
        scope: Some("admin".into()),
        ..Default::default()
    })
    .client
}

#[test]
fn a_client_is_kept_until_a_change_and_a_read_from_before_a_change_is_not_kept() {
    let cache = LivenessCache::with_ttl(LONG);
    let rp = registered_client();
    assert!(
        cache.client(&rp.id).is_none(),
        "read from the database first"
    );
    let before = cache.generation();
    cache.remember_client(before, &rp, Instant::now());
    assert_eq!(
        cache.client(&rp.id).map(|c| c.scope),
        Some(rp.scope.clone())
    );

    cache.forget_all();
    assert!(cache.client(&rp.id).is_none(), "forgotten on a change");
    // Read before the change, stored after it: the old record would outlive the change.
    cache.remember_client(before, &rp, Instant::now());
    assert!(cache.client(&rp.id).is_none());

    // A change nobody announced is seen within the TTL.
    let short = LivenessCache::default();
    short.remember_client(short.generation(), &rp, Instant::now() - LIVENESS_TTL);
    assert!(short.client(&rp.id).is_none());
}

#[tokio::test]
async fn a_client_changed_on_one_instance_is_forgotten_on_the_other_at_once() {
    let Some(redis) = TempRedis::create() else {
        return;
    };
    let (a, b) = two_synced_caches(&redis).await;
    let rp = registered_client();
    for cache in [&a, &b] {
        cache.remember_client(cache.generation(), &rp, Instant::now());
    }
    assert!(b.client(&rp.id).is_some());

    // A takes the client's admin scope away (or rotates its secret, or removes it).
    a.changed();
    assert!(a.client(&rp.id).is_none(), "here at once");
    poll("B hears A's change", || b.client(&rp.id).is_none()).await;
}
