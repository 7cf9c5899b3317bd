//! Moving in: `portcullis users import FILE [--dry-run]` and `users export`, run as an
//! operator would, against a running server. The fixture's hashes were made by other
//! tools (tests/fixtures/import/make_fixtures.py: hashlib, pyca/bcrypt, argon2-cffi).

use std::io::Write as _;

use reqwest::StatusCode;
use tempfile::TempDir;

use crate::backends::TempDatabase;
use crate::cli::portcullis_on;
use crate::helpers::{Options, TestApp, spawn_app, spawn_app_with};

const FIXTURE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/import/users.jsonl"
);

/// Users of the fixture who sign in with `helpers::PASSWORD`, and their hash's kind.
const SIGN_IN: [(&str, &str); 15] = [
    ("argon2id-user", "$argon2id$v=19$m=65536"),
    ("argon2i-user", "$argon2i$"),
    ("argon2d-user", "$argon2d$"),
    ("bcrypt-2a-user", "$2a$10$"),
    ("dora@example.com", "$2b$10$"),
    ("bcrypt-2y-user", "$2y$10$"),
    ("pbkdf2-sha256-user", "$pbkdf2-sha256$i=600000,l=32$"),
    ("pbkdf2-sha512-user", "$pbkdf2-sha512$i=210000,l=64$"),
    ("passlib-sha256-user", "$pbkdf2-sha256$29000$"),
    ("passlib-sha512-user", "$pbkdf2-sha512$25000$"),
    ("scrypt-user", "$scrypt$ln=15,r=8,p=1$"),
    ("keycloak-sha512-user", "$pbkdf2-sha512$i=210000$"),
    ("keycloak-sha256-user", "$pbkdf2-sha256$i=27500$"),
    ("keycloak-argon2-user", "$argon2id$v=19$m=7168,t=5,p=1$"),
    ("Grace", "$pbkdf2-sha256$i=100000,l=32$"),
];

const OURS: &str = "$argon2id$v=19$m=19456,t=2,p=1$";
/// The user whose hash is argon2id at a higher cost than ours (m=65536, t=3): kept.
const STRONGER: &str = "argon2id-user";

