//! The load driver of `bench/compare.py` for what `wrk` cannot do: browser login round
//! trips (authorize → login form → consent form → code → token, a fresh cookie jar each
//! time), the same with a passkey instead of a password (a software authenticator,
//! `support/soft_passkey.rs`, registered once through the account page), refresh-token chains (each refresh uses the token the last one returned) and
//! fixed-rate latency probes (open loop: latency counts from when a request was due, so a
//! stalled server cannot hide behind a slowed-down client), and closed-loop
//! client_credentials (`cc`) and userinfo (`userinfo`) loops, with `--proof dpop` a DPoP
//! proof (RFC 9449) on every request: one ES256 key per run, a fresh proof (new `jti`) per
//! request, the user's token bound to the key at its sign-in (`support/dpop_proof.rs`).
//!
//! It talks to any OpenID provider whose pages are plain HTML forms: Portcullis and the
//! node-oidc-provider peer alike. Loopback only; every mode stops after `--duration`.
//! Prints one JSON object per mode on stdout.
//!
//! ```text
//! cargo run --release --example bench_driver -- login --issuer http://127.0.0.1:4200 \
//!     --client-id ID --client-secret S --redirect-uri http://127.0.0.1:4199/cb \
//!     --username alice --password alice-password-123 --concurrency 8 --duration 10
//! ```
//!
//! Passkeys need a host-name issuer (`http://localhost:PORT`: an IP address cannot be a
//! WebAuthn RP ID). `passkey-register --passkeys FILE` signs each `--username` in with its
//! password and adds a passkey on `/account/security`, the private keys going to FILE;
//! `passkey-login --passkeys FILE` then signs in with them (no username, no password).
//!
//! `soak` (`support/soak.rs`, run by `bench/soak`) mixes sign-ins, refreshes, userinfo,
//! client_credentials, RP-initiated logouts and admin API reads, open loop at a fixed
//! rate for as long as asked, reporting each minute.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a tool run by hand: a panic is its error report

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use portcullis::crypto::tokens::{pkce_s256, random_token};
use reqwest::header::{AUTHORIZATION, CONTENT_TYPE, COOKIE, LOCATION, ORIGIN, SET_COOKIE};
use serde_json::{Value, json};

#[path = "support/dpop_proof.rs"]
mod dpop_proof;
#[path = "support/soak.rs"]
mod soak;
#[allow(dead_code)] // the tests' knobs for faulty clients
#[path = "../src/protocol/passkeys/soft_authenticator.rs"]
mod soft_authenticator;
#[path = "support/soft_passkey.rs"]
mod soft_passkey;

use dpop_proof::ProofKey;

use soft_passkey::Passkey;

#[derive(Clone)]
struct Target {
    issuer: String,
    /// The issuer's origin, which a browser sends as `Origin` with a script's POST and
    /// puts in a passkey's client data.
    origin: String,
    authorization_endpoint: String,
    token_endpoint: String,
    jwks_uri: String,
    userinfo_endpoint: String,
    /// RP-initiated logout (`soak`'s `logout`).
    end_session_endpoint: String,
    client_id: String,
    client_secret: String,
    /// The client of the fixed-rate client_credentials probes.
    service: (String, String),
    redirect_uri: String,
    /// Sign-in names, comma-separated: worker i signs in as the (i mod n)-th, as a flood
    /// of different people would (one name from one address is throttled after five
    /// concurrent attempts, by design).
    usernames: Vec<String>,
    password: String,
    scope: String,
    http: reqwest::Client,
    /// Sign-ins come from many loopback addresses (127.1.x.y), each sign-in from the next:
    /// a flood of people, not one address (whose pending sign-ins are capped, by design).
    browsers: Arc<Vec<reqwest::Client>>,
    next_browser: Arc<AtomicUsize>,
    /// HTTP requests the sign-ins made (each login's share is in the reports).
    requests: Arc<AtomicUsize>,
    /// `--proof dpop`: every token request (and the resource requests of `userinfo`)
    /// carries a fresh proof by this key.
    dpop: Option<Arc<ProofKey>>,
}

impl Target {
    fn next_browser(&self) -> &reqwest::Client {
        &self.browsers[self.next_browser.fetch_add(1, Ordering::Relaxed) % self.browsers.len()]
    }
}

const BROWSER_ADDRESSES: usize = 1024;

fn http_client(local: Option<std::net::IpAddr>) -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .pool_max_idle_per_host(256)
        .local_address(local)
        .build()
        .expect("an HTTP client")
}

