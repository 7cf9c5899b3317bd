//! The diesel implementation of the store traits, over SQLite or PostgreSQL chosen by the
//! URL scheme (one `MultiConnection`, one migration folder per backend).
//!
//! A lookup by a primary or unique key reads with `get_result`, not `first`: `first`
//! binds its `LIMIT 1` as a parameter, and SQLite reads a bound LIMIT while planning
//! (`sqlite3ExprIsInteger`), which marks the cached statement to be compiled again at
//! every new binding: every run of it was parsed and planned anew (8 % of a refresh's CPU).

mod audit;
mod clients;
mod events;
mod factors;
mod grants;
mod groups;
mod keys;
mod links;
pub mod liveness;
mod mail;
mod sessions;
mod signups;
mod tokens;
mod upstream;
mod users;

use std::cell::Cell;
use std::ops::{Deref, DerefMut};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel::r2d2::{self, CustomizeConnection, ManageConnection, Pool, PooledConnection};
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};

use super::{StoreError, StoreResult};

pub const SQLITE_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/sqlite");
pub const POSTGRES_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/postgres");

#[derive(diesel::MultiConnection)]
pub enum AnyConnection {
    Postgresql(diesel::PgConnection),
    Sqlite(diesel::SqliteConnection),
}

fn is_postgres(url: &str) -> bool {
    url.starts_with("postgres://") || url.starts_with("postgresql://")
}

/// Connects by URL scheme (the derived `establish` tries each backend and hides errors).
fn connect(url: &str) -> ConnectionResult<AnyConnection> {
    if is_postgres(url) {
        diesel::PgConnection::establish(&with_network_timeouts(url)).map(AnyConnection::Postgresql)
    } else {
        let path = url.strip_prefix("sqlite://").unwrap_or(url);
        diesel::SqliteConnection::establish(path).map(AnyConnection::Sqlite)
    }
}

/// libpq parameters that turn a server that stopped answering (rather than refusing)
/// into a prompt error instead of a request hanging for minutes. Values the operator put
/// in the URL win.
const PG_NETWORK_DEFAULTS: [(&str, &str); 4] = [
    ("connect_timeout", "3"),
    ("keepalives", "1"),
    ("keepalives_idle", "15"),
    ("tcp_user_timeout", "10000"),
];

fn with_network_timeouts(url: &str) -> String {
    let mut out = url.to_owned();
    for (name, value) in PG_NETWORK_DEFAULTS {
        if !url.contains(&format!("{name}=")) {
            out.push(if out.contains('?') { '&' } else { '?' });
            out.push_str(&format!("{name}={value}"));
        }
    }
    out
}

thread_local! {
    /// Set when a query on this thread found its server gone (`From<diesel::result::Error>`),
    /// read when the connection it ran on goes back to the pool (`Conn::drop`). Store calls
    /// are synchronous, so the query and the return happen on the same thread.
    static SERVER_GONE: Cell<bool> = const { Cell::new(false) };
}

/// Connections are counted in generations: a server found gone retires every connection
/// opened before (`PoolManager`). How often that may happen is bounded here.
struct PoolGeneration {
    current: AtomicU64,
    /// The origin of `quiet_until_ms` (an `Instant` cannot be stored atomically).
    started: Instant,
    /// Milliseconds after `started` before which a lost server retires only the
    /// connection that found it, not the whole pool.
    quiet_until_ms: AtomicU64,
}

/// At most one retirement of the whole pool this often. A restart or fail-over ends
/// every connection at once, and one retirement clears them all; any connection opened
/// after it that still meets a lost server fails once and is retired alone. But a
/// database that stays read-only (an operator pointed us at a replica) fails every write
/// with `ReadOnlyTransaction`, which counts as a lost server: without this bound each
/// failed write would throw away and reopen all `POOL_SIZE` connections, reads included,
/// and the reconnecting would load the database that is already failing us.
const POOL_RETIREMENT_INTERVAL: Duration = Duration::from_secs(1);

