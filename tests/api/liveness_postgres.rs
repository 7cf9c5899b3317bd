//! Several instances on PostgreSQL alone (no Redis): the liveness channel is PostgreSQL's
//! LISTEN/NOTIFY, so a revocation on one instance is refused on another at once, not
//! after the liveness cache's TTL (issue 26 item 5).

use std::sync::Arc;
use std::time::{Duration, Instant};

use portcullis::liveness_sync;
use portcullis::store::sql::liveness::LivenessCache;

use crate::backends::TempDatabase;
use crate::helpers::{Options, spawn_app_with};

async fn poll(what: &str, within: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + within;
    while !done() {
        assert!(Instant::now() < deadline, "timed out: {what}");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

#[tokio::test]
async fn a_change_on_one_instance_is_heard_on_the_other_over_postgres_notify() {
    let Some(db) = TempDatabase::create() else {
        return;
    };
    let long = Duration::from_secs(3600);
    let (a, b) = (
        Arc::new(LivenessCache::with_ttl(long)),
        Arc::new(LivenessCache::with_ttl(long)),
    );
    let (a_before, b_before) = (a.generation(), b.generation());
    let channel = liveness_sync::channel("pg-test:");
    liveness_sync::spawn_postgres(db.url.clone(), channel.clone(), &a).unwrap();
    liveness_sync::spawn_postgres(db.url.clone(), channel, &b).unwrap();
    poll("both listen", Duration::from_secs(10), || {
        a.generation() != a_before && b.generation() != b_before
    })
    .await;
    for (from, to) in [(&a, &b), (&b, &a)] {
        to.remember_token(to.generation(), "j1", None, Instant::now());
        from.remember_token(from.generation(), "j2", None, Instant::now());
        from.changed();
        poll("heard within 100 ms", Duration::from_millis(100), || {
            to.token_live("j1", None, 0).is_none()
        })
        .await;
        // The sender's own message does not make it forget again.
        from.remember_token(from.generation(), "j3", None, Instant::now());
        assert_eq!(from.token_live("j3", None, 0), Some(true));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_revoked_on_one_instance_is_refused_on_another_within_100_ms_without_redis() {
    let Some(db) = TempDatabase::create() else {
        return;
    };
    let a = spawn_app_with(Options {
        database_url: Some(db.url.clone()),
        ..Default::default()
    })
    .await;
    // B is A's twin behind one issuer (as behind a load balancer), on a port of its own.
    let b = spawn_app_with(Options {
        database_url: Some(db.url.clone()),
        env: vec![("ISSUER", a.issuer.clone())],
        ..Default::default()
    })
    .await;
    let client = a.add_client(false);
    a.add_user("alice").await;
    let tokens = a.tokens_for(&client, "alice").await;
    let access = tokens["access_token"].as_str().unwrap();
    // B has seen the token live (and keeps that answer for the cache's TTL, a second).
    assert_eq!(b.userinfo_status(access).await, 200);
    let cached = Instant::now();

    let revoked = a.post_as(&client, "/revoke", &[("token", access)]).await;
    assert_eq!(revoked.status(), 200);
    let after_revocation = Instant::now();
    let deadline = after_revocation + Duration::from_millis(100);
    loop {
        if b.userinfo_status(access).await == 401 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "B still accepts the token 100 ms after A revoked it"
        );
    }
    eprintln!(
        "LISTEN/NOTIFY: refused on B {:?} after the revocation on A",
        after_revocation.elapsed()
    );
    // The refusal came from the notification, not from the cache's TTL running out.
    assert!(
        cached.elapsed() < portcullis::store::sql::liveness::LIVENESS_TTL,
        "too slow to tell the notification from the TTL: {:?}",
        cached.elapsed()
    );
}
