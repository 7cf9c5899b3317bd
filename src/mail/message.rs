//! The messages, typed: who gets one, in which language, and what it says.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use zeroize::Zeroize;

use super::MailError;
use crate::crypto::kek::KeyEncryptionKey;
use crate::crypto::tokens::random_uuid;
use crate::domain::{Secret, UnixTime};
use crate::store::{MailStore, QueuedMail};

/// One mail to send.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Outgoing {
    pub to: EmailAddress,
    pub locale: Locale,
    pub kind: MailKind,
}

/// What a mail says. Each kind with a link carries how long the link works, as the
/// use-case that made it decided.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum MailKind {
    /// Proves that the address is the user's: the link verifies it (issue 23 §2).
    EmailVerification {
        link: Link,
        valid_minutes: u32,
        /// The account the link acts on (the one a sign-up will create): named, so that
        /// whoever did not ask for it knows not to confirm. Absent from mails queued
        /// before it was said.
        #[serde(default)]
        username: Option<String>,
    },
    /// The link lets the user choose a new password (issue 23 §3).
    PasswordReset { link: Link, valid_minutes: u32 },
    /// Tells the user their password changed (no link: a notice).
    PasswordChanged { username: String },
    /// Tells the account's old address that a change to `new_address` was asked
    /// (`done` false) or made (`done` true): no link, a notice, so that a change the
    /// owner did not ask for does not go unseen.
    AddressChange {
        username: String,
        new_address: String,
        done: bool,
    },
    /// An administrator invites someone to create an account (issue 23 §4).
    Invitation {
        link: Link,
        valid_minutes: u32,
        /// Who invited them, as the recipient would know them (name or username).
        invited_by: String,
    },
    /// `portcullis mail test ADDRESS`: proves that mail leaves.
    Test,
}

impl MailKind {
    /// Its name in the outbox, logs and metrics.
    pub fn name(&self) -> &'static str {
        match self {
            Self::EmailVerification { .. } => "email_verification",
            Self::PasswordReset { .. } => "password_reset",
            Self::PasswordChanged { .. } => "password_changed",
            Self::AddressChange { .. } => "address_change",
            Self::Invitation { .. } => "invitation",
            Self::Test => "test",
        }
    }

    /// The link the mail carries, if any, with how long it works.
    pub fn link(&self) -> Option<(&Link, u32)> {
        match self {
            Self::EmailVerification {
                link,
                valid_minutes,
                ..
            }
            | Self::PasswordReset {
                link,
                valid_minutes,
            }
            | Self::Invitation {
                link,
                valid_minutes,
                ..
            } => Some((link, *valid_minutes)),
            Self::PasswordChanged { .. } | Self::AddressChange { .. } | Self::Test => None,
        }
    }
}

/// The languages mail is written in: those of the pages.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Locale {
    #[default]
    En,
    Fr,
}

impl Locale {
    pub const ALL: [Locale; 2] = [Locale::En, Locale::Fr];

    /// The language of a BCP 47 tag (`fr-CA` is French); `None` for one we do not write.
    pub fn from_tag(tag: &str) -> Option<Self> {
        let primary = tag.trim().split(['-', '_']).next()?.to_ascii_lowercase();
        Self::ALL.into_iter().find(|l| l.as_str() == primary)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::En => "en",
            Self::Fr => "fr",
        }
    }
}

/// A recipient's address (RFC 5322 §3.4.1 addr-spec, as lettre checks it). Its `Debug`
/// shows the domain only: logs name no person.
#[derive(Clone, PartialEq, Eq)]
pub struct EmailAddress(lettre::Address);

impl EmailAddress {
    pub fn parse(text: &str) -> Result<Self, MailError> {
        text.trim()
            .parse::<lettre::Address>()
            .map(Self)
            .map_err(|_| MailError::Address)
    }

    pub fn as_str(&self) -> &str {
        self.0.as_ref()
    }

    /// The part after the `@`: as much of the address as logs show.
    pub fn domain(&self) -> &str {
        self.0.domain()
    }

    pub(super) fn address(&self) -> &lettre::Address {
        &self.0
    }
}

impl fmt::Debug for EmailAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "EmailAddress(…@{})", self.domain())
    }
}

impl Serialize for EmailAddress {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for EmailAddress {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        Self::parse(&text).map_err(serde::de::Error::custom)
    }
}

/// A link in a mail: single-use and secret (whoever holds it may reset a password), so
/// it is a `Secret`, sealed in the outbox and logged only in the laptop's `.eml` mode.
#[derive(Clone)]
pub struct Link(Secret<String>);

impl Link {
    /// An absolute `https://` (or `http://`, for a local issuer) URL.
    pub fn new(url: String) -> Result<Self, MailError> {
        let parsed = url::Url::parse(&url).map_err(|_| MailError::Link)?;
        if !matches!(parsed.scheme(), "https" | "http") || parsed.host_str().is_none() {
            return Err(MailError::Link);
        }
        Ok(Self(Secret::new(url)))
    }

    pub fn expose(&self) -> &str {
        self.0.expose()
    }
}

impl PartialEq for Link {
    fn eq(&self, other: &Self) -> bool {
        crate::crypto::tokens::constant_time_eq(self.expose().as_bytes(), other.expose().as_bytes())
    }
}

impl Eq for Link {}

impl fmt::Debug for Link {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Link([redacted])")
    }
}

impl Serialize for Link {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.expose())
    }
}

impl<'de> Deserialize<'de> for Link {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = Secret::<String>::deserialize(d)?;
        Self::new(text.expose().clone()).map_err(serde::de::Error::custom)
    }
}

