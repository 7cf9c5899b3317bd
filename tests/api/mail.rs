//! Mail that is delivered (issue 23, part 1), against real SMTP servers the tests start
//! themselves: aiosmtpd (`tests/support/smtp_sink.py`), plain, with STARTTLS or TLS under
//! a test CA, asking for credentials, or refusing. Mail is read back from the server and
//! parsed with Python's own mail parser (`tests/support/read_eml.py`).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use portcullis::config::Settings;
use portcullis::domain::{Clock, ManualClock};
use portcullis::mail::{EmailAddress, Link, Locale, MailKind, Mailer, Outgoing, retry_delay};
use portcullis::mail_delivery::{MailDelivery, Pass};
use portcullis::metrics::Metrics;
use portcullis::store::sql::SqlStore;
use portcullis::store::{QueuedMail, Store};
use reqwest::StatusCode;
use serde_json::Value;
use tempfile::TempDir;

use crate::backends::TempDatabase;
use crate::cli::portcullis_on;
use crate::faults::skip;
use crate::helpers::{Options, TEST_KEK, free_port, spawn_app_with, test_kek};
use crate::tls_backends::Pki;

/// Debian's python3-* packages belong to this interpreter, whatever is first on PATH.
const PYTHON: &str = "/usr/bin/python3";
const LINK: &str = "https://id.example/reset?code=0123456789abcdef&lang=en";

fn support(file: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/support")
        .join(file)
}

/// A private SMTP server that keeps what it accepts.
pub(crate) struct SmtpSink {
    port: u16,
    child: Child,
    dir: TempDir,
}

/// One message the sink accepted: its bytes and its envelope.
pub(crate) struct Received {
    path: PathBuf,
    meta: Value,
}

impl Received {
    /// The message as Python's mail parser reads it.
    pub(crate) fn parsed(&self) -> Value {
        read_eml(&self.path)
    }
}

