//! Single sign-on across clients, prompt, max_age and id_token_hint.

use crate::helpers::{jwt_part, query, set_cookie, spawn_app};

fn id_claims(tokens: &serde_json::Value) -> serde_json::Value {
    jwt_part(tokens["id_token"].as_str().unwrap(), 1)
}

#[tokio::test]
async fn a_second_client_in_the_same_browser_completes_without_the_login_form() {
    let app = spawn_app().await;
    app.add_user("alice").await;
    let first = app.add_client(false);
    let second = app.add_client(false);
    let browser = app.signed_in(&first, "alice").await;

    let (url, pkce) = app.authorize_url(&second, &[]);
    let outcome = browser.open(&url).await;
    assert!(
        !outcome.is_page("/login"),
        "no login form for the second client"
    );
    let callback = browser.consent_if_asked(outcome).await.left();
    let tokens = app.exchange(&second, &callback, &pkce).await;
    let claims = id_claims(&tokens);
    assert_eq!(claims["aud"], second.id.as_str());
    assert!(claims["sid"].is_string());
}

#[tokio::test]
async fn prompt_login_shows_the_login_form_despite_a_session() {
    let app = spawn_app().await;
    app.add_user("alice").await;
    let client = app.add_client(false);
    let browser = app.signed_in(&client, "alice").await;
    let (url, _) = app.authorize_url(&client, &[("prompt", "login")]);
    let outcome = browser.open(&url).await;
    assert!(outcome.is_page("/login"));
    let callback = browser.login(outcome, "alice").await.left();
    assert!(query(&callback, "code").is_some());
}

#[tokio::test]
async fn prompt_none_with_a_session_and_consent_returns_a_code_without_any_page() {
    let app = spawn_app().await;
    app.add_user("alice").await;
    let client = app.add_client(false);
    let browser = app.signed_in(&client, "alice").await;
    let (url, _) = app.authorize_url(&client, &[("prompt", "none")]);
    let callback = browser.open(&url).await.left();
    assert!(query(&callback, "code").is_some());
    assert_eq!(query(&callback, "state").as_deref(), Some("st-123"));
}

#[tokio::test]
async fn prompt_none_with_a_session_but_no_consent_is_consent_required() {
    let app = spawn_app().await;
    app.add_user("alice").await;
    let first = app.add_client(false);
    let second = app.add_client(false);
    let browser = app.signed_in(&first, "alice").await;
    let (url, _) = app.authorize_url(&second, &[("prompt", "none")]);
    let callback = browser.open(&url).await.left();
    assert_eq!(
        query(&callback, "error").as_deref(),
        Some("consent_required")
    );
}

#[tokio::test]
async fn max_age_forces_a_new_login_and_the_id_token_carries_the_new_auth_time() {
    let app = spawn_app().await;
    app.add_user("alice").await;
    let client = app.add_client(false);
    let browser = app.browser();
    let (url, pkce) = app.authorize_url(&client, &[]);
    let callback = browser.sign_in(&url, "alice").await;
    let first = app.exchange(&client, &callback, &pkce).await;
    let first_auth_time = id_claims(&first)["auth_time"].as_i64().unwrap();

    app.clock.advance(2);
    let (url, pkce) = app.authorize_url(&client, &[("max_age", "1")]);
    let outcome = browser.open(&url).await;
    assert!(outcome.is_page("/login"), "session older than max_age");
    let callback = browser.login(outcome, "alice").await.left();
    let second = app.exchange(&client, &callback, &pkce).await;
    assert!(id_claims(&second)["auth_time"].as_i64().unwrap() > first_auth_time);

    let (url, _) = app.authorize_url(&client, &[("max_age", "3600")]);
    assert!(
        query(&browser.open(&url).await.left(), "code").is_some(),
        "a young session satisfies max_age"
    );
}

