//! Pairwise subject identifiers (OIDC Core §8.1): one `sub` per sector, the same in the
//! ID token, userinfo, introspection and logout tokens; sectors from the redirect host or
//! a sector identifier document.

use openidconnect::core::{CoreAuthenticationFlow, CoreUserInfoClaims};
use openidconnect::{
    AuthorizationCode, CsrfToken, Nonce, OAuth2TokenResponse, PkceCodeChallenge, TokenResponse,
};
use portcullis::protocol::registration::ClientDraft;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{Options, TestApp, TestClient, jwt_part, query, spawn_app, spawn_app_with};
use crate::logout_receiver::{Receiver, verify_logout_token};

fn pairwise_client(app: &TestApp, redirect: &str, backchannel: Option<String>) -> TestClient {
    app.add_client_with(ClientDraft {
        redirect_uris: vec![redirect.to_owned()],
        subject_type: Some("pairwise".into()),
        grant_types: vec!["authorization_code".into(), "refresh_token".into()],
        backchannel_logout_uri: backchannel,
        ..ClientDraft::default()
    })
}

fn sub_of(tokens: &Value) -> String {
    jwt_part(tokens["id_token"].as_str().unwrap(), 1)["sub"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[tokio::test]
async fn a_pairwise_sub_is_stable_within_a_sector_and_differs_across_sectors() {
    let app = spawn_app().await;
    let alice = app.add_user("alice").await;
    app.add_user("bob").await;
    // Two clients on one host share a sector; a third is on another host.
    let (one, two) = (
        pairwise_client(&app, "http://localhost:1/one", None),
        pairwise_client(&app, "http://localhost:1/two", None),
    );
    let elsewhere = pairwise_client(&app, "http://127.0.0.1:1/cb", None);
    let public = app.add_client(false);

    let mut seen = Vec::new();
    for client in [&one, &one, &two, &elsewhere, &public] {
        seen.push(sub_of(&app.tokens_for(client, "alice").await));
    }
    assert_eq!(seen[0], seen[1], "stable for a client");
    assert_eq!(seen[0], seen[2], "the same across a sector");
    assert_ne!(seen[0], seen[3], "different across sectors");
    assert_eq!(seen[4], alice, "public clients see the user id");
    assert!(!seen[0].contains(&alice) && !seen[3].contains(&alice));
    assert_ne!(
        sub_of(&app.tokens_for(&one, "bob").await),
        seen[0],
        "different users"
    );
}

#[tokio::test]
async fn userinfo_introspection_and_logout_tokens_use_the_same_pairwise_sub() {
    let app = spawn_app().await;
    app.add_user("alice").await;
    let receiver = Receiver::start().await;
    let client = pairwise_client(&app, "http://localhost:1/cb", Some(receiver.uri("rp")));
    let (tokens, browser) = app.offline_tokens(&client, "alice").await;
    let sub = sub_of(&tokens);

    let info: Value = crate::helpers::http()
        .get(app.url("/userinfo"))
        .bearer_auth(tokens["access_token"].as_str().unwrap())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(info["sub"], sub.as_str());
    assert_eq!(
        jwt_part(tokens["access_token"].as_str().unwrap(), 1)["sub"],
        sub.as_str()
    );
    for token in ["access_token", "refresh_token"] {
        let body: Value = app
            .post_as(
                &client,
                "/introspect",
                &[("token", tokens[token].as_str().unwrap())],
            )
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(body["sub"], sub.as_str(), "{token}");
    }
    let refreshed: Value = app
        .refresh(&client, tokens["refresh_token"].as_str().unwrap(), &[])
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(sub_of(&refreshed), sub);

    // An id_token_hint with the pairwise sub names the signed-in user.
    let (url, _) = app.authorize_url(
        &client,
        &[
            ("prompt", "none"),
            ("scope", "openid"),
            ("id_token_hint", tokens["id_token"].as_str().unwrap()),
        ],
    );
    let back = browser.open(&url).await.left();
    assert!(query(&back, "code").is_some(), "{back}");

    let (page, _, html) = browser.open(&app.url("/logout")).await.page();
    browser
        .submit(&page, &html, &[("decision", "logout")])
        .await;
    let received = receiver.wait_for(1).await;
    let claims = verify_logout_token(
        received[0].token.as_deref().unwrap(),
        &app.issuer,
        &client.id,
    )
    .await;
    assert_eq!(claims["sub"], sub.as_str());
    receiver.stop().await;
}

#[tokio::test]
async fn a_sector_identifier_document_must_list_every_redirect_uri() {
    let app = spawn_app_with(Options {
        env: vec![("REGISTRATION", "open".into())],
        ..Options::default()
    })
    .await;
    let receiver = Receiver::start().await;
    let redirects = ["https://a.example/cb", "https://b.example/cb"];
    let good = receiver.serve("/sector.json", json!(redirects));
    let short = receiver.serve("/short.json", json!(["https://a.example/cb"]));
    let not_a_list = receiver.serve("/object.json", json!({"redirect_uris": redirects}));
    let register = |extra: Value| {
        let url = app.url("/register");
        let mut body = json!({"redirect_uris": redirects, "subject_type": "pairwise"});
        for (k, v) in extra.as_object().unwrap() {
            body[k] = v.clone();
        }
        async move {
            crate::helpers::http()
                .post(url)
                .json(&body)
                .send()
                .await
                .unwrap()
        }
    };
    let ok = register(json!({"sector_identifier_uri": good})).await;
    assert_eq!(ok.status(), StatusCode::CREATED);
    let body: Value = ok.json().await.unwrap();
    assert_eq!(body["subject_type"], "pairwise");
    assert_eq!(body["sector_identifier_uri"], good.as_str());
    assert!(body.get("sector_identifier").is_none());

    for (extra, why) in [
        (
            json!({"sector_identifier_uri": short}),
            "does not list the redirect URI https://b.example/cb",
        ),
        (json!({"sector_identifier_uri": not_a_list}), "JSON array"),
        (
            json!({"sector_identifier_uri": format!("{}/missing.json", receiver.base)}),
            "JSON array",
        ),
        (json!({}), "several hosts"),
        (json!({"subject_type": "secret"}), "subject_type secret"),
    ] {
        let response = register(extra.clone()).await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{extra}");
        let error: Value = response.json().await.unwrap();
        assert_eq!(error["error"], "invalid_client_metadata");
        assert!(
            error["error_description"].as_str().unwrap().contains(why),
            "{extra}: {error}"
        );
    }
    receiver.stop().await;
}

#[tokio::test]
async fn openidconnect_completes_a_pairwise_flow() {
    let app = spawn_app().await;
    let alice = app.add_user("alice").await;
    let client = pairwise_client(&app, "http://localhost:1/cb", None);
    let (rp, http) = crate::relying_party::relying_party(&app, &client).await;
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let (auth_url, _, nonce) = rp
        .authorize_url(
            CoreAuthenticationFlow::AuthorizationCode,
            CsrfToken::new_random,
            Nonce::new_random,
        )
        .set_pkce_challenge(challenge)
        .url();
    let callback = app.browser().sign_in(auth_url.as_str(), "alice").await;
    let tokens = rp
        .exchange_code(AuthorizationCode::new(query(&callback, "code").unwrap()))
        .unwrap()
        .set_pkce_verifier(verifier)
        .request_async(&http)
        .await
        .unwrap();
    let claims = tokens
        .id_token()
        .unwrap()
        .claims(&rp.id_token_verifier(), &nonce)
        .unwrap();
    assert_ne!(claims.subject().as_str(), alice);
    // The crate checks that userinfo's sub is the ID token's.
    let info: CoreUserInfoClaims = rp
        .user_info(
            tokens.access_token().clone(),
            Some(claims.subject().clone()),
        )
        .unwrap()
        .request_async(&http)
        .await
        .expect("userinfo with the same sub");
    assert_eq!(info.subject(), claims.subject());
    let doc = app.get_json("/.well-known/openid-configuration").await;
    assert_eq!(
        doc["subject_types_supported"],
        json!(["public", "pairwise"])
    );
}