struct Args(HashMap<String, String>);

impl Args {
    fn parse() -> (String, Args) {
        let mut raw = std::env::args().skip(1);
        let mode = raw.next().unwrap_or_default();
        let mut map = HashMap::new();
        while let Some(key) = raw.next() {
            let key = key.trim_start_matches("--").to_owned();
            map.insert(key, raw.next().unwrap_or_default());
        }
        (mode, Args(map))
    }
    fn get(&self, key: &str) -> String {
        self.0
            .get(key)
            .cloned()
            .unwrap_or_else(|| panic!("--{key} is required"))
    }
    fn or(&self, key: &str, default: &str) -> String {
        self.0.get(key).cloned().unwrap_or_else(|| default.into())
    }
    fn number(&self, key: &str, default: f64) -> f64 {
        self.0
            .get(key)
            .map(|v| v.parse().expect("a number"))
            .unwrap_or(default)
    }
}

/// The cookies of one simulated browser (all on one host, so paths are ignored).
#[derive(Default)]
struct Jar(Vec<(String, String)>);

impl Jar {
    fn take(&mut self, response: &reqwest::Response) {
        for header in response.headers().get_all(SET_COOKIE) {
            let Ok(text) = header.to_str() else { continue };
            let pair = text.split(';').next().unwrap_or_default();
            let Some((name, value)) = pair.split_once('=') else {
                continue;
            };
            let expired = text.to_ascii_lowercase().contains("max-age=0") || value.is_empty();
            self.0.retain(|(n, _)| n != name);
            if !expired {
                self.0.push((name.trim().to_owned(), value.to_owned()));
            }
        }
    }
    fn header(&self) -> String {
        self.0
            .iter()
            .map(|(n, v)| format!("{n}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }
}

fn unescape(s: &str) -> String {
    s.replace("&amp;", "&")
        .replace("&#38;", "&")
        .replace("&quot;", "\"")
        .replace("&#34;", "\"")
        .replace("&#x2F;", "/")
        .replace("&#47;", "/")
}

fn attribute(tag: &str, name: &str) -> Option<String> {
    let marker = format!(" {name}=\"");
    let start = tag.find(&marker)? + marker.len();
    let rest = &tag[start..];
    Some(unescape(&rest[..rest.find('"')?]))
}

/// The first form of a page that a script does not drive (`data-passkey`): where it goes
/// and what it sends, filled in as a person would (credentials on a sign-in form, "allow"
/// on a consent form).
fn fill_form(
    html: &str,
    target: &Target,
    username: &str,
) -> Option<(String, Vec<(String, String)>)> {
    let mut search = 0;
    let (form, open) = loop {
        let form_start = search + html[search..].find("<form")?;
        let form_end = form_start + html[form_start..].find("</form>")?;
        let form = &html[form_start..form_end];
        let open = &form[..form.find('>')?];
        if !open.contains(" data-passkey=") {
            break (form, open);
        }
        search = form_end;
    };
    let action = attribute(open, "action").unwrap_or_default();
    let mut fields = Vec::new();
    for tag in form.split("<input").skip(1) {
        let tag = &tag[..tag.find('>').unwrap_or(tag.len())];
        let Some(name) = attribute(tag, "name") else {
            continue;
        };
        match name.as_str() {
            "username" => fields.push((name, username.to_owned())),
            "password" => fields.push((name, target.password.clone())),
            _ if tag.contains("type=\"hidden\"") => {
                fields.push((name, attribute(tag, "value").unwrap_or_default()))
            }
            _ => {}
        }
    }
    // A consent form's submit buttons may carry the decision: "allow" if there is one.
    let buttons: Vec<(String, String)> = form
        .split("<button")
        .skip(1)
        .filter_map(|tag| {
            let tag = &tag[..tag.find('>').unwrap_or(tag.len())];
            Some((attribute(tag, "name")?, attribute(tag, "value")?))
        })
        .collect();
    if let Some(button) = buttons
        .iter()
        .find(|(_, value)| value == "allow")
        .or(buttons.first())
    {
        fields.push(button.clone());
    }
    Some((action, fields))
}

fn absolute(base: &str, location: &str) -> String {
    if location.starts_with("http://") || location.starts_with("https://") {
        location.to_owned()
    } else {
        format!("{base}{location}")
    }
}

fn basic(target: &Target) -> String {
    basic_for(&target.client_id, &target.client_secret)
}

fn basic_for(client_id: &str, client_secret: &str) -> String {
    use base64::Engine;
    let enc = |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!(
            "{}:{}",
            enc(client_id),
            enc(client_secret)
        ))
    )
}

/// One password sign-in from an empty cookie jar; returns the token response.
async fn login(target: &Target, worker: usize) -> Result<Value, String> {
    let username = &target.usernames[worker % target.usernames.len()];
    sign_in(
        target,
        target.next_browser(),
        &mut Jar::default(),
        username,
        None,
    )
    .await
}

/// One passkey sign-in from an empty cookie jar: no username, no password.
async fn passkey_login(target: &Target, passkey: &Passkey) -> Result<Value, String> {
    sign_in(
        target,
        target.next_browser(),
        &mut Jar::default(),
        "",
        Some(passkey),
    )
    .await
}

/// A browser's round trip from the authorization request to the tokens: the login page
/// answered with the password or, given `passkey`, with it (the page's passkey ceremony),
/// the consent page with "allow", then the code redeemed. `jar` keeps the cookies (the
/// session's among them) for what the caller does next.
async fn sign_in(
    target: &Target,
    browser: &reqwest::Client,
    jar: &mut Jar,
    username: &str,
    passkey: Option<&Passkey>,
) -> Result<Value, String> {
    let verifier = random_token(32);
    let state = random_token(12);
    let mut url = url::Url::parse(&target.authorization_endpoint).map_err(|e| e.to_string())?;
    url.query_pairs_mut()
        .append_pair("response_type", "code")
        .append_pair("client_id", &target.client_id)
        .append_pair("redirect_uri", &target.redirect_uri)
        .append_pair("scope", &target.scope)
        .append_pair("state", &state)
        .append_pair("prompt", "consent")
        .append_pair("code_challenge", &pkce_s256(&verifier))
        .append_pair("code_challenge_method", "S256");
    let mut next = url.to_string();
    let mut form: Option<Vec<(String, String)>> = None;
    for _ in 0..12 {
        let request = match form.take() {
            Some(fields) => browser.post(&next).form(&fields),
            None => browser.get(&next),
        };
        target.requests.fetch_add(1, Ordering::Relaxed);
        let response = request
            .header(COOKIE, jar.header())
            .send()
            .await
            .map_err(|e| e.to_string())?;
        jar.take(&response);
        let status = response.status();
        if status.is_redirection() {
            let location = response
                .headers()
                .get(LOCATION)
                .and_then(|l| l.to_str().ok())
                .ok_or("redirect without Location")?
                .to_owned();
            if location.starts_with(&target.redirect_uri) {
                let callback = url::Url::parse(&location).map_err(|e| e.to_string())?;
                let param = |k: &str| {
                    callback
                        .query_pairs()
                        .find(|(n, _)| n == k)
                        .map(|(_, v)| v.into_owned())
                };
                if param("state").as_deref() != Some(state.as_str()) {
                    return Err(format!("callback without our state: {location}"));
                }
                let code = param("code").ok_or_else(|| format!("no code: {location}"))?;
                return redeem(target, &code, &verifier).await;
            }
            next = absolute(&target.issuer, &location);
            continue;
        }
        if !status.is_success() {
            return Err(format!("{status} at {next}"));
        }
        let html = response.text().await.map_err(|e| e.to_string())?;
        if let Some(passkey) = passkey
            && let Some(block) = PasskeyBlock::find(&html, "sign-in")
        {
            let redirect = passkey_sign_in(target, browser, jar, &block, passkey).await?;
            next = absolute(&target.issuer, &redirect);
            continue;
        }
        let (action, fields) = fill_form(&html, target, username).ok_or("a page without a form")?;
        if !action.is_empty() {
            next = absolute(&target.issuer, &action);
        }
        form = Some(fields);
    }
    Err("the sign-in did not finish in 12 steps".into())
}

/// What a page tells `static/passkey.js` (its `data-passkey="KIND"` element): where the
/// ceremony's options and answer go, and what to send with them.
struct PasskeyBlock {
    options: String,
    finish: String,
    csrf: String,
    interaction: Option<String>,
}

impl PasskeyBlock {
    fn find(html: &str, kind: &str) -> Option<Self> {
        let at = html.find(&format!(" data-passkey=\"{kind}\""))?;
        let start = html[..at].rfind('<')?;
        let tag = &html[start..at + html[at..].find('>')?];
        Some(Self {
            options: attribute(tag, "data-passkey-options")?,
            finish: attribute(tag, "data-passkey-finish")?,
            csrf: attribute(tag, "data-passkey-csrf")?,
            interaction: attribute(tag, "data-passkey-interaction"),
        })
    }

