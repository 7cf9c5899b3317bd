//! The layers (defaults, then the TOML file, then `PORTCULLIS_<KEY>`), merged key by key
//! and read by one derived struct. Every value arrives as text: environment variables are
//! text, and the file's strings, integers and booleans are turned into text first, so
//! `session_ttl = 60` and `session_ttl = "60"` mean the same, as they always did. Each
//! field's reader checks its value alone; rules across keys are in `Settings::from_values`.

use std::collections::BTreeMap;
use std::fmt::Display;
use std::path::PathBuf;

use serde::de::value::{MapAccessDeserializer, StrDeserializer, StringDeserializer};
use serde::de::{DeserializeSeed, Error as _, MapAccess};
use serde::{Deserialize, Deserializer};

use super::keys::{DefaultValue, KEYS};
use super::smtp::{SmtpServer, parse_mailbox};
use super::{ConfigError, LogFormat, RegistrationMode, bad};
use crate::domain::{IpRange, Seconds, Secret};
use crate::domain::{MfaPolicy, SignupMode};

/// The longest lifetime any `_ttl` key takes: ten years.
const MAX_LIFETIME: i64 = 31_536_000 * 10;

/// Every key's value, parsed to its type. `deny_unknown_fields`: a key in the file that is
/// not one of ours (a typo, a key of another version) stops the start, named.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Values {
    #[serde(deserialize_with = "issuer")]
    pub issuer: String,
    #[serde(deserialize_with = "host_port")]
    pub bind: String,
    #[serde(deserialize_with = "database_url")]
    pub database_url: String,
    #[serde(default, deserialize_with = "redis_url")]
    pub redis_url: Option<String>,
    pub redis_prefix: String,
    #[serde(default, deserialize_with = "path")]
    pub redis_ca_file: Option<PathBuf>,
    #[serde(deserialize_with = "registration")]
    pub registration: RegistrationMode,
    #[serde(default, deserialize_with = "secret")]
    pub registration_token: Option<Secret<String>>,
    #[serde(default, deserialize_with = "some_flag")]
    pub cookie_secure: Option<bool>,
    #[serde(deserialize_with = "log_format")]
    pub log_format: LogFormat,
    #[serde(deserialize_with = "lifetime")]
    pub authorization_code_ttl: Seconds,
    #[serde(deserialize_with = "lifetime")]
    pub access_token_ttl: Seconds,
    #[serde(deserialize_with = "lifetime")]
    pub id_token_ttl: Seconds,
    #[serde(deserialize_with = "lifetime")]
    pub refresh_token_ttl: Seconds,
    #[serde(deserialize_with = "lifetime")]
    pub refresh_token_absolute_ttl: Seconds,
    #[serde(deserialize_with = "grace_period")]
    pub refresh_token_grace_period: Seconds,
    #[serde(default, deserialize_with = "key_encryption_key")]
    pub key_encryption_key: Option<Secret<String>>,
    #[serde(default, deserialize_with = "path")]
    pub key_encryption_key_file: Option<PathBuf>,
    #[serde(deserialize_with = "lifetime")]
    pub session_ttl: Seconds,
    #[serde(deserialize_with = "lifetime")]
    pub audit_retention: Seconds,
    #[serde(deserialize_with = "lifetime")]
    pub key_refresh_interval: Seconds,
    #[serde(deserialize_with = "rotation_interval")]
    pub key_rotation_interval: Seconds,
    #[serde(deserialize_with = "metrics_bind")]
    pub metrics_bind: Option<String>,
    #[serde(deserialize_with = "flag")]
    pub require_pushed_authorization_requests: bool,
    #[serde(deserialize_with = "flag")]
    pub dpop_nonce: bool,
    #[serde(deserialize_with = "brand_name")]
    pub brand_name: String,
    #[serde(default, deserialize_with = "logo_url")]
    pub brand_logo_url: Option<String>,
    #[serde(default, deserialize_with = "accent_color")]
    pub brand_accent_color: Option<String>,
    #[serde(default, deserialize_with = "path")]
    pub brand_stylesheet: Option<PathBuf>,
    #[serde(default, deserialize_with = "ip_ranges")]
    pub trusted_proxies: Vec<IpRange>,
    #[serde(deserialize_with = "per_address")]
    pub pending_sign_ins_per_address: i64,
    #[serde(deserialize_with = "per_address")]
    pub registrations_per_address: i64,
    #[serde(deserialize_with = "per_address")]
    pub device_authorizations_per_address: i64,
    #[serde(deserialize_with = "per_address")]
    pub password_failures_per_address: i64,
    #[serde(deserialize_with = "per_address")]
    pub reset_requests_per_address: i64,
    #[serde(deserialize_with = "per_address")]
    pub reset_requests_per_account: i64,
    #[serde(deserialize_with = "mfa")]
    pub mfa: MfaPolicy,
    #[serde(default, deserialize_with = "rp_id")]
    pub webauthn_rp_id: Option<String>,
    #[serde(default, deserialize_with = "origins")]
    pub webauthn_origins: Vec<String>,
    #[serde(default, deserialize_with = "smtp_url")]
    pub smtp_url: Option<SmtpServer>,
    #[serde(default, deserialize_with = "mail_from")]
    pub mail_from: Option<lettre::message::Mailbox>,
    #[serde(default, deserialize_with = "path")]
    pub smtp_ca_file: Option<PathBuf>,
    #[serde(deserialize_with = "signup")]
    pub signup: SignupMode,
    #[serde(deserialize_with = "per_address")]
    pub signups_per_address: i64,
}

