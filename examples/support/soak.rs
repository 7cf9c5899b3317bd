//! `bench_driver soak`: the mixed load of `bench/soak`, hours of it. Six scenarios:
//! `login` (a browser's password sign-in, as `login` mode does), `refresh` (rotation along
//! one of a few long chains), `userinfo` (with the newest access token a refresh gave),
//! `cc` (client_credentials of the service client, `--cc-scope`), `logout` (RP-initiated:
//! the end-session page and its confirmation, for a session a `login` left signed in) and
//! `admin` (GETs of the admin API's lists, with a client_credentials token of the `admin`
//! scope, `--admin-id`/`--admin-secret`).
//!
//! `--mix login:2,refresh:6,...` weighs them. With `--rate R` the load is open loop: each
//! scenario's requests are due every `1/(R * its share)` seconds whatever the server
//! does, and a latency counts from when its request was due (a stalled server cannot hide
//! behind a slowed-down client). Every `--interval` seconds (60) a JSON line reports that
//! interval's requests per scenario (ok, errors, first error, p50/p99 and a histogram).
//! With `--closed N` instead, N workers run the mix back to back for `--duration`: the
//! warm-up that finds the peak the open-loop rate is set from.
//!
//! Lines on stdout: `{"type":"start"}` when the load begins (after the setup sign-ins),
//! then `minute` lines (open loop) or one `warmup` line (closed loop).

use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use portcullis::crypto::tokens::random_token;
use portcullis::http::paths::admin_api;
use reqwest::header::{AUTHORIZATION, CONTENT_TYPE, COOKIE, ORIGIN};
use serde_json::{Value, json};

use super::{
    Args, Jar, Tally, Target, absolute, basic_for, client_credentials, fill_form, sign_in,
    token_request, userinfo,
};

const SCENARIOS: [&str; 6] = ["login", "refresh", "userinfo", "cc", "logout", "admin"];
/// A request not answered in this long is an error (and no longer in flight).
const TIMEOUT: Duration = Duration::from_secs(30);
/// Refresh chains: each refresh takes the next chain, so at most this many are in flight
/// without waiting for one another.
const CHAINS: usize = 16;
/// Sessions left signed in for `logout` to end; beyond this the oldest are forgotten
/// (left to expire, as most sessions are).
const SIGNED_IN_CAP: usize = 4096;
/// The admin token is fetched again this often (it lives an hour).
const ADMIN_TOKEN_EVERY: Duration = Duration::from_secs(900);
/// Upper bounds (ms) of the latency histogram's buckets; the last bucket is open.
const BUCKETS_MS: [f64; 12] = [
    1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0, 200.0, 500.0, 1000.0, 2000.0, 5000.0,
];

/// A browser still signed in: what RP-initiated logout needs of it.
struct SignedIn {
    browser: reqwest::Client,
    jar: Jar,
    id_token: String,
}

struct World {
    target: Target,
    /// The service client's target, whose scope is `--cc-scope`.
    service: Target,
    end_session_endpoint: String,
    post_logout_redirect_uri: String,
    admin_client: (String, String),
    admin_token: RwLock<String>,
    chains: Vec<tokio::sync::Mutex<String>>,
    access: RwLock<String>,
    signed_in: Mutex<VecDeque<SignedIn>>,
    next_user: AtomicUsize,
    next_chain: AtomicUsize,
    next_admin_path: AtomicUsize,
}

impl World {
    async fn run(&self, scenario: &str) -> Result<(), String> {
        match scenario {
            "login" => {
                let session = self.sign_in().await?;
                let mut pool = self.signed_in.lock().unwrap();
                if pool.len() >= SIGNED_IN_CAP {
                    pool.pop_front();
                }
                pool.push_back(session);
                Ok(())
            }
            "refresh" => self.refresh().await,
            "userinfo" => {
                let access = self.access.read().unwrap().clone();
                userinfo(&self.target, &access).await
            }
            "cc" => client_credentials(&self.service).await,
            "logout" => self.logout().await,
            "admin" => self.admin_read().await,
            other => Err(format!("unknown scenario {other}")),
        }
    }

    async fn sign_in(&self) -> Result<SignedIn, String> {
        let usernames = &self.target.usernames;
        let username = &usernames[self.next_user.fetch_add(1, Ordering::Relaxed) % usernames.len()];
        let browser = self.target.next_browser().clone();
        let mut jar = Jar::default();
        let tokens = sign_in(&self.target, &browser, &mut jar, username, None).await?;
        let id_token = tokens["id_token"]
            .as_str()
            .ok_or_else(|| format!("no ID token: {tokens}"))?
            .to_owned();
        Ok(SignedIn {
            browser,
            jar,
            id_token,
        })
    }

