//! Several `portcullis serve` processes sharing one PostgreSQL database and one Redis:
//! one sign-in everywhere, any instance redeems any code (once), verifies any token.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use portcullis::domain::now;
use portcullis::protocol::registration::ClientDraft;
use portcullis::store::sql::SqlStore;
use portcullis::store::{ClientStore, User, UserStore};
use url::Url;

use crate::backends::{TempDatabase, TempRedis};
use crate::helpers::{Browser, PASSWORD, Pkce, free_port, query};

/// One `portcullis serve` process.
pub(crate) struct Instance {
    child: Child,
    port: u16,
    env: Vec<(String, String)>,
}

impl Instance {
    fn spawn(port: u16, env: &[(String, String)]) -> Self {
        let child = Command::new(env!("CARGO_BIN_EXE_portcullis"))
            .arg("serve")
            // A test may give the metrics a port of its own (in `env`).
            .env("PORTCULLIS_METRICS_BIND", "127.0.0.1:0")
            .envs(env.iter().cloned())
            .env("PORTCULLIS_BIND", format!("127.0.0.1:{port}"))
            .env("PORTCULLIS_KEY_ENCRYPTION_KEY", crate::helpers::TEST_KEK)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        Self {
            child,
            port,
            env: env.to_vec(),
        }
    }

    pub(crate) fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    async fn ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Ok(r) = crate::helpers::get(self.url("/readyz")).await
                && r.status() == 200
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("instance on port {} did not become ready", self.port);
    }

    /// SIGTERM, then wait: returns the exit status.
    fn terminate(mut self) -> std::process::ExitStatus {
        Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status()
            .unwrap();
        let status = self.child.wait().unwrap();
        std::mem::forget(self);
        status
    }

    fn restart(self) -> Self {
        let (port, env) = (self.port, self.env.clone());
        assert!(self.terminate().success());
        Self::spawn(port, &env)
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub(crate) struct Cluster {
    pub(crate) a: Instance,
    pub(crate) b: Instance,
    pub(crate) issuer: String,
    pub(crate) store: SqlStore,
    _db: TempDatabase,
    _redis: TempRedis,
}

pub(crate) struct Rp {
    pub(crate) id: String,
    pub(crate) secret: String,
    pub(crate) redirect_uri: String,
}

impl Cluster {
    /// Two instances behind one issuer (as behind a load balancer), started together on
    /// an empty database.
    pub(crate) async fn start() -> Option<Self> {
        let db = TempDatabase::create()?;
        let redis = TempRedis::create()?;
        let (port_a, port_b) = (free_port(), free_port());
        let issuer = format!("http://127.0.0.1:{port_a}");
        let env = vec![
            ("PORTCULLIS_ISSUER".to_owned(), issuer.clone()),
            ("PORTCULLIS_DATABASE_URL".to_owned(), db.url.clone()),
            ("PORTCULLIS_REDIS_URL".to_owned(), redis.url.clone()),
            ("PORTCULLIS_REDIS_PREFIX".to_owned(), redis.prefix.clone()),
        ];
        let (a, b) = (Instance::spawn(port_a, &env), Instance::spawn(port_b, &env));
        a.ready().await;
        b.ready().await;
        let store = SqlStore::connect(&db.url).unwrap();
        let hash = portcullis::crypto::password::hash_password(&portcullis::domain::Secret::new(
            PASSWORD.into(),
        ))
        .unwrap();
        store
            .create_user(&User::new(
                portcullis::crypto::tokens::random_uuid(),
                "alice".into(),
                hash,
                now(),
            ))
            .unwrap();
        Some(Self {
            a,
            b,
            issuer,
            store,
            _db: db,
            _redis: redis,
        })
    }

    pub(crate) fn client(&self) -> Rp {
        let redirect_uri = "http://127.0.0.1:1/cb".to_owned();
        let r = crate::helpers::register_client(ClientDraft {
            name: Some("RP".into()),
            redirect_uris: vec![redirect_uri.clone()],
            ..Default::default()
        });
        self.store.create_client(&r.client).unwrap();
        Rp {
            id: r.client.id,
            secret: r.client_secret.unwrap(),
            redirect_uri,
        }
    }

    pub(crate) fn browser(&self) -> Browser {
        loopback_browser()
    }
}

/// A cookie-keeping browser for instances on this machine (any port).
fn loopback_browser() -> Browser {
    Browser::new(
        crate::helpers::http_builder()
            .cookie_store(true)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap(),
        "http://127.0.0.1",
    )
}

pub(crate) fn authorize_url(instance: &Instance, rp: &Rp, pkce: &Pkce, extra: &str) -> String {
    format!(
        "{}?response_type=code&client_id={}&redirect_uri={}&scope=openid%20profile&state=s&code_challenge={}&code_challenge_method=S256{extra}",
        instance.url("/authorize"),
        rp.id,
        url::form_urlencoded::byte_serialize(rp.redirect_uri.as_bytes()).collect::<String>(),
        pkce.challenge
    )
}

pub(crate) async fn redeem(
    instance: &Instance,
    rp: &Rp,
    code: &str,
    pkce: &Pkce,
) -> reqwest::Response {
    crate::helpers::http()
        .post(instance.url("/token"))
        .basic_auth(&rp.id, Some(&rp.secret))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", &rp.redirect_uri),
            ("code_verifier", &pkce.verifier),
        ])
        .send()
        .await
        .unwrap()
}

