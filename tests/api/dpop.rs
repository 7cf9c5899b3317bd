//! DPoP (RFC 9449) over real HTTP: tokens bound at the token endpoint, proofs checked at
//! the resources (userinfo, the admin API), replays caught across instances, nonces.
//! Proofs are built here by hand: aws-lc-rs signs the bytes, and the header, the JWK and
//! its thumbprint are written out, sharing nothing with the server's verifier.

use std::sync::Arc;

use aws_lc_rs::digest;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use portcullis::domain::{Clock, ManualClock};
use portcullis::protocol::registration::ClientDraft;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::backends::{TempDatabase, TempRedis};
use crate::helpers::{
    Options, TestApp, TestClient, http, jwt_part, query, spawn_app, spawn_app_with,
};

fn b64(bytes: impl AsRef<[u8]>) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// A client's P-256 key.
pub(crate) struct Key(EcdsaKeyPair);

impl Key {
    pub(crate) fn new() -> Self {
        Self(EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING).unwrap())
    }

    fn jwk(&self) -> Value {
        let point = self.0.public_key().as_ref();
        json!({"kty": "EC", "crv": "P-256", "x": b64(&point[1..33]), "y": b64(&point[33..65])})
    }

    /// RFC 7638, written out.
    pub(crate) fn jkt(&self) -> String {
        let jwk = self.jwk();
        let canonical = format!(
            r#"{{"crv":"P-256","kty":"EC","x":"{}","y":"{}"}}"#,
            jwk["x"].as_str().unwrap(),
            jwk["y"].as_str().unwrap()
        );
        b64(digest::digest(&digest::SHA256, canonical.as_bytes()))
    }

    fn sign(&self, header: &Value, claims: &Value) -> String {
        let input = format!("{}.{}", b64(header.to_string()), b64(claims.to_string()));
        let signature = self.0.sign(&SystemRandom::new(), input.as_bytes()).unwrap();
        format!("{input}.{}", b64(signature))
    }

    fn header(&self) -> Value {
        json!({"typ": "dpop+jwt", "alg": "ES256", "jwk": self.jwk()})
    }

    /// A proof for `htm` `htu` at `now`, with `changes` to its claims (`null` removes).
    pub(crate) fn proof(&self, htm: &str, htu: &str, now: i64, changes: Value) -> String {
        self.sign(&self.header(), &claims(htm, htu, now, changes))
    }
}

fn claims(htm: &str, htu: &str, now: i64, changes: Value) -> Value {
    let mut claims = json!({
        "htm": htm,
        "htu": htu,
        "iat": now,
        "jti": portcullis::crypto::tokens::random_token(16),
    });
    for (name, value) in changes.as_object().unwrap() {
        if value.is_null() {
            claims.as_object_mut().unwrap().remove(name);
        } else {
            claims[name] = value.clone();
        }
    }
    claims
}

pub(crate) fn ath(token: &str) -> String {
    b64(digest::digest(&digest::SHA256, token.as_bytes()))
}

pub(crate) fn now(app: &TestApp) -> i64 {
    app.clock.now()
}

/// A token request with `form`, HTTP Basic for a confidential client, and `proof`.
pub(crate) async fn token_request(
    app: &TestApp,
    client: &TestClient,
    form: &[(&str, &str)],
    proof: Option<&str>,
) -> reqwest::Response {
    let mut form: Vec<(&str, &str)> = form.to_vec();
    let mut request = http().post(app.url("/token"));
    match &client.secret {
        Some(secret) => request = request.basic_auth(&client.id, Some(secret)),
        None => form.push(("client_id", &client.id)),
    }
    if let Some(proof) = proof {
        request = request.header("DPoP", proof);
    }
    request.form(&form).send().await.unwrap()
}

/// A client_credentials request of `client` with a proof by `key`, made now.
pub(crate) async fn client_token(
    app: &TestApp,
    client: &TestClient,
    key: &Key,
) -> reqwest::Response {
    let proof = key.proof("POST", &app.url("/token"), now(app), json!({}));
    let form = [("grant_type", "client_credentials")];
    token_request(app, client, &form, Some(&proof)).await
}

