//! The browser-session records and the logout outbox, on SQLite and PostgreSQL: ending is
//! all-or-nothing and happens once however many race, and claims never overlap.

use std::sync::Arc;

use portcullis::domain::now;
use portcullis::protocol::registration::ClientDraft;
use portcullis::store::sql::SqlStore;
use portcullis::store::{BrowserSession, DeliveryOutcome, Grant, Store, User};

use crate::backends::TempDatabase;

fn session(sid: &str, user_id: &str, created_at: i64, expires_at: i64) -> BrowserSession {
    BrowserSession {
        sid: sid.into(),
        user_id: user_id.into(),
        store_key: format!("key-{sid}"),
        created_at,
        expires_at,
        ended_at: None,
        user_agent: Some("Firefox/1 (Linux)".into()),
        ip_address: Some("192.0.2.1".into()),
    }
}

fn grant(id: &str, client: &str, user: &str, sid: Option<&str>) -> Grant {
    Grant {
        id: id.into(),
        client_id: client.into(),
        user_id: user.into(),
        scope: "openid".into(),
        session_id: sid.map(str::to_owned),
        created_at: 1,
        revoked_at: None,
        auth_time: 1,
        nonce: None,
        acr: None,
        amr: None,
        claims: None,
        expires_at: now() + 3600,
        resources: None,
    }
}

/// A client registered with (or without) a back-channel logout URI.
fn client(store: &dyn Store, listens: bool) -> String {
    let registered = crate::helpers::register_client(ClientDraft {
        redirect_uris: vec!["https://rp.example/cb".into()],
        backchannel_logout_uri: listens.then(|| "https://rp.example/bc".into()),
        ..ClientDraft::default()
    });
    store.create_client(&registered.client).unwrap();
    registered.client.id
}

fn insert_grant(store: &dyn Store, g: &Grant) {
    let code = portcullis::store::AuthorizationCode {
        code_hash: format!("code-{}", g.id),
        grant_id: g.id.clone(),
        client_id: g.client_id.clone(),
        user_id: g.user_id.clone(),
        redirect_uri: "https://rp.example/cb".into(),
        redirect_uri_sent: true,
        scope: "openid".into(),
        nonce: None,
        code_challenge: None,
        code_challenge_method: None,
        session_id: g.session_id.clone(),
        auth_time: 1,
        created_at: 1,
        expires_at: now() + 60,
        consumed_at: None,
        acr: None,
        claims: None,
        amr: Some("pwd".into()),
        resources: None,
        dpop_jkt: None,
    };
    store.insert_code(&code).unwrap();
    assert!(
        store
            .redeem_code(&code.code_hash, g, None, None, now())
            .unwrap()
    );
}

