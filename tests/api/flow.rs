//! The whole code flow driven by the `openidconnect` crate as the relying party.

use openidconnect::core::{CoreAuthenticationFlow, CoreUserInfoClaims};
use openidconnect::{
    AccessTokenHash, AuthorizationCode, CsrfToken, Nonce, OAuth2TokenResponse, PkceCodeChallenge,
    Scope, TokenResponse,
};

use crate::helpers::{TestApp, TestClient, query, spawn_app};

/// Discovery, authorize (through the HTML pages), code, token, ID token verification by the
/// crate (signature, iss, aud, exp, nonce, at_hash), userinfo. Returns the ID token's sub.
async fn openidconnect_flow(app: &TestApp, client: &TestClient, username: &str) -> String {
    let (rp, http) = crate::relying_party::relying_party(app, client).await;
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let (auth_url, csrf, nonce) = rp
        .authorize_url(
            CoreAuthenticationFlow::AuthorizationCode,
            CsrfToken::new_random,
            Nonce::new_random,
        )
        .add_scope(Scope::new("profile".into()))
        .add_scope(Scope::new("email".into()))
        .set_pkce_challenge(challenge)
        .url();

    let callback = app.browser().sign_in(auth_url.as_str(), username).await;
    assert_eq!(
        query(&callback, "state").as_deref(),
        Some(csrf.secret().as_str())
    );
    assert_eq!(
        query(&callback, "iss").as_deref(),
        Some(app.issuer.as_str()),
        "RFC 9207 iss"
    );
    let code = query(&callback, "code").expect("code in callback");

    let tokens = rp
        .exchange_code(AuthorizationCode::new(code))
        .unwrap()
        .set_pkce_verifier(verifier)
        .request_async(&http)
        .await
        .expect("token exchange succeeds");
    let id_token = tokens.id_token().expect("an ID token");
    let id_verifier = rp.id_token_verifier();
    let claims = id_token
        .claims(&id_verifier, &nonce)
        .expect("ID token verifies");
    let expected_hash = claims.access_token_hash().expect("at_hash");
    let actual = AccessTokenHash::from_token(
        tokens.access_token(),
        id_token.signing_alg().unwrap(),
        id_token.signing_key(&id_verifier).unwrap(),
    )
    .unwrap();
    assert_eq!(&actual, expected_hash);
    assert!(claims.auth_time().is_some());

    let userinfo: CoreUserInfoClaims = rp
        .user_info(
            tokens.access_token().to_owned(),
            Some(claims.subject().clone()),
        )
        .unwrap()
        .request_async(&http)
        .await
        .expect("userinfo answers for the same subject");
    assert_eq!(
        userinfo.email().map(|e| e.as_str().to_owned()),
        Some(format!("{username}@example.com"))
    );
    assert_eq!(userinfo.email_verified(), Some(true));
    assert_eq!(
        userinfo.preferred_username().map(|u| u.as_str()),
        Some(username)
    );
    claims.subject().as_str().to_owned()
}

#[tokio::test]
async fn confidential_client_completes_the_code_flow_verified_by_openidconnect() {
    let app = spawn_app().await;
    let sub = app.add_user("alice").await;
    let client = app.add_client(false);
    assert_eq!(openidconnect_flow(&app, &client, "alice").await, sub);
}

#[tokio::test]
async fn public_client_with_pkce_completes_the_code_flow_verified_by_openidconnect() {
    let app = spawn_app().await;
    let sub = app.add_user("bob").await;
    let client = app.add_client(true);
    assert!(client.secret.is_none());
    assert_eq!(openidconnect_flow(&app, &client, "bob").await, sub);
}

