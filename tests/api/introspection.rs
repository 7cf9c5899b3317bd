//! Introspection endpoint (RFC 7662), and its signed JWT response (RFC 9701).

use std::collections::HashSet;

use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{DecodingKey, Validation};
use portcullis::crypto::KeyAlgorithm;
use portcullis::crypto::keys::SigningKey;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{TestApp, TestClient, jwt_part, spawn_app};

const JWT_TYPE: &str = "application/token-introspection+jwt";

/// POST /introspect for `token` as `caller` (client_secret_basic): 200, not cacheable.
async fn introspect(app: &TestApp, caller: &TestClient, token: &str) -> Value {
    let response = app
        .post_as(caller, "/introspect", &[("token", token)])
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["cache-control"], "no-store");
    response.json().await.unwrap()
}

/// RFC 7662 §2.2: an inactive token reveals nothing but that.
fn assert_only_inactive(info: &Value) {
    assert_eq!(info, &json!({ "active": false }), "exactly one member");
}

async fn error_of(response: reqwest::Response) -> (StatusCode, String) {
    let status = response.status();
    let body: Value = response.json().await.unwrap();
    (status, body["error"].as_str().unwrap().to_owned())
}

fn str_of<'a>(tokens: &'a Value, name: &str) -> &'a str {
    tokens[name]
        .as_str()
        .unwrap_or_else(|| panic!("no {name} in {tokens}"))
}

/// A refreshing client, alice's offline tokens for it, and her `sub`.
async fn offline(app: &TestApp) -> (TestClient, Value, String) {
    let sub = app.add_user("alice").await;
    let client = app.add_refreshing_client();
    let (tokens, _) = app.offline_tokens(&client, "alice").await;
    (client, tokens, sub)
}

fn assert_describes_alices_access_token(info: &Value, app: &TestApp, client: &str, sub: &str) {
    assert_eq!(info["active"], true, "{info}");
    assert_eq!(info["client_id"], client);
    assert_eq!(info["sub"], sub);
    assert_eq!(info["iss"], app.issuer.as_str());
    assert_eq!(info["aud"], app.issuer.as_str(), "the userinfo audience");
    assert_eq!(info["token_type"], "Bearer");
    assert_eq!(info["scope"], "email openid profile");
    let (iat, exp) = (info["iat"].as_i64().unwrap(), info["exp"].as_i64().unwrap());
    assert_eq!(exp - iat, 3600, "access_token_ttl");
}

#[tokio::test]
async fn an_active_access_token_is_described_to_its_client() {
    let app = spawn_app().await;
    let sub = app.add_user("alice").await;
    let client = app.add_client(false);
    let tokens = app.tokens_for(&client, "alice").await;
    let info = introspect(&app, &client, str_of(&tokens, "access_token")).await;
    assert_describes_alices_access_token(&info, &app, &client.id, &sub);
}

#[tokio::test]
async fn a_resource_server_may_introspect_another_clients_access_token() {
    let app = spawn_app().await;
    let sub = app.add_user("alice").await;
    let client = app.add_client(false);
    let tokens = app.tokens_for(&client, "alice").await;
    let resource_server = app.add_client(false);
    let info = introspect(&app, &resource_server, str_of(&tokens, "access_token")).await;
    assert_describes_alices_access_token(&info, &app, &client.id, &sub);
}

#[tokio::test]
async fn a_refresh_token_is_active_only_for_the_client_it_was_issued_to() {
    let app = spawn_app().await;
    let (client, tokens, sub) = offline(&app).await;
    let refresh = str_of(&tokens, "refresh_token");

    let info = introspect(&app, &client, refresh).await;
    assert_eq!(info["active"], true, "{info}");
    assert_eq!(info["token_type"], "refresh_token");
    assert_eq!(info["client_id"], client.id.as_str());
    assert_eq!(info["sub"], sub.as_str());
    assert!(info["exp"].as_i64().unwrap() > info["iat"].as_i64().unwrap());

    let other = app.add_client(false);
    assert_only_inactive(&introspect(&app, &other, refresh).await);
}

