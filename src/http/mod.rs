//! The actix-web adapter: parse HTTP into typed requests, call `protocol`, write responses.

pub mod admin_api;
pub mod console;
pub mod endpoints;
pub mod error;
pub mod interaction;
pub mod observability;
pub mod pages;
pub mod sign_out;
pub mod ui;

use std::sync::Arc;

use actix_web::cookie::{Cookie, SameSite, time::Duration as CookieDuration};
use actix_web::{HttpRequest, web};

use crate::client_keys::JwksFetcher;
use crate::config::Settings;
use crate::crypto::kek::KeyEncryptionKey;
use crate::crypto::tokens::random_token;
use crate::domain::{Clock, UnixTime};
use crate::keyring::KeyRing;
use crate::protocol::{Context, OAuthError, Params};
use crate::sessions::Sessions;
use crate::store::Store;

/// Everything a handler may use; built once in `startup` and shared by every worker.
pub struct AppState {
    pub settings: Arc<Settings>,
    pub store: Arc<dyn Store>,
    pub sessions: Sessions,
    pub keys: Arc<KeyRing>,
    /// The discovery document, serialized once.
    pub discovery_json: String,
    pub metrics: Arc<observability::Metrics>,
    /// Bounds concurrent password verifications (argon2 is deliberately expensive).
    pub password_checks: Arc<tokio::sync::Semaphore>,
    pub clock: Arc<dyn Clock>,
    pub kek: Arc<KeyEncryptionKey>,
    pub client_keys: Arc<JwksFetcher>,
    /// Wakes this instance's back-channel logout delivery after a session ends here.
    pub outbox: crate::logout_delivery::Outbox,
}

pub type State = web::Data<AppState>;

