//! The second-factor storage contract (`FactorStore`), run against every backend: one
//! code accepted once, however close the race and on however many instances.

use std::sync::{Arc, Barrier};

use portcullis::crypto::kek::KeyEncryptionKey;
use portcullis::domain::now;
use portcullis::protocol::factors::{recovery, totp::TotpSecret};
use portcullis::store::sql::SqlStore;
use portcullis::store::{
    AdminChange, BrowserSession, FactorStore, NewAuditEvent, RemovedFactors, Store, StoreError,
    StoredPasskey, User,
};

use crate::backends::TempDatabase;

fn kek() -> KeyEncryptionKey {
    KeyEncryptionKey::from_bytes(&[3; 32]).unwrap()
}

fn user(store: &dyn Store, name: &str) -> User {
    let user = User::new(
        portcullis::crypto::tokens::random_uuid(),
        name.into(),
        "$argon2id$x".into(),
        now(),
    );
    store.create_user(&user).unwrap();
    user
}

fn sealed(user: &User) -> String {
    TotpSecret::generate().seal(&kek(), &user.id).unwrap()
}

fn passkey(id: &str, user: &User, credential_id: &str, created_at: i64) -> StoredPasskey {
    StoredPasskey {
        id: id.into(),
        user_id: user.id.clone(),
        credential_id: credential_id.into(),
        name: format!("key {id}"),
        passkey: format!("{{\"cred\":\"{credential_id}\",\"counter\":0}}"),
        created_at,
        last_used_at: None,
        backup_eligible: true,
        backed_up: false,
        user_verified: true,
    }
}

fn totp_contract(store: &dyn Store) {
    let alice = user(store, "alice");
    let t = 1_000;
    assert!(store.find_totp(&alice.id).unwrap().is_none());
    let first = sealed(&alice);
    assert!(store.begin_totp(&alice.id, &first, t).unwrap());
    let pending = store.find_totp(&alice.id).unwrap().unwrap();
    assert!(!pending.is_confirmed());
    assert_eq!(pending.sealed_secret, first);
    assert!(store.factor_summary(&alice.id).unwrap().totp.is_none());
    assert!(
        !store.use_totp_step(&alice.id, 50, t).unwrap(),
        "a pending enrolment accepts no code"
    );

    // A new enrolment replaces the pending one; a code checked against the old secret
    // confirms nothing.
    let second = sealed(&alice);
    assert!(store.begin_totp(&alice.id, &second, t + 1).unwrap());
    assert!(!store.confirm_totp(&alice.id, &first, 40, t + 2).unwrap());
    assert!(store.confirm_totp(&alice.id, &second, 40, t + 2).unwrap());
    assert!(!store.confirm_totp(&alice.id, &second, 41, t + 3).unwrap());
    let confirmed = store.find_totp(&alice.id).unwrap().unwrap();
    assert_eq!(confirmed.confirmed_at, Some(t + 2));
    assert_eq!(confirmed.last_used_step, Some(40));
    assert!(
        !store.begin_totp(&alice.id, &sealed(&alice), t + 3).unwrap(),
        "a confirmed authenticator is removed before another is enrolled"
    );
    assert_eq!(store.find_totp(&alice.id).unwrap().unwrap(), confirmed);

    // RFC 6238 §5.2: each step once, and never one older than the last used.
    assert!(
        !store.use_totp_step(&alice.id, 40, t + 4).unwrap(),
        "the confirming code"
    );
    assert!(!store.use_totp_step(&alice.id, 39, t + 4).unwrap());
    assert!(store.use_totp_step(&alice.id, 41, t + 5).unwrap());
    assert!(!store.use_totp_step(&alice.id, 41, t + 5).unwrap());
    assert!(!store.use_totp_step(&alice.id, 40, t + 5).unwrap());
    assert!(store.use_totp_step(&alice.id, 43, t + 6).unwrap());
    assert!(!store.use_totp_step(&alice.id, 42, t + 6).unwrap());
    let summary = store.factor_summary(&alice.id).unwrap().totp.unwrap();
    assert_eq!(
        (
            summary.created_at,
            summary.confirmed_at,
            summary.last_used_at
        ),
        (t + 1, t + 2, Some(t + 6))
    );

    let bob = user(store, "bob");
    assert!(
        !store.use_totp_step(&bob.id, 44, t).unwrap(),
        "another user's step"
    );
    assert!(store.remove_totp(&alice.id).unwrap());
    assert!(!store.remove_totp(&alice.id).unwrap());
    assert!(!store.use_totp_step(&alice.id, 44, t).unwrap());
    assert!(store.begin_totp(&alice.id, &sealed(&alice), t + 7).unwrap());
    assert!(matches!(
        store.begin_totp("no-such-user", "v1.x", t),
        Err(StoreError::Gone)
    ));
    store.delete_user("alice").unwrap();
    store.delete_user("bob").unwrap();
}

