//! The sign-in as a use-case: who is signing in, which factors are done and which are
//! still needed, and what the browser session earns by it (`amr`, RFC 8176; `auth_time`
//! and `acr`, OIDC Core §2).
//!
//! Modelled on Kanidm's `authsession`: the mechanism is chosen first, then one typed
//! handler per factor answers each step with [`Answer::Success`], [`Answer::Continue`]
//! (the factor asked next) or [`Answer::Denied`] (why). A mechanism is a fixed sequence of
//! factors, not "any factors in any order": Kanidm's design note
//! (`auth_proto_rewrite_late_2020`) found that ambiguous for users and hard to test. Today
//! the only mechanism is the password; one-time codes, passkeys, recovery codes, email
//! links and upstream providers come as new [`Factor`]s and [`Mechanism`]s, each answered
//! by a handler of its own beside [`SignIn::password`].
//!
//! Plain Rust: the throttle's counters and queues, the accounts and the password hasher
//! sit behind [`SignInPorts`], which the HTTP adapter implements and the tests fake. The
//! browser session the sign-in leads to is decided here too ([`session_after`]); the
//! adapter stores it and sets the cookie.

mod session;

use std::time::Duration;

pub use session::{NewSession, new_sid, session_after};

use super::OAuthError;
use super::claims_request::ACR_PASSWORD;
use super::throttle::{self, Throttle};
use crate::domain::{Secret, UnixTime};
use crate::sessions::LoginAttempts;

/// One proof of who the user is. Each is answered by a handler of [`SignIn`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Factor {
    Password,
}

impl Factor {
    /// The authentication method reference this factor adds to `amr` (RFC 8176 §2).
    pub fn amr(self) -> &'static str {
        match self {
            Self::Password => "pwd",
        }
    }
}

/// The way of signing in the user chose, before any factor is answered: a fixed
/// sequence of factors.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mechanism {
    Password,
}

impl Mechanism {
    /// The factors this mechanism asks for, in the order it asks for them.
    pub fn factors(self) -> &'static [Factor] {
        match self {
            Self::Password => &[Factor::Password],
        }
    }

    /// The authentication context class a completed sign-in reaches (OIDC Core §2
    /// `acr`). A password alone is the one class offered today (`acr_values_supported`);
    /// a mechanism with a second factor will earn a stronger one.
    pub fn acr(self) -> &'static str {
        match self {
            Self::Password => ACR_PASSWORD,
        }
    }
}

/// A factor proved, and when.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Proof {
    pub factor: Factor,
    pub at: UnixTime,
}

/// Why a sign-in was refused. Every reason ends the sign-in: it answers nothing more.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Denied {
    /// Too many attempts (see `protocol::throttle`): refused before any secret was
    /// checked.
    Throttled,
    /// No such account, or the wrong secret: the two are never told apart.
    Incorrect,
    /// The right password for a disabled account (said only to whoever knows it).
    Disabled { user_id: String },
}

/// The answer to a step of the sign-in.
#[derive(Debug, PartialEq, Eq)]
pub enum Answer {
    /// Every factor of the mechanism is proved.
    Success(Authenticated),
    /// This factor is proved; the next one is asked for.
    Continue(Factor),
    Denied(Denied),
}

/// Who signed in, and how: what the browser session records.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Authenticated {
    pub user_id: String,
    /// The factors proved, in order, and when.
    pub proofs: Vec<Proof>,
    /// Their authentication method references (RFC 8176 §2), in the order proved.
    pub amr: Vec<String>,
    /// When the last factor was proved (OIDC Core §2 `auth_time`).
    pub auth_time: UnixTime,
    /// The authentication context class the factors reach (OIDC Core §2 `acr`).
    pub acr: &'static str,
}

/// The outcome of a password check, as the account store and the hasher found it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PasswordCheck {
    /// No account of that name, or the wrong password.
    Wrong,
    Right(Account),
}

/// The account a right password belongs to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Account {
    pub user_id: String,
    pub disabled: bool,
}

/// The per-address limits of the throttle that are settings.
#[derive(Clone, Copy, Debug)]
pub struct ThrottleLimits {
    /// `password_failures_per_address`.
    pub failures_per_address: i64,
}

