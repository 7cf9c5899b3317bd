//! `spawn_app()`: a real server on a random port over a fresh SQLite file, and a cookie-
//! keeping browser that walks the login and consent pages like a person would.

use std::collections::HashMap;
use std::net::TcpListener;
use std::path::PathBuf;
use std::sync::Arc;

use actix_web::dev::ServerHandle;
use portcullis::config::Settings;
use portcullis::crypto::kek::KeyEncryptionKey;
use portcullis::crypto::password::hash_password;
use portcullis::domain::{ManualClock, Secret};
use portcullis::protocol::registration::{ClientDraft, Registered, register};
use portcullis::startup::{build_state_with_clock, run};
use portcullis::store::{Store, User};
use reqwest::StatusCode;
use tempfile::TempDir;
use url::Url;

pub const PASSWORD: &str = "correct horse battery staple";

/// The key-encryption key every test instance runs with (bytes 0 to 31), so that clients
/// registered by a test and instances sharing a database agree.
pub const TEST_KEK: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";

pub fn test_kek() -> KeyEncryptionKey {
    KeyEncryptionKey::from_base64(TEST_KEK).unwrap()
}

/// Registers a client with the CLI's rules (not stored).
pub fn register_client(draft: ClientDraft) -> Registered {
    register(
        draft,
        "http://127.0.0.1",
        &test_kek(),
        portcullis::domain::now(),
    )
    .unwrap()
}

pub struct TestApp {
    /// The issuer URL; every endpoint is below it.
    pub issuer: String,
    pub port: u16,
    pub store: Arc<dyn Store>,
    pub dir: Arc<TempDir>,
    /// The instance's time: tests move it instead of sleeping.
    pub clock: Arc<ManualClock>,
    /// The instance's session store (to check what it holds).
    pub sessions: portcullis::sessions::Sessions,
    /// The port of the metrics listener (loopback, apart from the main one).
    pub metrics_port: u16,
    handle: ServerHandle,
}

#[derive(Default, Clone)]
pub struct Options {
    /// Extra `PORTCULLIS_*` settings, e.g. ("REGISTRATION", "open").
    pub env: Vec<(&'static str, String)>,
    /// Reuse a data folder (restart tests).
    pub dir: Option<Arc<TempDir>>,
    /// Listen on this port instead of a random one (restart tests keep the issuer).
    pub port: Option<u16>,
    /// A path for the issuer, e.g. "/auth".
    pub issuer_path: &'static str,
    /// Share a clock with other instances (cluster tests); a new one otherwise.
    pub clock: Option<Arc<ManualClock>>,
    /// Another database than a fresh SQLite file (PostgreSQL, or one shared with another
    /// instance).
    pub database_url: Option<String>,
    /// The issuer's host instead of `127.0.0.1`, e.g. `localhost` (passkeys need a domain
    /// as their RP ID). The server still listens on 127.0.0.1 only, where `localhost`
    /// reaches it.
    pub issuer_host: Option<&'static str>,
    /// A configuration file's text (e.g. `[[upstream]]` tables, which have no variables).
    pub config: Option<String>,
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(Options::default()).await
}

pub async fn spawn_app_with(options: Options) -> TestApp {
    let dir = options
        .dir
        .unwrap_or_else(|| Arc::new(TempDir::new().unwrap()));
    let listener = TcpListener::bind(("127.0.0.1", options.port.unwrap_or(0))).unwrap();
    let port = listener.local_addr().unwrap().port();
    let host = options.issuer_host.unwrap_or("127.0.0.1");
    let issuer = format!("http://{host}:{port}{}", options.issuer_path);
    let db: PathBuf = dir.path().join("portcullis.db");
    let mut env: HashMap<String, String> = HashMap::from([
        ("PORTCULLIS_ISSUER".into(), issuer.clone()),
        (
            "PORTCULLIS_DATABASE_URL".into(),
            options
                .database_url
                .clone()
                .unwrap_or_else(|| format!("sqlite://{}", db.display())),
        ),
        ("PORTCULLIS_KEY_ENCRYPTION_KEY".into(), TEST_KEK.into()),
    ]);
    for (key, value) in options.env {
        env.insert(format!("PORTCULLIS_{key}"), value);
    }
    let mut settings =
        Settings::from_sources(options.config.as_deref(), |k| env.get(k).cloned()).unwrap();
    // Mail written to files (no smtp_url) stays in the test's folder, whatever the database.
    settings.mail_outbox_dir = dir.path().join("outbox");
    let clock = options
        .clock
        .unwrap_or_else(|| Arc::new(ManualClock::starting_now()));
    let state = build_state_with_clock(settings, clock.clone())
        .await
        .unwrap_or_else(|e| panic!("build_state: {e:#}"));
    let store = state.store.clone();
    let sessions = state.sessions.clone();
    let metrics_listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let metrics_port = metrics_listener.local_addr().unwrap().port();
    tokio::spawn(
        portcullis::startup::run_metrics(metrics_listener, state.metrics.clone()).unwrap(),
    );
    let server = run(listener, state, Some(1)).unwrap();
    let handle = server.handle();
    tokio::spawn(server);
    TestApp {
        issuer,
        port,
        store,
        dir,
        clock,
        sessions,
        metrics_port,
        handle,
    }
}

pub struct TestClient {
    pub id: String,
    pub secret: Option<String>,
    pub redirect_uri: String,
}

impl TestApp {
    pub async fn stop(self) {
        self.handle.stop(true).await;
    }

