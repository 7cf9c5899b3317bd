//! Token endpoint: client authentication and the authorization code grant's rules.

use reqwest::StatusCode;

use crate::helpers::{Options, TestApp, TestClient, query, spawn_app, spawn_app_with};

/// A fresh code for `client` and the PKCE verifier that goes with it.
async fn code_for(app: &TestApp, client: &TestClient) -> (String, String) {
    let (url, pkce) = app.authorize_url(client, &[]);
    let callback = app.browser().sign_in(&url, "alice").await;
    (query(&callback, "code").unwrap(), pkce.verifier)
}

async fn error_of(response: reqwest::Response) -> (StatusCode, String) {
    let status = response.status();
    assert_eq!(response.headers()["cache-control"], "no-store");
    let body: serde_json::Value = response.json().await.unwrap();
    (status, body["error"].as_str().unwrap().to_owned())
}

#[tokio::test]
async fn token_response_is_not_cacheable_and_complete() {
    let app = spawn_app().await;
    app.add_user("alice").await;
    let client = app.add_client(false);
    let (code, verifier) = code_for(&app, &client).await;
    let response = app.redeem(&client, &code, Some(&verifier)).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["cache-control"], "no-store");
    assert_eq!(response.headers()["pragma"], "no-cache");
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 3600);
    assert_eq!(body["scope"], "email openid profile");
    let header = crate::helpers::jwt_part(body["access_token"].as_str().unwrap(), 0);
    assert_eq!(header["typ"], "at+jwt", "RFC 9068 access token");
}

#[tokio::test]
async fn wrong_client_secret_is_401_invalid_client() {
    let app = spawn_app().await;
    app.add_user("alice").await;
    let client = app.add_client(false);
    let (code, verifier) = code_for(&app, &client).await;
    let wrong = TestClient {
        secret: Some("wrong".into()),
        ..client
    };
    let response = app.redeem(&wrong, &code, Some(&verifier)).await;
    assert!(response.headers().contains_key("www-authenticate"));
    assert_eq!(
        error_of(response).await,
        (StatusCode::UNAUTHORIZED, "invalid_client".into())
    );
}

#[tokio::test]
async fn confidential_client_without_a_secret_is_invalid_client() {
    let app = spawn_app().await;
    app.add_user("alice").await;
    let client = app.add_client(false);
    let (code, verifier) = code_for(&app, &client).await;
    let no_secret = TestClient {
        secret: None,
        ..client
    };
    let response = app.redeem(&no_secret, &code, Some(&verifier)).await;
    assert_eq!(
        error_of(response).await,
        (StatusCode::UNAUTHORIZED, "invalid_client".into())
    );
}

