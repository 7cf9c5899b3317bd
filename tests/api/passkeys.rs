//! Passkeys over HTTP (issue 22), with a software authenticator standing in for the
//! browser and its device: the JSON endpoints behind `static/passkey.js`, what they
//! answer to bad input (a 4xx `{"error": ...}`, never a 500) and that nothing is stored
//! or signed in by it. The real browser's ceremonies are `browser_passkeys`.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{
    Browser, Options, TestApp, hidden_inputs, jwt_part, spawn_app, spawn_app_with, status_and_json,
};

/// The unit tests' software authenticator (`protocol::passkeys`), answering as a browser
/// at the issuer's origin would.
#[allow(dead_code)]
#[path = "../../src/protocol/passkeys/soft_authenticator.rs"]
pub(crate) mod soft_authenticator;

use soft_authenticator::Authenticator;

async fn app_at_localhost() -> TestApp {
    spawn_app_with(Options {
        issuer_host: Some("localhost"),
        ..Options::default()
    })
    .await
}

fn origin(app: &TestApp) -> String {
    url::Url::parse(&app.issuer)
        .unwrap()
        .origin()
        .ascii_serialization()
}

/// POSTs `body` as the script does (JSON, from our own page).
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

/// A 4xx with `{"error": "<words>"}`: what the script shows.
async fn refused(response: reqwest::Response) -> (StatusCode, String) {
    let (status, body) = status_and_json(response).await;
    assert!(status.is_client_error(), "{status}: {body}");
    let message = body["error"].as_str().unwrap_or_default().to_owned();
    assert!(message.ends_with('.'), "words for a person: {body}");
    (status, message)
}

/// A browser signed in to the account page just now, and the security page's form token;
/// the page offers to add a passkey.
async fn on_security_page(app: &TestApp, username: &str) -> (Browser, String) {
    let (browser, html, csrf) = app.on_security_page(username).await;
    assert!(html.contains("data-passkey=\"register\""), "{html}");
    (browser, csrf)
}

/// Registers a passkey of `authenticator` through the security page's endpoints; returns
/// the finish request's body (to replay).
async fn add_passkey(
    app: &TestApp,
    browser: &Browser,
    csrf: &str,
    authenticator: &mut Authenticator,
    name: Option<&str>,
) -> Value {
    let response = post_json(
        app,
        browser,
        "/account/security/passkey/options",
        &json!({ "csrf": csrf }),
    )
    .await;
    let (status, options) = status_and_json(response).await;
    assert_eq!(status, StatusCode::OK, "{options}");
    let credential = authenticator.create(&options);
    let mut body = json!({ "csrf": csrf, "credential": credential });
    if let Some(name) = name {
        body["name"] = json!(name);
    }
    let response = post_json(app, browser, "/account/security/passkey/finish", &body).await;
    let (status, answer) = status_and_json(response).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["redirect"], "/account/security");
    body
}

/// The login page of a new authorization request: its interaction handle and token.
async fn login_page(browser: &Browser, authorize: &str) -> (String, String, String) {
    let (_, status, html) = browser.open(authorize).await.page();
    assert_eq!(status, StatusCode::OK);
    let inputs = hidden_inputs(&html);
    let value = |name: &str| {
        inputs
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
            .unwrap()
    };
    (value("id"), value("csrf"), html)
}

fn user_id_of(app: &TestApp, username: &str) -> String {
    app.store
        .find_user_by_username(username)
        .unwrap()
        .unwrap()
        .id
}