/// One key's value as its source gave it.
enum Given {
    Text(String),
    /// A TOML value of a kind no key takes (float, date, array, table), as written.
    Unsupported(String),
}

impl Values {
    /// The keys' defaults, then the file's keys (any key: `Values` judges them), then the
    /// environment's, each layer replacing the one before.
    pub fn read(
        toml_text: Option<&str>,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, ConfigError> {
        let mut given: BTreeMap<String, Given> = BTreeMap::new();
        for key in KEYS {
            if let DefaultValue::Text(text) = key.default {
                given.insert(key.name.to_owned(), Given::Text(text.to_owned()));
            }
        }
        if let Some(text) = toml_text {
            let table: toml::Table =
                toml::from_str(text).map_err(|e| bad("config", e.message().to_owned()))?;
            for (name, value) in table {
                // `[[upstream]]` tables are read on their own (`config::upstream`).
                if name == "upstream" {
                    continue;
                }
                let value = match value {
                    toml::Value::String(s) => Given::Text(s),
                    toml::Value::Integer(i) => Given::Text(i.to_string()),
                    toml::Value::Boolean(b) => Given::Text(b.to_string()),
                    other => Given::Unsupported(format!("{other:?}")),
                };
                given.insert(name, value);
            }
        }
        for key in KEYS {
            if let Some(value) = env(&key.env_var()) {
                given.insert(key.name.to_owned(), Given::Text(value));
            }
        }
        let entries = Entries {
            given: given.into_iter(),
            current: None,
        };
        Self::deserialize(MapAccessDeserializer::new(entries)).map_err(|e| ConfigError {
            key: e.key.unwrap_or_else(|| "config".to_owned()),
            message: e.message,
        })
    }
}

/// A value's error, named with its key by `Entries`; `known` is filled when the key
/// itself is unknown (serde's list of the struct's fields).
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
struct SourceError {
    key: Option<String>,
    message: String,
    // Read by the test that holds the struct's fields to `KEYS`.
    #[cfg_attr(not(test), allow(dead_code))]
    known: &'static [&'static str],
}

impl serde::de::Error for SourceError {
    fn custom<T: Display>(message: T) -> Self {
        Self {
            key: None,
            message: message.to_string(),
            known: &[],
        }
    }

