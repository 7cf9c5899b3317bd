//! The implicit and hybrid flows (OIDC Core §3.2, §3.3; OAuth 2.0 Multiple Response
//! Types): every response type, `nonce`, `at_hash` and `c_hash` (checked by code of the
//! test's own and by the `openidconnect` crate), and the rules on who may use what.

use std::str::FromStr;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use openidconnect::core::{CoreAuthenticationFlow, CoreIdToken, CoreResponseType};
use openidconnect::{
    AuthorizationCode, AuthorizationCodeHash, CsrfToken, Nonce, OAuth2TokenResponse,
    PkceCodeChallenge, TokenResponse,
};
use portcullis::protocol::registration::ClientDraft;
use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::{Browser, TestApp, TestClient, jwt_part, spawn_app};

const ALL_TYPES: [&str; 6] = [
    "code",
    "id_token",
    "id_token token",
    "code id_token",
    "code token",
    "code id_token token",
];

fn hybrid_client(app: &TestApp, response_types: &[&str]) -> TestClient {
    app.add_client_with(ClientDraft {
        response_types: response_types.iter().map(|t| (*t).to_owned()).collect(),
        ..ClientDraft::default()
    })
}

fn fragment(url: &url::Url) -> Vec<(String, String)> {
    url::form_urlencoded::parse(url.fragment().unwrap_or("").as_bytes())
        .into_owned()
        .collect()
}

fn field(pairs: &[(String, String)], name: &str) -> Option<String> {
    pairs
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.clone())
}

/// The left half of SHA-256, base64url: `at_hash` / `c_hash` for RS256 and ES256,
/// computed here independently of the server.
fn half_sha256(value: &str) -> String {
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, value.as_bytes());
    URL_SAFE_NO_PAD.encode(&digest.as_ref()[..16])
}

