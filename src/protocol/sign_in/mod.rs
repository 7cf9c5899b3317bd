//! The sign-in as a use-case: who is signing in, which factors are done and which are
//! still needed, and what the browser session earns by it (`amr`, RFC 8176; `auth_time`
//! and `acr`, OIDC Core §2).
//!
//! Modelled on Kanidm's `authsession`: each step is answered by one typed handler, with
//! [`Answer::Success`], [`Answer::Continue`] (what is asked next) or [`Answer::Denied`]
//! (why). The first factor is a password or a passkey. Once it names the account, the
//! level the sign-in must reach ([`Level`]: asked by the request, the client, the
//! server's `mfa` policy or the account's own) decides whether a second factor is asked:
//! one the account has (a one-time code, a recovery code, a passkey), or, for an account
//! with none, an enrolment. A step-up starts from the session's own proofs
//! ([`SignIn::step_up`]) and asks only for what is missing.
//!
//! Plain Rust: the throttle's counters and queues, the accounts, the factors and the
//! password hasher sit behind [`SignInPorts`], which the HTTP adapter implements and the
//! tests fake. A sign-in waiting for its next step is kept (serialized) with the
//! interaction, bound to its browser. The browser session it leads to is decided here too
//! ([`session_after`]); the adapter stores it and sets the cookie.

mod session;
pub mod stored;

use std::time::Duration;

use serde::{Deserialize, Serialize};

pub use session::{NewSession, new_sid, recent_enough, session_after};

use super::OAuthError;
pub use super::throttle::CodeAttempts;
use super::throttle::{self, Throttle};
use crate::crypto::tokens::token_hash;
use crate::domain::{Level, MethodUse, MfaPolicy, Secret, UnixTime};
use crate::sessions::{LoginAttempts, SsoSession};

/// One proof of who the user is. Each is answered by a handler of [`SignIn`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Factor {
    Password,
    Passkey,
    OneTimeCode,
    RecoveryCode,
    /// An identity at an upstream OpenID provider whose ID token was verified (issue
    /// 24): a first factor, as a password is (`amr` `fed`, RFC 8176 §2).
    Upstream,
}

impl Factor {
    /// The factors that can come second, in the order a second-factor page offers them.
    pub const SECOND: [Factor; 3] = [Factor::OneTimeCode, Factor::Passkey, Factor::RecoveryCode];

    /// What the factor is, by the amr it records (for sessions that recorded amr only).
    fn of_amr(amr: &str) -> Option<Self> {
        match amr {
            "pwd" => Some(Self::Password),
            "hwk" | "swk" => Some(Self::Passkey),
            "otp" => Some(Self::OneTimeCode),
            "fed" => Some(Self::Upstream),
            _ => None,
        }
    }
}

/// A factor proved, and when.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Proof {
    pub factor: Factor,
    pub at: UnixTime,
    /// A passkey's authenticator verified the user (PIN or biometric; WebAuthn UV flag).
    #[serde(default)]
    pub user_verified: bool,
    /// A passkey that may be synced to other devices (WebAuthn BE flag): a software key.
    #[serde(default)]
    pub synced: bool,
}

impl Proof {
    fn of(factor: Factor, at: UnixTime) -> Self {
        Self {
            factor,
            at,
            user_verified: false,
            synced: false,
        }
    }

    /// The authentication method reference it adds to `amr` (RFC 8176 §2): `pwd`;
    /// `otp` for one-time and recovery codes (each a one-time password); `hwk` for a
    /// device-bound passkey, `swk` for one that may be synced.
    pub fn amr(&self) -> &'static str {
        match self.factor {
            Factor::Password => "pwd",
            Factor::Upstream => "fed",
            Factor::OneTimeCode | Factor::RecoveryCode => "otp",
            Factor::Passkey if self.synced => "swk",
            Factor::Passkey => "hwk",
        }
    }
}

