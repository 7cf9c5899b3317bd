//! The `portcullis` binary's commands, run as a user would (CONTRACT.md).

use std::io::Write;
use std::process::{Command, Output, Stdio};

use tempfile::TempDir;

fn portcullis(dir: &TempDir, args: &[&str], stdin: Option<&str>) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_portcullis"))
        .args(args)
        .env(
            "PORTCULLIS_DATABASE_URL",
            format!("sqlite://{}/cli.db", dir.path().display()),
        )
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
    assert_eq!(stdout(&rotated).lines().count(), 2);
    let keys = stdout(&portcullis(&dir, &["keys", "list"], None));
    assert!(keys.contains("RS256") && keys.contains("ES256"), "{keys}");
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
