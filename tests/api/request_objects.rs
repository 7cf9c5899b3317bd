//! Request objects (RFC 9101, OIDC Core §6): by value and by registered reference, signed
//! with RS256, PS256, ES256 or EdDSA by the client's own keys; wrong signatures,
//! audiences, issuers and clients refused; `none` unless another algorithm is registered.

use portcullis::crypto::KeyAlgorithm;
use portcullis::crypto::keys::SigningKey;
use portcullis::protocol::registration::ClientDraft;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{Pkce, TestApp, TestClient, query, spawn_app};
use crate::logout_receiver::Receiver;

/// A client whose JWK Set holds `key`'s public half.
fn client_with_key(app: &TestApp, key: &SigningKey, extra: ClientDraft) -> TestClient {
    app.add_client_with(ClientDraft {
        jwks: Some(json!({ "keys": [key.public_jwk()] })),
        ..extra
    })
}

/// The claims of a request object for `client`, with PKCE and the inner state.
fn claims(app: &TestApp, client: &TestClient, pkce: &Pkce) -> Value {
    json!({
        "iss": client.id,
        "aud": app.issuer,
        "client_id": client.id,
        "response_type": "code",
        "redirect_uri": client.redirect_uri,
        "scope": "openid profile",
        "state": "inner-state",
        "nonce": "inner-nonce",
        "code_challenge": pkce.challenge,
        "code_challenge_method": "S256",
        "max_age": 3600,
        "exp": portcullis::domain::now() + 300,
    })
}

fn authorize_url(app: &TestApp, client: &TestClient, pairs: &[(&str, &str)]) -> String {
    let mut url = url::Url::parse(&app.url("/authorize")).unwrap();
    url.query_pairs_mut().append_pair("client_id", &client.id);
    for (k, v) in pairs {
        url.query_pairs_mut().append_pair(k, v);
    }
    url.into()
}

fn unsigned(claims: &Value) -> String {
    use base64::Engine as _;
    let enc = |v: &Value| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string());
    format!("{}.{}.", enc(&json!({"alg": "none"})), enc(claims))
}

#[tokio::test]
async fn a_signed_request_object_is_the_request_and_its_values_take_precedence() {
    let app = spawn_app().await;
    app.add_user("alice").await;
    for alg in [
        KeyAlgorithm::Rs256,
        KeyAlgorithm::Ps256,
        KeyAlgorithm::Es256,
        KeyAlgorithm::EdDsa,
    ] {
        let (key, _) = SigningKey::generate(alg).unwrap();
        let client = client_with_key(&app, &key, ClientDraft::default());
        let pkce = Pkce::new();
        let jwt = key
            .sign_jwt("oauth-authz-req+jwt", &claims(&app, &client, &pkce))
            .unwrap();
        // Outer parameters the object overrides (RFC 9101 needs response_type and
        // client_id outside too).
        let url = authorize_url(
            &app,
            &client,
            &[
                ("response_type", "code"),
                ("scope", "openid"),
                ("state", "outer"),
                ("request", &jwt),
            ],
        );
        let callback = app.browser().sign_in(&url, "alice").await;
        assert_eq!(
            query(&callback, "state").as_deref(),
            Some("inner-state"),
            "{alg:?}"
        );
        let tokens = app.exchange(&client, &callback, &pkce).await;
        let id = crate::helpers::jwt_part(tokens["id_token"].as_str().unwrap(), 1);
        assert_eq!(id["nonce"], "inner-nonce");
        assert_eq!(tokens["scope"], "openid profile");
    }
}

#[tokio::test]
async fn request_objects_with_a_wrong_signature_audience_issuer_or_client_are_refused() {
    let app = spawn_app().await;
    app.add_user("alice").await;
    let (key, _) = SigningKey::generate(KeyAlgorithm::Es256).unwrap();
    let (stranger, _) = SigningKey::generate(KeyAlgorithm::Es256).unwrap();
    let client = client_with_key(
        &app,
        &key,
        ClientDraft {
            request_object_signing_alg: Some("ES256".into()),
            ..ClientDraft::default()
        },
    );
    let other = app.add_client(false);
    let pkce = Pkce::new();
    let good = claims(&app, &client, &pkce);
    let with = |name: &str, value: Value| {
        let mut c = good.clone();
        c[name] = value;
        c
    };
    let mut tampered = key.sign_jwt("oauth-authz-req+jwt", &good).unwrap();
    tampered.replace_range(tampered.len() - 4.., "AAAA");
    let cases = [
        ("another key", stranger.sign_jwt("JWT", &good).unwrap()),
        ("a tampered signature", tampered),
        (
            "another audience",
            key.sign_jwt("JWT", &with("aud", json!("https://elsewhere.example")))
                .unwrap(),
        ),
        (
            "another issuer",
            key.sign_jwt("JWT", &with("iss", json!(other.id))).unwrap(),
        ),
        (
            "another client",
            key.sign_jwt("JWT", &with("client_id", json!(other.id)))
                .unwrap(),
        ),
        (
            "expired",
            key.sign_jwt("JWT", &with("exp", json!(portcullis::domain::now() - 10)))
                .unwrap(),
        ),
        ("unsigned by a client registered for ES256", unsigned(&good)),
        (
            "unsigned with a signature",
            format!("{}AAAA", unsigned(&good)),
        ),
        ("not a JWT", "garbage".to_owned()),
    ];
    for (what, jwt) in cases {
        let url = authorize_url(
            &app,
            &client,
            &[("response_type", "code"), ("request", &jwt)],
        );
        let (_, status, html) = app.browser().open(&url).await.page();
        assert_eq!(status, StatusCode::BAD_REQUEST, "{what}");
        assert!(html.contains("invalid_request_object"), "{what}: {html}");
    }
}