    /// The next chain's refresh; a chain that broke (a timeout may leave it holding a
    /// token already used) starts again from a new sign-in, the error still counted.
    async fn refresh(&self) -> Result<(), String> {
        let chain = &self.chains[self.next_chain.fetch_add(1, Ordering::Relaxed) % CHAINS];
        let mut current = chain.lock().await;
        let refreshed = token_request(
            &self.target,
            &[("grant_type", "refresh_token"), ("refresh_token", &current)],
        )
        .await;
        let body = match refreshed {
            Ok(body) => body,
            Err(e) => {
                if let Ok(tokens) = self.tokens().await
                    && let Some(fresh) = tokens["refresh_token"].as_str()
                {
                    *current = fresh.to_owned();
                }
                return Err(e);
            }
        };
        if let Some(next) = body["refresh_token"].as_str() {
            *current = next.to_owned();
        }
        let access = body["access_token"]
            .as_str()
            .ok_or_else(|| format!("no access token: {body}"))?;
        *self.access.write().unwrap() = access.to_owned();
        Ok(())
    }

    async fn tokens(&self) -> Result<Value, String> {
        let username = &self.target.usernames[0];
        let browser = self.target.next_browser().clone();
        sign_in(&self.target, &browser, &mut Jar::default(), username, None).await
    }

    /// RP-initiated logout of the newest session left signed in (a new one if none is):
    /// the end-session page with the ID token as hint, then its form with "logout".
    async fn logout(&self) -> Result<(), String> {
        let taken = self.signed_in.lock().unwrap().pop_back();
        let SignedIn {
            browser,
            mut jar,
            id_token,
        } = match taken {
            Some(session) => session,
            None => self.sign_in().await?,
        };
        let mut url = url::Url::parse(&self.end_session_endpoint).map_err(|e| e.to_string())?;
        url.query_pairs_mut()
            .append_pair("id_token_hint", &id_token)
            .append_pair("post_logout_redirect_uri", &self.post_logout_redirect_uri)
            .append_pair("state", &random_token(8));
        let response = browser
            .get(url)
            .header(COOKIE, jar.header())
            .send()
            .await
            .map_err(|e| e.to_string())?;
        jar.take(&response);
        let status = response.status();
        let html = response.text().await.map_err(|e| e.to_string())?;
        if !status.is_success() {
            return Err(format!("logout page: {status}"));
        }
        let (action, mut fields) =
            fill_form(&html, &self.target, "").ok_or("a logout page without a form")?;
        fields.retain(|(name, _)| name != "decision");
        fields.push(("decision".into(), "logout".into()));
        let response = browser
            .post(absolute(&self.target.issuer, &action))
            .header(COOKIE, jar.header())
            .header(ORIGIN, &self.target.origin)
            .form(&fields)
            .send()
            .await
            .map_err(|e| e.to_string())?;
        let status = response.status();
        response.bytes().await.map_err(|e| e.to_string())?;
        if status.is_success() || status.is_redirection() {
            Ok(())
        } else {
            Err(format!("logout confirmation: {status}"))
        }
    }

    async fn admin_read(&self) -> Result<(), String> {
        let paths = [
            admin_api::USERS,
            admin_api::CLIENTS,
            admin_api::KEYS,
            admin_api::AUDIT,
        ];
        let path = paths[self.next_admin_path.fetch_add(1, Ordering::Relaxed) % paths.len()];
        let token = self.admin_token.read().unwrap().clone();
        let response = self
            .target
            .http
            .get(format!("{}{path}", self.target.issuer))
            .header(AUTHORIZATION, format!("Bearer {token}"))
            .send()
            .await
            .map_err(|e| e.to_string())?;
        let status = response.status();
        response.bytes().await.map_err(|e| e.to_string())?;
        if status.is_success() {
            Ok(())
        } else {
            Err(format!("admin {path}: {status}"))
        }
    }

    async fn fetch_admin_token(&self) -> Result<(), String> {
        let (id, secret) = &self.admin_client;
        let response = self
            .target
            .http
            .post(&self.target.token_endpoint)
            .header(AUTHORIZATION, basic_for(id, secret))
            .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body("grant_type=client_credentials&scope=admin")
            .send()
            .await
            .map_err(|e| e.to_string())?;
        let body: Value = response.json().await.map_err(|e| e.to_string())?;
        let token = body["access_token"]
            .as_str()
            .ok_or_else(|| format!("no admin token: {body}"))?;
        *self.admin_token.write().unwrap() = token.to_owned();
        Ok(())
    }
}

