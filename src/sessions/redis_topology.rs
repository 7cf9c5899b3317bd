//! Where Redis is: one server (`redis://`), a master watched by Redis Sentinel
//! (`redis+sentinel://HOST:PORT[,HOST:PORT...]/MASTER_NAME`), or a Redis Cluster
//! (`redis+cluster://HOST:PORT[,HOST:PORT...]`); each also over TLS (`rediss...`).
//!
//! Failover is the `redis` crate's and Redis's own: Sentinel elects the new master and the
//! crate asks the sentinels for it; the crate's cluster client follows `MOVED` and
//! refreshes its slot map. All this module adds is to drop a connection to a master that
//! died or was demoted, so the next request asks the sentinels again.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use redis::aio::{
    ConnectionLike, ConnectionManager, ConnectionManagerConfig, MultiplexedConnection,
};
use redis::cluster::{ClusterClient, ClusterClientBuilder};
use redis::cluster_async::ClusterConnection;
use redis::sentinel::{SentinelClient, SentinelClientBuilder, SentinelServerType};
use redis::{
    AsyncConnectionConfig, Cmd, ConnectionAddr, ErrorKind, Pipeline, RedisFuture, RedisResult,
    TlsCertificates, TlsMode, Value,
};

use super::SessionResult;

/// Short timeouts: while Redis is away a request should fail with 503 quickly, not hang.
const TIMEOUT: Duration = Duration::from_secs(2);

/// A parsed `redis_url`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Topology {
    /// `redis://` or `rediss://`, as the `redis` crate reads it.
    Single(String),
    Sentinel(SentinelTarget),
    /// The seed nodes' URLs (`redis://HOST:PORT` or `rediss://...`).
    Cluster(Vec<String>),
}

#[derive(Clone, PartialEq, Eq)]
pub struct SentinelTarget {
    pub sentinels: Vec<(String, u16)>,
    pub master: String,
    pub tls: bool,
    /// The data nodes' credentials (the URL's user information); sentinels take none.
    pub username: Option<String>,
    pub password: Option<String>,
    pub db: i64,
}

/// The password is never shown.
impl std::fmt::Debug for SentinelTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SentinelTarget")
            .field("sentinels", &self.sentinels)
            .field("master", &self.master)
            .field("tls", &self.tls)
            .field("username", &self.username)
            .field("db", &self.db)
            .finish_non_exhaustive()
    }
}

const SENTINEL_PORT: u16 = 26379;
const REDIS_PORT: u16 = 6379;

fn decode(s: &str) -> Result<String, String> {
    percent_encoding::percent_decode_str(s)
        .decode_utf8()
        .map(|s| s.into_owned())
        .map_err(|_| "user information is not UTF-8".to_owned())
}

/// `HOST[:PORT]` (`[v6]:PORT` too), the port defaulting to `default_port`.
fn host_port(s: &str, default_port: u16) -> Result<(String, u16), String> {
    let bad = || format!("{s:?} is not HOST:PORT");
    let (host, port) = if let Some(rest) = s.strip_prefix('[') {
        let (host, after) = rest.split_once(']').ok_or_else(bad)?;
        match after.strip_prefix(':') {
            Some(port) => (host, Some(port)),
            None if after.is_empty() => (host, None),
            None => return Err(bad()),
        }
    } else {
        match s.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (s, None),
        }
    };
    if host.is_empty() || host.contains(['/', '@', ',', ' ']) {
        return Err(bad());
    }
    let port = match port {
        Some(p) => p.parse().map_err(|_| bad())?,
        None => default_port,
    };
    Ok((host.to_owned(), port))
}

