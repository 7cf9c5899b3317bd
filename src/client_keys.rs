//! Clients' JWK Sets fetched from their `jwks_uri` (private_key_jwt, RFC 7523): with a
//! timeout and a size limit, cached, and fetched again on an unknown `kid` at most once
//! per `MIN_REFETCH` (so bogus assertions cannot make us hammer a client's server).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::protocol::{ClientKeySource, OAuthError};

const CACHE_TTL: Duration = Duration::from_secs(300);
const MIN_REFETCH: Duration = Duration::from_secs(10);
const MAX_BYTES: usize = 64 * 1024;
const MAX_ENTRIES: usize = 10_000;

/// The last fetch of a URI: its key set, or `None` if it failed. A failure is
/// remembered too, so that a client whose server is down cannot make every request wait
/// on another fetch.
struct Cached {
    set: Option<serde_json::Value>,
    fetched: Instant,
}

/// Makes aws-lc-rs the process's rustls provider (rustls is built without one, so that
/// there is a single crypto stack); idempotent.
pub fn install_tls_provider() {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
}

pub struct JwksFetcher {
    http: reqwest::Client,
    cache: Mutex<HashMap<String, Cached>>,
}

fn unusable(uri: &str, why: impl std::fmt::Display) -> OAuthError {
    tracing::warn!(jwks_uri = %uri, reason = %why, "client JWK Set unavailable");
    OAuthError::invalid_client("client authentication failed")
}

impl JwksFetcher {
    pub fn new() -> anyhow::Result<Self> {
        install_tls_provider();
        let mut roots = rustls::RootCertStore::empty();
        for cert in rustls_native_certs::load_native_certs().certs {
            // A certificate the store cannot parse is skipped, as browsers do.
            let _ = roots.add(cert);
        }
        let tls = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::aws_lc_rs::default_provider(),
        ))
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth();
        let http = reqwest::Client::builder()
            .use_preconfigured_tls(tls)
            .connect_timeout(Duration::from_secs(3))
            .timeout(Duration::from_secs(5))
            // A registered URL is fetched as registered: no redirects elsewhere.
            .redirect(reqwest::redirect::Policy::none())
            // Fetches are rare and come from many runtimes (one per worker): no pool.
            .pool_max_idle_per_host(0)
            .user_agent(concat!("portcullis/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Self {
            http,
            cache: Mutex::new(HashMap::new()),
        })
    }

    async fn fetch(&self, uri: &str) -> Result<serde_json::Value, OAuthError> {
        let mut response = self
            .http
            .get(uri)
            .header("accept", "application/json, application/jwk-set+json")
            .send()
            .await
            .map_err(|e| unusable(uri, e))?;
        if !response.status().is_success() {
            return Err(unusable(uri, response.status()));
        }
        if response
            .content_length()
            .is_some_and(|n| n > MAX_BYTES as u64)
        {
            return Err(unusable(uri, "too large"));
        }
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(|e| unusable(uri, e))? {
            body.extend_from_slice(&chunk);
            if body.len() > MAX_BYTES {
                return Err(unusable(uri, "too large"));
            }
        }
        let set: serde_json::Value = serde_json::from_slice(&body).map_err(|e| unusable(uri, e))?;
        if !set["keys"].is_array() {
            return Err(unusable(uri, "not a JWK Set"));
        }
        Ok(set)
    }
}

impl ClientKeySource for JwksFetcher {
    /// Called on a blocking thread (protocol code is synchronous): the fetch runs on the
    /// current runtime's handle.
    fn jwk_set(&self, uri: &str, refetch: bool) -> Result<serde_json::Value, OAuthError> {
        let cached = {
            let cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
            cache.get(uri).map(|c| (c.set.clone(), c.fetched.elapsed()))
        };
        if let Some((set, age)) = &cached {
            let fresh_enough = if refetch || set.is_none() {
                *age < MIN_REFETCH
            } else {
                *age < CACHE_TTL
            };
            if fresh_enough {
                return set
                    .clone()
                    .ok_or_else(|| unusable(uri, "the last fetch failed"));
            }
        }
        let handle = tokio::runtime::Handle::try_current().map_err(|e| unusable(uri, e))?;
        let fetched = handle.block_on(self.fetch(uri));
        // The client's server is down: keys we had still verify.
        let previous = cached.and_then(|(set, _)| set);
        let kept = match &fetched {
            Ok(set) => Some(set.clone()),
            Err(_) => previous.clone(),
        };
        let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        if cache.len() >= MAX_ENTRIES {
            cache.clear();
        }
        cache.insert(
            uri.to_owned(),
            Cached {
                set: kept,
                fetched: Instant::now(),
            },
        );
        match (fetched, previous) {
            (Ok(set), _) | (Err(_), Some(set)) => Ok(set),
            (Err(e), None) => Err(e),
        }
    }
}
