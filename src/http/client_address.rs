//! Who sent a request: the client's address behind trusted proxies, for logs, audit and
//! rate limits.

use actix_web::HttpRequest;

use crate::config::Settings;

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
