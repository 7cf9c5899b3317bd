//! Redis session store: shared by every instance, so one sign-in works everywhere and
//! survives restarts. Every key carries the configured prefix and a TTL.

use std::path::Path;
use std::time::Duration;

use super::redis_topology::{self, RedisClient, RedisConn};
use super::{BoxFuture, SessionError, SessionResult, SessionStore};

pub struct RedisSessionStore {
    conn: RedisConn,
    prefix: String,
    /// On a Cluster the keys are spread over the masters: `values` asks every one.
    cluster: bool,
}

fn unavailable(e: redis::RedisError) -> SessionError {
    SessionError::Unavailable(e.to_string())
}

/// A client for `url` (not yet connected): one server (`redis://`), a Sentinel-watched
/// master (`redis+sentinel://`) or a Cluster (`redis+cluster://`), each over TLS with
/// `rediss`. With `ca_file` (PEM, `redis_ca_file`), TLS servers' certificates are verified
/// against the CAs in that file instead of the system's roots.
pub fn open_client(url: &str, ca_file: Option<&Path>) -> SessionResult<RedisClient> {
    open_client_with_push(url, ca_file, None)
}

/// As [`open_client`]; a Cluster client sends the pub/sub messages it receives to `push`.
pub fn open_client_with_push(
    url: &str,
    ca_file: Option<&Path>,
    push: Option<tokio::sync::mpsc::UnboundedSender<redis::PushInfo>>,
) -> SessionResult<RedisClient> {
    // TLS is rustls over the process-wide crypto provider (the redis crate asks rustls
    // for its default), so aws-lc-rs is installed before the first handshake.
    crate::crypto::install_tls_provider();
    let ca_pem = ca_file.map(redis_topology::read_ca_file).transpose()?;
    redis_topology::open(url, ca_pem, push).map_err(unavailable)
}

impl RedisSessionStore {
    /// Connects (failing fast if Redis cannot be reached now); afterwards the connection
    /// is re-established by itself whenever Redis comes back (through the sentinels, to
    /// the new master after a failover). A `rediss` URL is TLS, verified against the
    /// system's CA roots.
    pub async fn connect(url: &str, prefix: &str) -> SessionResult<Self> {
        Self::connect_with_ca(url, prefix, None).await
    }

    /// As [`Self::connect`]; with `ca_file` (PEM, `redis_ca_file`), a TLS server's
    /// certificate is verified against the CAs in that file instead of the system's roots.
    pub async fn connect_with_ca(
        url: &str,
        prefix: &str,
        ca_file: Option<&Path>,
    ) -> SessionResult<Self> {
        let client = open_client(url, ca_file)?;
        let conn = client.connect().await.map_err(unavailable)?;
        Ok(Self {
            conn,
            prefix: prefix.to_owned(),
            cluster: matches!(client, RedisClient::Cluster(_)),
        })
    }

    fn key(&self, key: &str) -> String {
        format!("{}{key}", self.prefix)
    }
}

