//! Signing algorithms per client (OIDC Registration §2): RS256, PS256, ES256 and EdDSA
//! keys published side by side, ID tokens verified by the `openidconnect` crate, and
//! userinfo as a signed JWT.

use std::str::FromStr;

use openidconnect::core::{CoreIdToken, CoreJwsSigningAlgorithm};
use openidconnect::{AccessToken, AccessTokenHash, Nonce};
use portcullis::protocol::registration::ClientDraft;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{TestApp, TestClient, spawn_app};

const ALGS: [(&str, CoreJwsSigningAlgorithm); 4] = [
    ("RS256", CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256),
    ("PS256", CoreJwsSigningAlgorithm::RsaSsaPssSha256),
    ("ES256", CoreJwsSigningAlgorithm::EcdsaP256Sha256),
    ("EdDSA", CoreJwsSigningAlgorithm::EdDsa),
];

fn client_signing_with(app: &TestApp, draft: ClientDraft) -> TestClient {
    app.add_client_with(draft)
}

#[tokio::test]
async fn every_algorithm_signs_id_tokens_that_a_relying_party_verifies() {
    let app = spawn_app().await;
    app.add_user("alice").await;
    for (name, alg) in ALGS {
        let client = client_signing_with(
            &app,
            ClientDraft {
                id_token_signed_response_alg: Some(name.into()),
                ..ClientDraft::default()
            },
        );
        let tokens = app.tokens_for(&client, "alice").await;
        let id_token = CoreIdToken::from_str(tokens["id_token"].as_str().unwrap()).unwrap();
        assert_eq!(id_token.signing_alg().unwrap(), &alg, "{name}");
        let (rp, _) = crate::relying_party::relying_party(&app, &client).await;
        let verifier = rp.id_token_verifier().set_allowed_algs(vec![alg.clone()]);
        let claims = id_token
            .claims(&verifier, &Nonce::new("n-456".into()))
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        // at_hash by the crate's own hashing (SHA-512 for EdDSA, SHA-256 otherwise).
        let access = AccessToken::new(tokens["access_token"].as_str().unwrap().to_owned());
        let expected = AccessTokenHash::from_token(
            &access,
            id_token.signing_alg().unwrap(),
            id_token.signing_key(&verifier).unwrap(),
        )
        .unwrap();
        assert_eq!(claims.access_token_hash(), Some(&expected), "{name}");
    }
}

#[tokio::test]
async fn userinfo_answers_a_client_that_registered_for_it_with_a_signed_jwt() {
    let app = spawn_app().await;
    let alice = app.add_user("alice").await;
    for name in ["ES256", "EdDSA"] {
        let client = client_signing_with(
            &app,
            ClientDraft {
                userinfo_signed_response_alg: Some(name.into()),
                ..ClientDraft::default()
            },
        );
        let tokens = app.tokens_for(&client, "alice").await;
        let response = crate::helpers::http()
            .get(app.url("/userinfo"))
            .bearer_auth(tokens["access_token"].as_str().unwrap())
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(response.headers()["content-type"], "application/jwt");
        let jwt = response.text().await.unwrap();
        let header = jsonwebtoken::decode_header(&jwt).unwrap();
        assert_eq!(
            format!("{:?}", header.alg).to_uppercase(),
            name.to_uppercase()
        );
        let jwks: jsonwebtoken::jwk::JwkSet = crate::helpers::get(app.url("/jwks"))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let key =
            jsonwebtoken::DecodingKey::from_jwk(jwks.find(&header.kid.unwrap()).unwrap()).unwrap();
        let mut validation = jsonwebtoken::Validation::new(header.alg);
        validation.set_issuer(&[&app.issuer]);
        validation.set_audience(&[&client.id]);
        validation.set_required_spec_claims(&["iss", "aud", "sub"]);
        let claims = jsonwebtoken::decode::<Value>(&jwt, &key, &validation)
            .unwrap()
            .claims;
        assert_eq!(claims["sub"], alice.as_str());
        assert_eq!(claims["email"], "alice@example.com");
    }
    // Other clients still get JSON.
    let plain = app.add_client(false);
    let tokens = app.tokens_for(&plain, "alice").await;
    let response = crate::helpers::http()
        .get(app.url("/userinfo"))
        .bearer_auth(tokens["access_token"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/json")
    );
}

#[tokio::test]
async fn the_jwks_and_discovery_publish_a_key_for_each_algorithm() {
    let app = spawn_app().await;
    let jwks = app.get_json("/jwks").await;
    let mut published: Vec<(String, String, Value)> = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| {
            (
                k["alg"].as_str().unwrap().to_owned(),
                k["kty"].as_str().unwrap().to_owned(),
                k["crv"].clone(),
            )
        })
        .collect();
    published.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(
        published,
        vec![
            ("ES256".to_owned(), "EC".to_owned(), json!("P-256")),
            ("EdDSA".to_owned(), "OKP".to_owned(), json!("Ed25519")),
            ("PS256".to_owned(), "RSA".to_owned(), Value::Null),
            ("RS256".to_owned(), "RSA".to_owned(), Value::Null),
        ]
    );
    assert!(
        jwks["keys"]
            .as_array()
            .unwrap()
            .iter()
            .all(|k| k.get("d").is_none())
    );
    let doc = app.get_json("/.well-known/openid-configuration").await;
    for field in [
        "id_token_signing_alg_values_supported",
        "userinfo_signing_alg_values_supported",
    ] {
        let mut algs: Vec<&str> = doc[field]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a.as_str().unwrap())
            .collect();
        algs.sort_unstable();
        assert_eq!(algs, ["ES256", "EdDSA", "PS256", "RS256"], "{field}");
    }
}

#[tokio::test]
async fn an_algorithm_without_a_key_is_refused_at_registration() {
    for (field, value) in [
        ("id_token_signed_response_alg", "HS256"),
        ("userinfo_signed_response_alg", "none"),
        ("userinfo_signed_response_alg", "ES512"),
    ] {
        let body = json!({"redirect_uris": ["https://rp.example/cb"], field: value});
        let draft = portcullis::protocol::registration::draft_from_json(&body).unwrap();
        let error = portcullis::protocol::registration::register(
            draft,
            "http://127.0.0.1",
            &crate::helpers::test_kek(),
            0,
        )
        .unwrap_err();
        assert_eq!(
            error.code.as_str(),
            "invalid_client_metadata",
            "{field} {value}"
        );
    }
}
