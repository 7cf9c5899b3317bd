//! Pushed Authorization Requests (RFC 9126): push, then authorize with the one-time
//! `request_uri`; errors of the push are JSON; clients (or the server) may require it.

use portcullis::protocol::registration::ClientDraft;
use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::{Options, Pkce, TestApp, TestClient, query, spawn_app, spawn_app_with};

/// The authorization request parameters of `client` with PKCE, as pushed.
fn request(client: &TestClient, pkce: &Pkce) -> Vec<(&'static str, String)> {
    vec![
        ("response_type", "code".into()),
        ("client_id", client.id.clone()),
        ("redirect_uri", client.redirect_uri.clone()),
        ("scope", "openid profile".into()),
        ("state", "pushed-state".into()),
        ("nonce", "pushed-nonce".into()),
        ("code_challenge", pkce.challenge.clone()),
        ("code_challenge_method", "S256".into()),
    ]
}

async fn push(app: &TestApp, client: &TestClient, form: &[(&str, String)]) -> reqwest::Response {
    crate::helpers::http()
        .post(app.url("/par"))
        .basic_auth(&client.id, client.secret.as_deref())
        .form(form)
        .send()
        .await
        .unwrap()
}

async fn pushed_uri(app: &TestApp, client: &TestClient, pkce: &Pkce) -> String {
    let response = push(app, client, &request(client, pkce)).await;
    assert_eq!(response.status(), StatusCode::CREATED);
    assert_eq!(response.headers()["cache-control"], "no-store");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["expires_in"], 60);
    let uri = body["request_uri"].as_str().unwrap().to_owned();
    assert!(
        uri.starts_with("urn:ietf:params:oauth:request_uri:"),
        "{uri}"
    );
    uri
}

fn authorize_with(app: &TestApp, client: &TestClient, request_uri: &str) -> String {
    let mut url = url::Url::parse(&app.url("/authorize")).unwrap();
    url.query_pairs_mut()
        .append_pair("client_id", &client.id)
        .append_pair("request_uri", request_uri);
    url.into()
}

#[tokio::test]
async fn a_pushed_request_is_authorized_by_its_request_uri_once() {
    let app = spawn_app().await;
    app.add_user("alice").await;
    let client = app.add_client(false);
    let pkce = Pkce::new();
    let uri = pushed_uri(&app, &client, &pkce).await;

    let browser = app.browser();
    let callback = browser
        .sign_in(&authorize_with(&app, &client, &uri), "alice")
        .await;
    assert_eq!(query(&callback, "state").as_deref(), Some("pushed-state"));
    let tokens = app.exchange(&client, &callback, &pkce).await;
    let id = crate::helpers::jwt_part(tokens["id_token"].as_str().unwrap(), 1);
    assert_eq!(
        id["nonce"], "pushed-nonce",
        "the pushed parameters are the request"
    );

    // Once only.
    let (_, status, html) = browser
        .open(&authorize_with(&app, &client, &uri))
        .await
        .page();
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(html.contains("invalid_request_uri"));
}

#[tokio::test]
async fn an_expired_or_anothers_request_uri_is_refused() {
    let app = spawn_app().await;
    app.add_user("alice").await;
    let (client, other) = (app.add_client(false), app.add_client(false));
    let uri = pushed_uri(&app, &client, &Pkce::new()).await;
    let (_, status, html) = app
        .browser()
        .open(&authorize_with(&app, &other, &uri))
        .await
        .page();
    assert_eq!(status, StatusCode::BAD_REQUEST, "another client's");
    assert!(html.contains("invalid_request_uri"));

    let uri = pushed_uri(&app, &client, &Pkce::new()).await;
    app.clock.advance(60);
    let (_, status, _) = app
        .browser()
        .open(&authorize_with(&app, &client, &uri))
        .await
        .page();
    assert_eq!(status, StatusCode::BAD_REQUEST, "expired after 60 s");
    let (_, status, _) = app
        .browser()
        .open(&authorize_with(
            &app,
            &client,
            "urn:ietf:params:oauth:request_uri:made-up",
        ))
        .await
        .page();
    assert_eq!(status, StatusCode::BAD_REQUEST, "unknown");
}

#[tokio::test]
async fn a_client_that_must_push_cannot_authorize_directly() {
    let app = spawn_app().await;
    app.add_user("alice").await;
    let client = app.add_client_with(ClientDraft {
        require_pushed_authorization_requests: Some(true),
        ..ClientDraft::default()
    });
    let (url, _) = app.authorize_url(&client, &[]);
    let back = app.browser().open(&url).await.left();
    assert_eq!(query(&back, "error").as_deref(), Some("invalid_request"));
    assert!(query(&back, "error_description").unwrap().contains("push"));
    assert_eq!(query(&back, "state").as_deref(), Some("st-123"));

    let pkce = Pkce::new();
    let uri = pushed_uri(&app, &client, &pkce).await;
    let callback = app
        .browser()
        .sign_in(&authorize_with(&app, &client, &uri), "alice")
        .await;
    app.exchange(&client, &callback, &pkce).await;
}

#[tokio::test]
async fn a_server_that_requires_pushed_requests_says_so_and_refuses_others() {
    let app = spawn_app_with(Options {
        env: vec![("REQUIRE_PUSHED_AUTHORIZATION_REQUESTS", "true".into())],
        ..Options::default()
    })
    .await;
    let doc = app.get_json("/.well-known/openid-configuration").await;
    assert_eq!(doc["require_pushed_authorization_requests"], true);
    assert_eq!(
        doc["pushed_authorization_request_endpoint"],
        app.url("/par").as_str()
    );
    let client = app.add_client(false);
    let (url, _) = app.authorize_url(&client, &[]);
    let back = app.browser().open(&url).await.left();
    assert_eq!(query(&back, "error").as_deref(), Some("invalid_request"));
}

#[tokio::test]
async fn errors_of_the_push_are_json_never_redirects() {
    let app = spawn_app().await;
    let client = app.add_client(false);
    let pkce = Pkce::new();
    let with = |name: &'static str, value: &str| {
        let mut form = request(&client, &pkce);
        form.retain(|(k, _)| *k != name);
        form.push((name, value.to_owned()));
        form
    };
    for (form, error) in [
        (
            with("redirect_uri", "https://evil.example/cb"),
            "invalid_request",
        ),
        (with("response_type", "token"), "unsupported_response_type"),
        (with("code_challenge_method", "plain"), "invalid_request"),
        (
            with("request_uri", "urn:ietf:params:oauth:request_uri:x"),
            "invalid_request",
        ),
    ] {
        let response = push(&app, &client, &form).await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{form:?}");
        assert!(response.headers().get("location").is_none());
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"], error, "{form:?}");
    }
    // Unauthenticated: invalid_client.
    let response = crate::helpers::http()
        .post(app.url("/par"))
        .form(&request(&client, &pkce))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let wrong = TestClient {
        secret: Some("wrong".into()),
        ..TestClient {
            id: client.id.clone(),
            secret: None,
            redirect_uri: client.redirect_uri.clone(),
        }
    };
    assert_eq!(
        push(&app, &wrong, &request(&client, &pkce)).await.status(),
        StatusCode::UNAUTHORIZED
    );
}
