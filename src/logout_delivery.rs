//! Back-channel logout delivery (OIDC Back-Channel Logout 1.0 §2.5): a background task
//! on every instance drains the outbox that ending a session filled, and ends sessions
//! whose time ran out (so that they are announced too).
//!
//! The outbox is in the database, so a logout survives a restart between the sign-out
//! and its delivery; a claim leases a row to one instance, so each client gets one POST
//! per ended session however many instances run. Nothing here blocks a user's page.

use std::sync::{Arc, Weak};
use std::time::Duration;

use tokio::sync::Notify;

use crate::client_keys::{allowed_literal, outbound_client};
use crate::crypto::kek::KeyEncryptionKey;
use crate::domain::{Clock, UnixTime};
use crate::keyring::KeyRing;
use crate::metrics::Metrics;
use crate::protocol::logout::{logout_token, retry_delay};
use crate::store::{DeliveryOutcome, LogoutDelivery, Store};

/// How often the outbox is looked at when nothing wakes the task.
const POLL_INTERVAL: Duration = Duration::from_secs(1);
/// How long a claimed delivery is ours: an instance that dies mid-delivery leaves it to
/// be claimed again after this.
const LEASE: i64 = 60;
const BATCH: i64 = 20;
/// Expired sessions ended (and announced) per pass.
const EXPIRED_BATCH: i64 = 100;

/// Wakes the delivery task at once (after a sign-out on this instance) rather than at
/// its next poll.
#[derive(Clone, Default)]
pub struct Outbox {
    wake: Arc<Notify>,
}

impl Outbox {
    pub fn wake(&self) {
        self.wake.notify_one();
    }
}

struct Deliverer {
    store: Weak<dyn Store>,
    keys: Weak<KeyRing>,
    kek: Arc<KeyEncryptionKey>,
    issuer: String,
    clock: Arc<dyn Clock>,
    metrics: Arc<Metrics>,
    http: reqwest::Client,
    allow_loopback: bool,
}

/// Starts the delivery task; it ends when the store is dropped.
pub fn spawn(
    store: Weak<dyn Store>,
    keys: Weak<KeyRing>,
    kek: Arc<KeyEncryptionKey>,
    issuer: String,
    clock: Arc<dyn Clock>,
    metrics: Arc<Metrics>,
    allow_loopback: bool,
) -> anyhow::Result<Outbox> {
    let outbox = Outbox::default();
    let deliverer = Arc::new(Deliverer {
        store,
        keys,
        kek,
        issuer,
        clock,
        metrics,
        http: outbound_client(allow_loopback, 1)?,
        allow_loopback,
    });
    let wake = outbox.wake.clone();
    tokio::spawn(async move {
        loop {
            match deliverer.clone().pass().await {
                Some(true) => continue,
                Some(false) => {}
                None => return,
            }
            tokio::select! {
                _ = wake.notified() => {}
                _ = tokio::time::sleep(POLL_INTERVAL) => {}
            }
        }
    });
    Ok(outbox)
}

