//! A session store that comes back empty (issue 26 item 2): a private `redis-server`
//! without persistence, killed and started again on the same port under a running
//! provider on PostgreSQL; and the in-process store, empty after a restart on SQLite.
//! The database's sessions end (their apps told once), the login throttle still refuses
//! what it refused before, and signing in again works.

use std::time::{Duration, Instant};

use portcullis::domain::Clock;
use reqwest::StatusCode;

use crate::backends::TempDatabase;
use crate::faults::PrivateRedis;
use crate::helpers::{
    Browser, Options, Outcome, TestApp, TestClient, jwt_part, query, spawn_app, spawn_app_with,
};
use crate::logout_receiver::{Receiver, verify_logout_token};
use crate::single_sign_out::{listening_client, sid_of, tokens_in};

/// Long enough for a check (every 5 s), its recheck (1 s) and the outbox's poll.
const RECONCILED_WITHIN: Duration = Duration::from_secs(30);

/// One login attempt for `username` with `password` in a new browser; the status of the
/// answer (429 when throttled), or 302 off to the client when it signed in.
async fn attempt(app: &TestApp, client: &TestClient, username: &str, password: &str) -> StatusCode {
    let browser = app.browser();
    let (url, _) = app.authorize_url(client, &[]);
    let (page, _, html) = browser.open(&url).await.page();
    match browser
        .submit(
            &page,
            &html,
            &[("username", username), ("password", password)],
        )
        .await
    {
        Outcome::Page { status, .. } => status,
        Outcome::Left(_) => StatusCode::FOUND,
    }
}

/// Fails bob's password from this address until the throttle refuses it.
async fn throttle_bob(app: &TestApp, client: &TestClient) {
    for n in 0..5 {
        let status = attempt(app, client, "bob", "wrong").await;
        assert_eq!(
            status,
            StatusCode::UNAUTHORIZED,
            "attempt {n} is merely wrong"
        );
    }
    assert_eq!(
        attempt(app, client, "bob", crate::helpers::PASSWORD).await,
        StatusCode::TOO_MANY_REQUESTS
    );
}

async fn ended(app: &TestApp, sid: &str) -> bool {
    let store = app.store.clone();
    let sid = sid.to_owned();
    tokio::task::spawn_blocking(move || store.find_session(&sid).unwrap())
        .await
        .unwrap()
        .is_some_and(|s| s.ended_at.is_some())
}