impl Topology {
    pub fn parse(url: &str) -> Result<Self, String> {
        let (tls, rest, sentinel) = if let Some(rest) = url.strip_prefix("redis+sentinel://") {
            (false, rest, true)
        } else if let Some(rest) = url.strip_prefix("rediss+sentinel://") {
            (true, rest, true)
        } else if let Some(rest) = url.strip_prefix("redis+cluster://") {
            (false, rest, false)
        } else if let Some(rest) = url.strip_prefix("rediss+cluster://") {
            (true, rest, false)
        } else if url.starts_with("redis://") || url.starts_with("rediss://") {
            return Ok(Self::Single(url.to_owned()));
        } else {
            return Err(
                "expected redis://, rediss://, redis+sentinel://, rediss+sentinel://, \
                        redis+cluster:// or rediss+cluster://"
                    .into(),
            );
        };
        let (userinfo, rest) = match rest.rsplit_once('@') {
            Some((userinfo, rest)) => (Some(userinfo), rest),
            None => (None, rest),
        };
        let (hosts, path) = rest.split_once('/').unwrap_or((rest, ""));
        let default_port = if sentinel { SENTINEL_PORT } else { REDIS_PORT };
        let nodes = hosts
            .split(',')
            .map(|h| host_port(h, default_port))
            .collect::<Result<Vec<_>, _>>()?;
        if sentinel {
            let mut segments = path.split('/');
            let master = segments.next().unwrap_or_default();
            if master.is_empty() {
                return Err("redis+sentinel:// needs the master's name: \
                            redis+sentinel://HOST:PORT[,HOST:PORT...]/MASTER_NAME"
                    .into());
            }
            let db = match segments.next() {
                None | Some("") => 0,
                Some(db) => db
                    .parse()
                    .map_err(|_| format!("{db:?} is not a database number"))?,
            };
            let (username, password) = match userinfo {
                None => (None, None),
                Some(u) => match u.split_once(':') {
                    Some((user, pass)) => (
                        Some(decode(user)?).filter(|u| !u.is_empty()),
                        Some(decode(pass)?),
                    ),
                    None => (None, Some(decode(u)?)),
                },
            };
            return Ok(Self::Sentinel(SentinelTarget {
                sentinels: nodes,
                master: decode(master)?,
                tls,
                username,
                password,
                db,
            }));
        }
        if !path.is_empty() {
            return Err("a Redis Cluster has only database 0: no path after the nodes".into());
        }
        let scheme = if tls { "rediss" } else { "redis" };
        let auth = userinfo.map(|u| format!("{u}@")).unwrap_or_default();
        Ok(Self::Cluster(
            nodes
                .into_iter()
                .map(|(host, port)| match host.contains(':') {
                    true => format!("{scheme}://{auth}[{host}]:{port}"),
                    false => format!("{scheme}://{auth}{host}:{port}"),
                })
                .collect(),
        ))
    }
}

/// A client for any of the topologies: connections for commands, and (in
/// `liveness_sync`) pub/sub.
#[derive(Clone)]
pub enum RedisClient {
    Single(Arc<redis::Client>),
    Sentinel(Arc<SentinelParams>),
    Cluster(Arc<ClusterClient>),
}

impl From<redis::Client> for RedisClient {
    fn from(client: redis::Client) -> Self {
        Self::Single(Arc::new(client))
    }
}

pub struct SentinelParams {
    target: SentinelTarget,
    certificates: Option<TlsCertificates>,
}

impl SentinelParams {
    /// A new client of the sentinels (no I/O: it connects when asked for the master).
    pub fn client(&self) -> RedisResult<SentinelClient> {
        let t = &self.target;
        let addresses = t.sentinels.iter().map(|(host, port)| match t.tls {
            false => ConnectionAddr::Tcp(host.clone(), *port),
            true => ConnectionAddr::TcpTls {
                host: host.clone(),
                port: *port,
                insecure: false,
                tls_params: None,
            },
        });
        let mut builder =
            SentinelClientBuilder::new(addresses, &t.master, SentinelServerType::Master)?
                .set_client_to_redis_db(t.db);
        if t.tls {
            builder = builder
                .set_client_to_redis_tls_mode(TlsMode::Secure)
                .set_client_to_sentinel_tls_mode(TlsMode::Secure);
            if let Some(certificates) = &self.certificates {
                builder = builder
                    .set_client_to_redis_certificates(certificates.clone())
                    .set_client_to_sentinel_certificates(certificates.clone());
            }
        }
        if let Some(username) = &t.username {
            builder = builder.set_client_to_redis_username(username);
        }
        if let Some(password) = &t.password {
            builder = builder.set_client_to_redis_password(password);
        }
        builder.build()
    }
}