    // Shown as "configuration: isuer: unknown key".
    fn unknown_field(field: &str, expected: &'static [&'static str]) -> Self {
        Self {
            key: Some(field.to_owned()),
            message: "unknown key".to_owned(),
            known: expected,
        }
    }
}

/// The merged keys as a serde map, naming each value's error with its key.
struct Entries {
    given: std::collections::btree_map::IntoIter<String, Given>,
    current: Option<(String, Given)>,
}

impl<'de> MapAccess<'de> for Entries {
    type Error = SourceError;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, SourceError> {
        let Some((name, value)) = self.given.next() else {
            return Ok(None);
        };
        let field = seed.deserialize(StrDeserializer::<SourceError>::new(&name))?;
        self.current = Some((name, value));
        Ok(Some(field))
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(
        &mut self,
        seed: V,
    ) -> Result<V::Value, SourceError> {
        let Some((name, value)) = self.current.take() else {
            return Err(SourceError::custom("a value without its key"));
        };
        let read = match value {
            Given::Text(text) => seed.deserialize(StringDeserializer::<SourceError>::new(text)),
            Given::Unsupported(what) => {
                Err(SourceError::custom(format!("unsupported value {what}")))
            }
        };
        read.map_err(|mut e| {
            e.key.get_or_insert(name);
            e
        })
    }
}

// The readers, one per kind of value. Each takes the value's text and names what it
// expected in the error; the key is added by `Entries`.

fn text<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    String::deserialize(d)
}

/// An empty value is no value (`PORTCULLIS_REDIS_URL=` turns Redis off).
fn non_empty<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    Ok(Some(text(d)?).filter(|t| !t.is_empty()))
}

fn path<'de, D: Deserializer<'de>>(d: D) -> Result<Option<PathBuf>, D::Error> {
    Ok(non_empty(d)?.map(PathBuf::from))
}

fn secret<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Secret<String>>, D::Error> {
    Ok(non_empty(d)?.map(Secret::new))
}

fn key_encryption_key<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Secret<String>>, D::Error> {
    let key = secret(d)?;
    if let Some(key) = &key {
        crate::crypto::kek::KeyEncryptionKey::from_base64(key.expose())
            .map_err(D::Error::custom)?;
    }
    Ok(key)
}

/// OIDC Discovery §3: the issuer is an https URL (http allowed here for development) with
/// no query or fragment; kept without a trailing slash.
fn issuer<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    let value = text(d)?;
    let trimmed = value.trim_end_matches('/');
    let url = url::Url::parse(trimmed).map_err(|e| D::Error::custom(format!("not a URL: {e}")))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(D::Error::custom(
            "must be an https:// (or http:// for development) URL",
        ));
    }
    if url.query().is_some() || url.fragment().is_some() || url.host_str().is_none() {
        return Err(D::Error::custom(
            "must have a host and no query or fragment",
        ));
    }
    Ok(trimmed.to_owned())
}

fn is_host_port(value: &str) -> bool {
    value.parse::<std::net::SocketAddr>().is_ok() || value.contains(':')
}

fn host_port<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    let value = text(d)?;
    if !is_host_port(&value) {
        return Err(D::Error::custom("expected HOST:PORT"));
    }
    Ok(value)
}

/// `off` (or nothing) serves `/metrics` nowhere.
fn metrics_bind<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    match text(d)?.as_str() {
        "off" | "" => Ok(None),
        addr if is_host_port(addr) => Ok(Some(addr.to_owned())),
        other => Err(D::Error::custom(format!(
            "expected HOST:PORT or off, got {other:?}"
        ))),
    }
}

fn database_url<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    let url = text(d)?;
    if !["sqlite://", "postgres://", "postgresql://"]
        .iter()
        .any(|scheme| url.starts_with(scheme))
    {
        return Err(D::Error::custom("expected sqlite://PATH or postgres://..."));
    }
    Ok(url)
}

