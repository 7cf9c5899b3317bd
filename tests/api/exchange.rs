//! Token exchange (RFC 8693) over HTTP, on SQLite and on PostgreSQL: what the operator's
//! policy allows, the `act` claim of delegation, and every refusal with its code (none a
//! 500, none issuing a token).

use portcullis::protocol::registration::ClientDraft;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::backends::TempDatabase;
use crate::helpers::{Options, TestApp, TestClient, spawn_app_with};

const GRANT: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
const ACCESS: &str = "urn:ietf:params:oauth:token-type:access_token";
const ID: &str = "urn:ietf:params:oauth:token-type:id_token";
const API: &str = "https://api.example/";

/// An instance on each backend this machine has (SQLite always), with the PostgreSQL
/// database kept alive beside it.
async fn apps() -> Vec<(TestApp, Option<TempDatabase>)> {
    let mut apps = vec![(spawn_app_with(Options::default()).await, None)];
    if let Some(db) = TempDatabase::create() {
        let app = spawn_app_with(Options {
            database_url: Some(db.url.clone()),
            ..Default::default()
        })
        .await;
        apps.push((app, Some(db)));
    }
    apps
}

/// The resource of the gateway the CLI and admin API tests register: subject tokens are
/// addressed to it.
const GATEWAY: &str = "https://gateway.example/";

/// A service client with the token-exchange grant and a policy for `API` and `billing`.
/// Users sign in to it too (code and refresh grants), and it has tokens of its own
/// (`client_credentials`): the subject and actor tokens it may present are those issued
/// to it.
fn exchanger(app: &TestApp, impersonation: bool) -> TestClient {
    exchanger_for(app, &[API, "billing"], impersonation)
}

fn exchanger_for(app: &TestApp, audiences: &[&str], impersonation: bool) -> TestClient {
    app.add_client_with(ClientDraft {
        grant_types: vec![
            "authorization_code".into(),
            "refresh_token".into(),
            "client_credentials".into(),
            GRANT.into(),
        ],
        exchange_audiences: audiences.iter().map(|a| (*a).to_owned()).collect(),
        exchange_impersonation: impersonation,
        ..ClientDraft::default()
    })
}

/// The client's own `client_credentials` token.
async fn own_token(app: &TestApp, client: &TestClient) -> String {
    let secret = client.secret.as_deref().unwrap();
    let response = app
        .token_request(
            &[("grant_type", "client_credentials")],
            Some((&client.id, secret)),
        )
        .await;
    let body: Value = response.json().await.unwrap();
    text(&body, "access_token")
}

async fn exchange(
    app: &TestApp,
    client: &TestClient,
    form: &[(&str, &str)],
) -> (StatusCode, Value) {
    let mut all = vec![("grant_type", GRANT)];
    all.extend_from_slice(form);
    let secret = client.secret.as_deref().unwrap();
    let response = app.token_request(&all, Some((&client.id, secret))).await;
    let status = response.status();
    if status == StatusCode::OK {
        assert_eq!(response.headers()["cache-control"], "no-store");
    }
    (status, response.json().await.unwrap())
}

