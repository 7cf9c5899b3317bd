//! Group changes across two `portcullis serve` processes sharing PostgreSQL and Redis:
//! a member added or a group renamed through one instance is what the other's userinfo
//! says as soon as it hears of it on the liveness channel, as for a user change, though
//! it had cached the user's groups with the grant.
//!
//! The cache keeps an answer for `LIVENESS_TTL` (1 s), so a change seen within seconds
//! proves nothing: it would be seen without any announcement. Each step first makes a
//! change that nobody announces (straight into the database) and waits until B shows
//! it: B has just read the groups from the database, and would keep them a whole TTL.
//! The announced change must then show at B before that TTL is over.

use std::time::{Duration, Instant};

use portcullis::domain::{GroupName, now};
use portcullis::protocol::registration::ClientDraft;
use portcullis::store::sql::liveness::LIVENESS_TTL;
use portcullis::store::{AdminChange, AuditStore, ClientStore, Group, NewAuditEvent, UserStore};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::cluster::{Cluster, Instance, code_of, redeem};
use crate::helpers::{Pkce, http};

/// How long B may take to show a change nobody announced: a TTL, and then some.
const UNANNOUNCED: Duration = Duration::from_secs(10);

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

/// Polls B's userinfo (each try a round trip, no sleep) until it says `expected`, which
/// it must have said by `deadline` (the answer received, not only asked for); returns
/// when the try that first said it began.
async fn seen_at(
    instance: &Instance,
    access: &str,
    expected: Value,
    deadline: Instant,
    what: &str,
) -> Instant {
    loop {
        let asked = Instant::now();
        let said = groups_at(instance, access).await;
        let late = Instant::now().saturating_duration_since(deadline);
        assert!(
            late.is_zero(),
            "{what}: not seen at B in time ({late:?} late)"
        );
        if said == expected {
            return asked;
        }
    }
}

/// A change made straight in the database, so announced to nobody.
fn unannounced(cluster: &Cluster, change: AdminChange<'_>) {
    let event = NewAuditEvent {
        at: now(),
        actor: "test".into(),
        action: "groups.test".into(),
        target: None,
        address: None,
        details: None,
    };
    cluster.store.apply_audited(change, &event).unwrap();
}

/// Waits until B shows a change nobody announced, so read the groups from the database
/// at or after the returned instant; an announced change must be seen before a TTL from
/// then has passed, or it was the TTL that showed it.
async fn b_just_read(cluster: &Cluster, access: &str, expected: Value, what: &str) -> Instant {
    let read = seen_at(
        &cluster.b,
        access,
        expected,
        Instant::now() + UNANNOUNCED,
        what,
    )
    .await;
    read + LIVENESS_TTL
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
    let canary = Group::new("canary".into(), &GroupName::parse("Canary").unwrap(), now());
    unannounced(&cluster, AdminChange::CreateGroup(&canary));
    unannounced(
        &cluster,
        AdminChange::AddGroupMember {
            group_id: "canary",
            user_id: &alice,
        },
    );
    let deadline = b_just_read(&cluster, access, json!(["Canary"]), "the canary").await;
    admin_api(
        &cluster.a,
        &token,
        Method::POST,
        &format!("/groups/{ops}/members"),
        json!({ "user_id": alice }),
    )
    .await;
    seen_at(
        &cluster.b,
        access,
        json!(["Canary", "Ops"]),
        deadline,
        "a member added",
    )
    .await;

    unannounced(
        &cluster,
        AdminChange::RemoveGroupMember {
            group_id: "canary",
            user_id: &alice,
        },
    );
    let deadline = b_just_read(&cluster, access, json!(["Ops"]), "the canary left").await;

    admin_api(
        &cluster.a,
        &token,
        Method::PATCH,
        &format!("/groups/{ops}"),
        json!({ "name": "Operations" }),
    )
    .await;
    seen_at(
        &cluster.b,
        access,
        json!(["Operations"]),
        deadline,
        "a group renamed",
    )
    .await;
}
