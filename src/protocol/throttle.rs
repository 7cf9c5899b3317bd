//! The login throttling policy: what stops online password guessing without letting a
//! stranger lock an account's owner out.
//!
//! Attempts are counted before the password is checked (and handed back when it was
//! right), per account name and per (account name, client address), over a window:
//!
//! - From one address, an account name gets `MAX_PER_ADDRESS` attempts per window; then
//!   that address is refused for that name until the window ends. This is the hard limit,
//!   and it only ever hits the address that guesses.
//! - From one address (IPv6: one /64), all account names together get `MAX_PER_SOURCE`
//!   attempts per window: one address cannot try a password against every name.
//! - Across all addresses, an account name gets `FREE_PER_ACCOUNT` attempts per window;
//!   beyond them, attempts on it queue, spaced by a delay that doubles with every further
//!   attempt up to `MAX_SPACING`, and an attempt that would wait more than `MAX_WAIT` is
//!   refused without taking a place in the queue. Guessing from many addresses is slowed
//!   to one guess per `MAX_SPACING`. A browser that signed in to the account before skips
//!   this queue, so strangers' guesses never keep the owner's own browser out.

use std::time::Duration;

use crate::sessions::LoginAttempts;

pub const WINDOW: Duration = Duration::from_secs(900);
pub const MAX_PER_ADDRESS: i64 = 5;
pub const MAX_PER_SOURCE: i64 = 50;
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

/// `known_browser`: this browser signed in to the account before.
pub fn decide(attempts: LoginAttempts, known_browser: bool) -> Throttle {
    if attempts.from_address > MAX_PER_ADDRESS || attempts.from_source > MAX_PER_SOURCE {
        return Throttle::Refuse;
    }
    if known_browser {
        return Throttle::Allow;
    }
    let beyond = attempts.for_account - FREE_PER_ACCOUNT;
    if beyond <= 0 {
        return Throttle::Allow;
    }
    let doubling = Duration::from_secs(1u64 << (beyond - 1).min(16));
    Throttle::Space(doubling.min(MAX_SPACING))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attempts(for_account: i64, from_address: i64) -> LoginAttempts {
        LoginAttempts {
            for_account,
            from_address,
            from_source: from_address,
        }
    }

    #[test]
    fn one_address_gets_five_attempts_per_account_name() {
        assert_eq!(decide(attempts(5, 5), false), Throttle::Allow);
        assert_eq!(decide(attempts(6, 6), false), Throttle::Refuse);
        assert_eq!(decide(attempts(1, 6), true), Throttle::Refuse);
    }

    #[test]
    fn one_address_gets_fifty_attempts_over_all_account_names() {
        let spread = |from_source| LoginAttempts {
            for_account: 1,
            from_address: 1,
            from_source,
        };
        assert_eq!(decide(spread(50), false), Throttle::Allow);
        assert_eq!(decide(spread(51), false), Throttle::Refuse);
    }

    #[test]
    fn beyond_ten_attempts_on_an_account_they_are_spaced_ever_wider_up_to_thirty_seconds() {
        let space = |n| decide(attempts(n, 1), false);
        assert_eq!(space(10), Throttle::Allow);
        assert_eq!(space(11), Throttle::Space(Duration::from_secs(1)));
        assert_eq!(space(12), Throttle::Space(Duration::from_secs(2)));
        assert_eq!(space(14), Throttle::Space(Duration::from_secs(8)));
        assert_eq!(space(16), Throttle::Space(Duration::from_secs(30)));
        assert_eq!(space(10_000), Throttle::Space(MAX_SPACING));
    }

    #[test]
    fn the_owners_own_browser_skips_the_account_queue() {
        assert_eq!(decide(attempts(10_000, 1), true), Throttle::Allow);
    }
}
