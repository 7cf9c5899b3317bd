//! RFC 7592 client management over HTTP, on SQLite and on PostgreSQL: read, update with
//! a rotated registration access token, delete, and every refusal (401 with the RFC 6750
//! challenge, the client unchanged).

use portcullis::domain::Clock;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::backends::TempDatabase;
use crate::helpers::{Options, TestApp, TestClient, http, spawn_app_with};

/// An instance with open registration on each backend this machine has (SQLite always),
/// with the PostgreSQL database kept alive beside it.
async fn apps() -> Vec<(TestApp, Option<TempDatabase>)> {
    let env = || vec![("REGISTRATION", "open".to_owned())];
    let mut apps = vec![(
        spawn_app_with(Options {
            env: env(),
            ..Default::default()
        })
        .await,
        None,
    )];
    if let Some(db) = TempDatabase::create() {
        let app = spawn_app_with(Options {
            env: env(),
            database_url: Some(db.url.clone()),
            ..Default::default()
        })
        .await;
        apps.push((app, Some(db)));
    }
    apps
}

async fn register(app: &TestApp, body: Value) -> Value {
    let response = http()
        .post(app.url("/register"))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    response.json().await.unwrap()
}

fn text(v: &Value, name: &str) -> String {
    v[name]
        .as_str()
        .unwrap_or_else(|| panic!("{name} in {v}"))
        .to_owned()
}

