//! Settings: defaults, then an optional TOML file, then `PORTCULLIS_<KEY>` environment
//! variables. Validated once at start; a bad value is a one-line error naming the key.

use std::collections::BTreeMap;
use std::path::Path;

use crate::domain::Secret;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RegistrationMode {
    Open,
    Token,
    Off,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogFormat {
    Pretty,
    Json,
}

#[derive(Clone, Debug)]
pub struct Settings {
    /// The exact `iss`, without a trailing slash.
    pub issuer: String,
    /// The issuer's path ("" or "/something"), under which every route is mounted.
    pub issuer_path: String,
    pub bind: String,
    pub database_url: String,
    pub redis_url: Option<String>,
    /// Prefix of every Redis key, so several deployments can share one Redis.
    pub redis_prefix: String,
    /// PEM file of the CA(s) that signed a `rediss://` server's certificate, trusted
    /// instead of the system's roots; `None`: the system's roots.
    pub redis_ca_file: Option<std::path::PathBuf>,
    pub registration: RegistrationMode,
    pub registration_token: Option<Secret<String>>,
    pub cookie_secure: bool,
    pub log_format: LogFormat,
    pub authorization_code_ttl: i64,
    pub access_token_ttl: i64,
    pub id_token_ttl: i64,
    /// Seconds an unused refresh token lives; each rotation starts it again.
    pub refresh_token_ttl: i64,
    /// Seconds from sign-in after which no refresh token of the grant works, used or not.
    pub refresh_token_absolute_ttl: i64,
    /// Seconds after a rotation during which the rotated token still yields its successor
    /// (a retry or a concurrent request, not theft); see `protocol::grants::refresh_token`.
    pub refresh_token_grace_period: i64,
    /// The key-encryption key itself (base64 of 32 bytes), or `None` to use the file.
    pub key_encryption_key: Option<Secret<String>>,
    /// Where the key-encryption key is read from (created on first start if missing).
    pub key_encryption_key_file: std::path::PathBuf,
    pub session_ttl: i64,
    /// Where `/metrics` is served: its own listener, loopback by default; `off` serves it
    /// nowhere.
    pub metrics_bind: Option<String>,
    /// Seconds after which a signing key is replaced by a new one automatically (0: never).
    pub key_rotation_interval: i64,
    /// Reverse proxies whose `X-Forwarded-For` and `X-Request-Id` are believed.
    pub trusted_proxies: Vec<crate::domain::IpRange>,
    /// How often each instance reloads the signing keys (to pick up rotations).
    pub key_refresh_interval: i64,
    /// RFC 9126 §5: every authorization request must be pushed first (PAR), for every
    /// client (clients may also require it one by one).
    pub require_pushed_authorization_requests: bool,
    /// How the pages look: the product's name, logo and colours.
    pub brand: Brand,
    /// Interactions (sign-ins that need a page) one client address may start per minute.
    pub pending_sign_ins_per_address: i64,
    /// Open registrations one client address may make per hour.
    pub registrations_per_address: i64,
    /// Failed passwords from one client address, over all account names, per 15 minutes
    /// before its attempts are queued a second apart (see `protocol::throttle`).
    pub password_failures_per_address: i64,
}

/// The operator's branding of the pages, read at start (no rebuild).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Brand {
    /// Shown in every page's header and title (`brand_name`, default "Portcullis").
    pub name: String,
    /// An image shown beside the name: an https URL or a path on this server.
    pub logo_url: Option<String>,
    /// The colour of buttons and links, `#rrggbb`.
    pub accent_color: Option<String>,
    /// The operator's own CSS (the file `brand_stylesheet`), served after ours.
    pub stylesheet: Option<String>,
}

impl Brand {
    /// Whether `/static/brand.css` has anything to say.
    pub fn has_css(&self) -> bool {
        self.accent_color.is_some() || self.stylesheet.is_some()
    }

    /// `/static/brand.css`: the accent colour, then the operator's stylesheet.
    pub fn css(&self) -> String {
        let mut css = String::new();
        if let Some(color) = &self.accent_color {
            css.push_str(&format!(":root {{ --accent: {color}; }}\n"));
        }
        if let Some(sheet) = &self.stylesheet {
            css.push_str(sheet);
        }
        css
    }
}