/// Whether `factor` is a first factor that names the account and is no thing held: the
/// password, or an upstream sign-in (which stands where the password would).
fn is_first(factor: Factor) -> bool {
    matches!(factor, Factor::Password | Factor::Upstream)
}

/// The level `proofs` reach together: two factors when something known (the password,
/// or an upstream sign-in in its place) joins something held (a code, a passkey), or a
/// passkey verified its user (possession and a PIN or biometric in one step).
pub fn level_of(proofs: &[Proof]) -> Level {
    let known = proofs.iter().any(|p| is_first(p.factor));
    let held = proofs.iter().any(|p| !is_first(p.factor));
    let verifying_key = proofs
        .iter()
        .any(|p| p.factor == Factor::Passkey && p.user_verified);
    if (known && held) || verifying_key {
        Level::MultiFactor
    } else {
        Level::SingleFactor
    }
}

/// The `amr` of `proofs` (RFC 8176 §2): each method once, in the order proved, and `mfa`
/// when they reach two factors.
pub fn amr_of(proofs: &[Proof]) -> Vec<String> {
    let mut amr: Vec<String> = Vec::new();
    for proof in proofs {
        if !amr.iter().any(|a| a == proof.amr()) {
            amr.push(proof.amr().to_owned());
        }
    }
    if level_of(proofs) == Level::MultiFactor {
        amr.push("mfa".to_owned());
    }
    amr
}

/// What the sign-in asks for next.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Next {
    /// A password (with the account's name) or a passkey.
    FirstFactor,
    /// One of these second factors, which the account has (the first is the one to ask
    /// for; the page links to the others).
    SecondFactor(Vec<Factor>),
    /// The account must reach two factors but has no second factor: it enrols one, and
    /// the enrolment's first code is the proof.
    Enrol,
}

/// Why a sign-in step was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Denied {
    /// Too many attempts (see `protocol::throttle`): refused before any secret was
    /// checked.
    Throttled,
    /// No such account, or the wrong secret: the two are never told apart.
    Incorrect,
    /// The right password for a disabled account (said only to whoever knows it).
    Disabled { user_id: String },
    /// A code that is not the account's (wrong, already used, or out of its window). The
    /// sign-in goes on: the user may try again, as the throttle allows.
    WrongCode,
}

/// The answer to a step of the sign-in.
#[derive(Debug, PartialEq, Eq)]
pub enum Answer {
    /// The sign-in reached the level it must.
    Success(Authenticated),
    /// This factor is proved; the next one is asked for.
    Continue(Next),
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
    /// The level the factors reach together (`acr`).
    pub level: Level,
    /// A step-up: the hash of the session cookie it steps up.
    pub steps_up: Option<String>,
    /// A password reset's check of the account's second factors ([`SignIn::for_reset`]):
    /// the hash of its link. Such a success is never a session: it lets the reset go on.
    pub resets: Option<String>,
    /// The upstream provider the first factor came from (its `[[upstream]]` id).
    pub idp: Option<String>,
    /// Its ID token, sealed, for its logout (`end_session`); see `SsoSession`.
    pub upstream_id_token: Option<String>,
}

impl Authenticated {
    /// Each method proved and when, as the session records them.
    pub fn method_uses(&self) -> Vec<MethodUse> {
        self.proofs
            .iter()
            .map(|p| MethodUse {
                amr: p.amr().to_owned(),
                at: p.at,
            })
            .collect()
    }
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

/// What an account has that the sign-in needs to know once it names the account.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountFactors {
    pub disabled: bool,
    /// An administrator requires two factors of this account.
    pub mfa_required: bool,
    /// A confirmed TOTP credential.
    pub one_time_codes: bool,
    pub passkeys: bool,
    /// Unused recovery codes are left.
    pub recovery_codes: bool,
}

