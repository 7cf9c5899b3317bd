//! Authorization endpoint errors: which render a page and which redirect (RFC 6749 §4.1.2.1).

use reqwest::StatusCode;

use crate::helpers::{Outcome, query, spawn_app};

#[tokio::test]
async fn unknown_client_gets_an_error_page_and_is_never_redirected() {
    let app = spawn_app().await;
    let url = app.url("/authorize?response_type=code&client_id=nope&redirect_uri=https%3A%2F%2Fevil.example%2Fcb&scope=openid&state=s");
    let (_, status, html) = app.browser().open(&url).await.page();
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(html.contains("invalid_client"), "{html}");
}

#[tokio::test]
async fn unregistered_redirect_uri_gets_an_error_page_and_is_never_redirected() {
    let app = spawn_app().await;
    let client = app.add_client(false);
    for uri in [
        "https://evil.example/cb",
        "http://127.0.0.1:1/callback/",
        "http://127.0.0.1:1/callback?x=1",
        "HTTP://127.0.0.1:1/callback",
    ] {
        let (url, _) = app.authorize_url(&client, &[("redirect_uri", uri)]);
        let (_, status, html) = app.browser().open(&url).await.page();
        assert_eq!(status, StatusCode::BAD_REQUEST, "{uri}");
        assert!(html.contains("invalid_request"), "{html}");
    }
}

#[tokio::test]
async fn missing_redirect_uri_is_an_error_page_for_openid_or_when_several_are_registered() {
    let app = spawn_app().await;
    let one = app.add_client(false);
    // OIDC Core §3.1.2.1: REQUIRED in an OpenID request, even with one registered URI.
    let (url, _) = app.authorize_url(&one, &[("redirect_uri", "")]);
    let (_, status, html) = app.browser().open(&url).await.page();
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(html.contains("invalid_request"));
    // Plain OAuth (RFC 6749 §3.1.2.3) may omit it when exactly one is registered.
    let (url, _) = app.authorize_url(&one, &[("redirect_uri", ""), ("scope", "profile")]);
    assert!(app.browser().open(&url).await.is_page("/login"));

    let two = app.add_client_with(portcullis::protocol::registration::ClientDraft {
        redirect_uris: vec!["http://127.0.0.1:1/a".into(), "http://127.0.0.1:1/b".into()],
        ..Default::default()
    });
    let (url, _) = app.authorize_url(&two, &[("redirect_uri", ""), ("scope", "profile")]);
    let (_, status, html) = app.browser().open(&url).await.page();
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(html.contains("invalid_request"));
}

/// Sends an authorization request and expects a redirect to the client with `error`.
async fn expect_error_redirect(extra: &[(&str, &str)], public: bool, error: &str) {
    let app = spawn_app().await;
    let client = app.add_client(public);
    let (url, _) = app.authorize_url(&client, extra);
    let callback = match app.browser().open(&url).await {
        Outcome::Left(url) => url,
        other => panic!("{extra:?}: expected a redirect, got {other:?}"),
    };
    assert!(callback.as_str().starts_with(&client.redirect_uri));
    assert_eq!(
        query(&callback, "error").as_deref(),
        Some(error),
        "{extra:?}"
    );
    assert_eq!(
        query(&callback, "iss").as_deref(),
        Some(app.issuer.as_str())
    );
    if !extra.iter().any(|(k, _)| *k == "state") {
        assert_eq!(
            query(&callback, "state").as_deref(),
            Some("st-123"),
            "state is echoed"
        );
    }
}

#[tokio::test]
async fn unsupported_response_type_redirects_with_unsupported_response_type() {
    expect_error_redirect(
        &[("response_type", "token")],
        false,
        "unsupported_response_type",
    )
    .await;
}

#[tokio::test]
async fn repeated_parameter_redirects_with_invalid_request() {
    let app = spawn_app().await;
    let client = app.add_client(false);
    let (url, _) = app.authorize_url(&client, &[]);
    let url = format!("{url}&scope=openid");
    let callback = app.browser().open(&url).await.left();
    assert_eq!(
        query(&callback, "error").as_deref(),
        Some("invalid_request")
    );
    assert_eq!(query(&callback, "state").as_deref(), Some("st-123"));
}