impl PoolGeneration {
    fn new() -> Self {
        Self {
            current: AtomicU64::new(0),
            started: Instant::now(),
            quiet_until_ms: AtomicU64::new(0),
        }
    }

    fn current(&self) -> u64 {
        self.current.load(Ordering::Acquire)
    }

    /// A connection of generation `of` found its server gone at `now`: retires every
    /// connection of that generation and older, unless that is done already (the same
    /// loss, met by another connection) or was done less than `POOL_RETIREMENT_INTERVAL`
    /// ago. Returns whether it retired them.
    fn server_lost(&self, of: u64, now: Instant) -> bool {
        if of < self.current() {
            return false;
        }
        let now_ms = millis(now.saturating_duration_since(self.started));
        let quiet_until = self.quiet_until_ms.load(Ordering::Acquire);
        if now_ms < quiet_until {
            return false;
        }
        let next = now_ms.saturating_add(millis(POOL_RETIREMENT_INTERVAL));
        // Of threads meeting the loss together, one retires the pool.
        if self
            .quiet_until_ms
            .compare_exchange(quiet_until, next, Ordering::AcqRel, Ordering::Acquire)
            .is_err()
        {
            return false;
        }
        self.current.fetch_max(of + 1, Ordering::AcqRel) <= of
    }
}

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

/// A pooled connection and the pool generation it was opened in.
pub struct TrackedConnection {
    conn: AnyConnection,
    generation: u64,
    /// A query on it found the server gone: it must not go back into the pool.
    lost: bool,
}

/// Opens connections and decides which may return to the pool.
///
/// Connections are not pinged before use (that doubled the hot paths' round trips), and
/// for PostgreSQL diesel's `is_broken` only looks at the transaction state, so a dead
/// connection would go back into the pool and fail one request after another until the
/// idle timeout. Instead, a query that finds its server gone marks its connection lost,
/// and bumps the generation: every connection opened before it is retired too, at its
/// next checkout, since a restart or fail-over ends them all. A request meets a dead
/// connection at most once per pool, not once per connection per request. (The bump is
/// rate-limited: `POOL_RETIREMENT_INTERVAL`.)
pub struct PoolManager {
    url: String,
    generation: Arc<PoolGeneration>,
}

impl ManageConnection for PoolManager {
    type Connection = TrackedConnection;
    type Error = r2d2::Error;

    fn connect(&self) -> Result<TrackedConnection, r2d2::Error> {
        let generation = self.generation.current();
        connect(&self.url)
            .map(|conn| TrackedConnection {
                conn,
                generation,
                lost: false,
            })
            .map_err(r2d2::Error::ConnectionError)
    }

    fn is_valid(&self, conn: &mut TrackedConnection) -> Result<(), r2d2::Error> {
        conn.conn
            .batch_execute("SELECT 1")
            .map_err(r2d2::Error::QueryError)
    }

    fn has_broken(&self, conn: &mut TrackedConnection) -> bool {
        use diesel::r2d2::R2D2Connection;
        // A connection dropped mid-transaction by a panicking thread must not return to
        // the pool with the transaction open.
        std::thread::panicking()
            || conn.lost
            || conn.is_older_than(&self.generation)
            || conn.conn.is_broken()
    }
}

impl TrackedConnection {
    fn is_older_than(&self, generation: &PoolGeneration) -> bool {
        self.generation < generation.current()
    }
}

/// A connection checked out of the pool for one store call.
pub(crate) struct Conn<'a> {
    pooled: PooledConnection<PoolManager>,
    /// The pool's generation (`PoolManager`).
    generation: &'a PoolGeneration,
}

impl Deref for Conn<'_> {
    type Target = AnyConnection;
    fn deref(&self) -> &AnyConnection {
        &self.pooled.conn
    }
}

impl DerefMut for Conn<'_> {
    fn deref_mut(&mut self) -> &mut AnyConnection {
        &mut self.pooled.conn
    }
}

