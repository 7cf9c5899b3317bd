//! RFC 8707 resource indicators for a user's tokens: the authorization request names the
//! APIs (each one the client is registered for), the consent page shows them, the code
//! and its grant keep them, and every access token of the grant has them as `aud`; a
//! token request may narrow them, never widen them.

use portcullis::protocol::registration::ClientDraft;
use reqwest::StatusCode;
use serde_json::{Value, json};
use url::Url;

use crate::helpers::{Pkce, TestApp, TestClient, jwt_part, query, spawn_app};

const API: &str = "https://api.example/";
const OTHER_API: &str = "urn:example:reports";

/// A confidential client registered for both APIs, for `grant_types` and the response
/// types they imply (the code alone, unless `implicit` is among them).
fn api_client(app: &TestApp, grant_types: &[&str]) -> TestClient {
    let response_types = if grant_types.contains(&"implicit") {
        vec!["id_token token".into(), "code id_token token".into()]
    } else {
        vec![]
    };
    app.add_client_with(ClientDraft {
        grant_types: grant_types.iter().map(|t| (*t).to_owned()).collect(),
        response_types,
        resources: vec![API.into(), OTHER_API.into()],
        ..ClientDraft::default()
    })
}

const REFRESHING: [&str; 2] = ["authorization_code", "refresh_token"];

/// An authorization URL with each of `resources` as a `resource` parameter (the helper's
/// `extra` replaces a parameter rather than repeating it).
fn with_resources(
    app: &TestApp,
    client: &TestClient,
    extra: &[(&str, &str)],
    resources: &[&str],
) -> (String, Pkce) {
    let (url, pkce) = app.authorize_url(client, extra);
    let mut url = Url::parse(&url).unwrap();
    for resource in resources {
        url.query_pairs_mut().append_pair("resource", resource);
    }
    (url.to_string(), pkce)
}

fn audience(access_token: &str) -> Value {
    jwt_part(access_token, 1)["aud"].clone()
}

/// A code request for `client` with extra form fields.
async fn redeem_with(
    app: &TestApp,
    client: &TestClient,
    callback: &Url,
    pkce: &Pkce,
    extra: &[(&str, &str)],
) -> reqwest::Response {
    let code = query(callback, "code").unwrap();
    let mut form = vec![
        ("grant_type", "authorization_code"),
        ("code", &code),
        ("redirect_uri", &client.redirect_uri),
        ("code_verifier", &pkce.verifier),
    ];
    form.extend_from_slice(extra);
    let secret = client.secret.as_deref().unwrap();
    app.token_request(&form, Some((&client.id, secret))).await
}

async fn error_of(response: reqwest::Response) -> (StatusCode, String) {
    let status = response.status();
    let body: Value = response.json().await.unwrap();
    (
        status,
        body["error"].as_str().unwrap_or_default().to_owned(),
    )
}

#[tokio::test]
async fn a_code_flow_that_names_a_registered_resource_gets_an_access_token_for_it() {
    let app = spawn_app().await;
    app.add_user("alice").await;
    let client = api_client(&app, &REFRESHING);
    let (url, pkce) = with_resources(&app, &client, &[], &[API]);
    let browser = app.browser();
    let consent = browser.login(browser.open(&url).await, "alice").await;
    assert!(consent.is_page("/consent"), "{consent:?}");
    let (page, _, html) = consent.page();
    assert!(html.contains("For:") && html.contains(API), "{html}");
    let callback = browser
        .submit(&page, &html, &[("decision", "allow")])
        .await
        .left();
    let tokens = app.exchange(&client, &callback, &pkce).await;
    let access = tokens["access_token"].as_str().unwrap();
    assert_eq!(audience(access), json!(API));
    // RFC 9068 §4: a token for the API is not one for userinfo.
    assert_eq!(app.userinfo_status(access).await, 401);

    // Without a resource, the token is this provider's, as before.
    let (url, pkce) = app.authorize_url(&client, &[]);
    let callback = browser
        .consent_if_asked(browser.open(&url).await)
        .await
        .left();
    let tokens = app.exchange(&client, &callback, &pkce).await;
    assert_eq!(
        audience(tokens["access_token"].as_str().unwrap()),
        json!(app.issuer)
    );
}

#[tokio::test]
async fn a_resource_the_client_is_not_registered_for_is_invalid_target_at_its_redirect_uri() {
    let app = spawn_app().await;
    let client = api_client(&app, &REFRESHING);
    for resources in [
        &["https://elsewhere.example/"][..],
        &[API, "https://elsewhere.example/"],
        &["https://api.example/#fragment"],
        &["not-absolute"],
    ] {
        let (url, _) = with_resources(&app, &client, &[], resources);
        let back = app.browser().open(&url).await.left();
        assert!(
            back.as_str().starts_with(&client.redirect_uri),
            "{resources:?}: {back}"
        );
        assert_eq!(
            query(&back, "error").as_deref(),
            Some("invalid_target"),
            "{resources:?}"
        );
        assert_eq!(query(&back, "state").as_deref(), Some("st-123"));
        assert_eq!(query(&back, "code"), None);
    }
}