fn redis_url<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    let Some(url) = non_empty(d)? else {
        return Ok(None);
    };
    const FORMS: &str = "expected redis://HOST[:PORT][/DB], \
        redis+sentinel://HOST:PORT[,HOST:PORT...]/MASTER_NAME[/DB] or \
        redis+cluster://HOST:PORT[,HOST:PORT...] (rediss... over TLS)";
    let Some((scheme, rest)) = url.split_once("://") else {
        return Err(D::Error::custom(FORMS));
    };
    match scheme {
        "redis" | "rediss" => {}
        // The nodes are read when connecting (sessions::RedisTopology); here, the shape.
        "redis+sentinel" | "rediss+sentinel" => {
            let hosts_and_master = rest.rsplit_once('@').map_or(rest, |(_, r)| r);
            let master = hosts_and_master.split_once('/').map(|(_, m)| m);
            if !master.is_some_and(|m| !m.is_empty() && !m.starts_with('/')) {
                return Err(D::Error::custom(
                    "redis+sentinel:// needs the master's name: \
                     redis+sentinel://HOST:PORT[,HOST:PORT...]/MASTER_NAME",
                ));
            }
        }
        "redis+cluster" | "rediss+cluster" => {
            let hosts = rest.rsplit_once('@').map_or(rest, |(_, r)| r);
            if hosts.is_empty() || hosts.contains('/') || hosts.split(',').any(str::is_empty) {
                return Err(D::Error::custom(
                    "expected redis+cluster://HOST:PORT[,HOST:PORT...] (no database: a \
                     Cluster has only 0)",
                ));
            }
        }
        _ => return Err(D::Error::custom(FORMS)),
    }
    // `#insecure` (no certificate verification) is not built in; refuse any fragment here
    // rather than at the first connection.
    if url.contains('#') {
        return Err(D::Error::custom(
            "no #fragment allowed (certificates are always verified; for a private CA set \
             redis_ca_file)",
        ));
    }
    Ok(Some(url))
}

/// `smtp://…` or `smtps://…`; empty: none (mail is written to files).
fn smtp_url<'de, D: Deserializer<'de>>(d: D) -> Result<Option<SmtpServer>, D::Error> {
    match non_empty(d)? {
        None => Ok(None),
        Some(url) => SmtpServer::parse(&url).map(Some).map_err(D::Error::custom),
    }
}

fn mail_from<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<Option<lettre::message::Mailbox>, D::Error> {
    match non_empty(d)? {
        None => Ok(None),
        Some(text) => parse_mailbox(&text).map(Some).map_err(D::Error::custom),
    }
}

fn registration<'de, D: Deserializer<'de>>(d: D) -> Result<RegistrationMode, D::Error> {
    match text(d)?.as_str() {
        "open" => Ok(RegistrationMode::Open),
        "token" => Ok(RegistrationMode::Token),
        "off" => Ok(RegistrationMode::Off),
        other => Err(D::Error::custom(format!(
            "expected open, token or off, got {other:?}"
        ))),
    }
}

fn signup<'de, D: Deserializer<'de>>(d: D) -> Result<SignupMode, D::Error> {
    let value = text(d)?;
    SignupMode::parse(&value)
        .ok_or_else(|| D::Error::custom(format!("expected off, invite or open, got {value:?}")))
}

fn mfa<'de, D: Deserializer<'de>>(d: D) -> Result<MfaPolicy, D::Error> {
    let value = text(d)?;
    MfaPolicy::parse(&value).ok_or_else(|| {
        D::Error::custom(format!("expected off, optional or required, got {value:?}"))
    })
}