impl Drop for Conn<'_> {
    fn drop(&mut self) {
        if SERVER_GONE.replace(false) {
            // This connection retires, always; every one opened before it too, unless
            // that was done moments ago (`POOL_RETIREMENT_INTERVAL`).
            self.pooled.lost = true;
            self.generation
                .server_lost(self.pooled.generation, Instant::now());
        }
    }
}

/// Per-connection settings. SQLite: wait on locks instead of failing, enforce foreign
/// keys. PostgreSQL: no statement may hold a request (and a pool slot) for long.
#[derive(Debug)]
struct ConnectionSetup;

impl CustomizeConnection<TrackedConnection, r2d2::Error> for ConnectionSetup {
    fn on_acquire(&self, conn: &mut TrackedConnection) -> Result<(), r2d2::Error> {
        let conn = &mut conn.conn;
        let setup = match conn {
            AnyConnection::Sqlite(_) => {
                // 1 MiB of page cache per connection (SQLite's default is 2 MiB, times 16
                // connections): the file's pages stay in the OS cache either way.
                "PRAGMA busy_timeout = 5000; PRAGMA foreign_keys = ON; PRAGMA synchronous = NORMAL; PRAGMA cache_size = -1024;"
            }
            AnyConnection::Postgresql(_) => "SET statement_timeout = 10000",
        };
        conn.batch_execute(setup).map_err(r2d2::Error::QueryError)
    }
}

const POOL_SIZE: u32 = 16;

pub struct SqlStore {
    pool: Pool<PoolManager>,
    generation: Arc<PoolGeneration>,
    /// Token, grant and user liveness, and client metadata (`find_client`).
    liveness: Arc<liveness::LivenessCache>,
}

impl SqlStore {
    /// Opens the database (creating a SQLite file and its folder if needed) and applies
    /// pending migrations.
    pub fn open(url: &str) -> anyhow::Result<Self> {
        let store = Self::connect(url)?;
        store.migrate()?;
        Ok(store)
    }

    /// For a command that runs and exits (the CLI): no connection is ever opened in the
    /// background. A pool that keeps one idle connection replaces the one a command took
    /// on a worker thread, and a worker inside libpq while the process exits (and its
    /// atexit handlers tear libpq's TLS state down) crashes it.
    pub fn open_for_command(url: &str) -> anyhow::Result<Self> {
        let store = Self::connect_with(url, 0)?;
        store.migrate()?;
        Ok(store)
    }

    /// Opens the database without touching its schema.
    pub fn connect(url: &str) -> anyhow::Result<Self> {
        Self::connect_with(url, 1)
    }

    fn connect_with(url: &str, min_idle: u32) -> anyhow::Result<Self> {
        let memory = url == "sqlite://:memory:";
        if !is_postgres(url) && !memory {
            let path = url.strip_prefix("sqlite://").unwrap_or(url);
            if let Some(dir) = Path::new(path)
                .parent()
                .filter(|d| !d.as_os_str().is_empty())
            {
                std::fs::create_dir_all(dir)
                    .map_err(|e| anyhow::anyhow!("cannot create {}: {e}", dir.display()))?;
            }
            // WAL once, before the pool exists: setting it per connection races.
            let mut conn = connect(url)?;
            conn.batch_execute("PRAGMA busy_timeout = 5000; PRAGMA journal_mode = WAL;")?;
        }
        let generation = Arc::new(PoolGeneration::new());
        let pool = Pool::builder()
            // An in-memory SQLite database exists per connection: keep exactly one.
            .max_size(if memory { 1 } else { POOL_SIZE })
            .min_idle(Some(min_idle))
            // A request waits this long for a connection before failing with 503
            // (r2d2's default is 30 s of silent retries).
            .connection_timeout(Duration::from_secs(3))
            // No `SELECT 1` before every use (r2d2's default): that doubled the round trips
            // of the hot paths (userinfo takes a connection twice). A connection that has
            // gone bad fails its one query, is marked broken (`has_broken`) and replaced;
            // idle ones are closed before a server or proxy would drop them.
            .test_on_check_out(false)
            .idle_timeout(Some(Duration::from_secs(300)))
            .connection_customizer(Box::new(ConnectionSetup))
            .build(PoolManager {
                url: url.to_owned(),
                generation: generation.clone(),
            })
            .map_err(|e| anyhow::anyhow!("cannot connect to the database: {e}"))?;
        Ok(Self {
            pool,
            generation,
            liveness: Arc::default(),
        })
    }

