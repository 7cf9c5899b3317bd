//! The sign-in machine against a fake outside world.

use std::cell::{Cell, RefCell};

use super::*;

pub(super) const NOW: UnixTime = 1_000_000;
const LIMITS: ThrottleLimits = ThrottleLimits {
    failures_per_address: 100,
};
const OPTIONAL: MfaPolicy = MfaPolicy::Optional;
const ONE: Level = Level::SingleFactor;
const TWO: Level = Level::MultiFactor;

fn attempts(from_address: i64, from_browser: i64) -> LoginAttempts {
    LoginAttempts {
        for_account: 1,
        from_address,
        from_source: 1,
        from_browser,
    }
}

/// The outside world of one sign-in, recording what the sign-in asked of it.
struct World {
    known_browser: bool,
    attempts: LoginAttempts,
    room_in_queue: bool,
    password: &'static str,
    disabled: bool,
    /// What the account has; `None`: it was removed.
    factors: Option<AccountFactors>,
    code_attempts: Cell<CodeAttempts>,
    one_time_code: &'static str,
    recovery_code: &'static str,
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
            factors: Some(AccountFactors::default()),
            code_attempts: Cell::new(CodeAttempts::default()),
            one_time_code: "123456",
            recovery_code: "abcd-efgh",
            calls: RefCell::new(Vec::new()),
        }
    }

    /// An account with a one-time-code credential and recovery codes.
    fn with_codes() -> Self {
        Self {
            factors: Some(AccountFactors {
                one_time_codes: true,
                recovery_codes: true,
                ..AccountFactors::default()
            }),
            ..Self::new()
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

    async fn attempt_failed(&self, username: &str, known_browser: bool) -> Result<(), OAuthError> {
        self.log(format!("attempt_failed {username} {known_browser}"));
        Ok(())
    }

    async fn code_attempt_failed(&self, user_id: &str, kind: CodeKind) -> Result<(), OAuthError> {
        self.log(format!("code_attempt_failed {user_id} {}", kind.as_str()));
        Ok(())
    }

    async fn account_factors(&self, user_id: &str) -> Result<Option<AccountFactors>, OAuthError> {
        self.log(format!("account_factors {user_id}"));
        Ok(self.factors)
    }

    async fn reserve_code_attempt(
        &self,
        user_id: &str,
        kind: CodeKind,
    ) -> Result<CodeAttempts, OAuthError> {
        self.log(format!("reserve_code_attempt {user_id} {}", kind.as_str()));
        let mut counted = self.code_attempts.get();
        counted.for_account += 1;
        counted.from_address += 1;
        self.code_attempts.set(counted);
        Ok(counted)
    }

    async fn code_attempt_succeeded(
        &self,
        user_id: &str,
        kind: CodeKind,
    ) -> Result<(), OAuthError> {
        self.log(format!(
            "code_attempt_succeeded {user_id} {}",
            kind.as_str()
        ));
        Ok(())
    }

    async fn use_one_time_code(
        &self,
        user_id: &str,
        code: &Secret<String>,
        enrolling: Option<&str>,
    ) -> Result<bool, OAuthError> {
        self.log(format!("use_one_time_code {user_id} {enrolling:?}"));
        Ok(code.expose() == self.one_time_code)
    }

    async fn use_recovery_code(
        &self,
        user_id: &str,
        code: &Secret<String>,
    ) -> Result<bool, OAuthError> {
        self.log(format!("use_recovery_code {user_id}"));
        Ok(code.expose() == self.recovery_code)
    }

    fn now(&self) -> UnixTime {
        NOW
    }
}

fn begin(asked: Level, policy: MfaPolicy) -> SignIn {
    SignIn::begin("  alice ", asked, policy, LIMITS, NOW)
}

async fn sign_in_with(password: &str, world: &World) -> (SignIn, Answer) {
    let mut sign_in = begin(ONE, OPTIONAL);
    let answer = sign_in
        .password(Secret::new(password.to_owned()), world)
        .await
        .unwrap();
    (sign_in, answer)
}

fn secret(code: &str) -> Secret<String> {
    Secret::new(code.to_owned())
}

fn password_at(at: UnixTime) -> Proof {
    Proof::of(Factor::Password, at)
}

pub(super) fn authenticated(user: &str, amr: &[&str], auth_time: UnixTime) -> Authenticated {
    Authenticated {
        user_id: user.into(),
        proofs: vec![password_at(auth_time)],
        amr: amr.iter().map(|s| (*s).to_owned()).collect(),
        auth_time,
        level: ONE,
        steps_up: None,
        resets: None,
        idp: None,
        upstream_id_token: None,
    }
}

fn success(answer: Answer) -> Authenticated {
    match answer {
        Answer::Success(signed_in) => signed_in,
        other => panic!("not a success: {other:?}"),
    }
}

#[test]
fn a_sign_in_asks_for_a_first_factor_first() {
    let sign_in = begin(ONE, OPTIONAL);
    assert_eq!(sign_in.next(), Some(Next::FirstFactor));
    assert_eq!(sign_in.user_id(), None);
}

#[tokio::test]
async fn the_right_password_signs_in_with_amr_pwd_at_the_time_it_was_checked() {
    let world = World::new();
    let (sign_in, answer) = sign_in_with("right", &world).await;
    assert_eq!(success(answer), authenticated("alice-id", &["pwd"], NOW));
    assert_eq!(sign_in.username(), "alice", "the name as typed, trimmed");
    assert_eq!(sign_in.next(), None, "nothing more is asked");
    assert!(
        world.called("attempt_succeeded alice false"),
        "the attempt is handed back: only failures stay counted"
    );
    assert!(!world.called("attempt_failed"), "and nothing is recorded");
}

#[tokio::test]
async fn a_wrong_password_is_denied_and_stays_counted() {
    let world = World::new();
    let (mut sign_in, answer) = sign_in_with("wrong", &world).await;
    assert_eq!(answer, Answer::Denied(Denied::Incorrect));
    assert!(!world.called("attempt_succeeded"));
    assert!(
        world.called("attempt_failed alice false"),
        "the failure is recorded where it outlives the session store"
    );
    assert_eq!(sign_in.next(), None, "a denied sign-in is over");
    let again = sign_in.password(secret("right"), &world).await;
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

#[tokio::test]
async fn an_account_with_a_one_time_code_asks_for_it_after_the_password() {
    let world = World::with_codes();
    let (mut sign_in, answer) = sign_in_with("right", &world).await;
    assert_eq!(
        answer,
        Answer::Continue(Next::SecondFactor(vec![
            Factor::OneTimeCode,
            Factor::RecoveryCode
        ]))
    );
    assert_eq!(sign_in.required(), TWO, "its own factors raise the level");
    let signed_in = success(
        sign_in
            .code(CodeKind::OneTime, secret("123456"), &world)
            .await
            .unwrap(),
    );
    assert_eq!(signed_in.amr, ["pwd", "otp", "mfa"]);
    assert_eq!(signed_in.level, TWO);
    assert_eq!(signed_in.proofs.len(), 2);
    assert!(
        world.called("reserve_code_attempt alice-id otp"),
        "counted first"
    );
    assert!(world.called("code_attempt_succeeded alice-id otp"));
}

#[tokio::test]
async fn a_wrong_code_lets_the_user_try_again_until_the_throttle_refuses() {
    let world = World::with_codes();
    let (mut sign_in, _) = sign_in_with("right", &world).await;
    for _ in 0..throttle::MAX_CODES_PER_ACCOUNT {
        let answer = sign_in
            .code(CodeKind::OneTime, secret("000000"), &world)
            .await
            .unwrap();
        assert_eq!(answer, Answer::Denied(Denied::WrongCode));
        assert!(sign_in.next().is_some(), "the sign-in goes on");
    }
    assert!(!world.called("code_attempt_succeeded"));
    assert!(world.called("code_attempt_failed alice-id otp"));
    // The next attempt is refused before the code is checked, the right one too.
    let calls_before = world.calls.borrow().len();
    let answer = sign_in
        .code(CodeKind::OneTime, secret("123456"), &world)
        .await
        .unwrap();
    assert_eq!(answer, Answer::Denied(Denied::Throttled));
    assert_eq!(
        world.calls.borrow()[calls_before..],
        ["reserve_code_attempt alice-id otp"]
    );
    assert_eq!(sign_in.next(), None, "a throttled sign-in is over");
}

#[tokio::test]
async fn a_busy_address_refuses_codes_too() {
    let world = World::with_codes();
    world.code_attempts.set(CodeAttempts {
        for_account: 0,
        from_address: LIMITS.failures_per_address,
    });
    let (mut sign_in, _) = sign_in_with("right", &world).await;
    let answer = sign_in
        .code(CodeKind::Recovery, secret("abcd-efgh"), &world)
        .await
        .unwrap();
    assert_eq!(answer, Answer::Denied(Denied::Throttled));
    assert!(!world.called("use_recovery_code"));
}

#[tokio::test]
async fn a_recovery_code_is_a_second_factor_with_amr_otp() {
    let world = World::with_codes();
    let (mut sign_in, _) = sign_in_with("right", &world).await;
    let signed_in = success(
        sign_in
            .code(CodeKind::Recovery, secret("abcd-efgh"), &world)
            .await
            .unwrap(),
    );
    assert_eq!(signed_in.amr, ["pwd", "otp", "mfa"]);
    assert_eq!(signed_in.proofs[1].factor, Factor::RecoveryCode);
    assert!(world.called("reserve_code_attempt alice-id recovery"));
}

#[tokio::test]
async fn a_code_is_refused_when_it_is_not_asked_for() {
    let world = World::with_codes();
    // Before the password: no account to check it against.
    let mut fresh = begin(ONE, OPTIONAL);
    assert!(
        fresh
            .code(CodeKind::OneTime, secret("123456"), &world)
            .await
            .is_err()
    );
    // A recovery code for an account that has none.
    let only_totp = World {
        factors: Some(AccountFactors {
            one_time_codes: true,
            ..AccountFactors::default()
        }),
        ..World::new()
    };
    let (mut sign_in, _) = sign_in_with("right", &only_totp).await;
    assert!(
        sign_in
            .code(CodeKind::Recovery, secret("abcd-efgh"), &only_totp)
            .await
            .is_err()
    );
    assert!(!only_totp.called("reserve_code_attempt"));
}

#[tokio::test]
async fn recovery_codes_alone_do_not_ask_for_a_second_factor() {
    let world = World {
        factors: Some(AccountFactors {
            recovery_codes: true,
            ..AccountFactors::default()
        }),
        ..World::new()
    };
    let (_, answer) = sign_in_with("right", &world).await;
    assert_eq!(success(answer).level, ONE);
}

#[tokio::test]
async fn a_required_second_factor_sends_an_account_without_one_to_enrol() {
    for (asked, policy, factors) in [
        (ONE, MfaPolicy::Required, AccountFactors::default()),
        (TWO, OPTIONAL, AccountFactors::default()),
        (
            ONE,
            OPTIONAL,
            AccountFactors {
                mfa_required: true,
                ..AccountFactors::default()
            },
        ),
    ] {
        let world = World {
            factors: Some(factors),
            ..World::new()
        };
        let mut sign_in = begin(asked, policy);
        let answer = sign_in.password(secret("right"), &world).await.unwrap();
        assert_eq!(
            answer,
            Answer::Continue(Next::Enrol),
            "{asked:?} {policy:?}"
        );
        // The enrolment's first code proves it (and confirms it, in the store).
        assert!(
            sign_in
                .code(CodeKind::Recovery, secret("abcd-efgh"), &world)
                .await
                .is_err()
        );
        let signed_in = success(
            sign_in
                .code(CodeKind::OneTime, secret("123456"), &world)
                .await
                .unwrap(),
        );
        assert_eq!(signed_in.amr, ["pwd", "otp", "mfa"]);
    }
}

#[tokio::test]
async fn with_mfa_off_the_password_is_enough_whatever_is_asked() {
    let world = World {
        factors: Some(AccountFactors {
            one_time_codes: true,
            mfa_required: true,
            ..AccountFactors::default()
        }),
        ..World::new()
    };
    let mut sign_in = begin(TWO, MfaPolicy::Off);
    let answer = sign_in.password(secret("right"), &world).await.unwrap();
    assert_eq!(success(answer).amr, ["pwd"]);
}

fn passkey(user: &str, user_verified: bool, synced: bool) -> VerifiedPasskey {
    VerifiedPasskey {
        user_id: user.into(),
        user_verified,
        synced,
    }
}

#[tokio::test]
async fn a_user_verifying_passkey_alone_reaches_two_factors() {
    let world = World {
        factors: Some(AccountFactors {
            passkeys: true,
            ..AccountFactors::default()
        }),
        ..World::new()
    };
    let mut sign_in = begin(TWO, OPTIONAL);
    let signed_in = success(
        sign_in
            .passkey(passkey("alice-id", true, false), &world)
            .await
            .unwrap(),
    );
    assert_eq!(signed_in.amr, ["hwk", "mfa"]);
    assert_eq!(signed_in.level, TWO);
    assert!(!world.called("reserve_attempt"), "no password throttle");
    let mut synced = begin(ONE, OPTIONAL);
    let signed_in = success(
        synced
            .passkey(passkey("alice-id", true, true), &world)
            .await
            .unwrap(),
    );
    assert_eq!(signed_in.amr, ["swk", "mfa"]);
}

#[tokio::test]
async fn a_passkey_without_user_verification_asks_for_the_password_not_a_code() {
    let world = World {
        factors: Some(AccountFactors {
            passkeys: true,
            one_time_codes: true,
            ..AccountFactors::default()
        }),
        ..World::new()
    };
    let mut sign_in = begin(ONE, OPTIONAL);
    let answer = sign_in
        .passkey(passkey("alice-id", false, false), &world)
        .await
        .unwrap();
    assert_eq!(
        answer,
        Answer::Continue(Next::FirstFactor),
        "a code is one more thing held: it cannot make two factors"
    );
    assert!(
        sign_in
            .code(CodeKind::OneTime, secret("123456"), &world)
            .await
            .is_err()
    );
}

#[tokio::test]
async fn a_passkey_after_a_password_must_be_the_same_accounts() {
    let world = World {
        factors: Some(AccountFactors {
            passkeys: true,
            ..AccountFactors::default()
        }),
        ..World::new()
    };
    let (mut sign_in, answer) = sign_in_with("right", &world).await;
    assert_eq!(
        answer,
        Answer::Continue(Next::SecondFactor(vec![Factor::Passkey]))
    );
    let mut other = sign_in.clone();
    assert_eq!(
        other
            .passkey(passkey("mallory-id", true, false), &world)
            .await
            .unwrap(),
        Answer::Denied(Denied::Incorrect)
    );
    let signed_in = success(
        sign_in
            .passkey(passkey("alice-id", false, false), &world)
            .await
            .unwrap(),
    );
    assert_eq!(signed_in.amr, ["pwd", "hwk", "mfa"]);
}

#[tokio::test]
async fn an_account_disabled_or_removed_between_steps_is_denied() {
    let world = World {
        factors: Some(AccountFactors {
            disabled: true,
            ..AccountFactors::default()
        }),
        ..World::new()
    };
    let mut sign_in = begin(ONE, OPTIONAL);
    assert_eq!(
        sign_in
            .passkey(passkey("alice-id", true, false), &world)
            .await
            .unwrap(),
        Answer::Denied(Denied::Disabled {
            user_id: "alice-id".into()
        })
    );
    let removed = World {
        factors: None,
        ..World::new()
    };
    let mut sign_in = begin(ONE, OPTIONAL);
    assert_eq!(
        sign_in
            .passkey(passkey("alice-id", true, false), &removed)
            .await
            .unwrap(),
        Answer::Denied(Denied::Incorrect)
    );
}

fn password_session(at: UnixTime) -> SsoSession {
    SsoSession {
        id: "cookie".into(),
        sid: "sid-a".into(),
        user_id: "alice-id".into(),
        auth_time: at,
        amr: vec!["pwd".into()],
        level: ONE,
        methods: vec![MethodUse {
            amr: "pwd".into(),
            at,
        }],
        expires_at: at + 3600,
        idp: None,
        upstream_id_token: None,
    }
}

#[tokio::test]
async fn a_step_up_asks_only_for_the_missing_factor_and_keeps_the_password() {
    let world = World::with_codes();
    let session = password_session(NOW - 600);
    let mut sign_in = SignIn::step_up(&session, TWO, OPTIONAL, LIMITS, NOW);
    assert_eq!(
        sign_in.resume(&world).await.unwrap(),
        Answer::Continue(Next::SecondFactor(vec![
            Factor::OneTimeCode,
            Factor::RecoveryCode
        ]))
    );
    assert!(
        !world.called("check_password"),
        "the password is not asked again"
    );
    assert!(sign_in.password(secret("right"), &world).await.is_err());
    let signed_in = success(
        sign_in
            .code(CodeKind::OneTime, secret("123456"), &world)
            .await
            .unwrap(),
    );
    assert_eq!(signed_in.amr, ["pwd", "otp", "mfa"]);
    assert_eq!(signed_in.level, TWO);
    assert_eq!(
        signed_in.auth_time,
        NOW - 600,
        "when the user was authenticated: the oldest proof (max_age)"
    );
    assert_eq!(
        signed_in.steps_up.as_deref(),
        Some(token_hash("cookie").as_str()),
        "the session it steps up"
    );
    assert_eq!(
        signed_in.method_uses(),
        [
            MethodUse {
                amr: "pwd".into(),
                at: NOW - 600
            },
            MethodUse {
                amr: "otp".into(),
                at: NOW
            }
        ]
    );
}

#[tokio::test]
async fn a_step_up_the_session_already_meets_succeeds_at_once() {
    let world = World::new();
    let mut session = password_session(NOW - 60);
    session.amr = vec!["hwk".into(), "mfa".into()];
    session.methods = vec![MethodUse {
        amr: "hwk".into(),
        at: NOW - 60,
    }];
    session.level = TWO;
    let mut sign_in = SignIn::step_up(&session, TWO, OPTIONAL, LIMITS, NOW);
    let signed_in = success(sign_in.resume(&world).await.unwrap());
    assert_eq!(signed_in.level, TWO, "the verifying passkey still counts");
    assert_eq!(signed_in.amr, ["hwk", "mfa"]);
}

#[test]
fn levels_and_amr_follow_the_kinds_of_factor_proved() {
    let pwd = password_at(1);
    let otp = Proof::of(Factor::OneTimeCode, 2);
    let key = Proof::of(Factor::Passkey, 3);
    assert_eq!(level_of(&[]), ONE);
    assert_eq!(level_of(&[pwd]), ONE);
    assert_eq!(level_of(&[otp]), ONE);
    assert_eq!(level_of(&[key, otp]), ONE, "two things held are one kind");
    assert_eq!(level_of(&[pwd, otp]), TWO);
    assert_eq!(level_of(&[pwd, key]), TWO);
    let verifying = Proof {
        user_verified: true,
        ..key
    };
    assert_eq!(level_of(&[verifying]), TWO);
    assert_eq!(amr_of(&[pwd, pwd]), ["pwd"]);
    let recovery = Proof::of(Factor::RecoveryCode, 4);
    assert_eq!(amr_of(&[pwd, otp, recovery]), ["pwd", "otp", "mfa"]);
}

#[tokio::test]
async fn a_step_up_to_an_enrolment_needs_a_recent_first_factor() {
    let world = World::new();
    // An hour-old password: whoever holds the browser now signs in again first.
    let old = password_session(NOW - 3600);
    let mut sign_in = SignIn::step_up(&old, TWO, OPTIONAL, LIMITS, NOW);
    assert_eq!(
        sign_in.resume(&world).await.unwrap(),
        Answer::Continue(Next::FirstFactor)
    );
    assert!(
        sign_in
            .code(CodeKind::OneTime, secret("123456"), &world)
            .await
            .is_err(),
        "no enrolment rests on it"
    );
    // A password of a minute ago does.
    let recent = password_session(NOW - RECENT);
    let mut sign_in = SignIn::step_up(&recent, TWO, OPTIONAL, LIMITS, NOW);
    assert_eq!(
        sign_in.resume(&world).await.unwrap(),
        Answer::Continue(Next::Enrol)
    );
    // Its code confirms only the enrolment this sign-in showed.
    sign_in.show_enrolment("sealed-key".into());
    success(
        sign_in
            .code(CodeKind::OneTime, secret("123456"), &world)
            .await
            .unwrap(),
    );
    assert!(
        world.called("use_one_time_code alice-id Some(\"sealed-key\")"),
        "{world:?}"
    );
}

#[tokio::test]
async fn a_sign_in_that_took_too_long_answers_nothing_more() {
    let world = World::with_codes();
    let mut sign_in = SignIn::begin("alice", ONE, OPTIONAL, LIMITS, NOW - MAX_DURATION - 1);
    assert!(sign_in.password(secret("right"), &world).await.is_err());
    assert!(!world.called("reserve_attempt"));
    let mut just_in_time = SignIn::begin("alice", ONE, OPTIONAL, LIMITS, NOW - MAX_DURATION);
    assert!(just_in_time.password(secret("right"), &world).await.is_ok());
    let mut stale = SignIn::step_up(
        &password_session(NOW),
        TWO,
        OPTIONAL,
        LIMITS,
        NOW - MAX_DURATION - 1,
    );
    assert!(stale.resume(&world).await.is_err());
}

#[tokio::test]
async fn a_code_for_an_account_disabled_since_the_password_uses_nothing_up() {
    let (mut sign_in, _) = sign_in_with("right", &World::with_codes()).await;
    let disabled = World {
        factors: Some(AccountFactors {
            disabled: true,
            one_time_codes: true,
            ..AccountFactors::default()
        }),
        ..World::new()
    };
    let answer = sign_in
        .code(CodeKind::OneTime, secret("123456"), &disabled)
        .await
        .unwrap();
    assert_eq!(
        answer,
        Answer::Denied(Denied::Disabled {
            user_id: "alice-id".into()
        })
    );
    assert!(!disabled.called("use_one_time_code"), "{disabled:?}");
}

#[tokio::test]
async fn a_step_up_keeps_what_kind_of_passkey_the_session_used() {
    let world = World::new();
    let mut session = password_session(NOW - 60);
    session.amr = vec!["swk".into(), "mfa".into()];
    session.methods = vec![MethodUse {
        amr: "swk".into(),
        at: NOW - 60,
    }];
    session.level = TWO;
    let mut sign_in = SignIn::step_up(&session, TWO, OPTIONAL, LIMITS, NOW);
    let signed_in = success(sign_in.resume(&world).await.unwrap());
    assert_eq!(signed_in.amr, ["swk", "mfa"], "a synced passkey stays swk");
}

#[tokio::test]
async fn a_passkey_without_user_verification_is_completed_by_the_password_not_more_keys() {
    let world = World::with_codes();
    let mut sign_in = begin(TWO, OPTIONAL);
    let answer = sign_in
        .passkey(passkey("alice-id", false, false), &world)
        .await
        .unwrap();
    // A code is one more thing held: only the password adds what is missing.
    assert_eq!(answer, Answer::Continue(Next::FirstFactor));
    let signed_in = success(sign_in.password(secret("right"), &world).await.unwrap());
    assert_eq!(signed_in.amr, ["hwk", "pwd", "mfa"]);
}

fn reset(policy: MfaPolicy) -> SignIn {
    SignIn::for_reset("alice-id", "link-hash", policy, LIMITS, NOW)
}

#[tokio::test]
async fn a_reset_of_an_account_with_a_second_factor_asks_for_it_and_takes_no_password() {
    let world = World::with_codes();
    for policy in [OPTIONAL, MfaPolicy::Required] {
        let mut check = reset(policy);
        assert_eq!(
            check.resume(&world).await.unwrap(),
            Answer::Continue(Next::SecondFactor(vec![
                Factor::OneTimeCode,
                Factor::RecoveryCode
            ]))
        );
        // The link stood in for the password: no password step to go around the code.
        assert!(check.password(secret("right"), &world).await.is_err());
        assert_eq!(
            check
                .code(CodeKind::OneTime, secret("000000"), &world)
                .await
                .unwrap(),
            Answer::Denied(Denied::WrongCode)
        );
        let passed = success(
            check
                .code(CodeKind::OneTime, secret("123456"), &world)
                .await
                .unwrap(),
        );
        assert_eq!(passed.resets.as_deref(), Some("link-hash"));
        assert_eq!(passed.user_id, "alice-id");
    }
    // The code went through the code throttle, as a sign-in's does.
    assert!(world.called("reserve_code_attempt alice-id otp"));
    assert!(!world.called("check_password"));
}

#[tokio::test]
async fn a_reset_asks_for_the_accounts_second_factor_whatever_the_servers_policy() {
    // `mfa = off` says what a sign-in asks; a reset is no sign-in (issue 23 §3).
    let world = World::with_codes();
    let mut check = reset(MfaPolicy::Off);
    assert_eq!(
        check.resume(&world).await.unwrap(),
        Answer::Continue(Next::SecondFactor(vec![
            Factor::OneTimeCode,
            Factor::RecoveryCode
        ]))
    );
    assert!(check.password(secret("right"), &world).await.is_err());
    let passed = success(
        check
            .code(CodeKind::OneTime, secret("123456"), &world)
            .await
            .unwrap(),
    );
    assert_eq!(passed.resets.as_deref(), Some("link-hash"));
}

#[tokio::test]
async fn a_reset_code_is_throttled_like_a_sign_ins() {
    let world = World::with_codes();
    world.code_attempts.set(CodeAttempts {
        for_account: 1000,
        from_address: 1000,
    });
    let mut check = reset(OPTIONAL);
    check.resume(&world).await.unwrap();
    assert_eq!(
        check
            .code(CodeKind::OneTime, secret("123456"), &world)
            .await
            .unwrap(),
        Answer::Denied(Denied::Throttled)
    );
    assert!(!world.called("use_one_time_code"));
}

#[tokio::test]
async fn a_reset_of_an_account_without_a_second_factor_asks_nothing_more_nor_an_enrolment() {
    let world = World {
        factors: Some(AccountFactors {
            mfa_required: true,
            recovery_codes: true,
            ..AccountFactors::default()
        }),
        ..World::new()
    };
    for policy in [OPTIONAL, MfaPolicy::Required] {
        let passed = success(reset(policy).resume(&world).await.unwrap());
        assert_eq!(passed.resets.as_deref(), Some("link-hash"));
    }
    // With second factors turned off, a sign-in asks for none; a reset still asks
    // for the account's own: the policy is no way around them.
    let with_codes = World::with_codes();
    assert!(matches!(
        reset(MfaPolicy::Off).resume(&with_codes).await.unwrap(),
        Answer::Continue(Next::SecondFactor(_))
    ));
    // A disabled account resets nothing.
    let disabled = World {
        factors: Some(AccountFactors {
            disabled: true,
            ..AccountFactors::default()
        }),
        ..World::new()
    };
    assert!(matches!(
        reset(OPTIONAL).resume(&disabled).await.unwrap(),
        Answer::Denied(Denied::Disabled { .. })
    ));
}

#[tokio::test]
async fn a_step_up_of_a_one_factor_passkey_session_does_not_make_its_passkey_verifying() {
    // A session that a passkey without user verification signed in (one factor): its
    // step-up must ask for the password, not take the passkey for a verifying one.
    let world = World::with_codes();
    let mut session = password_session(NOW - 60);
    session.amr = vec!["swk".into()];
    session.methods = vec![MethodUse {
        amr: "swk".into(),
        at: NOW - 60,
    }];
    session.level = ONE;
    let mut sign_in = SignIn::step_up(&session, TWO, OPTIONAL, LIMITS, NOW);
    assert!(sign_in.proofs.iter().all(|p| !p.user_verified));
    assert_eq!(
        sign_in.resume(&world).await.unwrap(),
        Answer::Continue(Next::FirstFactor)
    );
}

#[test]
fn a_two_factor_session_by_password_and_passkey_keeps_its_passkey_as_it_was() {
    // Two factors by the password and a passkey: the passkey is not to be taken for one
    // that verified its user (alone, later, it would be two factors by itself).
    let mut session = password_session(NOW - 60);
    session.amr = vec!["pwd".into(), "hwk".into(), "mfa".into()];
    session.methods = vec![
        MethodUse {
            amr: "pwd".into(),
            at: NOW - 60,
        },
        MethodUse {
            amr: "hwk".into(),
            at: NOW - 30,
        },
    ];
    session.level = TWO;
    let sign_in = SignIn::step_up(&session, TWO, OPTIONAL, LIMITS, NOW);
    assert!(sign_in.proofs.iter().all(|p| !p.user_verified));
    assert_eq!(level_of(&sign_in.proofs), TWO);
}

#[test]
fn a_step_up_names_the_session_it_steps_up_and_a_sign_in_none() {
    let session = password_session(NOW - 60);
    let step_up = SignIn::step_up(&session, TWO, OPTIONAL, LIMITS, NOW);
    assert_eq!(step_up.steps_up(), Some(token_hash("cookie").as_str()));
    assert_eq!(begin(TWO, OPTIONAL).steps_up(), None);
}

#[test]
fn a_sign_in_remembers_the_enrolment_it_shows() {
    let mut sign_in = begin(TWO, MfaPolicy::Required);
    assert_eq!(sign_in.enrolling(), None);
    sign_in.show_enrolment("sealed-key".into());
    assert_eq!(sign_in.enrolling(), Some("sealed-key"));
}

#[tokio::test]
async fn a_sign_in_tells_whom_its_factors_speak_for_and_what_the_account_has() {
    let world = World::with_codes();
    let mut sign_in = begin(ONE, OPTIONAL);
    assert_eq!(sign_in.username(), "alice");
    assert_eq!(sign_in.user_id(), None);
    assert_eq!(sign_in.account_factors(), AccountFactors::default());
    sign_in.password(secret("right"), &world).await.unwrap();
    assert_eq!(sign_in.user_id(), Some("alice-id"));
    let factors = sign_in.account_factors();
    assert!(factors.one_time_codes && factors.recovery_codes && !factors.passkeys);
}