    /// GET `path` and parse the body as JSON (whatever the status).
    pub async fn get_json(&self, path: &str) -> serde_json::Value {
        self::get(self.url(path))
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    /// The Prometheus metrics, from the metrics listener.
    pub async fn metrics_text(&self) -> String {
        self::get(format!("http://127.0.0.1:{}/metrics", self.metrics_port))
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.issuer)
    }

    /// Creates a user through the real store; returns its `sub`.
    pub async fn add_user(&self, username: &str) -> String {
        let store = self.store.clone();
        let username = username.to_owned();
        tokio::task::spawn_blocking(move || {
            let hash = hash_password(&Secret::new(PASSWORD.to_owned())).unwrap();
            let mut user = User::new(
                portcullis::crypto::tokens::random_uuid(),
                username.clone(),
                hash,
                portcullis::domain::now(),
            );
            user.email = Some(format!("{username}@example.com"));
            user.email_verified = true;
            user.name = Some(format!("{username} Example"));
            store.create_user(&user).unwrap();
            user.id
        })
        .await
        .unwrap()
    }

    /// Creates a user with the admin role; returns its `sub`.
    pub async fn add_admin(&self, username: &str) -> String {
        let sub = self.add_user(username).await;
        let store = self.store.clone();
        let id = sub.clone();
        tokio::task::spawn_blocking(move || {
            let mut user = store.find_user(&id).unwrap().unwrap();
            user.is_admin = true;
            store.update_user(&user, 1).unwrap();
        })
        .await
        .unwrap();
        sub
    }

    pub fn add_client(&self, public: bool) -> TestClient {
        self.add_client_with(ClientDraft {
            auth_method: public.then(|| "none".to_owned()),
            ..ClientDraft::default()
        })
    }

    /// Registers a client with the same rules as the CLI; a redirect URI is filled in.
    pub fn add_client_with(&self, mut draft: ClientDraft) -> TestClient {
        if draft.redirect_uris.is_empty() {
            draft.redirect_uris = vec!["http://127.0.0.1:1/callback".to_owned()];
        }
        draft.name.get_or_insert_with(|| "Test App".to_owned());
        let redirect_uri = draft.redirect_uris[0].clone();
        let registered = register_client(draft);
        self.store.create_client(&registered.client).unwrap();
        TestClient {
            id: registered.client.id,
            secret: registered.client_secret,
            redirect_uri,
        }
    }