/// The associated data a row's message is sealed under: moved to another row, it does
/// not open.
fn context(id: &str) -> String {
    format!("mail:{id}")
}

impl Outgoing {
    /// The outbox row of this mail, due at `now`, its message sealed under `kek`.
    pub fn queue(&self, kek: &KeyEncryptionKey, now: UnixTime) -> Result<QueuedMail, MailError> {
        let id = random_uuid();
        let mut json = serde_json::to_vec(self).map_err(|e| MailError::Malformed(e.to_string()))?;
        let sealed = kek.encrypt(&json, &context(&id));
        json.zeroize();
        Ok(QueuedMail {
            id,
            kind: self.kind.name().to_owned(),
            recipient_domain: self.to.domain().to_owned(),
            sealed_message: Some(sealed?),
            created_at: now,
            next_attempt_at: now,
            attempts: 0,
            sent_at: None,
            failed_at: None,
            last_error: None,
        })
    }

    /// Queues this mail in `store` (one insert: the caller wakes the delivery task);
    /// returns its id.
    pub fn send_later(
        &self,
        store: &dyn MailStore,
        kek: &KeyEncryptionKey,
        now: UnixTime,
    ) -> Result<String, MailError> {
        let queued = self.queue(kek, now)?;
        store.enqueue_mail(&queued)?;
        Ok(queued.id)
    }

    /// The message of an outbox row; `None` once it was sent or given up.
    pub fn open(mail: &QueuedMail, kek: &KeyEncryptionKey) -> Result<Option<Self>, MailError> {
        let Some(sealed) = &mail.sealed_message else {
            return Ok(None);
        };
        let mut json = kek.decrypt(sealed, &context(&mail.id))?;
        let opened = serde_json::from_slice(&json).map_err(|e| MailError::Malformed(e.to_string()));
        json.zeroize();
        opened.map(Some)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kek() -> KeyEncryptionKey {
        KeyEncryptionKey::from_bytes(&[7; 32]).unwrap()
    }

    fn reset() -> Outgoing {
        Outgoing {
            to: EmailAddress::parse("alice@example.com").unwrap(),
            locale: Locale::Fr,
            kind: MailKind::PasswordReset {
                link: Link::new("https://id.example/reset?code=s3cr3t".into()).unwrap(),
                valid_minutes: 30,
            },
        }
    }

    #[test]
    fn a_queued_mail_holds_its_message_sealed_and_its_domain_and_kind_in_the_clear() {
        let queued = reset().queue(&kek(), 100).unwrap();
        assert_eq!(queued.kind, "password_reset");
        assert_eq!(queued.recipient_domain, "example.com");
        assert_eq!(
            (queued.created_at, queued.next_attempt_at, queued.attempts),
            (100, 100, 0)
        );
        let sealed = queued.sealed_message.clone().unwrap();
        assert!(!sealed.contains("s3cr3t") && !sealed.contains("alice"));
        assert_eq!(Outgoing::open(&queued, &kek()).unwrap(), Some(reset()));
        // Moved to another row, or opened with another key, it does not open.
        let moved = QueuedMail {
            id: random_uuid(),
            ..queued.clone()
        };
        assert!(Outgoing::open(&moved, &kek()).is_err());
        let other = KeyEncryptionKey::from_bytes(&[8; 32]).unwrap();
        assert!(Outgoing::open(&queued, &other).is_err());
        let sent = QueuedMail {
            sealed_message: None,
            ..queued
        };
        assert_eq!(Outgoing::open(&sent, &kek()).unwrap(), None);
    }

    #[test]
    fn a_use_case_queues_mail_with_what_its_context_holds() {
        // As protocol code would: the context's store, key-encryption key and time.
        let world = crate::protocol::testing::TestWorld::default();
        let ctx = world.ctx();
        let id = reset().send_later(ctx.store, ctx.kek, ctx.now).unwrap();
        let queued = ctx.store.find_mail(&id).unwrap().unwrap();
        assert_eq!((queued.created_at, queued.attempts), (ctx.now, 0));
        assert_eq!(Outgoing::open(&queued, ctx.kek).unwrap(), Some(reset()));
        let due = ctx.store.claim_mail(ctx.now, ctx.now + 60, 10).unwrap();
        assert_eq!(due.len(), 1);
    }

    #[test]
    fn debug_output_names_no_person_and_no_link() {
        let shown = format!("{:?}", reset());
        assert!(
            !shown.contains("s3cr3t") && !shown.contains("alice"),
            "{shown}"
        );
        assert!(shown.contains("example.com"));
    }

    #[test]
    fn addresses_links_and_languages_are_checked_when_made() {
        assert!(EmailAddress::parse("not an address").is_err());
        assert!(EmailAddress::parse("a@b@c").is_err());
        assert_eq!(
            EmailAddress::parse(" Bob@Example.org ").unwrap().domain(),
            "Example.org"
        );
        for bad in [
            "/reset?code=x",
            "javascript:alert(1)",
            "ftp://x.example/a",
            "https://",
        ] {
            assert!(Link::new(bad.into()).is_err(), "{bad}");
        }
        assert_eq!(Locale::from_tag("fr-CA"), Some(Locale::Fr));
        assert_eq!(Locale::from_tag("EN"), Some(Locale::En));
        assert_eq!(Locale::from_tag("de"), None);
        let pages: Vec<&str> = Locale::ALL.iter().map(|l| l.as_str()).collect();
        assert_eq!(pages, crate::protocol::discovery::UI_LOCALES);
    }
}
