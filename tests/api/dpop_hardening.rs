//! DPoP (RFC 9449) hardening over real HTTP: a proof's `jti` is recorded only for an
//! authenticated client, the `DPoP` header is size-capped, and the admin API honours a
//! client's `require_dpop_nonce` and sets it. Proofs come from `dpop`'s hand-made
//! builder (aws-lc-rs), not from the server's verifier.

use portcullis::protocol::registration::ClientDraft;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::dpop::{
    Key, admin_service, ath, challenge, error_of, now, ok_json, resource, token_request,
};
use crate::helpers::{TestClient, http, spawn_app};

const ADMIN_PATH: &str = "/admin/api/clients";

#[tokio::test]
async fn a_proof_sent_by_an_unauthenticated_request_is_not_used_up() {
    let app = spawn_app().await;
    let service = admin_service(&app, ClientDraft::default());
    let key = Key::new();
    let proof = key.proof("POST", &app.url("/token"), now(&app), json!({}));
    let form = [("grant_type", "client_credentials")];
    let impostor = TestClient {
        id: service.id.clone(),
        secret: Some("not-the-secret".into()),
        redirect_uri: service.redirect_uri.clone(),
    };
    let refused = token_request(&app, &impostor, &form, Some(&proof)).await;
    assert_eq!(
        error_of(refused).await,
        (StatusCode::UNAUTHORIZED, "invalid_client".into())
    );
    // The client itself then uses the same proof: its jti was not recorded.
    let body = ok_json(token_request(&app, &service, &form, Some(&proof)).await).await;
    assert_eq!(body["token_type"], "DPoP");
    let again = token_request(&app, &service, &form, Some(&proof)).await;
    assert_eq!(
        error_of(again).await,
        (StatusCode::BAD_REQUEST, "invalid_dpop_proof".into())
    );
}

#[tokio::test]
async fn an_oversized_dpop_header_is_refused_before_it_is_parsed() {
    let app = spawn_app().await;
    let service = admin_service(&app, ClientDraft::default());
    let form = [("grant_type", "client_credentials")];
    let oversized = "a".repeat(8 * 1024 + 1);
    let refused = token_request(&app, &service, &form, Some(&oversized)).await;
    assert_eq!(
        error_of(refused).await,
        (StatusCode::BAD_REQUEST, "invalid_dpop_proof".into())
    );
    // A good proof padded past the cap (an unknown claim) is refused too.
    let key = Key::new();
    let padded = key.proof(
        "POST",
        &app.url("/token"),
        now(&app),
        json!({ "padding": "p".repeat(8 * 1024) }),
    );
    let refused = token_request(&app, &service, &form, Some(&padded)).await;
    assert_eq!(
        error_of(refused).await,
        (StatusCode::BAD_REQUEST, "invalid_dpop_proof".into())
    );
    let body = ok_json(
        token_request(
            &app,
            &service,
            &form,
            Some(&key.proof("POST", &app.url("/token"), now(&app), json!({}))),
        )
        .await,
    )
    .await;
    let token = body["access_token"].as_str().unwrap();
    let at_resource = resource(&app, ADMIN_PATH, "DPoP", token, Some(&oversized)).await;
    assert!(challenge(&at_resource).starts_with("DPoP "));
    assert_eq!(
        error_of(at_resource).await,
        (StatusCode::UNAUTHORIZED, "invalid_dpop_proof".into())
    );
}

fn nonce_of(response: &reqwest::Response) -> String {
    response.headers()["dpop-nonce"]
        .to_str()
        .unwrap()
        .to_owned()
}

#[tokio::test]
async fn the_admin_api_asks_a_client_that_requires_nonces_for_one() {
    let app = spawn_app().await;
    let service = admin_service(
        &app,
        ClientDraft {
            require_dpop_nonce: Some(true),
            ..ClientDraft::default()
        },
    );
    let key = Key::new();
    let url = app.url("/token");
    let form = [("grant_type", "client_credentials")];
    let asked = token_request(
        &app,
        &service,
        &form,
        Some(&key.proof("POST", &url, now(&app), json!({}))),
    )
    .await;
    let nonce = nonce_of(&asked);
    let proof = key.proof("POST", &url, now(&app), json!({ "nonce": nonce }));
    let body = ok_json(token_request(&app, &service, &form, Some(&proof)).await).await;
    let token = body["access_token"].as_str().unwrap();

    let admin_url = app.url(ADMIN_PATH);
    let plain = key.proof("GET", &admin_url, now(&app), json!({ "ath": ath(token) }));
    let refused = resource(&app, ADMIN_PATH, "DPoP", token, Some(&plain)).await;
    assert!(challenge(&refused).contains(r#"error="use_dpop_nonce""#));
    let nonce = nonce_of(&refused);
    assert_eq!(
        error_of(refused).await,
        (StatusCode::UNAUTHORIZED, "use_dpop_nonce".into())
    );
    let with_nonce = key.proof(
        "GET",
        &admin_url,
        now(&app),
        json!({ "ath": ath(token), "nonce": nonce }),
    );
    let listed = resource(&app, ADMIN_PATH, "DPoP", token, Some(&with_nonce)).await;
    assert_eq!(listed.status(), StatusCode::OK);
}

#[tokio::test]
async fn the_admin_api_sets_a_clients_dpop_settings_and_keeps_them_across_a_change() {
    let app = spawn_app().await;
    let (_, token) = crate::admin_api::automation(&app).await;
    let created: Value = http()
        .post(app.url(ADMIN_PATH))
        .bearer_auth(&token)
        .json(&json!({
            "client_name": "bound",
            "redirect_uris": ["https://app.example/cb"],
            "dpop_bound_access_tokens": true,
            "require_dpop_nonce": true,
        }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(created["dpop_bound_access_tokens"], true, "{created}");
    assert_eq!(created["require_dpop_nonce"], true, "{created}");
    let id = created["client_id"].as_str().unwrap();
    let path = format!("{ADMIN_PATH}/{id}");
    let changed: Value = http()
        .patch(app.url(&path))
        .bearer_auth(&token)
        .json(&json!({ "client_name": "renamed" }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(changed["client_name"], "renamed", "{changed}");
    assert_eq!(changed["dpop_bound_access_tokens"], true, "{changed}");
    assert_eq!(changed["require_dpop_nonce"], true, "{changed}");
    let shown = crate::admin_api::get(&app, &token, &format!("/clients/{id}")).await;
    assert_eq!(shown["require_dpop_nonce"], true, "{shown}");
    let cleared: Value = http()
        .patch(app.url(&path))
        .bearer_auth(&token)
        .json(&json!({ "require_dpop_nonce": false }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(cleared["require_dpop_nonce"] != true, "{cleared}");
    assert_eq!(cleared["dpop_bound_access_tokens"], true, "{cleared}");
}