fn is_hex_color(value: &str) -> bool {
    value.len() == 7 && value.starts_with('#') && value[1..].bytes().all(|b| b.is_ascii_hexdigit())
}

#[derive(Debug, thiserror::Error)]
#[error("configuration: {key}: {message}")]
pub struct ConfigError {
    pub key: String,
    pub message: String,
}

fn bad(key: &str, message: impl Into<String>) -> ConfigError {
    ConfigError {
        key: key.to_owned(),
        message: message.into(),
    }
}

const KEYS: &[&str] = &[
    "issuer",
    "bind",
    "database_url",
    "redis_url",
    "redis_prefix",
    "redis_ca_file",
    "registration",
    "registration_token",
    "cookie_secure",
    "log_format",
    "authorization_code_ttl",
    "access_token_ttl",
    "id_token_ttl",
    "refresh_token_ttl",
    "refresh_token_absolute_ttl",
    "refresh_token_grace_period",
    "key_encryption_key",
    "key_encryption_key_file",
    "session_ttl",
    "trusted_proxies",
    "metrics_bind",
    "key_rotation_interval",
    "key_refresh_interval",
    "require_pushed_authorization_requests",
    "brand_name",
    "brand_logo_url",
    "brand_accent_color",
    "brand_stylesheet",
    "pending_sign_ins_per_address",
    "registrations_per_address",
    "password_failures_per_address",
];

impl Settings {
    /// Reads the file (if any) and the process environment.
    pub fn load(config_file: Option<&Path>) -> Result<Self, ConfigError> {
        let file = match config_file {
            Some(path) => Some(
                std::fs::read_to_string(path)
                    .map_err(|e| bad("config", format!("cannot read {}: {e}", path.display())))?,
            ),
            None => None,
        };
        Self::from_sources(file.as_deref(), |name| std::env::var(name).ok())
    }