fn read_eml(path: &Path) -> Value {
    let out = Command::new(PYTHON)
        .arg(support("read_eml.py"))
        .arg(path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "read_eml.py: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn aiosmtpd_installed() -> bool {
    let found = Command::new(PYTHON)
        .args(["-c", "import aiosmtpd"])
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !found {
        skip("python3-aiosmtpd is not installed (/usr/bin/python3 -c 'import aiosmtpd')");
    }
    found
}

impl SmtpSink {
    pub(crate) fn start(options: &[&str]) -> Option<Self> {
        if !aiosmtpd_installed() {
            return None;
        }
        let dir = TempDir::new().unwrap();
        let port = free_port();
        let log = std::fs::File::create(dir.path().join("sink.log")).unwrap();
        let child = Command::new(PYTHON)
            .arg(support("smtp_sink.py"))
            .args(["--listen", &format!("127.0.0.1:{port}"), "--dir"])
            .arg(dir.path())
            .args(options)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        // Owned at once: dropped (killed) on any panic below.
        let mut sink = Self { port, child, dir };
        let deadline = Instant::now() + Duration::from_secs(15);
        while Instant::now() < deadline {
            if let Some(status) = sink.child.try_wait().unwrap() {
                let log =
                    std::fs::read_to_string(sink.dir.path().join("sink.log")).unwrap_or_default();
                panic!("the SMTP sink exited ({status}): {log}");
            }
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return Some(sink);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("the SMTP sink did not start");
    }

    pub(crate) fn url(&self) -> String {
        format!("smtp://127.0.0.1:{}", self.port)
    }

    /// What it accepted so far, in order.
    fn received(&self) -> Vec<Received> {
        let mut numbers: Vec<u32> = std::fs::read_dir(self.dir.path())
            .unwrap()
            .filter_map(|e| {
                let name = e.unwrap().file_name().into_string().ok()?;
                name.strip_suffix(".json")?.parse().ok()
            })
            .collect();
        numbers.sort_unstable();
        numbers
            .into_iter()
            .map(|n| Received {
                path: self.dir.path().join(format!("{n}.eml")),
                meta: serde_json::from_slice(
                    &std::fs::read(self.dir.path().join(format!("{n}.json"))).unwrap(),
                )
                .unwrap(),
            })
            .collect()
    }

    /// Waits (letting the delivery task run) until `count` messages arrived.
    pub(crate) async fn wait_for(&self, count: usize) -> Vec<Received> {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let received = self.received();
            if received.len() >= count {
                return received;
            }
            assert!(
                Instant::now() < deadline,
                "{} of {count} mails arrived",
                received.len()
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What this thread logs (the delivery task runs on the test's own thread).
#[derive(Clone, Default)]
struct Logs(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Logs {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Logs {
    fn capture() -> (Self, tracing::subscriber::DefaultGuard) {
        let logs = Self::default();
        let writer = logs.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || writer.clone())
            .with_ansi(false)
            .with_max_level(tracing::Level::INFO)
            .finish();
        (logs, tracing::subscriber::set_default(subscriber))
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

fn reset_mail(to: &str, locale: Locale) -> Outgoing {
    Outgoing {
        to: EmailAddress::parse(to).unwrap(),
        locale,
        kind: MailKind::PasswordReset {
            link: Link::new(LINK.into()).unwrap(),
            valid_minutes: 30,
        },
    }
}

fn header<'a>(parsed: &'a Value, name: &str) -> &'a str {
    parsed["headers"][name].as_str().unwrap_or_default()
}

/// Both parts, text then HTML, each with the link when the mail has one; no defects.
fn check_parts(parsed: &Value, link: Option<&str>) -> (String, String) {
    assert_eq!(parsed["content_type"], "multipart/alternative", "{parsed}");
    assert_eq!(parsed["defects"], serde_json::json!([]), "{parsed}");
    let parts = parsed["parts"].as_array().unwrap();
    let kinds: Vec<&str> = parts
        .iter()
        .map(|p| p["content_type"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["text/plain", "text/html"]);
    let text = parts[0]["text"].as_str().unwrap().to_owned();
    let html = parts[1]["text"].as_str().unwrap().to_owned();
    if let Some(link) = link {
        assert!(text.contains(link), "{text}");
        assert!(
            html.contains(&link.replace('&', "&#38;"))
                || html.contains(&link.replace('&', "&amp;")),
            "{html}"
        );
    }
    (text, html)
}

/// The outbox row of `id`, once `done` says it is settled as the test expects.
async fn wait_for_row(
    store: &Arc<dyn Store>,
    id: &str,
    done: impl Fn(&QueuedMail) -> bool,
) -> QueuedMail {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let row = store.find_mail(id).unwrap().unwrap();
        if done(&row) {
            return row;
        }
        assert!(Instant::now() < deadline, "still {row:?}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

#[tokio::test]
async fn mail_queued_in_a_store_call_reaches_a_plain_smtp_server_in_both_parts_and_its_link_is_not_logged()
 {
    let Some(sink) = SmtpSink::start(&[]) else {
        return;
    };
    let (logs, _guard) = Logs::capture();
    let app = spawn_app_with(Options {
        env: vec![("SMTP_URL", sink.url()), ("BRAND_NAME", "Acme ID".into())],
        ..Options::default()
    })
    .await;
    let id = reset_mail("bob@example.org", Locale::En)
        .send_later(&*app.store, &test_kek(), app.clock.now())
        .unwrap();
    let received = sink.wait_for(1).await;
    assert_eq!(received.len(), 1);
    let meta = &received[0].meta;
    assert_eq!(meta["rcpt_tos"], serde_json::json!(["bob@example.org"]));
    assert_eq!(meta["mail_from"], "noreply@127.0.0.1");
    assert_eq!(
        meta["tls"], false,
        "this server offers no STARTTLS and gets no credentials"
    );
    let parsed = received[0].parsed();
    assert_eq!(header(&parsed, "Subject"), "Reset your Acme ID password");
    assert_eq!(header(&parsed, "From"), "Acme ID <noreply@127.0.0.1>");
    assert_eq!(header(&parsed, "To"), "bob@example.org");
    assert_eq!(header(&parsed, "Message-ID"), format!("<{id}@127.0.0.1>"));
    assert_eq!(header(&parsed, "Content-Language"), "en");
    assert_eq!(header(&parsed, "Auto-Submitted"), "auto-generated");
    let (text, html) = check_parts(&parsed, Some(LINK));
    assert!(text.contains("for 30 minutes"), "{text}");
    assert!(html.contains("<html lang=\"en\">"));

    let row = wait_for_row(&app.store, &id, |r| r.sent_at.is_some()).await;
    assert_eq!(
        (row.attempts, row.sealed_message, row.last_error),
        (1, None, None)
    );
    assert!(
        app.metrics_text()
            .await
            .contains("portcullis_mail_sent_total{kind=\"password_reset\"} 1")
    );
    let logs = logs.text();
    assert!(
        logs.contains("mail sent") && logs.contains("recipient_domain=example.org"),
        "{logs}"
    );
    assert!(
        !logs.contains("0123456789abcdef") && !logs.contains("bob@"),
        "{logs}"
    );
}

#[tokio::test]
async fn starttls_to_a_private_server_is_verified_against_the_ca_file_and_carries_the_credentials()
{
    let pki_dir = TempDir::new().unwrap();
    let Some(pki) = Pki::create(pki_dir.path()) else {
        return;
    };
    let Some(sink) = SmtpSink::start(&[
        "--starttls",
        &pki.path("server.pem"),
        &pki.path("server.key"),
        "--auth",
        "portcullis@example.com:p@ss w:rd",
    ]) else {
        return;
    };
    let app = spawn_app_with(Options {
        env: vec![
            (
                "SMTP_URL",
                format!(
                    "smtp://portcullis%40example.com:p%40ss%20w%3Ard@127.0.0.1:{}",
                    sink.port
                ),
            ),
            ("SMTP_CA_FILE", pki.path("ca.pem")),
            ("MAIL_FROM", "Acme <id@acme.example>".into()),
        ],
        ..Options::default()
    })
    .await;
    let invitation = Outgoing {
        to: EmailAddress::parse("chloe@example.fr").unwrap(),
        locale: Locale::Fr,
        kind: MailKind::Invitation {
            link: Link::new("https://id.example/invitation?code=xyz".into()).unwrap(),
            valid_minutes: 4320,
            invited_by: "Amélie Admin".into(),
        },
    };
    invitation
        .send_later(&*app.store, &test_kek(), app.clock.now())
        .unwrap();
    let received = sink.wait_for(1).await;
    let meta = &received[0].meta;
    assert_eq!(meta["tls"], true);
    assert_eq!(meta["auth_user"], "portcullis@example.com");
    assert_eq!(meta["mail_from"], "id@acme.example");
    let parsed = received[0].parsed();
    assert_eq!(
        header(&parsed, "Subject"),
        "Amélie Admin vous invite sur Portcullis"
    );
    assert_eq!(header(&parsed, "Content-Language"), "fr");
    let (text, html) = check_parts(&parsed, Some("https://id.example/invitation?code=xyz"));
    assert!(
        text.contains("Bonjour") && text.contains("pendant 3 jours"),
        "{text}"
    );
    assert!(
        html.contains("<html lang=\"fr\">") && html.contains("Accepter l"),
        "{html}"
    );
}

/// A rig for one instance's deliverer, driven pass by pass under a manual clock.
struct Rig {
    store: Arc<dyn Store>,
    delivery: MailDelivery,
    clock: Arc<ManualClock>,
    metrics: Arc<Metrics>,
    _dir: TempDir,
}

impl Rig {
    fn new(env: &[(&str, &str)], database_url: Option<&str>) -> Self {
        let dir = TempDir::new().unwrap();
        let sqlite = format!("sqlite://{}/mail.db", dir.path().display());
        let url = database_url.unwrap_or(&sqlite).to_owned();
        let mut settings = Settings::from_sources(None, |k| {
            env.iter()
                .find(|(name, _)| format!("PORTCULLIS_{name}") == k)
                .map(|(_, v)| (*v).to_owned())
        })
        .unwrap();
        settings.mail_outbox_dir = dir.path().join("outbox");
        let store: Arc<dyn Store> = Arc::new(SqlStore::open(&url).unwrap());
        Self::on(store, &settings, dir)
    }

    fn on(store: Arc<dyn Store>, settings: &Settings, dir: TempDir) -> Self {
        let clock = Arc::new(ManualClock::new(2_000_000_000));
        let metrics = Arc::new(Metrics::default());
        let delivery = MailDelivery::new(
            Arc::downgrade(&store),
            Arc::new(Mailer::new(settings).unwrap()),
            Arc::new(test_kek()),
            clock.clone(),
            metrics.clone(),
        );
        Self {
            store,
            delivery,
            clock,
            metrics,
            _dir: dir,
        }
    }

    fn queue(&self, outgoing: &Outgoing) -> String {
        outgoing
            .send_later(&*self.store, &test_kek(), self.clock.now())
            .unwrap()
    }

    async fn pass(&self) -> Pass {
        self.delivery.pass().await.unwrap()
    }

    fn row(&self, id: &str) -> QueuedMail {
        self.store.find_mail(id).unwrap().unwrap()
    }
}

#[tokio::test]
async fn without_the_ca_file_the_private_servers_certificate_is_refused_and_the_mail_kept_for_later()
 {
    let pki_dir = TempDir::new().unwrap();
    let Some(pki) = Pki::create(pki_dir.path()) else {
        return;
    };
    let Some(sink) = SmtpSink::start(&[
        "--starttls",
        &pki.path("server.pem"),
        &pki.path("server.key"),
    ]) else {
        return;
    };
    let other_ca = pki.path("other-ca.pem");
    for ca_file in [None, Some(other_ca.as_str())] {
        let url = sink.url();
        let mut env = vec![("SMTP_URL", url.as_str())];
        env.extend(ca_file.map(|ca| ("SMTP_CA_FILE", ca)));
        let rig = Rig::new(&env, None);
        let id = rig.queue(&reset_mail("bob@example.org", Locale::En));
        assert_eq!(
            rig.pass().await,
            Pass {
                claimed: 1,
                failed: 1,
                ..Pass::default()
            }
        );
        let row = rig.row(&id);
        let error = row.last_error.clone().unwrap();
        assert!(error.contains("UnknownIssuer"), "{error}");
        assert_eq!(row.next_attempt_at, rig.clock.now() + 60);
        assert!(row.sealed_message.is_some() && row.failed_at.is_none());
    }
    assert!(
        sink.received().is_empty(),
        "no mail crossed an unverified connection"
    );
    // With the CA that signed it, the same server is trusted.
    let (url, ca) = (sink.url(), pki.path("ca.pem"));
    let rig = Rig::new(&[("SMTP_URL", &url), ("SMTP_CA_FILE", &ca)], None);
    rig.queue(&reset_mail("bob@example.org", Locale::En));
    assert_eq!(rig.pass().await.sent, 1);
    assert_eq!(sink.received()[0].meta["tls"], true);
}

#[tokio::test]
async fn credentials_never_cross_a_connection_the_server_did_not_upgrade() {
    let Some(sink) = SmtpSink::start(&[]) else {
        return;
    };
    let url = format!("smtp://user:secret@127.0.0.1:{}", sink.port);
    let rig = Rig::new(&[("SMTP_URL", &url)], None);
    let id = rig.queue(&reset_mail("bob@example.org", Locale::En));
    assert_eq!(rig.pass().await.failed, 1);
    let error = rig.row(&id).last_error.unwrap();
    assert!(error.contains("STARTTLS"), "{error}");
    assert!(!error.contains("secret"), "{error}");
    assert!(sink.received().is_empty());
}

#[tokio::test]
async fn implicit_tls_is_verified_as_well() {
    let pki_dir = TempDir::new().unwrap();
    let Some(pki) = Pki::create(pki_dir.path()) else {
        return;
    };
    let Some(sink) =
        SmtpSink::start(&["--smtps", &pki.path("server.pem"), &pki.path("server.key")])
    else {
        return;
    };
    let url = format!("smtps://127.0.0.1:{}", sink.port);
    let untrusted = Rig::new(&[("SMTP_URL", &url)], None);
    let id = untrusted.queue(&reset_mail("bob@example.org", Locale::En));
    assert_eq!(untrusted.pass().await.failed, 1);
    assert!(
        untrusted
            .row(&id)
            .last_error
            .unwrap()
            .contains("UnknownIssuer")
    );
    let ca = pki.path("ca.pem");
    let trusted = Rig::new(&[("SMTP_URL", &url), ("SMTP_CA_FILE", &ca)], None);
    trusted.queue(&reset_mail("bob@example.org", Locale::En));
    assert_eq!(trusted.pass().await.sent, 1);
    let received = sink.received();
    assert_eq!(received.len(), 1);
    assert_eq!(received[0].meta["tls"], true);
}

#[tokio::test]
async fn every_attempt_backs_off_and_the_last_gives_the_mail_up_with_a_metric_and_a_warning() {
    // Nothing listens there: every attempt is refused.
    let url = format!("smtp://127.0.0.1:{}", free_port());
    let rig = Rig::new(&[("SMTP_URL", &url)], None);
    let (logs, _guard) = Logs::capture();
    let id = rig.queue(&reset_mail("bob@example.org", Locale::En));
    let mut attempts = 0;
    while let Some(delay) = retry_delay(attempts + 1) {
        attempts += 1;
        assert_eq!(rig.pass().await.failed, 1, "attempt {attempts}");
        let row = rig.row(&id);
        assert_eq!(
            (row.attempts, row.next_attempt_at),
            (attempts, rig.clock.now() + delay)
        );
        // Not a second earlier.
        rig.clock.advance(delay - 1);
        assert_eq!(rig.pass().await.claimed, 0);
        rig.clock.advance(1);
    }
    assert_eq!(attempts, 7);
    assert_eq!(rig.pass().await.given_up, 1);
    let row = rig.row(&id);
    assert_eq!(row.attempts, 8);
    assert_eq!(row.failed_at, Some(rig.clock.now()));
    assert_eq!(row.sealed_message, None, "a given-up mail keeps no link");
    assert!(row.last_error.is_some());
    rig.clock.advance(100_000);
    assert_eq!(rig.pass().await.claimed, 0, "never tried again");
    let metrics = rig.metrics.render();
    assert!(
        metrics.contains("portcullis_mail_failed_total{kind=\"password_reset\"} 7"),
        "{metrics}"
    );
    assert!(
        metrics.contains("portcullis_mail_given_up_total{kind=\"password_reset\"} 1"),
        "{metrics}"
    );
    let logs = logs.text();
    let given_up: Vec<&str> = logs
        .lines()
        .filter(|l| l.contains("mail given up"))
        .collect();
    assert_eq!(given_up.len(), 1, "{logs}");
    assert!(
        given_up[0].contains("WARN") && given_up[0].contains("recipient_domain=example.org"),
        "{logs}"
    );
    assert!(
        !logs.contains("bob@") && !logs.contains("0123456789abcdef"),
        "{logs}"
    );
}

#[tokio::test]
async fn a_permanent_refusal_gives_the_mail_up_at_once_and_a_temporary_one_is_retried() {
    let Some(refusing) = SmtpSink::start(&["--reply", "550 5.1.1 No such user here"]) else {
        return;
    };
    let url = refusing.url();
    let rig = Rig::new(&[("SMTP_URL", &url)], None);
    let id = rig.queue(&reset_mail("nobody@example.org", Locale::En));
    assert_eq!(rig.pass().await.given_up, 1);
    let row = rig.row(&id);
    assert_eq!((row.attempts, row.failed_at), (1, Some(rig.clock.now())));
    assert!(row.last_error.unwrap().contains("550"));
    assert!(
        rig.metrics
            .render()
            .contains("portcullis_mail_given_up_total{kind=\"password_reset\"} 1")
    );

    let Some(busy) = SmtpSink::start(&["--reply", "451 4.3.0 Try again later"]) else {
        return;
    };
    let url = busy.url();
    let rig = Rig::new(&[("SMTP_URL", &url)], None);
    let id = rig.queue(&reset_mail("bob@example.org", Locale::En));
    assert_eq!(rig.pass().await.failed, 1);
    let row = rig.row(&id);
    assert_eq!(
        (row.failed_at, row.next_attempt_at),
        (None, rig.clock.now() + 60)
    );
    assert!(row.last_error.unwrap().contains("451"));
}

#[tokio::test]
async fn a_server_that_is_down_holds_up_no_request_and_the_mail_waits_for_it() {
    let down = free_port();
    let app = spawn_app_with(Options {
        env: vec![("SMTP_URL", format!("smtp://127.0.0.1:{down}"))],
        ..Options::default()
    })
    .await;
    let ready = crate::helpers::get(app.url("/readyz")).await.unwrap();
    assert_eq!(
        ready.status(),
        StatusCode::OK,
        "readiness does not depend on SMTP"
    );
    // The operator's command queues and returns; the server tries in the background.
    let db = format!(
        "sqlite://{}",
        app.dir.path().join("portcullis.db").display()
    );
    let smtp = format!("smtp://127.0.0.1:{down}");
    let queued = portcullis_on(
        &db,
        &[
            ("PORTCULLIS_KEY_ENCRYPTION_KEY", TEST_KEK),
            ("PORTCULLIS_SMTP_URL", &smtp),
        ],
        &["mail", "test", "bob@example.org"],
        None,
    );
    assert!(queued.status.success(), "{queued:?}");
    let id = String::from_utf8(queued.stdout).unwrap().trim().to_owned();
    // The command queued it at the system's time, which the server's clock (held still
    // since it started) has not reached yet.
    app.clock.advance(30);
    let row = wait_for_row(&app.store, &id, |r| r.last_error.is_some()).await;
    assert_eq!((row.kind.as_str(), row.attempts), ("test", 1));
    assert_eq!(row.next_attempt_at, app.clock.now() + 60);
    assert!(
        app.metrics_text()
            .await
            .contains("portcullis_mail_failed_total{kind=\"test\"} 1")
    );
    let ready = crate::helpers::get(app.url("/readyz")).await.unwrap();
    assert_eq!(ready.status(), StatusCode::OK);
    // Its time comes: tried again, and put off longer.
    app.clock.advance(60);
    let row = wait_for_row(&app.store, &id, |r| {
        r.attempts == 2 && r.next_attempt_at < app.clock.now() + 300
    })
    .await;
    assert_eq!(row.next_attempt_at, app.clock.now() + 120);
    assert!(row.sealed_message.is_some());
    let bad = portcullis_on(
        &db,
        &[("PORTCULLIS_KEY_ENCRYPTION_KEY", TEST_KEK)],
        &["mail", "test", "not an address"],
        None,
    );
    assert!(!bad.status.success());
    assert_eq!(
        String::from_utf8_lossy(&bad.stderr).trim().lines().count(),
        1
    );
}

#[tokio::test]
async fn without_smtp_url_mail_is_written_as_an_eml_file_and_its_link_logged() {
    let (logs, _guard) = Logs::capture();
    let app = spawn_app_with(Options::default()).await;
    let id = reset_mail("bob@example.org", Locale::Fr)
        .send_later(&*app.store, &test_kek(), app.clock.now())
        .unwrap();
    wait_for_row(&app.store, &id, |r| r.sent_at.is_some()).await;
    let file = app.dir.path().join("outbox").join(format!("{id}.eml"));
    let parsed = read_eml(&file);
    assert_eq!(
        header(&parsed, "Subject"),
        "Réinitialisez votre mot de passe Portcullis"
    );
    assert_eq!(header(&parsed, "To"), "bob@example.org");
    let (text, _) = check_parts(&parsed, Some(LINK));
    assert!(text.contains("pendant 30 minutes"), "{text}");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&file).unwrap().permissions().mode();
        assert_eq!(
            mode & 0o077,
            0,
            "only its owner reads a file with a link: {mode:o}"
        );
    }
    let logs = logs.text();
    let line = logs
        .lines()
        .find(|l| l.contains("mail written to a file"))
        .unwrap_or_else(|| panic!("{logs}"));
    assert!(line.contains(" INFO ") && line.contains(LINK), "{line}");
    assert!(
        app.metrics_text()
            .await
            .contains("portcullis_mail_sent_total{kind=\"password_reset\"} 1")
    );

    // The operator's test message lands there too.
    let db = format!(
        "sqlite://{}",
        app.dir.path().join("portcullis.db").display()
    );
    let queued = portcullis_on(
        &db,
        &[("PORTCULLIS_KEY_ENCRYPTION_KEY", TEST_KEK)],
        &["mail", "test", "--locale", "fr", "ops@example.com"],
        None,
    );
    assert!(queued.status.success(), "{queued:?}");
    let test_id = String::from_utf8(queued.stdout).unwrap().trim().to_owned();
    app.clock.advance(30);
    assert!(String::from_utf8_lossy(&queued.stderr).contains(&format!("{test_id}.eml")));
    wait_for_row(&app.store, &test_id, |r| r.sent_at.is_some()).await;
    let parsed = read_eml(&app.dir.path().join("outbox").join(format!("{test_id}.eml")));
    assert_eq!(header(&parsed, "Subject"), "Message de test de Portcullis");
    check_parts(&parsed, None);
}

/// Two instances (two pools on one database, each with its own deliverer) drain one
/// outbox at once: every mail arrives exactly once.
async fn two_deliverers_share_the_outbox(url: &str) {
    let Some(sink) = SmtpSink::start(&[]) else {
        return;
    };
    let smtp = sink.url();
    let env = [("SMTP_URL", smtp.as_str())];
    let first = Rig::new(&env, Some(url));
    let settings =
        Settings::from_sources(None, |k| (k == "PORTCULLIS_SMTP_URL").then(|| smtp.clone()))
            .unwrap();
    let second_store: Arc<dyn Store> = Arc::new(SqlStore::connect(url).unwrap());
    let second = Rig::on(second_store, &settings, TempDir::new().unwrap());
    let count = 24;
    let ids: Vec<String> = (0..count)
        .map(|i| first.queue(&reset_mail(&format!("user{i}@example.org"), Locale::En)))
        .collect();
    let mut sent = 0;
    let deadline = Instant::now() + Duration::from_secs(60);
    while sent < count {
        let (a, b) = tokio::join!(first.pass(), second.pass());
        assert_eq!(a.failed + a.given_up + b.failed + b.given_up, 0);
        sent += a.sent + b.sent;
        assert!(Instant::now() < deadline, "{sent} of {count} sent");
    }
    assert_eq!(sent, count);
    let received = sink.received();
    assert_eq!(received.len(), count, "each mail once");
    let mut message_ids: Vec<String> = received
        .iter()
        .map(|r| {
            let eml = std::fs::read_to_string(&r.path).unwrap();
            eml.lines()
                .find_map(|l| l.strip_prefix("Message-ID: ").map(str::to_owned))
                .unwrap()
        })
        .collect();
    message_ids.sort();
    message_ids.dedup();
    assert_eq!(message_ids.len(), count);
    for id in &ids {
        let row = first.row(id);
        assert_eq!(
            (row.attempts, row.sealed_message.is_none()),
            (1, true),
            "{row:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_on_postgres_never_send_one_mail_twice() {
    let Some(db) = TempDatabase::create() else {
        return;
    };
    two_deliverers_share_the_outbox(&db.url).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_on_sqlite_never_send_one_mail_twice() {
    let dir = TempDir::new().unwrap();
    two_deliverers_share_the_outbox(&format!("sqlite://{}/shared.db", dir.path().display())).await;
}

#[tokio::test]
async fn a_ca_file_that_cannot_be_read_stops_the_start_naming_its_key() {
    let dir = TempDir::new().unwrap();
    let missing = dir.path().join("missing.pem").display().to_string();
    let db = format!("sqlite://{}/p.db", dir.path().display());
    let env = [
        ("PORTCULLIS_DATABASE_URL", db.as_str()),
        ("PORTCULLIS_KEY_ENCRYPTION_KEY", TEST_KEK),
        ("PORTCULLIS_SMTP_URL", "smtp://127.0.0.1:25"),
        ("PORTCULLIS_SMTP_CA_FILE", missing.as_str()),
    ];
    let settings = Settings::from_sources(None, |k| {
        env.iter()
            .find(|(name, _)| *name == k)
            .map(|(_, v)| (*v).to_owned())
    })
    .unwrap();
    let Err(error) = portcullis::startup::build_state(settings).await else {
        panic!("started without its CA file");
    };
    let error = format!("{error:#}");
    assert!(
        error.starts_with("configuration: smtp_ca_file: "),
        "{error}"
    );
}