impl AccountFactors {
    /// The second factors the account has, in the order they are offered.
    pub fn second_factors(&self) -> Vec<Factor> {
        Factor::SECOND
            .into_iter()
            .filter(|f| match f {
                Factor::OneTimeCode => self.one_time_codes,
                Factor::Passkey => self.passkeys,
                Factor::RecoveryCode => self.recovery_codes,
                Factor::Password | Factor::Upstream => false,
            })
            .collect()
    }
}

/// A passkey assertion the WebAuthn ceremony verified (`protocol::passkeys`): whose it
/// is, and what its authenticator said.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifiedPasskey {
    pub user_id: String,
    pub user_verified: bool,
    pub synced: bool,
}

/// Which code a code step checks: each has its own attempt counters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CodeKind {
    OneTime,
    Recovery,
}

impl CodeKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::OneTime => "otp",
            Self::Recovery => "recovery",
        }
    }

    fn factor(self) -> Factor {
        match self {
            Self::OneTime => Factor::OneTimeCode,
            Self::Recovery => Factor::RecoveryCode,
        }
    }
}

/// The per-address limits of the throttle that are settings.
#[derive(Clone, Copy, Debug, Serialize, Deserialize)]
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
    /// A wrong password (or an unknown name, or a disabled account's right one): its
    /// attempt stays counted, and is recorded where it survives the session store, so
    /// that the counts can be restored if that store comes back empty (`store_loss`).
    /// A right answer records nothing: only failures cost the hot path a write.
    async fn attempt_failed(&self, username: &str, known_browser: bool) -> Result<(), OAuthError>;
    /// What the account has (`None`: it no longer exists).
    async fn account_factors(&self, user_id: &str) -> Result<Option<AccountFactors>, OAuthError>;
    /// Counts a code attempt, across instances, before the code is checked.
    async fn reserve_code_attempt(
        &self,
        user_id: &str,
        kind: CodeKind,
    ) -> Result<CodeAttempts, OAuthError>;
    /// A wrong code: recorded as `attempt_failed` records a wrong password.
    async fn code_attempt_failed(&self, user_id: &str, kind: CodeKind) -> Result<(), OAuthError>;
    /// Hands a right code's attempt back.
    async fn code_attempt_succeeded(&self, user_id: &str, kind: CodeKind)
    -> Result<(), OAuthError>;
    /// Checks a one-time code of the account's TOTP credential and, if right, uses its
    /// time step up (at most once, RFC 6238 §5.2); a credential being enrolled is
    /// confirmed by it.
    /// `enrolling`: the sealed key of the enrolment this sign-in showed, the only pending
    /// credential its code may confirm.
    async fn use_one_time_code(
        &self,
        user_id: &str,
        code: &Secret<String>,
        enrolling: Option<&str>,
    ) -> Result<bool, OAuthError>;
    /// Uses up one of the account's recovery codes, if `code` is one not used yet.
    async fn use_recovery_code(
        &self,
        user_id: &str,
        code: &Secret<String>,
    ) -> Result<bool, OAuthError>;
    fn now(&self) -> UnixTime;
}

/// How long a sign-in may take from its first step to its last: an interaction's life
/// (`INTERACTION_TTL`), which its pages would otherwise renew at every visit.
pub const MAX_DURATION: UnixTime = 600;

/// How recent a proof must be for an enrolment to rest on it: a session's password of an
/// hour ago does not let whoever holds the browser now add a factor (Keycloak
/// CVE-2026-37982: an enrolment must not outlive the sign-in that allowed it).
pub const RECENT: UnixTime = 300;

