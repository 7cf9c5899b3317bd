//! The one list of configuration keys. The environment reader takes `PORTCULLIS_<KEY>` for
//! these keys and no others, a key's default text is the value used when no source sets
//! it (parsed and checked like any other value), and a test holds README's configuration
//! table to this list, defaults included.

/// One configuration key.
#[derive(Clone, Copy, Debug)]
pub struct Key {
    /// The key in the TOML file; upper-cased after `PORTCULLIS_` in the environment.
    pub name: &'static str,
    pub default: DefaultValue,
    /// What the key sets, in a few words (README has the full story).
    pub meaning: &'static str,
}

/// What a key is when no source sets it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DefaultValue {
    /// This text, read exactly as if a source had given it.
    Text(&'static str),
    /// No value: the feature it configures is off or absent.
    Unset,
    /// Computed from other keys at start; the text says how, as README does.
    Derived(&'static str),
}

impl DefaultValue {
    /// The default as README's table shows it (without its code quotes).
    pub fn shown(self) -> &'static str {
        match self {
            Self::Text(text) | Self::Derived(text) => text,
            Self::Unset => "unset",
        }
    }
}

impl Key {
    /// The environment variable that overrides the key.
    pub fn env_var(&self) -> String {
        format!("PORTCULLIS_{}", self.name.to_ascii_uppercase())
    }
}

const fn key(name: &'static str, default: DefaultValue, meaning: &'static str) -> Key {
    Key {
        name,
        default,
        meaning,
    }
}

use DefaultValue::{Derived, Text, Unset};

