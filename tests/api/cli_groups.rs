//! `portcullis groups ...` (CONTRACT.md): create, rename, delete, list, members, add,
//! remove; groups named in any case, users by username; bad input a one-line error and
//! a non-zero status; every change audited as `cli` and heard by a running server as a
//! user change is.

use std::time::{Duration, Instant};

use portcullis::store::sql::SqlStore;
use portcullis::store::sql::liveness::LIVENESS_TTL;
use serde_json::{Value, json};
use tempfile::TempDir;

use crate::cli::portcullis_on;
use crate::helpers::{Options, TestApp, http, spawn_app_with};

/// Runs the command; `(success, stdout, stderr)`.
fn run(db: &str, env: &[(&str, &str)], args: &[&str]) -> (bool, String, String) {
    let out = portcullis_on(db, env, args, None);
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn ok(db: &str, args: &[&str]) -> String {
    let (ok, out, err) = run(db, &[], args);
    assert!(ok, "{args:?}: {err}");
    out
}

/// Fails with one line on stderr that says `message`.
fn refused(db: &str, args: &[&str], message: &str) {
    let (ok, _, err) = run(db, &[], args);
    assert!(!ok, "{args:?} succeeded");
    assert!(err.contains(message), "{args:?}: {err}");
    assert_eq!(err.trim().lines().count(), 1, "{args:?}: one line: {err}");
}

fn add_user(db: &str, name: &str) -> String {
    let out = portcullis_on(
        db,
        &[],
        &["users", "add", "--username", name, "--password-stdin"],
        Some("a long passphrase\n"),
    );
    assert!(out.status.success(), "{out:?}");
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

#[test]
fn groups_and_their_members_are_managed_from_the_command_line() {
    let dir = TempDir::new().unwrap();
    let db = format!("sqlite://{}/cli.db", dir.path().display());
    let alice = add_user(&db, "alice");
    let bob = add_user(&db, "bob");

    let ops = ok(&db, &["groups", "create", "Ops"]).trim().to_owned();
    assert_eq!(ops.len(), 36, "the new group's id: {ops}");
    let admins = ok(&db, &["groups", "create", "admins"]).trim().to_owned();
    refused(
        &db,
        &["groups", "create", "OPS"],
        "a group named OPS exists already",
    );
    refused(&db, &["groups", "create", " "], "1 to 64 characters");
    refused(
        &db,
        &["groups", "create", &"x".repeat(65)],
        "1 to 64 characters",
    );

    // Groups by name in any case, users by username.
    ok(&db, &["groups", "add", "ops", "alice"]);
    ok(&db, &["groups", "add", "Ops", "BOB"]);
    ok(&db, &["groups", "add", "ADMINS", "alice"]);
    refused(
        &db,
        &["groups", "add", "Ops", "alice"],
        "alice is a member of Ops already",
    );
    refused(&db, &["groups", "add", "Ops", "nobody"], "no user nobody");
    refused(
        &db,
        &["groups", "add", "nowhere", "alice"],
        "no group nowhere",
    );

    assert_eq!(
        ok(&db, &["groups", "list"]),
        format!("{admins}\tadmins\t1\n{ops}\tOps\t2\n")
    );
    assert_eq!(
        ok(&db, &["groups", "members", "ops"]),
        format!("{alice}\talice\n{bob}\tbob\n")
    );

    ok(&db, &["groups", "rename", "ops", "Operations"]);
    refused(
        &db,
        &["groups", "rename", "admins", "operations"],
        "exists already",
    );
    refused(
        &db,
        &["groups", "rename", "nowhere", "x"],
        "no group nowhere",
    );
    ok(&db, &["groups", "remove", "Operations", "bob"]);
    refused(
        &db,
        &["groups", "remove", "Operations", "bob"],
        "bob is not a member of Operations",
    );
    ok(&db, &["groups", "delete", "admins"]);
    refused(&db, &["groups", "delete", "admins"], "no group admins");
    assert_eq!(
        ok(&db, &["groups", "list"]),
        format!("{ops}\tOperations\t1\n")
    );
    // A removed user leaves their groups.
    ok(&db, &["users", "remove", "alice"]);
    assert_eq!(ok(&db, &["groups", "members", "Operations"]), "");

    let store = SqlStore::open(&db).unwrap();
    let events = portcullis::store::AuditStore::list_audit_events(&store, None, 100).unwrap();
    let groups: Vec<(String, String)> = events
        .iter()
        .rev()
        .filter(|e| e.action.starts_with("group."))
        .map(|e| {
            assert_eq!(e.actor, "cli");
            (e.action.clone(), e.target.clone().unwrap())
        })
        .collect();
    let expected = [
        ("group.created", &ops),
        ("group.created", &admins),
        ("group.member_added", &ops),
        ("group.member_added", &ops),
        ("group.member_added", &admins),
        ("group.renamed", &ops),
        ("group.member_removed", &ops),
        ("group.deleted", &admins),
    ]
    .map(|(a, t)| (a.to_owned(), t.clone()));
    assert_eq!(groups, expected);
}

async fn userinfo_groups(app: &TestApp, access: &str) -> Value {
    let info: Value = http()
        .get(app.url("/userinfo"))
        .bearer_auth(access)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    info["groups"].clone()
}

/// `groups add` on a running server's database: the server has answered userinfo for the
/// token already (its cache holds the groups); the command's change reaches it, over
/// Redis at once, without within the cache's TTL.
async fn group_change_on_a_running_server(redis: Option<&crate::backends::TempRedis>) {
    let env = match redis {
        Some(r) => vec![
            ("REDIS_URL", r.url.clone()),
            ("REDIS_PREFIX", r.prefix.clone()),
        ],
        None => vec![],
    };
    let app = spawn_app_with(Options {
        env: env.clone(),
        ..Default::default()
    })
    .await;
    app.add_user("alice").await;
    let client = app.add_client(false);
    let (url, pkce) = app.authorize_url(&client, &[("scope", "openid groups")]);
    let callback = app.browser().sign_in(&url, "alice").await;
    let tokens = app.exchange(&client, &callback, &pkce).await;
    let access = tokens["access_token"].as_str().unwrap();
    assert_eq!(userinfo_groups(&app, access).await, json!([]));

    // Listen where the running instances listen, to see the command's announcement.
    let mut announcements = redis.map(|r| {
        let mut pubsub = r.connection();
        pubsub
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        redis::cmd("SUBSCRIBE")
            .arg(portcullis::liveness_sync::channel(&r.prefix))
            .exec(&mut pubsub)
            .unwrap();
        pubsub
    });
    let db = format!("sqlite://{}/portcullis.db", app.dir.path().display());
    let env: Vec<(String, String)> = env
        .iter()
        .map(|(k, v)| (format!("PORTCULLIS_{k}"), v.clone()))
        .collect();
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    for args in [
        ["groups", "create", "Ops"].as_slice(),
        &["groups", "add", "Ops", "alice"],
    ] {
        let (ok, _, err) = run(&db, &env, args);
        assert!(ok, "{args:?}: {err}");
        assert!(!err.contains("warning"), "{err}");
    }
    if let Some(conn) = announcements.as_mut() {
        let message: Vec<redis::Value> =
            redis::from_redis_value(conn.recv_response().unwrap()).unwrap();
        let payload: String = redis::from_redis_value(message[2].clone()).unwrap();
        assert!(payload.starts_with("command-"), "{payload}");
    }
    let deadline = Instant::now() + 4 * LIVENESS_TTL;
    while userinfo_groups(&app, access).await != json!(["Ops"]) {
        assert!(Instant::now() < deadline, "the server never saw the change");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn a_group_change_from_the_command_line_reaches_a_running_server() {
    group_change_on_a_running_server(None).await;
}

#[tokio::test]
async fn a_group_change_from_the_command_line_is_announced_over_redis() {
    let Some(redis) = crate::backends::TempRedis::create() else {
        return;
    };
    group_change_on_a_running_server(Some(&redis)).await;
}