/// `--mix name:weight,...`: each scenario's share of the requests.
fn mix(spec: &str) -> Vec<(&'static str, f64)> {
    spec.split(',')
        .filter(|s| !s.is_empty())
        .map(|one| {
            let (name, weight) = one.split_once(':').unwrap_or((one, "1"));
            let name = SCENARIOS
                .into_iter()
                .find(|s| *s == name)
                .unwrap_or_else(|| panic!("--mix: unknown scenario {name:?}: {SCENARIOS:?}"));
            (name, weight.parse().expect("--mix: a number"))
        })
        .collect()
}

/// Latencies bucketed by [`BUCKETS_MS`] (the last count: slower than all bounds).
fn histogram(latencies: &[Duration]) -> Vec<u64> {
    let mut counts = vec![0u64; BUCKETS_MS.len() + 1];
    for l in latencies {
        let ms = l.as_secs_f64() * 1e3;
        let i = BUCKETS_MS
            .iter()
            .position(|b| ms <= *b)
            .unwrap_or(BUCKETS_MS.len());
        counts[i] += 1;
    }
    counts
}

fn report(tally: Tally, name: &str, seconds: Duration) -> Value {
    let buckets = histogram(&tally.latencies);
    let mut line = tally.report(name, seconds);
    line["histogram"] = json!(buckets);
    line
}

#[derive(Default)]
struct Interval {
    due: u64,
    done: u64,
    tallies: BTreeMap<&'static str, Tally>,
}

pub async fn run(target: &Target, args: &Args) -> Value {
    let world = Arc::new(setup(target, args).await);
    let weights = mix(&args.or("mix", "login:2,refresh:6,userinfo:10,cc:6,logout:1,admin:1"));
    let duration = Duration::from_secs_f64(args.number("duration", 60.0));
    {
        let world = world.clone();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(ADMIN_TOKEN_EVERY).await;
                if let Err(e) = world.fetch_admin_token().await {
                    eprintln!("admin token: {e}");
                }
            }
        });
    }
    println!("{}", json!({ "type": "start" }));
    let closed = args.number("closed", 0.0) as usize;
    if closed > 0 {
        return closed_loop(world, &weights, closed, duration).await;
    }
    let rate = args.number("rate", 10.0);
    let interval = Duration::from_secs_f64(args.number("interval", 60.0));
    open_loop(world, &weights, rate, interval, duration).await
}

async fn setup(target: &Target, args: &Args) -> World {
    let mut service = target.clone();
    service.scope = args.or("cc-scope", "api:read");
    let world = World {
        target: target.clone(),
        service,
        end_session_endpoint: target.end_session_endpoint.clone(),
        post_logout_redirect_uri: args.get("post-logout-redirect-uri"),
        admin_client: (args.get("admin-id"), args.get("admin-secret")),
        admin_token: RwLock::default(),
        chains: Vec::new(),
        access: RwLock::default(),
        signed_in: Mutex::default(),
        next_user: AtomicUsize::new(0),
        next_chain: AtomicUsize::new(0),
        next_admin_path: AtomicUsize::new(0),
    };
    world.fetch_admin_token().await.expect("an admin token");
    let mut chains = Vec::new();
    for _ in 0..CHAINS {
        let tokens = world.tokens().await.expect("a sign-in");
        *world.access.write().unwrap() = tokens["access_token"].as_str().unwrap().to_owned();
        let refresh = tokens["refresh_token"]
            .as_str()
            .expect("a refresh token (offline_access)");
        chains.push(tokio::sync::Mutex::new(refresh.to_owned()));
    }
    // A few sessions for the first logouts.
    for _ in 0..CHAINS {
        let session = world.sign_in().await.expect("a sign-in");
        world.signed_in.lock().unwrap().push_back(session);
    }
    World { chains, ..world }
}