/// A WebAuthn RP ID is a domain (WebAuthn §5.1.2 "RP ID"): no scheme, port or path.
fn rp_id<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    let value = text(d)?.trim().to_ascii_lowercase();
    if value.is_empty() {
        return Ok(None);
    }
    let valid = value.split('.').all(|label| {
        !label.is_empty() && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
    });
    if !valid || value.parse::<std::net::IpAddr>().is_ok() {
        return Err(D::Error::custom(format!(
            "{value:?} is not a domain name (no scheme, port, path or IP address)"
        )));
    }
    Ok(Some(value))
}

/// Origins pages with passkeys are served from (`https://host[:port]`), comma-separated.
fn origins<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    text(d)?
        .split([',', ' '])
        .filter(|p| !p.is_empty())
        .map(|p| {
            let url = url::Url::parse(p)
                .map_err(|_| D::Error::custom(format!("{p:?} is not an origin")))?;
            let origin = url.origin().ascii_serialization();
            if !matches!(url.scheme(), "https" | "http") || origin != p.trim_end_matches('/') {
                return Err(D::Error::custom(format!(
                    "{p:?} is not an origin (scheme://host[:port], nothing after)"
                )));
            }
            Ok(origin)
        })
        .collect()
}

fn log_format<'de, D: Deserializer<'de>>(d: D) -> Result<LogFormat, D::Error> {
    match text(d)?.as_str() {
        "pretty" => Ok(LogFormat::Pretty),
        "json" => Ok(LogFormat::Json),
        other => Err(D::Error::custom(format!(
            "expected pretty or json, got {other:?}"
        ))),
    }
}

fn flag<'de, D: Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    match text(d)?.as_str() {
        "true" => Ok(true),
        "false" => Ok(false),
        other => Err(D::Error::custom(format!(
            "expected true or false, got {other:?}"
        ))),
    }
}

fn some_flag<'de, D: Deserializer<'de>>(d: D) -> Result<Option<bool>, D::Error> {
    flag(d).map(Some)
}

/// Seconds for which `within` holds, or an error saying what was `expected`.
fn seconds<'de, D: Deserializer<'de>>(
    d: D,
    within: impl Fn(i64) -> bool,
    expected: &str,
) -> Result<Seconds, D::Error> {
    let value = text(d)?;
    value
        .parse::<i64>()
        .ok()
        .filter(|v| within(*v))
        .and_then(Seconds::new)
        .ok_or_else(|| D::Error::custom(format!("expected {expected}, got {value:?}")))
}

fn lifetime<'de, D: Deserializer<'de>>(d: D) -> Result<Seconds, D::Error> {
    seconds(
        d,
        |v| (1..=MAX_LIFETIME).contains(&v),
        "a positive number of seconds",
    )
}

fn grace_period<'de, D: Deserializer<'de>>(d: D) -> Result<Seconds, D::Error> {
    seconds(d, |v| (0..=300).contains(&v), "0 to 300 seconds")
}

fn rotation_interval<'de, D: Deserializer<'de>>(d: D) -> Result<Seconds, D::Error> {
    seconds(
        d,
        |v| v == 0 || v >= 86_400,
        "0 (never) or at least 86400 seconds",
    )
}

/// A per-address limit: a count of at least 1 (a limit of 0 would shut every address out;
/// a very large one turns the limit off in effect).
fn per_address<'de, D: Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
    let value = text(d)?;
    match value.parse::<i64>() {
        Ok(v) if (1..=1_000_000_000).contains(&v) => Ok(v),
        _ => Err(D::Error::custom(format!(
            "expected a count from 1 to 1000000000, got {value:?}"
        ))),
    }
}

fn ip_ranges<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<IpRange>, D::Error> {
    text(d)?
        .split([',', ' '])
        .filter(|p| !p.is_empty())
        .map(|p| {
            IpRange::parse(p)
                .ok_or_else(|| D::Error::custom(format!("{p:?} is not an address or CIDR range")))
        })
        .collect()
}

