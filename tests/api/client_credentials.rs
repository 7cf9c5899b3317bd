//! The client credentials grant (RFC 6749 §4.4) with RFC 8707 resource indicators.

use portcullis::protocol::registration::ClientDraft;
use reqwest::StatusCode;

use crate::helpers::{Options, TestApp, TestClient, jwt_part, spawn_app, spawn_app_with};

const API: &str = "https://api.example/";
const OTHER_API: &str = "https://other.example/v1";

async fn client_token(
    app: &TestApp,
    client: &TestClient,
    extra: &[(&str, &str)],
) -> reqwest::Response {
    let mut form = vec![("grant_type", "client_credentials")];
    form.extend_from_slice(extra);
    let secret = client.secret.as_deref().unwrap_or("");
    app.token_request(&form, Some((&client.id, secret))).await
}

async fn error_of(response: reqwest::Response) -> (StatusCode, String) {
    let status = response.status();
    let body: serde_json::Value = response.json().await.unwrap();
    (
        status,
        body["error"].as_str().unwrap_or_default().to_owned(),
    )
}

#[tokio::test]
async fn a_service_gets_an_access_token_of_its_own_and_nothing_else() {
    let app = spawn_app().await;
    let service = app.add_service_client("api:read api:write", &[]);
    let response = client_token(&app, &service, &[]).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["cache-control"], "no-store");
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(
        body["scope"], "api:read api:write",
        "the registered scopes by default"
    );
    assert!(body.get("refresh_token").is_none() && body.get("id_token").is_none());
    let token = body["access_token"].as_str().unwrap();
    assert_eq!(jwt_part(token, 0)["typ"], "at+jwt");
    let claims = jwt_part(token, 1);
    assert_eq!(
        claims["sub"],
        service.id.as_str(),
        "RFC 9068 §2.2: sub is the client"
    );
    assert_eq!(claims["client_id"], service.id.as_str());
    assert_eq!(claims["aud"], app.issuer.as_str());
    assert!(claims.get("gid").is_none() && claims.get("auth_time").is_none());
}

#[tokio::test]
async fn requested_scopes_must_be_among_those_registered_and_none_of_a_users() {
    let app = spawn_app().await;
    let service = app.add_service_client("api:read api:write", &[]);
    let narrow = client_token(&app, &service, &[("scope", "api:read")]).await;
    let body: serde_json::Value = narrow.json().await.unwrap();
    assert_eq!(body["scope"], "api:read");
    for scope in ["api:admin", "api:read api:admin", "openid", "profile"] {
        let refused = client_token(&app, &service, &[("scope", scope)]).await;
        assert_eq!(
            error_of(refused).await,
            (StatusCode::BAD_REQUEST, "invalid_scope".into()),
            "{scope}"
        );
    }
}

#[tokio::test]
async fn the_audience_comes_from_resource_indicators_the_client_may_use() {
    let app = spawn_app().await;
    let service = app.add_service_client("api:read", &[API, OTHER_API]);
    let one = client_token(&app, &service, &[("resource", API)]).await;
    let body: serde_json::Value = one.json().await.unwrap();
    assert_eq!(
        jwt_part(body["access_token"].as_str().unwrap(), 1)["aud"],
        API
    );

    let both = client_token(
        &app,
        &service,
        &[("resource", API), ("resource", OTHER_API)],
    )
    .await;
    let body: serde_json::Value = both.json().await.unwrap();
    assert_eq!(
        jwt_part(body["access_token"].as_str().unwrap(), 1)["aud"],
        serde_json::json!([API, OTHER_API])
    );

    for resource in [
        "https://unregistered.example/",
        "https://api.example/#frag",
        "relative/path",
    ] {
        let refused = client_token(&app, &service, &[("resource", resource)]).await;
        assert_eq!(
            error_of(refused).await,
            (StatusCode::BAD_REQUEST, "invalid_target".into()),
            "{resource}"
        );
    }
}