#[tokio::test]
async fn id_token_hint_with_prompt_none_checks_the_user() {
    let app = spawn_app().await;
    app.add_user("alice").await;
    app.add_user("bob").await;
    let client = app.add_client(false);
    let alice_tokens = app.tokens_for(&client, "alice").await;
    let bob_tokens = app.tokens_for(&client, "bob").await;

    let browser = app.signed_in(&client, "alice").await;
    let hint = |t: &serde_json::Value| t["id_token"].as_str().unwrap().to_owned();
    let (url, _) = app.authorize_url(
        &client,
        &[("prompt", "none"), ("id_token_hint", &hint(&alice_tokens))],
    );
    assert!(query(&browser.open(&url).await.left(), "code").is_some());
    let (url, _) = app.authorize_url(
        &client,
        &[("prompt", "none"), ("id_token_hint", &hint(&bob_tokens))],
    );
    assert_eq!(
        query(&browser.open(&url).await.left(), "error").as_deref(),
        Some("login_required")
    );
}

#[tokio::test]
async fn a_session_of_a_removed_user_no_longer_signs_anyone_in() {
    let app = spawn_app().await;
    app.add_user("alice").await;
    let client = app.add_client(false);
    let browser = app.signed_in(&client, "alice").await;
    assert!(app.store.delete_user("alice").unwrap());
    let (url, _) = app.authorize_url(&client, &[("prompt", "none")]);
    assert_eq!(
        query(&browser.open(&url).await.left(), "error").as_deref(),
        Some("login_required")
    );
    let (url, _) = app.authorize_url(&client, &[]);
    assert!(browser.open(&url).await.is_page("/login"));
}

#[tokio::test]
async fn the_session_cookie_is_httponly_lax_and_not_the_id_token_sid() {
    let app = spawn_app().await;
    app.add_user("alice").await;
    let client = app.add_client(false);
    let browser = app.browser();
    let (url, pkce) = app.authorize_url(&client, &[]);
    let response = browser.post_login(browser.open(&url).await, "alice").await;
    let cookie = set_cookie(&response, "portcullis_session").expect("a session cookie");
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax"),
        "{cookie}"
    );
    assert!(
        !cookie.contains("Secure"),
        "plain-http localhost issuer: no Secure flag"
    );
    let callback = browser
        .consent_if_asked(browser.follow(response).await)
        .await
        .left();
    let sid = id_claims(&app.exchange(&client, &callback, &pkce).await)["sid"]
        .as_str()
        .unwrap()
        .to_owned();
    let value = cookie
        .split(';')
        .next()
        .unwrap()
        .trim_start_matches("portcullis_session=");
    assert!(!sid.is_empty());
    assert_ne!(
        sid, value,
        "a client must never learn the session credential"
    );
}

#[tokio::test]
async fn an_id_token_hint_issued_to_another_client_or_an_access_token_is_refused() {
    let app = spawn_app().await;
    app.add_user("alice").await;
    let client = app.add_client(false);
    let other = app.add_client(false);
    let others_tokens = app.tokens_for(&other, "alice").await;
    for hint in [
        others_tokens["id_token"].as_str().unwrap(),
        others_tokens["access_token"].as_str().unwrap(),
    ] {
        let (url, _) = app.authorize_url(&client, &[("id_token_hint", hint)]);
        let callback = app.browser().open(&url).await.left();
        assert_eq!(
            query(&callback, "error").as_deref(),
            Some("invalid_request")
        );
    }
}

#[tokio::test]
async fn a_posted_authorization_request_continues_with_the_browser_session() {
    let app = spawn_app().await;
    app.add_user("alice").await;
    let client = app.add_client(false);
    let browser = app.signed_in(&client, "alice").await;
    let (url, _) = app.authorize_url(&client, &[("prompt", "none")]);
    let (base, form) = url.split_once('?').unwrap();
    let response = browser
        .http
        .post(base)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form.to_owned())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 303);
    assert!(
        response.headers()["location"]
            .to_str()
            .unwrap()
            .starts_with("/authorize/continue?id=")
    );
    let callback = browser.follow(response).await.left();
    assert!(query(&callback, "code").is_some(), "{callback}");
    assert_eq!(query(&callback, "state").as_deref(), Some("st-123"));
}
