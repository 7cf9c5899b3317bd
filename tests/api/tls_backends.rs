//! Redis and PostgreSQL over TLS, as managed services offer them: a throwaway CA made with
//! the `openssl` CLI signs a server certificate for 127.0.0.1, and private servers (a
//! TLS-only redis-server, a PostgreSQL cluster that refuses unencrypted connections) serve
//! it. Never the shared servers. Missing tools skip, unless
//! PORTCULLIS_TEST_REQUIRE_BACKENDS=1 (CI), which makes them fail instead.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use portcullis::config::Settings;
use portcullis::domain::ManualClock;
use portcullis::sessions::{RedisSessionStore, SessionStore};
use portcullis::store::sql::SqlStore;
use reqwest::StatusCode;
use tempfile::TempDir;

use crate::helpers::{Options, TEST_KEK, free_port, query, spawn_app_with};

use crate::faults::skip;

/// A CA, a server certificate it signed (for `localhost` and 127.0.0.1), and an unrelated
/// CA, as PEM files in `dir`.
pub(crate) struct Pki {
    pub(crate) dir: PathBuf,
}

impl Pki {
    pub(crate) fn create(dir: &Path) -> Option<Self> {
        let pki = Self {
            dir: dir.to_owned(),
        };
        let Ok(version) = Command::new("openssl").arg("version").output() else {
            skip("the openssl command is not installed");
            return None;
        };
        assert!(version.status.success());
        for ca in ["ca", "other-ca"] {
            pki.openssl(&[
                "req",
                "-x509",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:prime256v1",
                "-nodes",
                "-keyout",
                &format!("{ca}.key"),
                "-out",
                &format!("{ca}.pem"),
                "-days",
                "2",
                "-subj",
                &format!("/CN=Portcullis test {ca}"),
                "-addext",
                "basicConstraints=critical,CA:TRUE",
                "-addext",
                "keyUsage=critical,keyCertSign,cRLSign",
            ]);
        }
        pki.openssl(&[
            "req",
            "-new",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-keyout",
            "server.key",
            "-out",
            "server.csr",
            "-subj",
            "/CN=localhost",
        ]);
        std::fs::write(
            dir.join("server.ext"),
            "basicConstraints = CA:FALSE\n\
             keyUsage = critical, digitalSignature\n\
             extendedKeyUsage = serverAuth\n\
             subjectAltName = DNS:localhost, IP:127.0.0.1\n",
        )
        .unwrap();
        pki.openssl(&[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-CAserial",
            "ca.srl",
            "-days",
            "2",
            "-extfile",
            "server.ext",
            "-out",
            "server.pem",
        ]);
        // PostgreSQL refuses a key file others may read.
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(
            dir.join("server.key"),
            std::fs::Permissions::from_mode(0o600),
        )
        .unwrap();
        Some(pki)
    }

    fn openssl(&self, args: &[&str]) {
        let out = Command::new("openssl")
            .args(args)
            .current_dir(&self.dir)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "openssl {}: {}",
            args[0],
            String::from_utf8_lossy(&out.stderr)
        );
    }

    pub(crate) fn path(&self, name: &str) -> String {
        self.dir.join(name).display().to_string()
    }
}

/// A redis-server of its own that speaks TLS only (`--port 0`), with the test CA's
/// server certificate.
struct TlsRedis {
    port: u16,
    child: Child,
    pki: Pki,
    dir: TempDir,
}

