//! A user changes their own password on the security page (issue 22 §5): only in a
//! session that signed in moments ago, with the new password typed twice and meeting the
//! rule; then every session of the user ends, this one too, and only the new password
//! signs in.

use reqwest::StatusCode;

use crate::helpers::{Browser, Outcome, PASSWORD, TestApp, spawn_app};

const NEW_PASSWORD: &str = "a brand new passphrase";

/// A browser signed in to the account page just now, and the security page's form token;
/// the page offers to change the password.
async fn on_security_page(app: &TestApp, username: &str) -> (Browser, String) {
    let (browser, html, csrf) = app.on_security_page(username).await;
    assert!(html.contains("value=\"password_change\""), "{html}");
    (browser, csrf)
}

async fn post_change(
    browser: &Browser,
    app: &TestApp,
    csrf: &str,
    password: &str,
    again: &str,
) -> reqwest::Response {
    browser
        .http
        .post(app.url("/account/security"))
        .form(&[
            ("csrf", csrf),
            ("action", "password_change"),
            ("password", password),
            ("password_again", again),
        ])
        .send()
        .await
        .unwrap()
}

async fn change(
    app: &TestApp,
    browser: &Browser,
    csrf: &str,
    password: &str,
    again: &str,
) -> Outcome {
    let response = post_change(browser, app, csrf, password, again).await;
    browser.follow(response).await
}

/// Whether a new browser signs `username` in with `password` at the account page.
async fn signs_in(app: &TestApp, username: &str, password: &str) -> bool {
    let browser = app.browser();
    let (url, _, html) = browser.open(&app.url("/account")).await.page();
    browser
        .submit(
            &url,
            &html,
            &[("username", username), ("password", password)],
        )
        .await
        .is_page("/account")
}

#[tokio::test]
async fn a_changed_password_signs_out_every_session_and_only_the_new_one_works() {
    let app = spawn_app().await;
    app.add_user("alice").await;
    let (browser, csrf) = on_security_page(&app, "alice").await;
    // Another browser, signed in to an app that holds tokens.
    let client = app.add_refreshing_client();
    let (tokens, elsewhere) = app.offline_tokens(&client, "alice").await;
    let refresh_token = tokens["refresh_token"].as_str().unwrap();
    let access_token = tokens["access_token"].as_str().unwrap();

    // The two entries differ, or it is too short: refused, with words, nothing changed.
    let (_, status, html) = change(&app, &browser, &csrf, NEW_PASSWORD, "something else")
        .await
        .page();
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        html.contains("role=\"alert\">The two passwords are not the same."),
        "{html}"
    );
    let (_, status, html) = change(&app, &browser, &csrf, "short", "short").await.page();
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        html.contains("role=\"alert\">This password is too short"),
        "{html}"
    );
    let (_, status, html) = change(&app, &browser, &csrf, "alice123", "alice123")
        .await
        .page();
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        html.contains("role=\"alert\">This password is too easy to guess"),
        "{html}"
    );
    // A forged form token changes nothing either.
    let (_, status, _) = change(&app, &browser, "forged", NEW_PASSWORD, NEW_PASSWORD)
        .await
        .page();
    assert!(status.is_client_error(), "{status}");
    assert!(signs_in(&app, "alice", PASSWORD).await);

    let response = post_change(&browser, &app, &csrf, NEW_PASSWORD, NEW_PASSWORD).await;
    assert_eq!(response.status(), StatusCode::OK);
    let cleared = response
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|c| c.to_str().ok())
        .any(|c| c.contains("Max-Age=0"));
    assert!(
        cleared,
        "the session cookie is cleared: {:?}",
        response.headers()
    );
    let html = response.text().await.unwrap();
    assert!(html.contains("Your password was changed."), "{html}");
    // The app's tokens from before are dead.
    assert_eq!(app.userinfo_status(access_token).await, 401);
    let refused = app.refresh(&client, refresh_token, &[]).await;
    assert_eq!(refused.status(), StatusCode::BAD_REQUEST);
    // Signed out here and elsewhere: the account page asks for a sign-in again.
    for b in [&browser, &elsewhere] {
        let (url, _, _) = b.open(&app.url("/account")).await.page();
        assert!(url.path().ends_with("/login"), "{url}");
    }
    // A sign-in in the second of the change might have been the intruder's: the next.
    app.clock.advance(1);
    assert!(!signs_in(&app, "alice", PASSWORD).await);
    assert!(signs_in(&app, "alice", NEW_PASSWORD).await);
    let events = app.store.list_audit_events(None, 20).unwrap();
    assert!(
        events
            .iter()
            .any(|e| e.action == "user.password_changed" && e.actor == "user:alice"),
        "{events:?}"
    );
}

#[tokio::test]
async fn a_sign_in_minutes_old_confirms_it_is_you_before_the_password_changes() {
    let app = spawn_app().await;
    app.add_user("alice").await;
    let (browser, csrf) = on_security_page(&app, "alice").await;
    app.clock.advance(600);
    let (_, _, html) = browser.open(&app.url("/account/security")).await.page();
    assert!(!html.contains("value=\"password_change\""), "{html}");
    assert!(
        html.contains("To change your password, confirm it"),
        "{html}"
    );
    // The form posted anyway starts a fresh sign-in and changes nothing.
    let (url, _, _) = change(&app, &browser, &csrf, NEW_PASSWORD, NEW_PASSWORD)
        .await
        .page();
    assert!(url.path().ends_with("/login"), "{url}");
    assert!(signs_in(&app, "alice", PASSWORD).await);
    assert!(!signs_in(&app, "alice", NEW_PASSWORD).await);
}
