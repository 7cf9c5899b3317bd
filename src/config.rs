//! Settings: defaults, then an optional TOML file, then `PORTCULLIS_<KEY>` environment
//! variables. Validated once at start; a bad value is a one-line error naming the key.
//!
//! `keys` lists every key once (name, default, meaning); `sources` merges the layers and
//! reads them with one derived struct; `Settings::from_values` applies the rules that
//! join several keys and the defaults computed from other keys.

mod keys;
pub mod smtp;
mod sources;
pub mod upstream;

use std::path::Path;

pub use keys::{DefaultValue, KEYS, Key};
pub use smtp::{SmtpCredentials, SmtpSecurity, SmtpServer};
pub use upstream::{LinkMode, UpstreamProvider};

// The `registration` key reads it; it lives in the domain because the protocol names it too.
pub use crate::domain::RegistrationMode;
use crate::domain::{Seconds, Secret};
use sources::Values;

/// `brand_name` when unset or empty.
const DEFAULT_BRAND_NAME: &str = "Portcullis";

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
    pub authorization_code_ttl: Seconds,
    pub access_token_ttl: Seconds,
    pub id_token_ttl: Seconds,
    /// How long an unused refresh token lives; each rotation starts it again.
    pub refresh_token_ttl: Seconds,
    /// How long from sign-in until no refresh token of the grant works, used or not.
    pub refresh_token_absolute_ttl: Seconds,
    /// How long after a rotation the rotated token still yields its successor (a retry or
    /// a concurrent request, not theft); see `protocol::grants::refresh_token`.
    pub refresh_token_grace_period: Seconds,
    /// The key-encryption key itself (base64 of 32 bytes), or `None` to use the file.
    pub key_encryption_key: Option<Secret<String>>,
    /// Where the key-encryption key is read from (created on first start if missing).
    pub key_encryption_key_file: std::path::PathBuf,
    pub session_ttl: Seconds,
    /// How long audit events are kept; older ones are deleted by the hourly purge.
    pub audit_retention: Seconds,
    /// Where `/metrics` is served: its own listener, loopback by default; `off` serves it
    /// nowhere.
    pub metrics_bind: Option<String>,
    /// How old a signing key gets before a new one replaces it automatically (0: never).
    pub key_rotation_interval: Seconds,
    /// Reverse proxies whose `X-Forwarded-For` and `X-Request-Id` are believed.
    pub trusted_proxies: Vec<crate::domain::IpRange>,
    /// How often each instance reloads the signing keys (to pick up rotations).
    pub key_refresh_interval: Seconds,
    /// RFC 9126 §5: every authorization request must be pushed first (PAR), for every
    /// client (clients may also require it one by one).
    pub require_pushed_authorization_requests: bool,
    /// RFC 9449 §8, §9: every DPoP proof must carry the server's nonce (clients may also
    /// require it one by one).
    pub dpop_nonce: bool,
    /// How the pages look: the product's name, logo and colours.
    pub brand: Brand,
    /// Interactions (sign-ins that need a page) one client address may start per minute.
    pub pending_sign_ins_per_address: i64,
    /// Open registrations one client address may make per hour.
    pub registrations_per_address: i64,
    /// Device authorization requests (RFC 8628 §3.1) one client address may make per
    /// minute: each holds session-store entries for the code's lifetime.
    pub device_authorizations_per_address: i64,
    /// Failed passwords from one client address, over all account names, per 15 minutes
    /// before its attempts are queued a second apart (see `protocol::throttle`).
    pub password_failures_per_address: i64,
    /// Password-reset requests one client address may make per hour.
    pub reset_requests_per_address: i64,
    /// Password-reset requests for one email address (so one account) per hour, from
    /// anywhere: a mailbox is not flooded by someone else's requests. The same bound
    /// holds verification and change-of-address mails per account and per address.
    pub reset_requests_per_account: i64,
    /// The second-factor policy (`mfa`).
    pub mfa: crate::domain::MfaPolicy,
    /// The passkeys' relying party ID; `None`: the issuer's host.
    pub webauthn_rp_id: Option<String>,
    /// The origins passkey ceremonies may come from; empty: the issuer's origin.
    pub webauthn_origins: Vec<String>,
    /// Where mail goes: this SMTP server, or (`None`, the embedded default) `.eml` files
    /// in `mail_outbox_dir`, their links logged.
    pub smtp: Option<SmtpServer>,
    /// PEM CA(s) trusted for the SMTP server's certificate besides the system's roots (a
    /// private server's own CA).
    pub smtp_ca_file: Option<std::path::PathBuf>,
    /// The `From` of every mail.
    pub mail_from: lettre::message::Mailbox,
    /// Where mail is written without an SMTP server: `outbox/` in the data directory
    /// (beside the SQLite file, or `data/` with PostgreSQL).
    pub mail_outbox_dir: std::path::PathBuf,
    /// Who may create an account without an administrator (`signup`).
    pub signup: crate::domain::SignupMode,
    /// Sign-up forms one client address may send per hour (`signups_per_address`).
    pub signups_per_address: i64,
    /// The upstream identity providers (`[[upstream]]` tables of the file; issue 24).
    pub upstreams: Vec<UpstreamProvider>,
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
        let upstreams = upstream::read(toml_text)?;
        let mut settings = Self::from_values(Values::read(toml_text, env)?)?;
        settings.upstreams = upstreams;
        Ok(settings)
    }

    /// The rules that join keys, and the defaults computed from other keys; each value
    /// alone was checked as it was read.
    fn from_values(values: Values) -> Result<Self, ConfigError> {
        // Insecure cookies only for a plain-http issuer on this machine, judged on the
        // parsed host (`http://localhost.evil.example` is not local).
        let local = url::Url::parse(&values.issuer).is_ok_and(|u| {
            u.scheme() == "http"
                && match u.host() {
                    Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
                    Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
                    Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
                    None => false,
                }
        });
        if values.redis_ca_file.is_some()
            && !values
                .redis_url
                .as_deref()
                .is_some_and(|u| u.starts_with("rediss://") || u.starts_with("rediss+"))
        {
            return Err(bad(
                "redis_ca_file",
                "needs a rediss:// (or rediss+sentinel://, rediss+cluster://) redis_url",
            ));
        }
        if values.smtp_ca_file.is_some() && values.smtp_url.is_none() {
            return Err(bad("smtp_ca_file", "needs an smtp_url"));
        }
        // The data directory: beside the SQLite file (or ./data for PostgreSQL).
        let data_dir = {
            let database_url = values.database_url.as_str();
            database_url
                .strip_prefix("sqlite://")
                .map(Path::new)
                .and_then(Path::parent)
                .filter(|d| !d.as_os_str().is_empty() && database_url != "sqlite://:memory:")
                .unwrap_or(Path::new("data"))
                .to_owned()
        };
        // By default the key lives in the data directory: never inside the database it
        // protects.
        let key_encryption_key_file = values
            .key_encryption_key_file
            .unwrap_or_else(|| data_dir.join("portcullis.kek"));
        let mail_from = match values.mail_from {
            Some(mailbox) => mailbox,
            None => smtp::default_mailbox(&values.issuer, &values.brand_name)
                .map_err(|e| bad("mail_from", e))?,
        };
        let stylesheet = match &values.brand_stylesheet {
            None => None,
            Some(path) => Some(std::fs::read_to_string(path).map_err(|e| {
                bad(
                    "brand_stylesheet",
                    format!("cannot read {}: {e}", path.display()),
                )
            })?),
        };
        // A grant must outlive the access tokens it backs, and a refresh token its grant.
        if values.refresh_token_absolute_ttl < values.access_token_ttl {
            return Err(bad(
                "refresh_token_absolute_ttl",
                "must be at least access_token_ttl",
            ));
        }
        if values.registration == RegistrationMode::Token && values.registration_token.is_none() {
            // Not an error: registration simply stays closed until a token is configured.
            tracing::debug!(
                "registration = token without registration_token: registration is closed"
            );
        }
        let issuer_path = url::Url::parse(&values.issuer)
            .map(|u| u.path().trim_end_matches('/').to_owned())
            .unwrap_or_default();
        Ok(Settings {
            issuer: values.issuer,
            issuer_path,
            bind: values.bind,
            database_url: values.database_url,
            redis_url: values.redis_url,
            redis_prefix: values.redis_prefix,
            redis_ca_file: values.redis_ca_file,
            registration: values.registration,
            registration_token: values.registration_token,
            cookie_secure: values.cookie_secure.unwrap_or(!local),
            log_format: values.log_format,
            authorization_code_ttl: values.authorization_code_ttl,
            access_token_ttl: values.access_token_ttl,
            id_token_ttl: values.id_token_ttl,
            refresh_token_ttl: values.refresh_token_ttl,
            refresh_token_absolute_ttl: values.refresh_token_absolute_ttl,
            refresh_token_grace_period: values.refresh_token_grace_period,
            key_encryption_key: values.key_encryption_key,
            key_encryption_key_file,
            session_ttl: values.session_ttl,
            audit_retention: values.audit_retention,
            metrics_bind: values.metrics_bind,
            key_rotation_interval: values.key_rotation_interval,
            trusted_proxies: values.trusted_proxies,
            key_refresh_interval: values.key_refresh_interval,
            require_pushed_authorization_requests: values.require_pushed_authorization_requests,
            dpop_nonce: values.dpop_nonce,
            brand: Brand {
                name: values.brand_name,
                logo_url: values.brand_logo_url,
                accent_color: values.brand_accent_color,
                stylesheet,
            },
            // The defaults, and why: README, "Limits per client address".
            pending_sign_ins_per_address: values.pending_sign_ins_per_address,
            registrations_per_address: values.registrations_per_address,
            device_authorizations_per_address: values.device_authorizations_per_address,
            password_failures_per_address: values.password_failures_per_address,
            reset_requests_per_address: values.reset_requests_per_address,
            reset_requests_per_account: values.reset_requests_per_account,
            mfa: values.mfa,
            webauthn_rp_id: values.webauthn_rp_id,
            webauthn_origins: values.webauthn_origins,
            smtp: values.smtp_url,
            smtp_ca_file: values.smtp_ca_file,
            mail_from,
            mail_outbox_dir: data_dir.join("outbox"),
            signup: values.signup,
            signups_per_address: values.signups_per_address,
            upstreams: Vec::new(),
        })
    }

    pub fn endpoint(&self, path: &str) -> String {
        format!("{}{path}", self.issuer)
    }
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
        assert_eq!(s.authorization_code_ttl.as_secs(), 60);
        assert_eq!(s.registration, RegistrationMode::Token);
        assert_eq!(s.refresh_token_grace_period.as_secs(), 5);
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
        assert_eq!(s.key_rotation_interval.as_secs(), 7_776_000);
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
        assert_eq!(s.access_token_ttl.as_secs(), 5);
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
        assert_eq!(err.to_string(), "configuration: isuer: unknown key");
    }

    #[test]
    fn the_environment_is_asked_for_the_listed_keys_only() {
        let asked = std::cell::RefCell::new(Vec::new());
        Settings::from_sources(None, |name| {
            asked.borrow_mut().push(name.to_owned());
            None
        })
        .unwrap();
        let listed: Vec<String> = KEYS.iter().map(Key::env_var).collect();
        assert_eq!(asked.into_inner(), listed);
    }

    #[test]
    fn redis_url_names_a_sentinel_master_or_cluster_nodes() {
        let no_env = |_: &str| None;
        for url in [
            "redis+sentinel://10.0.0.1:26379,10.0.0.2:26379/mymaster",
            "rediss+sentinel://s1:26379/mymaster/2",
            "redis+cluster://n1:7000,n2:7001,n3:7002",
            "rediss+cluster://:secret@n1:7000",
        ] {
            let s = Settings::from_sources(Some(&format!("redis_url = \"{url}\"")), no_env)
                .unwrap_or_else(|e| panic!("{url}: {e}"));
            assert_eq!(s.redis_url.as_deref(), Some(url));
        }
        for url in [
            "redis+sentinel://10.0.0.1:26379",
            "redis+sentinel://10.0.0.1:26379/",
            "redis+cluster://n1:7000/0",
            "redis+cluster://n1:7000,,n2",
            "redis+valkey://n1",
        ] {
            let err = Settings::from_sources(Some(&format!("redis_url = \"{url}\"")), no_env)
                .unwrap_err();
            assert_eq!(err.key, "redis_url", "{url}");
        }
        let s = Settings::from_sources(
            Some("redis_url = \"rediss+cluster://n1:7000\"\nredis_ca_file = \"/etc/ca.pem\""),
            no_env,
        )
        .unwrap();
        assert!(s.redis_ca_file.is_some());
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
        assert_eq!(s.device_authorizations_per_address, 30);
        assert_eq!(s.password_failures_per_address, 100);
        assert_eq!(s.reset_requests_per_address, 20);
        assert_eq!(s.reset_requests_per_account, 5);
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
            "device_authorizations_per_address",
            "password_failures_per_address",
            "reset_requests_per_address",
            "reset_requests_per_account",
        ] {
            for value in ["0", "-1", "many"] {
                let toml = format!("{key} = \"{value}\"");
                let err = Settings::from_sources(Some(toml.as_str()), no_env).unwrap_err();
                assert_eq!(err.key, key, "{value}");
            }
        }
    }

    #[test]
    fn mail_is_written_to_the_data_directory_unless_an_smtp_server_is_set() {
        let s = Settings::from_sources(None, no_env).unwrap();
        assert!(s.smtp.is_none());
        assert_eq!(s.mail_outbox_dir, std::path::PathBuf::from("data/outbox"));
        assert_eq!(s.mail_from.to_string(), "Portcullis <noreply@localhost>");
        let s = Settings::from_sources(
            Some(
                "database_url = \"sqlite:///srv/p/db.sqlite\"\nbrand_name = \"Acme\"\n\
                 issuer = \"https://id.acme.example\"\nsmtp_ca_file = \"/etc/ca.pem\"",
            ),
            |k| (k == "PORTCULLIS_SMTP_URL").then(|| "smtps://u:secret@mx.acme.example".into()),
        )
        .unwrap();
        assert_eq!(s.mail_outbox_dir, std::path::PathBuf::from("/srv/p/outbox"));
        assert_eq!(s.mail_from.to_string(), "Acme <noreply@id.acme.example>");
        let smtp = s.smtp.as_ref().unwrap();
        assert_eq!((smtp.host.as_str(), smtp.port), ("mx.acme.example", 465));
        assert!(
            !format!("{s:?}").contains("secret"),
            "the password is never printed"
        );
        let err =
            Settings::from_sources(Some("smtp_ca_file = \"/etc/ca.pem\""), no_env).unwrap_err();
        assert_eq!(err.key, "smtp_ca_file");
        let err = Settings::from_sources(Some("smtp_url = \"smtp://u:pw@h?tls=none\""), no_env)
            .unwrap_err();
        assert_eq!(err.key, "smtp_url");
        assert!(!err.to_string().contains("pw"), "{err}");
        let err = Settings::from_sources(Some("mail_from = \"nobody\""), no_env).unwrap_err();
        assert_eq!(err.key, "mail_from");
        let s =
            Settings::from_sources(Some("mail_from = \"Acme <id@acme.example>\""), no_env).unwrap();
        assert_eq!(s.mail_from.to_string(), "Acme <id@acme.example>");
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