/// One sign-in: the account name typed, the level it must reach, the factors proved so
/// far. Kept with its interaction between steps.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SignIn {
    username: String,
    /// What the request and the client asked for, before the server's policy.
    asked: Level,
    policy: MfaPolicy,
    limits: ThrottleLimits,
    proofs: Vec<Proof>,
    /// The account the factors so far proved (`None` before the first).
    user_id: Option<String>,
    /// What that account has, read when it was named.
    #[serde(default)]
    factors: AccountFactors,
    denied: bool,
    /// When the first step was taken: a sign-in is over after [`MAX_DURATION`].
    #[serde(default)]
    started_at: UnixTime,
    /// A step-up: the hash of the session cookie it steps up, which must still be the
    /// browser's (and live) when it succeeds.
    #[serde(default)]
    steps_up: Option<String>,
    /// The sealed key of the TOTP enrolment this sign-in showed: only that one is
    /// confirmed by its code (not one begun by another page or person).
    #[serde(default)]
    enrolling: Option<String>,
    /// A password reset (the hash of its link): the link stood in for the first factor,
    /// and the account's own second factors are asked before a new password is taken.
    #[serde(default)]
    resets: Option<String>,
    /// The upstream provider whose identity was the first factor (issue 24).
    #[serde(default)]
    idp: Option<String>,
    /// The upstream's sealed ID token (`end_session`): into the session on success only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    upstream_id_token: Option<String>,
}

impl SignIn {
    /// A sign-in from the start, that must reach `asked` (the request's and the client's
    /// level) under `policy`.
    pub fn begin(
        username: &str,
        asked: Level,
        policy: MfaPolicy,
        limits: ThrottleLimits,
        now: UnixTime,
    ) -> Self {
        Self {
            username: username.trim().to_owned(),
            asked,
            policy,
            limits,
            proofs: Vec::new(),
            user_id: None,
            factors: AccountFactors::default(),
            denied: false,
            started_at: now,
            steps_up: None,
            enrolling: None,
            resets: None,
            idp: None,
            upstream_id_token: None,
        }
    }

    /// The check of a password reset (issue 23 §3): the reset link, sent to the
    /// account's address, stands in for the forgotten password, and the second factors
    /// the account has are asked exactly as a sign-in asks them (same steps, same
    /// throttles), before a new password is accepted: a reset must not be a way around
    /// them (Keycloak CVE-2026-18963). Unlike a sign-in, an account with no second factor
    /// is asked to enrol none (the next sign-in will, if the policy wants one), and an
    /// account with one is asked for it whatever the policy, `off` included.
    /// `link_hash` binds the success to the link; it never becomes a session.
    pub fn for_reset(
        user_id: &str,
        link_hash: &str,
        policy: MfaPolicy,
        limits: ThrottleLimits,
        now: UnixTime,
    ) -> Self {
        Self {
            username: String::new(),
            asked: Level::SingleFactor,
            policy,
            limits,
            proofs: vec![Proof::of(Factor::Password, now)],
            user_id: Some(user_id.to_owned()),
            factors: AccountFactors::default(),
            denied: false,
            started_at: now,
            steps_up: None,
            enrolling: None,
            resets: Some(link_hash.to_owned()),
            idp: None,
            upstream_id_token: None,
        }
    }

    /// The hash of the link a reset's check is for (`None` for a sign-in).
    pub fn resets(&self) -> Option<&str> {
        self.resets.as_deref()
    }

    /// A step-up of `session` to `asked`: the session's proofs stand, only what is
    /// missing is asked for. Call [`SignIn::resume`] for the first step.
    pub fn step_up(
        session: &SsoSession,
        asked: Level,
        policy: MfaPolicy,
        limits: ThrottleLimits,
        now: UnixTime,
    ) -> Self {
        let mut proofs: Vec<Proof> = session
            .method_uses()
            .iter()
            .filter_map(|m| {
                Factor::of_amr(&m.amr).map(|factor| Proof {
                    synced: m.amr == "swk",
                    ..Proof::of(factor, m.at)
                })
            })
            .collect();
        // A session that reached two factors by one verifying passkey keeps that level.
        if session.level == Level::MultiFactor && level_of(&proofs) < Level::MultiFactor {
            for proof in proofs.iter_mut().filter(|p| p.factor == Factor::Passkey) {
                proof.user_verified = true;
            }
        }
        Self {
            username: String::new(),
            asked,
            policy,
            limits,
            proofs,
            user_id: Some(session.user_id.clone()),
            factors: AccountFactors::default(),
            denied: false,
            started_at: now,
            steps_up: Some(token_hash(&session.id)),
            enrolling: None,
            resets: None,
            idp: session.idp.clone(),
            upstream_id_token: session.upstream_id_token.clone(),
        }
    }