impl SessionStore for RedisSessionStore {
    fn put<'a>(
        &'a self,
        key: &'a str,
        value: String,
        ttl: Duration,
    ) -> BoxFuture<'a, SessionResult<()>> {
        Box::pin(async move {
            let millis = ttl.as_millis().max(1) as u64;
            redis::cmd("SET")
                .arg(self.key(key))
                .arg(value)
                .arg("PX")
                .arg(millis)
                .query_async::<()>(&mut self.conn.clone())
                .await
                .map_err(unavailable)
        })
    }

    fn put_if_absent<'a>(
        &'a self,
        key: &'a str,
        value: String,
        ttl: Duration,
    ) -> BoxFuture<'a, SessionResult<bool>> {
        Box::pin(async move {
            let millis = ttl.as_millis().max(1) as u64;
            // SET NX answers OK when it set the key, nil when the key was there.
            let set: Option<String> = redis::cmd("SET")
                .arg(self.key(key))
                .arg(value)
                .arg("NX")
                .arg("PX")
                .arg(millis)
                .query_async(&mut self.conn.clone())
                .await
                .map_err(unavailable)?;
            Ok(set.is_some())
        })
    }

    fn get<'a>(&'a self, key: &'a str) -> BoxFuture<'a, SessionResult<Option<String>>> {
        Box::pin(async move {
            redis::cmd("GET")
                .arg(self.key(key))
                .query_async::<Option<String>>(&mut self.conn.clone())
                .await
                .map_err(unavailable)
        })
    }

    fn take<'a>(&'a self, key: &'a str) -> BoxFuture<'a, SessionResult<Option<String>>> {
        Box::pin(async move {
            // GETDEL (Redis >= 6.2) is atomic: two instances cannot both take the record.
            redis::cmd("GETDEL")
                .arg(self.key(key))
                .query_async::<Option<String>>(&mut self.conn.clone())
                .await
                .map_err(unavailable)
        })
    }

    fn delete<'a>(&'a self, key: &'a str) -> BoxFuture<'a, SessionResult<()>> {
        Box::pin(async move {
            redis::cmd("DEL")
                .arg(self.key(key))
                .query_async::<i64>(&mut self.conn.clone())
                .await
                .map(|_| ())
                .map_err(unavailable)
        })
    }

    fn add<'a>(
        &'a self,
        key: &'a str,
        delta: i64,
        window: Duration,
    ) -> BoxFuture<'a, SessionResult<i64>> {
        Box::pin(async move {
            // INCRBY and PEXPIRE NX (Redis 7) in one transaction: every key gets a TTL, and
            // the window starts at the first addition instead of sliding.
            let key = self.key(key);
            let (count,): (i64,) = redis::pipe()
                .atomic()
                .cmd("INCRBY")
                .arg(&key)
                .arg(delta)
                .cmd("PEXPIRE")
                .arg(&key)
                .arg(window.as_millis().max(1) as u64)
                .arg("NX")
                .ignore()
                .query_async(&mut self.conn.clone())
                .await
                .map_err(unavailable)?;
            Ok(count)
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
            // One script, so the read and the write are one atomic step; the time is the
            // Redis server's, the same for every instance.
            const SCRIPT: &str = r#"
                local t = redis.call('TIME')
                local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
                local slot = math.max(now, tonumber(redis.call('GET', KEYS[1]) or '0'))
                if slot - now > tonumber(ARGV[3]) then
                    return -1
                end
                redis.call('SET', KEYS[1], slot + tonumber(ARGV[1]), 'PX', tonumber(ARGV[2]))
                return slot - now
            "#;
            let spacing_ms = spacing.as_millis() as u64;
            let ttl_ms = (window + spacing * 2).as_millis().max(1) as u64;
            let wait: i64 = redis::cmd("EVAL")
                .arg(SCRIPT)
                .arg(1)
                .arg(self.key(key))
                .arg(spacing_ms)
                .arg(ttl_ms)
                .arg(max_wait.as_millis() as u64)
                .query_async(&mut self.conn.clone())
                .await
                .map_err(unavailable)?;
            Ok((wait >= 0).then(|| Duration::from_millis(wait as u64)))
        })
    }

    fn put_lasting<'a>(&'a self, key: &'a str, value: String) -> BoxFuture<'a, SessionResult<()>> {
        Box::pin(async move {
            redis::cmd("SET")
                .arg(self.key(key))
                .arg(value)
                .query_async::<()>(&mut self.conn.clone())
                .await
                .map_err(unavailable)
        })
    }

    fn extend_if<'a>(
        &'a self,
        key: &'a str,
        value: &'a str,
        ttl: Duration,
    ) -> BoxFuture<'a, SessionResult<bool>> {
        Box::pin(async move {
            // One script: compare and extend are one atomic step.
            const SCRIPT: &str = r#"
                if redis.call('GET', KEYS[1]) == ARGV[1] then
                    redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[2]))
                    return 1
                end
                return 0
            "#;
            let extended: i64 = redis::cmd("EVAL")
                .arg(SCRIPT)
                .arg(1)
                .arg(self.key(key))
                .arg(value)
                .arg(ttl.as_millis().max(1) as u64)
                .query_async(&mut self.conn.clone())
                .await
                .map_err(unavailable)?;
            Ok(extended == 1)
        })
    }

    fn release_if<'a>(
        &'a self,
        key: &'a str,
        value: &'a str,
        lasting: Option<(&'a str, String)>,
    ) -> BoxFuture<'a, SessionResult<bool>> {
        Box::pin(async move {
            // One script over both keys (one slot: the caller's hash tag), so the lasting
            // key is written only while `key` still holds `value`.
            const SCRIPT: &str = r#"
                if redis.call('GET', KEYS[1]) ~= ARGV[1] then
                    return 0
                end
                redis.call('DEL', KEYS[1])
                if #KEYS > 1 then
                    redis.call('SET', KEYS[2], ARGV[2])
                end
                return 1
            "#;
            let mut cmd = redis::cmd("EVAL");
            cmd.arg(SCRIPT);
            match &lasting {
                Some((other, _)) => cmd.arg(2).arg(self.key(key)).arg(self.key(other)),
                None => cmd.arg(1).arg(self.key(key)),
            };
            cmd.arg(value);
            if let Some((_, lasting_value)) = &lasting {
                cmd.arg(lasting_value);
            }
            let released: i64 = cmd
                .query_async(&mut self.conn.clone())
                .await
                .map_err(unavailable)?;
            Ok(released == 1)
        })
    }

    fn present<'a>(&'a self, keys: &'a [String]) -> BoxFuture<'a, SessionResult<Vec<bool>>> {
        Box::pin(async move {
            if keys.is_empty() {
                return Ok(Vec::new());
            }
            // MGET rather than a pipeline of EXISTS: the cluster client splits a multi-key
            // MGET by slot and joins the answers in order, where a pipeline must stay
            // within one slot (and multi-key EXISTS answers one count, not which).
            let keys: Vec<String> = keys.iter().map(|k| self.key(k)).collect();
            let found: Vec<Option<String>> = redis::cmd("MGET")
                .arg(&keys)
                .query_async(&mut self.conn.clone())
                .await
                .map_err(unavailable)?;
            Ok(found.into_iter().map(|v| v.is_some()).collect())
        })
    }

    fn raise<'a>(
        &'a self,
        key: &'a str,
        at_least: i64,
        window: Duration,
    ) -> BoxFuture<'a, SessionResult<()>> {
        Box::pin(async move {
            // One script: the read and the write are one atomic step.
            const SCRIPT: &str = r#"
                local current = redis.call('GET', KEYS[1])
                if not current then
                    redis.call('SET', KEYS[1], ARGV[1], 'PX', tonumber(ARGV[2]))
                elseif tonumber(current) < tonumber(ARGV[1]) then
                    redis.call('SET', KEYS[1], ARGV[1], 'KEEPTTL')
                end
                return 1
            "#;
            redis::cmd("EVAL")
                .arg(SCRIPT)
                .arg(1)
                .arg(self.key(key))
                .arg(at_least)
                .arg(window.as_millis().max(1) as u64)
                .query_async::<i64>(&mut self.conn.clone())
                .await
                .map(|_| ())
                .map_err(unavailable)
        })
    }

    fn values(&self) -> BoxFuture<'_, SessionResult<Vec<String>>> {
        Box::pin(async move {
            let mut conn = self.conn.clone();
            // The prefix is matched literally: glob characters in it are escaped.
            let mut pattern = String::new();
            for c in self.prefix.chars() {
                if matches!(c, '*' | '?' | '[' | ']' | '\\') {
                    pattern.push('\\');
                }
                pattern.push(c);
            }
            pattern.push('*');
            if self.cluster {
                // SCAN walks one node; KEYS is sent to every master and the answers joined
                // (an audit, not a request path), and MGET is split by slot.
                let keys: Vec<String> = redis::cmd("KEYS")
                    .arg(&pattern)
                    .query_async(&mut conn)
                    .await
                    .map_err(unavailable)?;
                let mut values = Vec::new();
                for chunk in keys.chunks(500) {
                    let found: Vec<Option<String>> = redis::cmd("MGET")
                        .arg(chunk)
                        .query_async(&mut conn)
                        .await
                        .map_err(unavailable)?;
                    values.extend(found.into_iter().flatten());
                }
                return Ok(values);
            }
            let mut cursor: u64 = 0;
            let mut values = Vec::new();
            loop {
                let (next, keys): (u64, Vec<String>) = redis::cmd("SCAN")
                    .arg(cursor)
                    .arg("MATCH")
                    .arg(&pattern)
                    .arg("COUNT")
                    .arg(500)
                    .query_async(&mut conn)
                    .await
                    .map_err(unavailable)?;
                if !keys.is_empty() {
                    let found: Vec<Option<String>> = redis::cmd("MGET")
                        .arg(&keys)
                        .query_async(&mut conn)
                        .await
                        .map_err(unavailable)?;
                    values.extend(found.into_iter().flatten());
                }
                if next == 0 {
                    return Ok(values);
                }
                cursor = next;
            }
        })
    }

    fn ping(&self) -> BoxFuture<'_, SessionResult<()>> {
        Box::pin(async move {
            redis::cmd("PING")
                .query_async::<String>(&mut self.conn.clone())
                .await
                .map(|_| ())
                .map_err(unavailable)
        })
    }
}