#[tokio::test]
async fn client_registered_dynamically_completes_the_flow() {
    let app = spawn_app_with_open_registration().await;
    app.add_user("carol").await;
    let response = crate::helpers::http()
        .post(app.url("/register"))
        .json(&serde_json::json!({
            "client_name": "Dynamic App",
            "redirect_uris": ["http://127.0.0.1:9/cb"],
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    let body: serde_json::Value = response.json().await.unwrap();
    let client = TestClient {
        id: body["client_id"].as_str().unwrap().to_owned(),
        secret: Some(body["client_secret"].as_str().unwrap().to_owned()),
        redirect_uri: "http://127.0.0.1:9/cb".into(),
    };
    openidconnect_flow(&app, &client, "carol").await;
}

async fn spawn_app_with_open_registration() -> TestApp {
    crate::helpers::spawn_app_with(crate::helpers::Options {
        env: vec![("REGISTRATION", "open".into())],
        ..Default::default()
    })
    .await
}

#[tokio::test]
async fn tokens_issued_before_a_restart_still_verify_after_it() {
    let app = spawn_app().await;
    app.add_user("dave").await;
    // With offline access: the restart loses the in-process store and so the session
    // (which ends, as one that ran out: issue 26), and only offline grants outlive it.
    let client = app.add_refreshing_client();
    let (tokens, _) = app.offline_tokens(&client, "dave").await;
    let jwks_before: serde_json::Value = app.get_json("/jwks").await;
    let (dir, port) = (app.dir.clone(), app.port);
    app.stop().await;

    let app = crate::helpers::spawn_app_with(crate::helpers::Options {
        dir: Some(dir),
        port: Some(port),
        ..Default::default()
    })
    .await;
    let jwks_after: serde_json::Value = app.get_json("/jwks").await;
    assert_eq!(
        jwks_before, jwks_after,
        "keys are persisted, not regenerated"
    );
    let userinfo = crate::helpers::http()
        .get(app.url("/userinfo"))
        .bearer_auth(tokens["access_token"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(userinfo.status(), 200);
}

#[tokio::test]
async fn id_tokens_can_be_es256_when_the_client_registers_for_it() {
    let app = spawn_app().await;
    app.add_user("erin").await;
    let client = app.add_client_with(portcullis::protocol::registration::ClientDraft {
        id_token_signed_response_alg: Some("ES256".into()),
        ..Default::default()
    });
    let tokens = app.tokens_for(&client, "erin").await;
    let header = crate::helpers::jwt_part(tokens["id_token"].as_str().unwrap(), 0);
    assert_eq!(header["alg"], "ES256");
}

#[tokio::test]
async fn the_whole_flow_works_on_postgres_and_redis() {
    let Some(db) = crate::backends::TempDatabase::create() else {
        return;
    };
    let Some(redis) = crate::backends::TempRedis::create() else {
        return;
    };
    let app = crate::helpers::spawn_app_with(crate::helpers::Options {
        env: vec![
            ("DATABASE_URL", db.url.clone()),
            ("REDIS_URL", redis.url.clone()),
            ("REDIS_PREFIX", redis.prefix.clone()),
        ],
        ..Default::default()
    })
    .await;
    let sub = app.add_user("alice").await;
    let client = app.add_client(false);
    assert_eq!(openidconnect_flow(&app, &client, "alice").await, sub);
    assert!(
        redis
            .keys()
            .iter()
            .any(|k| k.starts_with(&format!("{}sso:", redis.prefix))),
        "the session lives in Redis"
    );
    app.stop().await;
}

#[tokio::test]
async fn openidconnect_refreshes_a_token_and_verifies_the_refreshed_id_token() {
    let app = spawn_app().await;
    let sub = app.add_user("frank").await;
    let client = app.add_refreshing_client();
    let (rp, http) = crate::relying_party::relying_party(&app, &client).await;
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let (auth_url, _, nonce) = rp
        .authorize_url(
            CoreAuthenticationFlow::AuthorizationCode,
            CsrfToken::new_random,
            Nonce::new_random,
        )
        .add_scope(Scope::new("offline_access".into()))
        .add_prompt(openidconnect::core::CoreAuthPrompt::Consent)
        .set_pkce_challenge(challenge)
        .url();
    let callback = app.browser().sign_in(auth_url.as_str(), "frank").await;
    let tokens = rp
        .exchange_code(AuthorizationCode::new(query(&callback, "code").unwrap()))
        .unwrap()
        .set_pkce_verifier(verifier)
        .request_async(&http)
        .await
        .unwrap();
    let original = tokens
        .id_token()
        .unwrap()
        .claims(&rp.id_token_verifier(), &nonce)
        .unwrap()
        .clone();
    let refresh_token = tokens.refresh_token().expect("a refresh token");

    let refreshed = rp
        .exchange_refresh_token(refresh_token)
        .unwrap()
        .request_async(&http)
        .await
        .expect("the refresh succeeds");
    assert_ne!(
        refreshed.refresh_token().unwrap().secret(),
        refresh_token.secret(),
        "rotated"
    );
    // OIDC Core §12.2: same subject and audience, the original auth_time, no nonce.
    let claims = refreshed
        .id_token()
        .expect("a refreshed ID token")
        .claims(&rp.id_token_verifier(), |n: Option<&Nonce>| match n {
            None => Ok(()),
            Some(_) => Err("a refreshed ID token should carry no nonce".to_owned()),
        })
        .expect("the refreshed ID token verifies");
    assert_eq!(claims.subject().as_str(), sub);
    assert_eq!(claims.audiences(), original.audiences());
    assert_eq!(claims.auth_time(), original.auth_time());
    let userinfo: CoreUserInfoClaims = rp
        .user_info(refreshed.access_token().to_owned(), None)
        .unwrap()
        .request_async(&http)
        .await
        .expect("the refreshed access token works at userinfo");
    assert_eq!(userinfo.subject().as_str(), sub);
}
