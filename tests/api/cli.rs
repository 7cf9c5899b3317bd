//! The `portcullis` binary's commands, run as a user would (CONTRACT.md).

use std::io::Write;
use std::process::{Command, Output, Stdio};

use tempfile::TempDir;

fn portcullis(dir: &TempDir, args: &[&str], stdin: Option<&str>) -> Output {
    let db = format!("sqlite://{}/cli.db", dir.path().display());
    portcullis_on(&db, &[], args, stdin)
}

/// Runs the binary on the database `db` with extra environment `env`.
pub fn portcullis_on(db: &str, env: &[(&str, &str)], args: &[&str], stdin: Option<&str>) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_portcullis"))
        .args(args)
        .env("PORTCULLIS_DATABASE_URL", db)
        .envs(env.iter().copied())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    if let Some(input) = stdin {
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
    }
    drop(child.stdin.take());
    child.wait_with_output().unwrap()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn users_and_clients_are_managed_from_the_command_line() {
    let dir = TempDir::new().unwrap();
    let migrate = portcullis(&dir, &["migrate"], None);
    assert!(migrate.status.success(), "{migrate:?}");

    let add = portcullis(
        &dir,
        &[
            "users",
            "add",
            "--username",
            "alice",
            "--email",
            "a@example.com",
            "--name",
            "Alice A",
            "--password-stdin",
        ],
        Some("s3cret pass\n"),
    );
    assert!(add.status.success(), "{add:?}");
    let sub = stdout(&add).trim().to_owned();
    assert_eq!(sub.len(), 36);
    let list = portcullis(&dir, &["users", "list"], None);
    assert!(stdout(&list).contains("alice") && stdout(&list).contains(&sub));
    let again = portcullis(
        &dir,
        &["users", "add", "--username", "alice", "--password-stdin"],
        Some("x\n"),
    );
    assert!(!again.status.success());
    assert_eq!(
        String::from_utf8_lossy(&again.stderr)
            .trim()
            .lines()
            .count(),
        1
    );
    // A name that differs only in case is the same account's.
    let shouted = portcullis(
        &dir,
        &["users", "add", "--username", "ALICE", "--password-stdin"],
        Some("s3cret pass\n"),
    );
    assert!(!shouted.status.success());
    assert!(
        String::from_utf8_lossy(&shouted.stderr).contains("already exists"),
        "{shouted:?}"
    );

    let client = portcullis(
        &dir,
        &[
            "clients",
            "add",
            "--name",
            "Web",
            "--redirect-uri",
            "https://rp.example/cb",
        ],
        None,
    );
    assert!(client.status.success(), "{client:?}");
    let json: serde_json::Value = serde_json::from_str(&stdout(&client)).unwrap();
    assert!(json["client_id"].is_string() && json["client_secret"].is_string());
    let public = portcullis(
        &dir,
        &[
            "clients",
            "add",
            "--name",
            "SPA",
            "--public",
            "--redirect-uri",
            "http://localhost:3000/cb",
        ],
        None,
    );
    let public: serde_json::Value = serde_json::from_str(&stdout(&public)).unwrap();
    assert!(public.get("client_secret").is_none());
    let listed = stdout(&portcullis(&dir, &["clients", "list"], None));
    assert!(listed.contains(json["client_id"].as_str().unwrap()) && listed.contains("SPA"));
    assert!(
        !listed.contains(json["client_secret"].as_str().unwrap()),
        "secrets are never shown again"
    );

    let bad = portcullis(
        &dir,
        &[
            "clients",
            "add",
            "--name",
            "Bad",
            "--redirect-uri",
            "http://rp.example/cb#x",
        ],
        None,
    );
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("invalid_redirect_uri"));

    // No server has run yet, so no key exists; a rotation creates one per algorithm.
    assert_eq!(stdout(&portcullis(&dir, &["keys", "list"], None)), "");
    let rotated = portcullis(&dir, &["keys", "rotate", "--activate-in", "0"], None);
    assert!(rotated.status.success(), "{rotated:?}");
    assert_eq!(stdout(&rotated).lines().count(), 4);
    let keys = stdout(&portcullis(&dir, &["keys", "list"], None));
    for alg in ["RS256", "PS256", "ES256", "EdDSA"] {
        assert!(keys.contains(alg), "{alg}: {keys}");
    }
}