/// A subject access token, and the target `API`.
fn subject(token: &str) -> [(&'static str, &str); 3] {
    [
        ("subject_token", token),
        ("subject_token_type", ACCESS),
        ("resource", API),
    ]
}

/// A refusal: 400 (401 for client authentication) with `error`, and no token.
fn assert_refused(answer: &(StatusCode, Value), error: &str, what: &str) {
    assert_eq!(answer.0, StatusCode::BAD_REQUEST, "{what}: {}", answer.1);
    assert_eq!(answer.1["error"], error, "{what}: {}", answer.1);
    assert!(answer.1.get("access_token").is_none(), "{what}");
}

async fn introspect(app: &TestApp, caller: &TestClient, token: &str) -> Value {
    app.post_as(caller, "/introspect", &[("token", token)])
        .await
        .json()
        .await
        .unwrap()
}

/// Alice's tokens (code flow with offline_access: access, ID and refresh token) from
/// `client`.
async fn alice(app: &TestApp, client: &TestClient) -> Value {
    app.add_user("alice").await;
    app.offline_tokens(client, "alice").await.0
}

/// An access token of `username`'s from a relying party of its own, addressed to
/// `resource` (RFC 8707).
async fn addressed_to(app: &TestApp, username: &str, resource: &str) -> String {
    let rp = app.add_client_with(ClientDraft {
        grant_types: vec!["authorization_code".into()],
        resources: vec![resource.to_owned()],
        ..ClientDraft::default()
    });
    let (url, pkce) =
        app.authorize_url(&rp, &[("scope", "openid profile"), ("resource", resource)]);
    let callback = app.browser().sign_in(&url, username).await;
    let tokens = app.exchange(&rp, &callback, &pkce).await;
    text(&tokens, "access_token")
}

fn text(v: &Value, name: &str) -> String {
    v[name]
        .as_str()
        .unwrap_or_else(|| panic!("{name} in {v}"))
        .to_owned()
}

#[tokio::test]
async fn an_impersonating_exchange_issues_a_narrower_token_for_the_audience() {
    for (app, _db) in apps().await {
        let svc = exchanger(&app, true);
        let tokens = alice(&app, &svc).await;
        let access = text(&tokens, "access_token");
        let mut form = subject(&access).to_vec();
        form.extend([("scope", "profile"), ("requested_token_type", ACCESS)]);
        let (status, issued) = exchange(&app, &svc, &form).await;
        assert_eq!(status, StatusCode::OK, "{issued}");
        assert_eq!(issued["issued_token_type"], ACCESS);
        assert_eq!(issued["token_type"], "Bearer");
        assert_eq!(issued["scope"], "profile");
        assert!(issued["expires_in"].as_i64().unwrap() <= 3600);
        assert!(issued.get("refresh_token").is_none());
        let info = introspect(&app, &svc, &text(&issued, "access_token")).await;
        assert_eq!(info["active"], true, "{info}");
        assert_eq!(info["aud"], API);
        assert_eq!(info["client_id"], svc.id.as_str());
        assert!(info.get("act").is_none(), "impersonation: {info}");

        // An ID token of ours (its session's grant) is a subject too.
        let id_token = text(&tokens, "id_token");
        let (status, by_id) = exchange(
            &app,
            &svc,
            &[
                ("subject_token", &id_token),
                ("subject_token_type", ID),
                ("audience", "billing"),
            ],
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{by_id}");
        let info = introspect(&app, &svc, &text(&by_id, "access_token")).await;
        assert_eq!(info["aud"], "billing");

        // The audit trail names subject, client and audience.
        let events = app.store.list_audit_events(None, 20).unwrap();
        let event = events
            .iter()
            .find(|e| e.action == "token.exchanged")
            .expect("an audit event");
        assert_eq!(event.actor, format!("client:{}", svc.id));
        assert!(event.address.is_some(), "the caller's address");
        let details: Value = serde_json::from_str(event.details.as_deref().unwrap()).unwrap();
        assert_eq!(details["client_id"], svc.id.as_str());
        assert!(details["audience"].is_array());
        assert!(details["subject"].is_string());
    }
}

#[tokio::test]
async fn delegation_carries_act_and_a_chain_nests_it() {
    for (app, _db) in apps().await {
        // Two services: the first delegates to the second (its client id is an audience
        // of the first's policy), which goes on to the API.
        let second = exchanger(&app, false);
        let first = exchanger_for(&app, &[&second.id], false);
        let tokens = alice(&app, &first).await;
        let access = text(&tokens, "access_token");
        // Without an actor, a delegate-only client is refused (RFC 8693 §2.2.2: a request
        // unacceptable by policy).
        let mut form = subject(&access).to_vec();
        form.retain(|(k, _)| *k != "resource");
        form.push(("audience", &second.id));
        let refused = exchange(&app, &first, &form).await;
        assert_refused(&refused, "invalid_request", "impersonation not allowed");

        let first_token = own_token(&app, &first).await;
        form.extend([
            ("actor_token", first_token.as_str()),
            ("actor_token_type", ACCESS),
        ]);
        let (status, once) = exchange(&app, &first, &form).await;
        assert_eq!(status, StatusCode::OK, "{once}");
        let once = text(&once, "access_token");
        let info = introspect(&app, &first, &once).await;
        assert_eq!(info["active"], true);
        assert_eq!(info["act"], json!({"sub": first.id}));

        // The delegated token as the next subject: the new actor outside, the first one
        // nested (§4.1).
        let second_token = own_token(&app, &second).await;
        let mut form = subject(&once).to_vec();
        form.extend([
            ("actor_token", second_token.as_str()),
            ("actor_token_type", ACCESS),
        ]);
        let (status, twice) = exchange(&app, &second, &form).await;
        assert_eq!(status, StatusCode::OK, "{twice}");
        let info = introspect(&app, &second, &text(&twice, "access_token")).await;
        assert_eq!(
            info["act"],
            json!({"sub": second.id, "act": {"sub": first.id}})
        );
    }
}

/// Review findings 3 and 4: subject and actor tokens must be meant for the requesting
/// client; the actor is not the subject.
#[tokio::test]
async fn tokens_meant_for_another_client_are_refused() {
    for (app, _db) in apps().await {
        let svc = exchanger(&app, true);
        let tokens = alice(&app, &svc).await;
        let access = text(&tokens, "access_token");
        // Another relying party's tokens for Alice: her access token (for our userinfo)
        // and her ID token.
        let rp = app.add_refreshing_client();
        let (at_rp, _) = app.offline_tokens(&rp, "alice").await;
        let answer = exchange(&app, &svc, &subject(&text(&at_rp, "access_token"))).await;
        assert_refused(&answer, "invalid_request", "another client's access token");
        let id_token = text(&at_rp, "id_token");
        let form = [
            ("subject_token", id_token.as_str()),
            ("subject_token_type", ID),
            ("resource", API),
        ];
        let answer = exchange(&app, &svc, &form).await;
        assert_refused(&answer, "invalid_request", "another client's ID token");
        // Addressed to another resource.
        app.add_user("bob").await;
        let elsewhere = addressed_to(&app, "bob", "https://elsewhere.example/").await;
        let answer = exchange(&app, &svc, &subject(&elsewhere)).await;
        assert_refused(&answer, "invalid_request", "addressed elsewhere");
        // Actors: another client's own token, the subject token itself.
        let (_, foreign_actor) = app.service_token().await;
        for (actor, what) in [
            (&foreign_actor, "another client's"),
            (&access, "the subject"),
        ] {
            let mut form = subject(&access).to_vec();
            form.extend([
                ("actor_token", actor.as_str()),
                ("actor_token_type", ACCESS),
            ]);
            let answer = exchange(&app, &svc, &form).await;
            assert_refused(&answer, "invalid_request", what);
        }
    }
}

#[tokio::test]
async fn targets_scopes_and_policies_outside_what_is_allowed_are_refused() {
    for (app, _db) in apps().await {
        let svc = exchanger(&app, true);
        let tokens = alice(&app, &svc).await;
        let access = text(&tokens, "access_token");
        let with = |extra: &[(&'static str, &'static str)]| {
            let mut form = subject(&access).to_vec();
            form.extend_from_slice(extra);
            form
        };
        // Several audiences in the policy, none named (review finding 8).
        let mut untargeted = with(&[]);
        untargeted.retain(|(k, _)| *k != "resource");
        assert_refused(
            &exchange(&app, &svc, &untargeted).await,
            "invalid_target",
            "no target",
        );
        for (extra, error) in [
            (("audience", "payroll"), "invalid_target"),
            (("resource", "https://elsewhere.example/"), "invalid_target"),
            (("scope", "openid email"), "invalid_scope"),
            (("requested_token_type", ID), "invalid_request"),
            (("actor_token", "x"), "invalid_request"),
            (
                (
                    "subject_token_type",
                    "urn:ietf:params:oauth:token-type:saml2",
                ),
                "invalid_request",
            ),
        ] {
            let mut form = with(&[]);
            form.retain(|(k, _)| *k != extra.0);
            form.push(extra);
            let answer = exchange(&app, &svc, &form).await;
            assert_refused(&answer, error, &format!("{extra:?}"));
        }
        // No policy: the grant type alone is not enough.
        let no_policy = app.add_client_with(ClientDraft {
            grant_types: vec![GRANT.into()],
            ..ClientDraft::default()
        });
        let answer = exchange(&app, &no_policy, &with(&[])).await;
        assert_refused(&answer, "unauthorized_client", "no policy");
        // A client without the grant type.
        let plain = app.add_refreshing_client();
        let answer = exchange(&app, &plain, &with(&[])).await;
        assert_refused(&answer, "unauthorized_client", "no grant type");
    }
}

#[tokio::test]
async fn foreign_expired_and_revoked_subject_tokens_are_refused() {
    for (app, _db) in apps().await {
        let svc = exchanger(&app, true);
        let rp = &svc;
        let tokens = alice(&app, &svc).await;
        let access = text(&tokens, "access_token");
        // The same claims signed with a key that is not ours (built here with
        // jsonwebtoken, not with our signer).
        let claims = crate::helpers::jwt_part(&access, 1);
        let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
        header.typ = Some("at+jwt".into());
        let foreign = jsonwebtoken::encode(
            &header,
            &claims,
            &jsonwebtoken::EncodingKey::from_secret(b"not our key at all, not at all").unwrap(),
        )
        .unwrap();
        let answer = exchange(&app, &svc, &subject(&foreign)).await;
        assert_refused(&answer, "invalid_request", "foreign");
        let answer = exchange(&app, &svc, &subject("garbage")).await;
        assert_refused(&answer, "invalid_request", "garbage");

        // Revoked (RFC 7009 by its client).
        let revoked = app.post_as(rp, "/revoke", &[("token", &access)]).await;
        assert_eq!(revoked.status(), StatusCode::OK);
        let answer = exchange(&app, &svc, &subject(&access)).await;
        assert_refused(&answer, "invalid_request", "revoked");

        // Expired: a fresh token, then the clock past its end.
        let refreshed: Value = app
            .refresh(rp, &text(&tokens, "refresh_token"), &[])
            .await
            .json()
            .await
            .unwrap();
        let fresh = text(&refreshed, "access_token");
        let (status, _) = exchange(&app, &svc, &subject(&fresh)).await;
        assert_eq!(status, StatusCode::OK, "live before the clock moves");
        app.clock.advance(3601);
        let answer = exchange(&app, &svc, &subject(&fresh)).await;
        assert_refused(&answer, "invalid_request", "expired");
    }
}

#[tokio::test]
async fn the_exchanged_token_dies_with_the_subjects_grant() {
    for (app, _db) in apps().await {
        let svc = exchanger(&app, true);
        let tokens = alice(&app, &svc).await;
        let (status, issued) = exchange(&app, &svc, &subject(&text(&tokens, "access_token"))).await;
        assert_eq!(status, StatusCode::OK, "{issued}");
        let exchanged = text(&issued, "access_token");
        assert_eq!(introspect(&app, &svc, &exchanged).await["active"], true);
        // Revoking the refresh token revokes its grant (RFC 7009 §2.1), and with it every
        // access token of the grant: the exchanged one too.
        let refresh = text(&tokens, "refresh_token");
        let revoked = app.post_as(&svc, "/revoke", &[("token", &refresh)]).await;
        assert_eq!(revoked.status(), StatusCode::OK);
        let info = introspect(&app, &svc, &exchanged).await;
        assert_eq!(info, json!({"active": false}));
    }
}

/// Review finding 5: revoking the subject access token alone (RFC 7009) revokes what was
/// exchanged from it; deleting the exchanging client revokes what it was issued.
#[tokio::test]
async fn the_exchanged_token_dies_with_its_subject_token_and_its_client() {
    for (app, _db) in apps().await {
        let svc = exchanger(&app, true);
        let tokens = alice(&app, &svc).await;
        let access = text(&tokens, "access_token");
        let (_, issued) = exchange(&app, &svc, &subject(&access)).await;
        let exchanged = text(&issued, "access_token");
        let revoked = app.post_as(&svc, "/revoke", &[("token", &access)]).await;
        assert_eq!(revoked.status(), StatusCode::OK);
        let info = introspect(&app, &svc, &exchanged).await;
        assert_eq!(info, json!({"active": false}), "the subject token revoked");

        // A gateway registered for its resource exchanges Bob's token addressed to it,
        // then is deleted: its token dies, Bob's lives on.
        let gateway = app.add_client_with(ClientDraft {
            grant_types: vec![GRANT.into()],
            redirect_uris: vec![],
            resources: vec![GATEWAY.into()],
            exchange_audiences: vec![API.into()],
            exchange_impersonation: true,
            ..ClientDraft::default()
        });
        app.add_user("bob").await;
        let bobs = addressed_to(&app, "bob", GATEWAY).await;
        let (status, issued) = exchange(&app, &gateway, &subject(&bobs)).await;
        assert_eq!(status, StatusCode::OK, "{issued}");
        let exchanged = text(&issued, "access_token");
        assert_eq!(introspect(&app, &svc, &exchanged).await["active"], true);
        assert!(app.store.delete_client(&gateway.id).unwrap());
        let info = introspect(&app, &svc, &exchanged).await;
        assert_eq!(info, json!({"active": false}), "the client deleted");
        assert_eq!(introspect(&app, &svc, &bobs).await["active"], true);
    }
}

#[tokio::test]
async fn an_operator_sets_the_policy_with_the_cli_and_the_admin_api() {
    let app = spawn_app_with(Options::default()).await;
    app.add_user("alice").await;
    // Alice's token addressed to the gateway's resource, which both clients below are
    // registered for.
    let access = addressed_to(&app, "alice", GATEWAY).await;
    let db = format!(
        "sqlite://{}",
        app.dir.path().join("portcullis.db").display()
    );
    let kek = [("PORTCULLIS_KEY_ENCRYPTION_KEY", crate::helpers::TEST_KEK)];
    let out = crate::cli::portcullis_on(
        &db,
        &kek,
        &[
            "clients",
            "add",
            "--name",
            "Billing gateway",
            "--grant-type",
            GRANT,
            "--exchange-audience",
            "billing",
            API,
            "--exchange-impersonation",
            "--resource",
            GATEWAY,
        ],
        None,
    );
    assert!(out.status.success(), "{out:?}");
    let added: Value = serde_json::from_slice(&out.stdout).unwrap();
    let gateway = TestClient {
        id: text(&added, "client_id"),
        secret: Some(text(&added, "client_secret")),
        redirect_uri: String::new(),
    };
    let mut form = subject(&access).to_vec();
    form.retain(|(k, _)| *k != "resource");
    form.push(("audience", "billing"));
    let (status, issued) = exchange(&app, &gateway, &form).await;
    assert_eq!(status, StatusCode::OK, "{issued}");
    form.push(("audience", "payroll"));
    assert_refused(
        &exchange(&app, &gateway, &form).await,
        "invalid_target",
        "cli policy",
    );
    // A policy without the grant type is refused at registration.
    let out = crate::cli::portcullis_on(
        &db,
        &kek,
        &[
            "clients",
            "add",
            "--name",
            "X",
            "--exchange-audience",
            "billing",
        ],
        None,
    );
    assert!(!out.status.success());

    // The admin API: the same policy as client fields, shown back and changed.
    let (_, admin) = crate::admin_api::automation(&app).await;
    let (status, created) = crate::admin_api::call(
        &app,
        Some(&admin),
        reqwest::Method::POST,
        "/clients",
        Some(json!({
            "client_name": "Payroll",
            "grant_types": [GRANT],
            "redirect_uris": [],
            "exchange_audiences": ["payroll"],
            "resources": [GATEWAY],
        })),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_eq!(created["exchange_audiences"], json!(["payroll"]));
    assert_eq!(created["exchange_impersonation"], false);
    let payroll = TestClient {
        id: text(&created, "client_id"),
        secret: Some(text(&created, "client_secret")),
        redirect_uri: String::new(),
    };
    let to_payroll = [
        ("subject_token", access.as_str()),
        ("subject_token_type", ACCESS),
    ];
    let refused = exchange(&app, &payroll, &to_payroll).await;
    assert_refused(&refused, "invalid_request", "delegation only");
    let (status, changed) = crate::admin_api::call(
        &app,
        Some(&admin),
        reqwest::Method::PATCH,
        &format!("/clients/{}", payroll.id),
        Some(json!({"exchange_impersonation": true})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{changed}");
    assert_eq!(changed["exchange_impersonation"], true);
    let (status, issued) = exchange(&app, &payroll, &to_payroll).await;
    assert_eq!(status, StatusCode::OK, "{issued}");
    // Dynamic registration never shows (nor takes) a policy.
    assert!(created.get("token_exchange").is_none());
}

/// Review finding 7: an ID token stands for the grant it was issued with, not for the
/// newest grant of its session.
#[tokio::test]
async fn an_id_token_stands_for_its_own_grant() {
    for (app, _db) in apps().await {
        let svc = exchanger(&app, true);
        app.add_user("alice").await;
        let (first, browser) = app.offline_tokens(&svc, "alice").await;
        // A second authorization in the same session, later: a second grant.
        app.clock.advance(5);
        let (url, pkce) = app.authorize_url(&svc, &[("scope", "openid")]);
        let callback = browser
            .consent_if_asked(browser.open(&url).await)
            .await
            .left();
        let second = app.exchange(&svc, &callback, &pkce).await;
        // The first grant revoked (through its refresh token): its ID token stands for
        // nothing, though the session and its newer grant live.
        let refresh = text(&first, "refresh_token");
        let revoked = app.post_as(&svc, "/revoke", &[("token", &refresh)]).await;
        assert_eq!(revoked.status(), StatusCode::OK);
        let with_id_token = |token: &str| {
            vec![
                ("subject_token", token.to_owned()),
                ("subject_token_type", ID.to_owned()),
                ("resource", API.to_owned()),
            ]
        };
        let form = with_id_token(&text(&first, "id_token"));
        let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
        assert_refused(
            &exchange(&app, &svc, &form).await,
            "invalid_request",
            "the first grant revoked",
        );
        let form = with_id_token(&text(&second, "id_token"));
        let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let (status, issued) = exchange(&app, &svc, &form).await;
        assert_eq!(status, StatusCode::OK, "{issued}");
        assert_eq!(issued["scope"], "openid", "the second grant's scope");
    }
}
