//! A span of time in whole seconds: the unit of every lifetime and interval in the
//! configuration, and of `exp`/`iat` arithmetic in the protocol (RFC 7519 §2 NumericDate).

use std::fmt;
use std::ops::Add;

use super::UnixTime;

/// A non-negative number of seconds. Written and read as a plain integer (the
/// configuration's keys and `expires_in` are integers of seconds), so `Display` prints the
/// number alone.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Seconds(i64);

impl Seconds {
    pub const ZERO: Self = Self(0);

    /// `None` for a negative count: a span of time is never negative.
    pub const fn new(seconds: i64) -> Option<Self> {
        if seconds < 0 {
            None
        } else {
            Some(Self(seconds))
        }
    }

    pub const fn as_secs(self) -> i64 {
        self.0
    }

    pub const fn is_zero(self) -> bool {
        self.0 == 0
    }

    /// For timers (`tokio::time::sleep`).
    pub const fn as_duration(self) -> std::time::Duration {
        // `new` refuses negative values, so the cast keeps the value.
        std::time::Duration::from_secs(self.0 as u64)
    }
}

/// A moment plus a span is a moment: `now + settings.access_token_ttl` is an `exp`.
impl Add<Seconds> for UnixTime {
    type Output = UnixTime;

    fn add(self, span: Seconds) -> UnixTime {
        self.saturating_add(span.0)
    }
}

impl fmt::Display for Seconds {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::Seconds;

    #[test]
    fn a_span_is_never_negative_and_adds_to_a_moment() {
        assert_eq!(Seconds::new(-1), None);
        let hour = Seconds::new(3600).unwrap();
        assert_eq!(1_000_i64 + hour, 4_600);
        assert_eq!(i64::MAX + hour, i64::MAX);
        assert_eq!(hour.to_string(), "3600");
        assert_eq!(hour.as_duration(), std::time::Duration::from_secs(3600));
        assert!(Seconds::ZERO.is_zero() && Seconds::ZERO < hour);
    }
}
