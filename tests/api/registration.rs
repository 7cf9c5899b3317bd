//! Dynamic Client Registration (RFC 7591) and client read (RFC 7592).

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{Options, TestApp, spawn_app, spawn_app_with};

async fn app_with(mode: &str) -> TestApp {
    let mut env = vec![("REGISTRATION", mode.to_owned())];
    if mode == "token" {
        env.push(("REGISTRATION_TOKEN", "initial-token".to_owned()));
    }
    spawn_app_with(Options {
        env,
        ..Default::default()
    })
    .await
}

async fn post(app: &TestApp, body: serde_json::Value, token: Option<&str>) -> reqwest::Response {
    let mut request = crate::helpers::http()
        .post(app.url("/register"))
        .json(&body);
    if let Some(t) = token {
        request = request.bearer_auth(t);
    }
    request.send().await.unwrap()
}

#[tokio::test]
async fn registration_returns_credentials_and_a_readable_client_uri() {
    let app = app_with("open").await;
    let response = post(
        &app,
        json!({"redirect_uris": ["https://rp.example/cb"], "client_name": "RP"}),
        None,
    )
    .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    assert_eq!(response.headers()["cache-control"], "no-store");
    let body: serde_json::Value = response.json().await.unwrap();
    for field in [
        "client_id",
        "client_secret",
        "registration_access_token",
        "registration_client_uri",
    ] {
        assert!(body[field].is_string(), "{field}");
    }
    assert_eq!(body["client_secret_expires_at"], 0);
    assert_eq!(body["token_endpoint_auth_method"], "client_secret_basic");

    let uri = body["registration_client_uri"].as_str().unwrap();
    let read = crate::helpers::http()
        .get(uri)
        .bearer_auth(body["registration_access_token"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(read.status(), 200);
    let read: serde_json::Value = read.json().await.unwrap();
    assert_eq!(read["client_id"], body["client_id"]);
    assert_eq!(read["redirect_uris"], json!(["https://rp.example/cb"]));
    assert!(
        read.get("client_secret").is_none(),
        "the secret is shown only once"
    );

    let wrong = crate::helpers::http()
        .get(uri)
        .bearer_auth("wrong")
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn invalid_metadata_is_rejected_with_the_rfc_7591_error() {
    let app = app_with("open").await;
    let cases = [
        (
            json!({"redirect_uris": ["https://rp.example/cb#frag"]}),
            "invalid_redirect_uri",
        ),
        (
            json!({"redirect_uris": ["http://rp.example/cb"]}),
            "invalid_redirect_uri",
        ),
        (
            json!({"redirect_uris": ["not a url"]}),
            "invalid_redirect_uri",
        ),
        (
            // A response type without the grant type it implies (OIDC Registration §2).
            json!({"redirect_uris": ["https://rp.example/cb"], "grant_types": ["authorization_code"], "response_types": ["id_token"]}),
            "invalid_client_metadata",
        ),
        (
            json!({"redirect_uris": ["https://rp.example/cb"], "token_endpoint_auth_method": "tls_client_auth"}),
            "invalid_client_metadata",
        ),
        (
            json!({"redirect_uris": ["https://rp.example/cb"], "subject_type": "secret"}),
            "invalid_client_metadata",
        ),
        (
            // RFC 9449 §5.2: no access token from the authorization endpoint, where it
            // cannot be bound, for a client whose tokens must all be DPoP-bound.
            json!({"redirect_uris": ["https://rp.example/cb"], "grant_types": ["authorization_code", "implicit"], "response_types": ["id_token token"], "dpop_bound_access_tokens": true}),
            "invalid_client_metadata",
        ),
        (json!(["not", "an", "object"]), "invalid_client_metadata"),
    ];
    for (body, error) in cases {
        let response = post(&app, body.clone(), None).await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{body}");
        let got: serde_json::Value = response.json().await.unwrap();
        assert_eq!(got["error"], error, "{body}");
    }
}

#[tokio::test]
async fn token_mode_requires_the_initial_access_token() {
    let app = app_with("token").await;
    let body = json!({"redirect_uris": ["https://rp.example/cb"]});
    assert_eq!(
        post(&app, body.clone(), None).await.status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        post(&app, body.clone(), Some("wrong")).await.status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        post(&app, body, Some("initial-token")).await.status(),
        StatusCode::CREATED
    );
}

#[tokio::test]
async fn registration_off_is_absent_from_discovery_and_the_endpoint_is_gone() {
    for app in [app_with("off").await, spawn_app().await] {
        // The default is `token` with no token configured: closed as well.
        let discovery: serde_json::Value = app.get_json("/.well-known/openid-configuration").await;
        assert!(discovery.get("registration_endpoint").is_none());
        let response = post(
            &app,
            json!({"redirect_uris": ["https://rp.example/cb"]}),
            None,
        )
        .await;
        assert_eq!(response.status(), StatusCode::NOT_FOUND);
    }
}

#[tokio::test]
async fn malformed_registrations_get_the_rfc_7591_errors_and_never_a_500() {
    let app = app_with("open").await;
    let cases = [
        (
            json!({"redirect_uris": ["https://rp.example/cb", "https://rp.example/cb"]}),
            "invalid_redirect_uri",
        ),
        (
            json!({"redirect_uris": ["https://rp.example/cb"], "post_logout_redirect_uris": ["https://rp.example/bye", "https://rp.example/bye"]}),
            "invalid_redirect_uri",
        ),
        (
            json!({"redirect_uris": ["https:///cb"]}),
            "invalid_redirect_uri",
        ),
        (
            json!({"redirect_uris": ["https://user:pass@rp.example/cb"]}),
            "invalid_redirect_uri",
        ),
        (
            json!({"redirect_uris": ["https://rp.example/c\u{0000}b"]}),
            "invalid_redirect_uri",
        ),
        (
            json!({"redirect_uris": ["https://rp.example/c\tb"]}),
            "invalid_redirect_uri",
        ),
        (
            json!({"application_type": "native", "redirect_uris": ["about:blank"]}),
            "invalid_redirect_uri",
        ),
        (
            json!({"application_type": "native", "redirect_uris": ["blob:https://rp.example/x"]}),
            "invalid_redirect_uri",
        ),
        (
            json!({"redirect_uris": ["https://rp.example/cb"], "client_name": "x".repeat(60_000)}),
            "invalid_client_metadata",
        ),
        (
            json!({"redirect_uris": ["https://rp.example/cb"], "client_name": "Bank\u{202E}lapyap"}),
            "invalid_client_metadata",
        ),
    ];
    for (body, error) in cases {
        let response = post(&app, body.clone(), None).await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{body}");
        let answer: serde_json::Value = response.json().await.unwrap();
        assert_eq!(answer["error"], error, "{body}");
    }
}

#[tokio::test]
async fn open_registration_is_rate_limited_per_address_and_size_capped() {
    let app = app_with("open").await;
    let oversized = json!({
        "redirect_uris": ["https://rp.example/cb"],
        "contacts": (0..11).map(|i| format!("c{i}@rp.example")).collect::<Vec<_>>(),
    });
    assert_eq!(
        post(&app, oversized, None).await.status(),
        StatusCode::BAD_REQUEST
    );
    let mut statuses = Vec::new();
    for _ in 0..20 {
        let body = json!({"redirect_uris": ["https://rp.example/cb"]});
        statuses.push(post(&app, body, None).await.status());
    }
    assert_eq!(
        statuses
            .iter()
            .filter(|s| **s == StatusCode::CREATED)
            .count(),
        19,
        "twenty registrations an hour per address (the refused one counted too)"
    );
    let limited = post(
        &app,
        json!({"redirect_uris": ["https://rp.example/cb"]}),
        None,
    )
    .await;
    assert_eq!(limited.status(), StatusCode::TOO_MANY_REQUESTS);
    let body: serde_json::Value = limited.json().await.unwrap();
    assert_eq!(body["error"], "temporarily_unavailable");
}

/// The per-address limit guards open registration; an operator's provisioning script
/// holding the initial access token registers as many clients as it needs.
#[tokio::test]
async fn registration_with_the_initial_access_token_is_not_rate_limited() {
    let app = app_with("token").await;
    for n in 0..30 {
        let body = json!({"redirect_uris": ["https://rp.example/cb"]});
        let status = post(&app, body, Some("initial-token")).await.status();
        assert_eq!(status, StatusCode::CREATED, "registration {n}");
    }
}

#[tokio::test]
async fn registrations_per_address_sets_the_open_registration_limit() {
    let app = spawn_app_with(Options {
        env: vec![
            ("REGISTRATION", "open".into()),
            ("REGISTRATIONS_PER_ADDRESS", "3".into()),
        ],
        ..Default::default()
    })
    .await;
    for _ in 0..3 {
        let body = json!({"redirect_uris": ["https://rp.example/cb"]});
        assert_eq!(post(&app, body, None).await.status(), StatusCode::CREATED);
    }
    let body = json!({"redirect_uris": ["https://rp.example/cb"]});
    assert_eq!(
        post(&app, body, None).await.status(),
        StatusCode::TOO_MANY_REQUESTS
    );
}

#[tokio::test]
async fn the_consent_page_shows_where_the_user_goes_and_marks_self_registered_clients() {
    let app = app_with("open").await;
    app.add_user("alice").await;
    let response = post(
        &app,
        json!({"redirect_uris": ["http://127.0.0.1:1/callback"], "client_name": "Totally Your Bank"}),
        None,
    )
    .await;
    let body: serde_json::Value = response.json().await.unwrap();
    let dynamic = crate::helpers::TestClient {
        id: body["client_id"].as_str().unwrap().into(),
        secret: body["client_secret"].as_str().map(str::to_owned),
        redirect_uri: "http://127.0.0.1:1/callback".into(),
    };
    let operated = app.add_client(false);
    for (client, unverified) in [(&dynamic, true), (&operated, false)] {
        let browser = app.browser();
        let (url, _) = app.authorize_url(client, &[]);
        let (consent_url, _, consent) = browser
            .login(browser.open(&url).await, "alice")
            .await
            .page();
        // Chrome checks form-action against the redirect after the form, too.
        let page = browser.http.get(consent_url).send().await.unwrap();
        let csp = page.headers()["content-security-policy"].to_str().unwrap();
        assert!(
            csp.contains("form-action 'self' http://127.0.0.1:1"),
            "{csp}"
        );
        assert!(consent.contains("127.0.0.1"), "the redirect host is shown");
        assert_eq!(consent.contains("registered itself"), unverified);
    }
}

#[tokio::test]
async fn per_client_signing_algorithms_are_kept_and_unknown_ones_refused() {
    let app = app_with("open").await;
    let registered = post(
        &app,
        json!({
            "redirect_uris": ["https://rp.example/cb"],
            "introspection_signed_response_alg": "PS256",
            "userinfo_signed_response_alg": "EdDSA",
            "logo_uri": "https://rp.example/logo.png",
        }),
        None,
    )
    .await;
    assert_eq!(registered.status(), StatusCode::CREATED);
    let body: serde_json::Value = registered.json().await.unwrap();
    assert_eq!(body["introspection_signed_response_alg"], "PS256");
    assert_eq!(body["userinfo_signed_response_alg"], "EdDSA");
    assert_eq!(body["logo_uri"], "https://rp.example/logo.png");
    assert!(body.get("sector_identifier").is_none(), "{body}");
    for (name, alg) in [
        ("introspection_signed_response_alg", "HS256"),
        ("id_token_signed_response_alg", "none"),
    ] {
        let refused = post(
            &app,
            json!({"redirect_uris": ["https://rp.example/cb"], name: alg}),
            None,
        )
        .await;
        assert_eq!(refused.status(), StatusCode::BAD_REQUEST, "{name}");
        let body: serde_json::Value = refused.json().await.unwrap();
        assert_eq!(body["error"], "invalid_client_metadata", "{name}");
    }
}