/// A resource request: `GET path` with `Authorization: scheme token` and `proof`.
pub(crate) async fn resource(
    app: &TestApp,
    path: &str,
    scheme: &str,
    token: &str,
    proof: Option<&str>,
) -> reqwest::Response {
    let mut request = http()
        .get(app.url(path))
        .header("Authorization", format!("{scheme} {token}"));
    if let Some(proof) = proof {
        request = request.header("DPoP", proof);
    }
    request.send().await.unwrap()
}

/// A good proof for `GET path` with `token`, by `key`.
pub(crate) fn resource_proof(app: &TestApp, key: &Key, path: &str, token: &str) -> String {
    key.proof(
        "GET",
        &app.url(path),
        now(app),
        json!({ "ath": ath(token) }),
    )
}

pub(crate) async fn error_of(response: reqwest::Response) -> (StatusCode, String) {
    let status = response.status();
    let body: Value = response.json().await.unwrap_or_default();
    (
        status,
        body["error"].as_str().unwrap_or_default().to_owned(),
    )
}

pub(crate) fn challenge(response: &reqwest::Response) -> String {
    response.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .to_owned()
}

/// A confidential client_credentials client with the admin scope (the admin API is a
/// resource that takes client tokens).
pub(crate) fn admin_service(app: &TestApp, draft: ClientDraft) -> TestClient {
    app.add_client_with(ClientDraft {
        grant_types: vec!["client_credentials".into()],
        scope: Some("admin".into()),
        ..draft
    })
}

pub(crate) async fn ok_json(response: reqwest::Response) -> Value {
    let status = response.status();
    let body: Value = response.json().await.unwrap();
    assert_eq!(status, StatusCode::OK, "{body}");
    body
}

const ADMIN_PATH: &str = "/admin/api/clients";

#[tokio::test]
async fn discovery_lists_the_algorithms_of_proofs_and_the_auth_methods_unchanged() {
    let app = spawn_app().await;
    let doc = app.get_json("/.well-known/openid-configuration").await;
    assert_eq!(
        doc["dpop_signing_alg_values_supported"],
        json!(["ES256", "PS256", "RS256", "EdDSA"])
    );
    assert_eq!(
        doc["token_endpoint_auth_methods_supported"],
        json!([
            "client_secret_basic",
            "client_secret_post",
            "client_secret_jwt",
            "private_key_jwt",
            "none"
        ])
    );
}

