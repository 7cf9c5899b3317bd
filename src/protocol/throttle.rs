//! The login throttling policy: what stops online password guessing without letting a
//! stranger lock an account's owner out, nor the people who share an address with them.
//!
//! Attempts are counted before the password is checked (and handed back when it was
//! right, so only failures stay counted), per account name, per (account name, client
//! address), per client address and per (account name, browser), over a window:
//!
//! - From one address, an account name gets `MAX_PER_ADDRESS` attempts per window; then
//!   that address is refused for that name until the window ends. This is the hard limit,
//!   and it only ever hits the address that guesses.
//! - A browser that signed in to the account before is judged on its own attempts, not its
//!   address's (OWASP's "device cookie" lockout: the browser id is a cookie MACed by the
//!   server): it gets `MAX_PER_ADDRESS` attempts per window of its own, so a guesser
//!   behind the owner's NAT cannot keep the owner's browser out, and that browser cannot
//!   guess for ever either.
//! - From one address (IPv6: one /64), all account names together get
//!   `password_failures_per_address` (a setting) attempts per window at full speed. One
//!   address is often many people (an office, a school, a mobile carrier), so beyond it
//!   attempts are not refused: they queue `SOURCE_SPACING` apart. A person waits a second
//!   and signs in with the right password; a guesser trying one password on every name
//!   gets one name a second. Browsers that signed in to the account before skip this queue.
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
pub const FREE_PER_ACCOUNT: i64 = 10;
pub const MAX_SPACING: Duration = Duration::from_secs(30);
/// How far apart attempts from an address queue once its failures pass
/// `password_failures_per_address`: short enough that a person barely notices, and the
/// address's guesses across every name are held to one a second.
pub const SOURCE_SPACING: Duration = Duration::from_secs(1);
/// Longer than this in the queue and the attempt is refused instead of held open.
pub const MAX_WAIT: Duration = Duration::from_secs(30);

#[derive(Debug, PartialEq, Eq)]
pub enum Throttle {
    Allow,
    /// Queue for a place: behind the account's previous attempt (`account`), behind the
    /// address's previous attempt (`source`), or both, this far apart.
    Space {
        account: Option<Duration>,
        source: Option<Duration>,
    },
    Refuse,
}

/// Failed code attempts in the current window (`WINDOW`), of one kind (one-time codes and
/// recovery codes are counted apart).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CodeAttempts {
    pub for_account: i64,
    /// From this address, for any account.
    pub from_address: i64,
}

/// Wrong codes of one kind an account gets per window. A code step comes after the
/// password, so its guesser already knows that; a TOTP guess is right with odds of 3 in a
/// million (the code of the step before, now and after), so 5 a window is 480 a day and
/// odds of about 1 in 700 a day, and each success is logged and audited.
pub const MAX_CODES_PER_ACCOUNT: i64 = 5;

/// Whether a code attempt, already counted, may be checked: within the account's
/// `MAX_CODES_PER_ACCOUNT` and the address's `failures_per_address`. No queue: a code is
/// typed by a person, who can wait out the window or use another factor.
pub fn admits_code(attempts: CodeAttempts, failures_per_address: i64) -> bool {
    attempts.for_account <= MAX_CODES_PER_ACCOUNT && attempts.from_address <= failures_per_address
}

