//! First-party clients: marked so by the operator (`clients add --first-party`, the admin
//! API's `first_party`), never by a registrant. Their users get a code without the consent
//! page, unless the request says `prompt=consent` (OIDC Core §3.1.2.1).

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::cli::portcullis_on;
use crate::helpers::{
    Options, TEST_KEK, TestApp, TestClient, http, query, spawn_app, spawn_app_with,
};

const REDIRECT_URI: &str = "http://127.0.0.1:1/callback";

fn client_from(registered: &Value) -> TestClient {
    TestClient {
        id: registered["client_id"].as_str().unwrap().to_owned(),
        secret: registered["client_secret"].as_str().map(str::to_owned),
        redirect_uri: REDIRECT_URI.to_owned(),
    }
}

/// Whether `username`, signing in through `client` in a new browser, is asked to consent.
async fn asked_to_consent(app: &TestApp, client: &TestClient, username: &str) -> bool {
    let browser = app.browser();
    let (url, _) = app.authorize_url(client, &[]);
    let outcome = browser.login(browser.open(&url).await, username).await;
    outcome.is_page("/consent")
}

async fn admin_token(app: &TestApp) -> String {
    let automation = app.add_service_client("admin", &[]);
    let response = app
        .token_request(
            &[("grant_type", "client_credentials")],
            Some((&automation.id, automation.secret.as_deref().unwrap())),
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    body["access_token"].as_str().unwrap().to_owned()
}

async fn admin_call(
    app: &TestApp,
    token: &str,
    method: reqwest::Method,
    path: &str,
    body: Value,
) -> (StatusCode, Value) {
    let response = http()
        .request(method, app.url(&format!("/admin/api{path}")))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = response.status();
    (status, response.json().await.unwrap())
}

#[tokio::test]
async fn a_client_added_with_first_party_gets_a_code_without_the_consent_page() {
    let app = spawn_app().await;
    let sub = app.add_user("erin").await;
    let db = format!("sqlite://{}/portcullis.db", app.dir.path().display());
    let out = portcullis_on(
        &db,
        &[("PORTCULLIS_KEY_ENCRYPTION_KEY", TEST_KEK)],
        &[
            "clients",
            "add",
            "--name",
            "Intranet",
            "--redirect-uri",
            REDIRECT_URI,
            "--first-party",
        ],
        None,
    );
    assert!(out.status.success(), "{out:?}");
    let printed: Value = serde_json::from_slice(&out.stdout).unwrap();
    let client = client_from(&printed);

    let browser = app.browser();
    let (url, pkce) = app.authorize_url(&client, &[]);
    let callback = browser.login(browser.open(&url).await, "erin").await.left();
    let tokens = app.exchange(&client, &callback, &pkce).await;
    assert!(tokens["id_token"].is_string(), "{tokens}");
    assert!(
        app.store.find_consent(&sub, &client.id).unwrap().is_none(),
        "nothing was consented to, so nothing is recorded"
    );

    // prompt=none: a code at once, with no consent on record.
    let (url, _) = app.authorize_url(&client, &[("prompt", "none")]);
    let callback = browser.open(&url).await.left();
    assert!(query(&callback, "code").is_some(), "{callback}");

    // prompt=consent: the page is shown all the same.
    let (url, _) = app.authorize_url(&client, &[("prompt", "consent")]);
    assert!(browser.open(&url).await.is_page("/consent"));

    // A client added without the flag still asks.
    let out = portcullis_on(
        &db,
        &[("PORTCULLIS_KEY_ENCRYPTION_KEY", TEST_KEK)],
        &[
            "clients",
            "add",
            "--name",
            "Partner",
            "--redirect-uri",
            REDIRECT_URI,
        ],
        None,
    );
    assert!(out.status.success(), "{out:?}");
    let printed: Value = serde_json::from_slice(&out.stdout).unwrap();
    let partner = client_from(&printed);
    assert!(
        asked_to_consent(&app, &partner, "erin").await,
        "a third-party client asks for consent"
    );
}

#[tokio::test]
async fn the_admin_api_marks_a_client_first_party_and_a_change_keeps_or_clears_it() {
    let app = spawn_app().await;
    app.add_user("frank").await;
    let token = admin_token(&app).await;

    let (status, created) = admin_call(
        &app,
        &token,
        reqwest::Method::POST,
        "/clients",
        json!({ "client_name": "Wiki", "redirect_uris": [REDIRECT_URI], "first_party": true }),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_eq!(created["first_party"], true);
    let client = client_from(&created);
    assert!(
        !asked_to_consent(&app, &client, "frank").await,
        "a first-party client skips the consent page"
    );

    // Another change carries the mark over.
    let path = format!("/clients/{}", client.id);
    let (status, changed) = admin_call(
        &app,
        &token,
        reqwest::Method::PATCH,
        &path,
        json!({ "client_name": "Team wiki" }),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{changed}");
    assert_eq!(changed["first_party"], true);

    let (status, changed) = admin_call(
        &app,
        &token,
        reqwest::Method::PATCH,
        &path,
        json!({ "first_party": false }),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{changed}");
    assert_eq!(changed["first_party"], false);
    assert!(
        asked_to_consent(&app, &client, "frank").await,
        "no longer first-party: the consent page is back"
    );

    let (status, refused) = admin_call(
        &app,
        &token,
        reqwest::Method::PATCH,
        &path,
        json!({ "first_party": "yes" }),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(refused["error"], "invalid_client_metadata");
}

#[tokio::test]
async fn dynamic_registration_ignores_first_party() {
    let app = spawn_app_with(Options {
        env: vec![("REGISTRATION", "open".into())],
        ..Default::default()
    })
    .await;
    app.add_user("gina").await;
    let response = http()
        .post(app.url("/register"))
        .json(&json!({
            "client_name": "Self-made",
            "redirect_uris": [REDIRECT_URI],
            "first_party": true,
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    let registered: Value = response.json().await.unwrap();
    assert!(registered.get("first_party").is_none(), "{registered}");
    let client = client_from(&registered);
    let stored = app.store.find_client(&client.id).unwrap().unwrap();
    assert!(!stored.first_party);
    assert!(
        asked_to_consent(&app, &client, "gina").await,
        "a self-registered client is asked about like any other"
    );
}
