//! The upstream identities' storage contract (`UpstreamStore`, issue 24), on every
//! backend: one identity one link, JIT's account and link and event together or none,
//! the last way to sign in kept, an unlinked identity free again, and a removed
//! account's identity left as a tombstone.

use std::sync::Arc;

use portcullis::domain::now;
use portcullis::store::sql::SqlStore;
use portcullis::store::{
    NewAuditEvent, Store, StoreError, Unlinked, UpstreamIdentity, User, WaysIn,
};

use crate::backends::TempDatabase;

const ISSUER: &str = "https://id.corp.example";

fn user(name: &str, password_hash: &str) -> User {
    User::new(
        portcullis::crypto::tokens::random_uuid(),
        name.into(),
        password_hash.into(),
        now(),
    )
}

fn identity(subject: &str, user: &User) -> UpstreamIdentity {
    UpstreamIdentity {
        issuer: ISSUER.into(),
        subject: subject.into(),
        provider: "corp".into(),
        user_id: Some(user.id.clone()),
        email: Some(format!("{subject}@corp.example")),
        created_at: 10,
        last_used_at: Some(10),
        unlinked_at: None,
    }
}

/// The last-way rule's view: passkeys on, the identities' provider configured.
fn ways() -> WaysIn<'static> {
    static PROVIDERS: std::sync::LazyLock<Vec<String>> =
        std::sync::LazyLock::new(|| vec!["corp".to_owned()]);
    WaysIn {
        passkeys: true,
        providers: &PROVIDERS,
    }
}

fn event(action: &str) -> NewAuditEvent {
    NewAuditEvent {
        at: 10,
        actor: "system".into(),
        action: action.into(),
        target: None,
        address: None,
        details: None,
    }
}

fn actions(store: &dyn Store) -> Vec<String> {
    store
        .list_audit_events(None, 100)
        .unwrap()
        .into_iter()
        .map(|e| e.action)
        .collect()
}