#[tokio::test]
async fn repeated_client_id_is_an_error_page() {
    let app = spawn_app().await;
    let client = app.add_client(false);
    let (url, _) = app.authorize_url(&client, &[]);
    let (_, status, _) = app
        .browser()
        .open(&format!("{url}&client_id=other"))
        .await
        .page();
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn public_client_without_pkce_is_refused() {
    expect_error_redirect(
        &[("code_challenge", ""), ("code_challenge_method", "")],
        true,
        "invalid_request",
    )
    .await;
}

#[tokio::test]
async fn plain_pkce_is_refused() {
    expect_error_redirect(
        &[("code_challenge_method", "plain")],
        false,
        "invalid_request",
    )
    .await;
}

#[tokio::test]
async fn unknown_scopes_only_is_invalid_scope() {
    expect_error_redirect(&[("scope", "admin")], false, "invalid_scope").await;
}

#[tokio::test]
async fn prompt_none_combined_with_login_is_invalid_request() {
    expect_error_redirect(&[("prompt", "none login")], false, "invalid_request").await;
}

#[tokio::test]
async fn prompt_none_without_a_session_redirects_login_required() {
    expect_error_redirect(&[("prompt", "none")], false, "login_required").await;
}

#[tokio::test]
async fn garbage_id_token_hint_is_invalid_request() {
    expect_error_redirect(
        &[("id_token_hint", "not-a-jwt"), ("prompt", "none")],
        false,
        "invalid_request",
    )
    .await;
}

#[tokio::test]
async fn unknown_parameters_are_ignored() {
    let app = spawn_app().await;
    let client = app.add_client(false);
    let (url, _) = app.authorize_url(&client, &[("frobnicate", "yes"), ("display", "page")]);
    assert!(app.browser().open(&url).await.is_page("/login"));
}

#[tokio::test]
async fn authorize_accepts_post_like_get() {
    let app = spawn_app().await;
    app.add_user("alice").await;
    let client = app.add_client(false);
    let (url, _) = app.authorize_url(&client, &[]);
    let (base, query) = url.split_once('?').unwrap();
    let browser = app.browser();
    let response = browser
        .http
        .post(base)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(query.to_owned())
        .send()
        .await
        .unwrap();
    let outcome = browser.follow(response).await;
    let callback = browser
        .consent_if_asked(browser.login(outcome, "alice").await)
        .await
        .left();
    assert!(crate::helpers::query(&callback, "code").is_some());
}

#[tokio::test]
async fn an_oversized_state_is_invalid_request() {
    let app = spawn_app().await;
    let client = app.add_client(false);
    let (url, _) = app.authorize_url(&client, &[("state", &"s".repeat(5000))]);
    let callback = app.browser().open(&url).await.left();
    assert_eq!(
        query(&callback, "error").as_deref(),
        Some("invalid_request")
    );
    assert_eq!(
        query(&callback, "state"),
        None,
        "an oversized state is not echoed"
    );
}

#[tokio::test]
async fn error_descriptions_never_echo_characters_outside_rfc_6749() {
    let app = spawn_app().await;
    let client = app.add_client(false);
    let (url, _) = app.authorize_url(&client, &[("prompt", "\"<script>\\ é")]);
    let callback = app.browser().open(&url).await.left();
    let description = query(&callback, "error_description").unwrap();
    assert!(
        description
            .chars()
            .all(|c| matches!(c as u32, 0x20..=0x21 | 0x23..=0x5B | 0x5D..=0x7E)),
        "{description}"
    );
}

#[tokio::test]
async fn confidential_clients_need_pkce_too_unless_registered_with_the_opt_out() {
    expect_error_redirect(
        &[("code_challenge", ""), ("code_challenge_method", "")],
        false,
        "invalid_request",
    )
    .await;

    let app = spawn_app().await;
    app.add_user("alice").await;
    let legacy = app.add_client_with(portcullis::protocol::registration::ClientDraft {
        require_pkce: Some(false),
        ..Default::default()
    });
    let (url, _) = app.authorize_url(
        &legacy,
        &[("code_challenge", ""), ("code_challenge_method", "")],
    );
    let callback = app.browser().sign_in(&url, "alice").await;
    let code = query(&callback, "code").expect("the opted-out client gets a code");
    assert_eq!(
        app.redeem(&legacy, &code, None).await.status(),
        StatusCode::OK
    );
}
