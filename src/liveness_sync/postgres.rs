//! The liveness channel without Redis: PostgreSQL `LISTEN`/`NOTIFY`, so that instances
//! sharing one PostgreSQL database (and no Redis) forget a revoked token or a changed
//! client at once instead of after the cache's TTL.
//!
//! diesel has no asynchronous `LISTEN`, and nothing in the tree does (no tokio-postgres):
//! one dedicated thread per instance holds its own connection (not one of the pool's),
//! sends `pg_notify` when this instance changes something, and between announcements reads
//! the notifications libpq has received (`PgConnection::notifications_iter`, which does
//! not block) every [`POLL`]. Its cost is one non-blocking read every few milliseconds.

use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::sync::{Arc, Weak};
use std::time::Duration;

use diesel::{Connection, PgConnection, RunQueryDsl};

use crate::store::sql::liveness::LivenessCache;

/// How often received notifications are read: well under the 100 ms a revocation may take
/// to be seen elsewhere.
const POLL: Duration = Duration::from_millis(10);
/// How long to wait before listening again after the connection was lost.
const RELISTEN_DELAY: Duration = Duration::from_secs(1);

/// libpq parameters that turn a server that stopped answering into a lost connection
/// (and so a new `LISTEN`) instead of a listener that hears nothing. The operator's win.
fn with_network_timeouts(url: &str) -> String {
    let mut out = url.to_owned();
    for (name, value) in [
        ("connect_timeout", "3"),
        ("keepalives", "1"),
        ("keepalives_idle", "15"),
        ("tcp_user_timeout", "10000"),
    ] {
        if !url.contains(&format!("{name}=")) {
            out.push(if out.contains('?') { '&' } else { '?' });
            out.push_str(&format!("{name}={value}"));
        }
    }
    out
}

/// `LISTEN` takes an identifier, not a string: quoted, so the prefix keeps its case and
/// may hold any character (`pg_notify` takes the same name as text).
fn quoted(channel: &str) -> String {
    format!("\"{}\"", channel.replace('"', "\"\""))
}

/// Announces this instance's changes and listens for the others' over `database_url`
/// (PostgreSQL), on a thread of its own, until `cache` is dropped.
pub fn spawn(
    database_url: String,
    channel: String,
    cache: &Arc<LivenessCache>,
) -> std::io::Result<()> {
    let instance = crate::crypto::tokens::random_token(16);
    let (tx, rx) = std::sync::mpsc::channel::<()>();
    cache.set_on_change(move || {
        let _ = tx.send(());
    });
    let cache = Arc::downgrade(cache);
    std::thread::Builder::new()
        .name("liveness-listen".into())
        .spawn(move || {
            run(
                &with_network_timeouts(&database_url),
                &channel,
                &instance,
                &rx,
                &cache,
            )
        })?;
    Ok(())
}

/// One announcement from a process that does not listen (the command line).
pub fn announce_once(database_url: &str, channel: &str) -> anyhow::Result<()> {
    let mut conn = PgConnection::establish(&with_network_timeouts(database_url))?;
    let instance = format!("command-{}", crate::crypto::tokens::random_token(8));
    notify(&mut conn, channel, &instance)?;
    Ok(())
}

fn notify(conn: &mut PgConnection, channel: &str, instance: &str) -> diesel::QueryResult<usize> {
    use diesel::sql_types::Text;
    diesel::sql_query("SELECT pg_notify($1, $2)")
        .bind::<Text, _>(channel)
        .bind::<Text, _>(instance)
        .execute(conn)
}

/// What ended a listening connection.
enum Ended {
    /// The cache is gone: the instance stopped.
    Stopped,
    /// The connection failed: listen again.
    Lost,
}

fn run(
    url: &str,
    channel: &str,
    instance: &str,
    changes: &Receiver<()>,
    cache: &Weak<LivenessCache>,
) {
    loop {
        if let Ok(mut conn) = PgConnection::establish(url)
            && diesel::sql_query(format!("LISTEN {}", quoted(channel)))
                .execute(&mut conn)
                .is_ok()
        {
            // What was announced while we were not listening is lost.
            match cache.upgrade() {
                Some(cache) => cache.forget_all(),
                None => return,
            }
            if let Ended::Stopped = listen(&mut conn, channel, instance, changes, cache) {
                return;
            }
            tracing::warn!("lost the PostgreSQL LISTEN for revocations; listening again");
        }
        match cache.upgrade() {
            Some(cache) => cache.forget_all(),
            None => return,
        }
        std::thread::sleep(RELISTEN_DELAY);
    }
}

fn listen(
    conn: &mut PgConnection,
    channel: &str,
    instance: &str,
    changes: &Receiver<()>,
    cache: &Weak<LivenessCache>,
) -> Ended {
    loop {
        match changes.recv_timeout(POLL) {
            Ok(()) => {
                // A burst of changes is one announcement.
                while changes.try_recv().is_ok() {}
                if let Err(e) = notify(conn, channel, instance) {
                    tracing::warn!(error = %e, "cannot announce a revocation");
                    return Ended::Lost;
                }
            }
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => return Ended::Stopped,
        }
        let Some(cache) = cache.upgrade() else {
            return Ended::Stopped;
        };
        let mut forget = false;
        for notification in conn.notifications_iter() {
            match notification {
                Ok(n) => forget |= n.payload != instance,
                Err(_) => return Ended::Lost,
            }
        }
        if forget {
            cache.forget_all();
        }
    }
}