    /// Applies pending migrations; returns the names applied.
    pub fn migrate(&self) -> anyhow::Result<Vec<String>> {
        let mut conn = self.conn()?;
        let applied = match &mut *conn {
            AnyConnection::Postgresql(c) => {
                // Instances starting together must not migrate at the same time: a
                // session-level advisory lock serialises them.
                c.batch_execute("SELECT pg_advisory_lock(72616161)")?;
                let result = c
                    .run_pending_migrations(POSTGRES_MIGRATIONS)
                    .map(|v| v.iter().map(ToString::to_string).collect::<Vec<_>>())
                    .map_err(|e| anyhow::anyhow!("migration failed: {e}"));
                c.batch_execute("SELECT pg_advisory_unlock(72616161)")?;
                result?
            }
            AnyConnection::Sqlite(c) => c
                .run_pending_migrations(SQLITE_MIGRATIONS)
                .map_err(|e| anyhow::anyhow!("migration failed: {e}"))?
                .iter()
                .map(ToString::to_string)
                .collect(),
        };
        // What SQL could not do in the migration of usernames (nothing, once done).
        users::settle_username_keys(&mut conn)?;
        Ok(applied)
    }

    /// The answers of userinfo's and introspection's liveness checks and the clients
    /// read, for whoever tells this instance about other instances' changes (and is told
    /// of this one's).
    pub fn liveness_cache(&self) -> Arc<liveness::LivenessCache> {
        self.liveness.clone()
    }

    /// A write that may have ended tokens or grants, or changed a user or a client, has
    /// committed.
    fn liveness_changed(&self) {
        self.liveness.changed();
    }

    fn conn(&self) -> StoreResult<Conn<'_>> {
        if crate::memory_only::io_refused() {
            return Err(StoreError::Unavailable("not in memory".into()));
        }
        SERVER_GONE.set(false);
        // Idle connections opened before the server was last found gone are retired here
        // (dropped back into the pool, which discards them) instead of failing a request.
        for _ in 0..=POOL_SIZE {
            let pooled = self
                .pool
                .get()
                .map_err(|e| StoreError::Unavailable(e.to_string()))?;
            if !pooled.is_older_than(&self.generation) {
                return Ok(Conn {
                    pooled,
                    generation: &self.generation,
                });
            }
        }
        Err(StoreError::Unavailable(
            "no live database connection".into(),
        ))
    }
}

impl From<diesel::result::Error> for StoreError {
    fn from(e: diesel::result::Error) -> Self {
        use diesel::result::{DatabaseErrorKind, Error};
        match e {
            Error::DatabaseError(DatabaseErrorKind::UniqueViolation, _) => StoreError::Conflict,
            // The client or user a write refers to was removed meanwhile.
            Error::DatabaseError(DatabaseErrorKind::ForeignKeyViolation, _) => StoreError::Gone,
            // A pooled connection whose server went away (connections are not tested
            // before use): an outage, and the connection is replaced (`has_broken`).
            // A fail-over leaves the connection on a server that is now read-only: as dead
            // for writes as a closed one.
            Error::DatabaseError(
                DatabaseErrorKind::ClosedConnection
                | DatabaseErrorKind::UnableToSendCommand
                | DatabaseErrorKind::ReadOnlyTransaction,
                info,
            ) => {
                SERVER_GONE.set(true);
                StoreError::Unavailable(info.message().to_owned())
            }
            // libpq reports some losses as unclassified errors; SQLite a lock held past its
            // wait, PostgreSQL a statement past its timeout: outages, not bugs, so they map
            // to 503 like a failed connection (but only a lost server retires connections).
            Error::DatabaseError(DatabaseErrorKind::Unknown, info)
                if is_connection_loss(info.message()) =>
            {
                if !is_busy(info.message()) {
                    SERVER_GONE.set(true);
                }
                StoreError::Unavailable(info.message().to_owned())
            }
            other => StoreError::Internal(other.to_string()),
        }
    }
}

