//! Refresh tokens (RFC 6749 §6, OIDC Core §11/§12): offline_access, rotation, the grace
//! window, family revocation, lifetimes, and what ends them.

use std::sync::Arc;

use portcullis::domain::ManualClock;
use reqwest::StatusCode;

use crate::backends::TempDatabase;
use crate::helpers::{Options, TestApp, TestClient, jwt_part, query, spawn_app, spawn_app_with};

async fn error_of(response: reqwest::Response) -> (StatusCode, String) {
    let status = response.status();
    let body: serde_json::Value = response.json().await.unwrap();
    (
        status,
        body["error"].as_str().unwrap_or_default().to_owned(),
    )
}

async fn ok_json(response: reqwest::Response) -> serde_json::Value {
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["cache-control"], "no-store");
    response.json().await.unwrap()
}

fn rt(tokens: &serde_json::Value) -> String {
    tokens["refresh_token"].as_str().unwrap().to_owned()
}

fn at(tokens: &serde_json::Value) -> String {
    tokens["access_token"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn a_refresh_rotates_the_token_and_the_new_id_token_keeps_the_original_authentication() {
    let app = spawn_app().await;
    app.add_user("alice").await;
    let client = app.add_refreshing_client();
    let (first, _) = app.offline_tokens(&client, "alice").await;
    let original = jwt_part(first["id_token"].as_str().unwrap(), 1);
    assert_eq!(original["nonce"], "n-456");

    app.clock.advance(600);
    let refreshed = ok_json(app.refresh(&client, &rt(&first), &[]).await).await;
    assert_ne!(rt(&refreshed), rt(&first), "rotated on use");
    assert_eq!(refreshed["scope"], "offline_access openid profile");
    let id = jwt_part(refreshed["id_token"].as_str().unwrap(), 1);
    for claim in ["iss", "sub", "aud", "auth_time", "sid"] {
        assert_eq!(id[claim], original[claim], "{claim} (OIDC Core §12.2)");
    }
    assert_eq!(
        id["iat"].as_i64().unwrap(),
        original["iat"].as_i64().unwrap() + 600
    );
    assert!(
        id.get("nonce").is_none(),
        "§12.2: SHOULD NOT carry the nonce"
    );
    assert_eq!(app.userinfo_status(&at(&refreshed)).await, 200);

    // The successor refreshes in turn.
    ok_json(app.refresh(&client, &rt(&refreshed), &[]).await).await;
}

#[tokio::test]
async fn offline_access_needs_prompt_consent_or_a_consent_given_for_it() {
    let app = spawn_app().await;
    app.add_user("alice").await;
    let client = app.add_refreshing_client();
    let offline = [("scope", "openid offline_access")];

    // No prompt=consent and no consent for it yet: offline_access is dropped.
    let (url, pkce) = app.authorize_url(&client, &offline);
    let browser = app.browser();
    let tokens = app
        .exchange(&client, &browser.sign_in(&url, "alice").await, &pkce)
        .await;
    assert!(tokens.get("refresh_token").is_none(), "{tokens}");
    assert_eq!(tokens["scope"], "openid");

    // Asked with prompt=consent: the consent page names it and the user allows it.
    let (url, pkce) = app.authorize_url(&client, &[offline[0], ("prompt", "consent")]);
    let (page, _, html) = browser.open(&url).await.page();
    assert!(html.contains("Stay connected"), "{html}");
    let callback = browser
        .submit(&page, &html, &[("decision", "allow")])
        .await
        .left();
    assert!(app.exchange(&client, &callback, &pkce).await["refresh_token"].is_string());

    // Consented once, it is granted again without prompt=consent.
    let (url, pkce) = app.authorize_url(&client, &offline);
    let callback = browser.open(&url).await.left();
    assert!(app.exchange(&client, &callback, &pkce).await["refresh_token"].is_string());
}

#[tokio::test]
async fn without_offline_access_or_the_refresh_grant_no_refresh_token_is_issued() {
    let app = spawn_app().await;
    app.add_user("alice").await;
    let refreshing = app.add_refreshing_client();
    assert!(
        app.tokens_for(&refreshing, "alice")
            .await
            .get("refresh_token")
            .is_none()
    );

    let plain = app.add_client(false);
    let (url, pkce) = app.authorize_url(
        &plain,
        &[("scope", "openid offline_access"), ("prompt", "consent")],
    );
    let tokens = app
        .exchange(&plain, &app.browser().sign_in(&url, "alice").await, &pkce)
        .await;
    assert!(tokens.get("refresh_token").is_none());
    assert_eq!(tokens["scope"], "openid");
    let (status, error) = error_of(app.refresh(&plain, "anything", &[]).await).await;
    assert_eq!(
        (status, error.as_str()),
        (StatusCode::BAD_REQUEST, "unauthorized_client")
    );
}

#[tokio::test]
async fn scope_may_narrow_on_refresh_but_never_widen() {
    let app = spawn_app().await;
    app.add_user("alice").await;
    let client = app.add_refreshing_client();
    let (tokens, _) = app.offline_tokens(&client, "alice").await;

    let wider = app
        .refresh(&client, &rt(&tokens), &[("scope", "openid profile email")])
        .await;
    assert_eq!(
        error_of(wider).await,
        (StatusCode::BAD_REQUEST, "invalid_scope".into())
    );

    let narrow = ok_json(
        app.refresh(&client, &rt(&tokens), &[("scope", "openid")])
            .await,
    )
    .await;
    assert_eq!(narrow["scope"], "openid");
    assert_eq!(jwt_part(&at(&narrow), 1)["scope"], "openid");
    // RFC 6749 §6: the new refresh token keeps the scope originally granted.
    let again = ok_json(app.refresh(&client, &rt(&narrow), &[]).await).await;
    assert_eq!(again["scope"], "offline_access openid profile");
}

#[tokio::test]
async fn another_clients_garbage_or_missing_refresh_tokens_are_invalid_grant_and_revoke_nothing() {
    let app = spawn_app().await;
    app.add_user("alice").await;
    let owner = app.add_refreshing_client();
    let thief = app.add_refreshing_client();
    let (tokens, _) = app.offline_tokens(&owner, "alice").await;

    let stolen = app.refresh(&thief, &rt(&tokens), &[]).await;
    assert_eq!(
        error_of(stolen).await,
        (StatusCode::BAD_REQUEST, "invalid_grant".into())
    );
    let garbage = app.refresh(&owner, "not-a-refresh-token", &[]).await;
    assert_eq!(error_of(garbage).await.1, "invalid_grant");
    let missing = app
        .token_request(
            &[("grant_type", "refresh_token")],
            Some((&owner.id, owner.secret.as_deref().unwrap())),
        )
        .await;
    assert_eq!(error_of(missing).await.1, "invalid_request");

    // The owner's family is untouched.
    assert_eq!(app.userinfo_status(&at(&tokens)).await, 200);
    ok_json(app.refresh(&owner, &rt(&tokens), &[]).await).await;
}

#[tokio::test]
async fn a_retry_within_the_grace_window_gets_the_same_successor_and_the_family_survives() {
    let app = spawn_app().await;
    app.add_user("alice").await;
    let client = app.add_refreshing_client();
    let (tokens, _) = app.offline_tokens(&client, "alice").await;

    let first = ok_json(app.refresh(&client, &rt(&tokens), &[]).await).await;
    app.clock.advance(5);
    let retry = ok_json(app.refresh(&client, &rt(&tokens), &[]).await).await;
    assert_eq!(rt(&retry), rt(&first), "one live head per family");
    assert_ne!(at(&retry), at(&first));
    assert_eq!(app.userinfo_status(&at(&first)).await, 200);
    ok_json(app.refresh(&client, &rt(&retry), &[]).await).await;
}

#[tokio::test]
async fn reuse_after_the_grace_window_revokes_the_family_and_its_access_tokens() {
    let app = spawn_app().await;
    app.add_user("alice").await;
    let client = app.add_refreshing_client();
    let (tokens, _) = app.offline_tokens(&client, "alice").await;
    let next = ok_json(app.refresh(&client, &rt(&tokens), &[]).await).await;

    app.clock.advance(6);
    let replay = app.refresh(&client, &rt(&tokens), &[]).await;
    assert_eq!(
        error_of(replay).await,
        (StatusCode::BAD_REQUEST, "invalid_grant".into())
    );
    let successor = app.refresh(&client, &rt(&next), &[]).await;
    assert_eq!(
        error_of(successor).await.1,
        "invalid_grant",
        "the family is dead"
    );
    assert_eq!(app.userinfo_status(&at(&next)).await, 401);
    assert_eq!(app.userinfo_status(&at(&tokens)).await, 401);
}

#[tokio::test]
async fn the_grace_window_is_configurable_and_zero_means_none() {
    let app = spawn_app_with(Options {
        env: vec![("REFRESH_TOKEN_GRACE_PERIOD", "0".into())],
        ..Default::default()
    })
    .await;
    app.add_user("alice").await;
    let client = app.add_refreshing_client();
    let (tokens, _) = app.offline_tokens(&client, "alice").await;
    ok_json(app.refresh(&client, &rt(&tokens), &[]).await).await;
    app.clock.advance(1);
    let replay = app.refresh(&client, &rt(&tokens), &[]).await;
    assert_eq!(error_of(replay).await.1, "invalid_grant");
}

#[tokio::test]
async fn an_unused_refresh_token_expires_and_no_token_outlives_the_absolute_lifetime() {
    let app = spawn_app_with(Options {
        env: vec![
            ("REFRESH_TOKEN_TTL", "3000".into()),
            ("REFRESH_TOKEN_ABSOLUTE_TTL", "5000".into()),
        ],
        ..Default::default()
    })
    .await;
    app.add_user("alice").await;
    let client = app.add_refreshing_client();

    let (idle, _) = app.offline_tokens(&client, "alice").await;
    app.clock.advance(3001);
    assert_eq!(
        error_of(app.refresh(&client, &rt(&idle), &[]).await)
            .await
            .1,
        "invalid_grant"
    );

    let (used, _) = app.offline_tokens(&client, "alice").await;
    app.clock.advance(2900);
    let kept = ok_json(app.refresh(&client, &rt(&used), &[]).await).await;
    app.clock.advance(2101);
    let late = app.refresh(&client, &rt(&kept), &[]).await;
    assert_eq!(
        error_of(late).await.1,
        "invalid_grant",
        "5000 s after sign-in"
    );
}

#[tokio::test]
async fn signing_out_ends_the_refresh_tokens_of_the_session() {
    let app = spawn_app().await;
    app.add_user("alice").await;
    let client = app.add_refreshing_client();
    let (tokens, browser) = app.offline_tokens(&client, "alice").await;

    let (page, _, html) = browser.open(&app.url("/logout")).await.page();
    browser
        .submit(&page, &html, &[("decision", "logout")])
        .await;
    assert_eq!(
        error_of(app.refresh(&client, &rt(&tokens), &[]).await)
            .await
            .1,
        "invalid_grant"
    );
    assert_eq!(app.userinfo_status(&at(&tokens)).await, 401);
}

#[tokio::test]
async fn removing_the_user_or_the_client_ends_their_refresh_tokens() {
    let app = spawn_app().await;
    app.add_user("alice").await;
    app.add_user("bob").await;
    let client = app.add_refreshing_client();
    let (alices, _) = app.offline_tokens(&client, "alice").await;
    let (bobs, _) = app.offline_tokens(&client, "bob").await;

    assert!(app.store.delete_user("alice").unwrap());
    assert_eq!(
        error_of(app.refresh(&client, &rt(&alices), &[]).await)
            .await
            .1,
        "invalid_grant"
    );
    ok_json(app.refresh(&client, &rt(&bobs), &[]).await).await;

    assert!(app.store.delete_client(&client.id).unwrap());
    let gone = app.refresh(&client, &rt(&bobs), &[]).await;
    assert_eq!(error_of(gone).await.1, "invalid_client");
    assert!(
        app.store
            .find_refresh_token(&portcullis::crypto::tokens::token_hash(&rt(&bobs)))
            .unwrap()
            .is_none()
    );
}

/// Two instances on one database and one clock: the same refresh token sent `n` times at
/// once, spread over both. No 5xx; every answer is the same successor (a retry within the
/// grace window is not theft); the user stays signed in. Then the original, replayed
/// after the window, kills the family on both instances.
async fn concurrent_refreshes_across_two_instances(database_url: String) {
    let clock = Arc::new(ManualClock::starting_now());
    let options = Options {
        database_url: Some(database_url),
        clock: Some(clock.clone()),
        ..Default::default()
    };
    let a = spawn_app_with(options.clone()).await;
    let b = spawn_app_with(options).await;
    a.add_user("alice").await;
    let client = a.add_refreshing_client();
    let (tokens, _) = a.offline_tokens(&client, "alice").await;
    let original = rt(&tokens);

    let apps: [&TestApp; 2] = [&a, &b];
    let results = futures::future::join_all((0..12).map(|i| {
        let (app, client, original) = (apps[i % 2], &client, &original);
        async move {
            let response = app.refresh(client, original, &[]).await;
            (
                response.status(),
                response.json::<serde_json::Value>().await.unwrap(),
            )
        }
    }))
    .await;
    for (status, body) in &results {
        assert_eq!(*status, StatusCode::OK, "{body}");
    }
    let successors: std::collections::HashSet<String> =
        results.iter().map(|(_, b)| rt(b)).collect();
    assert_eq!(
        successors.len(),
        1,
        "one successor for every concurrent use"
    );
    let successor = successors.into_iter().next().unwrap();
    for (i, (_, body)) in results.iter().enumerate() {
        assert_eq!(apps[i % 2].userinfo_status(&at(body)).await, 200);
    }
    let next = ok_json(b.refresh(&client, &successor, &[]).await).await;
    assert_eq!(b.userinfo_status(&at(&next)).await, 200, "still signed in");

    clock.advance(30);
    let replay = a.refresh(&client, &original, &[]).await;
    assert_eq!(error_of(replay).await.1, "invalid_grant");
    assert_eq!(
        error_of(b.refresh(&client, &rt(&next), &[]).await).await.1,
        "invalid_grant"
    );
    assert_eq!(
        a.userinfo_status(&at(&next)).await,
        401,
        "at once where it was revoked"
    );
    // A revoked the family; B, with no Redis to hear it from, stops trusting its cached
    // liveness within `LIVENESS_TTL` (README: "Scale-out").
    let deadline = std::time::Instant::now() + 4 * portcullis::store::sql::liveness::LIVENESS_TTL;
    while b.userinfo_status(&at(&next)).await != 401 {
        assert!(
            std::time::Instant::now() < deadline,
            "B still accepts a revoked family"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn concurrent_refreshes_on_two_instances_over_sqlite_keep_the_user_signed_in() {
    let dir = tempfile::TempDir::new().unwrap();
    concurrent_refreshes_across_two_instances(format!(
        "sqlite://{}/shared.db",
        dir.path().display()
    ))
    .await;
}

#[tokio::test]
async fn concurrent_refreshes_on_two_instances_over_postgres_keep_the_user_signed_in() {
    let Some(db) = TempDatabase::create() else {
        return;
    };
    concurrent_refreshes_across_two_instances(db.url.clone()).await;
}

#[tokio::test]
async fn a_public_client_refreshes_with_its_client_id_and_pkce_bound_grant() {
    let app = spawn_app().await;
    app.add_user("alice").await;
    let client: TestClient = app.add_client_with(portcullis::protocol::registration::ClientDraft {
        auth_method: Some("none".into()),
        grant_types: vec!["authorization_code".into(), "refresh_token".into()],
        ..Default::default()
    });
    let (url, pkce) = app.authorize_url(
        &client,
        &[("scope", "openid offline_access"), ("prompt", "consent")],
    );
    let callback = app.browser().sign_in(&url, "alice").await;
    assert!(query(&callback, "code").is_some());
    let tokens = app.exchange(&client, &callback, &pkce).await;
    let response = app
        .token_request(
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", &rt(&tokens)),
                ("client_id", &client.id),
            ],
            None,
        )
        .await;
    let refreshed = ok_json(response).await;
    assert!(refreshed["refresh_token"].is_string());
}

#[tokio::test]
async fn with_no_grace_window_even_a_retry_in_the_same_second_ends_the_family() {
    let app = spawn_app_with(Options {
        env: vec![("REFRESH_TOKEN_GRACE_PERIOD", "0".into())],
        ..Default::default()
    })
    .await;
    app.add_user("alice").await;
    let client = app.add_refreshing_client();
    let (tokens, _) = app.offline_tokens(&client, "alice").await;
    let next = ok_json(app.refresh(&client, &rt(&tokens), &[]).await).await;
    let replay = app.refresh(&client, &rt(&tokens), &[]).await;
    assert_eq!(error_of(replay).await.1, "invalid_grant");
    assert_eq!(
        error_of(app.refresh(&client, &rt(&next), &[]).await)
            .await
            .1,
        "invalid_grant"
    );
}

#[tokio::test]
async fn a_retry_after_the_successor_was_used_gets_nothing_and_revokes_nothing() {
    let app = spawn_app().await;
    app.add_user("alice").await;
    let client = app.add_refreshing_client();
    let (tokens, _) = app.offline_tokens(&client, "alice").await;
    let second = ok_json(app.refresh(&client, &rt(&tokens), &[]).await).await;
    let third = ok_json(app.refresh(&client, &rt(&second), &[]).await).await;

    let late = app.refresh(&client, &rt(&tokens), &[]).await;
    assert_eq!(
        error_of(late).await.1,
        "invalid_grant",
        "no live token for the old one"
    );
    assert_eq!(
        app.userinfo_status(&at(&third)).await,
        200,
        "the family lives on"
    );
    ok_json(app.refresh(&client, &rt(&third), &[]).await).await;
}

#[tokio::test]
async fn a_replay_with_a_widened_scope_still_ends_the_family() {
    let app = spawn_app().await;
    app.add_user("alice").await;
    let client = app.add_refreshing_client();
    let (tokens, _) = app.offline_tokens(&client, "alice").await;
    let next = ok_json(app.refresh(&client, &rt(&tokens), &[]).await).await;
    app.clock.advance(60);
    let replay = app
        .refresh(&client, &rt(&tokens), &[("scope", "openid email")])
        .await;
    assert_eq!(error_of(replay).await.1, "invalid_grant");
    assert_eq!(
        error_of(app.refresh(&client, &rt(&next), &[]).await)
            .await
            .1,
        "invalid_grant"
    );

    // A widened scope on a fresh token is refused before anything is used up.
    let (fresh, _) = app.offline_tokens(&client, "alice").await;
    let wider = app
        .refresh(&client, &rt(&fresh), &[("scope", "openid email")])
        .await;
    assert_eq!(error_of(wider).await.1, "invalid_scope");
    ok_json(app.refresh(&client, &rt(&fresh), &[]).await).await;
}