#[tokio::test]
async fn expired_tokens_are_only_inactive() {
    let app = spawn_app().await;
    let (client, tokens, _) = offline(&app).await;
    // Exactly at `exp` a token is expired (RFC 7519 §4.1.4: "on or after").
    app.clock.advance(3600);
    assert_only_inactive(&introspect(&app, &client, str_of(&tokens, "access_token")).await);
    let refresh = str_of(&tokens, "refresh_token");
    app.clock.advance(2_592_000 - 3600 - 1);
    assert_eq!(
        introspect(&app, &client, refresh).await["active"],
        true,
        "the refresh token lives 30 days"
    );
    app.clock.advance(1);
    assert_only_inactive(&introspect(&app, &client, refresh).await);
}

#[tokio::test]
async fn a_revoked_access_token_is_only_inactive() {
    let app = spawn_app().await;
    let (client, tokens, _) = offline(&app).await;
    let access = str_of(&tokens, "access_token");
    let revoked = app.post_as(&client, "/revoke", &[("token", access)]).await;
    assert_eq!(revoked.status(), StatusCode::OK);
    assert_only_inactive(&introspect(&app, &client, access).await);
    let refresh = str_of(&tokens, "refresh_token");
    assert_eq!(introspect(&app, &client, refresh).await["active"], true);
}

#[tokio::test]
async fn tokens_of_a_revoked_refresh_token_are_only_inactive() {
    let app = spawn_app().await;
    let (client, tokens, _) = offline(&app).await;
    let refresh = str_of(&tokens, "refresh_token");
    let revoked = app.post_as(&client, "/revoke", &[("token", refresh)]).await;
    assert_eq!(revoked.status(), StatusCode::OK);
    assert_only_inactive(&introspect(&app, &client, refresh).await);
    assert_only_inactive(&introspect(&app, &client, str_of(&tokens, "access_token")).await);
}

#[tokio::test]
async fn garbage_is_only_inactive() {
    let app = spawn_app().await;
    let client = app.add_client(false);
    for garbage in ["no-such-token", "a.b.c", "eyJhbGciOiJub25lIn0.e30."] {
        assert_only_inactive(&introspect(&app, &client, garbage).await);
    }
}

#[tokio::test]
async fn a_jwt_signed_by_a_foreign_key_is_only_inactive() {
    let app = spawn_app().await;
    let sub = app.add_user("alice").await;
    let client = app.add_client(false);
    let (foreign, _) = SigningKey::generate(KeyAlgorithm::Rs256).unwrap();
    let now = portcullis::domain::now();
    let claims = json!({
        "iss": app.issuer, "sub": sub, "aud": app.issuer, "client_id": client.id,
        "scope": "openid profile", "jti": "forged-1", "exp": now + 3600, "iat": now,
        "gid": "no-such-grant",
    });
    let forged = foreign.sign_jwt("at+jwt", &claims).unwrap();
    assert_only_inactive(&introspect(&app, &client, &forged).await);
}

#[tokio::test]
async fn a_rotated_refresh_token_is_only_inactive() {
    let app = spawn_app().await;
    let (client, tokens, _) = offline(&app).await;
    let first = str_of(&tokens, "refresh_token");
    let response = app.refresh(&client, first, &[]).await;
    assert_eq!(response.status(), StatusCode::OK);
    let refreshed: Value = response.json().await.unwrap();
    assert_only_inactive(&introspect(&app, &client, first).await);
    let successor = str_of(&refreshed, "refresh_token");
    assert_eq!(introspect(&app, &client, successor).await["active"], true);
}