    pub fn browser(&self) -> Browser {
        Browser {
            http: self::http_builder()
                .cookie_store(true)
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            issuer: self.issuer.clone(),
        }
    }

    /// An authorization URL for `client` with PKCE (S256) and state.
    pub fn authorize_url(&self, client: &TestClient, extra: &[(&str, &str)]) -> (String, Pkce) {
        let pkce = Pkce::new();
        let mut url = Url::parse(&self.url("/authorize")).unwrap();
        url.query_pairs_mut()
            .append_pair("response_type", "code")
            .append_pair("client_id", &client.id)
            .append_pair("redirect_uri", &client.redirect_uri)
            .append_pair("scope", "openid profile email")
            .append_pair("state", "st-123")
            .append_pair("nonce", "n-456")
            .append_pair("code_challenge", &pkce.challenge)
            .append_pair("code_challenge_method", "S256");
        let mut pairs: Vec<(String, String)> = url.query_pairs().into_owned().collect();
        for (k, v) in extra {
            pairs.retain(|(key, _)| key != k);
            if !v.is_empty() {
                pairs.push(((*k).to_owned(), (*v).to_owned()));
            }
        }
        url.query_pairs_mut().clear().extend_pairs(pairs);
        (url.to_string(), pkce)
    }

    /// A token request with `form`, authenticated with HTTP Basic when `basic` is given.
    pub async fn token_request(
        &self,
        form: &[(&str, &str)],
        basic: Option<(&str, &str)>,
    ) -> reqwest::Response {
        let mut request = self::http().post(self.url("/token")).form(form);
        if let Some((id, secret)) = basic {
            request = request.basic_auth(id, Some(secret));
        }
        request.send().await.unwrap()
    }

    /// Redeems the code in `callback` and returns the token response, which must be 200.
    pub async fn exchange(
        &self,
        client: &TestClient,
        callback: &Url,
        pkce: &Pkce,
    ) -> serde_json::Value {
        let code = query(callback, "code").unwrap_or_else(|| panic!("no code in {callback}"));
        let response = self.redeem(client, &code, Some(&pkce.verifier)).await;
        assert_eq!(response.status(), StatusCode::OK);
        response.json().await.unwrap()
    }

    /// Redeems a code at the token endpoint with client_secret_basic (or none).
    pub async fn redeem(
        &self,
        client: &TestClient,
        code: &str,
        verifier: Option<&str>,
    ) -> reqwest::Response {
        let mut form = vec![
            ("grant_type", "authorization_code".to_owned()),
            ("code", code.to_owned()),
            ("redirect_uri", client.redirect_uri.clone()),
        ];
        if let Some(v) = verifier {
            form.push(("code_verifier", v.to_owned()));
        }
        let mut request = self::http().post(self.url("/token"));
        match &client.secret {
            Some(secret) => request = request.basic_auth(&client.id, Some(secret)),
            None => form.push(("client_id", client.id.clone())),
        }
        request.form(&form).send().await.unwrap()
    }

    /// A browser in which `username` has signed in (and consented) through `client`.
    pub async fn signed_in(&self, client: &TestClient, username: &str) -> Browser {
        let browser = self.browser();
        let (url, _) = self.authorize_url(client, &[]);
        browser.sign_in(&url, username).await;
        browser
    }

    /// A confidential client that may refresh (authorization_code + refresh_token).
    pub fn add_refreshing_client(&self) -> TestClient {
        self.add_client_with(ClientDraft {
            grant_types: vec!["authorization_code".into(), "refresh_token".into()],
            ..ClientDraft::default()
        })
    }

    /// A confidential client registered for client_credentials only, with API scopes
    /// and one resource it may ask tokens for.
    pub fn add_service_client(&self, scope: &str, resources: &[&str]) -> TestClient {
        self.add_client_with(ClientDraft {
            grant_types: vec!["client_credentials".into()],
            redirect_uris: vec![],
            scope: Some(scope.into()),
            resources: resources.iter().map(|r| (*r).to_owned()).collect(),
            ..ClientDraft::default()
        })
    }