    /// The body of both POSTs: `{csrf, interaction}` and what the ceremony adds.
    fn body(&self, extra: Value) -> Value {
        let mut body = json!({ "csrf": self.csrf });
        if let Some(interaction) = &self.interaction {
            body["interaction"] = json!(interaction);
        }
        if let (Some(body), Value::Object(extra)) = (body.as_object_mut(), extra) {
            body.extend(extra);
        }
        body
    }
}

/// A script's JSON POST from one of the issuer's pages (`fetch` sends `Origin`).
async fn post_json(
    target: &Target,
    browser: &reqwest::Client,
    jar: &mut Jar,
    url: &str,
    body: &Value,
) -> Result<Value, String> {
    target.requests.fetch_add(1, Ordering::Relaxed);
    let response = browser
        .post(absolute(&target.issuer, url))
        .header(COOKIE, jar.header())
        .header(ORIGIN, &target.origin)
        .json(body)
        .send()
        .await
        .map_err(|e| e.to_string())?;
    jar.take(&response);
    let status = response.status();
    let text = response.text().await.map_err(|e| e.to_string())?;
    if !status.is_success() {
        return Err(format!("{status} at {url}: {text}"));
    }
    serde_json::from_str(&text).map_err(|e| format!("{url}: {e}: {text}"))
}

/// The `publicKey` options of a ceremony (also accepted wrapped as `{"publicKey": ...}`).
fn public_key_options(answer: Value) -> Value {
    match answer.get("publicKey") {
        Some(options) => options.clone(),
        None => answer,
    }
}

/// The login page's passkey ceremony, as `static/passkey.js` runs it when the person
/// picks a passkey: options, assertion, answer; returns where the answer sends the browser.
async fn passkey_sign_in(
    target: &Target,
    browser: &reqwest::Client,
    jar: &mut Jar,
    block: &PasskeyBlock,
    passkey: &Passkey,
) -> Result<String, String> {
    let options = post_json(target, browser, jar, &block.options, &block.body(json!({}))).await?;
    let credential = passkey.get(&public_key_options(options))?;
    let answer = post_json(
        target,
        browser,
        jar,
        &block.finish,
        &block.body(json!({ "credential": credential })),
    )
    .await?;
    answer["redirect"]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| format!("a passkey sign-in without a redirect: {answer}"))
}

