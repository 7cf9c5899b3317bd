//! The checks of single registration members that need no other member: redirect URIs
//! (RFC 6749 §3.1.2, RFC 8252 §7.1), names, URIs the provider will fetch, JWK Sets.

use serde_json::Value;

use super::{metadata_error, redirect_error};
use crate::domain::ApplicationType;
use crate::protocol::OAuthError;

fn is_loopback(url: &url::Url) -> bool {
    matches!(url.host_str(), Some("localhost" | "127.0.0.1" | "[::1]"))
}

/// OIDC Registration §2 (`redirect_uris`, `application_type`) and RFC 6749 §3.1.2:
/// absolute, no fragment; web clients use https (http only on loopback); native clients
/// may also use private-use schemes (RFC 8252 §7.1).
pub fn check_redirect_uri(uri: &str, application_type: ApplicationType) -> Result<(), OAuthError> {
    // Checked on the raw text: the URL parser would quietly repair some of these (it reads
    // `https:///cb` as host `cb`, and drops tabs and newlines).
    if uri.len() > MAX_URI || uri.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return Err(redirect_error(
            "a redirect URI must be at most 2000 characters, without spaces or control characters",
        ));
    }
    let url = url::Url::parse(uri)
        .map_err(|_| redirect_error("a redirect URI is not an absolute URL"))?;
    if url.fragment().is_some() || uri.contains('#') {
        return Err(redirect_error("a redirect URI must not contain a fragment"));
    }
    // RFC 3986 §3.2.1: user:password@ in a URI the user is sent to is a phishing device.
    if !url.username().is_empty() || url.password().is_some() {
        return Err(redirect_error(
            "a redirect URI must not carry user information",
        ));
    }
    let hierarchical = matches!(url.scheme(), "http" | "https");
    let empty_authority = uri
        .split_once("://")
        .is_some_and(|(_, rest)| rest.starts_with('/') || rest.starts_with('@'));
    if hierarchical && (empty_authority || url.host_str().is_none_or(str::is_empty)) {
        return Err(redirect_error("a redirect URI has no host"));
    }
    match (url.scheme(), application_type) {
        ("https", _) => Ok(()),
        ("http", _) if is_loopback(&url) => Ok(()),
        ("http", ApplicationType::Web) => Err(redirect_error(
            "web clients must use https redirect URIs (http only for localhost)",
        )),
        ("http", ApplicationType::Native) => {
            Err(redirect_error("native clients use http only for loopback"))
        }
        // Schemes a browser runs or shows itself rather than hand to an app.
        (
            "javascript" | "data" | "file" | "vbscript" | "about" | "blob" | "filesystem" | "ws"
            | "wss",
            _,
        ) => Err(redirect_error("this redirect URI scheme is not allowed")),
        // RFC 8252 §7.1: private-use schemes are reverse domain names, so they contain a dot.
        (scheme, ApplicationType::Native) if scheme.contains('.') => Ok(()),
        (_, ApplicationType::Native) => Err(redirect_error(
            "a native client's private-use scheme must be a reverse domain name (com.example.app)",
        )),
        (_, ApplicationType::Web) => {
            Err(redirect_error("web clients must use https redirect URIs"))
        }
    }
}

/// Upper bounds on registered values: generous for real clients, small enough that a
/// registration cannot bloat every page and cache entry.
pub(super) const MAX_URI: usize = 2000;
pub(super) const MAX_URIS: usize = 20;
const MAX_NAME: usize = 100;

/// A client name is shown to users on the consent page: bounded, printable, and without
/// the bidirectional controls that make a name read as something else.
pub(super) fn check_client_name(name: &str) -> Result<(), OAuthError> {
    if name.chars().count() > MAX_NAME
        || name
            .chars()
            .any(|c| c.is_control() || crate::domain::is_bidi_control(c))
    {
        return Err(metadata_error(
            "client_name must be at most 100 characters, without control or bidirectional formatting characters",
        ));
    }
    Ok(())
}

/// Each list holds distinct URIs, and not too many.
pub(super) fn check_distinct(uris: &[String], what: &str) -> Result<(), OAuthError> {
    if uris.len() > MAX_URIS {
        return Err(redirect_error(format!(
            "at most {MAX_URIS} {what} are allowed"
        )));
    }
    let mut seen = std::collections::HashSet::new();
    if uris.iter().any(|u| !seen.insert(u.as_str())) {
        return Err(redirect_error(format!("{what} must not repeat a URI")));
    }
    Ok(())
}

/// Whether the issuer is a development one on this machine: then `jwks_uri` may be a
/// plain-http loopback URL, as redirect URIs may.
pub fn local_development(issuer: &str) -> bool {
    url::Url::parse(issuer).is_ok_and(|u| u.scheme() == "http" && is_loopback(&u))
}

/// A URL this provider fetches or posts to (`jwks_uri`, `backchannel_logout_uri`): https
/// (plain http only to loopback while the issuer itself is a local development one), no
/// internal address literal, no fragment, no credentials.
pub(super) fn check_fetch_uri(name: &str, uri: &str, issuer: &str) -> Result<(), OAuthError> {
    if uri.len() > MAX_URI {
        return Err(metadata_error(format!("{name} is too long")));
    }
    let url = url::Url::parse(uri)
        .map_err(|_| metadata_error(format!("{name} must be an absolute URL")))?;
    // An internal address literal is refused here; names are checked when resolved.
    let internal_literal = match url.host() {
        Some(url::Host::Ipv4(ip)) => !crate::domain::is_public_address(ip.into()),
        Some(url::Host::Ipv6(ip)) => !crate::domain::is_public_address(ip.into()),
        _ => false,
    };
    let scheme_ok = match url.scheme() {
        "https" => url.host_str().is_some() && (!internal_literal || local_development(issuer)),
        "http" => is_loopback(&url) && local_development(issuer),
        _ => false,
    };
    if !scheme_ok
        || url.fragment().is_some()
        || !url.username().is_empty()
        || url.password().is_some()
    {
        return Err(metadata_error(format!("{name} must be an https URL")));
    }
    Ok(())
}

/// An inline JWK Set must parse, hold at least one key and no private members.
pub(super) fn check_jwks(jwks: &Value) -> Result<(), OAuthError> {
    let set: jsonwebtoken::jwk::JwkSet = serde_json::from_value(jwks.clone())
        .map_err(|_| metadata_error("jwks must be a JWK Set"))?;
    let private = jwks["keys"].as_array().is_some_and(|keys| {
        keys.iter()
            .any(|k| k.get("d").is_some() || k.get("k").is_some())
    });
    if set.keys.is_empty() || private {
        return Err(metadata_error(
            "jwks must hold at least one public key and no private or symmetric keys",
        ));
    }
    Ok(())
}
