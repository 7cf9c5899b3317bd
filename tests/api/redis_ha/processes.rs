//! Private `redis-server` processes for the Sentinel and Cluster tests: started together
//! on free ports in a temporary directory, killed (and waited for) when dropped.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tempfile::TempDir;

use crate::faults::skip;
use crate::helpers::free_port;

/// Redis processes of one test, killed (and waited for) when this value is dropped; the
/// temporary directory goes after them.
pub(super) struct RedisProcesses {
    children: Vec<(u16, Child)>,
    dir: TempDir,
}

/// One server to start: its port, its configuration, and whether it is a sentinel.
struct Server {
    port: u16,
    config: String,
    sentinel: bool,
}

pub(super) fn installed() -> bool {
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

pub(super) fn cli(port: u16, args: &[&str]) -> String {
    let out = Command::new("redis-cli")
        .args(["-h", "127.0.0.1", "-p", &port.to_string()])
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Waits until the replica on `replica` has acknowledged every write the master on
/// `master` has taken so far. (`WAIT` from a new `redis-cli` proves nothing: it waits for
/// that connection's own writes, and it has made none.)
pub(super) fn wait_until_replicated(master: u16, replica: u16) {
    let field = |line: &str, name: &str| -> Option<u64> {
        line.split([':', ',']).find_map(|kv| {
            kv.strip_prefix(name)?
                .strip_prefix('=')?
                .trim()
                .parse()
                .ok()
        })
    };
    let written: u64 = cli(master, &["INFO", "replication"])
        .lines()
        .find_map(|l| l.strip_prefix("master_repl_offset:")?.trim().parse().ok())
        .expect("the master's replication offset");
    wait_for(
        "the replica acknowledged the master's writes",
        Duration::from_secs(10),
        || {
            cli(master, &["INFO", "replication"]).lines().any(|l| {
                l.starts_with("slave")
                    && field(l, "port") == Some(u64::from(replica))
                    && field(l, "offset").is_some_and(|acked| acked >= written)
            })
        },
    );
}

/// Polls `done` until it holds, or fails the test after `within`.
pub(super) fn wait_for(what: &str, within: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + within;
    while !done() {
        assert!(Instant::now() < deadline, "timed out: {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

impl RedisProcesses {
    fn new() -> Self {
        Self {
            children: Vec::new(),
            dir: TempDir::new().unwrap(),
        }
    }

    /// Starts every server at once, each with a configuration file holding its `config`
    /// (a file, since sentinels and cluster nodes rewrite theirs), then waits until all
    /// answer PING.
    fn start_all(&mut self, servers: &[Server]) {
        for server in servers {
            let dir = self.dir.path().join(server.port.to_string());
            std::fs::create_dir_all(&dir).unwrap();
            let file = dir.join("redis.conf");
            let common = format!(
                "port {}\nbind 127.0.0.1\ndir {}\nsave \"\"\nappendonly no\n",
                server.port,
                dir.display()
            );
            std::fs::write(&file, format!("{common}{}", server.config)).unwrap();
            let mut command = Command::new("redis-server");
            command.arg(&file);
            if server.sentinel {
                command.arg("--sentinel");
            }
            let child = command
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap();
            self.children.push((server.port, child));
        }
        wait_for("redis-server answers", Duration::from_secs(10), || {
            servers
                .iter()
                .all(|s| cli(s.port, &["PING"]).trim() == "PONG")
        });
    }

    /// Kills the server on `port` at once (SIGKILL: no goodbye to its clients).
    pub(super) fn kill(&mut self, port: u16) {
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
pub(super) struct SentinelSetup {
    pub processes: RedisProcesses,
    pub master: u16,
    pub replica: u16,
    sentinels: [u16; 3],
}

pub(super) const DOWN_AFTER_MS: u64 = 1000;

impl SentinelSetup {
    pub fn start() -> Option<Self> {
        if !installed() {
            return None;
        }
        let mut processes = RedisProcesses::new();
        let (master, replica) = (free_port(), free_port());
        let sentinels = [free_port(), free_port(), free_port()];
        let watch = format!(
            "sentinel monitor mymaster 127.0.0.1 {master} 2\n\
             sentinel down-after-milliseconds mymaster {DOWN_AFTER_MS}\n\
             sentinel failover-timeout mymaster 10000\n\
             sentinel parallel-syncs mymaster 1\n"
        );
        let mut servers = vec![
            Server {
                port: master,
                config: String::new(),
                sentinel: false,
            },
            Server {
                port: replica,
                config: format!("replicaof 127.0.0.1 {master}\n"),
                sentinel: false,
            },
        ];
        servers.extend(sentinels.iter().map(|&port| Server {
            port,
            config: watch.clone(),
            sentinel: true,
        }));
        processes.start_all(&servers);
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

    pub fn url(&self) -> String {
        let hosts: Vec<String> = self
            .sentinels
            .iter()
            .map(|p| format!("127.0.0.1:{p}"))
            .collect();
        format!("redis+sentinel://{}/mymaster", hosts.join(","))
    }

    /// The master the sentinels name now.
    pub fn named_master(&self) -> String {
        cli(
            self.sentinels[0],
            &["SENTINEL", "GET-MASTER-ADDR-BY-NAME", "mymaster"],
        )
    }
}

/// How long a cluster node may be silent before the others count it as failing; a
/// replica starts its election about this long (plus up to a second) after its master
/// died.
pub(super) const NODE_TIMEOUT_MS: u64 = 1000;

/// Three cluster masters holding all the slots, each with `replicas` replicas.
pub(super) struct ClusterSetup {
    pub processes: RedisProcesses,
    pub nodes: Vec<u16>,
}

/// One line of `CLUSTER NODES`, as far as the tests need it.
pub(super) struct ClusterNode {
    pub port: u16,
    pub master: bool,
    pub failed: bool,
    /// A replica's master's port.
    pub replica_of: Option<u16>,
}

impl ClusterSetup {
    pub fn start(replicas: usize) -> Option<Self> {
        if !installed() {
            return None;
        }
        let mut processes = RedisProcesses::new();
        let nodes: Vec<u16> = (0..3 * (1 + replicas)).map(|_| free_port()).collect();
        let servers: Vec<Server> = nodes
            .iter()
            .map(|&port| Server {
                port,
                // The bus port is chosen too: PORT + 10000 may be taken, or past 65535.
                config: format!(
                    "cluster-enabled yes\ncluster-config-file nodes.conf\n\
                     cluster-port {}\ncluster-node-timeout {NODE_TIMEOUT_MS}\n",
                    free_port()
                ),
                sentinel: false,
            })
            .collect();
        processes.start_all(&servers);
        let addresses: Vec<String> = nodes.iter().map(|p| format!("127.0.0.1:{p}")).collect();
        let out = Command::new("redis-cli")
            .args(["--cluster", "create"])
            .args(&addresses)
            .args(["--cluster-replicas", &replicas.to_string(), "--cluster-yes"])
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert!(out.status.success(), "redis-cli --cluster create: {out:?}");
        let setup = Self { processes, nodes };
        wait_for("the cluster is up", Duration::from_secs(30), || {
            setup.nodes.iter().all(|&p| {
                cli(p, &["CLUSTER", "INFO"]).contains("cluster_state:ok")
                    && setup.topology(p).len() == setup.nodes.len()
            })
        });
        wait_for("the replicas are in sync", Duration::from_secs(30), || {
            let topology = setup.topology(setup.nodes[0]);
            topology.iter().filter(|n| n.master).count() == 3
                && topology.iter().filter(|n| !n.master).all(|n| {
                    cli(n.port, &["INFO", "replication"]).contains("master_link_status:up")
                })
        });
        Some(setup)
    }

    pub fn url(&self) -> String {
        let hosts: Vec<String> = self
            .nodes
            .iter()
            .map(|p| format!("127.0.0.1:{p}"))
            .collect();
        format!("redis+cluster://{}", hosts.join(","))
    }

    /// The cluster as the node on `port` sees it (`CLUSTER NODES`).
    pub fn topology(&self, port: u16) -> Vec<ClusterNode> {
        let text = cli(port, &["CLUSTER", "NODES"]);
        let lines: Vec<Vec<&str>> = text
            .lines()
            .map(|l| l.split_whitespace().collect::<Vec<_>>())
            .filter(|f| f.len() >= 8)
            .collect();
        // `127.0.0.1:PORT@BUSPORT[,HOSTNAME]`.
        let port_of = |address: &str| -> u16 {
            let host_port = address.split('@').next().unwrap();
            host_port.rsplit(':').next().unwrap().parse().unwrap()
        };
        let port_by_id = |id: &str| lines.iter().find(|f| f[0] == id).map(|f| port_of(f[1]));
        lines
            .iter()
            .map(|f| ClusterNode {
                port: port_of(f[1]),
                master: f[2].split(',').any(|flag| flag == "master"),
                failed: f[2].split(',').any(|flag| flag == "fail"),
                replica_of: port_by_id(f[3]),
            })
            .collect()
    }

    /// The node holding `pattern`'s keys (`KEYS` asks each node for its own): the master
    /// that owns their slot.
    pub fn master_holding(&self, pattern: &str) -> u16 {
        let masters: Vec<u16> = self
            .topology(self.nodes[0])
            .into_iter()
            .filter(|n| n.master && !n.failed)
            .map(|n| n.port)
            .collect();
        let holding: Vec<u16> = masters
            .into_iter()
            .filter(|&p| !cli(p, &["KEYS", pattern]).trim().is_empty())
            .collect();
        assert_eq!(holding.len(), 1, "{pattern} is on one master: {holding:?}");
        holding[0]
    }
}
