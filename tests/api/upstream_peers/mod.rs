//! Upstream identity providers for the tests of issue 24 (Portcullis as a relying party of
//! other providers), each started by the test that needs it and gone when it is dropped:
//!
//! - [`node_oidc::NodeOidc`]: node-oidc-provider (panva's certified library, a provider
//!   nobody here wrote), run by Node.js from `../shared/peers/node-oidc-provider`;
//! - [`fake_entra::FakeEntra`]: an in-process server answering like Entra ID's
//!   multi-tenant v2.0 endpoints (discovery with the `{tenantid}` issuer template, keys,
//!   authorize, token);
//! - [`fake_github::FakeGithub`]: an in-process server answering like `github.com` and
//!   `api.github.com` do for an OAuth App's sign-in (GitHub is not reachable here);
//! - [`portcullis_process::PortcullisPeer`]: a second `portcullis serve` process, on its
//!   own port, database and configuration.
//!
//! Each file's self-test drives its provider with plain reqwest as the relying party, so
//! that a harness is known to work before the feature uses it.
//!
//! The providers listen on loopback addresses of their own (127.0.0.2, 127.0.0.3, ...):
//! cookies are scoped by host, not by port (RFC 6265 §8.5), so a provider on 127.0.0.1
//! would share one browser's cookie jar with the relying party under test on 127.0.0.1
//! and overwrite its cookies of the same name (two Portcullis instances use the same
//! names). Linux routes all of 127.0.0.0/8 to the loopback interface.

pub mod fake_entra;
pub mod fake_github;
pub mod node_oidc;
pub mod portcullis_process;

use std::net::TcpListener;
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use url::Url;

/// A port that was free on `host` a moment ago (for processes that must be told theirs).
pub fn free_port_on(host: &str) -> u16 {
    TcpListener::bind((host, 0))
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Polls `url` until it answers 200, for at most `limit`; false if it never did.
pub async fn wait_for_200(url: &str, limit: Duration) -> bool {
    let deadline = Instant::now() + limit;
    let http = crate::helpers::http_builder()
        .timeout(Duration::from_secs(2))
        .build()
        .unwrap();
    while Instant::now() < deadline {
        if let Ok(r) = http.get(url).send().await
            && r.status() == StatusCode::OK
        {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}

/// Polls `url` until nothing answers there any more (a stopped server), for at most 10 s.
pub async fn wait_until_down(url: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    let http = crate::helpers::http_builder()
        .timeout(Duration::from_secs(1))
        .build()
        .unwrap();
    while http.get(url).send().await.is_ok() {
        assert!(Instant::now() < deadline, "{url} still answers");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Whether a peer that cannot run here fails its tests (CI) instead of skipping them.
pub fn peers_required() -> bool {
    std::env::var("PORTCULLIS_TEST_REQUIRE_PEERS").is_ok_and(|v| v == "1")
}

/// Says why a peer cannot run and lets the test pass, unless peers are required.
pub fn unavailable(what: &str, why: &str) {
    assert!(
        !peers_required(),
        "{what} is required (PORTCULLIS_TEST_REQUIRE_PEERS) but cannot run: {why}"
    );
    eprintln!("SKIPPED: {what} cannot run here: {why}");
}

/// `scheme://host:port` of `url`, to tell a provider's own redirects from the one that
/// leaves it.
pub fn origin(url: &Url) -> String {
    url.origin().ascii_serialization()
}

/// The `action` of the first `<form>` of `html`, unescaped.
pub fn form_action(html: &str) -> Option<String> {
    let start = html.find("<form")?;
    let tag = &html[start..start + html[start..].find('>')?];
    let marker = " action=\"";
    let from = tag.find(marker)? + marker.len();
    let to = from + tag[from..].find('"')?;
    Some(
        tag[from..to]
            .replace("&amp;", "&")
            .replace("&#47;", "/")
            .replace("&#x2f;", "/"),
    )
}

/// The `Location` of a redirect, resolved against the URL that answered it.
pub fn location(response: &reqwest::Response) -> Option<Url> {
    if !response.status().is_redirection() {
        return None;
    }
    let value = response.headers().get("location")?.to_str().ok()?;
    response.url().join(value).ok()
}

/// A cookie-keeping client that does not follow redirects: the browser the harnesses'
/// `login` methods expect (the relying party's cookies and the provider's in one jar).
pub fn browser_http() -> reqwest::Client {
    crate::helpers::http_builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}