/// What a sign-in needs from outside. `username` is always the name as typed (trimmed);
/// the ports fold it as the store and the throttle do (`UsernameKey`).
// Called with the adapter's own type (no `dyn`) on actix's single-threaded workers: the
// futures need no `Send` bound, so plain `async fn` is what the trait should say.
#[allow(async_fn_in_trait)]
pub trait SignInPorts {
    /// Whether the browser the attempt comes from signed in to this account before.
    async fn is_known_browser(&self, username: &str) -> Result<bool, OAuthError>;
    /// Counts the attempt before any secret is checked (and the browser's own count,
    /// for a known browser); returns the counts in the window.
    async fn reserve_attempt(
        &self,
        username: &str,
        known_browser: bool,
    ) -> Result<LoginAttempts, OAuthError>;
    /// Takes a place in the account's queue and the address's queue, as spaced, and
    /// waits for it; `false` when a queue is too long to wait in.
    async fn wait_in_queues(
        &self,
        username: &str,
        account: Option<Duration>,
        source: Option<Duration>,
    ) -> Result<bool, OAuthError>;
    /// Looks the account up and checks the password, taking the same time whether the
    /// account exists or not.
    async fn check_password(
        &self,
        username: &str,
        password: Secret<String>,
    ) -> Result<PasswordCheck, OAuthError>;
    /// A right answer is not held against anyone: hands the attempt's counts back, and
    /// remembers the browser for the account.
    async fn attempt_succeeded(
        &self,
        username: &str,
        known_browser: bool,
    ) -> Result<(), OAuthError>;
    fn now(&self) -> UnixTime;
}

/// One sign-in: the account name typed, the mechanism chosen, the factors proved so far.
#[derive(Debug)]
pub struct SignIn {
    username: String,
    mechanism: Mechanism,
    limits: ThrottleLimits,
    proofs: Vec<Proof>,
    /// The account the factors so far proved (`None` before the first).
    user_id: Option<String>,
    denied: bool,
}

impl SignIn {
    pub fn begin(username: &str, mechanism: Mechanism, limits: ThrottleLimits) -> Self {
        Self {
            username: username.trim().to_owned(),
            mechanism,
            limits,
            proofs: Vec::new(),
            user_id: None,
            denied: false,
        }
    }

    /// The account name as typed (trimmed).
    pub fn username(&self) -> &str {
        &self.username
    }

    /// The factor asked for next; `None` once the sign-in succeeded or was denied.
    pub fn next(&self) -> Option<Factor> {
        if self.denied {
            return None;
        }
        self.mechanism.factors().get(self.proofs.len()).copied()
    }

    /// The password step. The attempt is counted and judged by the throttle before the
    /// password is checked, so that guesses sent at once are all counted before any is
    /// answered, and a refused guess learns nothing.
    pub async fn password(
        &mut self,
        password: Secret<String>,
        ports: &impl SignInPorts,
    ) -> Result<Answer, OAuthError> {
        if self.next() != Some(Factor::Password) {
            return Err(not_asked());
        }
        let known_browser = ports.is_known_browser(&self.username).await?;
        let attempts = ports.reserve_attempt(&self.username, known_browser).await?;
        let admitted =
            match throttle::decide(attempts, known_browser, self.limits.failures_per_address) {
                Throttle::Allow => true,
                Throttle::Refuse => false,
                Throttle::Space { account, source } => {
                    ports
                        .wait_in_queues(&self.username, account, source)
                        .await?
                }
            };
        if !admitted {
            return Ok(self.deny(Denied::Throttled));
        }
        let account = match ports.check_password(&self.username, password).await? {
            PasswordCheck::Wrong => return Ok(self.deny(Denied::Incorrect)),
            PasswordCheck::Right(account) => account,
        };
        // The attempt stays counted: a disabled account is no way around the throttle.
        if account.disabled {
            return Ok(self.deny(Denied::Disabled {
                user_id: account.user_id,
            }));
        }
        ports
            .attempt_succeeded(&self.username, known_browser)
            .await?;
        Ok(self.proved(Factor::Password, account.user_id, ports.now()))
    }

    fn deny(&mut self, reason: Denied) -> Answer {
        self.denied = true;
        Answer::Denied(reason)
    }

    /// Records `factor` as proved for `user_id` at `at`, and says what comes next.
    fn proved(&mut self, factor: Factor, user_id: String, at: UnixTime) -> Answer {
        // Every factor must speak for the same account (a passkey names its own).
        if self.user_id.as_ref().is_some_and(|u| *u != user_id) {
            return self.deny(Denied::Incorrect);
        }
        self.user_id = Some(user_id.clone());
        self.proofs.push(Proof { factor, at });
        if let Some(next) = self.next() {
            return Answer::Continue(next);
        }
        Answer::Success(Authenticated {
            user_id,
            amr: self
                .proofs
                .iter()
                .map(|p| p.factor.amr().to_owned())
                .collect(),
            auth_time: at,
            acr: self.mechanism.acr(),
            proofs: self.proofs.clone(),
        })
    }
}

