//! The sign-in's ports over HTTP state (`protocol::sign_in::SignInPorts`): the throttle's
//! counters and queues in the session store, the account and its factors on the blocking
//! pool, argon2 on the hashing threads. Every page that answers a sign-in step (the login
//! form, the second factor, a passkey, a reset's check) runs it through these.

use std::time::Duration;

use actix_web::HttpRequest;

use crate::crypto::password::{Checked, check_password_async, hash_kind};
use crate::domain::{Secret, UnixTime};
use crate::http::client_address::{client_address_of, limit_key};
use crate::http::interaction::bound_browser;
use crate::http::state::{State, blocking};
use crate::protocol::interaction::Interaction;

use crate::protocol::OAuthError;
use crate::protocol::sign_in::{
    Account, AccountFactors, CodeAttempts, CodeKind, PasswordCheck, SignInPorts, ThrottleLimits,
    stored,
};
use crate::protocol::throttle;
use crate::sessions::{LoginAttempts, Sessions};

/// How long a browser that signed in to an account skips the account-wide login queue
/// and the per-address limits.
const KNOWN_BROWSER_TTL: Duration = Duration::from_secs(90 * 86_400);

/// Takes a place in each queue the throttle named (the address's, then the account's)
/// and waits for the later of the two; `false` when a queue is too long to wait in.
async fn wait_in_queues(
    state: &State,
    username: &str,
    source: &str,
    account_spacing: Option<Duration>,
    source_spacing: Option<Duration>,
) -> Result<bool, OAuthError> {
    let mut wait = Duration::ZERO;
    if let Some(spacing) = source_spacing {
        let slot = state
            .sessions
            .queue_login_from(source, spacing, throttle::MAX_WAIT, throttle::WINDOW)
            .await?;
        match slot {
            Some(w) => wait = wait.max(w),
            None => return Ok(false),
        }
    }
    if let Some(spacing) = account_spacing {
        let slot = state
            .sessions
            .queue_login(username, spacing, throttle::MAX_WAIT, throttle::WINDOW)
            .await?;
        match slot {
            Some(w) => wait = wait.max(w),
            None => return Ok(false),
        }
    }
    tokio::time::sleep(wait).await;
    Ok(true)
}

/// The sign-in's I/O for one post of a sign-in form (`protocol::sign_in` decides): the
/// throttle's counters and queues in the session store, the account and its factors on
/// the blocking pool, argon2 on the hashing threads.
pub(super) struct FormPorts<'a> {
    state: &'a State,
    /// The client address's limit key (`limit_key`).
    source: String,
    /// The browser's id, when it is the browser the interaction is bound to.
    browser: Option<String>,
}

impl<'a> FormPorts<'a> {
    pub(super) fn new(state: &'a State, req: &HttpRequest, pending: &Interaction) -> Self {
        let address = client_address_of(req, &state.settings);
        Self {
            state,
            source: limit_key(&address),
            browser: bound_browser(pending, req, state),
        }
    }
}

/// The limits of the throttle that are settings.
pub(super) fn throttle_limits(state: &State) -> ThrottleLimits {
    ThrottleLimits {
        failures_per_address: state.settings.password_failures_per_address,
    }
}

impl FormPorts<'_> {
    /// Keeps a failure's counter keys in the database (`store_loss` restores the
    /// counts from them). A failure to keep it costs only that: the counts in the
    /// session store are what refuse guesses, and the answer is a refusal anyway.
    async fn record_failure(&self, keys: Vec<String>) -> Result<(), OAuthError> {
        let now = self.now();
        let recorded = blocking(self.state, move |ctx| {
            Ok(ctx.store.record_login_failure(&keys, now)?)
        })
        .await;
        if let Err(e) = recorded {
            tracing::warn!(error = %e, "could not record a failed sign-in attempt");
        }
        Ok(())
    }

    /// The browser, when its attempts are counted on their own (it signed in to the
    /// account before).
    fn counted_browser(&self, known_browser: bool) -> Option<&str> {
        self.browser.as_deref().filter(|_| known_browser)
    }
}

