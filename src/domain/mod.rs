//! Small value types shared by every layer.

mod clock;
mod scope;
mod secret;

pub use clock::{Clock, ManualClock, SystemClock};

pub use scope::{Scope, Scopes};
pub use secret::Secret;

/// Seconds since the Unix epoch: the one clock unit of the protocol layer.
pub type UnixTime = i64;

/// The current time; only `http` and the CLI call this, protocol code takes `now` as input.
pub fn now() -> UnixTime {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// Whether `ip` is an address on the public internet: what a client's `jwks_uri` may
/// lead to. Loopback, private, link-local, carrier-grade NAT, documentation, multicast
/// and reserved ranges are internal or meaningless, and fetching them on a client's say-so
/// would let anyone who can register a client probe the provider's network (SSRF).
pub fn is_public_address(ip: std::net::IpAddr) -> bool {
    use std::net::IpAddr;
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, c, _] = v4.octets();
            !(v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_broadcast()
                || v4.is_documentation()
                || v4.is_unspecified()
                || v4.is_multicast()
                || a == 0
                || a >= 240
                || (a == 100 && (64..128).contains(&b))
                || (a == 192 && b == 0 && c == 0)
                || (a == 198 && (18..20).contains(&b)))
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_public_address(IpAddr::V4(v4));
            }
            let first = v6.segments()[0];
            !(v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (first & 0xfe00) == 0xfc00
                || (first & 0xffc0) == 0xfe80
                || (first == 0x2001 && v6.segments()[1] == 0x0db8)
                || (first == 0x0064 && v6.segments()[1] == 0xff9b))
        }
    }
}