/// A client for `url` (not yet connected); with `ca_pem` (`redis_ca_file`), TLS servers'
/// certificates are verified against those CAs instead of the system's roots. Cluster
/// clients speak RESP3, so that pub/sub messages reach the `push` sender.
pub fn open(
    url: &str,
    ca_pem: Option<Vec<u8>>,
    push: Option<tokio::sync::mpsc::UnboundedSender<redis::PushInfo>>,
) -> RedisResult<RedisClient> {
    let certificates = ca_pem.map(|root_cert| TlsCertificates {
        client_tls: None,
        root_cert: Some(root_cert),
    });
    let topology = Topology::parse(url).map_err(|why| {
        redis::RedisError::from((ErrorKind::InvalidClientConfig, "redis_url", why))
    })?;
    Ok(match topology {
        Topology::Single(url) => RedisClient::Single(Arc::new(match certificates {
            None => redis::Client::open(url)?,
            Some(certificates) => redis::Client::build_with_tls(url, certificates)?,
        })),
        Topology::Sentinel(target) => RedisClient::Sentinel(Arc::new(SentinelParams {
            target,
            certificates,
        })),
        Topology::Cluster(seeds) => {
            let mut builder = ClusterClientBuilder::new(seeds)
                .connection_timeout(TIMEOUT)
                .response_timeout(TIMEOUT)
                .retries(2);
            if let Some(certificates) = certificates {
                builder = builder.certs(certificates);
            }
            if let Some(push) = push {
                builder = builder
                    .use_protocol(redis::ProtocolVersion::RESP3)
                    .push_sender(push);
            }
            RedisClient::Cluster(Arc::new(builder.build()?))
        }
    })
}

impl RedisClient {
    /// Connects now (failing fast if Redis cannot be reached); afterwards the connection
    /// comes back by itself, to the new master after a failover.
    pub async fn connect(&self) -> RedisResult<RedisConn> {
        match self {
            Self::Single(client) => {
                let config = ConnectionManagerConfig::new()
                    .set_connection_timeout(Some(TIMEOUT))
                    .set_response_timeout(Some(TIMEOUT))
                    .set_number_of_retries(1);
                Ok(RedisConn::Single(
                    client.get_connection_manager_with_config(config).await?,
                ))
            }
            Self::Sentinel(params) => {
                let conn = SentinelConn {
                    params: params.clone(),
                    current: Arc::new(Mutex::new(None)),
                    db: params.target.db,
                };
                conn.connection().await?;
                Ok(RedisConn::Sentinel(conn))
            }
            Self::Cluster(client) => Ok(RedisConn::Cluster(client.get_async_connection().await?)),
        }
    }

    /// The client of the server that takes writes now: the one server, or the master
    /// the sentinels name. Not for a Cluster.
    pub async fn master(&self) -> RedisResult<redis::Client> {
        match self {
            Self::Single(client) => Ok(client.as_ref().clone()),
            Self::Sentinel(params) => params.client()?.async_get_client().await,
            Self::Cluster(_) => Err(redis::RedisError::from((
                ErrorKind::InvalidClientConfig,
                "a Redis Cluster has no single master",
            ))),
        }
    }
}

/// A connection to the master the sentinels name, replaced after failures.
#[derive(Clone)]
pub struct SentinelConn {
    params: Arc<SentinelParams>,
    current: Arc<Mutex<Option<MultiplexedConnection>>>,
    db: i64,
}

impl SentinelConn {
    async fn connection(&self) -> RedisResult<MultiplexedConnection> {
        if let Some(conn) = self.current.lock().ok().and_then(|c| c.clone()) {
            return Ok(conn);
        }
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(TIMEOUT))
            .set_response_timeout(Some(TIMEOUT));
        let conn = self
            .params
            .client()?
            .get_async_connection_with_config(&config)
            .await?;
        if let Ok(mut current) = self.current.lock() {
            *current = Some(conn.clone());
        }
        Ok(conn)
    }

    /// After an error that says the master is gone or is one no more (`READONLY`: it was
    /// demoted), the next request asks the sentinels again.
    fn check<T>(&self, result: RedisResult<T>) -> RedisResult<T> {
        if let Err(e) = &result
            && (!matches!(e.kind(), ErrorKind::Server(_))
                || e.kind() == ErrorKind::Server(redis::ServerErrorKind::ReadOnly))
            && let Ok(mut current) = self.current.lock()
        {
            *current = None;
        }
        result
    }
}

