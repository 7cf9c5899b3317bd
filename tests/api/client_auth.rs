//! Client authentication with JWT assertions at the token endpoint (RFC 7523 §2.2, OIDC
//! Core §9): client_secret_jwt and private_key_jwt, inline keys and a real `jwks_uri`.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use actix_web::{App, HttpResponse, HttpServer, web};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use portcullis::crypto::KeyAlgorithm;
use portcullis::crypto::keys::SigningKey;
use portcullis::crypto::tokens::random_token;
use portcullis::domain::Clock;
use portcullis::protocol::registration::ClientDraft;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{TestApp, TestClient, spawn_app};

const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// RFC 7523 §3 claims for `client_id`, valid for a minute by the app's clock.
fn claims(app: &TestApp, client_id: &str) -> Value {
    json!({
        "iss": client_id,
        "sub": client_id,
        "aud": app.url("/token"),
        "exp": app.clock.now() + 60,
        "jti": random_token(16),
    })
}

fn hs256(secret: &str, claims: &Value) -> String {
    let key = EncodingKey::from_secret(secret.as_bytes()).unwrap();
    jsonwebtoken::encode(&Header::new(Algorithm::HS256), claims, &key).unwrap()
}

fn signed(key: &SigningKey, claims: &Value) -> String {
    key.sign_jwt("JWT", claims).unwrap()
}

fn new_key(alg: KeyAlgorithm) -> SigningKey {
    SigningKey::generate(alg).unwrap().0
}

fn key_set(keys: &[&SigningKey]) -> Value {
    json!({ "keys": keys.iter().map(|k| k.public_jwk().clone()).collect::<Vec<_>>() })
}

fn jwt_client(
    app: &TestApp,
    method: &str,
    jwks: Option<Value>,
    jwks_uri: Option<String>,
) -> TestClient {
    app.add_client_with(ClientDraft {
        auth_method: Some(method.into()),
        grant_types: vec!["client_credentials".into()],
        scope: Some("api:read".into()),
        jwks,
        jwks_uri,
        ..ClientDraft::default()
    })
}

/// A client_secret_jwt client and its secret.
fn secret_client(app: &TestApp) -> (TestClient, String) {
    let client = jwt_client(app, "client_secret_jwt", None, None);
    let secret = client
        .secret
        .clone()
        .expect("client_secret_jwt has a secret");
    (client, secret)
}

/// A private_key_jwt client registered with `key` inline.
fn key_client(app: &TestApp, key: &SigningKey) -> TestClient {
    jwt_client(app, "private_key_jwt", Some(key_set(&[key])), None)
}

/// A private_key_jwt client whose keys are at `jwks_uri`.
fn uri_client(app: &TestApp, jwks_uri: impl Into<String>) -> TestClient {
    jwt_client(app, "private_key_jwt", None, Some(jwks_uri.into()))
}

/// A client_credentials request authenticated by `assertion`; `extra` fields replace the
/// defaults, and an empty value removes the field.
async fn cc_with_assertion(
    app: &TestApp,
    assertion: &str,
    extra: &[(&str, &str)],
) -> reqwest::Response {
    let mut form = vec![
        ("grant_type", "client_credentials"),
        ("client_assertion_type", JWT_BEARER),
        ("client_assertion", assertion),
    ];
    for (k, v) in extra {
        form.retain(|(name, _)| name != k);
        if !v.is_empty() {
            form.push((k, v));
        }
    }
    app.token_request(&form, None).await
}

async fn assert_granted(response: reqwest::Response) {
    let status = response.status();
    let body: Value = response.json().await.unwrap();
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body["access_token"].is_string(), "{body}");
    assert_eq!(body["scope"], "api:read");
}

async fn assert_invalid_client(response: reqwest::Response) {
    let status = response.status();
    let body: Value = response.json().await.unwrap();
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert_eq!(body["error"], "invalid_client", "{body}");
    assert_eq!(body["error_description"], "client authentication failed");
}

async fn expect_token(app: &TestApp, assertion: &str, extra: &[(&str, &str)]) {
    assert_granted(cc_with_assertion(app, assertion, extra).await).await;
}

async fn expect_invalid_client(app: &TestApp, assertion: &str, extra: &[(&str, &str)]) {
    assert_invalid_client(cc_with_assertion(app, assertion, extra).await).await;
}