#[tokio::test]
async fn a_client_credentials_token_with_a_proof_is_bound_and_used_only_with_its_key() {
    let app = spawn_app().await;
    let service = admin_service(&app, ClientDraft::default());
    let key = Key::new();
    let body = ok_json(client_token(&app, &service, &key).await).await;
    assert_eq!(body["token_type"], "DPoP");
    let token = body["access_token"].as_str().unwrap().to_owned();
    assert_eq!(jwt_part(&token, 1)["cnf"], json!({"jkt": key.jkt()}));

    let info = ok_json(
        app.post_as(&service, "/introspect", &[("token", &token)])
            .await,
    )
    .await;
    assert_eq!(info["active"], true);
    assert_eq!(info["token_type"], "DPoP");
    assert_eq!(info["cnf"]["jkt"], key.jkt().as_str());

    let proof = resource_proof(&app, &key, ADMIN_PATH, &token);
    let listed = resource(&app, ADMIN_PATH, "DPoP", &token, Some(&proof)).await;
    assert_eq!(listed.status(), StatusCode::OK);

    // RFC 9449 §7.1: a bound token as Bearer is refused with a DPoP challenge.
    let as_bearer = resource(&app, ADMIN_PATH, "Bearer", &token, None).await;
    let header = challenge(&as_bearer);
    assert_eq!(as_bearer.status(), StatusCode::UNAUTHORIZED);
    assert!(header.starts_with("DPoP "), "{header}");
    assert!(header.contains(r#"error="invalid_token""#), "{header}");
    assert!(
        header.contains(r#"algs="ES256 PS256 RS256 EdDSA""#),
        "{header}"
    );

    // The same proof again, another key's proof, a proof without the token's hash.
    let replayed = resource(&app, ADMIN_PATH, "DPoP", &token, Some(&proof)).await;
    assert_eq!(
        error_of(replayed).await,
        (StatusCode::UNAUTHORIZED, "invalid_dpop_proof".into())
    );
    let other = resource_proof(&app, &Key::new(), ADMIN_PATH, &token);
    let by_other = resource(&app, ADMIN_PATH, "DPoP", &token, Some(&other)).await;
    assert!(challenge(&by_other).starts_with("DPoP "));
    assert_eq!(
        error_of(by_other).await,
        (StatusCode::UNAUTHORIZED, "invalid_dpop_proof".into())
    );
    let without_ath = key.proof("GET", &app.url(ADMIN_PATH), now(&app), json!({}));
    let refused = resource(&app, ADMIN_PATH, "DPoP", &token, Some(&without_ath)).await;
    assert_eq!(
        error_of(refused).await,
        (StatusCode::UNAUTHORIZED, "invalid_dpop_proof".into())
    );
    let no_proof = resource(&app, ADMIN_PATH, "DPoP", &token, None).await;
    assert_eq!(no_proof.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn a_token_without_a_proof_stays_a_bearer_token_and_is_refused_under_dpop() {
    let app = spawn_app().await;
    let service = admin_service(&app, ClientDraft::default());
    let form = [("grant_type", "client_credentials")];
    let body = ok_json(token_request(&app, &service, &form, None).await).await;
    assert_eq!(body["token_type"], "Bearer");
    let token = body["access_token"].as_str().unwrap();
    assert!(jwt_part(token, 1).get("cnf").is_none());
    let info = ok_json(
        app.post_as(&service, "/introspect", &[("token", token)])
            .await,
    )
    .await;
    assert_eq!(info["token_type"], "Bearer");
    assert!(info.get("cnf").is_none());
    let bearer = resource(&app, ADMIN_PATH, "Bearer", token, None).await;
    assert_eq!(bearer.status(), StatusCode::OK);
    let key = Key::new();
    let proof = resource_proof(&app, &key, ADMIN_PATH, token);
    let as_dpop = resource(&app, ADMIN_PATH, "DPoP", token, Some(&proof)).await;
    assert_eq!(
        error_of(as_dpop).await,
        (StatusCode::UNAUTHORIZED, "invalid_token".into())
    );
}

#[tokio::test]
async fn bad_proofs_at_the_token_endpoint_are_refused_and_issue_nothing() {
    let app = spawn_app().await;
    let service = admin_service(&app, ClientDraft::default());
    let key = Key::new();
    let url = app.url("/token");
    let at = now(&app);
    let mut private_jwk = key.jwk();
    private_jwk["d"] = json!(b64([1u8; 32]));
    let other = Key::new();
    let good_claims = claims("POST", &url, at, json!({}));
    let cases: Vec<(&str, String)> = vec![
        (
            "wrong htu",
            key.proof("POST", &app.url("/userinfo"), at, json!({})),
        ),
        ("wrong htm", key.proof("GET", &url, at, json!({}))),
        ("no jti", key.proof("POST", &url, at, json!({"jti": null}))),
        ("too old", key.proof("POST", &url, at - 120, json!({}))),
        (
            "in the future",
            key.proof("POST", &url, at + 120, json!({})),
        ),
        (
            "HS256",
            key.sign(
                &json!({"typ": "dpop+jwt", "alg": "HS256", "jwk": key.jwk()}),
                &good_claims,
            ),
        ),
        (
            "none",
            format!(
                "{}.{}.",
                b64(json!({"typ": "dpop+jwt", "alg": "none", "jwk": key.jwk()}).to_string()),
                b64(good_claims.to_string())
            ),
        ),
        (
            "a private key in the header",
            key.sign(
                &json!({"typ": "dpop+jwt", "alg": "ES256", "jwk": private_jwk}),
                &good_claims,
            ),
        ),
        (
            "signed by another key",
            other.sign(&key.header(), &good_claims),
        ),
        (
            "wrong typ",
            key.sign(
                &json!({"typ": "JWT", "alg": "ES256", "jwk": key.jwk()}),
                &good_claims,
            ),
        ),
        ("not a JWT", "garbage".to_owned()),
    ];
    let form = [("grant_type", "client_credentials")];
    for (case, proof) in cases {
        let response = token_request(&app, &service, &form, Some(&proof)).await;
        assert_eq!(
            error_of(response).await,
            (StatusCode::BAD_REQUEST, "invalid_dpop_proof".into()),
            "{case}"
        );
    }
    let two = http()
        .post(app.url("/token"))
        .basic_auth(&service.id, service.secret.as_deref())
        .header("DPoP", key.proof("POST", &url, at, json!({})))
        .header("DPoP", key.proof("POST", &url, at, json!({})))
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(
        error_of(two).await,
        (StatusCode::BAD_REQUEST, "invalid_dpop_proof".into())
    );
    // The clock moves: a proof made a minute and more ago is too old.
    let proof = key.proof("POST", &url, now(&app), json!({}));
    app.clock.advance(61);
    let late = token_request(&app, &service, &form, Some(&proof)).await;
    assert_eq!(error_of(late).await.1, "invalid_dpop_proof");
}

#[tokio::test]
async fn a_proof_is_used_once_at_the_token_endpoint() {
    let app = spawn_app().await;
    let service = admin_service(&app, ClientDraft::default());
    let key = Key::new();
    let proof = key.proof("POST", &app.url("/token"), now(&app), json!({}));
    let form = [("grant_type", "client_credentials")];
    ok_json(token_request(&app, &service, &form, Some(&proof)).await).await;
    let again = token_request(&app, &service, &form, Some(&proof)).await;
    assert_eq!(
        error_of(again).await,
        (StatusCode::BAD_REQUEST, "invalid_dpop_proof".into())
    );
}

#[tokio::test]
async fn a_client_registered_with_dpop_bound_access_tokens_needs_a_proof() {
    let app = spawn_app().await;
    let service = admin_service(
        &app,
        ClientDraft {
            dpop_bound_access_tokens: Some(true),
            ..ClientDraft::default()
        },
    );
    let form = [("grant_type", "client_credentials")];
    let refused = token_request(&app, &service, &form, None).await;
    assert_eq!(
        error_of(refused).await,
        (StatusCode::BAD_REQUEST, "invalid_request".into())
    );
    let body = ok_json(client_token(&app, &service, &Key::new()).await).await;
    assert_eq!(body["token_type"], "DPoP");
}

#[tokio::test]
async fn a_client_that_requires_nonces_is_told_one_and_retries_with_it() {
    let app = spawn_app().await;
    let service = admin_service(
        &app,
        ClientDraft {
            require_dpop_nonce: Some(true),
            ..ClientDraft::default()
        },
    );
    let key = Key::new();
    let first = client_token(&app, &service, &key).await;
    let nonce = first.headers()["dpop-nonce"].to_str().unwrap().to_owned();
    assert_eq!(
        error_of(first).await,
        (StatusCode::BAD_REQUEST, "use_dpop_nonce".into())
    );
    let proof = key.proof(
        "POST",
        &app.url("/token"),
        now(&app),
        json!({ "nonce": nonce }),
    );
    let form = [("grant_type", "client_credentials")];
    let body = ok_json(token_request(&app, &service, &form, Some(&proof)).await).await;
    assert_eq!(body["token_type"], "DPoP");
}

/// Two instances on one database (and, when `redis` is given, one session store), one
/// issuer and one clock.
async fn two_instances(
    database_url: String,
    env: Vec<(&'static str, String)>,
) -> (TestApp, TestApp) {
    let clock = Arc::new(ManualClock::starting_now());
    let options = Options {
        database_url: Some(database_url),
        clock: Some(clock),
        env,
        ..Options::default()
    };
    let a = spawn_app_with(options.clone()).await;
    let mut env = options.env.clone();
    // B answers for the same issuer (as behind one load balancer): proofs name its URLs.
    env.push(("ISSUER", a.issuer.clone()));
    let b = spawn_app_with(Options { env, ..options }).await;
    (a, b)
}

/// `path` of `app`, requested at `other` (which serves the same issuer).
async fn resource_at(other: &TestApp, path: &str, token: &str, proof: &str) -> reqwest::Response {
    http()
        .get(format!("http://127.0.0.1:{}{path}", other.port))
        .header("Authorization", format!("DPoP {token}"))
        .header("DPoP", proof)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn servers_that_require_nonces_accept_each_others_and_ask_with_use_dpop_nonce() {
    let dir = tempfile::TempDir::new().unwrap();
    let database = format!("sqlite://{}/shared.db", dir.path().display());
    let (a, b) = two_instances(database, vec![("DPOP_NONCE", "true".into())]).await;
    let service = admin_service(&a, ClientDraft::default());
    let key = Key::new();
    let first = client_token(&a, &service, &key).await;
    let nonce = first.headers()["dpop-nonce"].to_str().unwrap().to_owned();
    assert_eq!(
        error_of(first).await,
        (StatusCode::BAD_REQUEST, "use_dpop_nonce".into())
    );
    let proof = key.proof("POST", &a.url("/token"), now(&a), json!({ "nonce": nonce }));
    let form = [("grant_type", "client_credentials")];
    let body = ok_json(token_request(&a, &service, &form, Some(&proof)).await).await;
    let token = body["access_token"].as_str().unwrap();

    // At a resource of the other instance: without a nonce, a 401 challenge with one.
    let plain = resource_proof(&a, &key, ADMIN_PATH, token);
    let asked = resource_at(&b, ADMIN_PATH, token, &plain).await;
    assert_eq!(asked.status(), StatusCode::UNAUTHORIZED);
    assert!(challenge(&asked).contains(r#"error="use_dpop_nonce""#));
    assert!(asked.headers().contains_key("dpop-nonce"));
    let with_nonce = a.url(ADMIN_PATH);
    let proof = key.proof(
        "GET",
        &with_nonce,
        now(&a),
        json!({"ath": ath(token), "nonce": nonce}),
    );
    assert_eq!(
        resource_at(&b, ADMIN_PATH, token, &proof).await.status(),
        StatusCode::OK
    );

    // Nonces rotate: one from two periods ago is stale.
    a.clock
        .advance(2 * portcullis::protocol::dpop::NONCE_PERIOD);
    let stale = key.proof(
        "GET",
        &with_nonce,
        now(&a),
        json!({"ath": ath(token), "nonce": nonce}),
    );
    let refused = resource_at(&a, ADMIN_PATH, token, &stale).await;
    assert!(challenge(&refused).contains(r#"error="use_dpop_nonce""#));
}

#[tokio::test]
async fn a_proof_replayed_to_another_instance_sharing_the_session_store_is_refused() {
    let Some(redis) = TempRedis::create() else {
        return;
    };
    let Some(db) = TempDatabase::create() else {
        return;
    };
    let env = vec![
        ("REDIS_URL", redis.url.clone()),
        ("REDIS_PREFIX", redis.prefix.clone()),
    ];
    let (a, b) = two_instances(db.url.clone(), env).await;
    let service = admin_service(&a, ClientDraft::default());
    let key = Key::new();
    let proof = key.proof("POST", &a.url("/token"), now(&a), json!({}));
    let form = [("grant_type", "client_credentials")];
    let body = ok_json(token_request(&a, &service, &form, Some(&proof)).await).await;
    let token = body["access_token"].as_str().unwrap();
    let again = http()
        .post(format!("http://127.0.0.1:{}/token", b.port))
        .basic_auth(&service.id, service.secret.as_deref())
        .header("DPoP", &proof)
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(
        error_of(again).await,
        (StatusCode::BAD_REQUEST, "invalid_dpop_proof".into())
    );
    let at_resource = resource_proof(&a, &key, ADMIN_PATH, token);
    let first = resource_at(&a, ADMIN_PATH, token, &at_resource).await;
    assert_eq!(first.status(), StatusCode::OK);
    let replayed = resource_at(&b, ADMIN_PATH, token, &at_resource).await;
    assert_eq!(
        error_of(replayed).await,
        (StatusCode::UNAUTHORIZED, "invalid_dpop_proof".into())
    );
}

/// A public client's sign-in, its code redeemed with a proof by `key`: the token response.
async fn public_tokens(app: &TestApp, client: &TestClient, key: &Key) -> Value {
    let (url, pkce) = app.authorize_url(
        client,
        &[
            ("scope", "openid profile offline_access"),
            ("prompt", "consent"),
        ],
    );
    let callback = app.browser().sign_in(&url, "alice").await;
    let code = query(&callback, "code").unwrap();
    let proof = key.proof("POST", &app.url("/token"), now(app), json!({}));
    let form = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", client.redirect_uri.as_str()),
        ("code_verifier", pkce.verifier.as_str()),
    ];
    ok_json(token_request(app, client, &form, Some(&proof)).await).await
}

async fn a_public_clients_tokens_are_bound_refresh_token_included(database_url: Option<String>) {
    let app = spawn_app_with(Options {
        database_url,
        ..Options::default()
    })
    .await;
    app.add_user("alice").await;
    let client = app.add_client_with(ClientDraft {
        auth_method: Some("none".into()),
        grant_types: vec!["authorization_code".into(), "refresh_token".into()],
        ..ClientDraft::default()
    });
    let key = Key::new();
    let tokens = public_tokens(&app, &client, &key).await;
    assert_eq!(tokens["token_type"], "DPoP");
    let access = tokens["access_token"].as_str().unwrap();
    assert_eq!(jwt_part(access, 1)["cnf"]["jkt"], key.jkt().as_str());

    // Userinfo: with a proof by the key, and not as Bearer.
    let proof = resource_proof(&app, &key, "/userinfo", access);
    let info = ok_json(resource(&app, "/userinfo", "DPoP", access, Some(&proof)).await).await;
    assert!(info["sub"].is_string());
    let as_bearer = resource(&app, "/userinfo", "Bearer", access, None).await;
    assert!(challenge(&as_bearer).starts_with("DPoP "));
    assert_eq!(
        error_of(as_bearer).await,
        (StatusCode::UNAUTHORIZED, "invalid_token".into())
    );

    // The refresh token: refused without a proof and with another key's, nothing used up.
    let refresh = tokens["refresh_token"].as_str().unwrap();
    let form = [("grant_type", "refresh_token"), ("refresh_token", refresh)];
    let without = token_request(&app, &client, &form, None).await;
    assert_eq!(
        error_of(without).await,
        (StatusCode::BAD_REQUEST, "invalid_grant".into())
    );
    let other = Key::new().proof("POST", &app.url("/token"), now(&app), json!({}));
    let by_other = token_request(&app, &client, &form, Some(&other)).await;
    assert_eq!(
        error_of(by_other).await,
        (StatusCode::BAD_REQUEST, "invalid_grant".into())
    );
    let mine = key.proof("POST", &app.url("/token"), now(&app), json!({}));
    let refreshed = ok_json(token_request(&app, &client, &form, Some(&mine)).await).await;
    assert_eq!(refreshed["token_type"], "DPoP");
    // The successor is bound to the same key.
    let successor = refreshed["refresh_token"].as_str().unwrap();
    let form = [
        ("grant_type", "refresh_token"),
        ("refresh_token", successor),
    ];
    let other = Key::new().proof("POST", &app.url("/token"), now(&app), json!({}));
    let by_other = token_request(&app, &client, &form, Some(&other)).await;
    assert_eq!(error_of(by_other).await.1, "invalid_grant");
    let mine = key.proof("POST", &app.url("/token"), now(&app), json!({}));
    ok_json(token_request(&app, &client, &form, Some(&mine)).await).await;
}

#[tokio::test]
async fn a_public_clients_tokens_are_bound_refresh_token_included_over_sqlite() {
    a_public_clients_tokens_are_bound_refresh_token_included(None).await;
}

#[tokio::test]
async fn a_public_clients_tokens_are_bound_refresh_token_included_over_postgres() {
    let Some(db) = TempDatabase::create() else {
        return;
    };
    a_public_clients_tokens_are_bound_refresh_token_included(Some(db.url.clone())).await;
}

#[tokio::test]
async fn a_confidential_clients_refresh_token_is_not_bound() {
    let app = spawn_app().await;
    app.add_user("alice").await;
    let client = app.add_refreshing_client();
    let key = Key::new();
    let tokens = public_tokens(&app, &client, &key).await;
    assert_eq!(tokens["token_type"], "DPoP");
    let refresh = tokens["refresh_token"].as_str().unwrap();
    let refreshed = ok_json(app.refresh(&client, refresh, &[]).await).await;
    assert_eq!(refreshed["token_type"], "Bearer");
}