fn not_asked() -> OAuthError {
    OAuthError::invalid_request(
        "this sign-in does not ask for that now; return to the application and start again",
    )
}

#[cfg(test)]
mod tests {
    use std::cell::RefCell;

    use super::*;

    pub(super) const NOW: UnixTime = 1_000_000;
    const LIMITS: ThrottleLimits = ThrottleLimits {
        failures_per_address: 100,
    };

    fn attempts(from_address: i64, from_browser: i64) -> LoginAttempts {
        LoginAttempts {
            for_account: 1,
            from_address,
            from_source: 1,
            from_browser,
        }
    }

    /// The outside world of one attempt, recording what the sign-in asked of it.
    struct World {
        known_browser: bool,
        attempts: LoginAttempts,
        room_in_queue: bool,
        password: &'static str,
        disabled: bool,
        calls: RefCell<Vec<String>>,
    }

    impl World {
        fn new() -> Self {
            Self {
                known_browser: false,
                attempts: attempts(1, 0),
                room_in_queue: true,
                password: "right",
                disabled: false,
                calls: RefCell::new(Vec::new()),
            }
        }

        fn called(&self, what: &str) -> bool {
            self.calls.borrow().iter().any(|c| c.starts_with(what))
        }

        fn log(&self, call: String) {
            self.calls.borrow_mut().push(call);
        }
    }

    impl SignInPorts for World {
        async fn is_known_browser(&self, username: &str) -> Result<bool, OAuthError> {
            self.log(format!("is_known_browser {username}"));
            Ok(self.known_browser)
        }

        async fn reserve_attempt(
            &self,
            username: &str,
            known_browser: bool,
        ) -> Result<LoginAttempts, OAuthError> {
            self.log(format!("reserve_attempt {username} {known_browser}"));
            Ok(self.attempts)
        }

        async fn wait_in_queues(
            &self,
            _username: &str,
            account: Option<Duration>,
            source: Option<Duration>,
        ) -> Result<bool, OAuthError> {
            self.log(format!("wait_in_queues {account:?} {source:?}"));
            Ok(self.room_in_queue)
        }

        async fn check_password(
            &self,
            username: &str,
            password: Secret<String>,
        ) -> Result<PasswordCheck, OAuthError> {
            self.log(format!("check_password {username}"));
            Ok(if password.expose() == self.password {
                PasswordCheck::Right(Account {
                    user_id: "alice-id".into(),
                    disabled: self.disabled,
                })
            } else {
                PasswordCheck::Wrong
            })
        }

        async fn attempt_succeeded(
            &self,
            username: &str,
            known_browser: bool,
        ) -> Result<(), OAuthError> {
            self.log(format!("attempt_succeeded {username} {known_browser}"));
            Ok(())
        }

        fn now(&self) -> UnixTime {
            NOW
        }
    }

    async fn sign_in_with(password: &str, world: &World) -> (SignIn, Answer) {
        let mut sign_in = SignIn::begin("  alice ", Mechanism::Password, LIMITS);
        let answer = sign_in
            .password(Secret::new(password.to_owned()), world)
            .await
            .unwrap();
        (sign_in, answer)
    }

    pub(super) fn authenticated(user: &str, amr: &[&str], auth_time: UnixTime) -> Authenticated {
        Authenticated {
            user_id: user.into(),
            proofs: vec![Proof {
                factor: Factor::Password,
                at: auth_time,
            }],
            amr: amr.iter().map(|s| (*s).to_owned()).collect(),
            auth_time,
            acr: ACR_PASSWORD,
        }
    }

    #[test]
    fn the_password_mechanism_asks_for_the_password_first_and_only() {
        let sign_in = SignIn::begin("alice", Mechanism::Password, LIMITS);
        assert_eq!(sign_in.next(), Some(Factor::Password));
        assert_eq!(Mechanism::Password.factors(), [Factor::Password]);
    }

    #[tokio::test]
    async fn the_right_password_signs_in_with_amr_pwd_at_the_time_it_was_checked() {
        let world = World::new();
        let (sign_in, answer) = sign_in_with("right", &world).await;
        assert_eq!(
            answer,
            Answer::Success(authenticated("alice-id", &["pwd"], NOW))
        );
        assert_eq!(sign_in.username(), "alice", "the name as typed, trimmed");
        assert_eq!(sign_in.next(), None, "nothing more is asked");
        assert!(
            world.called("attempt_succeeded alice false"),
            "the attempt is handed back: only failures stay counted"
        );
    }

