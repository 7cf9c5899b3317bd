//! `cargo bench --bench endpoints`: throughput and latency of the hot paths (token, userinfo,
//! JWKS, discovery) against a real server on loopback, plus raw signing speed.
//! Bounded in count and time; prints one line per measurement.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a tool run by hand: a panic is its error report

use std::net::TcpListener;
use std::sync::Arc;
use std::time::{Duration, Instant};

use portcullis::config::Settings;
use portcullis::crypto::password::hash_password;
use portcullis::crypto::tokens::{pkce_s256, random_token, random_uuid};
use portcullis::crypto::{KeyAlgorithm, SigningKey};
use portcullis::domain::{Secret, now};
use portcullis::protocol::registration::{ClientDraft, register};
use portcullis::startup::{build_state, run};
use portcullis::store::User;

const CONCURRENCY: usize = 32;

fn report(name: &str, count: usize, elapsed: Duration, mut latencies: Vec<Duration>) {
    latencies.sort();
    let pct = |p: f64| {
        latencies
            .get(((latencies.len() as f64 * p) as usize).min(latencies.len().saturating_sub(1)))
            .copied()
            .unwrap_or_default()
    };
    println!(
        "{name:<28} {count:>6} ops {:>9.0} ops/s   p50 {:>7.2} ms   p99 {:>7.2} ms",
        count as f64 / elapsed.as_secs_f64(),
        pct(0.50).as_secs_f64() * 1e3,
        pct(0.99).as_secs_f64() * 1e3,
    );
}

/// Runs `make(i)` for i in 0..count with CONCURRENCY requests in flight.
async fn load<F, Fut>(name: &str, count: usize, make: F)
where
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = bool> + Send,
{
    let make = Arc::new(make);
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..CONCURRENCY {
        let (make, next) = (make.clone(), next.clone());
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if i >= count {
                    return latencies;
                }
                let t = Instant::now();
                assert!(make(i).await, "request {i} failed");
                latencies.push(t.elapsed());
            }
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.unwrap());
    }
    report(name, count, started.elapsed(), all);
}

fn signing() {
    for alg in [KeyAlgorithm::Rs256, KeyAlgorithm::Es256] {
        let (key, _) = SigningKey::generate(alg).unwrap();
        let claims = serde_json::json!({"iss": "https://op.example", "sub": random_uuid(), "aud": "client", "exp": 2_000_000_000, "iat": 1_700_000_000});
        let n = 2000;
        let started = Instant::now();
        for _ in 0..n {
            std::hint::black_box(key.sign_jwt("JWT", &claims).unwrap());
        }
        report(
            &format!("sign {} (1 core)", alg.as_str()),
            n,
            started.elapsed(),
            vec![started.elapsed() / n as u32],
        );
    }
}