fn contract(store: Arc<dyn Store>) {
    let t = now();
    let alice = User::new("alice-id".into(), "alice".into(), "$argon2id$x".into(), t);
    store.create_user(&alice).unwrap();
    let (listener, quiet, other) = (
        client(&*store, true),
        client(&*store, false),
        client(&*store, true),
    );
    store
        .record_session(&session("s1", &alice.id, t, t + 100))
        .unwrap();
    store
        .record_session(&session("s2", &alice.id, t + 1, t + 100))
        .unwrap();
    store
        .record_session(&session("old", &alice.id, t - 200, t - 100))
        .unwrap();
    let listed: Vec<String> = store
        .list_user_sessions(&alice.id, t)
        .unwrap()
        .into_iter()
        .map(|s| s.sid)
        .collect();
    assert_eq!(listed, ["s2", "s1"], "live ones, newest first");
    // Signing in again renews a live session under its sid: a new key and expiry.
    let mut renewed = session("s2", &alice.id, t + 50, t + 200);
    renewed.store_key = "key-s2-again".into();
    assert!(store.record_session(&renewed).unwrap());
    let s2 = store.find_session("s2").unwrap().unwrap();
    assert_eq!(
        (s2.store_key.as_str(), s2.created_at, s2.expires_at),
        ("key-s2-again", t + 1, t + 200)
    );

    insert_grant(&*store, &grant("g1", &listener, &alice.id, Some("s1")));
    insert_grant(&*store, &grant("g2", &quiet, &alice.id, Some("s1")));
    insert_grant(&*store, &grant("g3", &other, &alice.id, Some("s2")));
    insert_grant(&*store, &grant("g4", &other, &alice.id, None));

    // Ending s1: its grants revoked, the listening client queued, once.
    let ended = store.end_session("s1", t + 5).unwrap();
    assert_eq!(ended.sessions.len(), 1);
    assert_eq!(ended.sessions[0].store_key, "key-s1");
    assert_eq!(ended.deliveries, 1);
    let mut clients = ended.clients[0].1.clone();
    clients.sort();
    let mut expected = vec![listener.clone(), quiet.clone()];
    expected.sort();
    assert_eq!(clients, expected);
    assert!(
        store
            .find_grant("g1")
            .unwrap()
            .unwrap()
            .revoked_at
            .is_some()
    );
    assert!(
        store
            .find_grant("g2")
            .unwrap()
            .unwrap()
            .revoked_at
            .is_some()
    );
    assert!(
        store
            .find_grant("g3")
            .unwrap()
            .unwrap()
            .revoked_at
            .is_none()
    );
    assert!(
        store.end_session("s1", t + 6).unwrap().sessions.is_empty(),
        "once"
    );
    assert_eq!(
        store.find_session("s1").unwrap().unwrap().ended_at,
        Some(t + 5)
    );
    let queued = store.find_logout_deliveries("s1").unwrap();
    assert_eq!(queued.len(), 1);
    assert_eq!(
        (queued[0].client_id.as_str(), queued[0].subject.as_str()),
        (listener.as_str(), "alice-id")
    );

    // A code of an ended session makes no grant.
    let late = grant("g5", &listener, &alice.id, Some("s1"));
    let mut code = portcullis::store::AuthorizationCode {
        code_hash: "late".into(),
        ..store.find_code("code-g1").unwrap().unwrap()
    };
    code.consumed_at = None;
    code.grant_id = "g5".into();
    store.insert_code(&code).unwrap();
    assert!(!store.redeem_code("late", &late, None, None, t).unwrap());
    assert!(store.find_grant("g5").unwrap().is_none());

    // Claims: due rows only, leased, never to two claimants.
    assert!(
        store
            .claim_logout_deliveries(t + 4, t + 64, 10)
            .unwrap()
            .is_empty(),
        "not due yet"
    );
    let claimed = store.claim_logout_deliveries(t + 5, t + 65, 10).unwrap();
    assert_eq!(claimed.len(), 1);
    assert_eq!(claimed[0].attempts, 1);
    assert!(
        store
            .claim_logout_deliveries(t + 5, t + 65, 10)
            .unwrap()
            .is_empty(),
        "leased"
    );
    store
        .settle_logout_delivery(
            &claimed[0].id,
            DeliveryOutcome::Failed {
                error: "HTTP 503",
                retry_at: Some(t + 7),
            },
            t + 5,
        )
        .unwrap();
    let again = store.claim_logout_deliveries(t + 7, t + 67, 10).unwrap();
    assert_eq!(again[0].attempts, 2);
    assert_eq!(again[0].last_error.as_deref(), Some("HTTP 503"));
    store
        .settle_logout_delivery(&again[0].id, DeliveryOutcome::Delivered, t + 7)
        .unwrap();
    assert!(
        store
            .claim_logout_deliveries(t + 1000, t + 1060, 10)
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        store.find_logout_deliveries("s1").unwrap()[0].delivered_at,
        Some(t + 7)
    );

    // Expiry ends (and announces) the old session; the live one stays.
    let expired = store.end_expired_sessions(t, 10).unwrap();
    assert_eq!(
        expired
            .sessions
            .iter()
            .map(|s| s.sid.as_str())
            .collect::<Vec<_>>(),
        ["old"]
    );

    // Everywhere: every live session and every grant, those from no session too.
    let everywhere = store.end_user_sessions(&alice.id, t + 8).unwrap();
    assert_eq!(
        everywhere
            .sessions
            .iter()
            .map(|s| s.sid.as_str())
            .collect::<Vec<_>>(),
        ["s2"]
    );
    assert_eq!(everywhere.deliveries, 1);
    assert!(
        store
            .find_grant("g3")
            .unwrap()
            .unwrap()
            .revoked_at
            .is_some()
    );
    assert!(
        store
            .find_grant("g4")
            .unwrap()
            .unwrap()
            .revoked_at
            .is_some()
    );
    assert!(store.list_user_sessions(&alice.id, t).unwrap().is_empty());

    // Many claimants at once: each due row goes to exactly one of them.
    for i in 0..12 {
        let sid = format!("race-{i}");
        store
            .record_session(&session(&sid, &alice.id, t, t + 100))
            .unwrap();
        insert_grant(
            &*store,
            &grant(&format!("rg{i}"), &listener, &alice.id, Some(&sid)),
        );
        store.end_session(&sid, t + 9).unwrap();
    }
    let threads: Vec<_> = (0..4)
        .map(|_| {
            let store = store.clone();
            std::thread::spawn(move || {
                let mut mine = Vec::new();
                for _ in 0..6 {
                    mine.extend(
                        store
                            .claim_logout_deliveries(t + 9, t + 69, 3)
                            .unwrap()
                            .into_iter()
                            .map(|d| d.id),
                    );
                }
                mine
            })
        })
        .collect();
    let mut all: Vec<String> = threads
        .into_iter()
        .flat_map(|h| h.join().unwrap())
        .collect();
    let count = all.len();
    all.sort();
    all.dedup();
    // The twelve, and the one queued when s2 ended everywhere.
    assert_eq!((count, all.len()), (13, 13), "every row claimed once");

    // Sessions ended at once from many threads: one of them does it.
    store
        .record_session(&session("contested", &alice.id, t, t + 100))
        .unwrap();
    insert_grant(
        &*store,
        &grant("cg", &listener, &alice.id, Some("contested")),
    );
    let threads: Vec<_> = (0..4)
        .map(|_| {
            let store = store.clone();
            std::thread::spawn(move || {
                store
                    .end_session("contested", t + 10)
                    .unwrap()
                    .sessions
                    .len()
            })
        })
        .collect();
    let ended: usize = threads.into_iter().map(|h| h.join().unwrap()).sum();
    assert_eq!(ended, 1);
    assert_eq!(store.find_logout_deliveries("contested").unwrap().len(), 1);

    // A refresh racing the end of its grant's session rotates nothing.
    store
        .record_session(&session("refreshing", &alice.id, t, t + 100))
        .unwrap();
    let g = grant("rgrant", &listener, &alice.id, Some("refreshing"));
    let mut c = store.find_code("code-g1").unwrap().unwrap();
    c.code_hash = "code-rgrant".into();
    c.grant_id = "rgrant".into();
    c.consumed_at = None;
    c.session_id = Some("refreshing".into());
    store.insert_code(&c).unwrap();
    let token = |hash: &str| portcullis::store::RefreshToken {
        token_hash: hash.into(),
        grant_id: "rgrant".into(),
        created_at: t,
        expires_at: t + 1000,
        consumed_at: None,
        successor_hash: None,
    };
    assert!(
        store
            .redeem_code("code-rgrant", &g, Some(&token("rt1")), None, t)
            .unwrap()
    );
    store.end_session("refreshing", t + 11).unwrap();
    assert!(matches!(
        store.rotate_refresh_token("rt1", &token("rt2"), None, t + 12),
        Err(portcullis::store::StoreError::Gone)
    ));
    let (rt1, _) = store.find_refresh_token("rt1").unwrap().unwrap();
    assert_eq!(rt1.consumed_at, None, "nothing written");
    assert!(store.find_refresh_token("rt2").unwrap().is_none());

    // The purge takes ended sessions long past their end, never one still to be announced.
    store
        .record_session(&session("stale", &alice.id, t - 900_000, t - 800_000))
        .unwrap();
    store
        .record_session(&session("gone", &alice.id, t - 900_000, t - 800_000))
        .unwrap();
    store.end_session("gone", t).unwrap();
    store.purge_expired(t - 100_000).unwrap();
    assert!(store.find_session("stale").unwrap().is_some());
    assert!(store.find_session("gone").unwrap().is_none());

    // A removed user's queued logouts stay deliverable.
    assert!(store.delete_user("alice").unwrap());
    assert!(store.find_session("s2").unwrap().is_none());
    assert_eq!(store.find_logout_deliveries("contested").unwrap().len(), 1);
}

#[test]
fn sqlite_session_records_meet_the_contract() {
    let dir = tempfile::TempDir::new().unwrap();
    let store = SqlStore::open(&format!("sqlite://{}/s.db", dir.path().display())).unwrap();
    contract(Arc::new(store));
}

#[test]
fn postgres_session_records_meet_the_contract() {
    let Some(db) = TempDatabase::create() else {
        return;
    };
    contract(Arc::new(SqlStore::open(&db.url).unwrap()));
}
