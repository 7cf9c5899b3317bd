//! The machine's PostgreSQL and Redis for tests: a fresh database or key prefix per test,
//! removed afterwards. Unreachable services skip their tests, unless
//! PORTCULLIS_TEST_REQUIRE_BACKENDS=1 (CI), which makes them fail instead.

use diesel::{Connection, RunQueryDsl};

pub fn postgres_admin_url() -> String {
    std::env::var("PORTCULLIS_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

pub fn redis_url() -> String {
    std::env::var("PORTCULLIS_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

/// CI requires every backend; scripts/test requires those it found reachable.
fn required(what: &str) -> bool {
    let flag = |name: &str| std::env::var(name).is_ok_and(|v| v == "1");
    flag("PORTCULLIS_TEST_REQUIRE_BACKENDS")
        || flag(&format!(
            "PORTCULLIS_TEST_REQUIRE_{}",
            what.to_ascii_uppercase().replace("POSTGRESQL", "POSTGRES")
        ))
}

fn unavailable(what: &str, error: impl std::fmt::Display) {
    assert!(
        !required(what),
        "{what} is required but not reachable: {error}"
    );
    eprintln!("SKIPPED: {what} is not reachable ({error})");
}

fn random_suffix() -> String {
    portcullis::crypto::tokens::random_uuid().replace('-', "")[..16].to_owned()
}

/// A PostgreSQL database of its own, dropped when this value is.
pub struct TempDatabase {
    pub url: String,
    name: String,
}

impl TempDatabase {
    pub fn create() -> Option<Self> {
        let admin = postgres_admin_url();
        let mut conn = match diesel::PgConnection::establish(&admin) {
            Ok(c) => c,
            Err(e) => {
                unavailable("PostgreSQL", e);
                return None;
            }
        };
        let name = format!("portcullis_test_{}", random_suffix());
        diesel::sql_query(format!("CREATE DATABASE {name}"))
            .execute(&mut conn)
            .unwrap();
        let base = admin.rsplit_once('/').map(|(b, _)| b.to_owned()).unwrap();
        Some(Self {
            url: format!("{base}/{name}"),
            name,
        })
    }
}

impl Drop for TempDatabase {
    fn drop(&mut self) {
        if let Ok(mut conn) = diesel::PgConnection::establish(&postgres_admin_url()) {
            let _ = diesel::sql_query(format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                self.name
            ))
            .execute(&mut conn);
        }
    }
}

/// A Redis key prefix of its own; its keys are deleted when this value is dropped.
pub struct TempRedis {
    pub url: String,
    pub prefix: String,
}

impl TempRedis {
    pub fn create() -> Option<Self> {
        let url = redis_url();
        let reachable = redis::Client::open(url.as_str())
            .and_then(|c| c.get_connection_with_timeout(std::time::Duration::from_secs(2)))
            .and_then(|mut c| redis::cmd("PING").query::<String>(&mut c));
        if let Err(e) = reachable {
            unavailable("Redis", e);
            return None;
        }
        Some(Self {
            url,
            prefix: format!("portcullis-test-{}:", random_suffix()),
        })
    }

    pub fn connection(&self) -> redis::Connection {
        redis::Client::open(self.url.as_str())
            .unwrap()
            .get_connection()
            .unwrap()
    }

    pub fn keys(&self) -> Vec<String> {
        redis::cmd("KEYS")
            .arg(format!("{}*", self.prefix))
            .query(&mut self.connection())
            .unwrap()
    }
}

impl Drop for TempRedis {
    fn drop(&mut self) {
        if let Ok(mut conn) =
            redis::Client::open(self.url.as_str()).and_then(|c| c.get_connection())
        {
            let keys: Vec<String> = redis::cmd("KEYS")
                .arg(format!("{}*", self.prefix))
                .query(&mut conn)
                .unwrap_or_default();
            for key in keys {
                let _ = redis::cmd("DEL").arg(key).query::<i64>(&mut conn);
            }
        }
    }
}
