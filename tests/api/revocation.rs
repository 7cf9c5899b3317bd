//! Revocation endpoint (RFC 7009): what dies with a revoked token, and who may revoke.

use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::{TestApp, TestClient, spawn_app};

/// POST /revoke for `token` as `client` (client_secret_basic), with an optional hint.
async fn revoke(
    app: &TestApp,
    client: &TestClient,
    token: &str,
    hint: Option<&str>,
) -> reqwest::Response {
    let mut form = vec![("token", token)];
    if let Some(hint) = hint {
        form.push(("token_type_hint", hint));
    }
    app.post_as(client, "/revoke", &form).await
}

/// Revokes and expects RFC 7009 §2.2 success: 200, not cacheable.
async fn revoke_ok(app: &TestApp, client: &TestClient, token: &str, hint: Option<&str>) {
    let response = revoke(app, client, token, hint).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["cache-control"], "no-store");
}

/// Status and `error` of an error response, which must not be cacheable either.
async fn error_of(response: reqwest::Response) -> (StatusCode, String) {
    let status = response.status();
    assert_eq!(response.headers()["cache-control"], "no-store");
    let body: Value = response.json().await.unwrap();
    (status, body["error"].as_str().unwrap().to_owned())
}

fn str_of<'a>(tokens: &'a Value, name: &str) -> &'a str {
    tokens[name]
        .as_str()
        .unwrap_or_else(|| panic!("no {name} in {tokens}"))
}

/// The status of a refresh with `refresh_token`.
async fn refresh_status(app: &TestApp, client: &TestClient, refresh_token: &str) -> StatusCode {
    app.refresh(client, refresh_token, &[]).await.status()
}

/// A refreshing client and alice's offline tokens for it.
async fn offline(app: &TestApp) -> (TestClient, Value) {
    app.add_user("alice").await;
    let client = app.add_refreshing_client();
    let (tokens, _) = app.offline_tokens(&client, "alice").await;
    (client, tokens)
}

/// Whether `introspector` is told `token` is active.
async fn active(app: &TestApp, introspector: &TestClient, token: &str) -> bool {
    let response = app
        .post_as(introspector, "/introspect", &[("token", token)])
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    body["active"].as_bool().unwrap()
}

#[tokio::test]
async fn revoking_a_refresh_token_ends_its_grant_and_the_access_tokens_issued_from_it() {
    let app = spawn_app().await;
    let (client, tokens) = offline(&app).await;
    let (access, refresh) = (
        str_of(&tokens, "access_token"),
        str_of(&tokens, "refresh_token"),
    );
    assert_eq!(app.userinfo_status(access).await, 200);

    revoke_ok(&app, &client, refresh, Some("refresh_token")).await;

    let response = app.refresh(&client, refresh, &[]).await;
    assert_eq!(
        error_of(response).await,
        (StatusCode::BAD_REQUEST, "invalid_grant".into())
    );
    assert_eq!(app.userinfo_status(access).await, 401, "the grant is gone");
}

#[tokio::test]
async fn revoking_an_access_token_ends_that_token_but_the_refresh_token_still_works() {
    let app = spawn_app().await;
    let (client, tokens) = offline(&app).await;
    let (access, refresh) = (
        str_of(&tokens, "access_token"),
        str_of(&tokens, "refresh_token"),
    );

    revoke_ok(&app, &client, access, Some("access_token")).await;
    assert_eq!(app.userinfo_status(access).await, 401);

    // RFC 7009 §2.1: revoking an access token may leave the refresh token alone.
    let response = app.refresh(&client, refresh, &[]).await;
    assert_eq!(response.status(), StatusCode::OK);
    let refreshed: Value = response.json().await.unwrap();
    let fresh = str_of(&refreshed, "access_token");
    assert_ne!(fresh, access);
    assert_eq!(app.userinfo_status(fresh).await, 200);
    assert_eq!(app.userinfo_status(access).await, 401, "still revoked");
}

#[tokio::test]
async fn revoking_an_unknown_or_garbage_token_succeeds() {
    let app = spawn_app().await;
    let client = app.add_client(false);
    revoke_ok(&app, &client, "no-such-token", None).await;
    revoke_ok(&app, &client, "a.b.c", Some("access_token")).await;
}

#[tokio::test]
async fn revoking_an_expired_access_token_succeeds() {
    let app = spawn_app().await;
    let (client, tokens) = offline(&app).await;
    let access = str_of(&tokens, "access_token");
    app.clock.advance(3601);
    assert_eq!(app.userinfo_status(access).await, 401, "expired");
    revoke_ok(&app, &client, access, None).await;
    revoke_ok(&app, &client, access, Some("access_token")).await;
}

#[tokio::test]
async fn an_unknown_token_type_hint_is_ignored_and_the_token_is_revoked_anyway() {
    let app = spawn_app().await;
    let (client, tokens) = offline(&app).await;
    let (access, refresh) = (
        str_of(&tokens, "access_token"),
        str_of(&tokens, "refresh_token"),
    );

    revoke_ok(&app, &client, access, Some("foo")).await;
    assert_eq!(app.userinfo_status(access).await, 401);
    revoke_ok(&app, &client, refresh, Some("foo")).await;
    assert_eq!(
        refresh_status(&app, &client, refresh).await,
        StatusCode::BAD_REQUEST
    );
}

