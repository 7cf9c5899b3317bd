//! "Kill the master, and sign-in works again within the window", on a Redis Cluster:
//! three masters with a replica each; the master owning the SSO session's slot dies, its
//! replica is elected in its place, and the provider's cluster client finds it by itself.
//! The session written before survives, and the liveness channel, whose subscriptions
//! were on that master, carries changes again.

use std::sync::Arc;
use std::time::{Duration, Instant};

use portcullis::liveness_sync;
use portcullis::sessions::{RedisSessionStore, SessionStore};

use super::meets_the_contract_again;
use super::probes::{a_change_on_a_reaches_b, two_synced_caches, until_sign_in_works};
use super::processes::{ClusterSetup, NODE_TIMEOUT_MS, cli, wait_for, wait_until_replicated};
use crate::helpers::{Options, Outcome, TestApp, query, spawn_app_with};

const PREFIX: &str = "ha-cluster-failover:";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_cluster_master_fails_sign_ins_only_for_the_failover_window() {
    let Some(mut setup) = ClusterSetup::start(1) else {
        return;
    };
    // Connected before the failover, used after it.
    let survivor: Arc<dyn SessionStore> = Arc::new(
        RedisSessionStore::connect(&setup.url(), "ha-cluster-survivor:")
            .await
            .unwrap(),
    );
    let app = spawn_app_with(Options {
        env: vec![("REDIS_URL", setup.url()), ("REDIS_PREFIX", PREFIX.into())],
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
    // The master owning the SSO session's slot, and its replica.
    let master = setup.master_holding(&format!("{PREFIX}sso:*"));
    let replica = setup
        .topology(master)
        .into_iter()
        .find(|n| n.replica_of == Some(master))
        .expect("the master has a replica")
        .port;
    // Two liveness caches on a channel whose slot the same master serves, so that their
    // subscriptions die with it (the crate subscribes where the channel's slot is served):
    // a prefix of their own, for the session's slot is random.
    let channel_prefix = (0..)
        .map(|n| format!("ha-cluster-liveness-{n}:"))
        .find(|p| cli(master, &["EXISTS", &liveness_sync::channel(p)]).trim() == "0")
        .unwrap();
    let (a, b) = two_synced_caches(&setup.url(), &channel_prefix).await;
    a_change_on_a_reaches_b(&a, &b, Duration::from_secs(10)).await;
    // `PUBSUB NUMSUB` counts a node's own subscribers.
    let listening = |port: u16| {
        let numsub = cli(
            port,
            &["PUBSUB", "NUMSUB", &liveness_sync::channel(&channel_prefix)],
        );
        numsub.lines().nth(1).unwrap_or("0").trim().to_owned()
    };
    assert_eq!(
        listening(master),
        "2",
        "both caches listen on the master to be killed"
    );
    // The session is on the replica before the master dies.
    wait_until_replicated(master, replica);
    let marker = format!("{PREFIX}{{store-loss}}:marker");
    // (A node answers `EXISTS` for the slots it serves, `MOVED` for the others.)
    let marker_on_it = cli(master, &["EXISTS", &marker]).trim() == "1";

    setup.processes.kill(master);
    let window = until_sign_in_works(&app, &client, "alice", Duration::from_secs(60)).await;
    // Sign-ins may have worked all along through the other masters' slots: the promotion
    // itself is waited for, with a deadline.
    wait_for("the replica is promoted", Duration::from_secs(30), || {
        cli(replica, &["ROLE"]).starts_with("master")
    });
    // The window: the masters' agreement that it failed, the replica's election, and the
    // client's refresh of its slot map.
    assert!(window < Duration::from_secs(20), "{window:?}");

    // The session written before the failure survived on the promoted replica. Polled:
    // the session's slot answers 503 until the client finds the replica.
    let (url, _) = app.authorize_url(&client, &[("prompt", "none")]);
    let start = Instant::now();
    loop {
        match browser.open(&url).await {
            Outcome::Left(to) => {
                if query(&to, "code").is_none() {
                    panic!(
                        "signed out by the failover: {to}\n{}",
                        what_ended_it(&app, &setup)
                    );
                }
                break;
            }
            Outcome::Page { status, .. }
                if status == reqwest::StatusCode::SERVICE_UNAVAILABLE
                    && start.elapsed() < Duration::from_secs(20) =>
            {
                tokio::time::sleep(Duration::from_millis(100)).await
            }
            Outcome::Page { status, .. } => panic!("prompt=none after the failover: {status}"),
        }
    }
    let session_back = start.elapsed();
    // The liveness channel still carries changes, both ways (twice one way: the first
    // hearing could have been a resubscription's clearing).
    let start = Instant::now();
    a_change_on_a_reaches_b(&a, &b, Duration::from_secs(20)).await;
    let channel_back = start.elapsed();
    a_change_on_a_reaches_b(&a, &b, Duration::from_secs(5)).await;
    a_change_on_a_reaches_b(&b, &a, Duration::from_secs(5)).await;
    eprintln!(
        "cluster failover: sign-ins failed for {window:?} after the master was killed \
         (cluster-node-timeout {NODE_TIMEOUT_MS}); then the old SSO session signed in \
         after {session_back:?} more, the liveness channel carried a change after \
         {channel_back:?} more ({} subscription(s) on the promoted replica; the \
         store-loss marker was {}on the killed master)",
        listening(replica),
        if marker_on_it { "" } else { "not " },
    );
    meets_the_contract_again(survivor, Duration::from_secs(10)).await;
}

/// What the provider and the nodes say about the SSO sessions, for a failure's message:
/// the audit trail (a session ended, and why) and where the records are.
fn what_ended_it(app: &TestApp, setup: &ClusterSetup) -> String {
    let mut said = String::new();
    for event in app.store.list_audit_events(None, 50).unwrap() {
        said += &format!(
            "audit: {} {:?} {:?}\n",
            event.action, event.target, event.details
        );
    }
    for &port in &setup.nodes {
        said += &format!(
            "node {port}: {:?}, SSO records {:?}\n",
            cli(port, &["ROLE"]).lines().next().unwrap_or("(down)"),
            cli(port, &["KEYS", &format!("{PREFIX}sso:*")]).trim(),
        );
    }
    said
}