    /// A client_credentials access token of a new service client with `api:read` on
    /// `https://api.example/`; returns the client and the token.
    pub async fn service_token(&self) -> (TestClient, String) {
        let service = self.add_service_client("api:read", &["https://api.example/"]);
        let secret = service.secret.clone().unwrap();
        let response = self
            .token_request(
                &[
                    ("grant_type", "client_credentials"),
                    ("resource", "https://api.example/"),
                ],
                Some((&service.id, &secret)),
            )
            .await;
        assert_eq!(response.status(), StatusCode::OK);
        let tokens: serde_json::Value = response.json().await.unwrap();
        let access = tokens["access_token"].as_str().unwrap().to_owned();
        (service, access)
    }

    /// Sign-in with `offline_access` and `prompt=consent` in a fresh browser; returns the
    /// token response (with a refresh token) and the browser (still signed in).
    pub async fn offline_tokens(
        &self,
        client: &TestClient,
        username: &str,
    ) -> (serde_json::Value, Browser) {
        let (url, pkce) = self.authorize_url(
            client,
            &[
                ("scope", "openid profile offline_access"),
                ("prompt", "consent"),
            ],
        );
        let browser = self.browser();
        let callback = browser.sign_in(&url, username).await;
        let tokens = self.exchange(client, &callback, &pkce).await;
        assert!(tokens["refresh_token"].is_string(), "{tokens}");
        (tokens, browser)
    }

    /// A refresh request for `client` (client_secret_basic), with extra form fields.
    pub async fn refresh(
        &self,
        client: &TestClient,
        refresh_token: &str,
        extra: &[(&str, &str)],
    ) -> reqwest::Response {
        let mut form = vec![
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token),
        ];
        form.extend_from_slice(extra);
        let secret = client.secret.as_deref().expect("a confidential client");
        self.token_request(&form, Some((&client.id, secret))).await
    }

    /// POST `form` to `path` (revoke, introspect) with client_secret_basic.
    pub async fn post_as(
        &self,
        client: &TestClient,
        path: &str,
        form: &[(&str, &str)],
    ) -> reqwest::Response {
        let secret = client.secret.as_deref().expect("a confidential client");
        self::http()
            .post(self.url(path))
            .basic_auth(&client.id, Some(secret))
            .form(form)
            .send()
            .await
            .unwrap()
    }

    /// GET userinfo with `access_token`; returns the status.
    pub async fn userinfo_status(&self, access_token: &str) -> u16 {
        self::http()
            .get(self.url("/userinfo"))
            .bearer_auth(access_token)
            .send()
            .await
            .unwrap()
            .status()
            .as_u16()
    }

    /// A browser signed in to the account page with the password just now, on the
    /// security page; returns it with the page and the page's form token.
    pub async fn on_security_page(&self, username: &str) -> (Browser, String, String) {
        let browser = self.browser();
        let outcome = browser
            .login(browser.open(&self.url("/account")).await, username)
            .await;
        assert!(outcome.is_page("/account"));
        let (_, status, html) = browser.open(&self.url("/account/security")).await.page();
        assert_eq!(status, StatusCode::OK);
        let csrf = hidden_inputs(&html)
            .into_iter()
            .find(|(name, _)| name == "csrf")
            .map(|(_, value)| value)
            .expect("the page's form token");
        (browser, html, csrf)
    }

    /// Runs a whole browser sign-in and code redemption; returns the token response JSON.
    pub async fn tokens_for(&self, client: &TestClient, username: &str) -> serde_json::Value {
        let (url, pkce) = self.authorize_url(client, &[]);
        let callback = self.browser().sign_in(&url, username).await;
        self.exchange(client, &callback, &pkce).await
    }
}

pub struct Pkce {
    pub verifier: String,
    pub challenge: String,
}

impl Pkce {
    pub fn new() -> Self {
        let verifier = portcullis::crypto::tokens::random_token(32);
        let challenge = portcullis::crypto::tokens::pkce_s256(&verifier);
        Self {
            verifier,
            challenge,
        }
    }
}

