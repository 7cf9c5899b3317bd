//! Mail delivery: a background task on every instance drains the mail outbox, as
//! `logout_delivery` drains the logout one. A claim leases a mail to one instance, so
//! each is sent once however many instances run (at least once: an instance that dies
//! mid-send leaves the mail to be claimed again when its lease runs out). A failed
//! attempt is retried with backoff (`mail::retry_delay`); a permanent refusal, or the
//! last attempt, gives the mail up with a metric and a warning. Nothing here blocks a
//! request: the request queued the mail in its store call and woke this task.

use std::sync::{Arc, Weak};
use std::time::Duration;

use tokio::sync::Notify;

use crate::crypto::kek::KeyEncryptionKey;
use crate::domain::{Clock, UnixTime};
use crate::mail::{Mailer, Outgoing, Sent, retry_delay};
use crate::metrics::{MailOutcome, Metrics};
use crate::store::{DeliveryOutcome, QueuedMail, Store};

/// How often the outbox is looked at when nothing wakes the task (mail queued by another
/// instance or by the command line, retries falling due).
const POLL_INTERVAL: Duration = Duration::from_secs(1);
/// How long a claimed mail is ours: longer than a whole batch may take to send (each
/// mail at most `mail::SEND_TIMEOUT`), so no other instance claims a mail while it is
/// being sent. An instance that dies leaves its mail to others after this.
pub const LEASE: i64 = 600;
const BATCH: i64 = 5;

/// Wakes this instance's delivery task at once (after a request queued mail) rather
/// than at its next poll.
#[derive(Clone, Default)]
pub struct MailOutbox {
    wake: Arc<Notify>,
}

impl MailOutbox {
    pub fn wake(&self) {
        self.wake.notify_one();
    }
}

/// One instance's deliverer: claims due mail, sends it, settles it.
pub struct MailDelivery {
    store: Weak<dyn Store>,
    mailer: Arc<Mailer>,
    kek: Arc<KeyEncryptionKey>,
    clock: Arc<dyn Clock>,
    metrics: Arc<Metrics>,
}

/// What one pass did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Pass {
    pub claimed: usize,
    pub sent: usize,
    pub failed: usize,
    pub given_up: usize,
}

/// How an attempt ended, for the outbox and the log.
enum Attempt {
    Sent(Sent),
    Failed { error: String, permanent: bool },
}

impl MailDelivery {
    pub fn new(
        store: Weak<dyn Store>,
        mailer: Arc<Mailer>,
        kek: Arc<KeyEncryptionKey>,
        clock: Arc<dyn Clock>,
        metrics: Arc<Metrics>,
    ) -> Self {
        Self {
            store,
            mailer,
            kek,
            clock,
            metrics,
        }
    }

    /// Starts the delivery task; it ends when the store is dropped.
    pub fn spawn(self) -> MailOutbox {
        let outbox = MailOutbox::default();
        let wake = outbox.wake.clone();
        let delivery = Arc::new(self);
        tokio::spawn(async move {
            loop {
                match delivery.pass().await {
                    Some(pass) if pass.claimed as i64 == BATCH => continue,
                    Some(_) => {}
                    None => return,
                }
                tokio::select! {
                    _ = wake.notified() => {}
                    _ = tokio::time::sleep(POLL_INTERVAL) => {}
                }
            }
        });
        outbox
    }