/// Every key, in README's order.
pub const KEYS: &[Key] = &[
    key("issuer", Text("http://localhost:8080"), "the exact iss"),
    key("bind", Text("127.0.0.1:8080"), "listen address"),
    key(
        "database_url",
        Text("sqlite://data/portcullis.db"),
        "SQLite file or PostgreSQL URL",
    ),
    key("redis_url", Unset, "Redis for sessions shared by instances"),
    key(
        "redis_prefix",
        Text("portcullis:"),
        "prefix of every Redis key",
    ),
    key("redis_ca_file", Unset, "CA of a rediss:// server"),
    key(
        "registration",
        Text("token"),
        "dynamic registration: open, token or off",
    ),
    key(
        "registration_token",
        Unset,
        "initial access token for registration",
    ),
    key(
        "cookie_secure",
        Derived("true unless the issuer is http://localhost…/http://127.0.0.1…"),
        "Secure flag on cookies",
    ),
    key("log_format", Text("pretty"), "pretty or json"),
    key("authorization_code_ttl", Text("60"), "seconds a code lives"),
    key(
        "access_token_ttl",
        Text("3600"),
        "seconds an access token lives",
    ),
    key("id_token_ttl", Text("3600"), "seconds an ID token lives"),
    key(
        "refresh_token_ttl",
        Text("2592000"),
        "seconds an unused refresh token lives",
    ),
    key(
        "refresh_token_absolute_ttl",
        Text("7776000"),
        "seconds from sign-in a refresh-token family lives at most",
    ),
    key(
        "refresh_token_grace_period",
        Text("5"),
        "seconds a rotated refresh token still gets its successor",
    ),
    key(
        "key_encryption_key",
        Unset,
        "the key-encryption key, base64",
    ),
    key(
        "key_encryption_key_file",
        Derived("portcullis.kek beside the SQLite file (data/portcullis.kek for PostgreSQL)"),
        "where the key-encryption key is kept",
    ),
    key(
        "audit_retention",
        Text("7776000"),
        "seconds audit events are kept (90 days)",
    ),
    key(
        "session_ttl",
        Text("86400"),
        "seconds a browser session lasts",
    ),
    key(
        "key_refresh_interval",
        Text("60"),
        "seconds between reloads of the signing keys",
    ),
    key(
        "key_rotation_interval",
        Text("7776000"),
        "seconds after which a signing key is replaced (0: never)",
    ),
    key(
        "metrics_bind",
        Text("127.0.0.1:9464"),
        "listener of /metrics, or off",
    ),
    key(
        "require_pushed_authorization_requests",
        Text("false"),
        "PAR for every client",
    ),
    key(
        "dpop_nonce",
        Text("false"),
        "DPoP proofs must carry the server's nonce, for every client",
    ),
    key(
        "brand_name",
        Text(super::DEFAULT_BRAND_NAME),
        "product name on the pages",
    ),
    key("brand_logo_url", Unset, "logo beside the name"),
    key("brand_accent_color", Unset, "colour of buttons and links"),
    key("brand_stylesheet", Unset, "the operator's own CSS file"),
    key(
        "trusted_proxies",
        Unset,
        "reverse proxies whose forwarding headers are believed",
    ),
    key(
        "pending_sign_ins_per_address",
        Text("600"),
        "sign-ins needing a page, per address and minute",
    ),
    key(
        "registrations_per_address",
        Text("20"),
        "open registrations per address and hour",
    ),
    key(
        "device_authorizations_per_address",
        Text("30"),
        "device authorization requests per address and minute",
    ),
    key(
        "password_failures_per_address",
        Text("100"),
        "failed passwords per address and 15 minutes before queueing",
    ),
    key(
        "reset_requests_per_address",
        Text("20"),
        "password-reset requests per client address and hour",
    ),
    key(
        "reset_requests_per_account",
        Text("5"),
        "password-reset requests per email address (account) and hour; also verification and change-of-address mails per account and per address, and hour",
    ),
    key(
        "mfa",
        Text("optional"),
        "second factors: off, optional or required",
    ),
    key(
        "webauthn_rp_id",
        Derived("the issuer's host"),
        "the passkeys' relying party ID",
    ),
    key(
        "webauthn_origins",
        Derived("the issuer's origin"),
        "origins whose pages may use passkeys",
    ),
    key(
        "smtp_url",
        Unset,
        "SMTP server (smtp:// STARTTLS, smtps:// TLS); unset: .eml files",
    ),
    key(
        "mail_from",
        Derived("noreply@ the issuer's host, named brand_name"),
        "sender of every mail",
    ),
    key(
        "smtp_ca_file",
        Unset,
        "CA trusted for the SMTP server besides the system's",
    ),
    // Sign-up and invitations (issue 23 §4).
    key(
        "signup",
        Text("off"),
        "accounts without an administrator: off, invite or open",
    ),
    key(
        "signups_per_address",
        Text("10"),
        "sign-up forms sent per address and hour",
    ),
];

#[cfg(test)]
mod tests {
    use super::KEYS;

    /// `(key, default)` of every row of README's configuration table, code quotes removed.
    fn readme_table() -> Vec<(String, String)> {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/README.md");
        let readme = std::fs::read_to_string(path).unwrap();
        let section = readme.split("\n## Configuration\n").nth(1).unwrap();
        section
            .lines()
            .skip_while(|line| !line.starts_with('|'))
            .take_while(|line| line.starts_with('|'))
            .skip(2) // the header and its rule
            .map(|row| {
                let cells: Vec<&str> = row.split('|').map(str::trim).collect();
                (cells[1].replace('`', ""), cells[2].replace('`', ""))
            })
            .collect()
    }

    #[test]
    fn readme_lists_exactly_the_keys_with_their_defaults() {
        let listed: Vec<(String, String)> = KEYS
            .iter()
            .map(|k| (k.name.to_owned(), k.default.shown().to_owned()))
            .collect();
        assert_eq!(readme_table(), listed);
    }

    #[test]
    fn every_key_has_its_own_environment_variable() {
        let mut vars: Vec<String> = KEYS.iter().map(|k| k.env_var()).collect();
        assert!(vars.contains(&"PORTCULLIS_SESSION_TTL".to_owned()));
        vars.sort();
        vars.dedup();
        assert_eq!(vars.len(), KEYS.len());
        assert!(KEYS.iter().all(|k| !k.meaning.is_empty()));
    }
}