#[tokio::test]
async fn a_wrong_token_type_hint_still_finds_and_revokes_the_token() {
    let app = spawn_app().await;
    let (client, tokens) = offline(&app).await;
    let refresh = str_of(&tokens, "refresh_token");
    revoke_ok(&app, &client, refresh, Some("access_token")).await;
    assert_eq!(
        refresh_status(&app, &client, refresh).await,
        StatusCode::BAD_REQUEST
    );

    let (more, _) = app.offline_tokens(&client, "alice").await;
    let access = str_of(&more, "access_token");
    revoke_ok(&app, &client, access, Some("refresh_token")).await;
    assert_eq!(app.userinfo_status(access).await, 401);
    let refresh = str_of(&more, "refresh_token");
    assert_eq!(refresh_status(&app, &client, refresh).await, StatusCode::OK);
}

#[tokio::test]
async fn a_confidential_client_cannot_revoke_another_clients_tokens() {
    let app = spawn_app().await;
    let (client, tokens) = offline(&app).await;
    let (access, refresh) = (
        str_of(&tokens, "access_token"),
        str_of(&tokens, "refresh_token"),
    );
    let other = app.add_client(false);

    for (token, hint) in [(refresh, None), (access, Some("access_token"))] {
        let response = revoke(&app, &other, token, hint).await;
        assert_eq!(
            error_of(response).await,
            (StatusCode::BAD_REQUEST, "invalid_request".into())
        );
    }
    assert_eq!(app.userinfo_status(access).await, 200);
    assert_eq!(refresh_status(&app, &client, refresh).await, StatusCode::OK);
}

#[tokio::test]
async fn a_public_client_revoking_another_clients_tokens_gets_200_but_revokes_nothing() {
    let app = spawn_app().await;
    let (client, tokens) = offline(&app).await;
    let (access, refresh) = (
        str_of(&tokens, "access_token"),
        str_of(&tokens, "refresh_token"),
    );
    let public = app.add_client(true);

    for token in [access, refresh] {
        let response = crate::helpers::http()
            .post(app.url("/revoke"))
            .form(&[("token", token), ("client_id", &public.id)])
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(response.headers()["cache-control"], "no-store");
    }
    assert_eq!(app.userinfo_status(access).await, 200);
    assert_eq!(refresh_status(&app, &client, refresh).await, StatusCode::OK);
}

#[tokio::test]
async fn an_id_token_cannot_be_revoked() {
    let app = spawn_app().await;
    let (client, tokens) = offline(&app).await;
    let response = revoke(&app, &client, str_of(&tokens, "id_token"), None).await;
    assert_eq!(
        error_of(response).await,
        (StatusCode::BAD_REQUEST, "unsupported_token_type".into())
    );
    let access = str_of(&tokens, "access_token");
    assert_eq!(app.userinfo_status(access).await, 200, "nothing else died");
}

#[tokio::test]
async fn revocation_without_valid_client_authentication_is_401_invalid_client() {
    let app = spawn_app().await;
    let (client, tokens) = offline(&app).await;
    let refresh = str_of(&tokens, "refresh_token");

    let wrong = TestClient {
        secret: Some("wrong".into()),
        id: client.id.clone(),
        redirect_uri: client.redirect_uri.clone(),
    };
    let response = revoke(&app, &wrong, refresh, None).await;
    assert!(response.headers().contains_key("www-authenticate"));
    assert_eq!(
        error_of(response).await,
        (StatusCode::UNAUTHORIZED, "invalid_client".into())
    );

    let no_secret = crate::helpers::http()
        .post(app.url("/revoke"))
        .form(&[("token", refresh), ("client_id", &client.id)])
        .send()
        .await
        .unwrap();
    assert_eq!(
        error_of(no_secret).await,
        (StatusCode::UNAUTHORIZED, "invalid_client".into())
    );

    let anonymous = crate::helpers::http()
        .post(app.url("/revoke"))
        .form(&[("token", refresh)])
        .send()
        .await
        .unwrap();
    assert_eq!(
        error_of(anonymous).await,
        (StatusCode::UNAUTHORIZED, "invalid_client".into())
    );
    assert_eq!(refresh_status(&app, &client, refresh).await, StatusCode::OK);
}

#[tokio::test]
async fn revocation_without_a_token_is_400_invalid_request() {
    let app = spawn_app().await;
    let client = app.add_client(false);
    // An empty value counts as omitted (RFC 6749 §3.1).
    for form in [&[("token_type_hint", "access_token")][..], &[("token", "")]] {
        let response = app.post_as(&client, "/revoke", form).await;
        assert_eq!(
            error_of(response).await,
            (StatusCode::BAD_REQUEST, "invalid_request".into())
        );
    }
}

#[tokio::test]
async fn a_client_credentials_access_token_can_be_revoked_by_its_client() {
    let app = spawn_app().await;
    let (service, access) = app.service_token().await;
    assert!(active(&app, &service, &access).await);

    revoke_ok(&app, &service, &access, None).await;
    assert!(!active(&app, &service, &access).await, "revoked");
}
