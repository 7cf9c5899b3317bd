//! Client changes across two `portcullis serve` processes sharing PostgreSQL and Redis: a
//! change made through one instance (a scope taken away, a new secret) holds on the other
//! as soon as that one hears of it on the liveness channel. Each instance used to keep a
//! client's record for 30 s, so the other went on honouring the old scope and secret.

use std::time::{Duration, Instant};

use portcullis::protocol::registration::ClientDraft;
use portcullis::store::ClientStore;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::cluster::{Cluster, Instance};
use crate::helpers::http;

/// How long the other instance may take. Far below the 30 s it used to serve an old
/// record; the announcement itself takes milliseconds (`liveness_sync.rs` shows it with an
/// hour-long cache).
const PROMPTLY: Duration = Duration::from_secs(5);

/// A `client_credentials` client, registered straight into the shared database.
struct Service {
    id: String,
    secret: String,
}

impl Service {
    fn register(cluster: &Cluster, scope: &str) -> Self {
        let registered = crate::helpers::register_client(ClientDraft {
            name: Some("automation".into()),
            grant_types: vec!["client_credentials".into()],
            redirect_uris: vec![],
            scope: Some(scope.into()),
            ..Default::default()
        });
        cluster.store.create_client(&registered.client).unwrap();
        Self {
            id: registered.client.id,
            secret: registered.client_secret.unwrap(),
        }
    }
}

/// A `client_credentials` token request at `instance`, for `scope` if given.
async fn mint(
    instance: &Instance,
    id: &str,
    secret: &str,
    scope: Option<&str>,
) -> reqwest::Response {
    let mut form = vec![("grant_type", "client_credentials")];
    if let Some(scope) = scope {
        form.push(("scope", scope));
    }
    http()
        .post(instance.url("/token"))
        .basic_auth(id, Some(secret))
        .form(&form)
        .send()
        .await
        .unwrap()
}

async fn access_token(instance: &Instance, service: &Service, scope: &str) -> String {
    let response = mint(instance, &service.id, &service.secret, Some(scope)).await;
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    body["access_token"].as_str().unwrap().to_owned()
}

/// Calls the admin API at `instance`; returns the status and the JSON body (Null when
/// empty).
async fn admin_api(
    instance: &Instance,
    token: &str,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let mut request = http()
        .request(method, instance.url(&format!("/admin/api{path}")))
        .bearer_auth(token);
    if let Some(body) = body {
        request = request.json(&body);
    }
    crate::helpers::status_and_json(request.send().await.unwrap()).await
}

#[tokio::test]
async fn a_scope_taken_away_or_a_secret_rotated_on_one_instance_holds_on_the_other_promptly() {
    let Some(cluster) = Cluster::start().await else {
        return;
    };
    // The operator's automation, which makes the changes at A.
    let operator = Service::register(&cluster, "admin");
    let operator_token = access_token(&cluster.a, &operator, "admin").await;
    // The client changed, which B has read (and cached) before the change.
    let bot = Service::register(&cluster, "admin reports:read");
    let bot_token = access_token(&cluster.b, &bot, "admin").await;
    let (status, _) = admin_api(&cluster.b, &bot_token, Method::GET, "/clients", None).await;
    assert_eq!(
        status,
        StatusCode::OK,
        "B knows the client for the admin scope"
    );

    // At A: the admin scope taken away.
    let (status, changed) = admin_api(
        &cluster.a,
        &operator_token,
        Method::PATCH,
        &format!("/clients/{}", bot.id),
        Some(json!({ "scope": "reports:read" })),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{changed}");

    // At B: no new admin token, and the one it issued before no longer opens the admin
    // API. Each try is a round trip; no sleep.
    let deadline = Instant::now() + PROMPTLY;
    let refused = loop {
        let status = mint(&cluster.b, &bot.id, &bot.secret, Some("admin"))
            .await
            .status();
        if status != StatusCode::OK {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "B still issues admin tokens {PROMPTLY:?} after the scope was taken away at A"
        );
    };
    assert_eq!(refused, StatusCode::BAD_REQUEST, "invalid_scope");
    let (status, _) = admin_api(&cluster.b, &bot_token, Method::GET, "/clients", None).await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    // B reads the client again (its other scope still works), and caches it again.
    let response = mint(&cluster.b, &bot.id, &bot.secret, None).await;
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["scope"], "reports:read");

    // At A: a new secret.
    let (status, rotated) = admin_api(
        &cluster.a,
        &operator_token,
        Method::POST,
        &format!("/clients/{}/secret", bot.id),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{rotated}");
    let new_secret = rotated["client_secret"].as_str().unwrap().to_owned();
    assert_ne!(new_secret, bot.secret);

    // At B: the old secret stops working, the new one works.
    let deadline = Instant::now() + PROMPTLY;
    let refused = loop {
        let status = mint(&cluster.b, &bot.id, &bot.secret, None).await.status();
        if status != StatusCode::OK {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "the old secret still works at B {PROMPTLY:?} after its rotation at A"
        );
    };
    assert_eq!(refused, StatusCode::UNAUTHORIZED, "invalid_client");
    let response = mint(&cluster.b, &bot.id, &new_secret, None).await;
    assert_eq!(response.status(), StatusCode::OK);
}