/// Signs `username` in with the password, then adds a passkey on the account's security
/// page (a recent sign-in, so allowed) as a person would: `passkey-register`'s setup.
async fn register_passkey(target: &Target, username: &str) -> Result<Passkey, String> {
    let browser = target.next_browser();
    let mut jar = Jar::default();
    sign_in(target, browser, &mut jar, username, None).await?;
    let page = format!("{}/account/security", target.issuer);
    let response = browser
        .get(&page)
        .header(COOKIE, jar.header())
        .send()
        .await
        .map_err(|e| e.to_string())?;
    jar.take(&response);
    let status = response.status();
    let html = response.text().await.map_err(|e| e.to_string())?;
    let block = PasskeyBlock::find(&html, "register").ok_or_else(|| {
        format!("{status} at {page}: no data-passkey=\"register\" (passkeys off?)")
    })?;
    let options = post_json(
        target,
        browser,
        &mut jar,
        &block.options,
        &block.body(json!({})),
    )
    .await?;
    let (passkey, credential) =
        Passkey::create(username, &target.origin, &public_key_options(options))?;
    post_json(
        target,
        browser,
        &mut jar,
        &block.finish,
        &block.body(json!({ "credential": credential, "name": "bench" })),
    )
    .await?;
    Ok(passkey)
}

fn read_passkeys(path: &str) -> Vec<Passkey> {
    let saved: Vec<Value> = serde_json::from_str(
        &std::fs::read_to_string(path).unwrap_or_else(|e| panic!("--passkeys {path}: {e}")),
    )
    .expect("a JSON list of passkeys");
    let passkeys: Vec<Passkey> = saved
        .iter()
        .map(|p| Passkey::from_json(p).expect("a saved passkey"))
        .collect();
    assert!(
        !passkeys.is_empty(),
        "--passkeys {path}: no passkeys (run passkey-register)"
    );
    passkeys
}