impl AppState {
    /// Runs `f` with a protocol context over the current keys and the current time.
    pub fn with_context<T>(&self, f: impl FnOnce(&Context<'_>) -> T) -> T {
        let keys = self.keys.current();
        f(&Context {
            store: &*self.store,
            keys: &keys,
            settings: &self.settings,
            kek: &self.kek,
            client_keys: &*self.client_keys,
            now: self.clock.now(),
        })
    }

    pub fn now(&self) -> UnixTime {
        self.clock.now()
    }
}

/// Runs protocol code that touches the database on the blocking pool, off the actix worker.
pub async fn blocking<T, F>(state: &State, f: F) -> Result<T, OAuthError>
where
    T: Send + 'static,
    F: FnOnce(&Context<'_>) -> Result<T, OAuthError> + Send + 'static,
{
    let state = state.clone();
    // The blocking thread logs under the request's span (its request id).
    let span = tracing::Span::current();
    web::block(move || span.in_scope(|| state.with_context(f)))
        .await
        .map_err(OAuthError::server)?
}

/// Like [`blocking`], for reads that memory usually answers (userinfo, introspection):
/// tried on this thread with I/O refused first, and on the blocking pool only if it needed
/// I/O (`memory_only`). `f` must change nothing before its first I/O.
pub async fn read_mostly_cached<T, F>(state: &State, f: F) -> Result<T, OAuthError>
where
    T: Send + 'static,
    F: Fn(&Context<'_>) -> Result<T, OAuthError> + Send + 'static,
{
    if let Some(done) = crate::memory_only::attempt(|| state.with_context(&f)) {
        return done;
    }
    blocking(state, f).await
}

/// The client's address: the peer's, unless the peer is a trusted proxy; then the
/// nearest address in `X-Forwarded-For` that is not one (entries further left were
/// written by whoever sent the request, and prove nothing).
pub fn client_address(
    peer: Option<std::net::IpAddr>,
    forwarded_for: Option<&str>,
    trusted: &[crate::domain::IpRange],
) -> Option<std::net::IpAddr> {
    let is_trusted = |ip: std::net::IpAddr| trusted.iter().any(|r| r.contains(ip));
    let peer = peer?;
    if !is_trusted(peer) {
        return Some(peer);
    }
    let mut nearest = peer;
    for hop in forwarded_for.unwrap_or("").rsplit(',') {
        let Some(ip) = parse_hop(hop) else {
            break;
        };
        nearest = ip;
        if !is_trusted(ip) {
            break;
        }
    }
    Some(nearest)
}

/// One `X-Forwarded-For` entry: an address, perhaps with a port (`192.0.2.1:4711`,
/// `[2001:db8::1]:4711`, as some proxies write them).
fn parse_hop(hop: &str) -> Option<std::net::IpAddr> {
    let hop = hop.trim();
    if let Ok(ip) = hop.parse() {
        return Some(ip);
    }
    if let Ok(addr) = hop.parse::<std::net::SocketAddr>() {
        return Some(addr.ip());
    }
    hop.strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .and_then(|h| h.parse().ok())
}

/// Every `X-Forwarded-For` header line, in order, as one list: a proxy may append its
/// own line after one the client sent, and only the right-most entries are its.
pub fn forwarded_for(headers: &actix_web::http::header::HeaderMap) -> Option<String> {
    let lines: Vec<&str> = headers
        .get_all("x-forwarded-for")
        .filter_map(|v| v.to_str().ok())
        .collect();
    (!lines.is_empty()).then(|| lines.join(","))
}

/// Whether a form POST comes from one of our own pages. Cookies ignore ports, so a sibling
/// site (another port or subdomain) can plant or use our cookies; `Origin` (and
/// `Sec-Fetch-Site`, which browsers send with it) cannot be forged by a page. A request
/// with neither (an old browser, a script) is left to the CSRF token alone.
pub fn from_our_pages(req: &HttpRequest, settings: &Settings) -> bool {
    let ours = url::Url::parse(&settings.issuer)
        .map(|u| u.origin().ascii_serialization())
        .unwrap_or_default();
    if let Some(origin) = req.headers().get("origin") {
        return origin.to_str().is_ok_and(|o| o == ours);
    }
    match req.headers().get("sec-fetch-site") {
        Some(site) => site.to_str().is_ok_and(|s| s == "same-origin"),
        None => true,
    }
}

/// `client_address` of an actix request, as text for logs.
pub fn client_address_of(req: &HttpRequest, settings: &Settings) -> String {
    client_address(
        req.peer_addr().map(|a| a.ip()),
        forwarded_for(req.headers()).as_deref(),
        &settings.trusted_proxies,
    )
    .map(|ip| ip.to_string())
    .unwrap_or_else(|| "unknown".to_owned())
}

/// The client address as a rate-limit key: IPv6 addresses count per /64 (one
/// subscriber's allocation), so a single client cannot pose as endless sources.
pub fn limit_key(address: &str) -> String {
    match address.parse::<std::net::IpAddr>() {
        Ok(std::net::IpAddr::V6(v6)) if v6.to_ipv4_mapped().is_none() => {
            let s = v6.segments();
            format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
        }
        _ => address.to_owned(),
    }
}

/// Query string and (for POST forms) body parameters, in that order.
pub fn request_params(req: &HttpRequest, body: &[u8]) -> Result<Params, OAuthError> {
    let mut params = Params::from_urlencoded(req.query_string())?;
    if !body.is_empty() {
        let form = std::str::from_utf8(body)
            .map_err(|_| OAuthError::invalid_request("body is not UTF-8"))?;
        params.extend(Params::from_urlencoded(form)?);
    }
    Ok(params)
}

/// The media types request bodies are read as. Each endpoint that reads a body checks its
/// declared type here, so that a body is never read as something its sender did not say
/// it was.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BodyType {
    /// The OAuth back-channel endpoints (RFC 6749 §3.2, §4.1.3; RFC 7009 §2.1, RFC 7662
    /// §2.1, RFC 9126 §2.1) and a bearer token sent in a body (RFC 6750 §2.2).
    Form,
    /// Client registration (RFC 7591 §3.1) and the admin API.
    Json,
}

impl BodyType {
    pub fn media_type(self) -> &'static str {
        match self {
            Self::Form => "application/x-www-form-urlencoded",
            Self::Json => "application/json",
        }
    }

    /// What a sender of another type is told.
    pub fn refusal(self) -> &'static str {
        match self {
            Self::Form => "the content type must be application/x-www-form-urlencoded",
            Self::Json => "the content type must be application/json",
        }
    }

