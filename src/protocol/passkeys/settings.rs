//! Where passkeys live: the Relying Party ID and the origins allowed to use it.
//!
//! WebAuthn L3 §5.1.3 / §7.1 step 9 and §7.2 step 13: the client data's origin must be one
//! the Relying Party expects, and `rpIdHash` the SHA-256 of its RP ID. The RP ID is a
//! *valid domain* (HTML's "is a registrable domain suffix of or is equal to" the origin's
//! host), so a host that is an IP address has none: browsers refuse `navigator.credentials`
//! there. WebAuthn also needs a secure context: `https:`, or `http://localhost` (and its
//! subdomains), which browsers treat as potentially trustworthy.

use url::{Host, Url};

use crate::config::ConfigError;

/// The configuration keys these settings come from (CONTRACT.md).
pub const RP_ID_KEY: &str = "webauthn_rp_id";
pub const ORIGINS_KEY: &str = "webauthn_origins";

/// The Relying Party of every passkey: its ID (a domain) and the exact origins whose
/// ceremonies are accepted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PasskeySettings {
    /// The RP ID: a lower-case domain, the issuer's host unless configured.
    pub rp_id: String,
    /// Exact origins (`scheme://host[:port]`), the issuer's origin unless configured.
    /// Each one's host is the RP ID or a subdomain of it.
    pub origins: Vec<Url>,
    /// The name an authenticator may show beside the account (`rp.name`); the RP ID
    /// unless set by [`PasskeySettings::named`].
    pub rp_name: String,
}

impl PasskeySettings {
    /// The settings for a provider at `issuer`, with the operator's `webauthn_rp_id` and
    /// `webauthn_origins` if given.
    ///
    /// `Ok(None)`: passkeys are off, because the issuer's host is an IP address or the
    /// issuer is plain `http:` on a host other than `localhost` (no secure context), and
    /// nothing was configured to replace it. That is said once in a warning; the server
    /// starts without passkeys. `Err`: a configured value is wrong (the server does not
    /// start; the error names the key).
    pub fn from_issuer(
        issuer: &str,
        rp_id: Option<&str>,
        origins: &[String],
    ) -> Result<Option<Self>, ConfigError> {
        let issuer_url =
            Url::parse(issuer).map_err(|e| bad("issuer", format!("not a URL: {e}")))?;
        let rp_id = match rp_id.map(str::trim).filter(|id| !id.is_empty()) {
            Some(configured) => configured_rp_id(configured)?,
            None => match issuer_url.host() {
                Some(Host::Domain(domain)) => domain.to_ascii_lowercase(),
                Some(Host::Ipv4(_) | Host::Ipv6(_)) => {
                    tracing::warn!(
                        issuer,
                        "passkeys are off: the issuer's host is an IP address, which cannot be \
                         a WebAuthn RP ID (WebAuthn §5.1.3: it must be a domain); serve the \
                         issuer under a host name or set webauthn_rp_id and webauthn_origins"
                    );
                    return Ok(None);
                }
                None => return Err(bad("issuer", "has no host")),
            },
        };
        let configured_origins = !origins.is_empty();
        let origins = if !configured_origins {
            let origin = origin_of(&issuer_url);
            if !secure_context(&origin) {
                tracing::warn!(
                    issuer,
                    "passkeys are off: browsers allow WebAuthn only in a secure context \
                     (https, or http://localhost); set webauthn_origins to the https origin \
                     people use"
                );
                return Ok(None);
            }
            vec![origin]
        } else {
            origins
                .iter()
                .map(|o| configured_origin(o))
                .collect::<Result<Vec<_>, _>>()?
        };
        for origin in &origins {
            if !within(origin, &rp_id) {
                // Configured origins are judged against the RP ID; the issuer's own
                // origin can only be wrong for a configured RP ID.
                let key = if configured_origins {
                    ORIGINS_KEY
                } else {
                    RP_ID_KEY
                };
                return Err(bad(
                    key,
                    format!(
                        "the origin {} is not on the RP ID {rp_id} or one of its subdomains",
                        origin.origin().ascii_serialization()
                    ),
                ));
            }
        }
        Ok(Some(Self {
            rp_name: rp_id.clone(),
            rp_id,
            origins,
        }))
    }

    /// The same settings with `name` as `rp.name` (the brand name, say).
    pub fn named(mut self, name: &str) -> Self {
        if !name.trim().is_empty() {
            self.rp_name = name.trim().to_owned();
        }
        self
    }
}

fn bad(key: &str, message: impl Into<String>) -> ConfigError {
    ConfigError {
        key: key.to_owned(),
        message: message.into(),
    }
}

/// A configured RP ID: a domain (no scheme, port or path), never an IP address.
fn configured_rp_id(value: &str) -> Result<String, ConfigError> {
    match Host::parse(value) {
        Ok(Host::Domain(domain))
            if !domain.contains(['/', ':', '@', '?', '#']) && !domain.ends_with('.') =>
        {
            Ok(domain.to_ascii_lowercase())
        }
        Ok(Host::Ipv4(_) | Host::Ipv6(_)) => Err(bad(
            RP_ID_KEY,
            "an IP address cannot be a WebAuthn RP ID (it must be a domain)",
        )),
        _ => Err(bad(
            RP_ID_KEY,
            "must be a domain such as example.com (no scheme, port or path)",
        )),
    }
}

/// A configured origin: `https://host[:port]` (or `http://localhost[:port]`), nothing after.
fn configured_origin(value: &str) -> Result<Url, ConfigError> {
    let url = Url::parse(value.trim())
        .map_err(|e| bad(ORIGINS_KEY, format!("{value}: not a URL: {e}")))?;
    if url.path() != "/" || url.query().is_some() || url.fragment().is_some() {
        return Err(bad(
            ORIGINS_KEY,
            format!("{value}: an origin is scheme://host[:port], without a path"),
        ));
    }
    if !matches!(url.host(), Some(Host::Domain(_))) {
        return Err(bad(
            ORIGINS_KEY,
            format!("{value}: the host must be a domain (WebAuthn refuses IP addresses)"),
        ));
    }
    let origin = origin_of(&url);
    if !secure_context(&origin) {
        return Err(bad(
            ORIGINS_KEY,
            format!(
                "{value}: must be https (or http://localhost): WebAuthn needs a secure context"
            ),
        ));
    }
    Ok(origin)
}

/// `scheme://host[:port]/`, the form the client data's origin is parsed to.
fn origin_of(url: &Url) -> Url {
    Url::parse(&url.origin().ascii_serialization()).unwrap_or_else(|_| url.clone())
}

/// Whether browsers run WebAuthn at `origin` (a secure context, HTML §7.1.3.1 and
/// Secure Contexts §3.1: https, or a `localhost` host over http).
fn secure_context(origin: &Url) -> bool {
    match origin.scheme() {
        "https" => true,
        "http" => matches!(
            origin.host(),
            Some(Host::Domain(d)) if d == "localhost" || d.ends_with(".localhost")
        ),
        _ => false,
    }
}

/// Whether `origin`'s host is `rp_id` or one of its subdomains.
fn within(origin: &Url, rp_id: &str) -> bool {
    match origin.host() {
        Some(Host::Domain(host)) => {
            let host = host.to_ascii_lowercase();
            host == rp_id
                || host
                    .strip_suffix(rp_id)
                    .is_some_and(|prefix| prefix.ends_with('.'))
        }
        _ => false,
    }
}