#[test]
fn a_bad_configuration_value_stops_with_a_message_naming_the_key() {
    let dir = TempDir::new().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_portcullis"))
        .args(["migrate"])
        .env("PORTCULLIS_SESSION_TTL", "forever")
        .env(
            "PORTCULLIS_DATABASE_URL",
            format!("sqlite://{}/x.db", dir.path().display()),
        )
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("session_ttl"));
}

#[test]
fn clients_add_registers_services_jwt_clients_and_pkce_opt_outs() {
    let dir = TempDir::new().unwrap();
    let json = |args: &[&str]| -> serde_json::Value {
        let out = portcullis(&dir, args, None);
        assert!(out.status.success(), "{args:?}: {out:?}");
        serde_json::from_str(&stdout(&out)).unwrap()
    };
    // A service: client_credentials only, no redirect URI, API scopes and a resource.
    let service = json(&[
        "clients",
        "add",
        "--name",
        "Batch",
        "--grant-type",
        "client_credentials",
        "--scope",
        "api:read",
        "--resource",
        "https://api.example/",
    ]);
    assert!(service["client_secret"].is_string());
    let jwt = json(&[
        "clients",
        "add",
        "--name",
        "HMAC",
        "--auth-method",
        "client_secret_jwt",
        "--redirect-uri",
        "https://rp.example/cb",
        "--grant-type",
        "authorization_code",
        "--grant-type",
        "refresh_token",
    ]);
    assert!(jwt["client_secret"].is_string());
    let keyed = json(&[
        "clients",
        "add",
        "--name",
        "Keys",
        "--auth-method",
        "private_key_jwt",
        "--jwks-uri",
        "https://rp.example/jwks",
        "--redirect-uri",
        "https://rp.example/cb",
        "--pkce-optional",
    ]);
    assert!(
        keyed.get("client_secret").is_none(),
        "private_key_jwt has no secret"
    );
    let listed = stdout(&portcullis(&dir, &["clients", "list"], None));
    assert!(listed.contains("private_key_jwt") && listed.contains("client_secret_jwt"));

    // The client_secret_jwt secret is stored encrypted under the key file beside the
    // database, never in the database in the clear.
    assert!(dir.path().join("portcullis.kek").exists());
    let mut db = Vec::new();
    for entry in std::fs::read_dir(dir.path()).unwrap() {
        let path = entry.unwrap().path();
        if path.to_string_lossy().contains("cli.db") {
            db.extend(std::fs::read(path).unwrap());
        }
    }
    let secret = jwt["client_secret"].as_str().unwrap().as_bytes();
    assert!(!db.windows(secret.len()).any(|w| w == secret));

    for bad in [
        &["clients", "add", "--name", "X"][..],
        &[
            "clients",
            "add",
            "--name",
            "X",
            "--auth-method",
            "private_key_jwt",
            "--redirect-uri",
            "https://rp.example/cb",
        ],
        &[
            "clients",
            "add",
            "--name",
            "X",
            "--public",
            "--grant-type",
            "client_credentials",
        ],
        &[
            "clients",
            "add",
            "--name",
            "X",
            "--public",
            "--pkce-optional",
            "--redirect-uri",
            "https://rp.example/cb",
        ],
    ] {
        let out = portcullis(&dir, bad, None);
        assert!(!out.status.success(), "{bad:?}");
        assert_eq!(
            String::from_utf8_lossy(&out.stderr).trim().lines().count(),
            1,
            "{bad:?}"
        );
    }
}

