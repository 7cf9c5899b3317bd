//! Sessions from the command line: `sessions list --user`, `sessions end`,
//! `users sign-out-everywhere`, and `users remove` telling the apps.

use crate::cli::portcullis_on;
use crate::helpers::{Browser, TestApp, TestClient, jwt_part, query, spawn_app};
use crate::logout_receiver::{Receiver, verify_logout_token};

fn db(app: &TestApp) -> String {
    format!("sqlite://{}/portcullis.db", app.dir.path().display())
}

fn run(app: &TestApp, args: &[&str]) -> (bool, String, String) {
    let out = portcullis_on(&db(app), &[], args, None);
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

async fn signed_out(app: &TestApp, browser: &Browser, client: &TestClient) -> bool {
    let (url, _) = app.authorize_url(client, &[("prompt", "none"), ("scope", "openid")]);
    query(&browser.open(&url).await.left(), "error").as_deref() == Some("login_required")
}

fn sid(tokens: &serde_json::Value) -> String {
    jwt_part(tokens["id_token"].as_str().unwrap(), 1)["sid"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[tokio::test]
async fn operators_list_and_end_sessions_and_sign_a_user_out_everywhere() {
    let app = spawn_app().await;
    app.add_user("alice").await;
    let client = app.add_refreshing_client();
    let (first, one) = app.offline_tokens(&client, "alice").await;
    let (second, two) = app.offline_tokens(&client, "alice").await;

    let (ok, listed, _) = run(&app, &["sessions", "list", "--user", "alice"]);
    assert!(ok);
    let sids: Vec<&str> = listed
        .lines()
        .map(|l| l.split('\t').next().unwrap())
        .collect();
    assert_eq!(sids.len(), 2, "{listed}");
    assert!(sids.contains(&sid(&first).as_str()) && sids.contains(&sid(&second).as_str()));
    assert!(
        listed
            .lines()
            .all(|l| l.split('\t').count() == 5 && l.contains("127.0.0.1"))
    );

    // Ending one session: that browser is out at once (the server's in-process session
    // store still holds it; the database says it ended), and its tokens are dead.
    let (ok, out, _) = run(&app, &["sessions", "end", &sid(&first)]);
    assert!(ok, "{out}");
    assert!(signed_out(&app, &one, &client).await);
    assert!(!signed_out(&app, &two, &client).await);
    assert_eq!(
        app.userinfo_status(first["access_token"].as_str().unwrap())
            .await,
        401
    );
    let (ok, _, err) = run(&app, &["sessions", "end", &sid(&first)]);
    assert!(!ok && err.contains("no live session"), "{err}");

    let (ok, out, _) = run(&app, &["users", "sign-out-everywhere", "alice"]);
    assert!(ok && out.contains("ended 1 sessions"), "{out}");
    assert!(signed_out(&app, &two, &client).await);
    let refresh = app
        .refresh(&client, second["refresh_token"].as_str().unwrap(), &[])
        .await;
    assert_eq!(refresh.status(), 400);
    let (_, listed, _) = run(&app, &["sessions", "list", "--user", "alice"]);
    assert!(listed.trim().is_empty(), "{listed}");

    let (ok, _, err) = run(&app, &["sessions", "list", "--user", "nobody"]);
    assert!(!ok && err.contains("no user nobody"), "{err}");
}

#[tokio::test]
async fn clients_registered_by_cli_get_logout_uris_and_removed_users_are_announced() {
    let app = spawn_app().await;
    let alice = app.add_user("alice").await;
    let receiver = Receiver::start().await;
    let backchannel = receiver.uri("cli");
    let out = portcullis_on(
        &db(&app),
        &[("PORTCULLIS_KEY_ENCRYPTION_KEY", crate::helpers::TEST_KEK)],
        &[
            "clients",
            "add",
            "--name",
            "CLI app",
            "--redirect-uri",
            "http://127.0.0.1:1/cb",
            "--backchannel-logout-uri",
            &backchannel,
            "--backchannel-logout-session-required",
            "--frontchannel-logout-uri",
            "http://127.0.0.1:1/fc",
        ],
        None,
    );
    assert!(out.status.success(), "{out:?}");
    let created: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let id = created["client_id"].as_str().unwrap().to_owned();
    let stored = app.store.find_client(&id).unwrap().unwrap();
    let bc = stored.backchannel_logout.unwrap();
    assert_eq!(
        (bc.uri.as_str(), bc.session_required),
        (backchannel.as_str(), true)
    );
    let fc = stored.frontchannel_logout.unwrap();
    assert_eq!(
        (fc.uri.as_str(), fc.session_required),
        ("http://127.0.0.1:1/fc", false)
    );

    // A front-channel URI on another origin than the redirect URIs is refused.
    let out = portcullis_on(
        &db(&app),
        &[("PORTCULLIS_KEY_ENCRYPTION_KEY", crate::helpers::TEST_KEK)],
        &[
            "clients",
            "add",
            "--name",
            "x",
            "--redirect-uri",
            "http://127.0.0.1:1/cb",
            "--frontchannel-logout-uri",
            "https://elsewhere.example/fc",
        ],
        None,
    );
    assert!(!out.status.success());

    let client = TestClient {
        id: id.clone(),
        secret: created["client_secret"].as_str().map(str::to_owned),
        redirect_uri: "http://127.0.0.1:1/cb".into(),
    };
    let tokens = app.tokens_for(&client, "alice").await;
    let (ok, _, err) = run(&app, &["users", "remove", "alice"]);
    assert!(ok, "{err}");
    // The command queued the logout at the system's time; the server's clock catches up.
    app.clock.advance(60);
    let received = receiver.wait_for(1).await;
    let claims = verify_logout_token(received[0].token.as_deref().unwrap(), &app.issuer, &id).await;
    assert_eq!(claims["sub"], alice.as_str());
    assert_eq!(claims["sid"], sid(&tokens).as_str());
    receiver.stop().await;
}