    /// Whether the request's `Content-Type` declares this type.
    pub fn declared_by(self, req: &HttpRequest) -> bool {
        let declared = req
            .headers()
            .get(actix_web::http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok());
        is_media_type(declared, self.media_type())
    }

    /// `invalid_request` unless the request declares this type.
    pub fn require(self, req: &HttpRequest) -> Result<(), OAuthError> {
        if self.declared_by(req) {
            Ok(())
        } else {
            Err(OAuthError::invalid_request(self.refusal()))
        }
    }
}

/// Whether a `Content-Type` value is `media_type`: type and subtype compare without case,
/// and parameters after a `;` (`charset=UTF-8`) do not matter (RFC 9110 §8.3.1).
pub fn is_media_type(content_type: Option<&str>, media_type: &str) -> bool {
    content_type
        .and_then(|v| v.split(';').next())
        .is_some_and(|essence| essence.trim().eq_ignore_ascii_case(media_type))
}

/// Only the body, for endpoints whose parameters must not travel in the URL.
pub fn form_params(req: &HttpRequest, body: &[u8]) -> Result<Params, OAuthError> {
    BodyType::Form.require(req)?;
    let form =
        std::str::from_utf8(body).map_err(|_| OAuthError::invalid_request("body is not UTF-8"))?;
    Params::from_urlencoded(form)
}

/// The browser's cookies, named so that Secure cookies get the `__Host-` guarantee
/// (RFC 6265bis §4.1.3.2: Secure, Path=/, no Domain).
pub struct CookieNames;

impl CookieNames {
    pub fn session(settings: &Settings) -> &'static str {
        if settings.cookie_secure {
            "__Host-portcullis_session"
        } else {
            "portcullis_session"
        }
    }

    pub fn browser(settings: &Settings) -> &'static str {
        if settings.cookie_secure {
            "__Host-portcullis_browser"
        } else {
            "portcullis_browser"
        }
    }
}

fn cookie(
    settings: &Settings,
    name: &'static str,
    value: String,
    max_age: Option<i64>,
) -> Cookie<'static> {
    let mut c = Cookie::build(name, value)
        .path("/")
        .http_only(true)
        .secure(settings.cookie_secure)
        .same_site(SameSite::Lax)
        .finish();
    if let Some(seconds) = max_age {
        c.set_max_age(CookieDuration::seconds(seconds));
    }
    c
}

pub fn session_cookie(settings: &Settings, session_id: String) -> Cookie<'static> {
    cookie(
        settings,
        CookieNames::session(settings),
        session_id,
        Some(settings.session_ttl),
    )
}

pub fn expired_session_cookie(settings: &Settings) -> Cookie<'static> {
    cookie(
        settings,
        CookieNames::session(settings),
        String::new(),
        Some(0),
    )
}

const BROWSER_ID: &str = "browser-id";

/// A new browser id: random, with our MAC, so that a value the client made up (or one a
/// sibling site planted) is never taken for one we issued.
fn new_browser_id(state: &AppState) -> String {
    let nonce = random_token(24);
    format!("{nonce}.{}", state.kek.derive(BROWSER_ID, &nonce))
}

fn issued_by_us(state: &AppState, value: &str) -> bool {
    value.split_once('.').is_some_and(|(nonce, mac)| {
        crate::crypto::tokens::constant_time_eq(
            state.kek.derive(BROWSER_ID, nonce).as_bytes(),
            mac.as_bytes(),
        )
    })
}

/// The id of this browser, if it carries one we issued.
pub fn known_browser(req: &HttpRequest, state: &AppState) -> Option<String> {
    req.cookie(CookieNames::browser(&state.settings))
        .map(|c| c.value().to_owned())
        .filter(|v| issued_by_us(state, v))
}