async fn token_request(target: &Target, form: &[(&str, &str)]) -> Result<Value, String> {
    let mut request = target
        .http
        .post(&target.token_endpoint)
        .header(AUTHORIZATION, basic(target));
    if let Some(key) = &target.dpop {
        request = request.header("DPoP", key.proof("POST", &target.token_endpoint, None));
    }
    let response = request.form(form).send().await.map_err(|e| e.to_string())?;
    let status = response.status();
    let body: Value = response.json().await.map_err(|e| e.to_string())?;
    if !status.is_success() {
        return Err(format!("token endpoint: {status} {body}"));
    }
    Ok(body)
}

async fn redeem(target: &Target, code: &str, verifier: &str) -> Result<Value, String> {
    target.requests.fetch_add(1, Ordering::Relaxed);
    token_request(
        target,
        &[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", &target.redirect_uri),
            ("code_verifier", verifier),
        ],
    )
    .await
}

#[derive(Default)]
struct Tally {
    latencies: Vec<Duration>,
    errors: u64,
    first_error: Option<String>,
}

impl Tally {
    fn merge(&mut self, other: Tally) {
        self.latencies.extend(other.latencies);
        self.errors += other.errors;
        self.first_error = self.first_error.take().or(other.first_error);
    }
    fn record(&mut self, started: Instant, result: Result<(), String>) {
        match result {
            Ok(()) => self.latencies.push(started.elapsed()),
            Err(e) => {
                self.errors += 1;
                self.first_error.get_or_insert(e);
            }
        }
    }
    fn report(mut self, name: &str, elapsed: Duration) -> Value {
        self.latencies.sort();
        let pct = |p: f64| {
            if self.latencies.is_empty() {
                return 0.0;
            }
            let i = ((self.latencies.len() as f64 * p).ceil() as usize).saturating_sub(1);
            self.latencies[i.min(self.latencies.len() - 1)].as_secs_f64() * 1e3
        };
        json!({
            "name": name,
            "ok": self.latencies.len(),
            "errors": self.errors,
            "first_error": self.first_error,
            "seconds": elapsed.as_secs_f64(),
            "rate": self.latencies.len() as f64 / elapsed.as_secs_f64(),
            "p50_ms": pct(0.50),
            "p99_ms": pct(0.99),
        })
    }
}

/// `concurrency` workers each repeating `step` until `duration` has passed.
async fn closed_loop<F, Fut>(name: &str, concurrency: usize, duration: Duration, step: F) -> Value
where
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = Result<(), String>> + Send,
{
    let step = Arc::new(step);
    let started = Instant::now();
    let deadline = started + duration;
    let workers: Vec<_> = (0..concurrency)
        .map(|worker| {
            let step = step.clone();
            tokio::spawn(async move {
                let mut tally = Tally::default();
                while Instant::now() < deadline {
                    let t = Instant::now();
                    let result = step(worker).await;
                    tally.record(t, result);
                }
                tally
            })
        })
        .collect();
    let mut tally = Tally::default();
    for w in workers {
        tally.merge(w.await.expect("worker"));
    }
    tally.report(name, started.elapsed())
}

/// Requests due every 1/rate seconds, each on its own task, whatever the server does.
async fn open_loop<F, Fut>(name: &str, rate: f64, duration: Duration, request: F) -> Value
where
    F: Fn() -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = Result<(), String>> + Send + 'static,
{
    let started = Instant::now();
    let interval = Duration::from_secs_f64(1.0 / rate);
    let count = (duration.as_secs_f64() * rate) as u32;
    let mut tasks = Vec::with_capacity(count as usize);
    for i in 0..count {
        let due = started + interval * i;
        tokio::time::sleep_until(due.into()).await;
        let fut = request();
        tasks.push(tokio::spawn(
            async move { fut.await.map(|()| due.elapsed()) },
        ));
    }
    let mut tally = Tally::default();
    for t in tasks {
        match t.await.expect("probe") {
            Ok(latency) => tally.latencies.push(latency),
            Err(e) => tally.record(Instant::now(), Err(e)),
        }
    }
    tally.report(name, started.elapsed())
}

