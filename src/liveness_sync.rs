//! Keeps the instances' liveness caches (`store::sql::liveness`) in step over Redis
//! pub/sub (one server, the master the sentinels name, or a Cluster's nodes), or without
//! Redis over PostgreSQL `LISTEN`/`NOTIFY` (`postgres`): an instance that revokes something, or changes a user or a client, says so on
//! a channel, and every other instance forgets what it had cached at once, instead of
//! after the cache's TTL. A message names only its sender: a receiver forgets everything,
//! since such writes are rare and one read per live token and client is cheap.
//!
//! Losing Redis costs nothing but speed of propagation: until the subscription is back an
//! unannounced change is seen within the TTL, as without Redis; and since messages sent
//! while this instance was away are lost, it forgets everything whenever it (re)subscribes.

mod postgres;

use std::sync::{Arc, Weak};
use std::time::Duration;

use futures_util::StreamExt;

use crate::sessions::{RedisClient, RedisConn};
use crate::store::sql::liveness::LivenessCache;

pub use postgres::{announce_once as announce_once_postgres, spawn as spawn_postgres};

/// How long to wait before subscribing again after Redis went away.
const RESUBSCRIBE_DELAY: Duration = Duration::from_secs(1);
/// How long the command line waits for Redis before giving up on announcing.
const ANNOUNCE_TIMEOUT: Duration = Duration::from_secs(3);

/// The channel's name under `prefix` (`redis_prefix`: instances sharing one prefix share
/// one deployment).
pub fn channel(prefix: &str) -> String {
    format!("{prefix}liveness")
}

/// Announces this instance's changes and listens for the others'. Runs on the current
/// runtime until `cache` is dropped.
/// Whether `database_url` is PostgreSQL's (whose `LISTEN`/`NOTIFY` carries the channel
/// when there is no Redis).
pub fn is_postgres(database_url: &str) -> bool {
    database_url.starts_with("postgres://") || database_url.starts_with("postgresql://")
}

/// `client` is a [`RedisClient`] (a plain `redis::Client` converts); a Cluster client must
/// have been opened with a push sender (`sessions::open_redis_client_with_push`) whose
/// receiver is `pushes`.
pub fn spawn(client: impl Into<RedisClient>, channel: String, cache: &Arc<LivenessCache>) {
    spawn_with_pushes(client.into(), None, channel, cache);
}

/// Spawns the sync for `url` (`redis_url`), whatever its topology.
pub fn spawn_for_url(
    url: &str,
    ca_file: Option<&std::path::Path>,
    channel: String,
    cache: &Arc<LivenessCache>,
) -> anyhow::Result<()> {
    let (push, pushes) = tokio::sync::mpsc::unbounded_channel();
    let client = crate::sessions::open_redis_client_with_push(url, ca_file, Some(push))?;
    spawn_with_pushes(client, Some(pushes), channel, cache);
    Ok(())
}

fn spawn_with_pushes(
    client: RedisClient,
    pushes: Option<tokio::sync::mpsc::UnboundedReceiver<redis::PushInfo>>,
    channel: String,
    cache: &Arc<LivenessCache>,
) {
    // Our own messages come back to us: they carry this id so we can skip them.
    let instance = crate::crypto::tokens::random_token(16);
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel::<()>();
    cache.set_on_change(move || {
        let _ = tx.send(());
    });
    tokio::spawn(announce(
        client.clone(),
        channel.clone(),
        instance.clone(),
        rx,
    ));
    match (&client, pushes) {
        (RedisClient::Cluster(_), Some(pushes)) => {
            tokio::spawn(listen_cluster(
                client,
                pushes,
                channel,
                instance,
                Arc::downgrade(cache),
            ));
        }
        (RedisClient::Cluster(_), None) => {
            tracing::warn!("a Redis Cluster client without a push sender cannot listen");
        }
        _ => {
            tokio::spawn(listen(client, channel, instance, Arc::downgrade(cache)));
        }
    }
}

/// One announcement from a process that does not listen (the command line), made
/// synchronously before it exits.
pub fn announce_once(
    url: &str,
    ca_file: Option<&std::path::Path>,
    channel: &str,
) -> anyhow::Result<()> {
    let client = crate::sessions::open_redis_client(url, ca_file)?;
    let instance = format!("command-{}", crate::crypto::tokens::random_token(8));
    let channel = channel.to_owned();
    // A runtime of its own on a thread of its own: the caller may be inside another.
    let publish = move || -> anyhow::Result<()> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        runtime.block_on(async {
            tokio::time::timeout(ANNOUNCE_TIMEOUT, async {
                let mut conn = client.connect().await?;
                redis::cmd("PUBLISH")
                    .arg(channel)
                    .arg(instance)
                    .query_async::<i64>(&mut conn)
                    .await
            })
            .await
            .map_err(|_| anyhow::anyhow!("Redis did not answer in time"))??;
            Ok(())
        })
    };
    std::thread::spawn(publish)
        .join()
        .map_err(|_| anyhow::anyhow!("the announcement's thread panicked"))?
}