    /// The hash of the session cookie a step-up steps up (`None` for a sign-in).
    pub fn steps_up(&self) -> Option<&str> {
        self.steps_up.as_deref()
    }

    /// The sealed key of the TOTP enrolment this sign-in shows.
    pub fn enrolling(&self) -> Option<&str> {
        self.enrolling.as_deref()
    }

    /// Remembers the enrolment this sign-in shows (its sealed key).
    pub fn show_enrolment(&mut self, sealed_key: String) {
        self.enrolling = Some(sealed_key);
    }

    /// A sign-in older than [`MAX_DURATION`] answers nothing more.
    fn live(&self, now: UnixTime) -> Result<(), OAuthError> {
        if now - self.started_at > MAX_DURATION {
            return Err(OAuthError::invalid_request(
                "this sign-in took too long; return to the application and start again",
            ));
        }
        Ok(())
    }

    /// The account name as typed (trimmed).
    pub fn username(&self) -> &str {
        &self.username
    }

    /// The account the factors so far speak for.
    pub fn user_id(&self) -> Option<&str> {
        self.user_id.as_deref()
    }

    /// What the named account has (default before it is named).
    pub fn account_factors(&self) -> AccountFactors {
        self.factors
    }

    /// The level this sign-in must reach: asked, raised by the account's own policy and
    /// the server's floor, never above what the server's policy reaches. An account with
    /// a one-time-code credential or a passkey asks for two factors of itself: otherwise
    /// its password alone would still be a way in.
    pub fn required(&self) -> Level {
        let held = self.factors.one_time_codes || self.factors.passkeys;
        if self.resets.is_some() {
            // Only the factors the account has, nothing to enrol; and whatever the
            // server's `mfa` policy: it says what a sign-in asks, while a reset is no
            // sign-in but a way to the account's password, which a user who has a
            // second factor must pass first (issue 23 §3), `mfa = off` or not.
            return if held {
                Level::MultiFactor
            } else {
                Level::SingleFactor
            };
        }
        let own = self.factors.mfa_required || held;
        let account = if own {
            Level::MultiFactor
        } else {
            Level::SingleFactor
        };
        self.policy.required(self.asked.max(account))
    }

    /// What is asked next; `None` once the sign-in succeeded or was denied.
    pub fn next(&self) -> Option<Next> {
        if self.denied {
            return None;
        }
        if self.proofs.is_empty() {
            return Some(Next::FirstFactor);
        }
        if level_of(&self.proofs) >= self.required() {
            return None;
        }
        // The factors the account has that would raise the level: after a passkey that
        // did not verify its user, another thing held (a code) would not.
        let current = level_of(&self.proofs);
        let offered: Vec<Factor> = self
            .factors
            .second_factors()
            .into_iter()
            .filter(|f| !self.proofs.iter().any(|p| p.factor == *f))
            .filter(|f| {
                let mut with = self.proofs.clone();
                with.push(Proof::of(*f, 0));
                level_of(&with) > current
            })
            .collect();
        let knows = self.proofs.iter().any(|p| is_first(p.factor));
        Some(if !offered.is_empty() {
            Next::SecondFactor(offered)
        } else if !knows {
            // Only the password adds what is missing.
            Next::FirstFactor
        } else {
            Next::Enrol
        })
    }

