//! UserInfo: Bearer token checks (RFC 6750) and claims by scope.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use reqwest::StatusCode;

use portcullis::domain::Clock;

use crate::helpers::{TestApp, spawn_app};

async fn tokens(app: &TestApp) -> serde_json::Value {
    app.add_user("alice").await;
    let client = app.add_client(false);
    app.tokens_for(&client, "alice").await
}

async fn call(app: &TestApp, token: &str) -> reqwest::Response {
    crate::helpers::http()
        .get(app.url("/userinfo"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
}

fn assert_invalid_token(response: &reqwest::Response) {
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let challenge = response.headers()["www-authenticate"].to_str().unwrap();
    assert!(
        challenge.starts_with("Bearer") && challenge.contains("error=\"invalid_token\""),
        "{challenge}"
    );
}

#[tokio::test]
async fn userinfo_returns_claims_for_the_granted_scopes_by_get_and_post() {
    let app = spawn_app().await;
    let tokens = tokens(&app).await;
    let token = tokens["access_token"].as_str().unwrap();
    let response = call(&app, token).await;
    assert_eq!(response.status(), 200);
    let claims: serde_json::Value = response.json().await.unwrap();
    assert_eq!(claims["email"], "alice@example.com");
    assert_eq!(claims["name"], "alice Example");
    let id = crate::helpers::jwt_part(tokens["id_token"].as_str().unwrap(), 1);
    assert_eq!(claims["sub"], id["sub"], "sub is the ID token's");

    let post = crate::helpers::http()
        .post(app.url("/userinfo"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(post.status(), 200);
    let form = crate::helpers::http()
        .post(app.url("/userinfo"))
        .form(&[("access_token", token)])
        .send()
        .await
        .unwrap();
    assert_eq!(form.status(), 200);
}

#[tokio::test]
async fn tampered_token_is_rejected() {
    let app = spawn_app().await;
    let tokens = tokens(&app).await;
    let token = tokens["access_token"].as_str().unwrap();
    let parts: Vec<&str> = token.split('.').collect();
    let mut claims: serde_json::Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();
    claims["sub"] = "someone-else".into();
    let forged = format!(
        "{}.{}.{}",
        parts[0],
        URL_SAFE_NO_PAD.encode(claims.to_string()),
        parts[2]
    );
    assert_invalid_token(&call(&app, &forged).await);
}

#[tokio::test]
async fn alg_none_token_is_rejected() {
    let app = spawn_app().await;
    let tokens = tokens(&app).await;
    let payload = tokens["access_token"]
        .as_str()
        .unwrap()
        .split('.')
        .nth(1)
        .unwrap()
        .to_owned();
    let header = URL_SAFE_NO_PAD.encode(r#"{"alg":"none","typ":"at+jwt"}"#);
    assert_invalid_token(&call(&app, &format!("{header}.{payload}.")).await);
}

#[tokio::test]
async fn id_token_is_not_accepted_as_an_access_token() {
    let app = spawn_app().await;
    let tokens = tokens(&app).await;
    assert_invalid_token(&call(&app, tokens["id_token"].as_str().unwrap()).await);
}

#[tokio::test]
async fn missing_token_gets_a_bare_bearer_challenge() {
    let app = spawn_app().await;
    let response = crate::helpers::get(app.url("/userinfo")).await.unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let challenge = response.headers()["www-authenticate"].to_str().unwrap();
    assert!(
        challenge.starts_with("Bearer") && !challenge.contains("error="),
        "{challenge}"
    );
}

#[tokio::test]
async fn garbage_token_is_rejected() {
    let app = spawn_app().await;
    assert_invalid_token(&call(&app, "abc.def.ghi").await);
    assert_invalid_token(&call(&app, "nonsense").await);
}

#[tokio::test]
async fn another_authorization_scheme_gets_a_bare_bearer_challenge() {
    let app = spawn_app().await;
    let response = crate::helpers::http()
        .get(app.url("/userinfo"))
        .basic_auth("a", Some("b"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let challenge = response.headers()["www-authenticate"].to_str().unwrap();
    assert!(
        challenge.starts_with("Bearer") && !challenge.contains("error="),
        "{challenge}"
    );
}

#[tokio::test]
async fn a_typ_header_with_multibyte_characters_is_refused_not_a_crash() {
    let app = spawn_app().await;
    let tokens = tokens(&app).await;
    let token = tokens["access_token"].as_str().unwrap();
    let mut header = crate::helpers::jwt_part(token, 0);
    header["typ"] = "aaaaaaaaaaaé".into();
    let parts: Vec<&str> = token.split('.').collect();
    let forged = format!(
        "{}.{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        parts[1],
        parts[2]
    );
    assert_invalid_token(&call(&app, &forged).await);
    let logout = app.url(&format!("/logout?id_token_hint={forged}"));
    let (_, status, _) = app.browser().open(&logout).await.page();
    assert_eq!(status, 400);
}

#[tokio::test]
async fn tokens_of_other_kinds_are_not_access_tokens() {
    let app = spawn_app().await;
    let tokens = tokens(&app).await;
    let rs = app.add_service_client("api:read", &[]);
    // An RFC 9701 introspection response is signed by us too, with another typ.
    let response = crate::helpers::http()
        .post(app.url("/introspect"))
        .basic_auth(&rs.id, rs.secret.as_deref())
        .header("accept", "application/token-introspection+jwt")
        .form(&[("token", tokens["access_token"].as_str().unwrap())])
        .send()
        .await
        .unwrap();
    let introspection_jwt = response.text().await.unwrap();
    assert_invalid_token(&call(&app, &introspection_jwt).await);
    let id_token = tokens["id_token"].as_str().unwrap();
    let inactive = app
        .post_as(&rs, "/introspect", &[("token", id_token)])
        .await
        .json::<serde_json::Value>()
        .await
        .unwrap();
    assert_eq!(inactive, serde_json::json!({"active": false}));
}

/// An access token signed with the provider's own key, with the given claim changes and
/// `typ` header: what only a bug (or a stolen key) could produce, to test the checks that
/// come after the signature.
fn minted(
    app: &TestApp,
    tokens: &serde_json::Value,
    typ: &str,
    changes: serde_json::Value,
) -> String {
    let access = tokens["access_token"].as_str().unwrap();
    let kid = crate::helpers::jwt_part(access, 0)["kid"]
        .as_str()
        .unwrap()
        .to_owned();
    let stored = app
        .store
        .list_keys(app.clock.now())
        .unwrap()
        .into_iter()
        .find(|k| k.kid == kid)
        .unwrap();
    let key = portcullis::crypto::SigningKey::from_pkcs8(
        portcullis::crypto::KeyAlgorithm::Rs256,
        &portcullis::crypto::keys::open_private_key(
            &crate::helpers::test_kek(),
            &stored.kid,
            &stored.private_key,
        )
        .unwrap(),
    )
    .unwrap();
    let mut claims = crate::helpers::jwt_part(access, 1);
    for (k, v) in changes.as_object().unwrap() {
        claims[k] = v.clone();
    }
    key.sign_jwt(typ, &claims).unwrap()
}

#[tokio::test]
async fn the_audience_and_not_before_of_an_access_token_are_checked() {
    let app = spawn_app().await;
    let tokens = tokens(&app).await;
    let now = app.clock.now();
    let other_audience = minted(
        &app,
        &tokens,
        "at+jwt",
        serde_json::json!({"aud": "https://api.example/"}),
    );
    assert_invalid_token(&call(&app, &other_audience).await);
    let not_yet = minted(
        &app,
        &tokens,
        "at+jwt",
        serde_json::json!({"nbf": now + 60}),
    );
    assert_invalid_token(&call(&app, &not_yet).await);
    let prefixed = minted(&app, &tokens, "application/at+jwt", serde_json::json!({}));
    assert_eq!(
        call(&app, &prefixed).await.status(),
        StatusCode::OK,
        "RFC 9068 §2.1 allows both"
    );
    let listed = minted(
        &app,
        &tokens,
        "at+jwt",
        serde_json::json!({"aud": [app.issuer, "https://api.example/"]}),
    );
    assert_eq!(call(&app, &listed).await.status(), StatusCode::OK);
}