/// OIDC Dynamic Registration §2: without a registered `request_object_signing_alg`, any
/// algorithm the provider supports (discovery lists `none`) may be used.
#[tokio::test]
async fn unsigned_request_objects_are_taken_from_clients_that_registered_no_algorithm() {
    let app = spawn_app().await;
    app.add_user("alice").await;
    let discovery = app.get_json("/.well-known/openid-configuration").await;
    assert!(
        discovery["request_object_signing_alg_values_supported"]
            .as_array()
            .unwrap()
            .contains(&json!("none"))
    );
    let client = app.add_client(false);
    let pkce = Pkce::new();
    let url = authorize_url(
        &app,
        &client,
        &[
            ("response_type", "code"),
            ("request", &unsigned(&claims(&app, &client, &pkce))),
        ],
    );
    let callback = app.browser().sign_in(&url, "alice").await;
    assert_eq!(query(&callback, "state").as_deref(), Some("inner-state"));
}

#[tokio::test]
async fn unsigned_request_objects_for_clients_registered_for_them() {
    let app = spawn_app().await;
    app.add_user("alice").await;
    let client = app.add_client_with(ClientDraft {
        request_object_signing_alg: Some("none".into()),
        ..ClientDraft::default()
    });
    let pkce = Pkce::new();
    let url = authorize_url(
        &app,
        &client,
        &[
            ("response_type", "code"),
            ("request", &unsigned(&claims(&app, &client, &pkce))),
        ],
    );
    let callback = app.browser().sign_in(&url, "alice").await;
    assert_eq!(query(&callback, "state").as_deref(), Some("inner-state"));
    // It registered `none`: a signed object (another algorithm) is refused.
    let (key, _) = SigningKey::generate(KeyAlgorithm::Es256).unwrap();
    let jwt = key.sign_jwt("JWT", &claims(&app, &client, &pkce)).unwrap();
    let url = authorize_url(
        &app,
        &client,
        &[("response_type", "code"), ("request", &jwt)],
    );
    let (_, status, _) = app.browser().open(&url).await.page();
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn a_registered_request_uri_is_fetched_and_others_are_refused() {
    let app = spawn_app().await;
    app.add_user("alice").await;
    let receiver = Receiver::start().await;
    let (key, _) = SigningKey::generate(KeyAlgorithm::EdDsa).unwrap();
    let registered = format!("{}/request.jwt", receiver.base);
    let client = client_with_key(
        &app,
        &key,
        ClientDraft {
            request_uris: vec![registered.clone()],
            ..ClientDraft::default()
        },
    );
    let pkce = Pkce::new();
    let jwt = key
        .sign_jwt("oauth-authz-req+jwt", &claims(&app, &client, &pkce))
        .unwrap();
    receiver.serve("/request.jwt", Value::String(jwt.clone()));
    receiver.serve("/elsewhere.jwt", Value::String(jwt));

    let url = authorize_url(
        &app,
        &client,
        &[("response_type", "code"), ("request_uri", &registered)],
    );
    let callback = app.browser().sign_in(&url, "alice").await;
    assert_eq!(query(&callback, "state").as_deref(), Some("inner-state"));
    app.exchange(&client, &callback, &pkce).await;

    let unregistered = format!("{}/elsewhere.jwt", receiver.base);
    let url = authorize_url(
        &app,
        &client,
        &[("response_type", "code"), ("request_uri", &unregistered)],
    );
    let (_, status, html) = app.browser().open(&url).await.page();
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(html.contains("invalid_request_uri"));
    receiver.stop().await;
}

#[tokio::test]
async fn a_pushed_request_may_be_a_request_object() {
    let app = spawn_app().await;
    app.add_user("alice").await;
    let (key, _) = SigningKey::generate(KeyAlgorithm::Ps256).unwrap();
    let client = client_with_key(&app, &key, ClientDraft::default());
    let pkce = Pkce::new();
    let jwt = key
        .sign_jwt("oauth-authz-req+jwt", &claims(&app, &client, &pkce))
        .unwrap();
    let response = crate::helpers::http()
        .post(app.url("/par"))
        .basic_auth(&client.id, client.secret.as_deref())
        .form(&[("request", jwt.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    let body: Value = response.json().await.unwrap();
    let url = authorize_url(
        &app,
        &client,
        &[("request_uri", body["request_uri"].as_str().unwrap())],
    );
    let callback = app.browser().sign_in(&url, "alice").await;
    assert_eq!(query(&callback, "state").as_deref(), Some("inner-state"));
    app.exchange(&client, &callback, &pkce).await;

    // A push with a bad object: JSON invalid_request_object.
    let bad = crate::helpers::http()
        .post(app.url("/par"))
        .basic_auth(&client.id, client.secret.as_deref())
        .form(&[("request", "garbage")])
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), StatusCode::BAD_REQUEST);
    let body: Value = bad.json().await.unwrap();
    assert_eq!(body["error"], "invalid_request_object");
    let doc = app.get_json("/.well-known/openid-configuration").await;
    assert_eq!(doc["request_parameter_supported"], true);
    assert_eq!(doc["require_request_uri_registration"], true);
}