/// A connection of any topology; cheap to clone.
#[derive(Clone)]
pub enum RedisConn {
    Single(ConnectionManager),
    Sentinel(SentinelConn),
    Cluster(ClusterConnection),
}

impl ConnectionLike for RedisConn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Self::Single(c) => c.req_packed_command(cmd),
            Self::Cluster(c) => c.req_packed_command(cmd),
            Self::Sentinel(s) => Box::pin(async move {
                let mut conn = s.connection().await?;
                let result = conn.req_packed_command(cmd).await;
                s.check(result)
            }),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Self::Single(c) => c.req_packed_commands(pipeline, offset, count),
            Self::Cluster(c) => c.req_packed_commands(pipeline, offset, count),
            Self::Sentinel(s) => Box::pin(async move {
                let mut conn = s.connection().await?;
                let result = conn.req_packed_commands(pipeline, offset, count).await;
                s.check(result)
            }),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Self::Single(c) => c.get_db(),
            Self::Cluster(c) => c.get_db(),
            Self::Sentinel(s) => s.db,
        }
    }
}

/// The PEM CA file's bytes, refused unless it holds at least one certificate (an empty
/// trust store would fail every handshake with a less helpful error).
pub fn read_ca_file(path: &Path) -> SessionResult<Vec<u8>> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    let bad = |why: String| {
        super::SessionError::Unavailable(format!("redis_ca_file {}: {why}", path.display()))
    };
    let pem = std::fs::read(path).map_err(|e| bad(format!("cannot read: {e}")))?;
    let certificates = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| bad(format!("not PEM: {e}")))?;
    if certificates.is_empty() {
        return Err(bad("no PEM certificate in it".into()));
    }
    Ok(pem)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sentinel_urls_name_the_sentinels_and_the_master() {
        let t = Topology::parse("redis+sentinel://10.0.0.1:26379,sentinel-b,[::1]:5000/mymaster")
            .unwrap();
        let Topology::Sentinel(t) = t else {
            panic!("{t:?}")
        };
        assert_eq!(
            t.sentinels,
            [
                ("10.0.0.1".to_owned(), 26379),
                ("sentinel-b".to_owned(), 26379),
                ("::1".to_owned(), 5000)
            ]
        );
        assert_eq!((t.master.as_str(), t.tls, t.db), ("mymaster", false, 0));
        let t = Topology::parse("rediss+sentinel://app:p%40ss@h:1/m/3").unwrap();
        let Topology::Sentinel(t) = t else {
            panic!("{t:?}")
        };
        assert!(t.tls);
        assert_eq!(t.username.as_deref(), Some("app"));
        assert_eq!(t.password.as_deref(), Some("p@ss"));
        assert_eq!(t.db, 3);
        assert!(
            !format!("{t:?}").contains("p@ss"),
            "the password is not shown"
        );
    }

    #[test]
    fn cluster_urls_name_the_seed_nodes() {
        assert_eq!(
            Topology::parse("redis+cluster://a:7000,b:7001").unwrap(),
            Topology::Cluster(vec!["redis://a:7000".into(), "redis://b:7001".into()])
        );
        assert_eq!(
            Topology::parse("rediss+cluster://:pw@a").unwrap(),
            Topology::Cluster(vec!["rediss://:pw@a:6379".into()])
        );
        assert_eq!(
            Topology::parse("redis://h:1/2").unwrap(),
            Topology::Single("redis://h:1/2".into())
        );
    }

    #[test]
    fn malformed_topologies_are_refused() {
        for url in [
            "redis+sentinel://a:1,b:2",
            "redis+sentinel://a:1/",
            "redis+sentinel://a:x/m",
            "redis+cluster://a:1,,b:2",
            "redis+cluster://a:1/0",
            "redis+sentinel:///m",
            "http://a",
        ] {
            assert!(Topology::parse(url).is_err(), "{url}");
        }
    }
}