fn is_connection_loss(message: &str) -> bool {
    let m = message.to_ascii_lowercase();
    [
        "connection",
        "terminating",
        "shutting down",
        "server closed",
        "could not receive",
        "could not send",
        "database is locked",
        "read-only transaction",
        "statement timeout",
    ]
    .iter()
    .any(|needle| m.contains(needle))
}

/// The server is there but busy: its connections are sound.
fn is_busy(message: &str) -> bool {
    let m = message.to_ascii_lowercase();
    m.contains("database is locked") || m.contains("statement timeout")
}

impl super::Store for SqlStore {
    fn ping(&self) -> StoreResult<()> {
        self.conn()?
            .batch_execute("SELECT 1")
            .map_err(StoreError::from)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What PostgreSQL answers a write on a server that is read-only (a replica, or a
    /// primary demoted by a fail-over): SQLSTATE 25006, which diesel classifies.
    fn read_only_error() -> diesel::result::Error {
        diesel::result::Error::DatabaseError(
            diesel::result::DatabaseErrorKind::ReadOnlyTransaction,
            Box::new(String::from(
                "cannot execute INSERT in a read-only transaction",
            )),
        )
    }

    #[test]
    fn a_lost_server_retires_the_pool_at_most_once_a_second() {
        let generation = PoolGeneration::new();
        let at = |ms| generation.started + Duration::from_millis(ms);
        assert!(generation.server_lost(0, at(10)));
        // Another connection of the retired generation: the same loss.
        assert!(!generation.server_lost(0, at(20)));
        // A connection opened since, failing again within the second: alone.
        assert!(!generation.server_lost(1, at(500)));
        assert!(!generation.server_lost(1, at(1009)));
        assert_eq!(generation.current(), 1);
        assert!(generation.server_lost(1, at(1010)));
        assert_eq!(generation.current(), 2);
        assert!(!generation.server_lost(1, at(5000)), "already retired");
        assert!(generation.server_lost(2, at(5000)));
        assert_eq!(generation.current(), 3);
    }

    #[test]
    fn writes_failing_on_a_read_only_database_retire_their_own_connections_not_the_pool_each_time()
    {
        let dir = tempfile::TempDir::new().unwrap();
        let url = format!("sqlite://{}/replica.db", dir.path().display());
        let store = SqlStore::connect_with(&url, 0).unwrap();
        for _ in 0..2 {
            let idle = store.conn().unwrap();
            let failing = store.conn().unwrap();
            let _ = StoreError::from(read_only_error());
            drop(failing);
            drop(idle);
        }
        // The first failure retired both; the second only its own: the idle connection
        // serves on.
        assert_eq!(store.generation.current(), 1);
        assert_eq!(store.pool.state().connections, 1);
    }

    #[test]
    fn both_backends_have_the_same_migrations() {
        let names = |dir: &str| {
            let mut v: Vec<String> = std::fs::read_dir(dir)
                .unwrap()
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect();
            v.sort();
            v
        };
        assert_eq!(names("migrations/sqlite"), names("migrations/postgres"));
    }

    /// Diesel's version is the folder name up to its first `_`, dashes dropped: two
    /// folders with one version would run one migration and record the other as done.
    #[test]
    fn every_migration_has_a_version_of_its_own() {
        for dir in ["migrations/sqlite", "migrations/postgres"] {
            let mut versions = std::collections::HashMap::new();
            for entry in std::fs::read_dir(dir).unwrap() {
                let name = entry.unwrap().file_name().to_string_lossy().into_owned();
                let version = name.split('_').next().unwrap().replace('-', "");
                if let Some(other) = versions.insert(version, name.clone()) {
                    panic!("{dir}: {name} and {other} share a version");
                }
            }
        }
    }
}
