//! DPoP (RFC 9449) as browser and public clients meet it: refresh tokens bound on their
//! first refresh with a proof (§5), CORS for the `DPoP` header and the headers a script
//! reads back, the challenges of a resource, and nonces given ahead (§8.2) to a client that
//! requires them.

use portcullis::protocol::registration::ClientDraft;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::backends::TempDatabase;
use crate::dpop::{
    Key, challenge, error_of, now, ok_json, resource, resource_proof, token_request,
};
use crate::helpers::{Options, TestApp, TestClient, http, query, spawn_app, spawn_app_with};

/// A public client that refreshes; `draft` adds to it.
fn public_client(app: &TestApp, draft: ClientDraft) -> TestClient {
    app.add_client_with(ClientDraft {
        auth_method: Some("none".into()),
        grant_types: vec!["authorization_code".into(), "refresh_token".into()],
        ..draft
    })
}

/// Alice's sign-in at `client`, its code redeemed with `proof` (or none): the response.
async fn redeem(app: &TestApp, client: &TestClient, proof: Option<&str>) -> reqwest::Response {
    let (url, pkce) = app.authorize_url(
        client,
        &[
            ("scope", "openid profile offline_access"),
            ("prompt", "consent"),
        ],
    );
    let callback = app.browser().sign_in(&url, "alice").await;
    let code = query(&callback, "code").unwrap();
    let form = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", client.redirect_uri.as_str()),
        ("code_verifier", pkce.verifier.as_str()),
    ];
    token_request(app, client, &form, proof).await
}

fn token_proof(app: &TestApp, key: &Key, changes: Value) -> String {
    key.proof("POST", &app.url("/token"), now(app), changes)
}

fn header<'r>(response: &'r reqwest::Response, name: &str) -> &'r str {
    response
        .headers()
        .get(name)
        .map_or("", |v| v.to_str().unwrap())
}

async fn an_unbound_refresh_token_refreshed_with_a_proof_gets_a_successor_bound_to_its_key(
    database_url: Option<String>,
) {
    let app = spawn_app_with(Options {
        database_url,
        ..Options::default()
    })
    .await;
    app.add_user("alice").await;
    let client = public_client(&app, ClientDraft::default());
    // Redeemed before the client adopted DPoP: an unbound refresh token.
    let tokens = ok_json(redeem(&app, &client, None).await).await;
    assert_eq!(tokens["token_type"], "Bearer");
    let unbound = tokens["refresh_token"].as_str().unwrap();
    assert!(!unbound.contains('~'), "{unbound}");

    let key = Key::new();
    let form = [("grant_type", "refresh_token"), ("refresh_token", unbound)];
    let first = token_proof(&app, &key, json!({}));
    let refreshed = ok_json(token_request(&app, &client, &form, Some(&first)).await).await;
    assert_eq!(refreshed["token_type"], "DPoP");
    let successor = refreshed["refresh_token"].as_str().unwrap().to_owned();
    assert!(
        successor.ends_with(&format!("~{}", key.jkt())),
        "{successor} is not bound to the proof's key"
    );
    // A retry within the grace window, with a new proof by the same key, gets the same
    // (bound) successor.
    let again = token_proof(&app, &key, json!({}));
    let retried = ok_json(token_request(&app, &client, &form, Some(&again)).await).await;
    assert_eq!(retried["refresh_token"], successor.as_str());

    // The successor: refused without a proof and with another key's, taken with the key's.
    let form = [
        ("grant_type", "refresh_token"),
        ("refresh_token", successor.as_str()),
    ];
    let without = token_request(&app, &client, &form, None).await;
    assert_eq!(
        error_of(without).await,
        (StatusCode::BAD_REQUEST, "invalid_grant".into())
    );
    let other = token_proof(&app, &Key::new(), json!({}));
    let by_other = token_request(&app, &client, &form, Some(&other)).await;
    assert_eq!(
        error_of(by_other).await,
        (StatusCode::BAD_REQUEST, "invalid_grant".into())
    );
    let mine = token_proof(&app, &key, json!({}));
    let next = ok_json(token_request(&app, &client, &form, Some(&mine)).await).await;
    assert!(
        next["refresh_token"]
            .as_str()
            .unwrap()
            .ends_with(&key.jkt())
    );
}

#[tokio::test]
async fn an_unbound_refresh_token_refreshed_with_a_proof_gets_a_bound_successor_over_sqlite() {
    an_unbound_refresh_token_refreshed_with_a_proof_gets_a_successor_bound_to_its_key(None).await;
}

#[tokio::test]
async fn an_unbound_refresh_token_refreshed_with_a_proof_gets_a_bound_successor_over_postgres() {
    let Some(db) = TempDatabase::create() else {
        return;
    };
    an_unbound_refresh_token_refreshed_with_a_proof_gets_a_successor_bound_to_its_key(Some(
        db.url.clone(),
    ))
    .await;
}

