//! The account page: the user's sessions and apps, ending a session, signing out
//! everywhere and withdrawing an app's consent, each with its tokens.

use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::{
    Browser, Outcome, TestApp, TestClient, hidden_inputs, jwt_part, query, spawn_app,
};
use crate::logout_receiver::{Receiver, verify_logout_token};

/// The account page in `browser`, which must be signed in.
async fn account_page(app: &TestApp, browser: &Browser) -> String {
    let (url, status, html) = browser.open(&app.url("/account")).await.page();
    assert_eq!(url.path(), "/account");
    assert_eq!(status, StatusCode::OK);
    html
}

fn hidden(html: &str, name: &str) -> Vec<String> {
    hidden_inputs(html)
        .into_iter()
        .filter(|(n, _)| n == name)
        .map(|(_, v)| v)
        .collect()
}

/// Posts an account form from `browser` with the page's CSRF token and `fields`.
async fn post_account(
    app: &TestApp,
    browser: &Browser,
    path: &str,
    fields: &[(&str, &str)],
) -> Outcome {
    let html = account_page(app, browser).await;
    let csrf = hidden(&html, "csrf").remove(0);
    let mut form = vec![("csrf", csrf.as_str())];
    form.extend_from_slice(fields);
    let response = browser
        .http
        .post(app.url(path))
        .form(&form)
        .send()
        .await
        .unwrap();
    browser.follow(response).await
}

/// Offline tokens for `client` in a fresh browser signed in as alice.
async fn signed_in_with_tokens(app: &TestApp, client: &TestClient) -> (Value, Browser, String) {
    let (tokens, browser) = app.offline_tokens(client, "alice").await;
    let sid = jwt_part(tokens["id_token"].as_str().unwrap(), 1)["sid"]
        .as_str()
        .unwrap()
        .to_owned();
    (tokens, browser, sid)
}

async fn prompt_none_error(
    app: &TestApp,
    browser: &Browser,
    client: &TestClient,
) -> Option<String> {
    let (url, _) = app.authorize_url(client, &[("prompt", "none"), ("scope", "openid")]);
    query(&browser.open(&url).await.left(), "error")
}

async fn tokens_work(app: &TestApp, client: &TestClient, tokens: &Value) -> (bool, bool) {
    let access = app
        .userinfo_status(tokens["access_token"].as_str().unwrap())
        .await
        == 200;
    let refresh = app
        .refresh(client, tokens["refresh_token"].as_str().unwrap(), &[])
        .await
        .status()
        == StatusCode::OK;
    (access, refresh)
}

#[tokio::test]
async fn the_account_page_signs_in_first_then_lists_sessions_and_apps() {
    let app = spawn_app().await;
    app.add_user("alice").await;
    let browser = app.browser();
    let outcome = browser.open(&app.url("/account")).await;
    assert!(outcome.is_page("/login"), "a sign-in first");
    let (url, status, html) = browser.login(outcome, "alice").await.page();
    assert_eq!((url.path(), status), ("/account", StatusCode::OK));
    assert!(
        html.contains("Signed in as <strong>alice</strong>"),
        "{html}"
    );
    assert_eq!(hidden(&html, "sid").len(), 1);
    assert!(html.contains("this browser"));
    assert!(html.contains("None yet."), "no apps yet");

    // An app allowed in this session shows up, by name, with what it may do.
    let client = app.add_client(false);
    let (url, _) = app.authorize_url(&client, &[]);
    browser
        .consent_if_asked(browser.open(&url).await)
        .await
        .left();
    let html = account_page(&app, &browser).await;
    assert!(html.contains("Test App"), "{html}");
    assert!(html.contains("openid profile email") || html.contains("email openid profile"));
    assert_eq!(hidden(&html, "client_id"), vec![client.id.clone()]);
    assert!(html.contains("127.0.0.1"), "the address it signed in from");
}

#[tokio::test]
async fn ending_another_session_signs_that_browser_out_and_ends_its_tokens() {
    let app = spawn_app().await;
    app.add_user("alice").await;
    let client = app.add_refreshing_client();
    let (mine, here, my_sid) = signed_in_with_tokens(&app, &client).await;
    let (theirs, there, their_sid) = signed_in_with_tokens(&app, &client).await;
    let html = account_page(&app, &here).await;
    let mut sids = hidden(&html, "sid");
    sids.sort();
    let mut both = vec![my_sid.clone(), their_sid.clone()];
    both.sort();
    assert_eq!(sids, both, "both sessions are listed");

    let outcome = post_account(&app, &here, "/account/sessions/end", &[("sid", &their_sid)]).await;
    let (url, _, html) = outcome.page();
    assert_eq!(url.path(), "/account", "back to the account page");
    assert_eq!(hidden(&html, "sid"), vec![my_sid]);

    assert_eq!(
        prompt_none_error(&app, &there, &client).await.as_deref(),
        Some("login_required")
    );
    assert_eq!(tokens_work(&app, &client, &theirs).await, (false, false));
    assert_eq!(
        tokens_work(&app, &client, &mine).await,
        (true, true),
        "this browser's session and tokens are untouched"
    );
    assert_eq!(prompt_none_error(&app, &here, &client).await, None);
}