/// Shown in every page's header and title; at most 60 characters, no control characters.
fn brand_name<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    let value = text(d)?;
    match value.trim() {
        "" => Ok(super::DEFAULT_BRAND_NAME.to_owned()),
        name if name.chars().count() > 60 || name.chars().any(char::is_control) => Err(
            D::Error::custom("at most 60 characters, no control characters"),
        ),
        name => Ok(name.to_owned()),
    }
}

/// The pages' CSP allows images from this server and from https: sites.
fn logo_url<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    match non_empty(d)? {
        Some(v) if !(v.starts_with('/') || v.starts_with("https://")) => Err(D::Error::custom(
            format!("expected an https URL or a path on this server, got {v:?}"),
        )),
        url => Ok(url),
    }
}

/// `#rrggbb`, kept in lower case.
fn accent_color<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    match non_empty(d)? {
        None => Ok(None),
        Some(v)
            if v.len() == 7
                && v.starts_with('#')
                && v[1..].bytes().all(|b| b.is_ascii_hexdigit()) =>
        {
            Ok(Some(v.to_ascii_lowercase()))
        }
        Some(v) => Err(D::Error::custom(format!("expected #rrggbb, got {v:?}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_entries(entries: &[(&str, &str)]) -> Result<Values, SourceError> {
        let given: BTreeMap<String, Given> = entries
            .iter()
            .map(|(k, v)| ((*k).to_owned(), Given::Text((*v).to_owned())))
            .collect();
        Values::deserialize(MapAccessDeserializer::new(Entries {
            given: given.into_iter(),
            current: None,
        }))
    }

    #[test]
    fn the_derived_struct_has_exactly_the_listed_keys() {
        // serde names every field of the struct when it meets a key that is none of them.
        let Err(unknown) = read_entries(&[("not_a_key", "")]) else {
            panic!("an unknown key was read")
        };
        assert_eq!(unknown.key.as_deref(), Some("not_a_key"));
        let mut fields = unknown.known.to_vec();
        let mut listed: Vec<&str> = KEYS.iter().map(|k| k.name).collect();
        fields.sort_unstable();
        listed.sort_unstable();
        assert_eq!(fields, listed);
    }

    #[test]
    fn every_default_text_reads_as_its_type() {
        let values = Values::read(None, |_| None).unwrap();
        assert_eq!(values.session_ttl, Seconds::new(86_400).unwrap());
        assert_eq!(values.audit_retention.as_secs(), 90 * 86_400);
        assert_eq!(values.key_rotation_interval.as_secs(), 7_776_000);
        assert_eq!(values.brand_name, "Portcullis");
        assert!(values.trusted_proxies.is_empty() && values.cookie_secure.is_none());
    }

    #[test]
    fn a_key_unknown_to_the_file_is_named_and_other_kinds_of_value_refused() {
        let err = Values::read(Some("sesion_ttl = 60"), |_| None)
            .err()
            .unwrap();
        assert_eq!(
            (err.key.as_str(), err.message.as_str()),
            ("sesion_ttl", "unknown key")
        );
        let err = Values::read(Some("session_ttl = 1.5"), |_| None)
            .err()
            .unwrap();
        assert_eq!(err.key, "session_ttl");
        assert!(
            err.message.starts_with("unsupported value"),
            "{}",
            err.message
        );
        let err = Values::read(Some("session_ttl = "), |_| None)
            .err()
            .unwrap();
        assert_eq!(err.key, "config");
        // Integers and their text are the same value, from the file as from the environment.
        let from_text = Values::read(Some("session_ttl = \"60\""), |_| None).unwrap();
        assert_eq!(from_text.session_ttl.as_secs(), 60);
        let from_env = Values::read(None, |k| {
            (k == "PORTCULLIS_SESSION_TTL").then(|| "forever".to_owned())
        })
        .err()
        .unwrap();
        assert_eq!(
            from_env.to_string(),
            "configuration: session_ttl: expected a positive number of seconds, got \"forever\""
        );
    }
}