#[tokio::test]
async fn a_browser_may_send_a_proof_and_its_script_may_read_the_nonce_and_the_challenge() {
    let app = spawn_app().await;
    for path in ["/token", "/userinfo"] {
        let preflight = http()
            .request(reqwest::Method::OPTIONS, app.url(path))
            .header("Origin", "https://spa.example")
            .header("Access-Control-Request-Method", "POST")
            .header("Access-Control-Request-Headers", "dpop, content-type")
            .send()
            .await
            .unwrap();
        assert!(preflight.status().is_success(), "{path}");
        let allowed = header(&preflight, "access-control-allow-headers").to_ascii_lowercase();
        assert!(allowed.contains("dpop"), "{path}: {allowed}");
    }

    // A client that requires nonces: the error that asks for one, and the success after
    // it, both let a script read the nonce (and the challenge).
    let service = crate::dpop::admin_service(
        &app,
        ClientDraft {
            require_dpop_nonce: Some(true),
            ..ClientDraft::default()
        },
    );
    let key = Key::new();
    let form = [("grant_type", "client_credentials")];
    let asked = token_request(
        &app,
        &service,
        &form,
        Some(&token_proof(&app, &key, json!({}))),
    )
    .await;
    let exposed = header(&asked, "access-control-expose-headers").to_owned();
    assert!(exposed.contains("DPoP-Nonce"), "{exposed}");
    assert!(exposed.contains("WWW-Authenticate"), "{exposed}");
    let nonce = header(&asked, "dpop-nonce").to_owned();
    assert_eq!(error_of(asked).await.1, "use_dpop_nonce");

    let proof = token_proof(&app, &key, json!({ "nonce": nonce }));
    let issued = token_request(&app, &service, &form, Some(&proof)).await;
    assert!(header(&issued, "access-control-expose-headers").contains("DPoP-Nonce"));
    // RFC 9449 §8.2: the next nonce, given ahead with the success.
    assert!(!header(&issued, "dpop-nonce").is_empty());
    ok_json(issued).await;
}

#[tokio::test]
async fn a_request_without_a_token_is_challenged_for_both_bearer_and_dpop() {
    let app = spawn_app().await;
    let response = http().get(app.url("/userinfo")).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let challenges: Vec<&str> = response
        .headers()
        .get_all("www-authenticate")
        .iter()
        .map(|v| v.to_str().unwrap())
        .collect();
    assert!(
        challenges.iter().any(|c| c.starts_with("Bearer realm=")),
        "{challenges:?}"
    );
    assert!(
        challenges
            .iter()
            .any(|c| c.starts_with(r#"DPoP algs="ES256 PS256 RS256 EdDSA""#)),
        "{challenges:?}"
    );
    assert!(header(&response, "access-control-expose-headers").contains("WWW-Authenticate"));
}

#[tokio::test]
async fn a_client_that_requires_nonces_needs_one_at_userinfo_and_is_given_the_next_ahead() {
    let app = spawn_app().await;
    app.add_user("alice").await;
    let client = public_client(
        &app,
        ClientDraft {
            require_dpop_nonce: Some(true),
            ..ClientDraft::default()
        },
    );
    let key = Key::new();
    let (url, pkce) = app.authorize_url(
        &client,
        &[("scope", "openid offline_access"), ("prompt", "consent")],
    );
    let callback = app.browser().sign_in(&url, "alice").await;
    let code = query(&callback, "code").unwrap();
    let form = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", client.redirect_uri.as_str()),
        ("code_verifier", pkce.verifier.as_str()),
    ];
    // The token endpoint asks for the nonce (the code is not used up), then issues with it
    // and sends the next one.
    let plain = token_proof(&app, &key, json!({}));
    let asked = token_request(&app, &client, &form, Some(&plain)).await;
    let nonce = header(&asked, "dpop-nonce").to_owned();
    assert_eq!(error_of(asked).await.1, "use_dpop_nonce");
    let proof = token_proof(&app, &key, json!({ "nonce": nonce }));
    let issued = token_request(&app, &client, &form, Some(&proof)).await;
    assert!(!header(&issued, "dpop-nonce").is_empty());
    let tokens = ok_json(issued).await;
    let access = tokens["access_token"].as_str().unwrap();

    // Userinfo: a proof without the nonce is asked for it, under the DPoP scheme.
    let plain = resource_proof(&app, &key, "/userinfo", access);
    let refused = resource(&app, "/userinfo", "DPoP", access, Some(&plain)).await;
    assert!(challenge(&refused).starts_with("DPoP "));
    let nonce = header(&refused, "dpop-nonce").to_owned();
    assert_eq!(
        error_of(refused).await,
        (StatusCode::UNAUTHORIZED, "use_dpop_nonce".into())
    );
    let with_nonce = key.proof(
        "GET",
        &app.url("/userinfo"),
        now(&app),
        json!({ "ath": crate::dpop::ath(access), "nonce": nonce }),
    );
    let info = resource(&app, "/userinfo", "DPoP", access, Some(&with_nonce)).await;
    assert!(!header(&info, "dpop-nonce").is_empty());
    assert!(ok_json(info).await["sub"].is_string());
}