    /// One pass: claims the mail due now and attempts each. `None` once the store is gone.
    pub async fn pass(&self) -> Option<Pass> {
        let store = self.store.upgrade()?;
        let now = self.clock.now();
        let claimed = {
            let store = store.clone();
            tokio::task::spawn_blocking(move || store.claim_mail(now, now + LEASE, BATCH)).await
        };
        let batch = match claimed {
            Ok(Ok(batch)) => batch,
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "could not read the mail outbox");
                return Some(Pass::default());
            }
            Err(e) => {
                tracing::warn!(error = %e, "could not read the mail outbox");
                return Some(Pass::default());
            }
        };
        let mut pass = Pass {
            claimed: batch.len(),
            ..Pass::default()
        };
        // One after the other: a mail server is better served so, and a batch is small.
        for mail in batch {
            match self.deliver(&store, mail).await {
                MailOutcome::Sent => pass.sent += 1,
                MailOutcome::Failed => pass.failed += 1,
                MailOutcome::GivenUp => pass.given_up += 1,
            }
        }
        Some(pass)
    }

    async fn deliver(&self, store: &Arc<dyn Store>, mail: QueuedMail) -> MailOutcome {
        let attempt = match Outgoing::open(&mail, &self.kek) {
            Ok(Some(outgoing)) => match self.mailer.send(&mail.id, &outgoing).await {
                Ok(sent) => {
                    if let (Sent::File(path), Some((link, _))) = (&sent, outgoing.kind.link()) {
                        // Only without an SMTP server (a laptop): the person trying it
                        // out follows the link from the log.
                        tracing::info!(
                            file = %path.display(),
                            kind = %mail.kind,
                            link = %link.expose(),
                            "mail written to a file (no smtp_url); its link"
                        );
                    }
                    Attempt::Sent(sent)
                }
                Err(e) => Attempt::Failed {
                    error: e.message,
                    permanent: e.permanent,
                },
            },
            // Settled by another claim meanwhile: nothing is left to send.
            Ok(None) => Attempt::Failed {
                error: "the message is gone".into(),
                permanent: true,
            },
            Err(e) => Attempt::Failed {
                error: e.to_string(),
                permanent: true,
            },
        };
        self.settle(store, &mail, attempt, self.clock.now()).await
    }

    async fn settle(
        &self,
        store: &Arc<dyn Store>,
        mail: &QueuedMail,
        attempt: Attempt,
        now: UnixTime,
    ) -> MailOutcome {
        let (domain, kind, attempts) = (&mail.recipient_domain, &mail.kind, mail.attempts);
        let (outcome, error, retry_at) = match attempt {
            Attempt::Sent(sent) => {
                let via = match sent {
                    Sent::Smtp => "smtp",
                    Sent::File(_) => "file",
                };
                tracing::info!(recipient_domain = %domain, kind = %kind, attempts, via, "mail sent");
                (MailOutcome::Sent, None, None)
            }
            Attempt::Failed { error, permanent } => {
                match retry_delay(attempts).filter(|_| !permanent) {
                    Some(delay) => {
                        tracing::warn!(recipient_domain = %domain, kind = %kind, attempts, retry_in = delay, error = %error, "mail not sent; will retry");
                        (MailOutcome::Failed, Some(error), Some(now + delay))
                    }
                    None => {
                        tracing::warn!(recipient_domain = %domain, kind = %kind, attempts, permanent, error = %error, "mail given up");
                        (MailOutcome::GivenUp, Some(error), None)
                    }
                }
            }
        };
        self.metrics.mail(outcome, kind);
        let (id, store) = (mail.id.clone(), store.clone());
        let settled = tokio::task::spawn_blocking(move || {
            let outcome = match &error {
                None => DeliveryOutcome::Delivered,
                Some(error) => DeliveryOutcome::Failed { error, retry_at },
            };
            store.settle_mail(&id, attempts, outcome, now)
        })
        .await;
        match settled {
            Ok(Ok(true)) => {}
            // The lease ran out and another claim took the mail: it decides.
            Ok(Ok(false)) => {
                tracing::warn!(recipient_domain = %domain, kind = %kind, "a mail's lease ran out while it was being sent")
            }
            // The lease runs out and the mail is tried again: at least once, not exactly
            // once, when the database fails at this moment.
            _ => {
                tracing::warn!(recipient_domain = %domain, kind = %kind, "could not record a mail attempt")
            }
        }
        outcome
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_whole_batch_is_sent_or_timed_out_before_its_lease_runs_out() {
        let longest = crate::mail::SEND_TIMEOUT.as_secs() as i64 * BATCH;
        assert!(longest < LEASE, "{longest} s against a lease of {LEASE} s");
    }
}
