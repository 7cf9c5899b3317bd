//! Group changes across two `portcullis serve` processes sharing PostgreSQL and Redis:
//! a member added or a group renamed through one instance is what the other's userinfo
//! says as soon as it hears of it on the liveness channel, as for a user change, though
//! it had cached the user's groups with the grant.

use std::time::{Duration, Instant};

use portcullis::protocol::registration::ClientDraft;
use portcullis::store::{ClientStore, UserStore};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::cluster::{Cluster, Instance, code_of, redeem};
use crate::helpers::{Pkce, http};

/// As `cluster_clients`: far below a cache kept for long, far above an announcement.
const PROMPTLY: Duration = Duration::from_secs(5);

async fn admin_token(cluster: &Cluster) -> String {
    let registered = crate::helpers::register_client(ClientDraft {
        grant_types: vec!["client_credentials".into()],
        redirect_uris: vec![],
        scope: Some("admin".into()),
        ..Default::default()
    });
    cluster.store.create_client(&registered.client).unwrap();
    let response = http()
        .post(cluster.a.url("/token"))
        .basic_auth(&registered.client.id, registered.client_secret.as_deref())
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    let body: Value = response.json().await.unwrap();
    body["access_token"].as_str().unwrap().to_owned()
}

async fn admin_api(
    instance: &Instance,
    token: &str,
    method: Method,
    path: &str,
    body: Value,
) -> Value {
    let response = http()
        .request(method, instance.url(&format!("/admin/api{path}")))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .unwrap();
    let (status, answer) = crate::helpers::status_and_json(response).await;
    assert!(status.is_success(), "{path}: {status} {answer}");
    answer
}

async fn groups_at(instance: &Instance, access: &str) -> Value {
    let response = http()
        .get(instance.url("/userinfo"))
        .bearer_auth(access)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let info: Value = response.json().await.unwrap();
    info["groups"].clone()
}

/// Polls B's userinfo (each try a round trip, no sleep) until it says `expected`.
async fn seen_at(instance: &Instance, access: &str, expected: Value, what: &str) {
    let deadline = Instant::now() + PROMPTLY;
    while groups_at(instance, access).await != expected {
        assert!(
            Instant::now() < deadline,
            "{what}: not seen at B within {PROMPTLY:?}"
        );
    }
}

#[tokio::test]
async fn a_group_change_at_one_instance_reaches_the_others_userinfo_promptly() {
    let Some(cluster) = Cluster::start().await else {
        return;
    };
    let alice = cluster
        .store
        .find_user_by_username("alice")
        .unwrap()
        .unwrap()
        .id;
    let rp = cluster.client();
    let pkce = Pkce::new();
    let url = format!(
        "{}?response_type=code&client_id={}&redirect_uri={}&scope=openid%20groups&state=s&code_challenge={}&code_challenge_method=S256",
        cluster.a.url("/authorize"),
        rp.id,
        url::form_urlencoded::byte_serialize(rp.redirect_uri.as_bytes()).collect::<String>(),
        pkce.challenge
    );
    let callback = cluster.browser().sign_in(&url, "alice").await;
    let tokens: Value = redeem(&cluster.a, &rp, &code_of(&callback), &pkce)
        .await
        .json()
        .await
        .unwrap();
    let access = tokens["access_token"].as_str().unwrap();
    // B answers, and keeps the (empty) groups with the grant.
    assert_eq!(groups_at(&cluster.b, access).await, json!([]));
    assert_eq!(groups_at(&cluster.b, access).await, json!([]));

    let token = admin_token(&cluster).await;
    let ops = admin_api(
        &cluster.a,
        &token,
        Method::POST,
        "/groups",
        json!({ "name": "Ops" }),
    )
    .await;
    let ops = ops["id"].as_str().unwrap();
    admin_api(
        &cluster.a,
        &token,
        Method::POST,
        &format!("/groups/{ops}/members"),
        json!({ "user_id": alice }),
    )
    .await;
    seen_at(&cluster.b, access, json!(["Ops"]), "a member added").await;

    admin_api(
        &cluster.a,
        &token,
        Method::PATCH,
        &format!("/groups/{ops}"),
        json!({ "name": "Operations" }),
    )
    .await;
    seen_at(&cluster.b, access, json!(["Operations"]), "a group renamed").await;
}
