//! Redis Sentinel and Redis Cluster (issue 26 item 1): private `redis-server` processes
//! (a master, a replica and three sentinels; three cluster masters, with or without a
//! replica each) that each test starts on free ports in a temporary directory and kills at
//! its end. A master is killed under a running provider: sign-ins fail for at most the
//! failover window, then resume by themselves; the window is measured and printed. The
//! session-store contract holds on either topology, and again after a failover on a
//! store connected before it.

mod cluster_failover;
mod probes;
mod processes;

use std::sync::Arc;
use std::time::{Duration, Instant};

use portcullis::sessions::{RedisSessionStore, SessionStore};

use crate::helpers::{Options, query, spawn_app_with};
use probes::{a_change_on_a_reaches_b, two_synced_caches, until_sign_in_works};
use processes::{ClusterSetup, DOWN_AFTER_MS, SentinelSetup, cli};

/// Waits until `store` answers again after a failover (its first requests may still meet
/// the dead master), then holds it to the session-store contract.
async fn meets_the_contract_again(store: Arc<dyn SessionStore>, within: Duration) {
    let deadline = Instant::now() + within;
    while store.ping().await.is_err() {
        assert!(Instant::now() < deadline, "the store never answered again");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    crate::session_contract::contract(store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_sentinel_master_fails_sign_ins_only_for_the_failover_window() {
    let Some(mut setup) = SentinelSetup::start() else {
        return;
    };
    let store = RedisSessionStore::connect(&setup.url(), "ha-sentinel-contract:")
        .await
        .unwrap();
    crate::session_contract::contract(Arc::new(store)).await;
    // Connected before the failover, used after it.
    let survivor: Arc<dyn SessionStore> = Arc::new(
        RedisSessionStore::connect(&setup.url(), "ha-sentinel-survivor:")
            .await
            .unwrap(),
    );
    let app = spawn_app_with(Options {
        env: vec![
            ("REDIS_URL", setup.url()),
            ("REDIS_PREFIX", "ha-sentinel:".into()),
        ],
        ..Default::default()
    })
    .await;
    let client = app.add_client_with(portcullis::protocol::registration::ClientDraft {
        auth_method: Some("none".into()),
        ..Default::default()
    });
    app.add_user("alice").await;
    // Consent given once; the browser keeps its SSO session.
    let browser = app.browser();
    let (url, _) = app.authorize_url(&client, &[]);
    assert!(query(&browser.sign_in(&url, "alice").await, "code").is_some());
    let (a, b) = two_synced_caches(&setup.url(), "ha-sentinel:").await;
    a_change_on_a_reaches_b(&a, &b, Duration::from_secs(10)).await;
    // The session is on the replica before the master dies.
    processes::wait_until_replicated(setup.master, setup.replica);

    setup.processes.kill(setup.master);
    let window = until_sign_in_works(&app, &client, "alice", Duration::from_secs(60)).await;
    eprintln!(
        "sentinel failover: sign-ins failed for {window:?} after the master was killed \
         (down-after-milliseconds {DOWN_AFTER_MS})"
    );
    assert!(
        setup.named_master().contains(&setup.replica.to_string()),
        "the replica was promoted"
    );
    // The window: the sentinels' detection and election, plus a request or two.
    assert!(window < Duration::from_secs(20), "{window:?}");
    // The session written before the failure survived on the promoted replica.
    let (url, _) = app.authorize_url(&client, &[("prompt", "none")]);
    assert!(
        query(&browser.open(&url).await.left(), "code").is_some(),
        "still signed in"
    );
    // The liveness channel follows the master too (twice: the first hearing could have
    // been a resubscription's clearing).
    a_change_on_a_reaches_b(&a, &b, Duration::from_secs(20)).await;
    a_change_on_a_reaches_b(&a, &b, Duration::from_secs(5)).await;
    a_change_on_a_reaches_b(&b, &a, Duration::from_secs(5)).await;
    meets_the_contract_again(survivor, Duration::from_secs(10)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_cluster_keeps_sessions_throttles_and_the_liveness_channel() {
    let Some(setup) = ClusterSetup::start(0) else {
        return;
    };
    let store = RedisSessionStore::connect(&setup.url(), "ha-cluster:")
        .await
        .unwrap();
    crate::session_contract::contract(Arc::new(store)).await;

    // Keys are spread over the masters, and an audit of the store sees all of them.
    let store = RedisSessionStore::connect(&setup.url(), "ha-cluster:")
        .await
        .unwrap();
    for i in 0..30 {
        store
            .put(
                &format!("sso:{i}"),
                format!("v{i}"),
                Duration::from_secs(60),
            )
            .await
            .unwrap();
    }
    let holding = setup
        .nodes
        .iter()
        .filter(|&&p| cli(p, &["DBSIZE"]).trim() != "0")
        .count();
    assert!(holding >= 2, "the keys are on {holding} node(s)");
    assert_eq!(store.values().await.unwrap().len(), 30);

    let (a, b) = two_synced_caches(&setup.url(), "ha-cluster:").await;
    a_change_on_a_reaches_b(&a, &b, Duration::from_secs(10)).await;
    a_change_on_a_reaches_b(&b, &a, Duration::from_secs(5)).await;

    let app = spawn_app_with(Options {
        env: vec![
            ("REDIS_URL", setup.url()),
            ("REDIS_PREFIX", "ha-cluster:".into()),
        ],
        ..Default::default()
    })
    .await;
    let client = app.add_client(false);
    app.add_user("alice").await;
    let browser = app.browser();
    let (url, _) = app.authorize_url(&client, &[]);
    assert!(query(&browser.sign_in(&url, "alice").await, "code").is_some());
    let (url, _) = app.authorize_url(&client, &[("prompt", "none")]);
    assert!(
        query(&browser.open(&url).await.left(), "code").is_some(),
        "the SSO session is shared through the cluster"
    );
}
