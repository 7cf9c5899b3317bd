//! Backends failing under a running provider: private redis-server and PostgreSQL
//! instances that each test starts and stops itself (never the shared ones).
//! While a backend is away: 503 (error page or `temporarily_unavailable`), `/readyz` not
//! ready, nothing half-written; when it returns, service resumes by itself.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use tempfile::TempDir;

use crate::helpers::{
    Browser, Options, Outcome, TestApp, TestClient, free_port, query, spawn_app_with,
};

fn required() -> bool {
    std::env::var("PORTCULLIS_TEST_REQUIRE_BACKENDS").is_ok_and(|v| v == "1")
}

/// A test that cannot run here says so, and fails instead where backends are required.
pub(crate) fn skip(why: &str) {
    assert!(!required(), "cannot run: {why}");
    eprintln!("SKIPPED: {why}");
}

/// A `redis-server` of one test's own, without persistence: `stop` then `resume` brings
/// it back empty on the same port (also `store_loss`).
pub(crate) struct PrivateRedis {
    port: u16,
    child: Option<Child>,
}

impl PrivateRedis {
    pub(crate) fn start() -> Option<Self> {
        let mut redis = Self {
            port: free_port(),
            child: None,
        };
        redis.resume().then_some(redis)
    }

    pub(crate) fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Starts (again) on the same port.
    pub(crate) fn resume(&mut self) -> bool {
        let child = Command::new("redis-server")
            .args([
                "--port",
                &self.port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn();
        let Ok(child) = child else {
            skip("redis-server is not installed");
            return false;
        };
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("private redis-server did not start");
    }

    /// Kills it (SIGKILL: what it held is gone).
    pub(crate) fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for PrivateRedis {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A throwaway PostgreSQL cluster made with initdb and run with pg_ctl.
pub(crate) struct PrivatePostgres {
    bin: PathBuf,
    pub(crate) dir: TempDir,
    pub(crate) port: u16,
}

fn pg_bin_dir() -> Option<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
        .filter(|d| d.join("initdb").exists())
        .collect();
    dirs.sort();
    dirs.pop()
}

pub(crate) fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

impl PrivatePostgres {
    /// Runs a PostgreSQL tool, as the `postgres` user when we are root (initdb refuses root).
    fn tool(&self, name: &str, args: &[&str]) -> std::process::Output {
        let program = self.bin.join(name);
        let mut command = if is_root() {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(&program);
            c
        } else {
            Command::new(&program)
        };
        command.args(args).stdin(Stdio::null()).output().unwrap()
    }

    pub(crate) fn data(&self) -> String {
        self.dir.path().join("data").display().to_string()
    }

    /// A new cluster, initialised but not running (callers may configure it first).
    pub(crate) fn init() -> Option<Self> {
        let Some(bin) = pg_bin_dir() else {
            skip("PostgreSQL server binaries (initdb, pg_ctl) are not installed");
            return None;
        };
        let dir = TempDir::new().unwrap();
        let pg = Self {
            bin,
            dir,
            port: free_port(),
        };
        pg.give_to_postgres(pg.dir.path());
        let data = pg.data();
        let out = pg.tool(
            "initdb",
            &["-D", &data, "-A", "trust", "-U", "postgres", "--no-sync"],
        );
        assert!(
            out.status.success(),
            "initdb: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Some(pg)
    }

    fn start() -> Option<Self> {
        let pg = Self::init()?;
        pg.resume();
        Some(pg)
    }

    /// Files the server must read (certificates, keys) belong to it when we are root.
    pub(crate) fn give_to_postgres(&self, path: &Path) {
        if is_root() {
            let status = Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(path)
                .status()
                .unwrap();
            assert!(status.success());
        }
    }

    fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    fn resume(&self) {
        self.start_with("");
    }

    /// Starts the server with `options` added to ours (`-c name=value ...`).
    pub(crate) fn start_with(&self, options: &str) {
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off {options}",
            self.port,
            self.dir.path().display()
        );
        let log = self.dir.path().join("log").display().to_string();
        let out = self.tool(
            "pg_ctl",
            &[
                "-D",
                &self.data(),
                "-o",
                &options,
                "-l",
                &log,
                "-w",
                "start",
            ],
        );
        assert!(
            out.status.success(),
            "pg_ctl start: {} {}",
            String::from_utf8_lossy(&out.stderr),
            std::fs::read_to_string(&log).unwrap_or_default()
        );
    }

    fn stop(&self) {
        let out = self.tool("pg_ctl", &["-D", &self.data(), "-m", "fast", "-w", "stop"]);
        assert!(
            out.status.success(),
            "pg_ctl stop: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

impl Drop for PrivatePostgres {
    fn drop(&mut self) {
        if Path::new(&self.data()).join("postmaster.pid").exists() {
            let _ = self.tool(
                "pg_ctl",
                &["-D", &self.data(), "-m", "immediate", "-w", "stop"],
            );
        }
    }
}

async fn ready(app: &TestApp) -> (StatusCode, serde_json::Value) {
    let response = crate::helpers::get(app.url("/readyz")).await.unwrap();
    (response.status(), response.json().await.unwrap())
}

async fn wait_until_ready(app: &TestApp) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if ready(app).await.0 == StatusCode::OK {
            return;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    panic!("the provider did not become ready again");
}

async fn metric(app: &TestApp, needle: &str) -> bool {
    let text = app.metrics_text().await;
    text.lines()
        .any(|l| l.contains(needle) && !l.ends_with(" 0"))
}

#[tokio::test]
async fn redis_outage_gives_503s_and_not_ready_then_service_resumes() {
    let Some(mut redis) = PrivateRedis::start() else {
        return;
    };
    let app = spawn_app_with(Options {
        env: vec![
            ("REDIS_URL", redis.url()),
            ("REDIS_PREFIX", "fault:".into()),
        ],
        ..Default::default()
    })
    .await;
    app.add_user("alice").await;
    let client = app.add_client(false);
    let browser = app.browser();
    let (url, pkce) = app.authorize_url(&client, &[]);
    let code = query(&browser.sign_in(&url, "alice").await, "code").unwrap();

    redis.stop();
    let (url, _) = app.authorize_url(&client, &[]);
    let (_, status, html) = browser.open(&url).await.page();
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(html.contains("temporarily_unavailable"));
    let (status, body) = ready(&app).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(body["sessions"], false);
    assert_eq!(body["database"], true);
    // What does not need Redis keeps working.
    assert_eq!(
        app.redeem(&client, &code, Some(&pkce.verifier))
            .await
            .status(),
        200
    );
    assert!(
        metric(
            &app,
            "portcullis_backend_errors_total{backend=\"sessions\"}"
        )
        .await
    );

    assert!(redis.resume());
    wait_until_ready(&app).await;
    // The sessions died with that Redis (it kept nothing on disk): sign in again.
    let (url, _) = app.authorize_url(&client, &[]);
    let callback = browser.sign_in(&url, "alice").await;
    assert!(query(&callback, "code").is_some());
}

#[tokio::test]
async fn postgres_outage_gives_503s_and_not_ready_writes_nothing_and_service_resumes() {
    let Some(pg) = PrivatePostgres::start() else {
        return;
    };
    let app = spawn_app_with(Options {
        env: vec![("DATABASE_URL", pg.url())],
        ..Default::default()
    })
    .await;
    app.add_user("alice").await;
    let client = app.add_client(false);
    let browser = app.browser();
    let (url, pkce) = app.authorize_url(&client, &[]);
    let code = query(&browser.sign_in(&url, "alice").await, "code").unwrap();

    pg.stop();
    let response = app.redeem(&client, &code, Some(&pkce.verifier)).await;
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(response.headers()["cache-control"], "no-store");
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["error"], "temporarily_unavailable");
    let (url, _) = app.authorize_url(&client, &[]);
    let (_, status, html) = browser.open(&url).await.page();
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(html.contains("temporarily_unavailable"));
    let (status, body) = ready(&app).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(body["database"], false);
    assert!(
        metric(
            &app,
            "portcullis_backend_errors_total{backend=\"database\"}"
        )
        .await
    );

    pg.resume();
    wait_until_ready(&app).await;
    // The redemption that failed during the outage consumed nothing.
    let response = app.redeem(&client, &code, Some(&pkce.verifier)).await;
    assert_eq!(response.status(), 200);
    let (url, _) = app.authorize_url(&client, &[("prompt", "none")]);
    assert!(query(&browser.open(&url).await.left(), "code").is_some());
}

/// How a sign-in went, and when it started.
struct Attempt {
    started: Instant,
    ok: bool,
}

/// One whole sign-in in a new browser from `address`: authorize, the login form, the code.
pub(crate) async fn sign_in_once(
    app: &TestApp,
    client: &TestClient,
    username: &str,
    address: IpAddr,
) -> bool {
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

/// Every attempt of the load so far, shared by its workers and the test.
type Attempts = Arc<std::sync::Mutex<Vec<Attempt>>>;

/// Signs in over and over on `app` (each time from another loopback address, so that
/// per-address limits stay out of it) until `stop`, recording every attempt.
fn login_load(
    app: Arc<TestApp>,
    client: Arc<TestClient>,
    username: String,
    stop: Arc<AtomicBool>,
    attempts: Attempts,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut n: u32 = 0;
        while !stop.load(Ordering::Relaxed) {
            n += 1;
            let address = IpAddr::from([127, 2, (n / 250 % 250) as u8, (n % 250 + 1) as u8]);
            let started = Instant::now();
            let ok = sign_in_once(&app, &client, &username, address).await;
            attempts.lock().unwrap().push(Attempt { started, ok });
        }
    })
}

/// Waits, with a deadline, until `enough` holds of the attempts recorded so far.
async fn until_attempts(attempts: &Attempts, what: &str, enough: impl Fn(&[Attempt]) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !enough(&attempts.lock().unwrap()) {
        assert!(Instant::now() < deadline, "the load never got to: {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Two instances on one private PostgreSQL under login load while `disrupt` runs. Returns
/// the attempts of both and the moment the database took connections again.
async fn two_instances_under_login_load(
    pg: &PrivatePostgres,
    disrupt: impl FnOnce(&PrivatePostgres),
) -> (Vec<Attempt>, Instant) {
    let options = Options {
        env: vec![("DATABASE_URL", pg.url())],
        ..Default::default()
    };
    let first = Arc::new(spawn_app_with(options.clone()).await);
    let second = Arc::new(spawn_app_with(options).await);
    let client = Arc::new(
        first.add_client_with(portcullis::protocol::registration::ClientDraft {
            auth_method: Some("none".into()),
            ..Default::default()
        }),
    );
    let stop = Arc::new(AtomicBool::new(false));
    let attempts = Attempts::default();
    let mut load = Vec::new();
    for (i, app) in [&first, &second, &first, &second].into_iter().enumerate() {
        let username = format!("user{i}");
        app.add_user(&username).await;
        // Consent given once, so every later sign-in ends at the client with a code.
        let (url, _) = app.authorize_url(&client, &[]);
        app.browser().sign_in(&url, &username).await;
        load.push(login_load(
            app.clone(),
            client.clone(),
            username,
            stop.clone(),
            attempts.clone(),
        ));
    }
    // The pools' connections have served sign-ins before the disruption.
    until_attempts(&attempts, "40 sign-ins before the disruption", |a| {
        a.iter().filter(|a| a.ok).count() >= 40
    })
    .await;
    disrupt(pg);
    let back = Instant::now();
    // The measurement runs until sign-ins begun two seconds after the database returned
    // have been answered: a failure a second after it would have been seen.
    let settled = back + Duration::from_secs(2);
    until_attempts(&attempts, "sign-ins two seconds after the return", |a| {
        a.iter().filter(|a| a.started >= settled).count() >= 8
    })
    .await;
    stop.store(true, Ordering::Relaxed);
    for task in load {
        task.await.unwrap();
    }
    let attempts = std::mem::take(&mut *attempts.lock().unwrap());
    (attempts, back)
}

/// Failed sign-ins while the database was back, and the last one's delay after `back`.
fn failures_after(attempts: &[Attempt], back: Instant) -> Vec<Duration> {
    attempts
        .iter()
        .filter(|a| !a.ok && a.started >= back)
        .map(|a| a.started - back)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_postgres_restart_under_login_load_fails_each_connection_at_most_once() {
    let Some(pg) = PrivatePostgres::start() else {
        return;
    };
    let (attempts, back) = two_instances_under_login_load(&pg, |pg| {
        pg.stop();
        pg.resume();
    })
    .await;
    let failures = failures_after(&attempts, back);
    let ok_after = attempts
        .iter()
        .filter(|a| a.ok && a.started >= back)
        .count();
    eprintln!(
        "postgres restart: {} sign-ins, {} after the restart of which {} failed, at {:?}",
        attempts.len(),
        ok_after + failures.len(),
        failures.len(),
        failures
    );
    // At most one failure per pooled connection (16 per instance)...
    assert!(failures.len() <= 32, "{} failures", failures.len());
    // ...and none once the pool has had a second to replace them.
    assert!(
        failures.iter().all(|at| *at < Duration::from_secs(1)),
        "sign-ins still failed a second after the restart: {failures:?}"
    );
    assert!(ok_after > 0, "no sign-in succeeded after the restart");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ended_postgres_backends_under_login_load_fail_each_connection_at_most_once() {
    let Some(pg) = PrivatePostgres::start() else {
        return;
    };
    let (attempts, back) = two_instances_under_login_load(&pg, |pg| {
        let out = pg.tool(
            "psql",
            &[
                "-h",
                "127.0.0.1",
                "-p",
                &pg.port.to_string(),
                "-U",
                "postgres",
                "-Atc",
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity \
                 WHERE pid <> pg_backend_pid() AND backend_type = 'client backend'",
            ],
        );
        let ended: u32 = String::from_utf8_lossy(&out.stdout)
            .trim()
            .parse()
            .unwrap_or(0);
        assert!(ended >= 2, "psql ended {ended} backends: {out:?}");
    })
    .await;
    let failures = failures_after(&attempts, back);
    eprintln!(
        "pg_terminate_backend: {} sign-ins, {} failed, at {:?}",
        attempts.len(),
        failures.len(),
        failures
    );
    assert!(failures.len() <= 32, "{} failures", failures.len());
    assert!(
        failures.iter().all(|at| *at < Duration::from_secs(1)),
        "sign-ins still failed a second after the backends ended: {failures:?}"
    );
}
