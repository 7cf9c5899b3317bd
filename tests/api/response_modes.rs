//! Response modes (OAuth 2.0 Multiple Response Types §2.1, Form Post Response Mode):
//! query, fragment and form_post, for successes and for errors.

use reqwest::StatusCode;

use crate::helpers::{TestApp, TestClient, hidden_inputs, query, spawn_app};

/// A browser that signed in and consented to `client` (so that `prompt=none` succeeds).
async fn consented(app: &TestApp, client: &TestClient) -> crate::helpers::Browser {
    let browser = app.browser();
    let (url, _) = app.authorize_url(client, &[]);
    browser.sign_in(&url, "alice").await;
    browser
}

fn fragment(url: &url::Url, name: &str) -> Option<String> {
    url::form_urlencoded::parse(url.fragment()?.as_bytes())
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

#[tokio::test]
async fn fragment_mode_puts_the_code_state_and_issuer_in_the_fragment() {
    let app = spawn_app().await;
    app.add_user("alice").await;
    let client = app.add_client(false);
    let browser = consented(&app, &client).await;
    let (url, pkce) = app.authorize_url(
        &client,
        &[("response_mode", "fragment"), ("prompt", "none")],
    );
    let back = browser.open(&url).await.left();
    assert_eq!(query(&back, "code"), None, "nothing in the query");
    assert_eq!(fragment(&back, "state").as_deref(), Some("st-123"));
    assert_eq!(fragment(&back, "iss").as_deref(), Some(app.issuer.as_str()));
    let code = fragment(&back, "code").unwrap();
    let response = app.redeem(&client, &code, Some(&pkce.verifier)).await;
    assert_eq!(response.status(), StatusCode::OK);
}

#[tokio::test]
async fn form_post_mode_answers_with_a_self_submitting_form_under_a_strict_policy() {
    let app = spawn_app().await;
    app.add_user("alice").await;
    let client = app.add_client(false);
    let browser = consented(&app, &client).await;
    let (url, pkce) = app.authorize_url(
        &client,
        &[("response_mode", "form_post"), ("prompt", "none")],
    );
    let response = browser.http.get(&url).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK, "a page, not a redirect");
    assert_eq!(response.headers()["cache-control"], "no-store");
    let csp = response.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    let html = response.text().await.unwrap();

    // The form goes to the registered redirect URI with the response's parameters.
    let action = html.split("action=\"").nth(1).unwrap();
    let action = action[..action.find('"').unwrap()]
        .replace("&#x2f;", "/")
        .replace("&#47;", "/");
    assert_eq!(action, client.redirect_uri);
    assert!(html.contains("method=\"post\""));
    let fields = hidden_inputs(&html);
    let field = |name: &str| {
        fields.iter().find(|(n, _)| n == name).map(|(_, v)| {
            v.replace("&#x2f;", "/")
                .replace("&#47;", "/")
                .replace("&#38;", "&")
        })
    };
    assert_eq!(field("state").as_deref(), Some("st-123"));
    assert_eq!(field("iss").as_deref(), Some(app.issuer.as_str()));
    let code = field("code").unwrap();
    // Without scripts a button submits it; the one script runs under this response's nonce.
    assert!(html.contains("<button type=\"submit\">"));
    let nonce = html.split("<script nonce=\"").nth(1).unwrap();
    let nonce = &nonce[..nonce.find('"').unwrap()];
    assert!(nonce.len() >= 16);
    assert!(
        csp.contains(&format!("script-src 'nonce-{nonce}'")),
        "{csp}"
    );
    assert!(
        csp.contains("form-action 'self' http://127.0.0.1:1"),
        "{csp}"
    );
    assert!(
        csp.contains("default-src 'none'") && !csp.contains("unsafe-inline"),
        "{csp}"
    );

    let response = app.redeem(&client, &code, Some(&pkce.verifier)).await;
    assert_eq!(response.status(), StatusCode::OK);

    // Another response, another nonce.
    let (url, _) = app.authorize_url(
        &client,
        &[("response_mode", "form_post"), ("prompt", "none")],
    );
    let again = browser
        .http
        .get(&url)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(!again.contains(&format!("nonce=\"{nonce}\"")));
}

#[tokio::test]
async fn errors_travel_in_the_requested_mode() {
    let app = spawn_app().await;
    app.add_user("alice").await;
    let client = app.add_client(false);
    let browser = app.browser();

    // No session and prompt=none: login_required, in the fragment.
    let (url, _) = app.authorize_url(
        &client,
        &[("response_mode", "fragment"), ("prompt", "none")],
    );
    let back = browser.open(&url).await.left();
    assert_eq!(fragment(&back, "error").as_deref(), Some("login_required"));
    assert_eq!(fragment(&back, "state").as_deref(), Some("st-123"));

    // A validation error after the redirect URI is known: in the posted form.
    let (url, _) = app.authorize_url(
        &client,
        &[
            ("response_mode", "form_post"),
            ("code_challenge_method", "plain"),
        ],
    );
    let (_, status, html) = browser.open(&url).await.page();
    assert_eq!(status, StatusCode::OK);
    let fields = hidden_inputs(&html);
    assert!(
        fields.contains(&("error".to_owned(), "invalid_request".to_owned())),
        "{html}"
    );
    assert!(fields.contains(&("state".to_owned(), "st-123".to_owned())));

    // An unknown mode: invalid_request, in the default mode (query).
    let (url, _) = app.authorize_url(&client, &[("response_mode", "web_message")]);
    let back = browser.open(&url).await.left();
    assert_eq!(query(&back, "error").as_deref(), Some("invalid_request"));
    assert_eq!(query(&back, "state").as_deref(), Some("st-123"));

    // An unregistered redirect URI never gets a response, in any mode.
    let (url, _) = app.authorize_url(
        &client,
        &[
            ("response_mode", "form_post"),
            ("redirect_uri", "https://evil.example/cb"),
        ],
    );
    let (_, status, html) = browser.open(&url).await.page();
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(!html.contains("evil.example"), "no form to the attacker");
}

#[tokio::test]
async fn discovery_lists_the_response_modes() {
    let app = spawn_app().await;
    let doc = app.get_json("/.well-known/openid-configuration").await;
    assert_eq!(
        doc["response_modes_supported"],
        serde_json::json!(["query", "fragment", "form_post"])
    );
}