#[tokio::test]
async fn client_secret_post_works_when_registered_for_it() {
    let app = spawn_app().await;
    app.add_user("alice").await;
    let client = app.add_client_with(portcullis::protocol::registration::ClientDraft {
        auth_method: Some("client_secret_post".into()),
        ..Default::default()
    });
    let (code, verifier) = code_for(&app, &client).await;
    let response = crate::helpers::http()
        .post(app.url("/token"))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", &client.redirect_uri),
            ("code_verifier", &verifier),
            ("client_id", &client.id),
            ("client_secret", client.secret.as_deref().unwrap()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
}

#[tokio::test]
async fn reused_code_is_invalid_grant_and_revokes_the_first_access_token() {
    let app = spawn_app().await;
    app.add_user("alice").await;
    let client = app.add_client(false);
    let (code, verifier) = code_for(&app, &client).await;
    let first: serde_json::Value = app
        .redeem(&client, &code, Some(&verifier))
        .await
        .json()
        .await
        .unwrap();
    let access_token = first["access_token"].as_str().unwrap().to_owned();
    let userinfo = |token: String| {
        let url = app.url("/userinfo");
        async move {
            crate::helpers::http()
                .get(url)
                .bearer_auth(token)
                .send()
                .await
                .unwrap()
                .status()
        }
    };
    assert_eq!(userinfo(access_token.clone()).await, 200);

    let second = app.redeem(&client, &code, Some(&verifier)).await;
    assert_eq!(
        error_of(second).await,
        (StatusCode::BAD_REQUEST, "invalid_grant".into())
    );
    assert_eq!(
        userinfo(access_token).await,
        401,
        "tokens from the first redemption are revoked"
    );
}

#[tokio::test]
async fn concurrent_redemptions_of_one_code_succeed_only_once() {
    let app = spawn_app().await;
    app.add_user("alice").await;
    let client = app.add_client(false);
    let (code, verifier) = code_for(&app, &client).await;
    let attempts = (0..6).map(|_| app.redeem(&client, &code, Some(&verifier)));
    let statuses: Vec<u16> = futures::future::join_all(attempts)
        .await
        .iter()
        .map(|r| r.status().as_u16())
        .collect();
    assert_eq!(
        statuses.iter().filter(|s| **s == 200).count(),
        1,
        "{statuses:?}"
    );
    assert!(
        statuses.iter().all(|s| *s == 200 || *s == 400),
        "{statuses:?}"
    );
}

#[tokio::test]
async fn wrong_pkce_verifier_is_invalid_grant() {
    let app = spawn_app().await;
    app.add_user("alice").await;
    let client = app.add_client(true);
    let (code, _) = code_for(&app, &client).await;
    let response = app
        .redeem(&client, &code, Some(&crate::helpers::Pkce::new().verifier))
        .await;
    assert_eq!(
        error_of(response).await,
        (StatusCode::BAD_REQUEST, "invalid_grant".into())
    );
}

#[tokio::test]
async fn missing_pkce_verifier_is_invalid_grant() {
    let app = spawn_app().await;
    app.add_user("alice").await;
    let client = app.add_client(true);
    let (code, _) = code_for(&app, &client).await;
    let response = app.redeem(&client, &code, None).await;
    assert_eq!(
        error_of(response).await,
        (StatusCode::BAD_REQUEST, "invalid_grant".into())
    );
}

#[tokio::test]
async fn expired_code_is_invalid_grant() {
    let app = spawn_app_with(Options {
        env: vec![("AUTHORIZATION_CODE_TTL", "1".into())],
        ..Default::default()
    })
    .await;
    app.add_user("alice").await;
    let client = app.add_client(false);
    let (code, verifier) = code_for(&app, &client).await;
    app.clock.advance(2);
    let response = app.redeem(&client, &code, Some(&verifier)).await;
    assert_eq!(
        error_of(response).await,
        (StatusCode::BAD_REQUEST, "invalid_grant".into())
    );
}

#[tokio::test]
async fn code_is_bound_to_its_client_and_redirect_uri() {
    let app = spawn_app().await;
    app.add_user("alice").await;
    let client = app.add_client(false);
    let other = app.add_client(false);
    let (code, verifier) = code_for(&app, &client).await;
    let stolen = app.redeem(&other, &code, Some(&verifier)).await;
    assert_eq!(error_of(stolen).await.1, "invalid_grant");
    let moved = TestClient {
        redirect_uri: "http://127.0.0.1:1/other".into(),
        ..client
    };
    let response = app.redeem(&moved, &code, Some(&verifier)).await;
    assert_eq!(error_of(response).await.1, "invalid_grant");
}

#[tokio::test]
async fn unknown_grant_type_is_unsupported_grant_type_and_missing_is_invalid_request() {
    let app = spawn_app().await;
    let client = app.add_client(false);
    let post = |form: Vec<(&'static str, &'static str)>| {
        crate::helpers::http()
            .post(app.url("/token"))
            .basic_auth(&client.id, client.secret.as_deref())
            .form(&form)
            .send()
    };
    let response = post(vec![("grant_type", "password"), ("username", "a")])
        .await
        .unwrap();
    assert_eq!(
        error_of(response).await,
        (StatusCode::BAD_REQUEST, "unsupported_grant_type".into())
    );
    let response = post(vec![("code", "x")]).await.unwrap();
    assert_eq!(
        error_of(response).await,
        (StatusCode::BAD_REQUEST, "invalid_request".into())
    );
    let response = post(vec![
        ("grant_type", "authorization_code"),
        ("code", "unknown"),
    ])
    .await
    .unwrap();
    assert_eq!(
        error_of(response).await,
        (StatusCode::BAD_REQUEST, "invalid_grant".into())
    );
}

#[tokio::test]
async fn token_request_that_is_not_a_form_is_invalid_request() {
    let app = spawn_app().await;
    let response = crate::helpers::http()
        .post(app.url("/token"))
        .json(&serde_json::json!({"grant_type": "authorization_code"}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        error_of(response).await,
        (StatusCode::BAD_REQUEST, "invalid_request".into())
    );
}

#[tokio::test]
async fn a_basic_client_may_send_its_secret_in_the_body_but_a_public_client_may_not_send_one() {
    let app = spawn_app().await;
    app.add_user("alice").await;
    let client = app.add_client(false);
    let (code, verifier) = code_for(&app, &client).await;
    let app_ref = &app;
    let post = |id: &str, secret: &str, code: &str, verifier: &str| {
        let form = [
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", "http://127.0.0.1:1/callback"),
            ("code_verifier", verifier),
            ("client_id", id),
            ("client_secret", secret),
        ]
        .map(|(k, v)| (k, v.to_owned()));
        async move {
            let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
            app_ref.token_request(&form, None).await
        }
    };
    let response = post(
        &client.id,
        client.secret.as_deref().unwrap(),
        &code,
        &verifier,
    )
    .await;
    assert_eq!(response.status(), 200);

    let public = app.add_client(true);
    let (code, verifier) = code_for(&app, &public).await;
    let response = post(&public.id, "made-up", &code, &verifier).await;
    assert_eq!(
        error_of(response).await,
        (StatusCode::UNAUTHORIZED, "invalid_client".into())
    );
}

#[tokio::test]
async fn both_basic_and_post_credentials_at_once_are_invalid_request() {
    let app = spawn_app().await;
    let client = app.add_client(false);
    let response = crate::helpers::http()
        .post(app.url("/token"))
        .basic_auth(&client.id, client.secret.as_deref())
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", "x"),
            ("client_secret", client.secret.as_deref().unwrap()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(
        error_of(response).await,
        (StatusCode::BAD_REQUEST, "invalid_request".into())
    );
}

#[tokio::test]
async fn redirect_uri_must_be_repeated_at_the_token_endpoint_only_if_it_was_sent() {
    let app = spawn_app().await;
    app.add_user("alice").await;
    let client = app.add_client(false);
    let basic = Some((client.id.as_str(), client.secret.as_deref().unwrap()));
    let app_ref = &app;
    let redeem_without_uri = |code: String, verifier: String| async move {
        let form = [
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("code_verifier", &verifier),
        ];
        app_ref.token_request(&form, basic).await
    };
    let (code, verifier) = code_for(&app, &client).await;
    let response = redeem_without_uri(code, verifier).await;
    assert_eq!(
        error_of(response).await,
        (StatusCode::BAD_REQUEST, "invalid_grant".into())
    );

    // A plain OAuth request that left redirect_uri out need not repeat it.
    let (url, pkce) = app.authorize_url(&client, &[("redirect_uri", ""), ("scope", "profile")]);
    let browser = app.browser();
    let callback = browser.sign_in(&url, "alice").await;
    let response = redeem_without_uri(query(&callback, "code").unwrap(), pkce.verifier).await;
    assert_eq!(response.status(), 200);
    let body: serde_json::Value = response.json().await.unwrap();
    assert!(
        body.get("id_token").is_none(),
        "no ID token without the openid scope"
    );
}

#[tokio::test]
async fn another_client_presenting_a_used_code_revokes_nothing_of_the_owner() {
    let app = spawn_app().await;
    app.add_user("alice").await;
    let owner = app.add_client(false);
    let other = app.add_client(false);
    let (code, verifier) = code_for(&app, &owner).await;
    let tokens: serde_json::Value = app
        .redeem(&owner, &code, Some(&verifier))
        .await
        .json()
        .await
        .unwrap();
    let replay = app.redeem(&other, &code, Some(&verifier)).await;
    assert_eq!(error_of(replay).await.1, "invalid_grant");
    assert_eq!(
        app.userinfo_status(tokens["access_token"].as_str().unwrap())
            .await,
        200,
        "only the owner's replay is evidence against the owner's tokens"
    );
}

#[tokio::test]
async fn every_client_authentication_failure_reads_the_same() {
    let app = spawn_app().await;
    let confidential = app.add_client(false);
    let public = app.add_client(true);
    type Attempt<'a> = (Vec<(&'a str, &'a str)>, Option<(&'a str, &'a str)>);
    let attempts: Vec<Attempt> = vec![
        (vec![], Some(("no-such-client", "x"))),
        (vec![], Some((&confidential.id, "wrong"))),
        (vec![("client_id", &confidential.id)], None),
        (
            vec![("client_id", &public.id), ("client_secret", "x")],
            None,
        ),
        (vec![("client_id", "no-such-client")], None),
    ];
    for (extra, basic) in attempts {
        let mut form = vec![("grant_type", "client_credentials")];
        form.extend(extra);
        let response = app.token_request(&form, basic).await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        let body: serde_json::Value = response.json().await.unwrap();
        assert_eq!(body["error"], "invalid_client");
        assert_eq!(
            body["error_description"], "client authentication failed",
            "no hint about which ids exist or how they authenticate"
        );
    }
}

#[tokio::test]
async fn a_verifier_must_be_43_to_128_unreserved_characters_even_when_it_matches() {
    let app = spawn_app().await;
    app.add_user("alice").await;
    let client = app.add_client(false);
    // RFC 7636 §4.1; each challenge is the verifier's own S256, so only its form decides.
    for (verifier, accepted) in [
        ("a".repeat(43), true),
        ("b".repeat(128), true),
        ("c".repeat(42), false),
        ("d".repeat(129), false),
        (format!("{}+", "e".repeat(42)), false),
    ] {
        let challenge = portcullis::crypto::tokens::pkce_s256(&verifier);
        let (url, _) = app.authorize_url(&client, &[("code_challenge", challenge.as_str())]);
        let callback = app.browser().sign_in(&url, "alice").await;
        let code = query(&callback, "code").unwrap();
        let response = app.redeem(&client, &code, Some(&verifier)).await;
        if accepted {
            assert_eq!(response.status(), StatusCode::OK, "{verifier}");
        } else {
            assert_eq!(
                error_of(response).await,
                (StatusCode::BAD_REQUEST, "invalid_grant".into()),
                "{verifier}"
            );
        }
    }
}