pub fn query(url: &Url, name: &str) -> Option<String> {
    url.query_pairs()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

/// Where a browser ends up.
#[derive(Debug)]
pub enum Outcome {
    /// Redirected off the provider (to the client).
    Left(Url),
    /// A page of the provider.
    Page {
        url: Url,
        status: StatusCode,
        html: String,
    },
}

impl Outcome {
    pub fn left(self) -> Url {
        match self {
            Outcome::Left(url) => url,
            Outcome::Page { url, status, html } => {
                panic!("expected a redirect to the client, got {status} {url}: {html}")
            }
        }
    }

    pub fn page(self) -> (Url, StatusCode, String) {
        match self {
            Outcome::Page { url, status, html } => (url, status, html),
            Outcome::Left(url) => panic!("expected a page, got a redirect to {url}"),
        }
    }

    pub fn is_page(&self, path: &str) -> bool {
        matches!(self, Outcome::Page { url, .. } if url.path().ends_with(path))
    }
}

pub struct Browser {
    pub http: reqwest::Client,
    issuer: String,
}

impl Browser {
    /// A browser that treats every URL starting with `site` as the provider.
    pub fn new(http: reqwest::Client, site: &str) -> Self {
        Self {
            http,
            issuer: site.to_owned(),
        }
    }

    pub async fn open(&self, url: &str) -> Outcome {
        let response = self.http.get(url).send().await.unwrap();
        self.follow(response).await
    }

    /// Follows redirects within the provider; stops at a page or at a redirect elsewhere.
    pub async fn follow(&self, mut response: reqwest::Response) -> Outcome {
        loop {
            let url = response.url().clone();
            if response.status().is_redirection() {
                let location = response.headers()["location"].to_str().unwrap().to_owned();
                let next = url.join(&location).unwrap();
                if !next.as_str().starts_with(&self.issuer) || next.port() == Some(1) {
                    return Outcome::Left(next);
                }
                response = self.http.get(next).send().await.unwrap();
                continue;
            }
            let status = response.status();
            let html = response.text().await.unwrap();
            return Outcome::Page { url, status, html };
        }
    }

    /// Submits the page's form with its hidden inputs plus `fields`.
    pub async fn submit(&self, page_url: &Url, html: &str, fields: &[(&str, &str)]) -> Outcome {
        let action = form_action(html).expect("page has a form");
        let mut form = hidden_inputs(html);
        for (k, v) in fields {
            form.retain(|(name, _)| name != k);
            form.push(((*k).to_owned(), (*v).to_owned()));
        }
        let response = self
            .http
            .post(page_url.join(&action).unwrap())
            .form(&form)
            .send()
            .await
            .unwrap();
        self.follow(response).await
    }

    /// Posts the login form with the right password and returns the raw response (its
    /// cookies and redirect) without following it.
    pub async fn post_login(&self, outcome: Outcome, username: &str) -> reqwest::Response {
        let (url, _, html) = outcome.page();
        let mut form = hidden_inputs(&html);
        form.push(("username".into(), username.into()));
        form.push(("password".into(), PASSWORD.into()));
        let action = form_action(&html).expect("page has a form");
        self.http
            .post(url.join(&action).unwrap())
            .form(&form)
            .send()
            .await
            .unwrap()
    }

    pub async fn login(&self, outcome: Outcome, username: &str) -> Outcome {
        let (url, _, html) = outcome.page();
        assert!(
            url.path().ends_with("/login"),
            "expected the login page, got {url}"
        );
        self.submit(
            &url,
            &html,
            &[("username", username), ("password", PASSWORD)],
        )
        .await
    }

    /// Allows consent if the consent page is shown.
    pub async fn consent_if_asked(&self, outcome: Outcome) -> Outcome {
        if !outcome.is_page("/consent") {
            return outcome;
        }
        let (url, _, html) = outcome.page();
        self.submit(&url, &html, &[("decision", "allow")]).await
    }

    /// authorize → login → consent → the client's callback URL.
    pub async fn sign_in(&self, authorize_url: &str, username: &str) -> Url {
        let outcome = self.login(self.open(authorize_url).await, username).await;
        self.consent_if_asked(outcome).await.left()
    }
}

/// `(name, value)` of every `<input type="hidden">`.
pub fn hidden_inputs(html: &str) -> Vec<(String, String)> {
    html.split("<input")
        .skip(1)
        .filter_map(|tag| {
            let tag = &tag[..tag.find('>')?];
            if !tag.contains("type=\"hidden\"") {
                return None;
            }
            Some((
                attribute(tag, "name")?,
                attribute(tag, "value").unwrap_or_default(),
            ))
        })
        .collect()
}

fn form_action(html: &str) -> Option<String> {
    let start = html.find("<form")?;
    let tag = &html[start..start + html[start..].find('>')?];
    attribute(tag, "action")
}

fn attribute(tag: &str, name: &str) -> Option<String> {
    let marker = format!(" {name}=\"");
    let start = tag.find(&marker)? + marker.len();
    let end = start + tag[start..].find('"')?;
    Some(
        tag[start..end]
            .replace("&amp;", "&")
            .replace("&#x2f;", "/")
            .replace("&#47;", "/"),
    )
}

/// The `Set-Cookie` header that sets cookie `name`, whole.
pub fn set_cookie(response: &reqwest::Response, name: &str) -> Option<String> {
    response
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .find(|c| c.starts_with(&format!("{name}=")))
}

/// Part `index` (0 header, 1 claims) of a compact JWT, decoded.
pub fn jwt_part(token: &str, index: usize) -> serde_json::Value {
    use base64::Engine;
    let part = token.split('.').nth(index).expect("a JWT part");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(part)
        .unwrap();
    serde_json::from_slice(&bytes).unwrap()
}

/// A port that was free a moment ago (for processes that must be told their port).
///
/// Taken below the kernel's ephemeral range (32768–60999 on Linux), where every client
/// connection gets its local port: a port found free there (by binding port 0) may be
/// some connection's before the test's server binds it, which under a loaded suite made
/// a six-node Redis Cluster fail to start. Each port is handed out once per process, from
/// a start that depends on the process, so that two test processes rarely meet.
pub fn free_port() -> u16 {
    use std::sync::atomic::{AtomicU32, Ordering};
    const FIRST: u32 = 20_000;
    const SPAN: u32 = 12_000;
    static NEXT: AtomicU32 = AtomicU32::new(u32::MAX);
    let _ = NEXT.compare_exchange(
        u32::MAX,
        std::process::id().wrapping_mul(7_919) % SPAN,
        Ordering::Relaxed,
        Ordering::Relaxed,
    );
    for _ in 0..SPAN {
        let port = (FIRST + NEXT.fetch_add(1, Ordering::Relaxed) % SPAN) as u16;
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free port left in {FIRST}..{}", FIRST + SPAN)
}

/// An HTTP client builder for tests. rustls is built without a default crypto provider
/// (the provider's own fetches bring aws-lc-rs), so the process-wide one is installed
/// first.
pub fn http_builder() -> reqwest::ClientBuilder {
    portcullis::client_keys::install_tls_provider();
    reqwest::Client::builder()
}

pub fn http() -> reqwest::Client {
    http_builder().build().unwrap()
}

pub async fn get(url: impl reqwest::IntoUrl) -> reqwest::Result<reqwest::Response> {
    http().get(url).send().await
}

/// A response's status and its body as JSON (`null` when the body is empty).
pub async fn status_and_json(response: reqwest::Response) -> (StatusCode, serde_json::Value) {
    let status = response.status();
    let text = response.text().await.unwrap();
    let body = if text.is_empty() {
        serde_json::Value::Null
    } else {
        serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON: {text}"))
    };
    (status, body)
}
