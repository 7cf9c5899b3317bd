//! Redis Sentinel and Redis Cluster (issue 26 item 1): private `redis-server` processes
//! (a master, a replica and three sentinels; three cluster masters) that each test starts
//! on free ports in a temporary directory and kills at its end. The master is killed
//! under a running provider: sign-ins fail for at most the failover window, then resume by
//! themselves; the window is measured and printed.

use std::net::IpAddr;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use portcullis::liveness_sync;
use portcullis::sessions::{RedisSessionStore, SessionStore};
use portcullis::store::sql::liveness::LivenessCache;
use reqwest::StatusCode;
use tempfile::TempDir;

use crate::faults::skip;
use crate::helpers::{
    Browser, Options, Outcome, TestApp, TestClient, free_port, query, spawn_app_with,
};

/// Redis processes of one test, killed (and waited for) when this value is dropped.
struct RedisProcesses {
    dir: TempDir,
    children: Vec<(u16, Child)>,
}

fn installed() -> bool {
    let found = Command::new("redis-server")
        .arg("--version")
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
        && Command::new("redis-cli")
            .arg("--version")
            .stdout(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
    if !found {
        skip("redis-server and redis-cli are not installed");
    }
    found
}

fn cli(port: u16, args: &[&str]) -> String {
    let out = Command::new("redis-cli")
        .args(["-h", "127.0.0.1", "-p", &port.to_string()])
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Polls `done` until it holds, or fails the test after `within`.
fn wait_for(what: &str, within: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + within;
    while !done() {
        assert!(Instant::now() < deadline, "timed out: {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

impl RedisProcesses {
    fn new() -> Self {
        Self {
            dir: TempDir::new().unwrap(),
            children: Vec::new(),
        }
    }

    /// Starts `redis-server` with a configuration file holding `config` (a file, since
    /// sentinels rewrite theirs), and waits until it answers PING.
    fn start(&mut self, port: u16, config: &str, sentinel: bool) {
        let dir = self.dir.path().join(port.to_string());
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("redis.conf");
        let common = format!(
            "port {port}\nbind 127.0.0.1\ndir {}\nsave \"\"\nappendonly no\n",
            dir.display()
        );
        std::fs::write(&file, format!("{common}{config}")).unwrap();
        let mut command = Command::new("redis-server");
        command.arg(&file);
        if sentinel {
            command.arg("--sentinel");
        }
        let child = command
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        self.children.push((port, child));
        wait_for("redis-server answers", Duration::from_secs(10), || {
            cli(port, &["PING"]).trim() == "PONG"
        });
    }

    /// Kills the server on `port` at once (SIGKILL: no goodbye to its clients).
    fn kill(&mut self, port: u16) {
        if let Some(i) = self.children.iter().position(|(p, _)| *p == port) {
            let (_, mut child) = self.children.remove(i);
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for RedisProcesses {
    fn drop(&mut self) {
        for (_, child) in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A master, its replica and three sentinels watching it as `mymaster` (quorum 2).
struct SentinelSetup {
    processes: RedisProcesses,
    master: u16,
    replica: u16,
    sentinels: [u16; 3],
}

const DOWN_AFTER_MS: u64 = 1000;

impl SentinelSetup {
    fn start() -> Option<Self> {
        if !installed() {
            return None;
        }
        let mut processes = RedisProcesses::new();
        let (master, replica) = (free_port(), free_port());
        processes.start(master, "", false);
        processes.start(replica, &format!("replicaof 127.0.0.1 {master}\n"), false);
        let sentinels = [free_port(), free_port(), free_port()];
        for port in sentinels {
            processes.start(
                port,
                &format!(
                    "sentinel monitor mymaster 127.0.0.1 {master} 2\n\
                     sentinel down-after-milliseconds mymaster {DOWN_AFTER_MS}\n\
                     sentinel failover-timeout mymaster 10000\n\
                     sentinel parallel-syncs mymaster 1\n"
                ),
                true,
            );
        }
        let setup = Self {
            processes,
            master,
            replica,
            sentinels,
        };
        // Each sentinel knows the replica and the two other sentinels, so that a failover
        // can be agreed on.
        wait_for(
            "the sentinels know each other",
            Duration::from_secs(30),
            || {
                setup.sentinels.iter().all(|&s| {
                    let replicas = cli(s, &["SENTINEL", "REPLICAS", "mymaster"]);
                    let others = cli(s, &["SENTINEL", "SENTINELS", "mymaster"]);
                    replicas.contains(&setup.replica.to_string())
                        && setup
                            .sentinels
                            .iter()
                            .filter(|&&o| o != s)
                            .all(|o| others.contains(&o.to_string()))
                })
            },
        );
        wait_for("the replica is in sync", Duration::from_secs(30), || {
            cli(setup.replica, &["INFO", "replication"]).contains("master_link_status:up")
        });
        Some(setup)
    }

    fn url(&self) -> String {
        let hosts: Vec<String> = self
            .sentinels
            .iter()
            .map(|p| format!("127.0.0.1:{p}"))
            .collect();
        format!("redis+sentinel://{}/mymaster", hosts.join(","))
    }

    /// The master the sentinels name now.
    fn named_master(&self) -> String {
        cli(
            self.sentinels[0],
            &["SENTINEL", "GET-MASTER-ADDR-BY-NAME", "mymaster"],
        )
    }
}

/// Three cluster masters holding all the slots (no replicas).
struct ClusterSetup {
    _processes: RedisProcesses,
    nodes: [u16; 3],
}

impl ClusterSetup {
    fn start() -> Option<Self> {
        if !installed() {
            return None;
        }
        let mut processes = RedisProcesses::new();
        let nodes = [free_port(), free_port(), free_port()];
        for port in nodes {
            // The bus port is chosen too: PORT + 10000 may be taken, or past 65535.
            processes.start(
                port,
                &format!(
                    "cluster-enabled yes\ncluster-config-file nodes.conf\n\
                     cluster-port {}\ncluster-node-timeout 2000\n",
                    free_port()
                ),
                false,
            );
        }
        let addresses: Vec<String> = nodes.iter().map(|p| format!("127.0.0.1:{p}")).collect();
        let out = Command::new("redis-cli")
            .args(["--cluster", "create"])
            .args(&addresses)
            .args(["--cluster-replicas", "0", "--cluster-yes"])
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert!(out.status.success(), "redis-cli --cluster create: {out:?}");
        wait_for("the cluster is up", Duration::from_secs(30), || {
            nodes
                .iter()
                .all(|&p| cli(p, &["CLUSTER", "INFO"]).contains("cluster_state:ok"))
        });
        Some(Self {
            _processes: processes,
            nodes,
        })
    }

    fn url(&self) -> String {
        let hosts: Vec<String> = self
            .nodes
            .iter()
            .map(|p| format!("127.0.0.1:{p}"))
            .collect();
        format!("redis+cluster://{}", hosts.join(","))
    }
}

/// One whole sign-in in a new browser from `address`: authorize, the login form, the code.
async fn sign_in_once(app: &TestApp, client: &TestClient, username: &str, address: IpAddr) -> bool {
    let http = crate::helpers::http_builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .local_address(address)
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let browser = Browser::new(http, &app.issuer);
    let (url, _) = app.authorize_url(client, &[]);
    let Ok(response) = browser.http.get(&url).send().await else {
        return false;
    };
    let outcome = browser.follow(response).await;
    if !matches!(&outcome, Outcome::Page { status, .. } if *status == StatusCode::OK) {
        return false;
    }
    let response = browser.post_login(outcome, username).await;
    matches!(browser.follow(response).await, Outcome::Left(url) if query(&url, "code").is_some())
}

/// Signs in over and over (each time from another loopback address, so that per-address
/// limits stay out of it) until one succeeds; returns how long that took.
async fn until_sign_in_works(
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
async fn two_synced_caches(url: &str, prefix: &str) -> (Arc<LivenessCache>, Arc<LivenessCache>) {
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
async fn a_change_on_a_reaches_b(a: &LivenessCache, b: &LivenessCache, within: Duration) {
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_sentinel_master_fails_sign_ins_only_for_the_failover_window() {
    let Some(mut setup) = SentinelSetup::start() else {
        return;
    };
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
    let acked = cli(setup.master, &["WAIT", "1", "2000"]);
    assert_eq!(acked.trim(), "1", "the replica acknowledged the writes");

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
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_cluster_keeps_sessions_throttles_and_the_liveness_channel() {
    let Some(setup) = ClusterSetup::start() else {
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