fn run(db: &str, args: &[&str], stdin: Option<&str>) -> (bool, String, String) {
    let env = [("PORTCULLIS_KEY_ENCRYPTION_KEY", crate::helpers::TEST_KEK)];
    let out = portcullis_on(db, &env, args, stdin);
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn sqlite_url(app: &TestApp) -> String {
    format!("sqlite://{}/portcullis.db", app.dir.path().display())
}

/// A server on a fresh SQLite file, or on a fresh PostgreSQL database (`None` when
/// PostgreSQL is not reachable and not required); with the database's URL for the CLI.
async fn server(postgres: bool) -> Option<(TestApp, String, Option<TempDatabase>)> {
    if !postgres {
        let app = spawn_app().await;
        let url = sqlite_url(&app);
        return Some((app, url, None));
    }
    let db = TempDatabase::create()?;
    let app = spawn_app_with(Options {
        database_url: Some(db.url.clone()),
        ..Options::default()
    })
    .await;
    Some((app, db.url.clone(), Some(db)))
}

fn stored_hash(app: &TestApp, username: &str) -> String {
    app.store
        .find_user_by_username(username)
        .unwrap()
        .unwrap_or_else(|| panic!("no user {username}"))
        .password_hash
}

/// Signs `username` in through the login page (with `helpers::PASSWORD`) and redeems the
/// code: the whole way an app's user goes.
async fn signs_in(app: &TestApp, client: &crate::helpers::TestClient, username: &str) {
    let (url, pkce) = app.authorize_url(client, &[]);
    let callback = app.browser().sign_in(&url, username).await;
    let tokens = app.exchange(client, &callback, &pkce).await;
    assert!(tokens["id_token"].is_string(), "{username}: {tokens}");
}

/// The login page's answer to `username` with `helpers::PASSWORD`.
async fn refused_sign_in(app: &TestApp, username: &str) -> (StatusCode, String) {
    let client = app.add_client(false);
    let (url, _) = app.authorize_url(&client, &[]);
    let browser = app.browser();
    let (_, status, html) = browser
        .login(browser.open(&url).await, username)
        .await
        .page();
    (status, html)
}

async fn imported_users_sign_in_with_every_kind_of_hash(postgres: bool) {
    let Some((app, db, _pg)) = server(postgres).await else {
        return;
    };
    let (ok, out, err) = run(&db, &["users", "import", FIXTURE], None);
    assert!(ok, "{err}");
    assert_eq!(
        out,
        "imported 17 users (password hashes: argon2d 1, argon2i 1, argon2id 2, bcrypt 4, \
         none 1, pbkdf2-sha256 4, pbkdf2-sha512 3, scrypt 1); 1 disabled; 2 group memberships\n"
    );
    // Grace's groups did not exist: made, and she is in both.
    let grace = app.store.find_user_by_username("Grace").unwrap().unwrap();
    let groups: Vec<String> = app
        .store
        .list_user_groups(&grace.id)
        .unwrap()
        .into_iter()
        .map(|g| g.name)
        .collect();
    assert_eq!(groups, ["ops", "staff"]);
    // Not recomputed at import: stored as they came.
    for (username, prefix) in SIGN_IN {
        assert!(
            stored_hash(&app, username).starts_with(prefix),
            "{username}"
        );
    }
    let audit = app.store.list_audit_events(None, 10).unwrap();
    let event = audit
        .iter()
        .find(|e| e.action == "users.imported")
        .expect("the import is audited");
    assert_eq!(event.actor, "cli");
    let details: serde_json::Value =
        serde_json::from_str(event.details.as_deref().unwrap()).unwrap();
    assert_eq!(details["users"], 17);
    assert_eq!(details["hash_kinds"]["bcrypt"], 4);
    assert_eq!(details["disabled"], 1);
    // The groups it made are audited with it (none was there to join).
    assert_eq!(
        details["groups_created"],
        serde_json::json!(["ops", "staff"])
    );
    assert_eq!(details["groups_joined"], serde_json::json!([]));

    let client = app.add_client(false);
    for (username, _) in SIGN_IN {
        let before = stored_hash(&app, username);
        signs_in(&app, &client, username).await;
        let after = stored_hash(&app, username);
        if username == STRONGER {
            // argon2id at more memory and passes than ours: not lowered to our cost.
            assert_eq!(after, before, "{username}");
            continue;
        }
        assert!(
            after.starts_with(OURS) && after != before,
            "{username}: {after}"
        );
        // The same password still signs in, now against our own hash, which stays.
        signs_in(&app, &client, username).await;
        assert_eq!(stored_hash(&app, username), after, "{username}");
    }
    let dora = app
        .store
        .find_user_by_username("DORA@example.com")
        .unwrap()
        .unwrap();
    assert_eq!(dora.id, "auth0|64a1f0c2e1d3b4a5c6d7e8f9");
    assert!(dora.email_verified);
    let grace = app.store.find_user_by_username("grace").unwrap().unwrap();
    assert_eq!(grace.phone_number.as_deref(), Some("+1 555 0100"));
    assert!(grace.phone_number_verified && !grace.email_verified);
    assert_eq!(
        grace.address.as_deref(),
        Some(r#"{"country":"US","locality":"Arlington"}"#)
    );

    // Without a password nobody signs in, and the answer is any wrong password's.
    let (status, html) = refused_sign_in(&app, "no-password-user").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(html.contains("Incorrect username or password."), "{html}");
    // A disabled account is told so (to whoever knows its password) and not signed in.
    let (status, html) = refused_sign_in(&app, "disabled-user").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(html.contains("This account is disabled."), "{html}");
    app.stop().await;
}

#[tokio::test]
async fn imported_users_sign_in_with_every_kind_of_hash_which_becomes_argon2id() {
    imported_users_sign_in_with_every_kind_of_hash(false).await;
}

#[tokio::test]
async fn imported_users_sign_in_with_every_kind_of_hash_on_postgres() {
    imported_users_sign_in_with_every_kind_of_hash(true).await;
}

async fn a_dry_run_reports_and_writes_nothing(postgres: bool) {
    let Some((app, db, _pg)) = server(postgres).await else {
        return;
    };
    let (ok, out, err) = run(&db, &["users", "import", "--dry-run", FIXTURE], None);
    assert!(ok, "{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "dry run: nothing was written");
    assert_eq!(lines[1], "would create argon2id-user (line 1)");
    assert_eq!(lines[17], "would create Grace (line 17)");
    assert!(
        lines[18].starts_with("would import 17 users (password hashes: argon2d 1,"),
        "{out}"
    );
    assert!(app.store.list_users().unwrap().is_empty());
    assert!(
        !app.store
            .list_audit_events(None, 50)
            .unwrap()
            .iter()
            .any(|e| e.action == "users.imported")
    );
    // A dry run checks the database too: an existing name is found.
    app.add_user("SCRYPT-USER").await;
    let (ok, _, err) = run(&db, &["users", "import", "--dry-run", FIXTURE], None);
    assert!(!ok);
    assert!(
        err.contains("line 11: username scrypt-user exists already"),
        "{err}"
    );
    app.stop().await;
}

#[tokio::test]
async fn a_dry_run_reports_what_would_be_imported_and_writes_nothing() {
    a_dry_run_reports_and_writes_nothing(false).await;
}

#[tokio::test]
async fn a_dry_run_writes_nothing_on_postgres() {
    a_dry_run_reports_and_writes_nothing(true).await;
}

const GOOD: &str = r#"{"username": "alice", "password_hash": "$2b$10$DCq7YPn5Rq63x1Lad4cll.TV4S6ytwfsfvkgY8jIucDrjc8deX1s."}"#;

/// A file of `lines` joined by line breaks (the last one too).
fn file(dir: &TempDir, lines: &[&[u8]]) -> String {
    let path = dir.path().join("users.jsonl");
    let mut f = std::fs::File::create(&path).unwrap();
    for line in lines {
        f.write_all(line).unwrap();
        f.write_all(b"\n").unwrap();
    }
    path.display().to_string()
}

async fn bad_files_are_refused_whole(postgres: bool) {
    let Some((app, db, _pg)) = server(postgres).await else {
        return;
    };
    let existing = app.add_user("Mallory").await;
    let client = app.add_client(false);
    let dir = TempDir::new().unwrap();
    let names: Vec<String> = (0..=100).map(|i| format!("g{i}")).collect();
    let too_many_groups = serde_json::json!({ "username": "carol", "groups": names }).to_string();
    let bob = br#"{"username": "bob", "email": "bob@example.com", "email_verified": true}"#;
    let cases: Vec<(Vec<&[u8]>, &str)> = vec![
        (
            vec![GOOD.as_bytes(), bob, b"{\"username\": \"caf\xe9\"}"],
            "line 3: not valid UTF-8",
        ),
        (
            vec![GOOD.as_bytes(), br#"{"username": "x", "password_hash": "{SSHA}abc"}"#],
            "line 2: password_hash: unknown password hash format",
        ),
        (
            vec![GOOD.as_bytes(), b"", bob, br#"{"username": "ALICE"}"#],
            "line 4: username ALICE is already on line 1",
        ),
        (
            vec![GOOD.as_bytes(), bob, br#"{"username": "mallory"}"#],
            "line 3: username mallory exists already",
        ),
        (
            vec![GOOD.as_bytes(), bob, br#"{"username": "m2", "sub": "SUB"}"#],
            "line 3: sub",
        ),
        (
            vec![bob, br#"{"username": "carol", "claims": {"birthdate": "1/2/3"}}"#],
            "line 2: claims: birthdate",
        ),
        (
            vec![bob, br#"{"username": "carol", "is_admin": true}"#],
            "line 2: unknown field `is_admin`",
        ),
        (vec![bob, br#"{"username": "carol""#], "line 2: EOF"),
        (
            vec![bob, br#"{"username": "carol", "password_hash": "$2b$20$DCq7YPn5Rq63x1Lad4cll.TV4S6ytwfsfvkgY8jIucDrjc8deX1s."}"#],
            "line 2: password_hash: bcrypt hash too costly",
        ),
        // The last character's unused bits set: the bcrypt crate would never verify it.
        (
            vec![bob, br#"{"username": "carol", "password_hash": "$2a$06$If6bvum7DFjUnE9p2uDeDu0YHzrHM6tf.iqN8.yx.jNN1ILEf7h0j"}"#],
            "line 2: password_hash: malformed bcrypt hash",
        ),
        // `%76ictim` would reach user `victim` through the console's paths.
        (
            vec![bob, br#"{"username": "carol", "sub": "%76ictim"}"#],
            "line 2: sub must be",
        ),
        (
            vec![bob, br#"{"username": "carol", "sub": "a/b"}"#],
            "line 2: sub must be",
        ),
        // A client's access tokens carry its id as their `sub` (RFC 9068 §5).
        (
            vec![bob, br#"{"username": "carol", "sub": "CLIENT"}"#],
            "is a client's id",
        ),
        (vec![bob, too_many_groups.as_bytes()], "line 2: at most 100 groups"),
    ];
    for (lines, expected) in cases {
        let lines: Vec<Vec<u8>> = lines
            .into_iter()
            .map(|l| l.to_vec())
            .map(|l| {
                String::from_utf8(l.clone())
                    .map(|s| {
                        s.replace("SUB", &existing)
                            .replace("CLIENT", &client.id)
                            .into_bytes()
                    })
                    .unwrap_or(l)
            })
            .collect();
        let refs: Vec<&[u8]> = lines.iter().map(Vec::as_slice).collect();
        let path = file(&dir, &refs);
        for dry_run in [true, false] {
            let mut args = vec!["users", "import", path.as_str()];
            if dry_run {
                args.insert(2, "--dry-run");
            }
            let (ok, out, err) = run(&db, &args, None);
            assert!(!ok, "{expected}: {out}");
            assert!(
                err.contains(expected),
                "{expected} (dry run {dry_run}): {err}"
            );
            assert_eq!(err.trim().lines().count(), 1, "{err}");
            let users: Vec<String> = app
                .store
                .list_users()
                .unwrap()
                .into_iter()
                .map(|u| u.username)
                .collect();
            assert_eq!(users, ["Mallory"], "{expected}: nothing was written");
        }
    }
    assert!(
        !app.store
            .list_audit_events(None, 50)
            .unwrap()
            .iter()
            .any(|e| e.action == "users.imported")
    );
    app.stop().await;
}

#[tokio::test]
async fn a_bad_line_refuses_the_whole_file_naming_its_line_and_writes_nothing() {
    bad_files_are_refused_whole(false).await;
}

#[tokio::test]
async fn a_bad_line_refuses_the_whole_file_on_postgres() {
    bad_files_are_refused_whole(true).await;
}

async fn export_round_trip(postgres: bool) {
    let source = spawn_app().await;
    let source_db = sqlite_url(&source);
    let (ok, _, err) = run(&source_db, &["users", "import", FIXTURE], None);
    assert!(ok, "{err}");
    let client = source.add_client(false);
    // One signs in before the export (their hash is ours by then), the others not.
    signs_in(&source, &client, "scrypt-user").await;
    let (ok, exported, err) = run(&source_db, &["users", "export"], None);
    assert!(ok, "{err}");
    assert_eq!(exported.lines().count(), 17);
    // The file holds every hash: the export is audited, by whom and how many.
    let audit = source.store.list_audit_events(None, 10).unwrap();
    let event = audit
        .iter()
        .find(|e| e.action == "users.exported")
        .expect("the export is audited");
    assert_eq!(event.actor, "cli");
    let details: serde_json::Value =
        serde_json::from_str(event.details.as_deref().unwrap()).unwrap();
    assert_eq!(
        (&details["users"], &details["complete"]),
        (&serde_json::json!(17), &serde_json::json!(true))
    );
    for line in exported.lines() {
        let record: serde_json::Value = serde_json::from_str(line).unwrap();
        let groups = if record["username"] == "Grace" {
            serde_json::json!(["ops", "staff"])
        } else {
            serde_json::json!([])
        };
        assert_eq!(record["groups"], groups, "{line}");
        assert!(record["sub"].is_string() && record["disabled"].is_boolean());
        if record["username"] == "scrypt-user" {
            assert!(record["password_hash"].as_str().unwrap().starts_with(OURS));
        }
        if record["username"] == "no-password-user" {
            assert!(record["password_hash"].is_null());
        }
    }

    let Some((target, target_db, _pg)) = server(postgres).await else {
        return;
    };
    let (ok, out, err) = run(&target_db, &["users", "import", "-"], Some(&exported));
    assert!(ok, "{err}");
    assert!(out.starts_with("imported 17 users"), "{out}");
    // The same users: the export of the new database is the export of the old one.
    let (ok, again, err) = run(&target_db, &["users", "export"], None);
    assert!(ok, "{err}");
    assert_eq!(again, exported);
    let client = target.add_client(false);
    for username in ["scrypt-user", "bcrypt-2a-user", "Grace", STRONGER] {
        signs_in(&target, &client, username).await;
        let stored = stored_hash(&target, username);
        assert_eq!(stored.starts_with(OURS), username != STRONGER, "{stored}");
    }
    source.stop().await;
    target.stop().await;
}

#[tokio::test]
async fn an_export_imported_into_a_fresh_database_gives_the_same_users_who_sign_in() {
    export_round_trip(false).await;
}

#[tokio::test]
async fn an_export_imported_into_postgres_gives_the_same_users_who_sign_in() {
    export_round_trip(true).await;
}