#[tokio::main]
async fn main() {
    signing();

    let dir = tempfile::TempDir::new().unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let issuer = format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port());
    let db = format!("sqlite://{}/bench.db", dir.path().display());
    let settings = Settings::from_sources(None, |k| match k {
        "PORTCULLIS_ISSUER" => Some(issuer.clone()),
        "PORTCULLIS_DATABASE_URL" => Some(db.clone()),
        _ => None,
    })
    .unwrap();
    let state = build_state(settings).await.unwrap();
    let store = state.store.clone();
    let kek = state.kek.clone();
    tokio::spawn(run(listener, state, Some(2)).unwrap());

    let hash = hash_password(&Secret::new("bench password".into())).unwrap();
    store
        .create_user(&User::new(random_uuid(), "bench".into(), hash, now()))
        .unwrap();
    let add_client = |draft: ClientDraft| {
        let registered = register(draft, &issuer, &kek, now()).unwrap();
        store.create_client(&registered.client).unwrap();
        (
            registered.client.id.clone(),
            registered.client_secret.clone().unwrap(),
        )
    };
    let registered = register(
        ClientDraft {
            name: Some("bench".into()),
            redirect_uris: vec!["http://127.0.0.1:1/cb".into()],
            grant_types: vec!["authorization_code".into(), "refresh_token".into()],
            ..Default::default()
        },
        &issuer,
        &kek,
        now(),
    )
    .unwrap();
    store.create_client(&registered.client).unwrap();
    let services: Vec<(&str, (String, String))> = ["RS256", "ES256"]
        .into_iter()
        .map(|alg| {
            let client = add_client(ClientDraft {
                name: Some(format!("service {alg}")),
                grant_types: vec!["client_credentials".into()],
                scope: Some("api:read".into()),
                access_token_signed_response_alg: Some(alg.into()),
                ..Default::default()
            });
            (alg, client)
        })
        .collect();
    let client_id = registered.client.id.clone();
    let secret = registered.client_secret.clone().unwrap();

    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(CONCURRENCY)
        .build()
        .unwrap();
    let get = |path: &'static str| {
        let (http, url) = (http.clone(), format!("{issuer}{path}"));
        move |_| {
            let (http, url) = (http.clone(), url.clone());
            async move {
                http.get(url)
                    .send()
                    .await
                    .is_ok_and(|r| r.status().is_success())
            }
        }
    };
    load("GET /jwks", 20_000, get("/jwks")).await;
    load(
        "GET discovery",
        20_000,
        get("/.well-known/openid-configuration"),
    )
    .await;

    // Codes come from a signed-in browser with prompt=none, as a returning user's would.
    let browser = reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let verifier = random_token(32);
    let authorize = format!(
        "{issuer}/authorize?response_type=code&client_id={client_id}&redirect_uri=http%3A%2F%2F127.0.0.1%3A1%2Fcb&scope=openid%20profile&code_challenge={}&code_challenge_method=S256",
        pkce_s256(&verifier)
    );
    sign_in(&browser, &issuer, &authorize).await;
    let codes = Arc::new(collect_codes(&browser, &format!("{authorize}&prompt=none"), 3000).await);

    let token_url = format!("{issuer}/token");
    let tokens = Arc::new(std::sync::Mutex::new(Vec::new()));
    {
        let (http, codes, tokens) = (http.clone(), codes.clone(), tokens.clone());
        let (client_id, secret, verifier) = (client_id.clone(), secret.clone(), verifier.clone());
        load("POST /token (code)", codes.len(), move |i| {
            let (http, url, code) = (http.clone(), token_url.clone(), codes[i].clone());
            let (client_id, secret, verifier, tokens) = (
                client_id.clone(),
                secret.clone(),
                verifier.clone(),
                tokens.clone(),
            );
            async move {
                let form = [
                    ("grant_type", "authorization_code"),
                    ("code", &code),
                    ("redirect_uri", "http://127.0.0.1:1/cb"),
                    ("code_verifier", &verifier),
                ];
                let Ok(r) = http
                    .post(url)
                    .basic_auth(client_id, Some(secret))
                    .form(&form)
                    .send()
                    .await
                else {
                    return false;
                };
                let ok = r.status().is_success();
                if let Ok(body) = r.json::<serde_json::Value>().await
                    && let Some(t) = body["access_token"].as_str()
                {
                    tokens.lock().unwrap().push(t.to_owned());
                }
                ok
            }
        })
        .await;
    }
    let tokens = Arc::new(tokens.lock().unwrap().clone());
    {
        let (http, url, tokens) = (http.clone(), format!("{issuer}/userinfo"), tokens.clone());
        load("GET /userinfo", 20_000, move |i| {
            let (http, url, token) = (http.clone(), url.clone(), tokens[i % tokens.len()].clone());
            async move {
                http.get(url)
                    .bearer_auth(token)
                    .send()
                    .await
                    .is_ok_and(|r| r.status().is_success())
            }
        })
        .await;
    }

    for (alg, (id, secret)) in &services {
        let form = |_| vec![("grant_type".to_owned(), "client_credentials".to_owned())];
        post_load(
            &format!("POST /token (cc {alg})"),
            10_000,
            &http,
            format!("{issuer}/token"),
            (id.clone(), secret.clone()),
            form,
        )
        .await;
    }

    let (rs_id, rs_secret) = services[0].1.clone();
    post_load(
        "POST /introspect",
        20_000,
        &http,
        format!("{issuer}/introspect"),
        (rs_id, rs_secret),
        move |i| vec![("token".to_owned(), tokens[i % tokens.len()].clone())],
    )
    .await;

    // Refresh tokens from offline_access sign-ins (consented once, then prompt=none).
    let offline = format!("{authorize}&scope=openid%20offline_access");
    let offline = offline.replacen("&scope=openid%20profile", "", 1);
    sign_in(&browser, &issuer, &format!("{offline}&prompt=consent")).await;
    let codes = collect_codes(&browser, &format!("{offline}&prompt=none"), 3000).await;
    let mut refresh_tokens = Vec::with_capacity(codes.len());
    for code in codes {
        let form = [
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("redirect_uri", "http://127.0.0.1:1/cb"),
            ("code_verifier", verifier.as_str()),
        ];
        let body: serde_json::Value = http
            .post(format!("{issuer}/token"))
            .basic_auth(&client_id, Some(&secret))
            .form(&form)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        refresh_tokens.push(body["refresh_token"].as_str().unwrap().to_owned());
    }
    let refresh_tokens = Arc::new(refresh_tokens);
    let count = refresh_tokens.len();
    post_load(
        "POST /token (refresh)",
        count,
        &http,
        format!("{issuer}/token"),
        (client_id.clone(), secret.clone()),
        move |i| {
            vec![
                ("grant_type".to_owned(), "refresh_token".to_owned()),
                ("refresh_token".to_owned(), refresh_tokens[i].clone()),
            ]
        },
    )
    .await;
}