fn probe(
    target: &Target,
    kind: &str,
    bearer: &str,
) -> impl Fn() -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<(), String>> + Send>>
+ Send
+ Sync
+ 'static {
    let target = target.clone();
    let kind = kind.to_owned();
    let bearer = bearer.to_owned();
    move || {
        let (target, kind, bearer) = (target.clone(), kind.clone(), bearer.clone());
        Box::pin(async move {
            let request = match kind.as_str() {
                "jwks" => target.http.get(&target.jwks_uri),
                "userinfo" => target
                    .http
                    .get(&target.userinfo_endpoint)
                    .header(AUTHORIZATION, format!("Bearer {bearer}")),
                _ => target
                    .http
                    .post(&target.token_endpoint)
                    .header(
                        AUTHORIZATION,
                        basic_for(&target.service.0, &target.service.1),
                    )
                    .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
                    .body(format!(
                        "grant_type=client_credentials&scope={}",
                        url::form_urlencoded::byte_serialize(bearer.as_bytes()).collect::<String>()
                    )),
            };
            let response = request.send().await.map_err(|e| e.to_string())?;
            let status = response.status();
            response.bytes().await.map_err(|e| e.to_string())?;
            if status.is_success() {
                Ok(())
            } else {
                Err(format!("{kind}: {status}"))
            }
        })
    }
}

/// A client_credentials request of the service client, with a proof under `--proof dpop`.
async fn client_credentials(target: &Target) -> Result<(), String> {
    let mut request = target
        .http
        .post(&target.token_endpoint)
        .header(
            AUTHORIZATION,
            basic_for(&target.service.0, &target.service.1),
        )
        .header(CONTENT_TYPE, "application/x-www-form-urlencoded");
    if let Some(key) = &target.dpop {
        request = request.header("DPoP", key.proof("POST", &target.token_endpoint, None));
    }
    let body = format!(
        "grant_type=client_credentials&scope={}",
        url::form_urlencoded::byte_serialize(target.scope.as_bytes()).collect::<String>()
    );
    let response = request.body(body).send().await.map_err(|e| e.to_string())?;
    let status = response.status();
    let body = response.bytes().await.map_err(|e| e.to_string())?;
    if status.is_success() {
        Ok(())
    } else {
        Err(format!("cc: {status} {}", String::from_utf8_lossy(&body)))
    }
}

/// A userinfo GET with `access`: `DPoP` and a fresh proof under `--proof dpop`, else Bearer.
async fn userinfo(target: &Target, access: &str) -> Result<(), String> {
    let request = target.http.get(&target.userinfo_endpoint);
    let request = match &target.dpop {
        Some(key) => request
            .header(AUTHORIZATION, format!("DPoP {access}"))
            .header(
                "DPoP",
                key.proof("GET", &target.userinfo_endpoint, Some(access)),
            ),
        None => request.header(AUTHORIZATION, format!("Bearer {access}")),
    };
    let response = request.send().await.map_err(|e| e.to_string())?;
    let status = response.status();
    let body = response.bytes().await.map_err(|e| e.to_string())?;
    if status.is_success() {
        Ok(())
    } else {
        Err(format!(
            "userinfo: {status} {}",
            String::from_utf8_lossy(&body)
        ))
    }
}

/// `--probes kind:rate:arg,...` (kind: cc, jwks, userinfo; arg: scope or bearer token).
fn probes(target: &Target, spec: &str, duration: Duration) -> Vec<tokio::task::JoinHandle<Value>> {
    spec.split(',')
        .filter(|s| !s.is_empty())
        .map(|one| {
            let mut parts = one.splitn(3, ':');
            let kind = parts.next().unwrap_or_default().to_owned();
            let rate: f64 = parts.next().unwrap_or("50").parse().expect("rate");
            let arg = parts.next().unwrap_or_default().to_owned();
            let request = probe(target, &kind, &arg);
            tokio::spawn(async move { open_loop(&kind, rate, duration, request).await })
        })
        .collect()
}

/// Raw JWT signing on this thread (`--alg RS256|ES256`, `--duration`): the ceiling the token
/// endpoint is measured against, through the same key code it signs with.
fn sign(args: &Args) -> Value {
    use portcullis::crypto::{KeyAlgorithm, SigningKey};
    let alg = match args.or("alg", "RS256").as_str() {
        "ES256" => KeyAlgorithm::Es256,
        _ => KeyAlgorithm::Rs256,
    };
    let (key, _) = SigningKey::generate(alg).expect("a key");
    let claims = json!({"iss": "http://127.0.0.1:4200", "sub": random_token(16), "aud": "urn:bench:api",
        "client_id": random_token(18), "scope": "api:read", "jti": random_token(16),
        "exp": 2_000_000_000u64, "iat": 1_800_000_000u64});
    let duration = Duration::from_secs_f64(args.number("duration", 3.0));
    let started = Instant::now();
    let mut n = 0u64;
    while started.elapsed() < duration {
        std::hint::black_box(key.sign_jwt("at+jwt", &claims).expect("a signature"));
        n += 1;
    }
    json!({ "alg": alg.as_str(), "signatures": n, "rate": n as f64 / started.elapsed().as_secs_f64() })
}