/// The browser id that binds interactions (authorization requests, their forms, logout)
/// to this browser: the one it carries, or a new one to set.
pub fn browser_id(req: &HttpRequest, state: &AppState) -> (String, Option<Cookie<'static>>) {
    match known_browser(req, state) {
        Some(id) => (id, None),
        None => {
            let id = new_browser_id(state);
            let c = cookie(
                &state.settings,
                CookieNames::browser(&state.settings),
                id.clone(),
                Some(400 * 86_400),
            );
            (id, Some(c))
        }
    }
}

/// The CSRF token of a form of the interaction `handle` in `browser`: derived, never
/// stored, and worthless in any other browser.
pub fn form_token(state: &AppState, purpose: &str, handle: &str, browser: &str) -> String {
    state.kek.derive(purpose, &format!("{handle}\n{browser}"))
}

pub fn session_id(req: &HttpRequest, settings: &Settings) -> Option<String> {
    req.cookie(CookieNames::session(settings))
        .map(|c| c.value().to_owned())
        .filter(|v| !v.is_empty())
}

/// Mounts every route under the issuer's path.
pub fn routes(cfg: &mut web::ServiceConfig, settings: &Settings) {
    let scope = web::scope(&settings.issuer_path)
        .configure(endpoints::configure)
        .configure(admin_api::configure)
        .configure(console::configure)
        .configure(|c| pages::configure(c, settings));
    // Unknown paths, below the issuer's path or not: actix's default is an empty 404.
    cfg.service(scope)
        .default_service(web::to(error::not_found));
}

/// The largest request body read, on every route (forms and registration documents are
/// far smaller).
pub const BODY_LIMIT: usize = 64 * 1024;

/// How long a request body may take to arrive once its head has been read. actix times
/// out only the head (`client_request_timeout`) and idle connections (keep-alive): a
/// request that announces a body and never sends it would hold its connection for good.
pub const BODY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// Whether the request's path answers errors as JSON (a back-channel endpoint) rather
/// than with the error page (a browser's page).
fn answers_json(req: &actix_web::dev::ServiceRequest) -> bool {
    let base = req
        .app_data::<State>()
        .map(|s| s.settings.issuer_path.clone())
        .unwrap_or_default();
    let path = req.path();
    endpoints::answers_json(path.strip_prefix(base.as_str()).unwrap_or(path))
}

/// Reads each request's body before routing, so that every route shares one limit, one
/// deadline and one way to answer them: a body over `BODY_LIMIT` gets 413 (left unread
/// when its `Content-Length` says so), one that has not arrived within `BODY_TIMEOUT`
/// gets 408, both as `invalid_request` in the path's format (`error::refusal`). actix
/// closes a connection whose request body was left unread once it has answered. The
/// handlers then extract the buffered body as before.
pub async fn read_body(
    mut req: actix_web::dev::ServiceRequest,
    next: actix_web::middleware::Next<impl actix_web::body::MessageBody + 'static>,
) -> Result<actix_web::dev::ServiceResponse, actix_web::Error> {
    use actix_web::http::{StatusCode, header};
    let announced = req.headers().contains_key(header::CONTENT_LENGTH)
        || req.headers().contains_key(header::TRANSFER_ENCODING);
    if announced {
        let read = tokio::time::timeout(BODY_TIMEOUT, req.extract::<web::Bytes>()).await;
        let refused = match read {
            Ok(Ok(body)) => {
                req.set_payload(body.into());
                None
            }
            Ok(Err(e)) => Some(match e.as_error::<actix_web::error::PayloadError>() {
                Some(actix_web::error::PayloadError::Overflow) => (
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "the request body is too large",
                ),
                _ => (
                    StatusCode::BAD_REQUEST,
                    "the request body could not be read",
                ),
            }),
            Err(_) => Some((
                StatusCode::REQUEST_TIMEOUT,
                "the request body did not arrive in time",
            )),
        };
        if let Some((status, description)) = refused {
            let base = req
                .app_data::<State>()
                .map(|s| s.settings.issuer_path.clone())
                .unwrap_or_default();
            let response = error::refusal(answers_json(&req), &base, status, description);
            return Ok(req.into_response(response));
        }
    }
    Ok(next.call(req).await?.map_into_boxed_body())
}