impl SignInPorts for FormPorts<'_> {
    async fn is_known_browser(&self, username: &str) -> Result<bool, OAuthError> {
        match &self.browser {
            Some(b) => Ok(self.state.sessions.is_known_browser(username, b).await?),
            None => Ok(false),
        }
    }

    async fn reserve_attempt(
        &self,
        username: &str,
        known_browser: bool,
    ) -> Result<LoginAttempts, OAuthError> {
        let browser = self.counted_browser(known_browser);
        Ok(self
            .state
            .sessions
            .reserve_login(username, &self.source, browser, throttle::WINDOW)
            .await?)
    }

    async fn wait_in_queues(
        &self,
        username: &str,
        account: Option<Duration>,
        source: Option<Duration>,
    ) -> Result<bool, OAuthError> {
        wait_in_queues(self.state, username, &self.source, account, source).await
    }

    async fn check_password(
        &self,
        username: &str,
        password: Secret<String>,
    ) -> Result<PasswordCheck, OAuthError> {
        // argon2id (~9 ms of CPU, 19 MiB) runs on the hashing threads (crypto::password),
        // a bounded number waiting at a time so that a flood of logins queues instead of
        // piling up. An unknown user is checked against a dummy hash so both failures take
        // the same time.
        let _permit = self
            .state
            .password_checks
            .acquire()
            .await
            .map_err(OAuthError::server)?;
        let lookup = username.to_owned();
        let user = blocking(self.state, move |ctx| {
            Ok(ctx.store.find_user_by_username(&lookup)?)
        })
        .await?;
        let stored = user.as_ref().map(|u| u.password_hash.clone());
        let checked = check_password_async(password, stored.clone()).await;
        Ok(match (user, checked) {
            (Some(user), Checked::Right { upgraded }) => {
                if let (Some(upgraded), Some(verified)) = (upgraded, stored) {
                    upgrade_password(self.state, &user.id, verified, upgraded).await;
                }
                PasswordCheck::Right(Account {
                    disabled: user.disabled_at.is_some(),
                    user_id: user.id,
                })
            }
            _ => PasswordCheck::Wrong,
        })
    }

    async fn attempt_succeeded(
        &self,
        username: &str,
        known_browser: bool,
    ) -> Result<(), OAuthError> {
        let browser = self.counted_browser(known_browser);
        self.state
            .sessions
            .login_succeeded(username, &self.source, browser, throttle::WINDOW)
            .await?;
        if let Some(b) = &self.browser {
            self.state
                .sessions
                .remember_browser(username, b, KNOWN_BROWSER_TTL)
                .await?;
        }
        Ok(())
    }

    async fn attempt_failed(&self, username: &str, known_browser: bool) -> Result<(), OAuthError> {
        let keys = Sessions::login_failure_keys(
            username,
            &self.source,
            self.counted_browser(known_browser),
        );
        self.record_failure(keys).await
    }

    async fn code_attempt_failed(&self, user_id: &str, kind: CodeKind) -> Result<(), OAuthError> {
        let keys = Sessions::code_failure_keys(kind.as_str(), user_id, &self.source);
        self.record_failure(keys).await
    }

    async fn account_factors(&self, user_id: &str) -> Result<Option<AccountFactors>, OAuthError> {
        let user_id = user_id.to_owned();
        blocking(self.state, move |ctx| {
            stored::account_factors(ctx, &user_id)
        })
        .await
    }

    async fn reserve_code_attempt(
        &self,
        user_id: &str,
        kind: CodeKind,
    ) -> Result<CodeAttempts, OAuthError> {
        let (for_account, from_address) = self
            .state
            .sessions
            .reserve_code(kind.as_str(), user_id, &self.source, throttle::WINDOW)
            .await?;
        Ok(CodeAttempts {
            for_account,
            from_address,
        })
    }

    async fn code_attempt_succeeded(
        &self,
        user_id: &str,
        kind: CodeKind,
    ) -> Result<(), OAuthError> {
        Ok(self
            .state
            .sessions
            .code_succeeded(kind.as_str(), user_id, &self.source, throttle::WINDOW)
            .await?)
    }

    async fn use_one_time_code(
        &self,
        user_id: &str,
        code: &Secret<String>,
        enrolling: Option<&str>,
    ) -> Result<bool, OAuthError> {
        let (user_id, code) = (user_id.to_owned(), code.clone());
        let enrolling = enrolling.map(str::to_owned);
        blocking(self.state, move |ctx| {
            stored::use_one_time_code(ctx, &user_id, code.expose(), enrolling.as_deref())
        })
        .await
    }

    async fn use_recovery_code(
        &self,
        user_id: &str,
        code: &Secret<String>,
    ) -> Result<bool, OAuthError> {
        let (user_id, code) = (user_id.to_owned(), code.clone());
        blocking(self.state, move |ctx| {
            stored::use_recovery_code(ctx, &user_id, code.expose())
        })
        .await
    }

    fn now(&self) -> UnixTime {
        self.state.now()
    }
}

/// Stores `upgraded` (our argon2id of the password that just verified) in place of
/// `verified`, unless the stored hash changed meanwhile. A failure is logged and the
/// sign-in goes on: the old hash still works, and the next sign-in tries again.
async fn upgrade_password(state: &State, user_id: &str, verified: String, upgraded: String) {
    let from = hash_kind(&verified).map_or("unknown", |k| k.as_str());
    let id = user_id.to_owned();
    let stored = blocking(state, move |ctx| {
        Ok(ctx.store.upgrade_password_hash(&id, &verified, &upgraded)?)
    })
    .await;
    match stored {
        Ok(true) => crate::audit::password_upgraded(user_id, from),
        Ok(false) => {}
        Err(e) => {
            tracing::warn!(sub = user_id, error = %e, "could not store the upgraded password hash")
        }
    }
}