#[test]
fn an_instance_with_another_key_encryption_key_refuses_the_database() {
    let dir = TempDir::new().unwrap();
    let first = portcullis(
        &dir,
        &[
            "clients",
            "add",
            "--name",
            "A",
            "--redirect-uri",
            "https://rp.example/cb",
        ],
        None,
    );
    assert!(first.status.success(), "{first:?}");
    let out = Command::new(env!("CARGO_BIN_EXE_portcullis"))
        .args([
            "clients",
            "add",
            "--name",
            "B",
            "--redirect-uri",
            "https://rp.example/cb",
        ])
        .env(
            "PORTCULLIS_DATABASE_URL",
            format!("sqlite://{}/cli.db", dir.path().display()),
        )
        .env("PORTCULLIS_KEY_ENCRYPTION_KEY", crate::helpers::TEST_KEK)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("key_encryption_key"));
}

/// `users set-password` on a running server's database. The server has answered for the
/// token already (its liveness cache holds it); the command ends it there too.
async fn set_password_on_a_running_server(redis: Option<&crate::backends::TempRedis>) {
    let env = match redis {
        Some(r) => vec![
            ("REDIS_URL", r.url.clone()),
            ("REDIS_PREFIX", r.prefix.clone()),
        ],
        None => vec![],
    };
    let app = crate::helpers::spawn_app_with(crate::helpers::Options {
        env: env.clone(),
        ..Default::default()
    })
    .await;
    app.add_user("alice").await;
    let client = app.add_refreshing_client();
    let (tokens, browser) = app.offline_tokens(&client, "alice").await;
    let access = tokens["access_token"].as_str().unwrap();
    assert_eq!(app.userinfo_status(access).await, 200);
    // Listen where the running instances listen, to see the command's announcement.
    let mut announcements = redis.map(|r| {
        let mut pubsub = r.connection();
        pubsub
            .set_read_timeout(Some(std::time::Duration::from_secs(10)))
            .unwrap();
        redis::cmd("SUBSCRIBE")
            .arg(portcullis::liveness_sync::channel(&r.prefix))
            .exec(&mut pubsub)
            .unwrap();
        pubsub
    });
    let mut child = Command::new(env!("CARGO_BIN_EXE_portcullis"))
        .args(["users", "set-password", "alice", "--password-stdin"])
        .env(
            "PORTCULLIS_DATABASE_URL",
            format!("sqlite://{}/portcullis.db", app.dir.path().display()),
        )
        .envs(env.iter().map(|(k, v)| (format!("PORTCULLIS_{k}"), v)))
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"a brand new passphrase\n")
        .unwrap();
    assert!(child.wait().unwrap().success());
    if let Some(conn) = announcements.as_mut() {
        // The next push on the channel (its read times out after 10 s) is the command's.
        let message: Vec<redis::Value> =
            redis::from_redis_value(conn.recv_response().unwrap()).unwrap();
        let kind: String = redis::from_redis_value(message[0].clone()).unwrap();
        let payload: String = redis::from_redis_value(message[2].clone()).unwrap();
        assert_eq!(kind, "message");
        assert!(payload.starts_with("command-"), "{payload}");
    }

    let (url, _) = app.authorize_url(&client, &[("prompt", "none")]);
    let callback = browser.open(&url).await.left();
    assert_eq!(
        crate::helpers::query(&callback, "error").as_deref(),
        Some("login_required"),
        "the browser session is over"
    );
    // Heard over Redis at once; without Redis within the cache's TTL.
    let deadline = std::time::Instant::now() + 4 * portcullis::store::sql::liveness::LIVENESS_TTL;
    while app.userinfo_status(access).await != 401 {
        assert!(
            std::time::Instant::now() < deadline,
            "the token still works"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let refresh = app
        .refresh(&client, tokens["refresh_token"].as_str().unwrap(), &[])
        .await;
    assert_eq!(refresh.status(), 400);
}

#[tokio::test]
async fn set_password_ends_the_users_sessions_and_tokens() {
    set_password_on_a_running_server(None).await;
}

#[tokio::test]
async fn set_password_is_announced_to_the_running_instances_over_redis() {
    let Some(redis) = crate::backends::TempRedis::create() else {
        return;
    };
    set_password_on_a_running_server(Some(&redis)).await;
}

/// Commands exit cleanly every time, on PostgreSQL too: a pool opening a connection in the
/// background while the process exits used to crash it (SIGSEGV in libpq at exit).
#[test]
fn every_command_exits_cleanly_again_and_again_on_postgres() {
    let Some(db) = crate::backends::TempDatabase::create() else {
        return;
    };
    let run = |args: &[&str], stdin: Option<&str>| {
        let env = [("PORTCULLIS_KEY_ENCRYPTION_KEY", crate::helpers::TEST_KEK)];
        let out = portcullis_on(&db.url, &env, args, stdin);
        assert!(out.status.success(), "{args:?}: {out:?}");
        stdout(&out)
    };
    run(&["migrate"], None);
    for i in 0..8 {
        let name = format!("user{i}");
        run(
            &["users", "add", "--username", &name, "--password-stdin"],
            Some("pw\n"),
        );
        run(
            &["users", "set-password", &name, "--password-stdin"],
            Some("pw2\n"),
        );
        run(&["users", "list"], None);
        run(&["users", "remove", &name], None);
        let added = run(
            &[
                "clients",
                "add",
                "--name",
                "X",
                "--redirect-uri",
                "https://rp.example/cb",
            ],
            None,
        );
        let id = serde_json::from_str::<serde_json::Value>(&added).unwrap()["client_id"]
            .as_str()
            .unwrap()
            .to_owned();
        run(&["clients", "list"], None);
        run(&["clients", "remove", &id], None);
        run(&["keys", "list"], None);
    }
}

#[test]
fn the_first_admin_is_created_and_accounts_are_disabled_from_the_command_line() {
    let dir = TempDir::new().unwrap();
    let add = portcullis(
        &dir,
        &[
            "users",
            "add",
            "--username",
            "root",
            "--admin",
            "--password-stdin",
        ],
        Some("first admin pass\n"),
    );
    assert!(add.status.success(), "{add:?}");
    let sub = stdout(&add).trim().to_owned();
    let listed = |dir: &TempDir| stdout(&portcullis(dir, &["users", "list"], None));
    assert!(
        listed(&dir).contains(&format!("{sub}\troot\t\tadmin")),
        "{}",
        listed(&dir)
    );

    let disable = portcullis(
        &dir,
        &["users", "update", "root", "--disable", "--no-admin"],
        None,
    );
    assert!(disable.status.success(), "{disable:?}");
    assert!(
        listed(&dir).contains("root\t\tdisabled"),
        "{}",
        listed(&dir)
    );
    let enable = portcullis(
        &dir,
        &["users", "update", "root", "--enable", "--admin"],
        None,
    );
    assert!(enable.status.success(), "{enable:?}");
    assert!(listed(&dir).contains("root\t\tadmin\n"), "{}", listed(&dir));
    let both = portcullis(
        &dir,
        &["users", "update", "root", "--enable", "--disable"],
        None,
    );
    assert!(!both.status.success(), "contradictory flags are refused");

    // The operator's changes are in the audit trail too.
    let store = portcullis::store::sql::SqlStore::open(&format!(
        "sqlite://{}/cli.db",
        dir.path().display()
    ))
    .unwrap();
    use portcullis::store::AuditStore;
    let events = store.list_audit_events(None, 10).unwrap();
    let actions: Vec<(&str, &str)> = events
        .iter()
        .map(|e| (e.actor.as_str(), e.action.as_str()))
        .collect();
    assert_eq!(
        actions,
        [
            ("cli", "user.enabled"),
            ("cli", "user.disabled"),
            ("cli", "user.created")
        ]
    );
}