    /// Reads the account a step-up (or a sign-in kept between steps) speaks for, and
    /// says what comes next. A step-up that the session already meets succeeds at once.
    pub async fn resume(&mut self, ports: &impl SignInPorts) -> Result<Answer, OAuthError> {
        self.live(ports.now())?;
        let Some(user_id) = self.user_id.clone() else {
            return Ok(Answer::Continue(Next::FirstFactor));
        };
        self.decide(user_id, ports).await
    }

    /// The password step. The attempt is counted and judged by the throttle before the
    /// password is checked, so that guesses sent at once are all counted before any is
    /// answered, and a refused guess learns nothing.
    pub async fn password(
        &mut self,
        password: Secret<String>,
        ports: &impl SignInPorts,
    ) -> Result<Answer, OAuthError> {
        if self.next() != Some(Next::FirstFactor) {
            return Err(not_asked());
        }
        self.live(ports.now())?;
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
            PasswordCheck::Wrong => {
                ports.attempt_failed(&self.username, known_browser).await?;
                return Ok(self.deny(Denied::Incorrect));
            }
            PasswordCheck::Right(account) => account,
        };
        // The attempt stays counted: a disabled account is no way around the throttle.
        if account.disabled {
            ports.attempt_failed(&self.username, known_browser).await?;
            return Ok(self.deny(Denied::Disabled {
                user_id: account.user_id,
            }));
        }
        ports
            .attempt_succeeded(&self.username, known_browser)
            .await?;
        self.proved(
            Proof::of(Factor::Password, ports.now()),
            account.user_id,
            ports,
        )
        .await
    }

    /// A passkey the WebAuthn ceremony verified, as the first factor (it names the
    /// account) or as a second one (it must be the same account's). Not throttled like
    /// a guess: a forged assertion fails its signature, not a guess count.
    pub async fn passkey(
        &mut self,
        verified: VerifiedPasskey,
        ports: &impl SignInPorts,
    ) -> Result<Answer, OAuthError> {
        let asked = match self.next() {
            Some(Next::FirstFactor) => true,
            Some(Next::SecondFactor(offered)) => offered.contains(&Factor::Passkey),
            _ => false,
        };
        if !asked {
            return Err(not_asked());
        }
        self.live(ports.now())?;
        let proof = Proof {
            user_verified: verified.user_verified,
            synced: verified.synced,
            ..Proof::of(Factor::Passkey, ports.now())
        };
        self.proved(proof, verified.user_id, ports).await
    }

    /// Keeps the upstream's sealed ID token for the session this sign-in makes, if it
    /// succeeds (a provider with `end_session`); call before [`SignIn::upstream`].
    pub fn keep_upstream_id_token(&mut self, sealed: String) {
        self.upstream_id_token = Some(sealed);
    }

    /// An upstream identity (issue 24) whose ID token was verified and which names the
    /// local account `user_id` (linked, or made for it): the first factor. The account's
    /// own second-factor rules apply after it as after a password.
    /// `auth_time`: when the person authenticated at the upstream, if it says; the
    /// factor is dated then (not at the callback), so that a later `max_age` here counts
    /// from the real authentication.
    pub async fn upstream(
        &mut self,
        user_id: String,
        provider: &str,
        auth_time: Option<UnixTime>,
        ports: &impl SignInPorts,
    ) -> Result<Answer, OAuthError> {
        if self.next() != Some(Next::FirstFactor) || !self.proofs.is_empty() {
            return Err(not_asked());
        }
        let now = ports.now();
        self.live(now)?;
        self.idp = Some(provider.to_owned());
        let at = auth_time.filter(|t| *t <= now).unwrap_or(now);
        self.proved(Proof::of(Factor::Upstream, at), user_id, ports)
            .await
    }

    /// A one-time code (TOTP), as a second factor or to confirm the enrolment the
    /// sign-in asked for; or a recovery code, as a second factor. Each kind has its own
    /// throttle, counted before the code is checked.
    pub async fn code(
        &mut self,
        kind: CodeKind,
        code: Secret<String>,
        ports: &impl SignInPorts,
    ) -> Result<Answer, OAuthError> {
        let asked = match self.next() {
            Some(Next::SecondFactor(offered)) => offered.contains(&kind.factor()),
            Some(Next::Enrol) => kind == CodeKind::OneTime,
            _ => false,
        };
        let Some(user_id) = self.user_id.clone().filter(|_| asked) else {
            return Err(not_asked());
        };
        self.live(ports.now())?;
        let attempts = ports.reserve_code_attempt(&user_id, kind).await?;
        if !throttle::admits_code(attempts, self.limits.failures_per_address) {
            return Ok(self.deny(Denied::Throttled));
        }
        // An account disabled or removed meanwhile uses up no code.
        match ports.account_factors(&user_id).await? {
            None => return Ok(self.deny(Denied::Incorrect)),
            Some(f) if f.disabled => return Ok(self.deny(Denied::Disabled { user_id })),
            Some(_) => {}
        }
        let right = match kind {
            CodeKind::OneTime => {
                ports
                    .use_one_time_code(&user_id, &code, self.enrolling.as_deref())
                    .await?
            }
            CodeKind::Recovery => ports.use_recovery_code(&user_id, &code).await?,
        };
        if !right {
            ports.code_attempt_failed(&user_id, kind).await?;
            // The sign-in goes on: the next code is counted again.
            return Ok(Answer::Denied(Denied::WrongCode));
        }
        ports.code_attempt_succeeded(&user_id, kind).await?;
        self.proved(Proof::of(kind.factor(), ports.now()), user_id, ports)
            .await
    }

    fn deny(&mut self, reason: Denied) -> Answer {
        self.denied = true;
        Answer::Denied(reason)
    }

    /// Records `proof` for `user_id`, and says what comes next.
    async fn proved(
        &mut self,
        proof: Proof,
        user_id: String,
        ports: &impl SignInPorts,
    ) -> Result<Answer, OAuthError> {
        // Every factor must speak for the same account (a passkey names its own).
        if self.user_id.as_ref().is_some_and(|u| *u != user_id) {
            return Ok(self.deny(Denied::Incorrect));
        }
        self.user_id = Some(user_id.clone());
        self.proofs.push(proof);
        self.decide(user_id, ports).await
    }

    /// Reads what the account has, then: success once the proofs reach the level
    /// required, else the next step.
    async fn decide(
        &mut self,
        user_id: String,
        ports: &impl SignInPorts,
    ) -> Result<Answer, OAuthError> {
        let Some(factors) = ports.account_factors(&user_id).await? else {
            return Ok(self.deny(Denied::Incorrect));
        };
        if factors.disabled {
            return Ok(self.deny(Denied::Disabled { user_id }));
        }
        self.factors = factors;
        let now = ports.now();
        if self.next() == Some(Next::Enrol) && self.proofs.iter().any(|p| now - p.at > RECENT) {
            // An enrolment rests only on proofs of now: the first factor again.
            self.proofs.clear();
        }
        if let Some(next) = self.next() {
            return Ok(Answer::Continue(next));
        }
        // OIDC Core §2 `auth_time`: when the user was authenticated, which for proofs
        // made at different times is the oldest of them (a step-up does not make a
        // password of an hour ago fresh for `max_age`).
        let auth_time = self.proofs.iter().map(|p| p.at).min().unwrap_or_default();
        Ok(Answer::Success(Authenticated {
            user_id,
            amr: amr_of(&self.proofs),
            auth_time,
            level: level_of(&self.proofs),
            proofs: self.proofs.clone(),
            steps_up: self.steps_up.clone(),
            resets: self.resets.clone(),
            idp: self.idp.clone(),
            upstream_id_token: self.upstream_id_token.clone(),
        }))
    }
}

fn not_asked() -> OAuthError {
    OAuthError::invalid_request(
        "this sign-in does not ask for that now; return to the application and start again",
    )
}

#[cfg(test)]
mod tests;