fn recovery_contract(store: &dyn Store) {
    let alice = user(store, "alice");
    let bob = user(store, "bob");
    let codes = recovery::generate();
    let hashes = recovery::hashes(&kek(), &alice.id, &codes);
    store
        .replace_recovery_codes(&alice.id, &hashes, 10)
        .unwrap();
    assert_eq!(store.count_recovery_codes(&alice.id).unwrap(), 10);
    assert_eq!(store.count_recovery_codes(&bob.id).unwrap(), 0);

    let typed = recovery::hash(&kek(), &alice.id, &codes[0].to_uppercase()).unwrap();
    assert!(store.use_recovery_code(&alice.id, &typed, 11).unwrap());
    assert!(
        !store.use_recovery_code(&alice.id, &typed, 12).unwrap(),
        "a code works once"
    );
    assert!(
        !store.use_recovery_code(&bob.id, &hashes[1], 12).unwrap(),
        "not for another user"
    );
    assert!(!store.use_recovery_code(&alice.id, "unknown", 12).unwrap());
    assert_eq!(store.count_recovery_codes(&alice.id).unwrap(), 9);
    assert_eq!(
        store.factor_summary(&alice.id).unwrap().recovery_codes_left,
        9
    );

    // A new set revokes the old one, used and unused codes alike.
    let renewed = recovery::hashes(&kek(), &alice.id, &recovery::generate());
    store
        .replace_recovery_codes(&alice.id, &renewed, 13)
        .unwrap();
    assert_eq!(store.count_recovery_codes(&alice.id).unwrap(), 10);
    assert!(!store.use_recovery_code(&alice.id, &hashes[1], 14).unwrap());
    assert!(store.use_recovery_code(&alice.id, &renewed[1], 14).unwrap());
    // A set that cannot be stored whole leaves the one before.
    let clash = vec![renewed[0].clone(), "h".into(), "h".into()];
    assert!(store.replace_recovery_codes(&alice.id, &clash, 15).is_err());
    assert_eq!(store.count_recovery_codes(&alice.id).unwrap(), 9);
    store.delete_user("alice").unwrap();
    store.delete_user("bob").unwrap();
}