async fn read(reg: &Value, token: &str) -> reqwest::Response {
    http()
        .get(text(reg, "registration_client_uri"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
}

async fn put(reg: &Value, token: &str, body: &Value) -> reqwest::Response {
    http()
        .put(text(reg, "registration_client_uri"))
        .bearer_auth(token)
        .json(body)
        .send()
        .await
        .unwrap()
}

async fn delete(reg: &Value, token: &str) -> reqwest::Response {
    http()
        .delete(text(reg, "registration_client_uri"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
}

/// RFC 6750 §3.1 / RFC 7592 §2: 401, `invalid_token` in the challenge and the body.
async fn assert_invalid_token(response: reqwest::Response, what: &str) {
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{what}");
    let challenge = response.headers()["www-authenticate"].to_str().unwrap();
    assert!(challenge.starts_with("Bearer "), "{what}: {challenge}");
    assert!(
        challenge.contains("error=\"invalid_token\""),
        "{what}: {challenge}"
    );
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"], "invalid_token", "{what}");
}

fn rp_body() -> Value {
    json!({
        "redirect_uris": ["https://rp.example/cb"],
        "client_name": "RP",
        "logo_uri": "https://rp.example/logo.png",
    })
}

#[tokio::test]
async fn a_client_reads_replaces_and_deletes_its_registration_with_a_rotating_token() {
    for (app, _db) in apps().await {
        let reg = register(&app, rp_body()).await;
        let first = text(&reg, "registration_access_token");

        let got = read(&reg, &first).await;
        assert_eq!(got.status(), StatusCode::OK);
        assert_eq!(got.headers()["cache-control"], "no-store");
        let got: Value = got.json().await.unwrap();
        assert_eq!(got["logo_uri"], "https://rp.example/logo.png");

        // §2.2: the whole metadata, with client_id and the current secret; what is left
        // out (client_name, logo_uri) is removed.
        let update = json!({
            "client_id": reg["client_id"],
            "client_secret": reg["client_secret"],
            "redirect_uris": ["https://rp.example/new-cb"],
            "grant_types": ["authorization_code", "refresh_token"],
        });
        let updated = put(&reg, &first, &update).await;
        assert_eq!(updated.status(), StatusCode::OK);
        assert_eq!(updated.headers()["cache-control"], "no-store");
        let updated: Value = updated.json().await.unwrap();
        assert_eq!(updated["client_id"], reg["client_id"]);
        assert_eq!(
            updated["redirect_uris"],
            json!(["https://rp.example/new-cb"])
        );
        assert_eq!(
            updated["grant_types"],
            json!(["authorization_code", "refresh_token"])
        );
        assert!(updated.get("logo_uri").is_none(), "{updated}");
        assert_eq!(updated["client_name"], reg["client_id"]);
        assert_eq!(
            updated["registration_client_uri"],
            reg["registration_client_uri"]
        );
        assert!(updated.get("client_secret").is_none(), "the secret stays");
        // §3: a new token; the old one is dead for every operation.
        let second = text(&updated, "registration_access_token");
        assert_ne!(second, first);
        assert_invalid_token(read(&reg, &first).await, "read with the old token").await;
        assert_invalid_token(
            put(&reg, &first, &update).await,
            "update with the old token",
        )
        .await;
        assert_invalid_token(delete(&reg, &first).await, "delete with the old token").await;
        let got: Value = read(&reg, &second).await.json().await.unwrap();
        assert_eq!(got["redirect_uris"], json!(["https://rp.example/new-cb"]));

        // The client's secret still works at the token endpoint.
        let id = text(&reg, "client_id");
        let secret = text(&reg, "client_secret");
        let response = app
            .token_request(
                &[("grant_type", "refresh_token"), ("refresh_token", "nope")],
                Some((&id, &secret)),
            )
            .await;
        let body: Value = response.json().await.unwrap();
        assert_eq!(
            body["error"], "invalid_grant",
            "authenticated, then refused"
        );

        // §2.3: 204, then the client is gone.
        let deleted = delete(&reg, &second).await;
        assert_eq!(deleted.status(), StatusCode::NO_CONTENT);
        assert!(deleted.bytes().await.unwrap().is_empty());
        assert_invalid_token(read(&reg, &second).await, "read after delete").await;
        assert!(app.store.find_client(&id).unwrap().is_none());

        let actions: Vec<(String, String)> = app
            .store
            .list_audit_events(None, 20)
            .unwrap()
            .into_iter()
            .filter(|e| e.target.as_deref() == Some(id.as_str()))
            .map(|e| (e.action, e.actor))
            .collect();
        let actor = format!("client:{id}");
        assert!(actions.contains(&("client.updated".into(), actor.clone())));
        assert!(actions.contains(&("client.deleted".into(), actor)));
    }
}

#[tokio::test]
async fn another_clients_token_a_wrong_one_or_none_is_refused_and_changes_nothing() {
    for (app, _db) in apps().await {
        let victim = register(&app, rp_body()).await;
        let other = register(&app, rp_body()).await;
        let others_token = text(&other, "registration_access_token");
        let update = json!({
            "client_id": victim["client_id"],
            "redirect_uris": ["https://attacker.example/cb"],
        });
        for token in [others_token.as_str(), "wrong"] {
            assert_invalid_token(read(&victim, token).await, token).await;
            assert_invalid_token(put(&victim, token, &update).await, token).await;
            assert_invalid_token(delete(&victim, token).await, token).await;
        }
        // No token at all: 401 with a challenge and no error code (RFC 6750 §3.1).
        let none = http()
            .put(text(&victim, "registration_client_uri"))
            .json(&update)
            .send()
            .await
            .unwrap();
        assert_eq!(none.status(), StatusCode::UNAUTHORIZED);
        assert!(
            none.headers()["www-authenticate"]
                .to_str()
                .unwrap()
                .starts_with("Bearer")
        );
        // Unchanged, and its own token still the one that works.
        let got = read(&victim, &text(&victim, "registration_access_token")).await;
        assert_eq!(got.status(), StatusCode::OK);
        let got: Value = got.json().await.unwrap();
        assert_eq!(got["redirect_uris"], json!(["https://rp.example/cb"]));
        assert_eq!(got["client_name"], "RP");
        // A token for a client that does not exist answers the same.
        let mut ghost = victim.clone();
        ghost["registration_client_uri"] = json!(app.url("/register/no-such-client"));
        assert_invalid_token(
            read(&ghost, &text(&victim, "registration_access_token")).await,
            "unknown client",
        )
        .await;
    }
}

#[tokio::test]
async fn a_bad_update_gets_the_registration_error_and_keeps_client_and_token() {
    for (app, _db) in apps().await {
        let reg = register(&app, rp_body()).await;
        let token = text(&reg, "registration_access_token");
        let id = reg["client_id"].clone();
        let cases = [
            (
                json!({"redirect_uris": ["https://rp.example/cb"]}),
                "invalid_client_metadata",
            ),
            (
                json!({"client_id": "someone-else", "redirect_uris": ["https://rp.example/cb"]}),
                "invalid_client_metadata",
            ),
            (
                json!({"client_id": id, "client_secret": "my-own-choice", "redirect_uris": ["https://rp.example/cb"]}),
                "invalid_client_metadata",
            ),
            (
                json!({"client_id": id, "redirect_uris": ["http://rp.example/cb"]}),
                "invalid_redirect_uri",
            ),
            (json!({"client_id": id}), "invalid_redirect_uri"),
            (
                json!({"client_id": id, "redirect_uris": ["https://rp.example/cb"], "token_endpoint_auth_method": "tls_client_auth"}),
                "invalid_client_metadata",
            ),
            (json!(["an", "array"]), "invalid_client_metadata"),
        ];
        for (body, error) in cases {
            let response = put(&reg, &token, &body).await;
            assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{body}");
            let answer: Value = response.json().await.unwrap();
            assert_eq!(answer["error"], error, "{body}");
        }
        let not_json = http()
            .put(text(&reg, "registration_client_uri"))
            .bearer_auth(&token)
            .header("content-type", "application/json")
            .body("{not json")
            .send()
            .await
            .unwrap();
        assert_eq!(not_json.status(), StatusCode::BAD_REQUEST);
        let got = read(&reg, &token).await;
        assert_eq!(got.status(), StatusCode::OK, "the token was not rotated");
        let got: Value = got.json().await.unwrap();
        assert_eq!(got["client_name"], "RP");
        assert_eq!(got["redirect_uris"], json!(["https://rp.example/cb"]));
    }
}

#[tokio::test]
async fn of_concurrent_updates_with_one_token_exactly_one_succeeds() {
    for (app, _db) in apps().await {
        let reg = register(&app, rp_body()).await;
        let token = text(&reg, "registration_access_token");
        let updates = (0..6).map(|i| {
            let body = json!({
                "client_id": reg["client_id"],
                "redirect_uris": [format!("https://rp.example/cb{i}")],
            });
            let (reg, token) = (reg.clone(), token.clone());
            async move { put(&reg, &token, &body).await }
        });
        let responses = futures::future::join_all(updates).await;
        let mut winners = Vec::new();
        for response in responses {
            match response.status() {
                StatusCode::OK => winners.push(response.json::<Value>().await.unwrap()),
                _ => assert_invalid_token(response, "the losing update").await,
            }
        }
        assert_eq!(winners.len(), 1, "one update, one new token");
        let winner = &winners[0];
        let got: Value = read(&reg, &text(winner, "registration_access_token"))
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(got["redirect_uris"], winner["redirect_uris"]);
    }
}

#[tokio::test]
async fn deleting_a_registration_ends_its_grants_and_tokens() {
    for (app, _db) in apps().await {
        app.add_user("alice").await;
        let reg = register(
            &app,
            json!({
                "redirect_uris": ["http://127.0.0.1:1/callback"],
                "grant_types": ["authorization_code", "refresh_token"],
            }),
        )
        .await;
        let client = TestClient {
            id: text(&reg, "client_id"),
            secret: Some(text(&reg, "client_secret")),
            redirect_uri: "http://127.0.0.1:1/callback".into(),
        };
        let (tokens, _) = app.offline_tokens(&client, "alice").await;
        let access = text(&tokens, "access_token");
        let refresh = text(&tokens, "refresh_token");
        assert_eq!(app.userinfo_status(&access).await, 200);

        let deleted = delete(&reg, &text(&reg, "registration_access_token")).await;
        assert_eq!(deleted.status(), StatusCode::NO_CONTENT);

        assert_eq!(app.userinfo_status(&access).await, 401);
        let refreshed = app.refresh(&client, &refresh, &[]).await;
        assert_eq!(refreshed.status(), StatusCode::UNAUTHORIZED);
        let body: Value = refreshed.json().await.unwrap();
        assert_eq!(body["error"], "invalid_client");
        // Another client introspecting them sees nothing active.
        let (service, _) = app.service_token().await;
        for token in [&access, &refresh] {
            let answer: Value = app
                .post_as(&service, "/introspect", &[("token", token)])
                .await
                .json()
                .await
                .unwrap();
            assert_eq!(answer["active"], false, "{answer}");
        }
    }
}

#[tokio::test]
async fn discovery_publishes_no_member_rfc_7592_does_not_define() {
    for (app, _db) in apps().await {
        let doc = app.get_json("/.well-known/openid-configuration").await;
        let names: Vec<&String> = doc.as_object().unwrap().keys().collect();
        assert!(
            !names
                .iter()
                .any(|n| n.contains("client_configuration") || n.contains("management")),
            "{names:?}"
        );
        assert_eq!(doc["registration_endpoint"], app.url("/register"));
    }
}

const EXCHANGE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";

/// A registered client with the token-exchange grant, given a policy by an operator;
/// its registration, and the store's record.
async fn exchanging(app: &TestApp) -> (Value, portcullis::store::Client) {
    let reg = register(
        app,
        json!({
            "redirect_uris": ["https://rp.example/cb"],
            "grant_types": ["authorization_code", EXCHANGE],
        }),
    )
    .await;
    let id = text(&reg, "client_id");
    let mut client = app.store.find_client(&id).unwrap().unwrap();
    client.metadata.token_exchange = Some(portcullis::domain::ExchangePolicy {
        audiences: vec!["https://api.example/".into()],
        impersonation: true,
    });
    operator_writes(app, &client);
    (reg, client)
}

/// An operator's change of the whole record (as the admin API and the console write it).
fn operator_writes(app: &TestApp, client: &portcullis::store::Client) {
    let event = portcullis::store::NewAuditEvent {
        at: app.clock.now(),
        actor: "admin:test".into(),
        action: "client.updated".into(),
        target: Some(client.id.clone()),
        address: None,
        details: None,
    };
    app.store
        .apply_audited(portcullis::store::AdminChange::UpdateClient(client), &event)
        .unwrap();
}

/// Review finding 1: the operator's exchange policy is checked against the new metadata.
#[tokio::test]
async fn an_exchanging_client_cannot_turn_public_or_drop_the_grant() {
    for (app, _db) in apps().await {
        let (reg, _) = exchanging(&app).await;
        let id = text(&reg, "client_id");
        let token = text(&reg, "registration_access_token");
        for body in [
            json!({
                "client_id": id,
                "redirect_uris": ["https://rp.example/cb"],
                "grant_types": ["authorization_code", EXCHANGE],
                "token_endpoint_auth_method": "none",
            }),
            json!({
                "client_id": id,
                "redirect_uris": ["https://rp.example/cb"],
                "grant_types": ["authorization_code"],
            }),
        ] {
            let response = put(&reg, &token, &body).await;
            assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{body}");
            let error: Value = response.json().await.unwrap();
            assert_eq!(error["error"], "invalid_client_metadata", "{body}");
        }
        let stored = app.store.find_client(&id).unwrap().unwrap();
        assert!(!stored.is_public());
        assert!(stored.metadata.token_exchange.is_some());
        // The token was not used up by the refusals.
        assert_eq!(read(&reg, &token).await.status(), StatusCode::OK);
    }
}

/// Review finding 2, on each backend's transactions: an RFC 7592 update checked against
/// an earlier read keeps what an operator changed meanwhile (a rotated secret, the
/// policy, MFA); an operator's change from an earlier read keeps the rotated token.
#[tokio::test]
async fn an_update_and_an_operator_change_made_meanwhile_do_not_undo_each_other() {
    for (app, _db) in apps().await {
        let (reg, stale) = exchanging(&app).await;
        let id = text(&reg, "client_id");
        let token = text(&reg, "registration_access_token");
        let mut operator = stale.clone();
        operator.secret_hash = Some("operator-rotated".into());
        operator.require_mfa = true;
        operator.first_party = true;
        operator.metadata.token_exchange = None;
        operator_writes(&app, &operator);
        // The RFC 7592 write of an update built from `stale` (as a PUT that read the client
        // before the operator's change, then waited on a sector document).
        let mut update = stale.clone();
        update.name = "Renamed".into();
        update.registration_token_hash = Some("next-token-hash".into());
        let event = portcullis::store::NewAuditEvent {
            at: app.clock.now(),
            actor: format!("client:{id}"),
            action: "client.updated".into(),
            target: Some(id.clone()),
            address: None,
            details: None,
        };
        let presented = portcullis::crypto::tokens::token_hash(&token);
        let change = portcullis::store::AdminChange::UpdateRegisteredClient {
            client: &update,
            token_hash: &presented,
            keeps_secret: true,
        };
        assert!(app.store.apply_audited(change, &event).unwrap().is_some());
        let stored = app.store.find_client(&id).unwrap().unwrap();
        assert_eq!(stored.name, "Renamed");
        assert_eq!(stored.secret_hash.as_deref(), Some("operator-rotated"));
        assert!(stored.require_mfa && stored.first_party);
        assert_eq!(stored.metadata.token_exchange, None);
        // The operator again, from the stale read: the rotated token stays rotated.
        operator_writes(&app, &stale);
        let stored = app.store.find_client(&id).unwrap().unwrap();
        assert_eq!(
            stored.registration_token_hash.as_deref(),
            Some("next-token-hash")
        );
        assert_invalid_token(read(&reg, &token).await, "the old token").await;
    }
}

/// An RFC 7592 update checked against a read from before an operator put the client
/// under a profile (fapi2) is refused rather than written without it: the stored
/// profile stays, and the registrant's token still works for a retry.
#[tokio::test]
async fn an_update_checked_before_an_operator_set_a_profile_does_not_drop_it() {
    for (app, _db) in apps().await {
        let reg = register(&app, rp_body()).await;
        let id = text(&reg, "client_id");
        let token = text(&reg, "registration_access_token");
        let stale = app.store.find_client(&id).unwrap().unwrap();
        let mut operator = stale.clone();
        operator.metadata.profile = Some(portcullis::domain::Profile::Fapi2);
        operator_writes(&app, &operator);

        let mut update = stale.clone();
        update.name = "Renamed".into();
        update.registration_token_hash = Some("next-token-hash".into());
        let event = portcullis::store::NewAuditEvent {
            at: app.clock.now(),
            actor: format!("client:{id}"),
            action: "client.updated".into(),
            target: Some(id.clone()),
            address: None,
            details: None,
        };
        let presented = portcullis::crypto::tokens::token_hash(&token);
        let change = portcullis::store::AdminChange::UpdateRegisteredClient {
            client: &update,
            token_hash: &presented,
            keeps_secret: true,
        };
        assert!(app.store.apply_audited(change, &event).unwrap().is_none());
        let stored = app.store.find_client(&id).unwrap().unwrap();
        assert_eq!(
            stored.metadata.profile,
            Some(portcullis::domain::Profile::Fapi2)
        );
        assert_ne!(stored.name, "Renamed");
        assert_eq!(read(&reg, &token).await.status(), StatusCode::OK);
    }
}

/// Review finding 6: updates of one client from one address are rate-limited.
#[tokio::test]
async fn updates_are_rate_limited_per_client() {
    let (app, _db) = apps().await.remove(0);
    let reg = register(&app, rp_body()).await;
    let id = text(&reg, "client_id");
    let mut token = text(&reg, "registration_access_token");
    let body = json!({"client_id": id, "redirect_uris": ["https://rp.example/cb"]});
    for _ in 0..20 {
        let response = put(&reg, &token, &body).await;
        assert_eq!(response.status(), StatusCode::OK);
        let answer: Value = response.json().await.unwrap();
        token = text(&answer, "registration_access_token");
    }
    let response = put(&reg, &token, &body).await;
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    // Another client is not held back.
    let other = register(&app, rp_body()).await;
    let body = json!({"client_id": other["client_id"], "redirect_uris": ["https://rp.example/cb"]});
    let response = put(&other, &text(&other, "registration_access_token"), &body).await;
    assert_eq!(response.status(), StatusCode::OK);
}
