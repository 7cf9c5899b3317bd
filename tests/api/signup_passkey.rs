//! An invitation accepted with a passkey instead of a password (issue 23 §4), over HTTP:
//! the invitation page's script endpoints (`/signup/invitation/passkey/{options,finish}`)
//! answered by the software authenticator, then a sign-in with that passkey on the login
//! page. The real browser's ceremony is `browser_signup`.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::admin_api::{audit_events, automation, call};
use crate::helpers::{
    Browser, Options, PASSWORD, TestApp, hidden_inputs, jwt_part, spawn_app_with, status_and_json,
};
use crate::signup::link_mailed_to;

use crate::passkeys::soft_authenticator::Authenticator;

const OPTIONS: &str = "/signup/invitation/passkey/options";
const FINISH: &str = "/signup/invitation/passkey/finish";

fn options_with(database_url: Option<String>, mut env: Vec<(&'static str, String)>) -> Options {
    env.push(("SIGNUP", "invite".to_owned()));
    Options {
        issuer_host: Some("localhost"),
        database_url,
        env,
        ..Options::default()
    }
}

fn origin(app: &TestApp) -> String {
    url::Url::parse(&app.issuer)
        .unwrap()
        .origin()
        .ascii_serialization()
}

async fn post_json(
    app: &TestApp,
    browser: &Browser,
    path: &str,
    body: &Value,
) -> reqwest::Response {
    browser
        .http
        .post(app.url(path))
        .header("origin", origin(app))
        .json(body)
        .send()
        .await
        .unwrap()
}

/// A 4xx with `{"error": "<words>"}`.
async fn refused(response: reqwest::Response) -> (StatusCode, String) {
    let (status, body) = status_and_json(response).await;
    assert!(status.is_client_error(), "{status}: {body}");
    let message = body["error"].as_str().unwrap_or_default().to_owned();
    assert!(message.ends_with('.'), "words for a person: {body}");
    (status, message)
}

/// Invites `email` by the admin API; the link of its mail.
async fn invite(app: &TestApp, email: &str) -> String {
    let (_, token) = automation(app).await;
    let (status, sent) = call(
        app,
        Some(&token),
        Method::POST,
        "/invitations",
        Some(json!({ "email": email })),
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{sent}");
    link_mailed_to(app, email, "/signup/invitation").await.0
}

/// The invitation's page in `browser`: its form token and the invitation's token.
async fn invitation_page(browser: &Browser, link: &str) -> (String, String, String) {
    let (_, status, html) = browser.open(link).await.page();
    assert_eq!(status, StatusCode::OK, "{html}");
    let inputs = hidden_inputs(&html);
    let field = |name: &str| inputs.iter().find(|(n, _)| n == name).unwrap().1.clone();
    (field("csrf"), field("token"), html)
}

/// The options for `username`, answered by `authenticator`: the finish request's body.
async fn answered(
    app: &TestApp,
    browser: &Browser,
    (csrf, token): (&str, &str),
    username: &str,
    authenticator: &mut Authenticator,
) -> Value {
    let ask = json!({ "csrf": csrf, "token": token, "username": username });
    let response = post_json(app, browser, OPTIONS, &ask).await;
    assert_eq!(response.headers()["cache-control"], "no-store");
    let (status, options) = status_and_json(response).await;
    assert_eq!(status, StatusCode::OK, "{options}");
    assert_eq!(options["user"]["name"], username.trim());
    let credential = authenticator.create(&options);
    json!({ "csrf": csrf, "token": token, "credential": credential })
}

/// Signs in with `authenticator`'s passkey on the login page of a new authorization
/// request; the ID token's claims.
async fn passkey_sign_in(app: &TestApp, authenticator: &mut Authenticator) -> Value {
    let client = app.add_client(false);
    let browser = app.browser();
    let (authorize, pkce) = app.authorize_url(&client, &[]);
    let (_, status, html) = browser.open(&authorize).await.page();
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("Sign in with a passkey"), "{html}");
    let inputs = hidden_inputs(&html);
    let field = |name: &str| inputs.iter().find(|(n, _)| n == name).unwrap().1.clone();
    let (id, csrf) = (field("id"), field("csrf"));
    let ask = json!({ "csrf": csrf, "interaction": id });
    let (status, options) =
        status_and_json(post_json(app, &browser, "/login/passkey/options", &ask).await).await;
    assert_eq!(status, StatusCode::OK, "{options}");
    let credential = authenticator.get(&options, 0);
    let body = json!({ "csrf": csrf, "interaction": id, "credential": credential });
    let (status, answer) =
        status_and_json(post_json(app, &browser, "/login/passkey/finish", &body).await).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    let callback = browser
        .open(&app.url(answer["redirect"].as_str().unwrap()))
        .await;
    let callback = browser.consent_if_asked(callback).await.left();
    let tokens = app.exchange(&client, &callback, &pkce).await;
    assert!(tokens["access_token"].is_string(), "{tokens}");
    jwt_part(tokens["id_token"].as_str().unwrap(), 1)
}

async fn an_invitation_accepted_with_a_passkey_signs_in_with_it(app: TestApp) {
    let link = invite(&app, "pia@example.org").await;
    let browser = app.browser();
    let (csrf, token, html) = invitation_page(&browser, &link).await;
    assert!(html.contains("data-passkey=\"invitation\""), "{html}");
    assert!(html.contains("Create a passkey"), "{html}");
    assert!(
        html.contains("name=\"password\""),
        "the password stays: {html}"
    );

    let mut phone = Authenticator::new(&origin(&app));
    let mut body = answered(&app, &browser, (&csrf, &token), "Pia", &mut phone).await;
    body["name"] = json!("Phone");
    let response = post_json(&app, &browser, FINISH, &body).await;
    assert_eq!(response.headers()["cache-control"], "no-store");
    let (status, answer) = status_and_json(response).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["redirect"], "/account");

    let pia = app.store.find_user_by_username("pia").unwrap().unwrap();
    assert_eq!(pia.username, "Pia");
    assert_eq!(pia.email.as_deref(), Some("pia@example.org"));
    assert!(pia.email_verified);
    assert_eq!(pia.password_hash, "", "no password");
    let passkeys = app.store.list_passkeys(&pia.id).unwrap();
    assert_eq!(passkeys.len(), 1);
    assert_eq!(passkeys[0].name, "Phone");

    // Replayed: the ceremony was taken; nothing more is made.
    let (status, message) = refused(post_json(&app, &browser, FINISH, &body).await).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        message.contains("expired or was already answered"),
        "{message}"
    );
    assert_eq!(app.store.list_passkeys(&pia.id).unwrap().len(), 1);
    // The link is spent: its page says so, and no new ceremony starts.
    let (_, status, _) = browser.open(&link).await.page();
    assert_eq!(status, StatusCode::GONE);
    let ask = json!({ "csrf": csrf, "token": token, "username": "pia2" });
    let (status, _) = refused(post_json(&app, &browser, OPTIONS, &ask).await).await;
    assert_eq!(status, StatusCode::GONE);

    // The passkey signs the new account in, with no username.
    let claims = passkey_sign_in(&app, &mut phone).await;
    assert_eq!(claims["sub"], pia.id.as_str());

    // The password path of that account fails: it has none.
    let client = app.add_client(false);
    let (authorize, _) = app.authorize_url(&client, &[]);
    let other = app.browser();
    for password in [PASSWORD, ""] {
        let page = other.open(&authorize).await;
        let (url, _, html) = page.page();
        let outcome = other
            .submit(&url, &html, &[("username", "pia"), ("password", password)])
            .await;
        let (url, status, html) = outcome.page();
        assert!(url.path().ends_with("/login"), "{url}");
        assert!(status.is_client_error(), "{status}: {html}");
    }

    let (_, admin) = automation(&app).await;
    let events = audit_events(&app, &admin, "").await;
    let joined = events
        .iter()
        .find(|e| e["action"] == "user.signed_up")
        .unwrap();
    let details = &joined["details"];
    assert_eq!(details["via"], "invitation");
    assert_eq!(details["with"], "passkey");
    app.stop().await;
}

