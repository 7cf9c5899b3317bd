//! The mail outbox's storage contract (`MailStore`), run against every backend: a mail is
//! claimed by one claimant at a time, its lease runs out, a stale claim cannot settle it,
//! and a settled mail keeps no message.

use std::sync::Arc;

use portcullis::crypto::kek::KeyEncryptionKey;
use portcullis::mail::{EmailAddress, Link, Locale, MailKind, Outgoing};
use portcullis::store::sql::SqlStore;
use portcullis::store::{DeliveryOutcome, Store};

use crate::backends::TempDatabase;

fn kek() -> KeyEncryptionKey {
    KeyEncryptionKey::from_bytes(&[5; 32]).unwrap()
}

fn reset(to: &str) -> Outgoing {
    Outgoing {
        to: EmailAddress::parse(to).unwrap(),
        locale: Locale::En,
        kind: MailKind::PasswordReset {
            link: Link::new("https://id.example/reset?code=secret-code".into()).unwrap(),
            valid_minutes: 30,
        },
    }
}

fn contract(store: Arc<dyn Store>) {
    let t = 1_000;
    let first = reset("a@one.example").queue(&kek(), t).unwrap();
    let second = reset("b@two.example").queue(&kek(), t + 1).unwrap();
    store.enqueue_mail(&first).unwrap();
    store.enqueue_mail(&second).unwrap();
    let stored = store.find_mail(&first.id).unwrap().unwrap();
    assert_eq!(
        (stored.kind.as_str(), stored.recipient_domain.as_str()),
        ("password_reset", "one.example")
    );
    assert!(
        !stored
            .sealed_message
            .as_deref()
            .unwrap()
            .contains("secret-code")
    );
    assert_eq!(
        Outgoing::open(&stored, &kek()).unwrap(),
        Some(reset("a@one.example"))
    );

    // Nothing is due before its time; then the oldest first, each leased and counted.
    assert!(store.claim_mail(t - 1, t + 600, 10).unwrap().is_empty());
    let claimed = store.claim_mail(t + 1, t + 601, 1).unwrap();
    assert_eq!(claimed.len(), 1);
    assert_eq!(
        (claimed[0].id.as_str(), claimed[0].attempts),
        (first.id.as_str(), 1)
    );
    assert_eq!(claimed[0].next_attempt_at, t + 601);
    // While leased, nobody else gets it.
    let others = store.claim_mail(t + 2, t + 602, 10).unwrap();
    assert_eq!(
        others.iter().map(|m| m.id.as_str()).collect::<Vec<_>>(),
        [second.id.as_str()]
    );

    // The lease runs out: claimed again, a second attempt; the first claim is now stale.
    let again = store.claim_mail(t + 601, t + 1201, 10).unwrap();
    assert_eq!(
        again
            .iter()
            .map(|m| (m.id.as_str(), m.attempts))
            .collect::<Vec<_>>(),
        [(first.id.as_str(), 2)]
    );
    let failed = DeliveryOutcome::Failed {
        error: "451 try later",
        retry_at: Some(t + 700),
    };
    assert!(!store.settle_mail(&first.id, 1, failed, t + 602).unwrap());
    assert!(store.settle_mail(&first.id, 2, failed, t + 602).unwrap());
    let retried = store.find_mail(&first.id).unwrap().unwrap();
    assert_eq!(
        (retried.next_attempt_at, retried.last_error.as_deref()),
        (t + 700, Some("451 try later"))
    );
    assert!(
        retried.sealed_message.is_some(),
        "a mail to retry keeps its message"
    );

    // Sent: the message is erased, and the mail is never claimed again. (The second
    // mail's lease ran out too: it is claimed again, a second attempt.)
    let third = store.claim_mail(t + 700, t + 1300, 10).unwrap();
    let attempts: Vec<(&str, i32)> = third.iter().map(|m| (m.id.as_str(), m.attempts)).collect();
    // Oldest due first: the second's lease (t + 602) before the first's retry (t + 700).
    assert_eq!(attempts, [(second.id.as_str(), 2), (first.id.as_str(), 3)]);
    assert!(
        store
            .settle_mail(&first.id, 3, DeliveryOutcome::Delivered, t + 701)
            .unwrap()
    );
    let sent = store.find_mail(&first.id).unwrap().unwrap();
    assert_eq!(
        (sent.sent_at, sent.sealed_message, sent.last_error),
        (Some(t + 701), None, None)
    );
    assert!(
        !store
            .settle_mail(&first.id, 3, DeliveryOutcome::Delivered, t + 702)
            .unwrap()
    );

    // Given up: erased too, with its last error kept for the operator.
    let given_up = DeliveryOutcome::Failed {
        error: "550 no such user",
        retry_at: None,
    };
    assert!(!store.settle_mail(&second.id, 1, given_up, t + 703).unwrap());
    assert!(store.settle_mail(&second.id, 2, given_up, t + 703).unwrap());
    let failed = store.find_mail(&second.id).unwrap().unwrap();
    assert_eq!(failed.failed_at, Some(t + 703));
    assert_eq!(failed.sealed_message, None);
    assert_eq!(failed.last_error.as_deref(), Some("550 no such user"));
    assert!(
        store
            .claim_mail(t + 100_000, t + 100_600, 10)
            .unwrap()
            .is_empty()
    );

    // A day on, the purge of expired records takes settled mail; queued mail stays.
    let waiting = reset("c@three.example").queue(&kek(), t).unwrap();
    store.enqueue_mail(&waiting).unwrap();
    store.purge_expired(t + 704).unwrap();
    assert!(store.find_mail(&first.id).unwrap().is_none());
    assert!(store.find_mail(&second.id).unwrap().is_none());
    assert!(store.find_mail(&waiting.id).unwrap().is_some());
}

#[test]
fn sqlite_mail_outbox_meets_the_contract() {
    let dir = tempfile::TempDir::new().unwrap();
    let store = SqlStore::open(&format!("sqlite://{}/mail.db", dir.path().display())).unwrap();
    contract(Arc::new(store));
}

#[test]
fn postgres_mail_outbox_meets_the_contract() {
    let Some(db) = TempDatabase::create() else {
        return;
    };
    contract(Arc::new(SqlStore::open(&db.url).unwrap()));
}