/// `load` over form POSTs authenticated with client_secret_basic.
async fn post_load<F>(
    name: &str,
    count: usize,
    http: &reqwest::Client,
    url: String,
    (id, secret): (String, String),
    form: F,
) where
    F: Fn(usize) -> Vec<(String, String)> + Send + Sync + 'static,
{
    let http = http.clone();
    let form = Arc::new(form);
    load(name, count, move |i| {
        let (http, url, id, secret, form) = (
            http.clone(),
            url.clone(),
            id.clone(),
            secret.clone(),
            form.clone(),
        );
        async move {
            http.post(url)
                .basic_auth(id, Some(secret))
                .form(&form(i))
                .send()
                .await
                .is_ok_and(|r| r.status().is_success())
        }
    })
    .await;
}

async fn sign_in(browser: &reqwest::Client, issuer: &str, authorize: &str) {
    let mut url = authorize.to_owned();
    // authorize → login → consent → callback, filling each form as a person would.
    let mut form_fields: Vec<(String, String)> = Vec::new();
    for _ in 0..10 {
        let response = if form_fields.is_empty() {
            browser.get(&url).send().await.unwrap()
        } else {
            browser.post(&url).form(&form_fields).send().await.unwrap()
        };
        form_fields.clear();
        if response.status().is_redirection() {
            let location = response.headers()["location"].to_str().unwrap().to_owned();
            if location.starts_with("http://127.0.0.1:1/") {
                return;
            }
            url = if location.starts_with('/') {
                format!("{issuer}{location}")
            } else {
                location
            };
            continue;
        }
        let html = response.text().await.unwrap();
        for tag in html.split("<input").skip(1) {
            let attr = |name: &str| {
                let marker = format!(" {name}=\"");
                tag.find(&marker).map(|s| {
                    let rest = &tag[s + marker.len()..];
                    rest[..rest.find('"').unwrap()].to_owned()
                })
            };
            if tag.contains("type=\"hidden\"") {
                form_fields.push((attr("name").unwrap(), attr("value").unwrap_or_default()));
            }
        }
        if html.contains("name=\"password\"") {
            form_fields.push(("username".into(), "bench".into()));
            form_fields.push(("password".into(), "bench password".into()));
            url = format!("{issuer}/login");
        } else {
            form_fields.push(("decision".into(), "allow".into()));
            url = format!("{issuer}/consent");
        }
    }
    panic!("sign-in did not finish");
}

async fn collect_codes(browser: &reqwest::Client, url: &str, n: usize) -> Vec<String> {
    let mut codes = Vec::with_capacity(n);
    for _ in 0..n {
        let response = browser.get(url).send().await.unwrap();
        let location = url::Url::parse(response.headers()["location"].to_str().unwrap()).unwrap();
        codes.push(
            location
                .query_pairs()
                .find(|(k, _)| k == "code")
                .unwrap()
                .1
                .into_owned(),
        );
    }
    codes
}