#[tokio::test]
async fn an_invitation_accepted_with_a_passkey_makes_a_passwordless_account_that_signs_in() {
    let app = spawn_app_with(options_with(None, vec![])).await;
    an_invitation_accepted_with_a_passkey_signs_in_with_it(app).await;
}

#[tokio::test]
async fn an_invitation_accepted_with_a_passkey_on_postgresql_and_redis() {
    let (Some(db), Some(redis)) = (
        crate::backends::TempDatabase::create(),
        crate::backends::TempRedis::create(),
    ) else {
        return;
    };
    let env = vec![
        ("REDIS_URL", redis.url.clone()),
        ("REDIS_PREFIX", redis.prefix.clone()),
    ];
    let app = spawn_app_with(options_with(Some(db.url.clone()), env)).await;
    an_invitation_accepted_with_a_passkey_signs_in_with_it(app).await;
}

#[tokio::test]
async fn an_invitation_passkey_ceremony_cannot_finish_another_invitation() {
    let app = spawn_app_with(options_with(None, vec![])).await;
    let first = invite(&app, "una@example.org").await;
    let second = invite(&app, "vic@example.org").await;
    let browser = app.browser();
    let (csrf, token, _) = invitation_page(&browser, &first).await;
    let (other_csrf, other_token, _) = invitation_page(&browser, &second).await;
    let mut key = Authenticator::new(&origin(&app));
    let body = answered(&app, &browser, (&csrf, &token), "una", &mut key).await;

    // The answer sent for the other invitation (with that page's own token): no ceremony
    // of that invitation has this challenge.
    let mut crossed = body.clone();
    crossed["token"] = json!(other_token);
    crossed["csrf"] = json!(other_csrf);
    let (status, _) = refused(post_json(&app, &browser, FINISH, &crossed).await).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    // Nor with the first page's form token (bound to the first invitation).
    crossed["csrf"] = json!(csrf);
    let (status, _) = refused(post_json(&app, &browser, FINISH, &crossed).await).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    // Another browser with the right tokens: its ceremonies are its own.
    let stranger = app.browser();
    invitation_page(&stranger, &first).await;
    let (status, _) = refused(post_json(&app, &stranger, FINISH, &body).await).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(app.store.find_user_by_username("una").unwrap().is_none());

    // The username is checked as the form does it, before any ceremony.
    app.add_user("alice").await;
    for (username, expected) in [
        ("ALICE", StatusCode::CONFLICT),
        ("  ", StatusCode::BAD_REQUEST),
    ] {
        let ask = json!({ "csrf": csrf, "token": token, "username": username });
        let (status, message) = refused(post_json(&app, &browser, OPTIONS, &ask).await).await;
        assert_eq!(status, expected, "{message}");
    }

    // The first invitation still works with its own ceremony.
    let body = answered(&app, &browser, (&csrf, &token), "una", &mut key).await;
    let (status, answer) = status_and_json(post_json(&app, &browser, FINISH, &body).await).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert!(app.store.find_user_by_username("una").unwrap().is_some());
    assert!(app.store.find_user_by_username("vic").unwrap().is_none());
    app.stop().await;
}