    #[tokio::test]
    async fn a_wrong_password_is_denied_and_stays_counted() {
        let world = World::new();
        let (mut sign_in, answer) = sign_in_with("wrong", &world).await;
        assert_eq!(answer, Answer::Denied(Denied::Incorrect));
        assert!(!world.called("attempt_succeeded"));
        assert_eq!(sign_in.next(), None, "a denied sign-in is over");
        let again = sign_in
            .password(Secret::new("right".to_owned()), &world)
            .await;
        assert!(again.is_err(), "and answers nothing more");
    }

    #[tokio::test]
    async fn a_throttle_refusal_is_denied_without_checking_the_password() {
        let world = World {
            attempts: attempts(throttle::MAX_PER_ADDRESS + 1, 0),
            ..World::new()
        };
        let (_, answer) = sign_in_with("right", &world).await;
        assert_eq!(answer, Answer::Denied(Denied::Throttled));
        assert!(world.called("reserve_attempt"), "counted first");
        assert!(!world.called("check_password"));
        assert!(!world.called("wait_in_queues"));
    }

    #[tokio::test]
    async fn a_queue_too_long_to_wait_in_is_denied_without_checking_the_password() {
        let world = World {
            attempts: LoginAttempts {
                for_account: throttle::FREE_PER_ACCOUNT + 3,
                ..attempts(1, 0)
            },
            room_in_queue: false,
            ..World::new()
        };
        let (_, answer) = sign_in_with("right", &world).await;
        assert_eq!(answer, Answer::Denied(Denied::Throttled));
        assert!(world.called("wait_in_queues Some(8s) None"), "{world:?}");
        assert!(!world.called("check_password"));
    }

    #[tokio::test]
    async fn an_attempt_that_waits_its_turn_in_the_queue_goes_on_to_the_password() {
        let world = World {
            attempts: LoginAttempts {
                for_account: throttle::FREE_PER_ACCOUNT,
                ..attempts(1, 0)
            },
            ..World::new()
        };
        let (_, answer) = sign_in_with("right", &world).await;
        assert!(matches!(answer, Answer::Success(_)), "{answer:?}");
        assert!(world.called("wait_in_queues"));
    }

    #[tokio::test]
    async fn a_browser_that_signed_in_before_is_judged_on_its_own_attempts_not_its_addresss() {
        // Its address has used up the name's attempts (a guesser behind the same NAT).
        let world = World {
            known_browser: true,
            attempts: attempts(throttle::MAX_PER_ADDRESS + 1, 1),
            ..World::new()
        };
        let (_, answer) = sign_in_with("right", &world).await;
        assert!(matches!(answer, Answer::Success(_)), "{answer:?}");
        assert!(
            world.called("reserve_attempt alice true"),
            "counted as itself"
        );
        assert!(world.called("attempt_succeeded alice true"));
        // Its own failures count: it does not get to guess for ever.
        let guessing = World {
            known_browser: true,
            attempts: attempts(1, throttle::MAX_PER_ADDRESS + 1),
            ..World::new()
        };
        let (_, answer) = sign_in_with("right", &guessing).await;
        assert_eq!(answer, Answer::Denied(Denied::Throttled));
        assert!(!guessing.called("check_password"));
    }

    #[tokio::test]
    async fn the_right_password_of_a_disabled_account_is_denied_and_stays_counted() {
        let world = World {
            disabled: true,
            ..World::new()
        };
        let (_, answer) = sign_in_with("right", &world).await;
        assert_eq!(
            answer,
            Answer::Denied(Denied::Disabled {
                user_id: "alice-id".into()
            })
        );
        assert!(!world.called("attempt_succeeded"));
    }

    impl std::fmt::Debug for World {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            write!(f, "{:?}", self.calls.borrow())
        }
    }

    #[test]
    fn a_factor_speaking_for_another_account_than_the_one_before_is_denied() {
        let mut sign_in = SignIn::begin("alice", Mechanism::Password, LIMITS);
        assert!(matches!(
            sign_in.proved(Factor::Password, "alice-id".into(), NOW),
            Answer::Success(_)
        ));
        // A second proof (as a second factor will bring) for another account.
        assert_eq!(
            sign_in.proved(Factor::Password, "mallory-id".into(), NOW),
            Answer::Denied(Denied::Incorrect)
        );
    }
}