async fn announce(
    client: RedisClient,
    channel: String,
    instance: String,
    mut changes: tokio::sync::mpsc::UnboundedReceiver<()>,
) {
    let mut conn: Option<RedisConn> = None;
    // Ends when the cache (which holds the sender) is dropped.
    while changes.recv().await.is_some() {
        // A burst of changes is one announcement.
        while changes.try_recv().is_ok() {}
        // Once more on a new connection if the old one failed (its server gone, a
        // Cluster's node failed over): an announcement lost is a change the others see
        // only when their caches expire.
        for last_try in [false, true] {
            if conn.is_none() {
                conn = client.connect().await.ok();
            }
            let Some(c) = conn.as_mut() else {
                tracing::warn!("cannot announce a revocation: Redis is unavailable");
                break;
            };
            let sent: redis::RedisResult<i64> = redis::cmd("PUBLISH")
                .arg(&channel)
                .arg(&instance)
                .query_async(c)
                .await;
            match sent {
                Ok(_) => break,
                Err(e) => {
                    conn = None;
                    if last_try {
                        tracing::warn!(error = %e, "cannot announce a revocation");
                    }
                }
            }
        }
    }
}

async fn listen(
    client: RedisClient,
    channel: String,
    instance: String,
    cache: Weak<LivenessCache>,
) {
    loop {
        // With Sentinel, the master named now: after a failover the old master's
        // connection ends, and the loop subscribes at the new one.
        let master = client.master().await;
        if let Ok(master) = master
            && let Ok(mut pubsub) = master.get_async_pubsub().await
            && pubsub.subscribe(&channel).await.is_ok()
        {
            // What was announced while we were not listening is lost.
            match cache.upgrade() {
                Some(cache) => cache.forget_all(),
                None => return,
            }
            let mut messages = pubsub.on_message();
            while let Some(message) = messages.next().await {
                let Some(cache) = cache.upgrade() else { return };
                if message.get_payload_bytes() != instance.as_bytes() {
                    cache.forget_all();
                }
            }
            tracing::warn!("lost the Redis subscription for revocations; subscribing again");
        }
        match cache.upgrade() {
            Some(cache) => cache.forget_all(),
            None => return,
        }
        tokio::time::sleep(RESUBSCRIBE_DELAY).await;
    }
}

/// On a Cluster, a message published on any node reaches the subscribers of every node
/// (replicas too), so one subscription anywhere hears every instance.
///
/// The crate's cluster connection subscribes at the master serving the channel's slot and
/// moves the subscription only after something refreshes its slot map: a command that
/// meets a moved slot or a missing node. A connection that only listens sends none, so
/// when its node dies the crate repairs the connection to that address for ever and the
/// subscription is never moved to the promoted replica (redis 1.8.1,
/// `cluster_async::reconnect_loop`). Hence, whenever a node of the connection goes away (a
/// `Disconnection` push), a new connection subscribes afresh where the channel's slot is
/// served now: its new master, or while the failover is under way its replica (the crate
/// falls back within the shard; a replica takes `SUBSCRIBE`).
async fn listen_cluster(
    client: RedisClient,
    mut pushes: tokio::sync::mpsc::UnboundedReceiver<redis::PushInfo>,
    channel: String,
    instance: String,
    cache: Weak<LivenessCache>,
) {
    let mut last_subscribed: Option<tokio::time::Instant> = None;
    loop {
        // A node that keeps going away does not make us reconnect in a tight loop.
        if let Some(at) = last_subscribed {
            tokio::time::sleep_until(at + RESUBSCRIBE_DELAY).await;
        }
        // The connection must live as long as the subscription. The one it replaces was
        // dropped on the way round, and with it the crate's repairs of a node now gone.
        let Some(_conn) = subscribe_cluster(&client, &channel, &cache).await else {
            return;
        };
        last_subscribed = Some(tokio::time::Instant::now());
        // What was announced before we listened is lost.
        match cache.upgrade() {
            Some(cache) => cache.forget_all(),
            None => return,
        }
        loop {
            // Ends when the client (which holds the sender) is gone.
            let Some(push) = pushes.recv().await else {
                return;
            };
            let Some(cache) = cache.upgrade() else { return };
            match push.kind {
                redis::PushKind::Message => {
                    let from_us = redis::Msg::from_push_info(push)
                        .is_some_and(|m| m.get_payload_bytes() == instance.as_bytes());
                    if !from_us {
                        cache.forget_all();
                    }
                }
                // Subscribed (again): what was announced meanwhile is lost.
                redis::PushKind::Subscribe => cache.forget_all(),
                // A node went away, perhaps the one we listen on: the same until we
                // listen again, on a new connection.
                redis::PushKind::Disconnection => {
                    cache.forget_all();
                    tracing::info!("a Redis Cluster node went away; subscribing again");
                    break;
                }
                _ => {}
            }
        }
    }
}

/// A new cluster connection subscribed to `channel`, retried until it is; `None` once the
/// cache is gone.
async fn subscribe_cluster(
    client: &RedisClient,
    channel: &str,
    cache: &Weak<LivenessCache>,
) -> Option<redis::cluster_async::ClusterConnection> {
    loop {
        if let Ok(RedisConn::Cluster(mut conn)) = client.connect().await
            && conn.subscribe(channel).await.is_ok()
        {
            return Some(conn);
        }
        cache.upgrade()?;
        tokio::time::sleep(RESUBSCRIBE_DELAY).await;
    }
}