/// `known_browser`: this browser signed in to the account before.
/// `failures_per_address`: the setting `password_failures_per_address`.
pub fn decide(attempts: LoginAttempts, known_browser: bool, failures_per_address: i64) -> Throttle {
    if known_browser {
        return if attempts.from_browser > MAX_PER_ADDRESS {
            Throttle::Refuse
        } else {
            Throttle::Allow
        };
    }
    if attempts.from_address > MAX_PER_ADDRESS {
        return Throttle::Refuse;
    }
    // A place in a queue is spaced from the *next* one, and the first place in an empty
    // queue is free at once: so the last free attempt takes the first place, and the first
    // attempt past the free ones already waits (queueing from it would let one more through).
    let beyond = attempts.for_account - FREE_PER_ACCOUNT;
    let account = (beyond >= 0).then(|| {
        let doubling = Duration::from_secs(1u64 << beyond.min(16));
        doubling.min(MAX_SPACING)
    });
    let source = (attempts.from_source >= failures_per_address).then_some(SOURCE_SPACING);
    match (account, source) {
        (None, None) => Throttle::Allow,
        (account, source) => Throttle::Space { account, source },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The default of `password_failures_per_address`.
    const BUDGET: i64 = 100;

    fn attempts(for_account: i64, from_address: i64) -> LoginAttempts {
        LoginAttempts {
            for_account,
            from_address,
            from_source: from_address,
            from_browser: from_address,
        }
    }

    fn account_queue(spacing: u64) -> Throttle {
        Throttle::Space {
            account: Some(Duration::from_secs(spacing)),
            source: None,
        }
    }

    #[test]
    fn one_address_gets_five_attempts_per_account_name() {
        assert_eq!(decide(attempts(5, 5), false, BUDGET), Throttle::Allow);
        assert_eq!(decide(attempts(6, 6), false, BUDGET), Throttle::Refuse);
    }

    #[test]
    fn a_browser_that_signed_in_before_is_held_to_its_own_five_not_its_addresss() {
        // Its address has used up the name's five (a guesser behind the same NAT)...
        let shared = LoginAttempts {
            for_account: 10_000,
            from_address: 6,
            from_source: 10_000,
            from_browser: 1,
        };
        assert_eq!(decide(shared, false, BUDGET), Throttle::Refuse);
        assert_eq!(decide(shared, true, BUDGET), Throttle::Allow);
        // ...but its own failures count: it does not get to guess for ever.
        let own = LoginAttempts {
            from_browser: 6,
            ..shared
        };
        assert_eq!(decide(own, true, BUDGET), Throttle::Refuse);
    }

    #[test]
    fn beyond_its_budget_an_address_is_queued_a_second_apart_not_refused() {
        let spread = |from_source| LoginAttempts {
            for_account: 1,
            from_address: 1,
            from_source,
            from_browser: 1,
        };
        assert_eq!(decide(spread(BUDGET - 1), false, BUDGET), Throttle::Allow);
        let queued = Throttle::Space {
            account: None,
            source: Some(SOURCE_SPACING),
        };
        // The last attempt within the budget takes the queue's first place (free at once),
        // so the first one past it waits.
        assert_eq!(decide(spread(BUDGET), false, BUDGET), queued);
        assert_eq!(decide(spread(100_000), false, BUDGET), queued);
        // The budget is the setting, whatever it is.
        assert_eq!(decide(spread(3), false, 3), queued);
        assert_eq!(decide(spread(2), false, 3), Throttle::Allow);
        // A browser that signed in to the account before is not queued with its address.
        assert_eq!(decide(spread(100_000), true, BUDGET), Throttle::Allow);
    }

    #[test]
    fn an_attempt_beyond_both_budgets_queues_in_both() {
        let both = LoginAttempts {
            for_account: 12,
            from_address: 1,
            from_source: BUDGET + 1,
            from_browser: 1,
        };
        assert_eq!(
            decide(both, false, BUDGET),
            Throttle::Space {
                account: Some(Duration::from_secs(4)),
                source: Some(SOURCE_SPACING),
            }
        );
    }

    #[test]
    fn beyond_ten_attempts_on_an_account_they_are_spaced_ever_wider_up_to_thirty_seconds() {
        // The gap before attempt n is the spacing the attempt before it reserved.
        let space = |n| decide(attempts(n, 1), false, BUDGET);
        assert_eq!(space(9), Throttle::Allow);
        assert_eq!(space(10), account_queue(1), "the 11th waits a second");
        assert_eq!(space(11), account_queue(2));
        assert_eq!(space(13), account_queue(8));
        assert_eq!(space(15), account_queue(30));
        assert_eq!(space(10_000), account_queue(MAX_SPACING.as_secs()));
    }

    #[test]
    fn the_owners_own_browser_skips_the_account_queue() {
        assert_eq!(decide(attempts(10_000, 1), true, BUDGET), Throttle::Allow);
    }
}