#[tokio::test]
async fn a_passkey_added_on_the_security_page_signs_in_with_no_username() {
    let app = app_at_localhost().await;
    app.add_user("alice").await;
    let alice = user_id_of(&app, "alice");
    let client = app.add_client(false);
    let mut laptop = Authenticator::new(&origin(&app));
    let (browser, csrf) = on_security_page(&app, "alice").await;
    add_passkey(&app, &browser, &csrf, &mut laptop, Some("Laptop")).await;
    let stored = app.store.list_passkeys(&alice).unwrap();
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].name, "Laptop");
    let (_, _, html) = browser.open(&app.url("/account/security")).await.page();
    assert!(html.contains("Laptop"), "{html}");

    // Another browser: the login page offers the passkey, and the username field's
    // autofill may too.
    let other = app.browser();
    let (authorize, pkce) = app.authorize_url(&client, &[]);
    let response = other.http.get(&authorize).send().await.unwrap();
    let login = other.follow(response).await;
    let (url, _, html) = login.page();
    assert!(html.contains("Sign in with a passkey"), "{html}");
    assert!(
        html.contains("autocomplete=\"username webauthn\""),
        "{html}"
    );
    let page = other.http.get(url.clone()).send().await.unwrap();
    let csp = page.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        csp.contains("script-src 'self'") && csp.contains("connect-src 'self'"),
        "{csp}"
    );
    let inputs = hidden_inputs(&html);
    let field = |name: &str| inputs.iter().find(|(n, _)| n == name).unwrap().1.clone();
    let (id, token) = (field("id"), field("csrf"));

    let ask = json!({ "csrf": token, "interaction": id });
    let response = post_json(&app, &other, "/login/passkey/options", &ask).await;
    let (status, options) = status_and_json(response).await;
    assert_eq!(status, StatusCode::OK, "{options}");
    assert_eq!(options["allowCredentials"], json!([]), "no username");
    let credential = laptop.get(&options, 0);
    let body = json!({ "csrf": token, "interaction": id, "credential": credential });
    let response = post_json(&app, &other, "/login/passkey/finish", &body).await;
    let (status, answer) = status_and_json(response).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    let next = answer["redirect"].as_str().unwrap();
    assert!(next.starts_with("/login/factor?id="), "{next}");
    let callback = other.open(&app.url(next)).await;
    let callback = other.consent_if_asked(callback).await.left();
    let tokens = app.exchange(&client, &callback, &pkce).await;
    let id_token = jwt_part(tokens["id_token"].as_str().unwrap(), 1);
    assert_eq!(id_token["sub"], alice.as_str());
    assert_eq!(
        id_token["amr"],
        json!(["swk", "mfa"]),
        "a synced, verifying passkey"
    );
    assert!(
        app.store.list_passkeys(&alice).unwrap()[0]
            .last_used_at
            .is_some()
    );
}