#[tokio::test]
async fn clients_not_registered_for_client_credentials_and_public_clients_are_unauthorized() {
    let app = spawn_app().await;
    let web_app = app.add_client(false);
    let refused = client_token(&app, &web_app, &[]).await;
    assert_eq!(
        error_of(refused).await,
        (StatusCode::BAD_REQUEST, "unauthorized_client".into())
    );

    let public = app.add_client(true);
    let response = app
        .token_request(
            &[
                ("grant_type", "client_credentials"),
                ("client_id", &public.id),
            ],
            None,
        )
        .await;
    assert_eq!(
        error_of(response).await,
        (StatusCode::BAD_REQUEST, "unauthorized_client".into())
    );
}

#[tokio::test]
async fn userinfo_refuses_a_token_that_speaks_for_no_user() {
    let app = spawn_app().await;
    let service = app.add_service_client("api:read", &[]);
    let body: serde_json::Value = client_token(&app, &service, &[])
        .await
        .json()
        .await
        .unwrap();
    let token = body["access_token"].as_str().unwrap();
    let response = crate::helpers::http()
        .get(app.url("/userinfo"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let challenge = response.headers()["www-authenticate"].to_str().unwrap();
    assert!(challenge.contains("invalid_token"), "{challenge}");
}

async fn active(app: &TestApp, token: &str, resource_server: &TestClient) -> serde_json::Value {
    let response = app
        .post_as(resource_server, "/introspect", &[("token", token)])
        .await;
    response.json::<serde_json::Value>().await.unwrap()["active"].clone()
}

#[tokio::test]
async fn a_removed_clients_own_tokens_stop_working() {
    let app = spawn_app().await;
    let service = app.add_service_client("api:read", &[]);
    let resource_server = app.add_service_client("introspect", &[]);
    let body: serde_json::Value = client_token(&app, &service, &[])
        .await
        .json()
        .await
        .unwrap();
    let token = body["access_token"].as_str().unwrap().to_owned();
    assert_eq!(active(&app, &token, &resource_server).await, true);
    assert!(app.store.delete_client(&service.id).unwrap());
    assert_eq!(active(&app, &token, &resource_server).await, false);
}

#[tokio::test]
async fn a_client_credentials_client_registers_without_redirect_uris() {
    let app = spawn_app_with(Options {
        env: vec![("REGISTRATION", "open".into())],
        ..Default::default()
    })
    .await;
    let response = crate::helpers::http()
        .post(app.url("/register"))
        .json(&serde_json::json!({
            "client_name": "Batch job",
            "redirect_uris": [],
            "grant_types": ["client_credentials"],
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(
        body["grant_types"],
        serde_json::json!(["client_credentials"])
    );
    assert_eq!(body["response_types"], serde_json::json!([]));
    let service = TestClient {
        id: body["client_id"].as_str().unwrap().to_owned(),
        secret: Some(body["client_secret"].as_str().unwrap().to_owned()),
        redirect_uri: String::new(),
    };
    assert_eq!(
        client_token(&app, &service, &[]).await.status(),
        StatusCode::OK
    );

    // Without client_credentials, redirect URIs stay required.
    let response = crate::helpers::http()
        .post(app.url("/register"))
        .json(&serde_json::json!({ "redirect_uris": [] }))
        .send()
        .await
        .unwrap();
    assert_eq!(error_of(response).await.1, "invalid_redirect_uri");
}

#[tokio::test]
async fn the_code_flow_refuses_a_client_registered_only_for_client_credentials() {
    let app = spawn_app().await;
    let service = app.add_client_with(ClientDraft {
        grant_types: vec!["client_credentials".into()],
        redirect_uris: vec!["http://127.0.0.1:1/callback".into()],
        ..ClientDraft::default()
    });
    let (url, _) = app.authorize_url(&service, &[]);
    let callback = app.browser().open(&url).await.left();
    assert_eq!(
        crate::helpers::query(&callback, "error").as_deref(),
        Some("unauthorized_client")
    );
}
