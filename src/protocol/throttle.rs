//! The login throttling policy: what stops online password guessing without letting a
//! stranger lock an account's owner out.
//!
//! Attempts are counted before the password is checked (and handed back when it was
//! right), per account name and per (account name, client address), over a window:
//!
//! - From one address, an account name gets `MAX_PER_ADDRESS` attempts per window; then
//!   that address is refused for that name until the window ends. This is the hard limit,
//!   and it only ever hits the address that guesses.
//! - Across all addresses, an account name gets `FREE_PER_ACCOUNT` attempts per window;
//!   beyond them, attempts on it queue, spaced by a delay that doubles with every further
//!   attempt up to `MAX_SPACING`. Guessing from many addresses is slowed to one guess per
//!   `MAX_SPACING`, while the owner (at another address) still signs in, after a wait.

use std::time::Duration;

use crate::sessions::LoginAttempts;

pub const WINDOW: Duration = Duration::from_secs(900);
pub const MAX_PER_ADDRESS: i64 = 5;
pub const FREE_PER_ACCOUNT: i64 = 10;
pub const MAX_SPACING: Duration = Duration::from_secs(30);
/// Longer than this in the queue and the attempt is refused instead of held open.
pub const MAX_WAIT: Duration = Duration::from_secs(30);

#[derive(Debug, PartialEq, Eq)]
pub enum Throttle {
    Allow,
    /// Queue behind the account's previous attempt, this far apart.
    Space(Duration),
    Refuse,
}

pub fn decide(attempts: LoginAttempts) -> Throttle {
    if attempts.from_address > MAX_PER_ADDRESS {
        return Throttle::Refuse;
    }
    let beyond = attempts.for_account - FREE_PER_ACCOUNT;
    if beyond <= 0 {
        return Throttle::Allow;
    }
    let doubling = Duration::from_secs(1u64 << (beyond - 1).min(16));
    Throttle::Space(doubling.min(MAX_SPACING))
}

/// Whether a queued attempt waits or is refused.
pub fn admit_after(wait: Duration) -> bool {
    wait <= MAX_WAIT
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attempts(for_account: i64, from_address: i64) -> LoginAttempts {
        LoginAttempts {
            for_account,
            from_address,
        }
    }

    #[test]
    fn one_address_gets_five_attempts_per_account_name() {
        assert_eq!(decide(attempts(5, 5)), Throttle::Allow);
        assert_eq!(decide(attempts(6, 6)), Throttle::Refuse);
        assert_eq!(decide(attempts(1, 6)), Throttle::Refuse);
    }

    #[test]
    fn beyond_ten_attempts_on_an_account_they_are_spaced_ever_wider_up_to_thirty_seconds() {
        assert_eq!(decide(attempts(10, 1)), Throttle::Allow);
        assert_eq!(
            decide(attempts(11, 1)),
            Throttle::Space(Duration::from_secs(1))
        );
        assert_eq!(
            decide(attempts(12, 1)),
            Throttle::Space(Duration::from_secs(2))
        );
        assert_eq!(
            decide(attempts(14, 1)),
            Throttle::Space(Duration::from_secs(8))
        );
        assert_eq!(
            decide(attempts(16, 1)),
            Throttle::Space(Duration::from_secs(30))
        );
        assert_eq!(decide(attempts(10_000, 1)), Throttle::Space(MAX_SPACING));
    }

    #[test]
    fn a_queue_longer_than_thirty_seconds_refuses() {
        assert!(admit_after(Duration::from_secs(30)));
        assert!(!admit_after(Duration::from_millis(30_001)));
    }
}