fn passkey_contract(store: &dyn Store) {
    let alice = user(store, "alice");
    let bob = user(store, "bob");
    store
        .insert_passkey(&passkey("p2", &alice, "Y3JlZC0y", 20))
        .unwrap();
    store
        .insert_passkey(&passkey("p1", &alice, "Y3JlZC0x", 10))
        .unwrap();
    assert!(
        matches!(
            store.insert_passkey(&passkey("p3", &bob, "Y3JlZC0x", 30)),
            Err(StoreError::Conflict)
        ),
        "a credential id belongs to one account"
    );
    let ids = |user: &User| -> Vec<String> {
        store
            .list_passkeys(&user.id)
            .unwrap()
            .into_iter()
            .map(|p| p.id)
            .collect()
    };
    assert_eq!(ids(&alice), ["p1", "p2"]);
    assert!(ids(&bob).is_empty());
    let found = store
        .find_passkey_by_credential_id("Y3JlZC0y")
        .unwrap()
        .unwrap();
    assert_eq!(found, passkey("p2", &alice, "Y3JlZC0y", 20));
    assert!(
        store
            .find_passkey_by_credential_id("bm9uZQ")
            .unwrap()
            .is_none()
    );

    assert!(store.rename_passkey(&alice.id, "p2", "Phone").unwrap());
    assert!(
        !store.rename_passkey(&bob.id, "p1", "Mine").unwrap(),
        "not another user's"
    );
    assert!(
        !store
            .record_passkey_use("p2", "{\"counter\":6}", "{\"counter\":7}", true, 24)
            .unwrap(),
        "not over a record other than the one verified against"
    );
    let unchanged = store.find_passkey_by_credential_id("Y3JlZC0y").unwrap();
    assert_eq!(unchanged.unwrap().last_used_at, None);
    let verified_against = passkey("p2", &alice, "Y3JlZC0y", 20).passkey;
    assert!(
        store
            .record_passkey_use("p2", &verified_against, "{\"counter\":7}", true, 25)
            .unwrap()
    );
    let used = store
        .find_passkey_by_credential_id("Y3JlZC0y")
        .unwrap()
        .unwrap();
    assert_eq!(
        (
            used.name.as_str(),
            used.passkey.as_str(),
            used.backed_up,
            used.last_used_at
        ),
        ("Phone", "{\"counter\":7}", true, Some(25))
    );
    let summary = store.factor_summary(&alice.id).unwrap();
    assert!(summary.has_second_factor());
    assert_eq!(summary.passkeys.len(), 2);
    assert_eq!(summary.passkeys[1].name, "Phone");
    assert_eq!(summary.passkeys[1].last_used_at, Some(25));
    assert_eq!(summary.passkeys[0].name, "key p1");

    assert!(!store.remove_passkey(&bob.id, "p1").unwrap());
    assert!(store.remove_passkey(&alice.id, "p1").unwrap());
    assert!(!store.remove_passkey(&alice.id, "p1").unwrap());
    assert!(
        !store
            .record_passkey_use("p1", "{}", "{}", false, 26)
            .unwrap()
    );
    assert_eq!(ids(&alice), ["p2"]);
    store.delete_user("alice").unwrap();
    store.delete_user("bob").unwrap();
}

/// Every factor of `user`: a confirmed authenticator, ten recovery codes, two passkeys.
fn enrol_everything(store: &dyn Store, user: &User, tag: &str) {
    let secret = sealed(user);
    assert!(store.begin_totp(&user.id, &secret, 1).unwrap());
    assert!(store.confirm_totp(&user.id, &secret, 1, 1).unwrap());
    let hashes = recovery::hashes(&kek(), &user.id, &recovery::generate());
    store.replace_recovery_codes(&user.id, &hashes, 1).unwrap();
    store
        .insert_passkey(&passkey(&format!("{tag}-a"), user, &format!("{tag}-a"), 1))
        .unwrap();
    store
        .insert_passkey(&passkey(&format!("{tag}-b"), user, &format!("{tag}-b"), 2))
        .unwrap();
}

fn has_nothing(store: &dyn Store, user_id: &str) -> bool {
    store.find_totp(user_id).unwrap().is_none()
        && store.count_recovery_codes(user_id).unwrap() == 0
        && store.list_passkeys(user_id).unwrap().is_empty()
        && store.factor_summary(user_id).unwrap() == Default::default()
}

fn reset_contract(store: &dyn Store) {
    let alice = user(store, "alice");
    let bob = user(store, "bob");
    enrol_everything(store, &alice, "alice");
    enrol_everything(store, &bob, "bob");
    assert_eq!(
        store.reset_second_factors(&alice.id).unwrap(),
        RemovedFactors {
            totp: true,
            recovery_codes: 10,
            passkeys: 2
        }
    );
    assert!(has_nothing(store, &alice.id));
    assert_eq!(
        store.reset_second_factors(&alice.id).unwrap(),
        RemovedFactors::default()
    );
    assert!(store.factor_summary(&bob.id).unwrap().has_second_factor());

    // The administrator's reset also ends the user's sessions, with its audit event.
    enrol_everything(store, &alice, "alice2");
    let session = BrowserSession {
        sid: "sid-alice".into(),
        user_id: alice.id.clone(),
        store_key: "k".into(),
        created_at: now(),
        expires_at: now() + 3600,
        ended_at: None,
        user_agent: None,
        ip_address: None,
    };
    assert!(store.record_session(&session).unwrap());
    let event = NewAuditEvent {
        at: now(),
        actor: "cli".into(),
        action: "user.second_factors_reset".into(),
        target: Some(alice.id.clone()),
        address: None,
        details: None,
    };
    let ended = store
        .apply_audited(AdminChange::ResetSecondFactors(&alice.id), &event)
        .unwrap()
        .unwrap();
    assert_eq!(ended.sessions.len(), 1);
    assert!(has_nothing(store, &alice.id));
    assert!(
        store
            .find_session("sid-alice")
            .unwrap()
            .unwrap()
            .ended_at
            .is_some()
    );
    assert_eq!(
        store.list_audit_events(None, 1).unwrap()[0].action,
        "user.second_factors_reset"
    );

    // A removed user's factors go with the account.
    assert!(store.delete_user("bob").unwrap());
    assert!(has_nothing(store, &bob.id));
    assert!(
        store
            .find_passkey_by_credential_id("bob-a")
            .unwrap()
            .is_none()
    );
    store.delete_user("alice").unwrap();
}

