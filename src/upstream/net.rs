//! The HTTP side of talking to upstreams: one client with short timeouts, no redirects
//! and (unless the operator allowed private networks) public addresses only (SSRF); the
//! endpoints a discovery document names, checked before use; answers read capped.

use std::sync::Arc;
use std::time::Duration;

use super::Metadata;
use crate::config::UpstreamProvider;
use crate::config::upstream::UpstreamKind;

/// Resolves names to public addresses only, so that a discovery document cannot point
/// our requests (with the client secret, or an access token) at an internal service, and
/// a name that re-resolves to one later is refused too (SSRF).
struct PublicResolver;

impl reqwest::dns::Resolve for PublicResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let addrs: Vec<std::net::SocketAddr> = tokio::net::lookup_host((host.as_str(), 0))
                .await?
                .filter(|a| crate::domain::is_public_address(a.ip()))
                .collect();
            if addrs.is_empty() {
                return Err(format!("{host} has no public address").into());
            }
            Ok(Box::new(addrs.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

/// Where the operator pointed us for a provider: its issuer, GitHub's web origin, or
/// Entra ID's discovery URL (its issuer is a template, no place).
fn home(settings: &UpstreamProvider) -> &str {
    match &settings.kind {
        UpstreamKind::Github { web, .. } => web.as_str(),
        UpstreamKind::Microsoft { discovery, .. } => discovery.as_str(),
        UpstreamKind::OpenId => settings.issuer.as_str(),
    }
}

/// Whether a provider may reach non-public addresses: the operator said so
/// (`allow_private_network`), or its issuer itself is on one (`localhost`, or a
/// loopback or private address literal: the operator pointed us there).
pub(super) fn private_allowed(settings: &UpstreamProvider) -> bool {
    if settings.allow_private_network {
        return true;
    }
    url::Url::parse(home(settings)).is_ok_and(|u| match u.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => !crate::domain::is_public_address(ip.into()),
        Some(url::Host::Ipv6(ip)) => !crate::domain::is_public_address(ip.into()),
        None => false,
    })
}

/// Whether `endpoint`, named by `provider`'s discovery, may be used: https (plain http
/// only to loopback, for an issuer that is itself http on loopback: a development
/// set-up), and an address literal public unless the provider may reach private ones.
/// A token request or a UserInfo call over http would show the client secret or the
/// access token to the network.
pub(super) fn endpoint_allowed(settings: &UpstreamProvider, endpoint: &str) -> Result<(), String> {
    let url = url::Url::parse(endpoint).map_err(|e| format!("{endpoint}: {e}"))?;
    let loopback = |u: &url::Url| match u.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    };
    let issuer = url::Url::parse(home(settings)).ok();
    match url.scheme() {
        "https" => {}
        "http"
            if loopback(&url)
                && issuer
                    .as_ref()
                    .is_some_and(|i| i.scheme() == "http" && loopback(i)) => {}
        _ => return Err(format!("{endpoint}: not https")),
    }
    let literal = match url.host() {
        Some(url::Host::Ipv4(ip)) => Some(std::net::IpAddr::V4(ip)),
        Some(url::Host::Ipv6(ip)) => Some(std::net::IpAddr::V6(ip)),
        _ => None,
    };
    if literal.is_some_and(|ip| !crate::domain::is_public_address(ip)) && !private_allowed(settings)
    {
        return Err(format!("{endpoint}: not a public address"));
    }
    Ok(())
}

/// Every endpoint a discovery document names, checked by [`endpoint_allowed`].
pub(super) fn check_endpoints(
    settings: &UpstreamProvider,
    metadata: &Metadata,
) -> Result<(), String> {
    let mut endpoints = vec![
        metadata.authorization_endpoint().to_string(),
        metadata.jwks_uri().to_string(),
    ];
    if let Some(e) = metadata.token_endpoint() {
        endpoints.push(e.to_string());
    }
    if let Some(e) = metadata.userinfo_endpoint() {
        endpoints.push(e.to_string());
    }
    if let Some(e) = &metadata.additional_metadata().end_session_endpoint {
        endpoints.push(e.clone());
    }
    endpoints
        .iter()
        .try_for_each(|e| endpoint_allowed(settings, e))
}

/// Reads a response body, at most [`MAX_JSON`] bytes (streamed: a huge or endless answer
/// is cut off, never held whole).
async fn read_capped(mut response: reqwest::Response) -> Result<Vec<u8>, String> {
    if response
        .content_length()
        .is_some_and(|n| n > MAX_JSON as u64)
    {
        return Err("answer too large".into());
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(|e| error_chain(&e))? {
        if body.len() + chunk.len() > MAX_JSON {
            return Err("answer too large".into());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// The openidconnect crate's HTTP calls (discovery, JWK Set, token request) through our
/// client, with [`read_capped`] (its own reqwest adapter reads any size).
pub(super) async fn capped_call(
    http: &reqwest::Client,
    request: openidconnect::HttpRequest,
) -> Result<openidconnect::HttpResponse, std::io::Error> {
    let (parts, body) = request.into_parts();
    let mut builder = http.request(parts.method, parts.uri.to_string()).body(body);
    for (name, value) in &parts.headers {
        builder = builder.header(name, value);
    }
    let response = builder
        .send()
        .await
        .map_err(|e| std::io::Error::other(error_chain(&e)))?;
    let status = response.status();
    let headers = response.headers().clone();
    let body = read_capped(response).await.map_err(std::io::Error::other)?;
    let mut out = openidconnect::HttpResponse::new(body);
    *out.status_mut() = status;
    *out.headers_mut() = headers;
    Ok(out)
}

/// The HTTP client for upstreams: the process's TLS stack and the system's roots, short
/// timeouts, and no redirects (a redirect followed from a token or JWKS request could be
/// sent anywhere: SSRF; the openidconnect crate asks for this). `public_only`: names
/// resolve to public addresses only, and no proxy (which would resolve them itself).
pub(super) fn http_client(public_only: bool) -> anyhow::Result<reqwest::Client> {
    crate::crypto::install_tls_provider();
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls_native_certs::load_native_certs().certs {
        let _ = roots.add(cert);
    }
    let tls = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_safe_default_protocol_versions()?
    .with_root_certificates(roots)
    .with_no_client_auth();
    let mut builder = reqwest::Client::builder()
        .use_preconfigured_tls(tls)
        .connect_timeout(Duration::from_secs(3))
        .timeout(Duration::from_secs(8))
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("portcullis/", env!("CARGO_PKG_VERSION")));
    if public_only {
        builder = builder.no_proxy().dns_resolver(Arc::new(PublicResolver));
    }
    Ok(builder.build()?)
}

/// The largest JSON answer read from an upstream.
const MAX_JSON: usize = 256 * 1024;

/// A response's JSON body (at most [`MAX_JSON`] bytes).
pub(super) async fn json_of<T: serde::de::DeserializeOwned>(
    response: reqwest::Response,
) -> Result<T, String> {
    let bytes = read_capped(response).await?;
    serde_json::from_slice(&bytes).map_err(|e| e.to_string())
}

/// An error and its causes, on one line (no secret is in them: URLs and statuses).
pub(super) fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