/// `workers` workers each going round the mix (a scenario `weight` times per round),
/// from different places in it, until `duration` has passed.
async fn closed_loop(
    world: Arc<World>,
    weights: &[(&'static str, f64)],
    workers: usize,
    duration: Duration,
) -> Value {
    let round: Arc<Vec<&'static str>> = Arc::new(
        weights
            .iter()
            .flat_map(|(name, weight)| std::iter::repeat_n(*name, weight.round() as usize))
            .collect(),
    );
    let started = Instant::now();
    let deadline = started + duration;
    let tasks: Vec<_> = (0..workers)
        .map(|worker| {
            let (world, round) = (world.clone(), round.clone());
            tokio::spawn(async move {
                let mut tallies: BTreeMap<&'static str, Tally> = BTreeMap::new();
                let mut k = worker * round.len() / workers.max(1);
                while Instant::now() < deadline {
                    let name = round[k % round.len()];
                    k += 1;
                    let t = Instant::now();
                    let result = tokio::time::timeout(TIMEOUT, world.run(name))
                        .await
                        .unwrap_or_else(|_| Err("timed out".into()));
                    tallies.entry(name).or_default().record(t, result);
                }
                tallies
            })
        })
        .collect();
    let mut merged: BTreeMap<&'static str, Tally> = BTreeMap::new();
    for task in tasks {
        for (name, tally) in task.await.expect("worker") {
            merged.entry(name).or_default().merge(tally);
        }
    }
    let elapsed = started.elapsed();
    let ok: usize = merged.values().map(|t| t.latencies.len()).sum();
    let paths: serde_json::Map<String, Value> = merged
        .into_iter()
        .map(|(name, tally)| (name.to_owned(), report(tally, name, elapsed)))
        .collect();
    json!({
        "type": "warmup",
        "workers": workers,
        "seconds": elapsed.as_secs_f64(),
        "rate": ok as f64 / elapsed.as_secs_f64(),
        "paths": paths,
    })
}

/// Each scenario's requests due at its own fixed rate, every one on its own task; an
/// interval is reported once every request due in it is answered (or timed out).
async fn open_loop(
    world: Arc<World>,
    weights: &[(&'static str, f64)],
    rate: f64,
    interval: Duration,
    duration: Duration,
) -> Value {
    let total: f64 = weights.iter().map(|(_, w)| w).sum();
    let book: Arc<Mutex<BTreeMap<u64, Interval>>> = Arc::default();
    let started = Instant::now();
    let end = started + duration;
    let scheduling = Arc::new(AtomicUsize::new(weights.len()));
    for &(name, weight) in weights {
        let share = rate * weight / total;
        if share <= 0.0 {
            scheduling.fetch_sub(1, Ordering::Relaxed);
            continue;
        }
        let (world, book, scheduling) = (world.clone(), book.clone(), scheduling.clone());
        tokio::spawn(async move {
            for i in 0u64.. {
                let due = started + Duration::from_secs_f64(i as f64 / share);
                if due >= end {
                    break;
                }
                tokio::time::sleep_until(due.into()).await;
                let slot = (due - started).as_nanos() as u64 / interval.as_nanos() as u64;
                book.lock().unwrap().entry(slot).or_default().due += 1;
                let (world, book) = (world.clone(), book.clone());
                tokio::spawn(async move {
                    let result = tokio::time::timeout(TIMEOUT, world.run(name))
                        .await
                        .unwrap_or_else(|_| Err("timed out".into()));
                    let mut book = book.lock().unwrap();
                    let entry = book.entry(slot).or_default();
                    entry.done += 1;
                    entry.tallies.entry(name).or_default().record(due, result);
                });
            }
            scheduling.fetch_sub(1, Ordering::Relaxed);
        });
    }
    let mut reported = 0u64;
    loop {
        tokio::time::sleep(Duration::from_millis(250)).await;
        let now = Instant::now();
        loop {
            let ready = {
                let mut book = book.lock().unwrap();
                let Some((&slot, entry)) = book.iter().next() else {
                    break;
                };
                let slot_end = started + interval * (slot as u32 + 1);
                let all_issued = now >= slot_end + Duration::from_secs(1)
                    || (scheduling.load(Ordering::Relaxed) == 0 && now >= end);
                let all_answered =
                    entry.done == entry.due || now >= slot_end + TIMEOUT + Duration::from_secs(2);
                if !(all_issued && all_answered) {
                    break;
                }
                book.remove(&slot).map(|entry| (slot, entry))
            };
            let Some((slot, entry)) = ready else { break };
            let seconds =
                interval.min(end.saturating_duration_since(started + interval * slot as u32));
            let mut paths = serde_json::Map::new();
            let mut tallies = entry.tallies;
            for &(name, _) in weights {
                let tally = tallies.remove(name).unwrap_or_default();
                paths.insert(name.to_owned(), report(tally, name, seconds));
            }
            println!(
                "{}",
                json!({
                    "type": "minute",
                    "minute": slot,
                    "seconds": seconds.as_secs_f64(),
                    "unanswered": entry.due - entry.done,
                    "paths": paths,
                })
            );
            reported += 1;
        }
        if scheduling.load(Ordering::Relaxed) == 0 && now >= end && book.lock().unwrap().is_empty()
        {
            break;
        }
    }
    json!({ "type": "done", "intervals": reported, "rate": rate, "seconds": started.elapsed().as_secs_f64() })
}