#[tokio::test]
async fn invitation_passkey_requests_need_our_origin_and_the_pages_token() {
    let app = spawn_app_with(options_with(None, vec![])).await;
    let link = invite(&app, "wes@example.org").await;
    let browser = app.browser();
    let (csrf, token, _) = invitation_page(&browser, &link).await;
    let ask = json!({ "csrf": csrf, "token": token, "username": "wes" });
    // No form token, or a forged one.
    for body in [
        json!({ "token": token, "username": "wes" }),
        json!({ "csrf": "forged", "token": token, "username": "wes" }),
    ] {
        let (status, _) = refused(post_json(&app, &browser, OPTIONS, &body).await).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    }
    // Another site's request: said by its Origin, or (without one) by Sec-Fetch-Site.
    // (Neither header is no browser's request: the form token still binds it.)
    let no_origin = browser
        .http
        .post(app.url(OPTIONS))
        .header("sec-fetch-site", "cross-site")
        .json(&ask)
        .send()
        .await
        .unwrap();
    assert_eq!(refused(no_origin).await.0, StatusCode::FORBIDDEN);
    let cross_site = browser
        .http
        .post(app.url(OPTIONS))
        .header("origin", "http://evil.localhost:1")
        .json(&ask)
        .send()
        .await
        .unwrap();
    assert_eq!(refused(cross_site).await.0, StatusCode::FORBIDDEN);
    // Not JSON.
    let as_form = browser
        .http
        .post(app.url(OPTIONS))
        .header("origin", origin(&app))
        .form(&[("csrf", csrf.as_str()), ("token", token.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(refused(as_form).await.0, StatusCode::BAD_REQUEST);

    // A right answer from another site is refused, and makes nothing.
    let mut key = Authenticator::new(&origin(&app));
    let body = answered(&app, &browser, (&csrf, &token), "wes", &mut key).await;
    let no_origin = browser
        .http
        .post(app.url(FINISH))
        .header("sec-fetch-site", "same-site")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(refused(no_origin).await.0, StatusCode::FORBIDDEN);
    assert!(app.store.find_user_by_username("wes").unwrap().is_none());
    // A malformed answer.
    let mut broken = body.clone();
    broken["credential"] = json!("a string");
    let (status, _) = refused(post_json(&app, &browser, FINISH, &broken).await).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    // The right answer, from our page, still works (its ceremony was not taken by those).
    let (status, answer) = status_and_json(post_json(&app, &browser, FINISH, &body).await).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    app.stop().await;
}

#[tokio::test]
async fn an_invitation_page_without_passkeys_offers_none() {
    // An issuer at an IP address has no RP ID: no passkeys.
    let app = spawn_app_with(Options {
        env: vec![("SIGNUP", "invite".to_owned())],
        ..Options::default()
    })
    .await;
    let link = invite(&app, "xan@example.org").await;
    let browser = app.browser();
    let (csrf, token, html) = invitation_page(&browser, &link).await;
    assert!(!html.contains("data-passkey"), "{html}");
    assert!(!html.contains("passkey.js"), "{html}");
    let ask = json!({ "csrf": csrf, "token": token, "username": "xan" });
    let response = browser
        .http
        .post(app.url(OPTIONS))
        .header("origin", app.issuer.trim_end_matches('/'))
        .json(&ask)
        .send()
        .await
        .unwrap();
    assert_eq!(refused(response).await.0, StatusCode::NOT_FOUND);
    app.stop().await;
}