/// A JWK Set served over real HTTP, swappable, counting its fetches.
struct JwksServer {
    url: String,
    set: Arc<Mutex<Value>>,
    hits: Arc<AtomicUsize>,
}

impl JwksServer {
    async fn start(set: Value) -> Self {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!(
            "http://127.0.0.1:{}/jwks",
            listener.local_addr().unwrap().port()
        );
        let set = Arc::new(Mutex::new(set));
        let hits = Arc::new(AtomicUsize::new(0));
        let state = web::Data::new((set.clone(), hits.clone()));
        let server = HttpServer::new(move || {
            App::new().app_data(state.clone()).route(
                "/jwks",
                web::get().to(
                    |s: web::Data<(Arc<Mutex<Value>>, Arc<AtomicUsize>)>| async move {
                        s.1.fetch_add(1, Ordering::SeqCst);
                        let body = s.0.lock().unwrap().clone();
                        HttpResponse::Ok().json(body)
                    },
                ),
            )
        })
        .workers(1)
        .disable_signals()
        .listen(listener)
        .unwrap()
        .run();
        tokio::spawn(server);
        Self { url, set, hits }
    }

    fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }

    fn serve(&self, set: Value) {
        *self.set.lock().unwrap() = set;
    }
}

#[tokio::test]
async fn a_client_secret_jwt_assertion_for_the_token_endpoint_gets_a_token() {
    let app = spawn_app().await;
    let (client, secret) = secret_client(&app);
    expect_token(&app, &hs256(&secret, &claims(&app, &client.id)), &[]).await;
}

#[tokio::test]
async fn an_assertion_names_the_issuer_or_the_token_endpoint_as_its_only_audience() {
    let app = spawn_app().await;
    let (client, secret) = secret_client(&app);
    let mut to_issuer = claims(&app, &client.id);
    to_issuer["aud"] = json!(app.issuer);
    expect_token(&app, &hs256(&secret, &to_issuer), &[]).await;
    let mut listed_alone = claims(&app, &client.id);
    listed_alone["aud"] = json!([app.url("/token")]);
    expect_token(&app, &hs256(&secret, &listed_alone), &[]).await;
    // Audience injection (draft-ietf-oauth-rfc7523bis): an assertion also valid
    // elsewhere is refused.
    let mut listed = claims(&app, &client.id);
    listed["aud"] = json!(["https://elsewhere.example", app.url("/token")]);
    expect_invalid_client(&app, &hs256(&secret, &listed), &[]).await;
}