#[tokio::test]
async fn a_public_client_may_not_introspect() {
    let app = spawn_app().await;
    let (_, tokens, _) = offline(&app).await;
    let public = app.add_client(true);
    let response = crate::helpers::http()
        .post(app.url("/introspect"))
        .form(&[
            ("token", str_of(&tokens, "access_token")),
            ("client_id", &public.id),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(
        error_of(response).await,
        (StatusCode::UNAUTHORIZED, "invalid_client".into())
    );
}

#[tokio::test]
async fn a_wrong_client_secret_is_401_invalid_client() {
    let app = spawn_app().await;
    let (client, tokens, _) = offline(&app).await;
    let wrong = TestClient {
        secret: Some("wrong".into()),
        ..client
    };
    let response = app
        .post_as(
            &wrong,
            "/introspect",
            &[("token", str_of(&tokens, "access_token"))],
        )
        .await;
    assert!(response.headers().contains_key("www-authenticate"));
    assert_eq!(
        error_of(response).await,
        (StatusCode::UNAUTHORIZED, "invalid_client".into())
    );
}

#[tokio::test]
async fn introspection_without_a_token_is_400_invalid_request() {
    let app = spawn_app().await;
    let client = app.add_client(false);
    for form in [&[][..], &[("token", "")]] {
        let response = app.post_as(&client, "/introspect", form).await;
        assert_eq!(
            error_of(response).await,
            (StatusCode::BAD_REQUEST, "invalid_request".into())
        );
    }
}

#[tokio::test]
async fn a_client_credentials_token_is_described_as_the_clients_own() {
    let app = spawn_app().await;
    let (service, access) = app.service_token().await;
    let info = introspect(&app, &service, &access).await;
    assert_eq!(info["active"], true, "{info}");
    assert_eq!(info["sub"], service.id.as_str(), "sub is the client itself");
    assert_eq!(info["client_id"], service.id.as_str());
    assert_eq!(info["aud"], "https://api.example/");
    assert_eq!(info["scope"], "api:read");
    assert_eq!(info["token_type"], "Bearer");
}

/// Verifies `jwt` against the provider's JWKS for audience `caller`; returns the claims.
/// RFC 9701 §4: an introspection asking for the signed JWT response.
async fn introspect_as_jwt(app: &TestApp, caller: &TestClient, token: &str) -> reqwest::Response {
    crate::helpers::http()
        .post(app.url("/introspect"))
        .basic_auth(&caller.id, caller.secret.as_deref())
        .header("accept", JWT_TYPE)
        .form(&[("token", token)])
        .send()
        .await
        .unwrap()
}

async fn verified_with_jwks(app: &TestApp, jwt: &str, caller: &str) -> Value {
    let jwks: JwkSet = serde_json::from_value(app.get_json("/jwks").await).unwrap();
    let header = jsonwebtoken::decode_header(jwt).unwrap();
    let jwk = jwks
        .find(header.kid.as_deref().unwrap())
        .expect("a published key");
    let key = DecodingKey::from_jwk(jwk).unwrap();
    let mut validation = Validation::new(header.alg);
    validation.set_audience(&[caller]);
    validation.set_issuer(&[app.issuer.as_str()]);
    validation.required_spec_claims = HashSet::new();
    validation.validate_exp = false;
    jsonwebtoken::decode::<Value>(jwt, &key, &validation)
        .unwrap()
        .claims
}

#[tokio::test]
async fn the_jwt_response_is_signed_for_the_caller_and_carries_the_introspection() {
    let app = spawn_app().await;
    let sub = app.add_user("alice").await;
    let client = app.add_client(false);
    let tokens = app.tokens_for(&client, "alice").await;
    let resource_server = app.add_client(false);
    let response = introspect_as_jwt(&app, &resource_server, str_of(&tokens, "access_token")).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["content-type"], JWT_TYPE);
    assert_eq!(response.headers()["cache-control"], "no-store");
    let jwt = response.text().await.unwrap();

    assert_eq!(jwt_part(&jwt, 0)["typ"], "token-introspection+jwt");
    let claims = verified_with_jwks(&app, &jwt, &resource_server.id).await;
    assert_eq!(claims["iss"], app.issuer.as_str());
    assert_eq!(claims["aud"], resource_server.id.as_str());
    assert!(claims["iat"].is_i64(), "{claims}");
    let info = &claims["token_introspection"];
    assert_describes_alices_access_token(info, &app, &client.id, &sub);
}

#[tokio::test]
async fn a_resource_server_registered_for_es256_gets_es256_signed_introspections() {
    let app = spawn_app().await;
    app.add_user("alice").await;
    let client = app.add_client(false);
    let tokens = app.tokens_for(&client, "alice").await;
    let resource_server = app.add_client_with(portcullis::protocol::registration::ClientDraft {
        introspection_signed_response_alg: Some("ES256".into()),
        ..Default::default()
    });
    let response = introspect_as_jwt(&app, &resource_server, str_of(&tokens, "access_token")).await;
    let jwt = response.text().await.unwrap();
    assert_eq!(jwt_part(&jwt, 0)["alg"], "ES256");
    let claims = verified_with_jwks(&app, &jwt, &resource_server.id).await;
    assert_eq!(claims["token_introspection"]["active"], true);
}