/// Whether responses carry HSTS (`Strict-Transport-Security`). The issuer is the public
/// URL, so an https issuer always gets it. So does `cookie_secure` (the default for any
/// issuer but a plain-http loopback one): browsers keep Secure cookies only from https
/// pages, so such a deployment signs nobody in unless it is reached over TLS (typically
/// through a proxy that terminates it), and insisting on TLS costs it nothing. Over plain
/// http browsers ignore the header (RFC 6797 §8.1). Keying on `cookie_secure` also lets
/// the tests, whose issuers are always `http://127.0.0.1`, see it (`COOKIE_SECURE=true`).
pub fn sends_hsts(settings: &Settings) -> bool {
    settings.cookie_secure || url::Url::parse(&settings.issuer).is_ok_and(|u| u.scheme() == "https")
}

/// `Strict-Transport-Security` for `sends_hsts` deployments: two years, this host only
/// (`includeSubDomains` would bind sibling hosts the operator may not serve over TLS).
pub const HSTS: &str = "max-age=63072000";

/// Widens a page's `form-action 'self'` to where its form's submission ends up (the
/// client's `redirect_uri`, a `post_logout_redirect_uri`): Chrome and Safari check the
/// directive against the redirect that follows a submission too, so without it a consent
/// or sign-out page could never send the browser on to the client. An http(s) target
/// adds its origin, a native app's private-use scheme (RFC 8252 §7.1) the scheme.
/// The CSP source that allows exactly the frame `uri` (scheme, host, port and path; CSP
/// ignores the query), or `None` for a URI no source can name (a frame we then do not
/// load at all).
pub fn frame_source(uri: &str) -> Option<String> {
    let url = url::Url::parse(uri).ok()?;
    if !matches!(url.scheme(), "https" | "http") {
        return None;
    }
    let source = format!("{}{}", url.origin().ascii_serialization(), url.path());
    // ';' and ',' would end the directive or the policy.
    (!source.contains([';', ',', ' '])).then_some(source)
}

/// Lets a page load `frames` (Front-Channel Logout iframes) and nothing more, and with
/// `script` our own script that continues once they have loaded.
pub fn allow_frames(response: &mut actix_web::HttpResponse, frames: &[String], script: bool) {
    let sources: Vec<String> = frames.iter().filter_map(|f| frame_source(f)).collect();
    if sources.is_empty() {
        return;
    }
    rewrite_csp(response, |policy| {
        let mut widened = format!("{policy}; frame-src {}", sources.join(" "));
        if script {
            widened.push_str("; script-src 'self'");
        }
        widened
    });
}

/// Lets the page run the inline scripts that carry `nonce` (CSP3 `'nonce-…'`), and no
/// other.
pub fn allow_script_nonce(response: &mut actix_web::HttpResponse, nonce: &str) {
    rewrite_csp(response, |policy| {
        format!("{policy}; script-src 'nonce-{nonce}'")
    });
}

/// Replaces the response's Content-Security-Policy by `rewrite` of it (pages only: a
/// response without one is left alone).
fn rewrite_csp(response: &mut actix_web::HttpResponse, rewrite: impl FnOnce(&str) -> String) {
    use actix_web::http::header::{CONTENT_SECURITY_POLICY, HeaderValue};
    let Some(policy) = response
        .headers()
        .get(CONTENT_SECURITY_POLICY)
        .and_then(|v| v.to_str().ok())
    else {
        return;
    };
    if let Ok(value) = HeaderValue::from_str(&rewrite(policy)) {
        response
            .headers_mut()
            .insert(CONTENT_SECURITY_POLICY, value);
    }
}

pub fn allow_form_redirect(response: &mut actix_web::HttpResponse, target: &str) {
    let Ok(url) = url::Url::parse(target) else {
        return;
    };
    let source = match url.origin() {
        origin @ url::Origin::Tuple(..) => origin.ascii_serialization(),
        url::Origin::Opaque(_) => format!("{}:", url.scheme()),
    };
    rewrite_csp(response, |policy| {
        policy.replacen(
            "form-action 'self'",
            &format!("form-action 'self' {source}"),
            1,
        )
    });
}

