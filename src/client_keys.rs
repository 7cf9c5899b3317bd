//! Clients' JWK Sets fetched from their `jwks_uri` (private_key_jwt, RFC 7523): with a
//! timeout and a size limit, cached, and fetched again on an unknown `kid` at most once
//! per `MIN_REFETCH` (so bogus assertions cannot make us hammer a client's server).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::domain::is_public_address;
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
    /// When `set` was last fetched successfully: a set is trusted while its server is
    /// down, but not for ever (a key the client removed must stop working).
    fetched_ok: Option<Instant>,
}

/// How long a key set may stand in for a server that keeps failing.
const MAX_STALE: Duration = Duration::from_secs(3600);

fn allowed_address(ip: std::net::IpAddr, allow_loopback: bool) -> bool {
    is_public_address(ip) || (allow_loopback && ip.is_loopback())
}

/// Resolves names to public addresses only (loopback too on a local development issuer),
/// so that a name that resolves, or later re-resolves, to an internal address is refused.
struct PublicResolver {
    allow_loopback: bool,
}

impl reqwest::dns::Resolve for PublicResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let (host, allow_loopback) = (name.as_str().to_owned(), self.allow_loopback);
        Box::pin(async move {
            let addrs: Vec<std::net::SocketAddr> = tokio::net::lookup_host((host.as_str(), 0))
                .await?
                .filter(|a| allowed_address(a.ip(), allow_loopback))
                .collect();
            if addrs.is_empty() {
                return Err(format!("{host} has no public address").into());
            }
            Ok(Box::new(addrs.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

pub use crate::crypto::install_tls_provider;

/// The HTTP client for every URL a client registered (its `jwks_uri`, its back-channel
/// logout URI): TLS over the process's one crypto stack and the system's roots, short
/// timeouts, no redirects (a registered URL is used as registered), and only public
/// addresses (loopback too on a local development issuer).
pub fn outbound_client(
    allow_loopback: bool,
    idle_per_host: usize,
) -> anyhow::Result<reqwest::Client> {
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
    Ok(reqwest::Client::builder()
        .use_preconfigured_tls(tls)
        .connect_timeout(Duration::from_secs(3))
        .timeout(Duration::from_secs(5))
        .redirect(reqwest::redirect::Policy::none())
        // A proxy would resolve names itself, past the public-address check.
        .no_proxy()
        .pool_max_idle_per_host(idle_per_host)
        .user_agent(concat!("portcullis/", env!("CARGO_PKG_VERSION")))
        .dns_resolver(Arc::new(PublicResolver { allow_loopback }))
        .build()?)
}

/// An address literal in `uri` is not resolved, so the resolver cannot check it: this
/// does. A name (checked when resolved) passes.
pub fn allowed_literal(uri: &str, allow_loopback: bool) -> bool {
    let literal = url::Url::parse(uri).ok().and_then(|u| match u.host() {
        Some(url::Host::Ipv4(ip)) => Some(std::net::IpAddr::V4(ip)),
        Some(url::Host::Ipv6(ip)) => Some(std::net::IpAddr::V6(ip)),
        _ => None,
    });
    literal.is_none_or(|ip| allowed_address(ip, allow_loopback))
}

pub struct JwksFetcher {
    http: reqwest::Client,
    cache: Mutex<HashMap<String, Cached>>,
    allow_loopback: bool,
}

fn unusable(uri: &str, why: impl std::fmt::Display) -> OAuthError {
    tracing::warn!(jwks_uri = %uri, reason = %why, "client JWK Set unavailable");
    OAuthError::invalid_client("client authentication failed")
}

impl JwksFetcher {
    /// `allow_loopback`: the issuer is a local development one, whose clients may serve
    /// their keys on this machine.
    pub fn new(allow_loopback: bool) -> anyhow::Result<Self> {
        Ok(Self {
            // Fetches are rare and come from many runtimes (one per worker): no pool.
            http: outbound_client(allow_loopback, 0)?,
            cache: Mutex::new(HashMap::new()),
            allow_loopback,
        })
    }

    /// A JSON document a client registered the URL of (its JWK Set, its sector
    /// identifier document): public addresses only, no redirects, 5 s, 64 KiB.
    pub async fn fetch_json(&self, uri: &str) -> Result<serde_json::Value, OAuthError> {
        let body = self.fetch_bytes(uri).await?;
        serde_json::from_slice(&body).map_err(|e| unusable(uri, e))
    }

    /// The body at `uri`, under the same rules.
    pub async fn fetch_bytes(&self, uri: &str) -> Result<Vec<u8>, OAuthError> {
        if !allowed_literal(uri, self.allow_loopback) {
            return Err(unusable(uri, "not a public address"));
        }
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
        Ok(body)
    }

    async fn fetch(&self, uri: &str) -> Result<serde_json::Value, OAuthError> {
        let set = self.fetch_json(uri).await?;
        if !set["keys"].is_array() {
            return Err(unusable(uri, "not a JWK Set"));
        }
        Ok(set)
    }
}

/// The runtime to fetch on, from a blocking thread; refused on an async worker answering
/// from memory (`memory_only`), where the request is then run again on a blocking thread.
fn blocking_handle(uri: &str) -> Result<tokio::runtime::Handle, OAuthError> {
    if crate::memory_only::io_refused() {
        return Err(unusable(uri, "not in memory"));
    }
    tokio::runtime::Handle::try_current().map_err(|e| unusable(uri, e))
}

impl ClientKeySource for JwksFetcher {
    /// Called on a blocking thread, like `jwk_set`; not cached (registration is rare).
    fn document(&self, uri: &str) -> Result<serde_json::Value, OAuthError> {
        let handle = blocking_handle(uri)?;
        handle.block_on(self.fetch_json(uri))
    }

    fn text(&self, uri: &str) -> Result<String, OAuthError> {
        let handle = blocking_handle(uri)?;
        let body = handle.block_on(self.fetch_bytes(uri))?;
        String::from_utf8(body).map_err(|e| unusable(uri, e))
    }

    /// Called on a blocking thread (protocol code is synchronous): the fetch runs on the
    /// current runtime's handle.
    fn jwk_set(&self, uri: &str, refetch: bool) -> Result<serde_json::Value, OAuthError> {
        let cached = {
            let cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
            cache
                .get(uri)
                .map(|c| (c.set.clone(), c.fetched.elapsed(), c.fetched_ok))
        };
        if let Some((set, age, _)) = &cached {
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
        let handle = blocking_handle(uri)?;
        let fetched = handle.block_on(self.fetch(uri));
        // The client's server is down: keys we had still verify, for a while.
        let (previous, fetched_ok) = match cached {
            Some((set, _, ok)) if ok.is_some_and(|at| at.elapsed() < MAX_STALE) => (set, ok),
            _ => (None, None),
        };
        let (kept, fetched_ok) = match &fetched {
            Ok(set) => (Some(set.clone()), Some(Instant::now())),
            Err(_) => (previous.clone(), fetched_ok),
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
                fetched_ok,
            },
        );
        match (fetched, previous) {
            (Ok(set), _) | (Err(_), Some(set)) => Ok(set),
            (Err(e), None) => Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_public_addresses_may_serve_client_keys() {
        for internal in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "255.255.255.255",
            "::1",
            "fd00::1",
            "fe80::1",
            "::ffff:10.0.0.1",
            "64:ff9b::a00:1",
            "2001:db8::1",
            "224.0.0.1",
        ] {
            assert!(!is_public_address(internal.parse().unwrap()), "{internal}");
        }
        for public in ["93.184.216.34", "1.1.1.1", "2606:4700:4700::1111"] {
            assert!(is_public_address(public.parse().unwrap()), "{public}");
        }
        assert!(allowed_address("127.0.0.1".parse().unwrap(), true));
        assert!(!allowed_address("10.0.0.1".parse().unwrap(), true));
    }
}
