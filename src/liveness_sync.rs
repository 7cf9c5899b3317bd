//! Keeps the instances' liveness caches (`store::sql::liveness`) in step over Redis
//! pub/sub: an instance that revokes something, or changes a user or a client, says so on
//! a channel, and every other instance forgets what it had cached at once, instead of
//! after the cache's TTL. A message names only its sender: a receiver forgets everything,
//! since such writes are rare and one read per live token and client is cheap.
//!
//! Losing Redis costs nothing but speed of propagation: until the subscription is back an
//! unannounced change is seen within the TTL, as without Redis; and since messages sent
//! while this instance was away are lost, it forgets everything whenever it (re)subscribes.

use std::sync::{Arc, Weak};
use std::time::Duration;

use futures_util::StreamExt;

use crate::store::sql::liveness::LivenessCache;

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
pub fn spawn(client: redis::Client, channel: String, cache: &Arc<LivenessCache>) {
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
    tokio::spawn(listen(client, channel, instance, Arc::downgrade(cache)));
}

/// One announcement from a process that does not listen (the command line), made
/// synchronously before it exits.
pub fn announce_once(
    url: &str,
    ca_file: Option<&std::path::Path>,
    channel: &str,
) -> anyhow::Result<()> {
    let client = crate::sessions::open_redis_client(url, ca_file)?;
    let mut conn = client.get_connection_with_timeout(ANNOUNCE_TIMEOUT)?;
    conn.set_write_timeout(Some(ANNOUNCE_TIMEOUT))?;
    conn.set_read_timeout(Some(ANNOUNCE_TIMEOUT))?;
    let instance = format!("command-{}", crate::crypto::tokens::random_token(8));
    redis::cmd("PUBLISH")
        .arg(channel)
        .arg(instance)
        .query::<i64>(&mut conn)?;
    Ok(())
}

async fn announce(
    client: redis::Client,
    channel: String,
    instance: String,
    mut changes: tokio::sync::mpsc::UnboundedReceiver<()>,
) {
    let mut conn = None;
    // Ends when the cache (which holds the sender) is dropped.
    while changes.recv().await.is_some() {
        // A burst of changes is one announcement.
        while changes.try_recv().is_ok() {}
        if conn.is_none() {
            conn = client.get_multiplexed_async_connection().await.ok();
        }
        let Some(c) = conn.as_mut() else {
            tracing::warn!("cannot announce a revocation: Redis is unavailable");
            continue;
        };
        let sent: redis::RedisResult<i64> = redis::cmd("PUBLISH")
            .arg(&channel)
            .arg(&instance)
            .query_async(c)
            .await;
        if let Err(e) = sent {
            tracing::warn!(error = %e, "cannot announce a revocation");
            conn = None;
        }
    }
}

async fn listen(
    client: redis::Client,
    channel: String,
    instance: String,
    cache: Weak<LivenessCache>,
) {
    loop {
        if let Ok(mut pubsub) = client.get_async_pubsub().await
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
