//! RP-Initiated Logout: confirmation, session end, registered post-logout redirect only.

use reqwest::StatusCode;

use crate::helpers::{query, spawn_app};

#[tokio::test]
async fn logout_ends_the_session_and_returns_to_a_registered_uri_with_state() {
    let app = spawn_app().await;
    app.add_user("alice").await;
    let client = app.add_client_with(portcullis::protocol::registration::ClientDraft {
        post_logout_redirect_uris: vec!["http://127.0.0.1:1/bye".into()],
        ..Default::default()
    });
    let browser = app.browser();
    let (url, pkce) = app.authorize_url(&client, &[]);
    let callback = browser.sign_in(&url, "alice").await;
    let tokens = app.exchange(&client, &callback, &pkce).await;

    let mut logout = url::Url::parse(&app.url("/logout")).unwrap();
    logout
        .query_pairs_mut()
        .append_pair("id_token_hint", tokens["id_token"].as_str().unwrap())
        .append_pair("post_logout_redirect_uri", "http://127.0.0.1:1/bye")
        .append_pair("state", "bye-state");
    let (page_url, status, html) = browser.open(logout.as_str()).await.page();
    assert_eq!(status, StatusCode::OK);
    let back = browser
        .submit(&page_url, &html, &[("decision", "logout")])
        .await
        .left();
    assert_eq!(back.path(), "/bye");
    assert_eq!(query(&back, "state").as_deref(), Some("bye-state"));

    let (url, _) = app.authorize_url(&client, &[("prompt", "none")]);
    assert_eq!(
        query(&browser.open(&url).await.left(), "error").as_deref(),
        Some("login_required")
    );
}

#[tokio::test]
async fn unregistered_post_logout_redirect_uri_is_an_error_page() {
    let app = spawn_app().await;
    let client = app.add_client(false);
    let url = app.url(&format!(
        "/logout?client_id={}&post_logout_redirect_uri=https%3A%2F%2Fevil.example%2F",
        client.id
    ));
    let (_, status, html) = app.browser().open(&url).await.page();
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(html.contains("invalid_request"));
}

#[tokio::test]
async fn logout_confirmation_without_the_csrf_token_is_refused() {
    let app = spawn_app().await;
    let browser = app.browser();
    let (page_url, _, html) = browser.open(&app.url("/logout")).await.page();
    let outcome = browser
        .submit(
            &page_url,
            &html,
            &[("csrf", "forged"), ("decision", "logout")],
        )
        .await;
    assert_eq!(outcome.page().1, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn logout_checks_the_id_token_hint_like_the_authorization_endpoint() {
    let app = spawn_app().await;
    app.add_user("alice").await;
    let (client, other) = (app.add_client(false), app.add_client(false));
    let tokens = app.tokens_for(&client, "alice").await;
    let hint = tokens["id_token"].as_str().unwrap();
    let access = tokens["access_token"].as_str().unwrap();
    let page = |query: String| {
        let url = app.url(&format!("/logout?{query}"));
        let browser = app.browser();
        async move { browser.open(&url).await.page() }
    };
    // Our ID token for this client: the page names the client.
    let (_, status, html) = page(format!("id_token_hint={hint}")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("Test App"), "{html}");
    // For another client than the one named, an access token, or a tampered token: refused.
    let mut tampered = hint.to_owned();
    tampered.pop();
    for query in [
        format!("id_token_hint={hint}&client_id={}", other.id),
        format!("id_token_hint={access}"),
        format!("id_token_hint={tampered}"),
    ] {
        let (_, status, html) = page(query.clone()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{query}");
        assert!(html.contains("invalid_request"));
    }
}