    /// Builds settings from TOML text and an environment lookup; pure, so tests need no
    /// process environment.
    pub fn from_sources(
        toml_text: Option<&str>,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, ConfigError> {
        let mut raw: BTreeMap<String, String> = BTreeMap::new();
        if let Some(text) = toml_text {
            let table: toml::Table =
                toml::from_str(text).map_err(|e| bad("config", e.message().to_owned()))?;
            for (key, value) in table {
                if !KEYS.contains(&key.as_str()) {
                    return Err(bad(&key, "unknown key"));
                }
                let text = match value {
                    toml::Value::String(s) => s,
                    toml::Value::Integer(i) => i.to_string(),
                    toml::Value::Boolean(b) => b.to_string(),
                    other => return Err(bad(&key, format!("unsupported value {other:?}"))),
                };
                raw.insert(key, text);
            }
        }
        for key in KEYS {
            if let Some(value) = env(&format!("PORTCULLIS_{}", key.to_uppercase())) {
                raw.insert((*key).to_owned(), value);
            }
        }
        Self::from_raw(&raw)
    }

    fn from_raw(raw: &BTreeMap<String, String>) -> Result<Self, ConfigError> {
        let get = |key: &str| -> Option<&str> { raw.get(key).map(String::as_str) };
        let issuer = parse_issuer(get("issuer").unwrap_or("http://localhost:8080"))?;
        // Insecure cookies only for a plain-http issuer on this machine, judged on the
        // parsed host (`http://localhost.evil.example` is not local).
        let local = url::Url::parse(&issuer).is_ok_and(|u| {
            u.scheme() == "http"
                && match u.host() {
                    Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
                    Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
                    Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
                    None => false,
                }
        });
        let registration = match get("registration").unwrap_or("token") {
            "open" => RegistrationMode::Open,
            "token" => RegistrationMode::Token,
            "off" => RegistrationMode::Off,
            other => {
                return Err(bad(
                    "registration",
                    format!("expected open, token or off, got {other:?}"),
                ));
            }
        };
        let registration_token = get("registration_token")
            .filter(|t| !t.is_empty())
            .map(|t| Secret::new(t.to_owned()));
        let log_format = match get("log_format").unwrap_or("pretty") {
            "pretty" => LogFormat::Pretty,
            "json" => LogFormat::Json,
            other => {
                return Err(bad(
                    "log_format",
                    format!("expected pretty or json, got {other:?}"),
                ));
            }
        };
        let cookie_secure = match get("cookie_secure") {
            None => !local,
            Some("true") => true,
            Some("false") => false,
            Some(other) => {
                return Err(bad(
                    "cookie_secure",
                    format!("expected true or false, got {other:?}"),
                ));
            }
        };
        let require_pushed_authorization_requests =
            match get("require_pushed_authorization_requests") {
                None | Some("false") => false,
                Some("true") => true,
                Some(other) => {
                    return Err(bad(
                        "require_pushed_authorization_requests",
                        format!("expected true or false, got {other:?}"),
                    ));
                }
            };
        let database_url = get("database_url")
            .unwrap_or("sqlite://data/portcullis.db")
            .to_owned();
        if !(database_url.starts_with("sqlite://")
            || database_url.starts_with("postgres://")
            || database_url.starts_with("postgresql://"))
        {
            return Err(bad(
                "database_url",
                "expected sqlite://PATH or postgres://...",
            ));
        }
        let redis_url = get("redis_url")
            .filter(|u| !u.is_empty())
            .map(str::to_owned);
        if let Some(url) = &redis_url {
            if !(url.starts_with("redis://") || url.starts_with("rediss://")) {
                return Err(bad(
                    "redis_url",
                    "expected redis://HOST[:PORT][/DB] or, over TLS, rediss://HOST[:PORT][/DB]",
                ));
            }
            // `#insecure` (no certificate verification) is not built in; refuse any fragment
            // here rather than at the first connection.
            if url.contains('#') {
                return Err(bad(
                    "redis_url",
                    "no #fragment allowed (certificates are always verified; for a private CA \
                     set redis_ca_file)",
                ));
            }
        }
        let redis_ca_file = get("redis_ca_file")
            .filter(|p| !p.is_empty())
            .map(std::path::PathBuf::from);
        if redis_ca_file.is_some()
            && !redis_url
                .as_deref()
                .is_some_and(|u| u.starts_with("rediss://"))
        {
            return Err(bad("redis_ca_file", "needs a rediss:// redis_url"));
        }
        let bind = get("bind").unwrap_or("127.0.0.1:8080").to_owned();
        if bind.parse::<std::net::SocketAddr>().is_err() && !bind.contains(':') {
            return Err(bad("bind", "expected HOST:PORT"));
        }
        let key_encryption_key = get("key_encryption_key")
            .filter(|k| !k.is_empty())
            .map(|k| Secret::new(k.to_owned()));
        if let Some(key) = &key_encryption_key {
            crate::crypto::kek::KeyEncryptionKey::from_base64(key.expose())
                .map_err(|e| bad("key_encryption_key", e.to_string()))?;
        }
        // By default the key lives beside the SQLite file (or in ./data for PostgreSQL):
        // never inside the database it protects.
        let key_encryption_key_file = match get("key_encryption_key_file") {
            Some(path) if !path.is_empty() => std::path::PathBuf::from(path),
            _ => {
                let dir = database_url
                    .strip_prefix("sqlite://")
                    .map(Path::new)
                    .and_then(Path::parent)
                    .filter(|d| !d.as_os_str().is_empty() && database_url != "sqlite://:memory:")
                    .unwrap_or(Path::new("data"));
                dir.join("portcullis.kek")
            }
        };
        let grace = match get("refresh_token_grace_period") {
            None => 5,
            Some(text) => text
                .parse::<i64>()
                .ok()
                .filter(|v| (0..=300).contains(v))
                .ok_or_else(|| {
                    bad(
                        "refresh_token_grace_period",
                        format!("expected 0 to 300 seconds, got {text:?}"),
                    )
                })?,
        };
        let trusted_proxies = get("trusted_proxies")
            .unwrap_or("")
            .split([',', ' '])
            .filter(|p| !p.is_empty())
            .map(|p| {
                crate::domain::IpRange::parse(p).ok_or_else(|| {
                    bad(
                        "trusted_proxies",
                        format!("{p:?} is not an address or CIDR range"),
                    )
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let metrics_bind = match get("metrics_bind").unwrap_or("127.0.0.1:9464") {
            "off" | "" => None,
            addr if addr.parse::<std::net::SocketAddr>().is_ok() || addr.contains(':') => {
                Some(addr.to_owned())
            }
            other => {
                return Err(bad(
                    "metrics_bind",
                    format!("expected HOST:PORT or off, got {other:?}"),
                ));
            }
        };
        let key_rotation_interval = match get("key_rotation_interval") {
            None => 7_776_000,
            Some(text) => text
                .parse::<i64>()
                .ok()
                .filter(|v| *v == 0 || *v >= 86_400)
                .ok_or_else(|| {
                    bad(
                        "key_rotation_interval",
                        format!("expected 0 (never) or at least 86400 seconds, got {text:?}"),
                    )
                })?,
        };
        let brand = Brand {
            name: match get("brand_name").map(str::trim) {
                None | Some("") => "Portcullis".to_owned(),
                Some(name) if name.chars().count() > 60 || name.chars().any(char::is_control) => {
                    return Err(bad(
                        "brand_name",
                        "at most 60 characters, no control characters",
                    ));
                }
                Some(name) => name.to_owned(),
            },
            logo_url: match get("brand_logo_url").filter(|v| !v.is_empty()) {
                None => None,
                // The pages' CSP allows images from this server and from https: sites.
                Some(v) if v.starts_with('/') || v.starts_with("https://") => Some(v.to_owned()),
                Some(v) => {
                    return Err(bad(
                        "brand_logo_url",
                        format!("expected an https URL or a path on this server, got {v:?}"),
                    ));
                }
            },
            accent_color: match get("brand_accent_color").filter(|v| !v.is_empty()) {
                None => None,
                Some(v) if is_hex_color(v) => Some(v.to_ascii_lowercase()),
                Some(v) => {
                    return Err(bad(
                        "brand_accent_color",
                        format!("expected #rrggbb, got {v:?}"),
                    ));
                }
            },
            stylesheet: match get("brand_stylesheet").filter(|v| !v.is_empty()) {
                None => None,
                Some(path) => Some(
                    std::fs::read_to_string(path)
                        .map_err(|e| bad("brand_stylesheet", format!("cannot read {path}: {e}")))?,
                ),
            },
        };
        let issuer_path = url::Url::parse(&issuer)
            .map(|u| u.path().trim_end_matches('/').to_owned())
            .unwrap_or_default();
        let settings = Settings {
            issuer,
            issuer_path,
            bind,
            database_url,
            redis_url,
            redis_prefix: get("redis_prefix").unwrap_or("portcullis:").to_owned(),
            redis_ca_file,
            registration,
            registration_token,
            cookie_secure,
            log_format,
            authorization_code_ttl: ttl(raw, "authorization_code_ttl", 60)?,
            access_token_ttl: ttl(raw, "access_token_ttl", 3600)?,
            id_token_ttl: ttl(raw, "id_token_ttl", 3600)?,
            refresh_token_ttl: ttl(raw, "refresh_token_ttl", 2_592_000)?,
            refresh_token_absolute_ttl: ttl(raw, "refresh_token_absolute_ttl", 7_776_000)?,
            refresh_token_grace_period: grace,
            key_encryption_key,
            key_encryption_key_file,
            session_ttl: ttl(raw, "session_ttl", 86_400)?,
            trusted_proxies,
            metrics_bind,
            key_rotation_interval,
            key_refresh_interval: ttl(raw, "key_refresh_interval", 60)?,
            require_pushed_authorization_requests,
            brand,
            // The defaults, and why: README, "Limits per client address".
            pending_sign_ins_per_address: per_address(raw, "pending_sign_ins_per_address", 600)?,
            registrations_per_address: per_address(raw, "registrations_per_address", 20)?,
            password_failures_per_address: per_address(raw, "password_failures_per_address", 100)?,
        };
        // A grant must outlive the access tokens it backs, and a refresh token its grant.
        if settings.refresh_token_absolute_ttl < settings.access_token_ttl {
            return Err(bad(
                "refresh_token_absolute_ttl",
                "must be at least access_token_ttl",
            ));
        }
        if settings.registration == RegistrationMode::Token && settings.registration_token.is_none()
        {
            // Not an error: registration simply stays closed until a token is configured.
            tracing::debug!(
                "registration = token without registration_token: registration is closed"
            );
        }
        Ok(settings)
    }

    pub fn endpoint(&self, path: &str) -> String {
        format!("{}{path}", self.issuer)
    }
}

fn ttl(raw: &BTreeMap<String, String>, key: &str, default: i64) -> Result<i64, ConfigError> {
    match raw.get(key) {
        None => Ok(default),
        Some(text) => match text.parse::<i64>() {
            Ok(v) if (1..=31_536_000 * 10).contains(&v) => Ok(v),
            _ => Err(bad(
                key,
                format!("expected a positive number of seconds, got {text:?}"),
            )),
        },
    }
}

/// A per-address limit: a count of at least 1 (a limit of 0 would shut every address out;
/// a very large one turns the limit off in effect).
fn per_address(
    raw: &BTreeMap<String, String>,
    key: &str,
    default: i64,
) -> Result<i64, ConfigError> {
    match raw.get(key) {
        None => Ok(default),
        Some(text) => match text.parse::<i64>() {
            Ok(v) if (1..=1_000_000_000).contains(&v) => Ok(v),
            _ => Err(bad(
                key,
                format!("expected a count from 1 to 1000000000, got {text:?}"),
            )),
        },
    }
}

/// OIDC Discovery §3: the issuer is an https URL (http allowed here for development) with
/// no query or fragment.
fn parse_issuer(value: &str) -> Result<String, ConfigError> {
    let trimmed = value.trim_end_matches('/');
    let url = url::Url::parse(trimmed).map_err(|e| bad("issuer", format!("not a URL: {e}")))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(bad(
            "issuer",
            "must be an https:// (or http:// for development) URL",
        ));
    }
    if url.query().is_some() || url.fragment().is_some() || url.host_str().is_none() {
        return Err(bad("issuer", "must have a host and no query or fragment"));
    }
    Ok(trimmed.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_env(_: &str) -> Option<String> {
        None
    }

    #[test]
    fn defaults_give_a_local_server_without_secure_cookies() {
        let s = Settings::from_sources(None, no_env).unwrap();
        assert_eq!(s.issuer, "http://localhost:8080");
        assert_eq!(s.database_url, "sqlite://data/portcullis.db");
        assert!(!s.cookie_secure);
        assert_eq!(s.authorization_code_ttl, 60);
        assert_eq!(s.registration, RegistrationMode::Token);
        assert_eq!(s.refresh_token_grace_period, 5);
        assert_eq!(
            s.key_encryption_key_file,
            std::path::PathBuf::from("data/portcullis.kek")
        );
    }

    #[test]
    fn the_key_encryption_key_is_checked_at_start_and_its_file_sits_beside_the_database() {
        let err =
            Settings::from_sources(Some("key_encryption_key = \"c2hvcnQ=\""), no_env).unwrap_err();
        assert_eq!(err.key, "key_encryption_key");
        let s =
            Settings::from_sources(Some("database_url = \"sqlite:///srv/p/db.sqlite\""), no_env)
                .unwrap();
        assert_eq!(
            s.key_encryption_key_file,
            std::path::PathBuf::from("/srv/p/portcullis.kek")
        );
        let err =
            Settings::from_sources(Some("refresh_token_grace_period = 301"), no_env).unwrap_err();
        assert_eq!(err.key, "refresh_token_grace_period");
        assert!(Settings::from_sources(Some("refresh_token_grace_period = 0"), no_env).is_ok());
    }

    #[test]
    fn only_a_loopback_issuer_gets_insecure_cookies_by_default() {
        let secure = |issuer: &str| {
            Settings::from_sources(None, |k| {
                (k == "PORTCULLIS_ISSUER").then(|| issuer.to_owned())
            })
            .unwrap()
            .cookie_secure
        };
        assert!(!secure("http://localhost:8080"));
        assert!(!secure("http://127.0.0.1:9000"));
        assert!(!secure("http://[::1]:9000"));
        assert!(secure("http://localhost.evil.example"));
        assert!(secure("http://127.0.0.1.nip.io"));
        assert!(secure("https://localhost"));
    }

    #[test]
    fn metrics_get_their_own_loopback_listener_unless_turned_off() {
        let s = Settings::from_sources(None, no_env).unwrap();
        assert_eq!(s.metrics_bind.as_deref(), Some("127.0.0.1:9464"));
        let off = Settings::from_sources(Some("metrics_bind = \"off\""), no_env).unwrap();
        assert_eq!(off.metrics_bind, None);
        assert_eq!(s.key_rotation_interval, 7_776_000);
        let err = Settings::from_sources(Some("key_rotation_interval = 5"), no_env).unwrap_err();
        assert_eq!(err.key, "key_rotation_interval");
    }

    #[test]
    fn environment_overrides_the_file() {
        let s = Settings::from_sources(
            Some("issuer = \"https://file.example\"\naccess_token_ttl = 5"),
            |k| (k == "PORTCULLIS_ISSUER").then(|| "https://env.example/".to_owned()),
        )
        .unwrap();
        assert_eq!(s.issuer, "https://env.example");
        assert_eq!(s.access_token_ttl, 5);
        assert!(s.cookie_secure);
    }

    #[test]
    fn a_bad_value_names_its_key() {
        let err = Settings::from_sources(Some("session_ttl = -3"), no_env).unwrap_err();
        assert_eq!(err.key, "session_ttl");
        let err = Settings::from_sources(Some("issuer = \"ftp://x\""), no_env).unwrap_err();
        assert_eq!(err.key, "issuer");
        let err = Settings::from_sources(Some("isuer = \"https://x\""), no_env).unwrap_err();
        assert_eq!(err.key, "isuer");
    }

    #[test]
    fn redis_may_be_reached_over_tls_with_verified_certificates() {
        let s = Settings::from_sources(
            Some("redis_url = \"rediss://cache.example:6380/0\"\nredis_ca_file = \"/etc/ca.pem\""),
            no_env,
        )
        .unwrap();
        assert_eq!(
            s.redis_url.as_deref(),
            Some("rediss://cache.example:6380/0")
        );
        assert_eq!(
            s.redis_ca_file,
            Some(std::path::PathBuf::from("/etc/ca.pem"))
        );
        let s = Settings::from_sources(Some("redis_url = \"redis://127.0.0.1\""), no_env).unwrap();
        assert_eq!(s.redis_ca_file, None);
        for bad_url in ["rediss://cache.example/#insecure", "http://cache.example"] {
            let err = Settings::from_sources(None, |k| {
                (k == "PORTCULLIS_REDIS_URL").then(|| bad_url.to_owned())
            })
            .unwrap_err();
            assert_eq!(err.key, "redis_url", "{bad_url}");
        }
        let err = Settings::from_sources(
            Some("redis_url = \"redis://127.0.0.1\"\nredis_ca_file = \"/etc/ca.pem\""),
            no_env,
        )
        .unwrap_err();
        assert_eq!(err.key, "redis_ca_file");
    }

    #[test]
    fn every_per_address_limit_is_a_setting_with_a_default() {
        let s = Settings::from_sources(None, no_env).unwrap();
        assert_eq!(s.pending_sign_ins_per_address, 600);
        assert_eq!(s.registrations_per_address, 20);
        assert_eq!(s.password_failures_per_address, 100);
        let s = Settings::from_sources(
            Some("pending_sign_ins_per_address = 5000\nregistrations_per_address = 3"),
            |k| (k == "PORTCULLIS_PASSWORD_FAILURES_PER_ADDRESS").then(|| "400".to_owned()),
        )
        .unwrap();
        assert_eq!(s.pending_sign_ins_per_address, 5000);
        assert_eq!(s.registrations_per_address, 3);
        assert_eq!(s.password_failures_per_address, 400);
        for key in [
            "pending_sign_ins_per_address",
            "registrations_per_address",
            "password_failures_per_address",
        ] {
            for value in ["0", "-1", "many"] {
                let toml = format!("{key} = \"{value}\"");
                let err = Settings::from_sources(Some(toml.as_str()), no_env).unwrap_err();
                assert_eq!(err.key, key, "{value}");
            }
        }
    }

    #[test]
    fn issuer_path_is_where_routes_are_mounted() {
        let s = Settings::from_sources(None, |k| {
            (k == "PORTCULLIS_ISSUER").then(|| "https://id.example/auth/".to_owned())
        })
        .unwrap();
        assert_eq!(s.issuer_path, "/auth");
        assert_eq!(s.endpoint("/token"), "https://id.example/auth/token");
        let s = Settings::from_sources(None, no_env).unwrap();
        assert_eq!(s.issuer_path, "");
    }
}