impl TlsRedis {
    fn start() -> Option<Self> {
        let dir = TempDir::new().unwrap();
        let pki = Pki::create(dir.path())?;
        let port = free_port();
        let log = std::fs::File::create(dir.path().join("redis.log")).unwrap();
        let child = Command::new("redis-server")
            .args([
                "--port",
                "0",
                "--tls-port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
                "127.0.0.2",
                "--tls-cert-file",
                &pki.path("server.pem"),
                "--tls-key-file",
                &pki.path("server.key"),
                "--tls-ca-cert-file",
                &pki.path("ca.pem"),
                "--tls-auth-clients",
                "no",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn();
        let Ok(child) = child else {
            skip("redis-server is not installed");
            return None;
        };
        let mut redis = Self {
            port,
            child,
            pki,
            dir,
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Some(status) = redis.child.try_wait().unwrap() {
                let log =
                    std::fs::read_to_string(redis.dir.path().join("redis.log")).unwrap_or_default();
                if log.contains("tls") || log.contains("TLS") {
                    skip(&format!(
                        "this redis-server is built without TLS ({status}): {}",
                        log.trim()
                    ));
                    return None;
                }
                panic!("private TLS redis-server exited ({status}): {log}");
            }
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return Some(redis);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("private TLS redis-server did not start");
    }

    fn url(&self) -> String {
        format!("rediss://127.0.0.1:{}", self.port)
    }

    fn ca(&self) -> PathBuf {
        self.pki.dir.join("ca.pem")
    }
}

impl Drop for TlsRedis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn refused(result: Result<RedisSessionStore, portcullis::sessions::SessionError>) -> String {
    match result {
        Ok(_) => panic!("connected, but should have been refused"),
        Err(e) => e.to_string(),
    }
}

#[tokio::test]
async fn the_redis_session_store_works_over_tls_and_verifies_the_server() {
    let Some(redis) = TlsRedis::start() else {
        return;
    };
    let prefix = "tls-test:";
    let ca = redis.ca();
    let store = RedisSessionStore::connect_with_ca(&redis.url(), prefix, Some(&ca))
        .await
        .unwrap();
    store.ping().await.unwrap();
    store
        .put("a", "1".into(), Duration::from_secs(60))
        .await
        .unwrap();
    assert_eq!(store.get("a").await.unwrap().as_deref(), Some("1"));
    assert_eq!(store.take("a").await.unwrap().as_deref(), Some("1"));
    assert_eq!(store.take("a").await.unwrap(), None, "take is one-time");
    assert_eq!(store.get("a").await.unwrap(), None);
    assert_eq!(store.add("n", 2, Duration::from_secs(60)).await.unwrap(), 2);
    store.delete("n").await.unwrap();
    assert_eq!(store.get("n").await.unwrap(), None);

    // The server's certificate is verified: the system's roots do not know the test CA,
    // another CA is not the one that signed it, and 127.0.0.2 is not a name it is for.
    let error = refused(RedisSessionStore::connect(&redis.url(), prefix).await);
    assert!(error.contains("UnknownIssuer"), "{error}");
    let other = redis.pki.dir.join("other-ca.pem");
    let error =
        refused(RedisSessionStore::connect_with_ca(&redis.url(), prefix, Some(&other)).await);
    assert!(error.contains("UnknownIssuer"), "{error}");
    let wrong_name = format!("rediss://127.0.0.2:{}", redis.port);
    let error = refused(RedisSessionStore::connect_with_ca(&wrong_name, prefix, Some(&ca)).await);
    assert!(error.contains("not valid for name"), "{error}");
    // Skipping verification is not built in.
    let insecure = format!("{}/#insecure", redis.url());
    let error = refused(RedisSessionStore::connect(&insecure, prefix).await);
    assert!(error.contains("insecure"), "{error}");
    // A CA file that is not one is named as such.
    let not_pem = redis.pki.dir.join("server.ext");
    let error =
        refused(RedisSessionStore::connect_with_ca(&redis.url(), prefix, Some(&not_pem)).await);
    assert!(error.contains("redis_ca_file"), "{error}");
    // Plain redis:// to the TLS port gets nowhere.
    let plain = format!("redis://127.0.0.1:{}", redis.port);
    refused(RedisSessionStore::connect(&plain, prefix).await);
}

#[tokio::test]
async fn a_provider_runs_on_redis_over_tls_with_redis_ca_file() {
    let Some(redis) = TlsRedis::start() else {
        return;
    };
    let app = spawn_app_with(Options {
        env: vec![
            ("REDIS_URL", redis.url()),
            ("REDIS_PREFIX", "tls-app:".into()),
            ("REDIS_CA_FILE", redis.ca().display().to_string()),
        ],
        ..Default::default()
    })
    .await;
    let response = crate::helpers::get(app.url("/readyz")).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    // A sign-in keeps its browser session and pending request in that Redis.
    app.add_user("alice").await;
    let client = app.add_client(false);
    let browser = app.browser();
    let (url, _pkce) = app.authorize_url(&client, &[]);
    assert!(query(&browser.sign_in(&url, "alice").await, "code").is_some());
    app.stop().await;

    // Without the CA the provider does not start: the system's roots do not know it.
    let dir = TempDir::new().unwrap();
    let env = [
        ("PORTCULLIS_REDIS_URL", redis.url()),
        (
            "PORTCULLIS_DATABASE_URL",
            format!("sqlite://{}", dir.path().join("p.db").display()),
        ),
        ("PORTCULLIS_KEY_ENCRYPTION_KEY", TEST_KEK.to_owned()),
    ];
    let settings = Settings::from_sources(None, |k| {
        env.iter().find(|(n, _)| *n == k).map(|(_, v)| v.clone())
    })
    .unwrap();
    let clock = Arc::new(ManualClock::starting_now());
    let error = match portcullis::startup::build_state_with_clock(settings, clock).await {
        Ok(_) => panic!("started against a Redis whose certificate it cannot verify"),
        Err(e) => format!("{e:#}"),
    };
    assert!(error.contains("redis_url"), "{error}");
}

/// A private PostgreSQL cluster that only speaks TLS (certificate from `Pki`).
struct TlsPostgres {
    pg: crate::faults::PrivatePostgres,
}

impl TlsPostgres {
    fn start() -> Option<(Self, Pki)> {
        let pg = crate::faults::PrivatePostgres::init()?;
        let pki_dir = pg.dir.path().join("pki");
        std::fs::create_dir(&pki_dir).unwrap();
        let pki = Pki::create(&pki_dir)?;
        pg.give_to_postgres(&pki_dir);
        std::fs::write(
            Path::new(&pg.data()).join("pg_hba.conf"),
            "local all all trust\n\
             hostssl all all 127.0.0.1/32 trust\n\
             hostnossl all all 127.0.0.1/32 reject\n",
        )
        .unwrap();
        pg.start_with(&format!(
            "-c ssl=on -c ssl_cert_file={} -c ssl_key_file={}",
            pki.path("server.pem"),
            pki.path("server.key"),
        ));
        Some((Self { pg }, pki))
    }

    fn url(&self, params: &str) -> String {
        format!(
            "postgres://postgres@127.0.0.1:{}/postgres?{params}",
            self.pg.port
        )
    }
}

fn open_error(url: &str) -> String {
    match SqlStore::open(url) {
        Ok(_) => panic!("opened {url}, but should have been refused"),
        Err(e) => format!("{e:#}"),
    }
}

#[tokio::test]
async fn postgres_sslmode_and_sslrootcert_in_database_url_reach_libpq() {
    let Some((pg, pki)) = TlsPostgres::start() else {
        return;
    };
    let verified = pg.url(&format!(
        "sslmode=verify-full&sslrootcert={}",
        pki.path("ca.pem")
    ));
    let disabled = pg.url("sslmode=disable");
    let other_ca = pg.url(&format!(
        "sslmode=verify-full&sslrootcert={}",
        pki.path("other-ca.pem")
    ));
    let url = verified.clone();
    tokio::task::spawn_blocking(move || {
        // The server refuses unencrypted connections, and sslmode=disable asked for one.
        let error = open_error(&disabled);
        assert!(error.contains("no encryption"), "{error}");
        // Verified against the CA given, which is not the one that signed the server's.
        let error = open_error(&other_ca);
        assert!(error.contains("certificate verify failed"), "{error}");
        SqlStore::open(&url).unwrap();
    })
    .await
    .unwrap();

    // A whole provider on it.
    let app = spawn_app_with(Options {
        database_url: Some(verified),
        ..Default::default()
    })
    .await;
    let response = crate::helpers::get(app.url("/readyz")).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    app.stop().await;
}
