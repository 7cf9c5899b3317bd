//! Mail that is delivered (issue 23, part 1): the messages the provider sends, as a typed
//! enum; how each is worded (askama templates with a text and an HTML part, English and
//! French, the operator's brand); how it waits in the outbox (sealed under the
//! key-encryption key); and how it leaves (SMTP through lettre over rustls on aws-lc-rs,
//! or `.eml` files on a laptop).
//!
//! A use-case sends mail by queueing it in its store call ([`Outgoing::queue`],
//! `MailStore::enqueue_mail`) and waking the delivery task; the request never waits for
//! an SMTP server. The task that drains the outbox is `mail_delivery`.

mod message;
mod render;
mod transport;

pub use message::{EmailAddress, Link, Locale, MailKind, Outgoing};
pub use render::{Rendered, render};
pub use transport::{Mailer, SEND_TIMEOUT, SendError, Sent};

use crate::crypto::kek::KekError;
use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum MailError {
    #[error("not an email address")]
    Address,
    #[error("a link in a mail must be an absolute http(s) URL")]
    Link,
    #[error("the message could not be sealed or opened: {0}")]
    Sealing(#[from] KekError),
    #[error("the sealed message is not one we wrote: {0}")]
    Malformed(String),
    #[error("the message could not be written: {0}")]
    Render(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("configuration: {key}: {message}")]
    Config { key: &'static str, message: String },
}

/// Attempts after which a mail is given up (counted over its claims).
pub const MAX_ATTEMPTS: i32 = 8;

/// Seconds until the next attempt after `attempts` failed ones (1, 2, 4 … 64 minutes:
/// about two hours in all), or `None` when that was the last.
pub fn retry_delay(attempts: i32) -> Option<i64> {
    (attempts < MAX_ATTEMPTS).then(|| 60_i64 << (attempts - 1).clamp(0, 10))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attempts_back_off_for_about_two_hours_then_stop() {
        let delays: Vec<_> = (1..=MAX_ATTEMPTS).map(retry_delay).collect();
        assert_eq!(
            delays,
            [60, 120, 240, 480, 960, 1920, 3840]
                .map(Some)
                .into_iter()
                .chain([None])
                .collect::<Vec<_>>()
        );
        let total: i64 = delays.iter().flatten().sum();
        assert_eq!(total, 7620);
    }
}