#[tokio::test]
async fn an_assertion_sent_to_the_revocation_endpoint_may_name_it_as_audience() {
    let app = spawn_app().await;
    let (client, secret) = secret_client(&app);
    let mut c = claims(&app, &client.id);
    c["aud"] = json!(app.url("/revoke"));
    let response = crate::helpers::http()
        .post(app.url("/revoke"))
        .form(&[
            ("token", "anything"),
            (
                "client_assertion_type",
                "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            ),
            ("client_assertion", &hs256(&secret, &c)),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), reqwest::StatusCode::OK);
}

#[tokio::test]
async fn a_body_client_id_naming_the_assertions_issuer_is_accepted() {
    let app = spawn_app().await;
    let (client, secret) = secret_client(&app);
    let assertion = hs256(&secret, &claims(&app, &client.id));
    expect_token(&app, &assertion, &[("client_id", &client.id)]).await;
}

#[tokio::test]
async fn an_hs256_assertion_made_with_the_wrong_secret_is_invalid_client() {
    let app = spawn_app().await;
    let (client, _) = secret_client(&app);
    let assertion = hs256(&random_token(32), &claims(&app, &client.id));
    expect_invalid_client(&app, &assertion, &[]).await;
}

#[tokio::test]
async fn a_private_key_jwt_client_with_inline_keys_gets_a_token_with_rs256_or_es256() {
    let app = spawn_app().await;
    for alg in [KeyAlgorithm::Rs256, KeyAlgorithm::Es256] {
        let key = new_key(alg);
        let client = key_client(&app, &key);
        expect_token(&app, &signed(&key, &claims(&app, &client.id)), &[]).await;
    }
}

#[tokio::test]
async fn an_assertion_without_a_kid_is_verified_with_the_clients_only_key() {
    let app = spawn_app().await;
    let (key, der) = SigningKey::generate(KeyAlgorithm::Es256).unwrap();
    let client = key_client(&app, &key);
    let header = Header::new(Algorithm::ES256);
    assert!(header.kid.is_none());
    let assertion = jsonwebtoken::encode(
        &header,
        &claims(&app, &client.id),
        &EncodingKey::from_ec_der(&der),
    )
    .unwrap();
    expect_token(&app, &assertion, &[]).await;
}

#[tokio::test]
async fn an_assertion_signed_by_another_key_is_invalid_client() {
    let app = spawn_app().await;
    let client = key_client(&app, &new_key(KeyAlgorithm::Rs256));
    let other = new_key(KeyAlgorithm::Rs256);
    expect_invalid_client(&app, &signed(&other, &claims(&app, &client.id)), &[]).await;
}

#[tokio::test]
async fn a_replayed_client_assertion_is_invalid_client() {
    let app = spawn_app().await;
    let key = new_key(KeyAlgorithm::Es256);
    let client = key_client(&app, &key);
    let assertion = signed(&key, &claims(&app, &client.id));
    expect_token(&app, &assertion, &[]).await;
    expect_invalid_client(&app, &assertion, &[]).await;
}

#[tokio::test]
async fn a_forged_assertion_does_not_use_up_the_jti_of_a_genuine_one() {
    let app = spawn_app().await;
    let (client, secret) = secret_client(&app);
    let genuine = claims(&app, &client.id);
    expect_invalid_client(&app, &hs256("guess", &genuine), &[]).await;
    expect_token(&app, &hs256(&secret, &genuine), &[]).await;
}

#[tokio::test]
async fn two_clients_may_use_the_same_jti() {
    let app = spawn_app().await;
    let (first, first_secret) = secret_client(&app);
    let (second, second_secret) = secret_client(&app);
    let mut a = claims(&app, &first.id);
    let mut b = claims(&app, &second.id);
    a["jti"] = json!("shared-jti");
    b["jti"] = json!("shared-jti");
    expect_token(&app, &hs256(&first_secret, &a), &[]).await;
    expect_token(&app, &hs256(&second_secret, &b), &[]).await;
}

#[tokio::test]
async fn an_assertion_expiring_now_by_the_apps_clock_is_invalid_client() {
    let app = spawn_app().await;
    let (client, secret) = secret_client(&app);
    let mut expired = claims(&app, &client.id);
    expired["exp"] = json!(app.clock.now());
    expect_invalid_client(&app, &hs256(&secret, &expired), &[]).await;
    // Valid when made, expired once the app's clock has moved on (no sleeping).
    let later = hs256(&secret, &claims(&app, &client.id));
    app.clock.advance(61);
    expect_invalid_client(&app, &later, &[]).await;
}

#[tokio::test]
async fn an_assertion_valid_by_the_apps_clock_passes_whatever_the_system_clock_says() {
    let app = spawn_app().await;
    let (client, secret) = secret_client(&app);
    // A day ahead of the system clock: by it, exp would be far more than an hour away.
    app.clock.advance(86_400);
    expect_token(&app, &hs256(&secret, &claims(&app, &client.id)), &[]).await;
}

#[tokio::test]
async fn an_assertion_living_more_than_an_hour_is_invalid_client() {
    let app = spawn_app().await;
    let (client, secret) = secret_client(&app);
    let mut too_long = claims(&app, &client.id);
    too_long["exp"] = json!(app.clock.now() + 3601);
    expect_invalid_client(&app, &hs256(&secret, &too_long), &[]).await;
    let mut an_hour = claims(&app, &client.id);
    an_hour["exp"] = json!(app.clock.now() + 3600);
    expect_token(&app, &hs256(&secret, &an_hour), &[]).await;
}

#[tokio::test]
async fn an_assertion_not_yet_valid_by_the_apps_clock_is_invalid_client() {
    let app = spawn_app().await;
    let (client, secret) = secret_client(&app);
    let mut early = claims(&app, &client.id);
    early["nbf"] = json!(app.clock.now() + 30);
    expect_invalid_client(&app, &hs256(&secret, &early), &[]).await;
}

#[tokio::test]
async fn an_assertion_for_another_audience_is_invalid_client() {
    let app = spawn_app().await;
    let (client, secret) = secret_client(&app);
    for aud in [
        json!("https://elsewhere.example/token"),
        json!(app.url("/introspect")),
    ] {
        let mut c = claims(&app, &client.id);
        c["aud"] = aud;
        expect_invalid_client(&app, &hs256(&secret, &c), &[]).await;
    }
}

#[tokio::test]
async fn an_assertion_missing_a_required_claim_is_invalid_client() {
    let app = spawn_app().await;
    let (client, secret) = secret_client(&app);
    for claim in ["sub", "jti", "aud", "exp"] {
        let mut c = claims(&app, &client.id);
        c.as_object_mut().unwrap().remove(claim);
        expect_invalid_client(&app, &hs256(&secret, &c), &[]).await;
    }
}

#[tokio::test]
async fn a_sub_naming_another_client_is_invalid_client() {
    let app = spawn_app().await;
    let (client, secret) = secret_client(&app);
    let (other, _) = secret_client(&app);
    let mut c = claims(&app, &client.id);
    c["sub"] = json!(other.id);
    expect_invalid_client(&app, &hs256(&secret, &c), &[]).await;
}

#[tokio::test]
async fn an_iss_naming_another_client_is_invalid_client() {
    let app = spawn_app().await;
    let (client, secret) = secret_client(&app);
    let (other, _) = secret_client(&app);
    let mut c = claims(&app, &client.id);
    c["iss"] = json!(other.id);
    expect_invalid_client(&app, &hs256(&secret, &c), &[]).await;
}

#[tokio::test]
async fn an_assertion_from_an_unknown_client_is_invalid_client() {
    let app = spawn_app().await;
    let assertion = hs256(&random_token(32), &claims(&app, "no-such-client"));
    expect_invalid_client(&app, &assertion, &[]).await;
}

#[tokio::test]
async fn a_body_client_id_differing_from_the_assertions_issuer_is_invalid_client() {
    let app = spawn_app().await;
    let (client, secret) = secret_client(&app);
    let (other, _) = secret_client(&app);
    let assertion = hs256(&secret, &claims(&app, &client.id));
    expect_invalid_client(&app, &assertion, &[("client_id", &other.id)]).await;
}

#[tokio::test]
async fn an_hs256_assertion_for_a_private_key_jwt_client_is_invalid_client() {
    let app = spawn_app().await;
    let key = new_key(KeyAlgorithm::Rs256);
    let client = key_client(&app, &key);
    // The classic confusion: the public key, known to all, as the HMAC secret.
    let assertion = hs256(&key.public_jwk().to_string(), &claims(&app, &client.id));
    expect_invalid_client(&app, &assertion, &[]).await;
}

#[tokio::test]
async fn an_rs256_assertion_for_a_client_secret_jwt_client_is_invalid_client() {
    let app = spawn_app().await;
    let (client, _) = secret_client(&app);
    let assertion = signed(&new_key(KeyAlgorithm::Rs256), &claims(&app, &client.id));
    expect_invalid_client(&app, &assertion, &[]).await;
}

#[tokio::test]
async fn an_unsigned_alg_none_assertion_is_invalid_client() {
    let app = spawn_app().await;
    let client = key_client(&app, &new_key(KeyAlgorithm::Es256));
    let part = |v: Value| URL_SAFE_NO_PAD.encode(v.to_string());
    let assertion = format!(
        "{}.{}.",
        part(json!({"alg": "none"})),
        part(claims(&app, &client.id))
    );
    expect_invalid_client(&app, &assertion, &[]).await;
}

#[tokio::test]
async fn a_wrong_or_missing_client_assertion_type_is_invalid_client() {
    let app = spawn_app().await;
    let (client, secret) = secret_client(&app);
    let saml = "urn:ietf:params:oauth:client-assertion-type:saml2-bearer";
    for assertion_type in [saml, ""] {
        let assertion = hs256(&secret, &claims(&app, &client.id));
        let extra = [("client_assertion_type", assertion_type)];
        expect_invalid_client(&app, &assertion, &extra).await;
    }
}

#[tokio::test]
async fn a_client_secret_basic_client_presenting_an_assertion_is_invalid_client() {
    let app = spawn_app().await;
    let client = app.add_service_client("api:read", &[]);
    let secret = client.secret.clone().unwrap();
    let assertion = hs256(&secret, &claims(&app, &client.id));
    expect_invalid_client(&app, &assertion, &[]).await;
}

#[tokio::test]
async fn a_client_secret_jwt_client_presenting_its_secret_in_basic_is_invalid_client() {
    let app = spawn_app().await;
    let (client, secret) = secret_client(&app);
    let form = [("grant_type", "client_credentials")];
    assert_invalid_client(app.token_request(&form, Some((&client.id, &secret))).await).await;
}

#[tokio::test]
async fn an_assertion_with_another_authentication_method_is_invalid_request() {
    let app = spawn_app().await;
    let (client, secret) = secret_client(&app);
    let mut form = vec![
        ("grant_type", "client_credentials".to_owned()),
        ("client_assertion_type", JWT_BEARER.to_owned()),
        (
            "client_assertion",
            hs256(&secret, &claims(&app, &client.id)),
        ),
    ];
    let token = || crate::helpers::http().post(app.url("/token"));
    let with_basic = token().basic_auth(&client.id, Some(&secret)).form(&form);
    let with_basic = with_basic.send().await.unwrap();
    form.push(("client_id", client.id.clone()));
    form.push(("client_secret", secret.clone()));
    let with_post = token().form(&form).send().await.unwrap();
    for response in [with_basic, with_post] {
        assert_eq!(response.status(), StatusCode::BAD_REQUEST);
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"], "invalid_request", "{body}");
    }
}

#[tokio::test]
async fn a_jwks_uri_is_fetched_on_first_use_and_then_cached() {
    let app = spawn_app().await;
    let key = new_key(KeyAlgorithm::Rs256);
    let jwks = JwksServer::start(key_set(&[&key])).await;
    let client = uri_client(&app, &jwks.url);
    assert_eq!(jwks.hits(), 0, "registration does not fetch");
    expect_token(&app, &signed(&key, &claims(&app, &client.id)), &[]).await;
    assert_eq!(jwks.hits(), 1);
    expect_token(&app, &signed(&key, &claims(&app, &client.id)), &[]).await;
    assert_eq!(jwks.hits(), 1, "the second one uses the cached set");
}

#[tokio::test]
async fn a_jwks_uri_set_without_the_kid_is_invalid_client_after_a_single_fetch() {
    let app = spawn_app().await;
    let (served, used) = (new_key(KeyAlgorithm::Es256), new_key(KeyAlgorithm::Es256));
    let jwks = JwksServer::start(key_set(&[&served])).await;
    let client = uri_client(&app, &jwks.url);
    expect_invalid_client(&app, &signed(&used, &claims(&app, &client.id)), &[]).await;
    assert_eq!(jwks.hits(), 1, "a set fetched just now is not refetched");
}

/// Within MIN_REFETCH (10 s, real time) of a fetch, unknown kids do not refetch: bogus
/// assertions cannot make the provider hammer the client's server. (The refetch once
/// 10 s have passed, a real key rotation, needs a 10 s real-time wait: not tested here.)
#[tokio::test]
async fn unknown_kids_soon_after_a_fetch_do_not_hammer_the_jwks_uri() {
    let app = spawn_app().await;
    let (old, new) = (new_key(KeyAlgorithm::Rs256), new_key(KeyAlgorithm::Rs256));
    let jwks = JwksServer::start(key_set(&[&old])).await;
    let client = uri_client(&app, &jwks.url);
    expect_token(&app, &signed(&old, &claims(&app, &client.id)), &[]).await;
    jwks.serve(key_set(&[&new]));
    for _ in 0..3 {
        expect_invalid_client(&app, &signed(&new, &claims(&app, &client.id)), &[]).await;
    }
    assert_eq!(jwks.hits(), 1);
    // The cached set still verifies the old key.
    expect_token(&app, &signed(&old, &claims(&app, &client.id)), &[]).await;
    assert_eq!(jwks.hits(), 1);
}

#[tokio::test]
async fn a_jwks_uri_that_is_down_or_serves_no_key_set_is_invalid_client() {
    let app = spawn_app().await;
    let key = new_key(KeyAlgorithm::Es256);
    let closed = crate::helpers::free_port();
    let down = uri_client(&app, format!("http://127.0.0.1:{closed}/jwks"));
    expect_invalid_client(&app, &signed(&key, &claims(&app, &down.id)), &[]).await;
    let jwks = JwksServer::start(json!({"not": "a key set"})).await;
    let odd = uri_client(&app, &jwks.url);
    expect_invalid_client(&app, &signed(&key, &claims(&app, &odd.id)), &[]).await;
    assert_eq!(jwks.hits(), 1);
    // A failed fetch is remembered: more assertions soon after do not fetch again.
    for _ in 0..3 {
        expect_invalid_client(&app, &signed(&key, &claims(&app, &odd.id)), &[]).await;
    }
    assert_eq!(jwks.hits(), 1, "failures are cached too");
}