/// Raw ES256 verifications per second through aws-lc, the library the server verifies DPoP
/// proofs with: the least a proof check costs, which the DPoP rows are set against.
fn verify(args: &Args) -> Value {
    use aws_lc_rs::signature::{
        ECDSA_P256_SHA256_FIXED, ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair,
        UnparsedPublicKey,
    };
    let key = EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING).expect("a P-256 key");
    let message = random_token(200);
    let signature = key
        .sign(&aws_lc_rs::rand::SystemRandom::new(), message.as_bytes())
        .expect("a signature");
    let public = key.public_key().as_ref().to_vec();
    let duration = Duration::from_secs_f64(args.number("duration", 3.0));
    let started = Instant::now();
    let mut n = 0u64;
    while started.elapsed() < duration {
        // Parsed each time, as the server parses each proof's key.
        UnparsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, std::hint::black_box(&public))
            .verify(message.as_bytes(), signature.as_ref())
            .expect("a valid signature");
        n += 1;
    }
    json!({ "alg": "ES256", "verifications": n, "rate": n as f64 / started.elapsed().as_secs_f64() })
}

/// HTTP requests per sign-in, the token request included (a failed sign-in's requests
/// count too, so this is exact only without errors).
fn per_login(target: &Target, report: &Value) -> f64 {
    let done = report["ok"].as_u64().unwrap_or(0) + report["errors"].as_u64().unwrap_or(0);
    if done == 0 {
        return 0.0;
    }
    target.requests.load(Ordering::Relaxed) as f64 / done as f64
}