#[tokio::test]
async fn ending_this_browsers_own_session_signs_it_out() {
    let app = spawn_app().await;
    app.add_user("alice").await;
    let client = app.add_refreshing_client();
    let (_, browser, sid) = signed_in_with_tokens(&app, &client).await;
    let (_, status, html) = post_account(&app, &browser, "/account/sessions/end", &[("sid", &sid)])
        .await
        .page();
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("You are signed out"));
    assert_eq!(
        prompt_none_error(&app, &browser, &client).await.as_deref(),
        Some("login_required")
    );
}

#[tokio::test]
async fn signing_out_everywhere_ends_every_session_and_every_grant_and_tells_the_apps() {
    let app = spawn_app().await;
    let alice = app.add_user("alice").await;
    let receiver = Receiver::start().await;
    let client = app.add_client_with(portcullis::protocol::registration::ClientDraft {
        grant_types: vec!["authorization_code".into(), "refresh_token".into()],
        backchannel_logout_uri: Some(receiver.uri("rp")),
        ..Default::default()
    });
    let (first, here, sid_here) = signed_in_with_tokens(&app, &client).await;
    let (second, there, sid_there) = signed_in_with_tokens(&app, &client).await;

    let (_, status, html) = post_account(&app, &here, "/account/sign-out-everywhere", &[])
        .await
        .page();
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("You are signed out"));
    for browser in [&here, &there] {
        assert_eq!(
            prompt_none_error(&app, browser, &client).await.as_deref(),
            Some("login_required")
        );
    }
    for tokens in [&first, &second] {
        assert_eq!(tokens_work(&app, &client, tokens).await, (false, false));
    }
    // One logout token per ended session.
    let received = receiver.wait_for(2).await;
    let mut sids = Vec::new();
    for r in &received {
        let claims =
            verify_logout_token(r.token.as_deref().unwrap(), &app.issuer, &client.id).await;
        assert_eq!(claims["sub"], alice.as_str());
        sids.push(claims["sid"].as_str().unwrap().to_owned());
    }
    sids.sort();
    let mut expected = vec![sid_here, sid_there];
    expected.sort();
    assert_eq!(sids, expected);
    receiver.stop().await;
}

#[tokio::test]
async fn withdrawing_an_apps_consent_revokes_its_tokens_and_asks_again() {
    let app = spawn_app().await;
    app.add_user("alice").await;
    let (client, other) = (app.add_refreshing_client(), app.add_refreshing_client());
    let (tokens, browser, _) = signed_in_with_tokens(&app, &client).await;
    let (url, pkce) = app.authorize_url(
        &other,
        &[("scope", "openid offline_access"), ("prompt", "consent")],
    );
    let callback = browser
        .consent_if_asked(browser.open(&url).await)
        .await
        .left();
    let other_tokens = app.exchange(&other, &callback, &pkce).await;

    let (url, _, html) = post_account(
        &app,
        &browser,
        "/account/consents/withdraw",
        &[("client_id", &client.id)],
    )
    .await
    .page();
    assert_eq!(url.path(), "/account");
    assert_eq!(hidden(&html, "client_id"), vec![other.id.clone()]);
    assert_eq!(tokens_work(&app, &client, &tokens).await, (false, false));
    assert_eq!(
        prompt_none_error(&app, &browser, &client).await.as_deref(),
        Some("consent_required")
    );
    assert_eq!(
        tokens_work(&app, &other, &other_tokens).await,
        (true, true),
        "the other app keeps its access"
    );
}

#[tokio::test]
async fn account_forms_need_this_browsers_token_and_the_users_own_sessions() {
    let app = spawn_app().await;
    app.add_user("alice").await;
    app.add_user("bob").await;
    let client = app.add_refreshing_client();
    let (_, alices, alice_sid) = signed_in_with_tokens(&app, &client).await;
    let (bobs_tokens, bobs) = app.offline_tokens(&client, "bob").await;
    let bob_sid = jwt_part(bobs_tokens["id_token"].as_str().unwrap(), 1)["sid"]
        .as_str()
        .unwrap()
        .to_owned();

    // Bob's session is not Alice's to end; the answer does not tell it exists.
    let (_, status, _) = post_account(&app, &alices, "/account/sessions/end", &[("sid", &bob_sid)])
        .await
        .page();
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        prompt_none_error(&app, &bobs, &client).await,
        None,
        "bob is still signed in"
    );

    // A forged token, another browser's token, a cross-site origin: refused.
    let html = account_page(&app, &alices).await;
    let csrf = hidden(&html, "csrf").remove(0);
    let bob_csrf = hidden(&account_page(&app, &bobs).await, "csrf").remove(0);
    for (token, origin) in [
        ("forged", None),
        (bob_csrf.as_str(), None),
        (csrf.as_str(), Some("https://evil.example")),
    ] {
        let mut request = alices
            .http
            .post(app.url("/account/sign-out-everywhere"))
            .form(&[("csrf", token)]);
        if let Some(o) = origin {
            request = request.header("origin", o);
        }
        let status = request.send().await.unwrap().status();
        assert_eq!(status, StatusCode::BAD_REQUEST, "{token} {origin:?}");
    }
    assert_eq!(
        prompt_none_error(&app, &alices, &client).await,
        None,
        "alice too"
    );
    let _ = alice_sid;

    // Without a session there is nothing to act on.
    let stranger = app.browser();
    let response = stranger
        .http
        .post(app.url("/account/sign-out-everywhere"))
        .form(&[("csrf", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
}