#[tokio::test]
async fn malformed_replayed_and_expired_passkey_answers_get_a_json_error_and_change_nothing() {
    let app = app_at_localhost().await;
    app.add_user("alice").await;
    let alice = user_id_of(&app, "alice");
    let (browser, csrf) = on_security_page(&app, "alice").await;
    let finish = "/account/security/passkey/finish";

    // Malformed: not JSON, not declared as JSON, no credential, a credential that is not
    // one. Nothing is stored.
    let not_json = browser
        .http
        .post(app.url(finish))
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(refused(not_json).await.0, StatusCode::BAD_REQUEST);
    let as_form = browser
        .http
        .post(app.url(finish))
        .form(&[("csrf", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(refused(as_form).await.0, StatusCode::BAD_REQUEST);
    for body in [
        json!({ "csrf": csrf }),
        json!({ "csrf": csrf, "credential": "a string" }),
        json!({ "csrf": csrf, "credential": { "id": "AAAA", "response": {} } }),
        json!({ "csrf": csrf, "credential": { "response": { "clientDataJSON": "e30" } } }),
    ] {
        let (status, _) = refused(post_json(&app, &browser, finish, &body).await).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    }
    // A real answer with a broken signature part is refused too, and uses its ceremony up.
    let mut broken = Authenticator::new(&origin(&app));
    let response = post_json(
        &app,
        &browser,
        "/account/security/passkey/options",
        &json!({ "csrf": csrf }),
    )
    .await;
    let options: Value = response.json().await.unwrap();
    let mut credential = broken.create(&options);
    credential["response"]["attestationObject"] = json!("AAAA");
    let body = json!({ "csrf": csrf, "credential": credential });
    let (status, message) = refused(post_json(&app, &browser, finish, &body).await).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(message.contains("could not be read"), "{message}");
    assert!(app.store.list_passkeys(&alice).unwrap().is_empty());

    // Replayed: that ceremony was taken by the first answer, right or wrong.
    let (status, message) = refused(post_json(&app, &browser, finish, &body).await).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        message.contains("expired or was already answered"),
        "{message}"
    );
    assert!(app.store.list_passkeys(&alice).unwrap().is_empty());
    // A right answer sent twice registers once (the second is refused before its
    // ceremony is even looked for: the account has two factors now, the session one).
    let mut laptop = Authenticator::new(&origin(&app));
    let first = add_passkey(&app, &browser, &csrf, &mut laptop, None).await;
    refused(post_json(&app, &browser, finish, &first).await).await;
    let stored = app.store.list_passkeys(&alice).unwrap();
    assert_eq!(stored.len(), 1);
    assert_eq!(
        stored[0].name, "An unknown browser",
        "named after the browser"
    );

    // A sign-in answered after its ceremony's time: refused, nobody signed in, the
    // passkey not used; and that answer again is a replay.
    let client = app.add_client(false);
    let other = app.browser();
    let (authorize, _) = app.authorize_url(&client, &[]);
    let (id, token, _) = login_page(&other, &authorize).await;
    let ask = json!({ "csrf": token, "interaction": id });
    let response = post_json(&app, &other, "/login/passkey/options", &ask).await;
    let options: Value = response.json().await.unwrap();
    let credential = laptop.get(&options, 0);
    app.clock.advance(301);
    let body = json!({ "csrf": token, "interaction": id, "credential": credential });
    let response = post_json(&app, &other, "/login/passkey/finish", &body).await;
    assert!(response.headers().get("set-cookie").is_none());
    let (status, message) = refused(response).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(message.contains("expired"), "{message}");
    let (status, _) = refused(post_json(&app, &other, "/login/passkey/finish", &body).await).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        app.store.list_passkeys(&alice).unwrap()[0].last_used_at,
        None
    );
    let (_, _, html) = other
        .open(&app.url(&format!("/login/factor?id={id}")))
        .await
        .page();
    assert!(
        html.contains("name=\"password\""),
        "still at the login page: {html}"
    );

    // A right answer, then the same answer again: the replay signs in nobody.
    let response = post_json(&app, &other, "/login/passkey/options", &ask).await;
    let options: Value = response.json().await.unwrap();
    let credential = laptop.get(&options, 0);
    let body = json!({ "csrf": token, "interaction": id, "credential": credential });
    let (status, _) =
        status_and_json(post_json(&app, &other, "/login/passkey/finish", &body).await).await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = refused(post_json(&app, &other, "/login/passkey/finish", &body).await).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn passkey_requests_need_the_pages_token_and_adding_one_a_recent_sign_in() {
    let app = app_at_localhost().await;
    app.add_user("alice").await;
    let (browser, csrf) = on_security_page(&app, "alice").await;
    let options = "/account/security/passkey/options";
    let (status, _) =
        refused(post_json(&app, &browser, options, &json!({ "csrf": "forged" })).await).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    // Another site's page, with the right token.
    let cross_site = browser
        .http
        .post(app.url(options))
        .header("origin", "http://evil.localhost:1")
        .json(&json!({ "csrf": csrf }))
        .send()
        .await
        .unwrap();
    assert_eq!(refused(cross_site).await.0, StatusCode::FORBIDDEN);
    // No session at all.
    let stranger = app.browser();
    let (status, _) =
        refused(post_json(&app, &stranger, options, &json!({ "csrf": csrf })).await).await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    // Minutes later the sign-in is not recent: confirm it's you first.
    app.clock.advance(600);
    let (status, message) =
        refused(post_json(&app, &browser, options, &json!({ "csrf": csrf })).await).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(message.contains("Confirm it's you"), "{message}");
    let (_, _, html) = browser.open(&app.url("/account/security")).await.page();
    assert!(html.contains("Confirm it&#39;s you</button>"), "{html}");
    assert!(!html.contains("data-passkey-start"), "{html}");

    // A login page's token is no good on another interaction.
    let client = app.add_client(false);
    let other = app.browser();
    let (authorize, _) = app.authorize_url(&client, &[]);
    let (id, token, _) = login_page(&other, &authorize).await;
    let (other_id, _, _) = login_page(&other, &authorize).await;
    assert_ne!(id, other_id);
    let ask = json!({ "csrf": token, "interaction": other_id });
    let (status, _) = refused(post_json(&app, &other, "/login/passkey/options", &ask).await).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn an_issuer_at_an_ip_address_has_no_passkeys() {
    let app = spawn_app().await;
    app.add_user("alice").await;
    let client = app.add_client(false);
    let browser = app.browser();
    let (authorize, _) = app.authorize_url(&client, &[]);
    let (id, token, html) = login_page(&browser, &authorize).await;
    assert!(!html.contains("Sign in with a passkey"), "{html}");
    assert!(
        html.contains("autocomplete=\"username webauthn\""),
        "{html}"
    );
    let ask = json!({ "csrf": token, "interaction": id });
    let (status, message) =
        refused(post_json(&app, &browser, "/login/passkey/options", &ask).await).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(message, "Passkeys are not available on this server.");
}