#[tokio::main]
async fn main() {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let (mode, args) = Args::parse();
    match mode.as_str() {
        "sign" => return println!("{}", sign(&args)),
        "verify" => return println!("{}", verify(&args)),
        _ => {}
    }
    let issuer = args.get("issuer");
    let http = http_client(None);
    let browsers = (0..BROWSER_ADDRESSES)
        .map(|i| {
            let [hi, lo] = (i as u16).to_be_bytes();
            http_client(Some(std::net::Ipv4Addr::new(127, 1, hi, lo.max(1)).into()))
        })
        .collect();
    let discovery: Value = http
        .get(format!("{issuer}/.well-known/openid-configuration"))
        .send()
        .await
        .and_then(|r| r.error_for_status())
        .expect("discovery")
        .json()
        .await
        .expect("discovery JSON");
    let endpoint = |name: &str| discovery[name].as_str().unwrap_or_default().to_owned();
    let target = Target {
        issuer: issuer.clone(),
        origin: url::Url::parse(&issuer)
            .expect("--issuer is a URL")
            .origin()
            .ascii_serialization(),
        authorization_endpoint: endpoint("authorization_endpoint"),
        token_endpoint: endpoint("token_endpoint"),
        jwks_uri: endpoint("jwks_uri"),
        userinfo_endpoint: endpoint("userinfo_endpoint"),
        end_session_endpoint: endpoint("end_session_endpoint"),
        client_id: args.or("client-id", ""),
        client_secret: args.or("client-secret", ""),
        service: (args.or("service-id", ""), args.or("service-secret", "")),
        redirect_uri: args.or("redirect-uri", ""),
        usernames: args
            .or("username", "")
            .split(',')
            .map(str::to_owned)
            .collect(),
        password: args.or("password", ""),
        scope: args.or("scope", "openid profile email offline_access"),
        http,
        browsers: Arc::new(browsers),
        next_browser: Arc::new(AtomicUsize::new(0)),
        requests: Arc::new(AtomicUsize::new(0)),
        dpop: match args.or("proof", "none").as_str() {
            "dpop" => Some(Arc::new(ProofKey::generate())),
            "none" => None,
            other => panic!("--proof {other:?}: dpop or none"),
        },
    };
    let duration = Duration::from_secs_f64(args.number("duration", 10.0));
    let concurrency = args.number("concurrency", 8.0) as usize;
    let report = match mode.as_str() {
        // One sign-in: its token response, for scenarios that need a user's tokens.
        "tokens" => login(&target, 0).await.expect("a sign-in"),
        "login" => {
            let flood_target = target.clone();
            let running = probes(&target, &args.or("probes", ""), duration);
            let mut logins = closed_loop("login", concurrency, duration, move |worker| {
                let target = flood_target.clone();
                async move { login(&target, worker).await.map(|_| ()) }
            })
            .await;
            let mut probe_reports = Vec::new();
            for p in running {
                probe_reports.push(p.await.expect("probe"));
            }
            logins["requests_per_login"] = json!(per_login(&target, &logins));
            json!({ "login": logins, "probes": probe_reports })
        }
        // Setup for passkey-login: a passkey for each --username, kept in --passkeys.
        "passkey-register" => {
            let mut saved = Vec::new();
            for username in &target.usernames {
                let passkey = register_passkey(&target, username)
                    .await
                    .unwrap_or_else(|e| panic!("a passkey for {username}: {e}"));
                saved.push(passkey.to_json());
            }
            let path = args.get("passkeys");
            std::fs::write(&path, Value::Array(saved).to_string()).expect("--passkeys written");
            json!({ "registered": target.usernames.len(), "passkeys": path })
        }
        // Passkey sign-ins, worker i with the (i mod n)-th passkey of --passkeys.
        "passkey-login" => {
            let passkeys = Arc::new(read_passkeys(&args.get("passkeys")));
            let flood_target = target.clone();
            let mut logins = closed_loop("passkey-login", concurrency, duration, move |worker| {
                let (target, passkeys) = (flood_target.clone(), passkeys.clone());
                async move {
                    let passkey = &passkeys[worker % passkeys.len()];
                    passkey_login(&target, passkey).await.map(|_| ())
                }
            })
            .await;
            logins["requests_per_login"] = json!(per_login(&target, &logins));
            json!({ "login": logins })
        }
        "refresh" => {
            // Each worker signs in once, then refreshes in a chain: a rotated refresh
            // token is used once, as a client must.
            let mut chains = Vec::new();
            for worker in 0..concurrency {
                let tokens = login(&target, worker).await.expect("a sign-in");
                let refresh = tokens["refresh_token"]
                    .as_str()
                    .expect("a refresh token (offline_access)")
                    .to_owned();
                chains.push(tokio::sync::Mutex::new(refresh));
            }
            let chains = Arc::new(chains);
            let chain_target = target.clone();
            closed_loop("refresh", concurrency, duration, move |worker| {
                let (target, chains) = (chain_target.clone(), chains.clone());
                async move {
                    let mut current = chains[worker].lock().await;
                    let body = token_request(
                        &target,
                        &[("grant_type", "refresh_token"), ("refresh_token", &current)],
                    )
                    .await?;
                    if let Some(next) = body["refresh_token"].as_str() {
                        *current = next.to_owned();
                    }
                    body["access_token"]
                        .as_str()
                        .map(|_| ())
                        .ok_or_else(|| format!("no access token: {body}"))
                }
            })
            .await
        }
        // client_credentials of the service client (`--scope`), closed loop.
        "cc" => {
            let loop_target = target.clone();
            closed_loop("cc", concurrency, duration, move |_| {
                let target = loop_target.clone();
                async move { client_credentials(&target).await }
            })
            .await
        }
        // Userinfo with one user's access token (bound to the run's key with `--proof
        // dpop`), closed loop.
        "userinfo" => {
            let tokens = login(&target, 0).await.expect("a sign-in");
            let access = Arc::new(
                tokens["access_token"]
                    .as_str()
                    .expect("an access token")
                    .to_owned(),
            );
            let loop_target = target.clone();
            closed_loop("userinfo", concurrency, duration, move |_| {
                let (target, access) = (loop_target.clone(), access.clone());
                async move { userinfo(&target, &access).await }
            })
            .await
        }
        // Fixed-rate probes only (`--probes`), e.g. the token endpoint at half its peak.
        "probe" => {
            let mut reports = Vec::new();
            for p in probes(&target, &args.get("probes"), duration) {
                reports.push(p.await.expect("probe"));
            }
            json!({ "probes": reports })
        }
        // The mixed load of bench/soak: JSON lines as it goes, then a summary.
        "soak" => soak::run(&target, &args).await,
        other => panic!(
            "unknown mode {other:?}: tokens, login, passkey-register, passkey-login, refresh, cc, userinfo, probe, sign, verify or soak"
        ),
    };
    println!("{report}");
}
