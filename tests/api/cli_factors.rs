//! Second factors from the command line: `users mfa list` / `users mfa reset`, and the
//! `--require-mfa` policy flags of `users` and `clients`.

use portcullis::protocol::factors::{recovery, totp::TotpSecret};
use portcullis::store::StoredPasskey;
use tempfile::TempDir;

use crate::cli::portcullis_on;
use crate::helpers::{TestApp, query, spawn_app, test_kek};

fn run(db: &str, args: &[&str], stdin: Option<&str>) -> (bool, String, String) {
    let env = [("PORTCULLIS_KEY_ENCRYPTION_KEY", crate::helpers::TEST_KEK)];
    let out = portcullis_on(db, &env, args, stdin);
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn db(app: &TestApp) -> String {
    format!("sqlite://{}/portcullis.db", app.dir.path().display())
}

/// A confirmed authenticator used once, recovery codes with one used, and a passkey
/// (named "YubiKey\t5", its credential id "Y3JlZA", its JSON holding "public key").
/// Returns the sealed TOTP secret, which nothing shown to anyone may contain.
pub(crate) fn enrol(app: &TestApp, user_id: &str) -> String {
    let secret = TotpSecret::generate();
    let sealed = secret.seal(&test_kek(), user_id).unwrap();
    assert!(app.store.begin_totp(user_id, &sealed, 100).unwrap());
    assert!(app.store.confirm_totp(user_id, &sealed, 3, 110).unwrap());
    assert!(app.store.use_totp_step(user_id, 5, 150).unwrap());
    let codes = recovery::generate();
    let hashes = recovery::hashes(&test_kek(), user_id, &codes);
    app.store
        .replace_recovery_codes(user_id, &hashes, 110)
        .unwrap();
    assert!(
        app.store
            .use_recovery_code(user_id, &hashes[0], 120)
            .unwrap()
    );
    app.store
        .insert_passkey(&StoredPasskey {
            id: "pk-1".into(),
            user_id: user_id.into(),
            credential_id: "Y3JlZA".into(),
            name: "YubiKey\t5".into(),
            passkey: "{\"secret-looking\":\"public key\"}".into(),
            created_at: 130,
            last_used_at: None,
            backup_eligible: false,
            backed_up: false,
            user_verified: true,
        })
        .unwrap();
    sealed
}

#[tokio::test]
async fn operators_list_and_reset_a_users_second_factors() {
    let app = spawn_app().await;
    let alice = app.add_user("alice").await;
    app.add_user("bob").await;
    // Signed in before the factors were enrolled (a password sign-in then sufficed).
    let client = app.add_refreshing_client();
    let (tokens, browser) = app.offline_tokens(&client, "alice").await;
    let sealed = enrol(&app, &alice);

    let (ok, listed, err) = run(&db(&app), &["users", "mfa", "list", "alice"], None);
    assert!(ok, "{err}");
    assert_eq!(
        listed,
        "totp\tauthenticator app\t110\t150\n\
         passkey\tYubiKey 5\t130\t-\n\
         recovery codes: 9 left\n"
    );
    assert!(!listed.contains(&sealed) && !listed.contains("public key"));
    let (ok, listed, _) = run(&db(&app), &["users", "mfa", "list", "bob"], None);
    assert!(ok);
    assert_eq!(listed, "recovery codes: 0 left\n");

    let (ok, out, err) = run(&db(&app), &["users", "mfa", "reset", "alice"], None);
    assert!(ok, "{err}");
    assert_eq!(
        out,
        "removed the second factors of alice; ended 1 sessions\n"
    );
    let (_, listed, _) = run(&db(&app), &["users", "mfa", "list", "alice"], None);
    assert_eq!(listed, "recovery codes: 0 left\n");
    assert!(app.store.find_totp(&alice).unwrap().is_none());

    // As sign-out-everywhere: the browser is signed out and the tokens are dead.
    let (url, _) = app.authorize_url(&client, &[("prompt", "none"), ("scope", "openid")]);
    assert_eq!(
        query(&browser.open(&url).await.left(), "error").as_deref(),
        Some("login_required")
    );
    let refresh = app
        .refresh(&client, tokens["refresh_token"].as_str().unwrap(), &[])
        .await;
    assert_eq!(refresh.status(), 400);

    let events = app.store.list_audit_events(None, 1).unwrap();
    assert_eq!(
        (
            events[0].actor.as_str(),
            events[0].action.as_str(),
            events[0].target.as_deref()
        ),
        ("cli", "user.second_factors_reset", Some(alice.as_str()))
    );
    let details: serde_json::Value =
        serde_json::from_str(events[0].details.as_deref().unwrap()).unwrap();
    assert_eq!(
        details,
        serde_json::json!({"totp": true, "passkeys": 1, "recovery_codes_left": 9})
    );

    let (ok, _, err) = run(&db(&app), &["users", "mfa", "reset", "nobody"], None);
    assert!(!ok && err.contains("no user nobody"), "{err}");
    let (ok, _, err) = run(&db(&app), &["users", "mfa", "list", "nobody"], None);
    assert!(!ok && err.contains("no user nobody"), "{err}");
}

#[test]
fn users_and_clients_require_a_second_factor_from_the_command_line() {
    let dir = TempDir::new().unwrap();
    let db = format!("sqlite://{}/cli.db", dir.path().display());
    let (ok, sub, err) = run(
        &db,
        &[
            "users",
            "add",
            "--username",
            "carol",
            "--require-mfa",
            "--password-stdin",
        ],
        Some("carol's password\n"),
    );
    assert!(ok, "{err}");
    let sub = sub.trim().to_owned();
    let listed = || run(&db, &["users", "list"], None).1;
    assert!(
        listed().contains(&format!("{sub}\tcarol\t\tmfa-required\n")),
        "{}",
        listed()
    );
    let store = portcullis::store::sql::SqlStore::open(&db).unwrap();
    use portcullis::store::{ClientStore, UserStore};
    let required = || store.find_user(&sub).unwrap().unwrap().mfa_required;
    assert!(required());

    let (ok, _, err) = run(&db, &["users", "update", "carol", "--no-require-mfa"], None);
    assert!(ok, "{err}");
    assert!(!required());
    assert!(listed().contains("\tcarol\t\t\n"), "{}", listed());
    let (ok, _, _) = run(
        &db,
        &["users", "update", "carol", "--require-mfa", "--admin"],
        None,
    );
    assert!(ok);
    assert!(required());
    assert!(
        listed().contains("\tcarol\t\tadmin,mfa-required\n"),
        "{}",
        listed()
    );
    let (ok, _, _) = run(
        &db,
        &[
            "users",
            "update",
            "carol",
            "--require-mfa",
            "--no-require-mfa",
        ],
        None,
    );
    assert!(!ok, "contradictory flags are refused");

    let add = |extra: &[&str]| {
        let mut args = vec![
            "clients",
            "add",
            "--name",
            "App",
            "--redirect-uri",
            "https://rp.example/cb",
        ];
        args.extend_from_slice(extra);
        let (ok, out, err) = run(&db, &args, None);
        assert!(ok, "{err}");
        let created: serde_json::Value = serde_json::from_str(&out).unwrap();
        let id = created["client_id"].as_str().unwrap().to_owned();
        store.find_client(&id).unwrap().unwrap()
    };
    assert!(add(&["--require-mfa"]).require_mfa);
    assert!(!add(&[]).require_mfa);

    use portcullis::store::AuditStore;
    let actions: Vec<String> = store
        .list_audit_events(None, 10)
        .unwrap()
        .into_iter()
        .filter(|e| e.action == "user.updated")
        .map(|e| e.details.unwrap_or_default())
        .collect();
    assert_eq!(
        actions,
        [
            r#"{"changed":["admin","mfa_required"]}"#,
            r#"{"changed":["mfa_required"]}"#
        ]
    );
}