#[cfg(test)]
mod tests {
    use super::client_address;
    use crate::domain::IpRange;

    #[test]
    fn forwarded_for_is_believed_only_from_trusted_proxies() {
        let proxies = [IpRange::parse("10.0.0.0/8").unwrap()];
        let ip = |s: &str| Some(s.parse().unwrap());
        // A direct client cannot claim another address.
        assert_eq!(
            client_address(ip("203.0.113.9"), Some("1.2.3.4"), &proxies),
            ip("203.0.113.9")
        );
        // Behind our proxy: the address the proxy saw.
        assert_eq!(
            client_address(ip("10.0.0.2"), Some("1.2.3.4, 198.51.100.7"), &proxies),
            ip("198.51.100.7")
        );
        // Through two of our proxies: still the first untrusted hop from the right.
        assert_eq!(
            client_address(
                ip("10.0.0.2"),
                Some("1.2.3.4, 198.51.100.7, 10.0.0.3"),
                &proxies
            ),
            ip("198.51.100.7")
        );
        // Ports and brackets, as some proxies write them.
        assert_eq!(
            client_address(ip("10.0.0.2"), Some("198.51.100.7:4711"), &proxies),
            ip("198.51.100.7")
        );
        assert_eq!(
            client_address(ip("10.0.0.2"), Some("[2001:db8::7]:4711"), &proxies),
            ip("2001:db8::7")
        );
        // Garbage stops the walk at the last good hop.
        assert_eq!(
            client_address(ip("10.0.0.2"), Some("junk"), &proxies),
            ip("10.0.0.2")
        );
        assert_eq!(client_address(ip("10.0.0.2"), None, &[]), ip("10.0.0.2"));
    }

    #[test]
    fn several_forwarded_for_lines_are_read_as_one_list_in_order() {
        let mut headers = actix_web::http::header::HeaderMap::new();
        let name = actix_web::http::header::HeaderName::from_static("x-forwarded-for");
        headers.append(name.clone(), "6.6.6.6".parse().unwrap());
        headers.append(name, "198.51.100.7".parse().unwrap());
        let proxies = [IpRange::parse("10.0.0.0/8").unwrap()];
        let joined = super::forwarded_for(&headers);
        assert_eq!(
            client_address(
                Some("10.0.0.2".parse().unwrap()),
                joined.as_deref(),
                &proxies
            ),
            Some("198.51.100.7".parse().unwrap()),
            "the proxy's own line is the last one"
        );
    }

    #[test]
    fn a_body_type_is_its_media_type_whatever_the_case_and_parameters() {
        use super::is_media_type;
        let form = "application/x-www-form-urlencoded";
        assert!(is_media_type(Some(form), form));
        assert!(is_media_type(
            Some("Application/X-WWW-Form-URLEncoded; charset=UTF-8"),
            form
        ));
        assert!(is_media_type(
            Some("application/json ;charset=utf-8"),
            "application/json"
        ));
        assert!(!is_media_type(None, form));
        assert!(!is_media_type(Some(""), form));
        assert!(!is_media_type(Some("text/plain"), form));
        for other in [
            "application/x-www-form-urlencodedx",
            "multipart/form-data; boundary=x",
            "application/json",
        ] {
            assert!(!is_media_type(Some(other), form), "{other}");
        }
        assert!(!is_media_type(
            Some("application/json-patch+json"),
            "application/json"
        ));
    }

    #[test]
    fn ipv6_addresses_are_limited_per_slash_64() {
        assert_eq!(
            super::limit_key("2001:db8:1:2:aaaa::1"),
            "2001:db8:1:2::/64"
        );
        assert_eq!(
            super::limit_key("2001:db8:1:2:bbbb::9"),
            "2001:db8:1:2::/64"
        );
        assert_eq!(super::limit_key("192.0.2.4"), "192.0.2.4");
    }
}