fn contract(store: Arc<dyn Store>) {
    totp_contract(&*store);
    recovery_contract(&*store);
    passkey_contract(&*store);
    reset_contract(&*store);
}

/// Two instances (two pools on one database) present the same code at the same moment,
/// round after round: exactly one is accepted each time. The same for a recovery code.
fn race(url: &str) {
    let stores = [
        Arc::new(SqlStore::open(url).unwrap()),
        Arc::new(SqlStore::connect(url).unwrap()),
    ];
    let alice = user(&*stores[0], "alice");
    let secret = sealed(&alice);
    assert!(stores[0].begin_totp(&alice.id, &secret, 1).unwrap());
    assert!(stores[0].confirm_totp(&alice.id, &secret, 1, 1).unwrap());
    let codes: Vec<String> = (0..20).map(|i| format!("code-{i}")).collect();
    stores[0]
        .replace_recovery_codes(&alice.id, &codes, 1)
        .unwrap();
    for (round, code) in codes.iter().enumerate() {
        let barrier = Arc::new(Barrier::new(2));
        let racers: Vec<_> = stores
            .iter()
            .map(|store| {
                let (store, barrier, user_id) = (store.clone(), barrier.clone(), alice.id.clone());
                let code = code.clone();
                std::thread::spawn(move || {
                    barrier.wait();
                    let step = store
                        .use_totp_step(&user_id, 100 + round as i64, 2)
                        .unwrap();
                    barrier.wait();
                    let recovery = store.use_recovery_code(&user_id, &code, 2).unwrap();
                    (step, recovery)
                })
            })
            .collect();
        let results: Vec<(bool, bool)> = racers.into_iter().map(|r| r.join().unwrap()).collect();
        let winners = |pick: fn(&(bool, bool)) -> bool| results.iter().filter(|r| pick(r)).count();
        assert_eq!(winners(|r| r.0), 1, "round {round}: {results:?}");
        assert_eq!(winners(|r| r.1), 1, "round {round}: {results:?}");
    }
    assert_eq!(
        stores[1]
            .find_totp(&alice.id)
            .unwrap()
            .unwrap()
            .last_used_step,
        Some(119)
    );
    assert_eq!(stores[1].count_recovery_codes(&alice.id).unwrap(), 0);
}

#[test]
fn sqlite_store_meets_the_second_factor_contract() {
    let dir = tempfile::TempDir::new().unwrap();
    let store = SqlStore::open(&format!("sqlite://{}/factors.db", dir.path().display())).unwrap();
    contract(Arc::new(store));
}

#[test]
fn postgres_store_meets_the_second_factor_contract() {
    let Some(db) = TempDatabase::create() else {
        return;
    };
    contract(Arc::new(SqlStore::open(&db.url).unwrap()));
}

#[test]
fn a_code_presented_twice_at_once_is_accepted_once_on_sqlite() {
    let dir = tempfile::TempDir::new().unwrap();
    race(&format!("sqlite://{}/race.db", dir.path().display()));
}

#[test]
fn a_code_presented_to_two_instances_at_once_is_accepted_once_on_postgres() {
    let Some(db) = TempDatabase::create() else {
        return;
    };
    race(&db.url);
}