pub(crate) fn code_of(url: &Url) -> String {
    query(url, "code").unwrap_or_else(|| panic!("no code in {url}"))
}

#[tokio::test]
async fn two_instances_share_sign_in_codes_tokens_and_one_key_set() {
    let Some(cluster) = Cluster::start().await else {
        return;
    };
    let (first, second) = (cluster.client(), cluster.client());

    // Both instances, started together on an empty database, publish the same two keys.
    let jwks_a: serde_json::Value = crate::helpers::get(cluster.a.url("/jwks"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let jwks_b: serde_json::Value = crate::helpers::get(cluster.b.url("/jwks"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(jwks_a, jwks_b);
    assert_eq!(
        jwks_a["keys"].as_array().unwrap().len(),
        4,
        "one key per algorithm (RS256, PS256, ES256, EdDSA), not two sets"
    );

    // Sign in through A; the second client's request at B needs no login form.
    let browser = cluster.browser();
    let pkce = Pkce::new();
    let callback = browser
        .sign_in(&authorize_url(&cluster.a, &first, &pkce, ""), "alice")
        .await;
    let pkce2 = Pkce::new();
    let outcome = browser
        .open(&authorize_url(&cluster.b, &second, &pkce2, ""))
        .await;
    assert!(
        !outcome.is_page("/login"),
        "single sign-on across instances"
    );
    let callback2 = browser.consent_if_asked(outcome).await.left();

    // A's code redeemed at B; B's code redeemed at A.
    let tokens: serde_json::Value = redeem(&cluster.b, &first, &code_of(&callback), &pkce)
        .await
        .json()
        .await
        .unwrap();
    let response = redeem(&cluster.a, &second, &code_of(&callback2), &pkce2).await;
    assert_eq!(response.status(), 200);
    let payload = crate::helpers::jwt_part(tokens["id_token"].as_str().unwrap(), 1);
    assert_eq!(payload["iss"], cluster.issuer.as_str());

    // An access token from one instance works at the other's userinfo.
    for instance in [&cluster.a, &cluster.b] {
        let status = crate::helpers::http()
            .get(instance.url("/userinfo"))
            .bearer_auth(tokens["access_token"].as_str().unwrap())
            .send()
            .await
            .unwrap()
            .status();
        assert_eq!(status, 200);
    }
}

#[tokio::test]
async fn a_code_sent_to_both_instances_at_once_is_redeemed_only_once() {
    let Some(cluster) = Cluster::start().await else {
        return;
    };
    let rp = cluster.client();
    let browser = cluster.browser();
    let pkce = Pkce::new();
    browser
        .sign_in(&authorize_url(&cluster.a, &rp, &pkce, ""), "alice")
        .await;
    for round in 0..5 {
        let pkce = Pkce::new();
        let callback = browser
            .open(&authorize_url(&cluster.a, &rp, &pkce, "&prompt=none"))
            .await
            .left();
        let code = code_of(&callback);
        let (at_a, at_b) = tokio::join!(
            redeem(&cluster.a, &rp, &code, &pkce),
            redeem(&cluster.b, &rp, &code, &pkce)
        );
        let statuses = [at_a.status().as_u16(), at_b.status().as_u16()];
        assert_eq!(
            statuses.iter().filter(|s| **s == 200).count(),
            1,
            "round {round}: {statuses:?}"
        );
        assert!(statuses.contains(&400), "round {round}: {statuses:?}");
    }
}

#[tokio::test]
async fn restarting_an_instance_keeps_users_signed_in_and_sigterm_exits_cleanly() {
    let Some(mut cluster) = Cluster::start().await else {
        return;
    };
    let rp = cluster.client();
    let browser = cluster.browser();
    let pkce = Pkce::new();
    browser
        .sign_in(&authorize_url(&cluster.a, &rp, &pkce, ""), "alice")
        .await;

    cluster.a = cluster.a.restart();
    cluster.a.ready().await;
    let pkce = Pkce::new();
    let callback = browser
        .open(&authorize_url(&cluster.a, &rp, &pkce, "&prompt=none"))
        .await
        .left();
    assert_eq!(
        redeem(&cluster.a, &rp, &code_of(&callback), &pkce)
            .await
            .status(),
        200
    );

    let Cluster { b, .. } = cluster;
    assert!(
        b.terminate().success(),
        "SIGTERM stops gracefully with status 0"
    );
}

#[tokio::test]
async fn json_logs_carry_the_request_id_and_client_address_and_no_query_string() {
    let dir = tempfile::TempDir::new().unwrap();
    let log = dir.path().join("stderr.log");
    let port = free_port();
    let child = Command::new(env!("CARGO_BIN_EXE_portcullis"))
        .env("PORTCULLIS_ISSUER", format!("http://127.0.0.1:{port}"))
        .env("PORTCULLIS_BIND", format!("127.0.0.1:{port}"))
        .env(
            "PORTCULLIS_DATABASE_URL",
            format!("sqlite://{}/db.sqlite", dir.path().display()),
        )
        .env("PORTCULLIS_LOG_FORMAT", "json")
        .env("PORTCULLIS_TRUSTED_PROXIES", "127.0.0.1")
        .env("PORTCULLIS_METRICS_BIND", "127.0.0.1:0")
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let instance = Instance {
        child,
        port,
        env: Vec::new(),
    };
    instance.ready().await;
    let response = crate::helpers::http()
        .get(instance.url("/logout?id_token_hint=secret-looking-token"))
        .header("x-request-id", "trace-me-42")
        .header("x-forwarded-for", "203.0.113.66, 198.51.100.7")
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()["x-request-id"], "trace-me-42");

    // A failed sign-in leaves an audit line, without the password.
    let store = SqlStore::connect(&format!("sqlite://{}/db.sqlite", dir.path().display())).unwrap();
    let r = crate::helpers::register_client(ClientDraft {
        redirect_uris: vec!["http://127.0.0.1:1/cb".into()],
        ..Default::default()
    });
    store.create_client(&r.client).unwrap();
    let rp = Rp {
        id: r.client.id,
        secret: r.client_secret.unwrap(),
        redirect_uri: "http://127.0.0.1:1/cb".into(),
    };
    let browser = loopback_browser();
    let (login_url, _, html) = browser
        .open(&authorize_url(&instance, &rp, &Pkce::new(), ""))
        .await
        .page();
    browser
        .submit(
            &login_url,
            &html,
            &[("username", "mallory"), ("password", "hunter2-not-logged")],
        )
        .await;
    // And a whole sign-in, token and revocation leave theirs.
    let hash = portcullis::crypto::password::hash_password(&portcullis::domain::Secret::new(
        PASSWORD.into(),
    ))
    .unwrap();
    let sub = portcullis::crypto::tokens::random_uuid();
    store
        .create_user(&User::new(sub.clone(), "alice".into(), hash, now()))
        .unwrap();
    let pkce = Pkce::new();
    let callback = browser
        .sign_in(&authorize_url(&instance, &rp, &pkce, ""), "alice")
        .await;
    let tokens: serde_json::Value = crate::helpers::http()
        .post(instance.url("/token"))
        .basic_auth(&rp.id, Some(&rp.secret))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", &query(&callback, "code").unwrap()),
            ("redirect_uri", &rp.redirect_uri),
            ("code_verifier", &pkce.verifier),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let access_token = tokens["access_token"].as_str().unwrap().to_owned();
    let revoked = crate::helpers::http()
        .post(instance.url("/revoke"))
        .basic_auth(&rp.id, Some(&rp.secret))
        .form(&[("token", access_token.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(revoked.status(), 200);
    assert!(instance.terminate().success());

    let text = std::fs::read_to_string(&log).unwrap();
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).expect("every line is JSON"))
        .collect();
    let line = lines
        .iter()
        .find(|l| l["span"]["request_id"] == "trace-me-42")
        .unwrap_or_else(|| panic!("no line with the request id in:\n{text}"));
    assert_eq!(line["fields"]["path"], "/logout");
    assert_eq!(
        line["fields"]["client"], "198.51.100.7",
        "the address our proxy saw, not what the client wrote"
    );
    assert!(
        !text.contains("secret-looking-token"),
        "query strings never reach the log"
    );
    let audit = lines
        .iter()
        .find(|l| l["target"] == "audit" && l["fields"]["event"] == "login.failed")
        .unwrap_or_else(|| panic!("no audit line for the failed sign-in in:\n{text}"));
    assert!(audit["fields"]["account"].is_string() && audit["fields"]["client"].is_string());
    assert!(
        !text.contains("hunter2-not-logged"),
        "no password in the log"
    );
    assert!(
        !text.contains("mallory"),
        "a failed username is logged as a hash"
    );
    let audit_event = |name: &str| {
        lines
            .iter()
            .find(|l| l["target"] == "audit" && l["fields"]["event"] == name)
            .unwrap_or_else(|| panic!("no {name} audit line in:\n{text}"))
            .clone()
    };
    assert_eq!(
        audit_event("login.succeeded")["fields"]["sub"],
        sub.as_str()
    );
    assert_eq!(
        audit_event("consent.given")["fields"]["client_id"],
        rp.id.as_str()
    );
    assert_eq!(
        audit_event("tokens.issued")["fields"]["grant_type"],
        "authorization_code"
    );
    assert_eq!(
        audit_event("token.revoked")["fields"]["client_id"],
        rp.id.as_str()
    );
    assert!(!text.contains(&access_token), "no token in the log");
    assert!(!text.contains(&rp.secret), "no client secret in the log");
}

#[tokio::test]
async fn sigterm_lets_in_flight_requests_finish_then_exits_zero() {
    let dir = tempfile::TempDir::new().unwrap();
    let port = free_port();
    let metrics_port = free_port();
    let db = format!("sqlite://{}/db.sqlite", dir.path().display());
    let env = vec![
        (
            "PORTCULLIS_ISSUER".to_owned(),
            format!("http://127.0.0.1:{port}"),
        ),
        ("PORTCULLIS_DATABASE_URL".to_owned(), db.clone()),
        (
            "PORTCULLIS_METRICS_BIND".to_owned(),
            format!("127.0.0.1:{metrics_port}"),
        ),
    ];
    let instance = Instance::spawn(port, &env);
    instance.ready().await;
    let store = SqlStore::connect(&db).unwrap();
    let r = crate::helpers::register_client(ClientDraft {
        name: Some("RP".into()),
        redirect_uris: vec!["http://127.0.0.1:1/cb".into()],
        ..Default::default()
    });
    store.create_client(&r.client).unwrap();
    let rp = Rp {
        id: r.client.id,
        secret: String::new(),
        redirect_uri: "http://127.0.0.1:1/cb".into(),
    };

    // Login attempts are slow on purpose (argon2, a few at a time): a good in-flight load.
    let mut submissions = Vec::new();
    for i in 0..16 {
        let browser = loopback_browser();
        let (url, _, html) = browser
            .open(&authorize_url(&instance, &rp, &Pkce::new(), ""))
            .await
            .page();
        let mut form = crate::helpers::hidden_inputs(&html);
        // A name each: the throttle would stop a sixth guess at one name.
        form.push(("username".into(), format!("nobody-{i}")));
        form.push(("password".into(), "wrong".into()));
        submissions.push(async move {
            browser
                .http
                .post(url)
                .form(&form)
                .send()
                .await
                .map(|r| r.status().as_u16())
        });
    }
    let in_flight: Vec<_> = submissions.into_iter().map(tokio::spawn).collect();
    // Stop only once the server is answering all of them (a request still in the
    // kernel's queue when the listener closes was never accepted: not this test's case).
    let metrics = format!("http://127.0.0.1:{metrics_port}/metrics");
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let text = crate::helpers::get(&metrics)
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let answering: i64 = text
            .lines()
            .find_map(|l| l.strip_prefix("portcullis_http_requests_in_flight "))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0);
        if answering >= 16 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "in flight: {answering}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let pid = instance.child.id();
    let stopping = tokio::task::spawn_blocking(move || instance.terminate());
    for request in in_flight {
        assert_eq!(
            request
                .await
                .unwrap()
                .expect("an accepted request gets its response"),
            401
        );
    }
    assert!(
        stopping.await.unwrap().success(),
        "pid {pid} exits 0 after draining"
    );
}

#[tokio::test]
async fn the_same_one_time_code_raced_on_two_instances_is_accepted_once() {
    use portcullis::protocol::factors::totp;
    use portcullis::store::FactorStore;
    let Some(cluster) = Cluster::start().await else {
        return;
    };
    let rp = cluster.client();
    let alice = cluster
        .store
        .find_user_by_username("alice")
        .unwrap()
        .unwrap()
        .id;
    let secret = totp::TotpSecret::generate();
    let sealed = secret.seal(&crate::helpers::test_kek(), &alice).unwrap();
    assert!(cluster.store.begin_totp(&alice, &sealed, now()).unwrap());
    assert!(
        cluster
            .store
            .confirm_totp(&alice, &sealed, 1, now())
            .unwrap()
    );
    // One browser on each instance, each past the password, at the second-factor page.
    let mut at_factor = Vec::new();
    for instance in [&cluster.a, &cluster.b] {
        let browser = cluster.browser();
        let url = authorize_url(instance, &rp, &Pkce::new(), "");
        let (page, status, html) = browser
            .login(browser.open(&url).await, "alice")
            .await
            .page();
        assert_eq!(status, 200);
        assert!(page.path().ends_with("/login/factor"), "{page}");
        at_factor.push((browser, page, html));
    }
    let code = totp::code_at(&secret, now(), totp::DIGITS).unwrap();
    let [(a, page_a, html_a), (b, page_b, html_b)] = <[_; 2]>::try_from(at_factor).ok().unwrap();
    let fields = [("code", code.as_str())];
    let (on_a, on_b) = tokio::join!(
        a.submit(&page_a, &html_a, &fields),
        b.submit(&page_b, &html_b, &fields),
    );
    let refused = |outcome: &crate::helpers::Outcome| matches!(outcome, crate::helpers::Outcome::Page { status, .. } if *status == 401);
    assert_eq!(
        [refused(&on_a), refused(&on_b)]
            .iter()
            .filter(|r| **r)
            .count(),
        1,
        "exactly one of the two is refused (RFC 6238 §5.2)"
    );
}