fn contract(store: Arc<dyn Store>) {
    let store = &*store;
    let ann = user("ann", "$argon2id$x");
    let bob = user("bob", "$argon2id$x");
    store.create_user(&ann).unwrap();
    store.create_user(&bob).unwrap();

    // One identity, one link.
    assert!(
        store
            .link_upstream_identity(&identity("s1", &ann), &event("upstream.linked"))
            .unwrap()
    );
    assert!(
        !store
            .link_upstream_identity(&identity("s1", &ann), &event("upstream.linked"))
            .unwrap()
    );
    assert!(
        !store
            .link_upstream_identity(&identity("s1", &bob), &event("upstream.linked"))
            .unwrap()
    );
    assert_eq!(
        actions(store),
        ["upstream.linked"],
        "one event, for the one link"
    );
    let found = store.find_upstream_identity(ISSUER, "s1").unwrap().unwrap();
    assert_eq!(found.user_id.as_deref(), Some(ann.id.as_str()));
    assert_eq!(store.list_upstream_identities(&ann.id).unwrap(), [found]);
    store
        .touch_upstream_identity(ISSUER, "s1", Some("new@corp.example"), 20)
        .unwrap();
    let touched = store.find_upstream_identity(ISSUER, "s1").unwrap().unwrap();
    assert_eq!(touched.last_used_at, Some(20));
    assert_eq!(touched.email.as_deref(), Some("new@corp.example"));

    // JIT: the account, its link and the event together, or nothing.
    let cat = user("cat", "");
    assert!(
        store
            .create_upstream_user(&cat, &identity("s2", &cat), &event("upstream.jit_created"))
            .unwrap()
    );
    assert!(store.find_user(&cat.id).unwrap().is_some());
    let taken = user("CAT", "");
    assert!(matches!(
        store.create_upstream_user(
            &taken,
            &identity("s3", &taken),
            &event("upstream.jit_created")
        ),
        Err(StoreError::Conflict)
    ));
    assert!(
        store
            .find_upstream_identity(ISSUER, "s3")
            .unwrap()
            .is_none()
    );
    let dan = user("dan", "");
    assert!(
        !store
            .create_upstream_user(&dan, &identity("s1", &dan), &event("upstream.jit_created"))
            .unwrap()
    );
    assert!(
        store.find_user(&dan.id).unwrap().is_none(),
        "no account without its link"
    );
    assert_eq!(actions(store), ["upstream.jit_created", "upstream.linked"]);

    // The last way to sign in stays; another's identity is not found.
    assert_eq!(
        store
            .unlink_upstream_identity(
                &cat.id,
                ISSUER,
                "s2",
                30,
                &ways(),
                &event("upstream.unlinked")
            )
            .unwrap(),
        Unlinked::LastWay
    );
    assert_eq!(
        store
            .unlink_upstream_identity(
                &bob.id,
                ISSUER,
                "s1",
                30,
                &ways(),
                &event("upstream.unlinked")
            )
            .unwrap(),
        Unlinked::NotFound
    );
    assert_eq!(actions(store).len(), 2, "a refused unlink writes nothing");
    assert_eq!(
        store
            .unlink_upstream_identity(
                &ann.id,
                ISSUER,
                "s1",
                30,
                &ways(),
                &event("upstream.unlinked")
            )
            .unwrap(),
        Unlinked::Done
    );
    let unlinked = store.find_upstream_identity(ISSUER, "s1").unwrap().unwrap();
    assert_eq!(
        (unlinked.user_id.clone(), unlinked.unlinked_at),
        (None, Some(30))
    );
    assert!(!unlinked.is_tombstone());
    assert!(store.list_upstream_identities(&ann.id).unwrap().is_empty());

    // An unlinked identity may be linked again (to anyone).
    assert!(
        store
            .link_upstream_identity(&identity("s1", &bob), &event("upstream.linked"))
            .unwrap()
    );
    // Its account removed, the identity is a tombstone: never linked or given an account
    // again by itself.
    assert!(store.delete_user("bob").unwrap());
    let tombstone = store.find_upstream_identity(ISSUER, "s1").unwrap().unwrap();
    assert!(tombstone.is_tombstone(), "{tombstone:?}");
    assert!(
        !store
            .link_upstream_identity(&identity("s1", &ann), &event("upstream.linked"))
            .unwrap()
    );
    let eve = user("eve", "");
    assert!(
        !store
            .create_upstream_user(&eve, &identity("s1", &eve), &event("upstream.jit_created"))
            .unwrap()
    );
    assert!(store.find_user(&eve.id).unwrap().is_none());

    // The last-way rule counts only ways that can sign in: a link of a provider no longer
    // configured is none.
    let fay = user("fay", "");
    store.create_user(&fay).unwrap();
    assert!(
        store
            .link_upstream_identity(&identity("s8", &fay), &event("upstream.linked"))
            .unwrap()
    );
    let mut gone = identity("s9", &fay);
    gone.provider = "gone".into();
    assert!(
        store
            .link_upstream_identity(&gone, &event("upstream.linked"))
            .unwrap()
    );
    assert_eq!(
        store
            .unlink_upstream_identity(
                &fay.id,
                ISSUER,
                "s8",
                30,
                &ways(),
                &event("upstream.unlinked")
            )
            .unwrap(),
        Unlinked::LastWay
    );
    let both = ["corp".to_owned(), "gone".to_owned()];
    assert_eq!(
        store
            .unlink_upstream_identity(
                &fay.id,
                ISSUER,
                "s8",
                30,
                &WaysIn {
                    passkeys: true,
                    providers: &both
                },
                &event("upstream.unlinked")
            )
            .unwrap(),
        Unlinked::Done
    );
}

#[test]
fn sqlite_store_meets_the_upstream_contract() {
    let dir = tempfile::TempDir::new().unwrap();
    let store = SqlStore::open(&format!("sqlite://{}/upstream.db", dir.path().display())).unwrap();
    contract(Arc::new(store));
}

#[test]
fn postgres_store_meets_the_upstream_contract() {
    let Some(db) = TempDatabase::create() else {
        return;
    };
    contract(Arc::new(SqlStore::open(&db.url).unwrap()));
}
