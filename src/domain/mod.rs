//! Small value types shared by every layer.

mod access_token_format;
mod application_type;
mod auth_level;
mod client_metadata;
mod clock;
mod grant_type;
mod group_name;
mod key_algorithm;
mod password_rule;
mod pkce;
mod registration_mode;
mod response_mode;
mod response_type;
mod scope;
mod seconds;
mod secret;
mod signup_mode;
mod text;
mod username;

pub use access_token_format::AccessTokenFormat;
pub use application_type::ApplicationType;
pub use auth_level::{ACR_MFA, ACR_PASSWORD, AcrAsked, Level, MethodUse, MfaPolicy};
pub use client_metadata::{ClientDisplay, ClientMetadata, ExchangePolicy, Profile, SubjectType};
pub use clock::{Clock, ManualClock, SystemClock, format_utc};
pub use grant_type::GrantType;
pub use group_name::{GroupName, InvalidGroupName, MAX_GROUP_NAME, MAX_USER_GROUPS};
pub use key_algorithm::KeyAlgorithm;
pub use password_rule::{PasswordRuleError, check_chosen_password, check_new_password};
pub use pkce::is_pkce_string;
pub use registration_mode::RegistrationMode;
pub use response_mode::ResponseMode;
pub use response_type::ResponseType;

pub use scope::{Scope, Scopes};
pub use seconds::Seconds;
pub use secret::Secret;
pub use signup_mode::SignupMode;
pub use text::{is_bidi_control, is_format};
pub use username::{InvalidUsername, UsernameKey, check_username};

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

/// An address range in CIDR notation (`10.0.0.0/8`, `::1/128`, or one address).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IpRange {
    base: std::net::IpAddr,
    prefix: u8,
}

impl IpRange {
    pub fn parse(text: &str) -> Option<Self> {
        let (addr, prefix) = match text.split_once('/') {
            Some((a, p)) => (a, Some(p.parse::<u8>().ok()?)),
            None => (text, None),
        };
        let base: std::net::IpAddr = addr.parse().ok()?;
        let max = if base.is_ipv4() { 32 } else { 128 };
        let prefix = prefix.unwrap_or(max);
        (prefix <= max).then_some(Self { base, prefix })
    }

    pub fn contains(&self, ip: std::net::IpAddr) -> bool {
        use std::net::IpAddr;
        let (base, ip, bits) = match (self.base, ip) {
            (IpAddr::V4(b), IpAddr::V4(i)) => (u32::from(b) as u128, u32::from(i) as u128, 32),
            (IpAddr::V6(b), IpAddr::V6(i)) => (u128::from(b), u128::from(i), 128),
            (IpAddr::V6(b), IpAddr::V4(i)) => match b.to_ipv4_mapped() {
                Some(b) => (u32::from(b) as u128, u32::from(i) as u128, 32),
                None => return false,
            },
            (IpAddr::V4(_), IpAddr::V6(i)) => match i.to_ipv4_mapped() {
                Some(i) => return self.contains(IpAddr::V4(i)),
                None => return false,
            },
        };
        let prefix = u32::from(self.prefix.min(bits as u8));
        let shift = bits - prefix;
        shift >= bits || (base >> shift) == (ip >> shift)
    }
}

/// A short description of a browser from its `User-Agent` ("Firefox on Linux").
pub fn describe_user_agent(ua: &str) -> String {
    let browser = [
        ("Edg/", "Edge"),
        ("OPR/", "Opera"),
        ("Firefox/", "Firefox"),
        ("Chromium/", "Chromium"),
        ("Chrome/", "Chrome"),
        ("Safari/", "Safari"),
        ("curl/", "curl"),
    ]
    .iter()
    .find(|(marker, _)| ua.contains(marker))
    .map(|(_, name)| *name);
    let system = [
        ("Android", "Android"),
        ("iPhone", "iPhone"),
        ("iPad", "iPad"),
        ("Windows", "Windows"),
        ("Mac OS X", "macOS"),
        ("CrOS", "ChromeOS"),
        ("Linux", "Linux"),
    ]
    .iter()
    .find(|(marker, _)| ua.contains(marker))
    .map(|(_, name)| *name);
    match (browser, system) {
        (Some(b), Some(s)) => format!("{b} on {s}"),
        (Some(b), None) => b.to_owned(),
        (None, Some(s)) => format!("A browser on {s}"),
        (None, None) => "An unknown browser".to_owned(),
    }
}

#[cfg(test)]
mod range_tests {
    use super::IpRange;

    #[test]
    fn ranges_contain_what_their_prefix_covers() {
        let net = IpRange::parse("10.1.0.0/16").unwrap();
        assert!(net.contains("10.1.200.3".parse().unwrap()));
        assert!(!net.contains("10.2.0.1".parse().unwrap()));
        let one = IpRange::parse("192.0.2.7").unwrap();
        assert!(one.contains("192.0.2.7".parse().unwrap()));
        assert!(!one.contains("192.0.2.8".parse().unwrap()));
        assert!(
            IpRange::parse("0.0.0.0/0")
                .unwrap()
                .contains("8.8.8.8".parse().unwrap())
        );
        let v6 = IpRange::parse("fd00::/8").unwrap();
        assert!(v6.contains("fd12::1".parse().unwrap()));
        assert!(!v6.contains("fe80::1".parse().unwrap()));
        assert!(IpRange::parse("10.0.0.0/33").is_none());
        assert!(IpRange::parse("nonsense").is_none());
        assert!(net.contains("::ffff:10.1.0.9".parse().unwrap()));
    }
}