/// Verifies an ID token's signature against the JWKS, its issuer and audience.
async fn verified_claims(app: &TestApp, token: &str, client_id: &str) -> Value {
    let header = jsonwebtoken::decode_header(token).unwrap();
    let jwks: jsonwebtoken::jwk::JwkSet = crate::helpers::get(app.url("/jwks"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let jwk = jwks.find(header.kid.as_deref().unwrap()).unwrap();
    let mut validation = jsonwebtoken::Validation::new(header.alg);
    validation.set_issuer(&[&app.issuer]);
    validation.set_audience(&[client_id]);
    jsonwebtoken::decode::<Value>(
        token,
        &jsonwebtoken::DecodingKey::from_jwk(jwk).unwrap(),
        &validation,
    )
    .unwrap()
    .claims
}

/// Opens `url` in `browser`, signing in and consenting if asked.
async fn authorize(browser: &Browser, url: &str) -> url::Url {
    let mut outcome = browser.open(url).await;
    if outcome.is_page("/login") {
        outcome = browser.login(outcome, "alice").await;
    }
    browser.consent_if_asked(outcome).await.left()
}

#[tokio::test]
async fn every_response_type_returns_what_it_names_with_the_right_hashes() {
    let app = spawn_app().await;
    app.add_user("alice").await;
    let client = hybrid_client(&app, &ALL_TYPES);
    let browser = app.browser();
    for response_type in ALL_TYPES {
        let (url, pkce) = app.authorize_url(&client, &[("response_type", response_type)]);
        let back = authorize(&browser, &url).await;
        let (code_wanted, id_wanted, token_wanted) = (
            response_type.split(' ').any(|w| w == "code"),
            response_type.contains("id_token"),
            response_type.split(' ').any(|w| w == "token"),
        );
        // OIDC Core §3.2.2.5, §3.3.2.5: in the fragment unless it is the code alone.
        let pairs = if response_type == "code" {
            back.query_pairs().into_owned().collect()
        } else {
            assert!(
                back.query().is_none(),
                "{response_type}: nothing in the query"
            );
            fragment(&back)
        };
        assert_eq!(
            field(&pairs, "state").as_deref(),
            Some("st-123"),
            "{response_type}"
        );
        assert_eq!(field(&pairs, "iss").as_deref(), Some(app.issuer.as_str()));
        let code = field(&pairs, "code");
        let access = field(&pairs, "access_token");
        let id_token = field(&pairs, "id_token");
        assert_eq!(
            (code.is_some(), id_token.is_some(), access.is_some()),
            (code_wanted, id_wanted, token_wanted),
            "{response_type}: {pairs:?}"
        );
        if let Some(access) = &access {
            assert_eq!(field(&pairs, "token_type").as_deref(), Some("Bearer"));
            assert_eq!(field(&pairs, "expires_in").as_deref(), Some("3600"));
            assert_eq!(app.userinfo_status(access).await, 200, "{response_type}");
        }
        if let Some(id_token) = &id_token {
            let claims = verified_claims(&app, id_token, &client.id).await;
            assert_eq!(claims["nonce"], "n-456", "{response_type}");
            assert!(claims["sid"].is_string() && claims["auth_time"].is_i64());
            assert_eq!(
                claims.get("c_hash").and_then(Value::as_str),
                code.as_deref().map(half_sha256).as_deref(),
                "{response_type}: c_hash"
            );
            assert_eq!(
                claims.get("at_hash").and_then(Value::as_str),
                access.as_deref().map(half_sha256).as_deref(),
                "{response_type}: at_hash"
            );
            // §5.4: with no access token, the scope's claims come in the ID token.
            if access.is_none() && code.is_none() {
                assert_eq!(claims["preferred_username"], "alice", "{claims}");
            }
        }
        if let Some(code) = code {
            let response = app.redeem(&client, &code, Some(&pkce.verifier)).await;
            assert_eq!(response.status(), StatusCode::OK, "{response_type}");
            let tokens: Value = response.json().await.unwrap();
            let id = jwt_part(tokens["id_token"].as_str().unwrap(), 1);
            assert_eq!(id["nonce"], "n-456");
        }
    }
}

#[tokio::test]
async fn an_id_token_from_the_authorization_endpoint_needs_a_nonce() {
    let app = spawn_app().await;
    app.add_user("alice").await;
    let client = hybrid_client(&app, &ALL_TYPES);
    let browser = app.browser();
    authorize(&browser, &app.authorize_url(&client, &[]).0).await;
    for response_type in [
        "id_token",
        "id_token token",
        "code id_token",
        "code id_token token",
    ] {
        let (url, _) =
            app.authorize_url(&client, &[("response_type", response_type), ("nonce", "")]);
        let back = browser.open(&url).await.left();
        let pairs = fragment(&back);
        assert_eq!(
            field(&pairs, "error").as_deref(),
            Some("invalid_request"),
            "{response_type}"
        );
        assert_eq!(field(&pairs, "state").as_deref(), Some("st-123"));
        assert_eq!(field(&pairs, "id_token"), None);
    }
    // No ID token from the front channel: no nonce needed.
    let (url, _) = app.authorize_url(&client, &[("response_type", "code token"), ("nonce", "")]);
    let pairs = fragment(&browser.open(&url).await.left());
    assert!(field(&pairs, "access_token").is_some(), "{pairs:?}");
}

#[tokio::test]
async fn a_client_uses_only_the_response_types_it_registered() {
    let app = spawn_app().await;
    app.add_user("alice").await;
    let code_only = app.add_client(false);
    let hybrid = hybrid_client(&app, &["code id_token"]);
    let browser = app.browser();
    for (client, response_type) in [
        (&code_only, "code id_token"),
        (&code_only, "id_token"),
        (&hybrid, "code token"),
        (&hybrid, "id_token"),
    ] {
        let (url, _) = app.authorize_url(client, &[("response_type", response_type)]);
        let pairs = fragment(&browser.open(&url).await.left());
        assert_eq!(
            field(&pairs, "error").as_deref(),
            Some("unauthorized_client"),
            "{response_type}"
        );
    }
    // The same set in another order is the same response type.
    let (url, _) = app.authorize_url(&hybrid, &[("response_type", "id_token code")]);
    let pairs = fragment(&authorize(&browser, &url).await);
    assert!(field(&pairs, "code").is_some() && field(&pairs, "id_token").is_some());
    // Unknown words are unsupported_response_type (bare `token`, plain OAuth implicit, too).
    for response_type in ["token", "code none", "code code"] {
        let (url, _) = app.authorize_url(&hybrid, &[("response_type", response_type)]);
        let back = browser.open(&url).await.left();
        assert_eq!(
            crate::helpers::query(&back, "error").as_deref(),
            Some("unsupported_response_type"),
            "{response_type}"
        );
    }
}

#[tokio::test]
async fn tokens_never_travel_in_the_query() {
    let app = spawn_app().await;
    app.add_user("alice").await;
    let client = hybrid_client(&app, &ALL_TYPES);
    let browser = app.browser();
    authorize(&browser, &app.authorize_url(&client, &[]).0).await;
    let (url, _) = app.authorize_url(
        &client,
        &[
            ("response_type", "code id_token"),
            ("response_mode", "query"),
        ],
    );
    let back = browser.open(&url).await.left();
    assert_eq!(
        crate::helpers::query(&back, "error").as_deref(),
        Some("invalid_request")
    );
    assert_eq!(crate::helpers::query(&back, "id_token"), None);
    // form_post carries them in a form instead.
    let (url, _) = app.authorize_url(
        &client,
        &[
            ("response_type", "code id_token token"),
            ("response_mode", "form_post"),
        ],
    );
    let (_, status, html) = browser.open(&url).await.page();
    assert_eq!(status, StatusCode::OK);
    let fields = crate::helpers::hidden_inputs(&html);
    for name in ["code", "id_token", "access_token", "state"] {
        assert!(fields.iter().any(|(n, _)| n == name), "{name}: {html}");
    }
}

#[tokio::test]
async fn signing_out_ends_the_tokens_of_the_front_channel_too() {
    let app = spawn_app().await;
    app.add_user("alice").await;
    let client = hybrid_client(&app, &ALL_TYPES);
    let browser = app.browser();
    let (url, _) = app.authorize_url(&client, &[("response_type", "id_token token")]);
    let pairs = fragment(&authorize(&browser, &url).await);
    let access = field(&pairs, "access_token").unwrap();
    assert_eq!(app.userinfo_status(&access).await, 200);
    let (page, _, html) = browser.open(&app.url("/logout")).await.page();
    browser
        .submit(&page, &html, &[("decision", "logout")])
        .await;
    assert_eq!(app.userinfo_status(&access).await, 401);
}

#[tokio::test]
async fn registration_derives_grant_types_from_response_types() {
    let registered = crate::helpers::register_client(ClientDraft {
        redirect_uris: vec!["https://rp.example/cb".into()],
        response_types: vec!["token id_token".into(), "code".into()],
        ..ClientDraft::default()
    });
    let names = |client: &portcullis::store::Client| {
        let response_types: Vec<&'static str> =
            client.response_types.iter().map(|r| r.as_str()).collect();
        let grant_types: Vec<&'static str> =
            client.grant_types.iter().map(|g| g.as_str()).collect();
        (response_types, grant_types)
    };
    let (response_types, grant_types) = names(&registered.client);
    assert_eq!(response_types, ["id_token token", "code"]);
    assert_eq!(grant_types, ["authorization_code", "implicit"]);
    let implicit_only = crate::helpers::register_client(ClientDraft {
        redirect_uris: vec!["https://rp.example/cb".into()],
        grant_types: vec!["implicit".into()],
        auth_method: Some("none".into()),
        ..ClientDraft::default()
    });
    assert_eq!(names(&implicit_only.client).0, ["id_token"]);
}

#[tokio::test]
async fn openidconnect_completes_a_hybrid_flow() {
    let app = spawn_app().await;
    app.add_user("alice").await;
    let client = hybrid_client(&app, &["code id_token"]);
    let (rp, http) = crate::relying_party::relying_party(&app, &client).await;
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let (auth_url, csrf, nonce) = rp
        .authorize_url(
            CoreAuthenticationFlow::Hybrid(vec![CoreResponseType::Code, CoreResponseType::IdToken]),
            CsrfToken::new_random,
            Nonce::new_random,
        )
        .set_pkce_challenge(challenge)
        .url();
    let back = authorize(&app.browser(), auth_url.as_str()).await;
    let pairs = fragment(&back);
    assert_eq!(
        field(&pairs, "state").as_deref(),
        Some(csrf.secret().as_str())
    );
    let code = AuthorizationCode::new(field(&pairs, "code").unwrap());

    // The front-channel ID token, checked by the crate, and its c_hash by the crate's hash.
    let front = CoreIdToken::from_str(&field(&pairs, "id_token").unwrap()).unwrap();
    let id_verifier = rp.id_token_verifier();
    let claims = front
        .claims(&id_verifier, &nonce)
        .expect("the ID token verifies");
    let expected = AuthorizationCodeHash::from_code(
        &code,
        front.signing_alg().unwrap(),
        front.signing_key(&id_verifier).unwrap(),
    )
    .unwrap();
    assert_eq!(claims.code_hash(), Some(&expected));

    let tokens = rp
        .exchange_code(code)
        .unwrap()
        .set_pkce_verifier(verifier)
        .request_async(&http)
        .await
        .expect("the code is redeemed");
    let back_claims = tokens
        .id_token()
        .unwrap()
        .claims(&id_verifier, &nonce)
        .expect("the token endpoint's ID token verifies");
    assert_eq!(back_claims.subject(), claims.subject());
    assert!(!tokens.access_token().secret().is_empty());
}