async fn until_ended(app: &TestApp, sid: &str) {
    let deadline = Instant::now() + RECONCILED_WITHIN;
    while !ended(app, sid).await {
        assert!(Instant::now() < deadline, "session {sid} was not ended");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// What the account page, the admin API and `sessions list` show: the live sessions.
async fn listed(app: &TestApp, username: &str) -> Vec<String> {
    let store = app.store.clone();
    let (username, now) = (username.to_owned(), app.clock.now());
    tokio::task::spawn_blocking(move || {
        let user = store.find_user_by_username(&username).unwrap().unwrap();
        store
            .list_user_sessions(&user.id, now)
            .unwrap()
            .into_iter()
            .map(|s| s.sid)
            .collect()
    })
    .await
    .unwrap()
}

/// The session's `store_lost` audit events.
async fn store_lost_events(app: &TestApp, sid: &str) -> usize {
    let store = app.store.clone();
    let sid = sid.to_owned();
    tokio::task::spawn_blocking(move || {
        store
            .list_audit_events(None, 500)
            .unwrap()
            .into_iter()
            .filter(|e| {
                e.target.as_deref() == Some(sid.as_str())
                    && e.action == "session.ended"
                    && e.details
                        .as_deref()
                        .is_some_and(|d| d.contains("store_lost"))
            })
            .count()
    })
    .await
    .unwrap()
}

/// The logout tokens `receiver` got for `sid`.
fn tokens_for(receiver: &Receiver, sid: &str) -> usize {
    receiver
        .received()
        .iter()
        .filter_map(|r| r.token.as_deref())
        .filter(|token| jwt_part(token, 1)["sid"] == sid)
        .count()
}

/// The one logout token `receiver` got, checked to be for `sid`.
async fn told_once(app: &TestApp, receiver: &Receiver, client: &TestClient, sid: &str) {
    let received = receiver.wait_for(1).await;
    assert_eq!(received.len(), 1, "one logout token");
    let claims = verify_logout_token(
        received[0].token.as_deref().unwrap(),
        &app.issuer,
        &client.id,
    )
    .await;
    assert_eq!(claims["sid"], sid);
}

/// Signing in again works, in a new browser; the old browser's session is gone.
async fn signing_in_again_works(app: &TestApp, client: &TestClient, old: &Browser) {
    let (url, _) = app.authorize_url(client, &[("prompt", "none")]);
    assert_eq!(
        query(&old.open(&url).await.left(), "error").as_deref(),
        Some("login_required")
    );
    let (url, _) = app.authorize_url(client, &[]);
    let callback = app.browser().sign_in(&url, "alice").await;
    assert!(query(&callback, "code").is_some(), "{callback}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_that_comes_back_empty_ends_its_sessions_once_and_keeps_the_throttle() {
    let Some(mut redis) = PrivateRedis::start() else {
        return;
    };
    let Some(db) = TempDatabase::create() else {
        return;
    };
    let app = spawn_app_with(Options {
        env: vec![("REDIS_URL", redis.url()), ("REDIS_PREFIX", "loss:".into())],
        database_url: Some(db.url.clone()),
        ..Default::default()
    })
    .await;
    app.add_user("alice").await;
    app.add_user("bob").await;
    let receiver = Receiver::start().await;
    let client = listening_client(&app, &receiver, "rp");
    let browser = app.browser();
    let sid = sid_of(&tokens_in(&app, &browser, &client).await);
    throttle_bob(&app, &client).await;
    assert_eq!(listed(&app, "alice").await, std::slice::from_ref(&sid));

    // Killed, and back empty on the same port.
    redis.stop();
    assert!(redis.resume());

    until_ended(&app, &sid).await;
    assert!(listed(&app, "alice").await.is_empty());
    let out =
        crate::cli::portcullis_on(&db.url, &[], &["sessions", "list", "--user", "alice"], None);
    assert!(out.status.success(), "{out:?}");
    assert!(
        !String::from_utf8_lossy(&out.stdout).contains(&sid),
        "{out:?}"
    );
    assert_eq!(store_lost_events(&app, &sid).await, 1);
    told_once(&app, &receiver, &client, &sid).await;

    // Lost once more (its marker alone): the reconciliation runs again and ends nothing
    // more, so the app hears nothing more.
    let mut conn = redis::Client::open(redis.url())
        .unwrap()
        .get_connection()
        .unwrap();
    let _: i64 = redis::cmd("DEL")
        .arg("loss:{store-loss}:marker")
        .query(&mut conn)
        .unwrap();
    let deadline = Instant::now() + RECONCILED_WITHIN;
    loop {
        let marked: bool = redis::cmd("EXISTS")
            .arg("loss:{store-loss}:marker")
            .query(&mut conn)
            .unwrap();
        if marked {
            break;
        }
        assert!(Instant::now() < deadline, "not reconciled again");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(tokens_for(&receiver, &sid), 1, "told once");
    assert_eq!(store_lost_events(&app, &sid).await, 1);

    // The throttle's counts came back from the database.
    assert_eq!(
        attempt(&app, &client, "bob", crate::helpers::PASSWORD).await,
        StatusCode::TOO_MANY_REQUESTS
    );
    signing_in_again_works(&app, &client, &browser).await;
    receiver.stop().await;
}

#[tokio::test]
async fn a_restart_with_the_in_process_store_on_sqlite_ends_its_sessions_and_keeps_the_throttle() {
    let app = spawn_app().await;
    app.add_user("alice").await;
    app.add_user("bob").await;
    let receiver = Receiver::start().await;
    let client = listening_client(&app, &receiver, "rp");
    let browser = app.browser();
    let sid = sid_of(&tokens_in(&app, &browser, &client).await);
    throttle_bob(&app, &client).await;
    let (dir, port) = (app.dir.clone(), app.port);
    app.stop().await;

    let app = spawn_app_with(Options {
        dir: Some(dir),
        port: Some(port),
        ..Options::default()
    })
    .await;
    until_ended(&app, &sid).await;
    assert!(listed(&app, "alice").await.is_empty());
    assert_eq!(store_lost_events(&app, &sid).await, 1);
    told_once(&app, &receiver, &client, &sid).await;
    assert_eq!(
        attempt(&app, &client, "bob", crate::helpers::PASSWORD).await,
        StatusCode::TOO_MANY_REQUESTS
    );
    signing_in_again_works(&app, &client, &browser).await;
    // Another restart ends nothing more.
    let (dir, port) = (app.dir.clone(), app.port);
    app.stop().await;
    let app = spawn_app_with(Options {
        dir: Some(dir),
        port: Some(port),
        ..Options::default()
    })
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(tokens_for(&receiver, &sid), 1, "told once");
    assert_eq!(store_lost_events(&app, &sid).await, 1);
    receiver.stop().await;
}