impl Deliverer {
    /// One pass: ends expired sessions, claims due deliveries and attempts them. `None`
    /// once the store is gone; `Some(true)` if there may be more due at once.
    async fn pass(self: Arc<Self>) -> Option<bool> {
        let store = self.store.upgrade()?;
        let now = self.clock.now();
        let claimed = tokio::task::spawn_blocking(move || {
            // Independent: a failing sweep must not hold up deliveries.
            if let Err(e) = store.end_expired_sessions(now, EXPIRED_BATCH) {
                tracing::warn!(error = %e, "could not end expired sessions");
            }
            store.claim_logout_deliveries(now, now + LEASE, BATCH)
        })
        .await;
        let batch = match claimed {
            Ok(Ok(batch)) => batch,
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "could not read the logout outbox");
                return Some(false);
            }
            Err(e) => {
                tracing::warn!(error = %e, "could not read the logout outbox");
                return Some(false);
            }
        };
        let full = batch.len() as i64 == BATCH;
        let mut attempts = tokio::task::JoinSet::new();
        for delivery in batch {
            attempts.spawn(self.clone().deliver(delivery));
        }
        while attempts.join_next().await.is_some() {}
        Some(full)
    }

    async fn deliver(self: Arc<Self>, delivery: LogoutDelivery) {
        let Some(store) = self.store.upgrade() else {
            return;
        };
        let client_id = delivery.client_id.clone();
        let client = {
            let store = store.clone();
            tokio::task::spawn_blocking(move || store.find_client(&client_id)).await
        };
        let now = self.clock.now();
        let outcome = match client {
            Ok(Ok(Some(client))) => match &client.backchannel_logout {
                Some(logout) => match self.keys.upgrade() {
                    Some(keys) => {
                        match logout_token(
                            &client,
                            &delivery.subject,
                            &delivery.sid,
                            &self.issuer,
                            &keys.current(),
                            &self.kek,
                            now,
                        ) {
                            Ok(token) => self.post(&logout.uri, token).await,
                            Err(e) => Err(format!("cannot sign a logout token: {e}")),
                        }
                    }
                    None => return,
                },
                None => Err("the client no longer has a backchannel_logout_uri".into()),
            },
            // Removed clients take their outbox rows with them.
            Ok(Ok(None)) => return,
            Ok(Err(e)) => Err(format!("cannot read the client: {e}")),
            Err(e) => Err(format!("cannot read the client: {e}")),
        };
        self.settle(store, &delivery, outcome, now).await;
    }

    /// §2.5: "The OP sends an HTTP POST request to the RP's back-channel logout URI" with
    /// `logout_token` form-encoded; the RP answers 200 (we take any 2xx).
    async fn post(&self, uri: &str, token: String) -> Result<(), String> {
        if !allowed_literal(uri, self.allow_loopback) {
            return Err("the back-channel logout URI is not a public address".into());
        }
        let response = self
            .http
            .post(uri)
            .form(&[("logout_token", token)])
            .send()
            .await
            // Without the URL: a request error prints it, and the log needs only the client.
            .map_err(|e| e.without_url().to_string())?;
        if response.status().is_success() {
            Ok(())
        } else {
            Err(format!("HTTP {}", response.status().as_u16()))
        }
    }

    async fn settle(
        &self,
        store: Arc<dyn Store>,
        delivery: &LogoutDelivery,
        result: Result<(), String>,
        now: UnixTime,
    ) {
        let (id, client_id, attempts) = (
            delivery.id.clone(),
            delivery.client_id.clone(),
            delivery.attempts,
        );
        let retry_at = retry_delay(attempts).map(|delay| now + delay);
        let outcome = match &result {
            Ok(()) => {
                self.metrics.logout_delivery("delivered");
                tracing::info!(client_id = %client_id, attempts, "back-channel logout delivered");
                "delivered"
            }
            Err(error) if retry_at.is_some() => {
                self.metrics.logout_delivery("retried");
                tracing::warn!(client_id = %client_id, attempts, error = %error, "back-channel logout failed; will retry");
                "retried"
            }
            Err(error) => {
                self.metrics.logout_delivery("failed");
                tracing::error!(client_id = %client_id, attempts, error = %error, "back-channel logout given up");
                "failed"
            }
        };
        let settled = tokio::task::spawn_blocking(move || {
            let outcome = match &result {
                Ok(()) => DeliveryOutcome::Delivered,
                Err(error) => DeliveryOutcome::Failed { error, retry_at },
            };
            store.settle_logout_delivery(&id, outcome, now)
        })
        .await;
        if !matches!(settled, Ok(Ok(()))) {
            // The lease runs out and the delivery is tried again: at least once, not
            // exactly once, when the database fails at this moment.
            tracing::warn!(client_id = %delivery.client_id, outcome, "could not record a back-channel logout attempt");
        }
    }
}