#[tokio::test]
async fn a_code_redeems_for_fewer_of_its_resources_but_not_for_others() {
    let app = spawn_app().await;
    app.add_user("alice").await;
    let client = api_client(&app, &REFRESHING);
    let (url, pkce) = with_resources(&app, &client, &[], &[API, OTHER_API]);
    let callback = app.browser().sign_in(&url, "alice").await;

    let widened = redeem_with(
        &app,
        &client,
        &callback,
        &pkce,
        &[("resource", "https://elsewhere.example/")],
    )
    .await;
    assert_eq!(
        error_of(widened).await,
        (StatusCode::BAD_REQUEST, "invalid_target".to_owned())
    );
    // The refused request did not use the code up.
    let narrowed = redeem_with(&app, &client, &callback, &pkce, &[("resource", OTHER_API)]).await;
    assert_eq!(narrowed.status(), StatusCode::OK);
    let tokens: Value = narrowed.json().await.unwrap();
    assert_eq!(
        audience(tokens["access_token"].as_str().unwrap()),
        json!(OTHER_API)
    );

    // Naming none gets them all.
    let (url, pkce) = with_resources(&app, &client, &[], &[API, OTHER_API]);
    let callback = app.browser().sign_in(&url, "alice").await;
    let tokens = app.exchange(&client, &callback, &pkce).await;
    assert_eq!(
        audience(tokens["access_token"].as_str().unwrap()),
        json!([API, OTHER_API])
    );
}

#[tokio::test]
async fn a_refresh_keeps_the_grants_resources_and_may_narrow_them() {
    let app = spawn_app().await;
    app.add_user("alice").await;
    let client = api_client(&app, &REFRESHING);
    let (url, pkce) = with_resources(
        &app,
        &client,
        &[("scope", "openid offline_access"), ("prompt", "consent")],
        &[API, OTHER_API],
    );
    let callback = app.browser().sign_in(&url, "alice").await;
    let tokens = app.exchange(&client, &callback, &pkce).await;
    let refresh_token = tokens["refresh_token"].as_str().unwrap();

    let kept = app.refresh(&client, refresh_token, &[]).await;
    assert_eq!(kept.status(), StatusCode::OK);
    let kept: Value = kept.json().await.unwrap();
    assert_eq!(
        audience(kept["access_token"].as_str().unwrap()),
        json!([API, OTHER_API])
    );
    let next = kept["refresh_token"].as_str().unwrap();

    let widened = app
        .refresh(&client, next, &[("resource", "https://elsewhere.example/")])
        .await;
    assert_eq!(
        error_of(widened).await,
        (StatusCode::BAD_REQUEST, "invalid_target".to_owned())
    );
    let narrowed = app.refresh(&client, next, &[("resource", API)]).await;
    assert_eq!(narrowed.status(), StatusCode::OK);
    let narrowed: Value = narrowed.json().await.unwrap();
    assert_eq!(
        audience(narrowed["access_token"].as_str().unwrap()),
        json!(API)
    );
}

#[tokio::test]
async fn the_authorization_endpoints_access_token_is_for_the_resources_named() {
    let app = spawn_app().await;
    app.add_user("alice").await;
    let client = api_client(&app, &["authorization_code", "implicit"]);
    let browser = app.browser();
    for response_type in ["id_token token", "code id_token token"] {
        let (url, pkce) =
            with_resources(&app, &client, &[("response_type", response_type)], &[API]);
        let mut outcome = browser.open(&url).await;
        if outcome.is_page("/login") {
            outcome = browser.login(outcome, "alice").await;
        }
        let back = browser.consent_if_asked(outcome).await.left();
        let pairs: Vec<(String, String)> =
            url::form_urlencoded::parse(back.fragment().unwrap_or("").as_bytes())
                .into_owned()
                .collect();
        let field = |name: &str| {
            pairs
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
        };
        let access = field("access_token").unwrap_or_else(|| panic!("{response_type}: {pairs:?}"));
        assert_eq!(audience(&access), json!(API), "{response_type}");
        // The hybrid flow's code makes a grant for the same resources.
        if let Some(code) = field("code") {
            let response = app.redeem(&client, &code, Some(&pkce.verifier)).await;
            assert_eq!(response.status(), StatusCode::OK);
            let tokens: Value = response.json().await.unwrap();
            assert_eq!(
                audience(tokens["access_token"].as_str().unwrap()),
                json!(API)
            );
        }
    }
}

#[tokio::test]
async fn a_request_object_names_its_resources_as_an_array() {
    use portcullis::crypto::KeyAlgorithm;
    use portcullis::crypto::keys::SigningKey;

    let app = spawn_app().await;
    app.add_user("alice").await;
    let (key, _) = SigningKey::generate(KeyAlgorithm::Es256).unwrap();
    let client = app.add_client_with(ClientDraft {
        jwks: Some(json!({ "keys": [key.public_jwk()] })),
        resources: vec![API.into(), OTHER_API.into()],
        ..ClientDraft::default()
    });
    let pkce = Pkce::new();
    let object = json!({
        "iss": client.id,
        "aud": app.issuer,
        "client_id": client.id,
        "response_type": "code",
        "redirect_uri": client.redirect_uri,
        "scope": "openid",
        "state": "inner-state",
        "code_challenge": pkce.challenge,
        "code_challenge_method": "S256",
        "resource": [API, OTHER_API],
        "exp": portcullis::domain::now() + 300,
    });
    let jwt = key.sign_jwt("oauth-authz-req+jwt", &object).unwrap();
    let mut url = Url::parse(&app.url("/authorize")).unwrap();
    url.query_pairs_mut()
        .append_pair("client_id", &client.id)
        .append_pair("response_type", "code")
        .append_pair("request", &jwt);
    let callback = app.browser().sign_in(url.as_str(), "alice").await;
    let tokens = app.exchange(&client, &callback, &pkce).await;
    assert_eq!(
        audience(tokens["access_token"].as_str().unwrap()),
        json!([API, OTHER_API])
    );
}
