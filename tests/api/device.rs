//! The device authorization grant (RFC 8628): the device asks for codes, its user types
//! the user code on `/device`, signs in and consents, and the device's polls of the token
//! endpoint get its tokens once. On every backend where state is kept (SQLite with the
//! in-process session store, PostgreSQL, PostgreSQL with Redis), and across instances.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use portcullis::protocol::registration::ClientDraft;
use reqwest::StatusCode;
use serde_json::Value;

use crate::backends::{TempDatabase, TempRedis};
use crate::helpers::{
    Browser, Options, Outcome, TestApp, TestClient, http, jwt_part, spawn_app_with, status_and_json,
};

const DEVICE_GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";

/// An app with what it needs kept alive beside it.
struct Backend {
    app: TestApp,
    _db: Option<TempDatabase>,
    _redis: Option<TempRedis>,
}

/// SQLite with the in-process session store, then PostgreSQL, then PostgreSQL with Redis
/// (where reachable).
async fn backends() -> Vec<Backend> {
    let mut all = vec![Backend {
        app: spawn_app_with(Options::default()).await,
        _db: None,
        _redis: None,
    }];
    if let Some(db) = TempDatabase::create() {
        let app = spawn_app_with(Options {
            database_url: Some(db.url.clone()),
            ..Default::default()
        })
        .await;
        all.push(Backend {
            app,
            _db: Some(db),
            _redis: None,
        });
    }
    if let (Some(db), Some(redis)) = (TempDatabase::create(), TempRedis::create()) {
        let app = spawn_app_with(Options {
            database_url: Some(db.url.clone()),
            env: vec![
                ("REDIS_URL", redis.url.clone()),
                ("REDIS_PREFIX", redis.prefix.clone()),
            ],
            ..Default::default()
        })
        .await;
        all.push(Backend {
            app,
            _db: Some(db),
            _redis: Some(redis),
        });
    }
    all
}

/// A public client (a TV) with the device grant and refresh tokens.
fn device_client(app: &TestApp) -> TestClient {
    app.add_client_with(ClientDraft {
        name: Some("Living Room TV".into()),
        auth_method: Some("none".into()),
        grant_types: vec![DEVICE_GRANT.into(), "refresh_token".into()],
        ..ClientDraft::default()
    })
}

/// POSTs a device authorization request of public `client` for `scope`.
async fn ask(app: &TestApp, client_id: &str, scope: &str) -> reqwest::Response {
    http()
        .post(app.url("/device_authorization"))
        .form(&[("client_id", client_id), ("scope", scope)])
        .send()
        .await
        .unwrap()
}

/// A device authorization that must succeed: its JSON.
async fn codes(app: &TestApp, client: &TestClient, scope: &str) -> Value {
    let response = ask(app, &client.id, scope).await;
    assert_eq!(response.headers()["cache-control"], "no-store");
    let (status, body) = status_and_json(response).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body
}

/// One poll of the token endpoint by public `client_id`.
async fn poll_at(url: &str, client_id: &str, device_code: &str) -> (StatusCode, Value) {
    let response = http()
        .post(url)
        .form(&[
            ("grant_type", DEVICE_GRANT),
            ("device_code", device_code),
            ("client_id", client_id),
        ])
        .send()
        .await
        .unwrap();
    status_and_json(response).await
}

async fn poll(app: &TestApp, client_id: &str, device_code: &str) -> (StatusCode, Value) {
    poll_at(&app.url("/token"), client_id, device_code).await
}

/// The error a poll was refused with.
async fn refused(app: &TestApp, client_id: &str, device_code: &str) -> String {
    let (status, body) = poll(app, client_id, device_code).await;
    assert_ne!(status, StatusCode::OK, "{body}");
    body["error"].as_str().unwrap_or_default().to_owned()
}

fn text(value: &Value, name: &str) -> String {
    value[name]
        .as_str()
        .unwrap_or_else(|| panic!("no {name} in {value}"))
        .to_owned()
}

/// Types `typed` on the device page at `device_page` and signs in as `username`: the
/// consent page.
async fn to_consent(browser: &Browser, device_page: &str, typed: &str, username: &str) -> Outcome {
    let (url, status, html) = browser.open(device_page).await.page();
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("name=\"user_code\""), "{html}");
    let login = browser.submit(&url, &html, &[("user_code", typed)]).await;
    let consent = browser.login(login, username).await;
    assert!(consent.is_page("/consent"), "{consent:?}");
    consent
}

/// The whole of the user's side: the code, the sign-in, then `decision` on the consent
/// page; the page that ends it.
async fn decide(
    browser: &Browser,
    device_page: &str,
    typed: &str,
    username: &str,
    decision: &str,
) -> String {
    let consent = to_consent(browser, device_page, typed, username).await;
    let (url, _, html) = consent.page();
    let (_, status, done) = browser
        .submit(&url, &html, &[("decision", decision)])
        .await
        .page();
    assert_eq!(status, StatusCode::OK, "{done}");
    done
}

#[tokio::test]
async fn a_device_is_approved_on_the_device_page_and_gets_its_tokens_once() {
    for backend in backends().await {
        let app = &backend.app;
        app.add_user("alice").await;
        let tv = device_client(app);
        let body = codes(app, &tv, "openid profile offline_access").await;
        let user_code = text(&body, "user_code");
        let device_code = text(&body, "device_code");
        assert_eq!(text(&body, "verification_uri"), app.url("/device"));
        assert_eq!(
            text(&body, "verification_uri_complete"),
            format!("{}?user_code={user_code}", app.url("/device"))
        );
        assert_eq!(body["expires_in"], 600);
        assert_eq!(body["interval"], 5);
        assert_eq!(user_code.len(), 9);
        assert!(
            user_code.chars().enumerate().all(|(i, c)| if i == 4 {
                c == '-'
            } else {
                "BCDFGHJKLMNPQRSTVWXZ".contains(c)
            }),
            "{user_code}"
        );
        // Nothing the store holds is either code.
        let held = app.sessions.values().await.unwrap().join("\n");
        assert!(!held.contains(&device_code));
        assert!(!held.contains(&user_code.replace('-', "")));
        // Not even the plain hash of the user code: its key is derived under the KEK.
        let plain_hash = portcullis::crypto::tokens::token_hash(&user_code.replace('-', ""));
        assert!(!held.contains(&plain_hash));

        assert_eq!(
            refused(app, &tv.id, &device_code).await,
            "authorization_pending"
        );

        // The link with the code prefills the form; the user types it in lowercase
        // without its dash anyway.
        let browser = app.browser();
        let (_, _, html) = browser
            .open(&text(&body, "verification_uri_complete"))
            .await
            .page();
        assert!(html.contains(&format!("value=\"{user_code}\"")), "{html}");
        let typed = user_code.replace('-', "").to_lowercase();
        let consent = to_consent(&browser, &app.url("/device"), &typed, "alice").await;
        let (url, _, html) = consent.page();
        assert!(html.contains("Living Room TV"), "{html}");
        assert!(html.contains("A device asks for this access"), "{html}");
        let (_, _, done) = browser
            .submit(&url, &html, &[("decision", "allow")])
            .await
            .page();
        assert!(done.contains("You may return to your device"), "{done}");

        app.clock.advance(5);
        let response = http()
            .post(app.url("/token"))
            .form(&[
                ("grant_type", DEVICE_GRANT),
                ("device_code", &device_code),
                ("client_id", &tv.id),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(response.headers()["cache-control"], "no-store");
        let (status, tokens) = status_and_json(response).await;
        assert_eq!(status, StatusCode::OK, "{tokens}");
        assert!(tokens["access_token"].is_string());
        assert!(
            tokens["refresh_token"].is_string(),
            "offline_access: {tokens}"
        );
        assert_eq!(tokens["token_type"], "Bearer");
        let claims = jwt_part(&text(&tokens, "id_token"), 1);
        assert_eq!(claims["aud"], tv.id);
        assert_eq!(claims["amr"], serde_json::json!(["pwd"]));
        assert!(claims["sid"].is_string(), "{claims}");
        assert!(claims["auth_time"].is_number(), "{claims}");
        assert_eq!(
            app.userinfo_status(&text(&tokens, "access_token")).await,
            200
        );

        // Once: the next poll, however patient, is refused.
        app.clock.advance(5);
        assert_eq!(refused(app, &tv.id, &device_code).await, "invalid_grant");
        // The refresh token works as the code flow's.
        let refreshed = app
            .token_request(
                &[
                    ("grant_type", "refresh_token"),
                    ("refresh_token", &text(&tokens, "refresh_token")),
                    ("client_id", &tv.id),
                ],
                None,
            )
            .await;
        assert_eq!(refreshed.status(), StatusCode::OK);
    }
}

#[tokio::test]
async fn polling_faster_than_the_interval_is_slow_down_and_each_one_adds_five_seconds() {
    for backend in backends().await {
        let app = &backend.app;
        let tv = device_client(app);
        let device_code = text(&codes(app, &tv, "openid").await, "device_code");
        assert_eq!(
            refused(app, &tv.id, &device_code).await,
            "authorization_pending"
        );
        assert_eq!(refused(app, &tv.id, &device_code).await, "slow_down");
        // The interval is 10 s now (9 s with the one second of slack).
        app.clock.advance(8);
        assert_eq!(refused(app, &tv.id, &device_code).await, "slow_down");
        // 15 s now, counted from that poll.
        app.clock.advance(13);
        assert_eq!(refused(app, &tv.id, &device_code).await, "slow_down");
        app.clock.advance(20);
        assert_eq!(
            refused(app, &tv.id, &device_code).await,
            "authorization_pending"
        );
        app.clock.advance(20);
        assert_eq!(
            refused(app, &tv.id, &device_code).await,
            "authorization_pending"
        );
    }
}

#[tokio::test]
async fn a_denied_request_is_access_denied_to_the_device() {
    for backend in backends().await {
        let app = &backend.app;
        app.add_user("alice").await;
        let tv = device_client(app);
        let body = codes(app, &tv, "openid").await;
        let done = decide(
            &app.browser(),
            &app.url("/device"),
            &text(&body, "user_code"),
            "alice",
            "deny",
        )
        .await;
        assert!(done.contains("was not given access"), "{done}");
        assert!(done.contains("You may return to your device"), "{done}");
        let device_code = text(&body, "device_code");
        let (status, denied) = poll(app, &tv.id, &device_code).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "RFC 6749 §5.2");
        assert_eq!(denied["error"], "access_denied");
        app.clock.advance(5);
        assert_eq!(refused(app, &tv.id, &device_code).await, "access_denied");
    }
}

#[tokio::test]
async fn an_expired_device_code_is_expired_token_and_its_user_code_is_not_taken() {
    let backend = backends().await.remove(0);
    let app = &backend.app;
    app.add_user("alice").await;
    let tv = device_client(app);
    let body = codes(app, &tv, "openid").await;
    app.clock.advance(599);
    assert_eq!(
        refused(app, &tv.id, &text(&body, "device_code")).await,
        "authorization_pending"
    );
    app.clock.advance(1);
    assert_eq!(
        refused(app, &tv.id, &text(&body, "device_code")).await,
        "expired_token"
    );
    let browser = app.browser();
    let (url, _, html) = browser.open(&app.url("/device")).await.page();
    let (_, status, html) = browser
        .submit(&url, &html, &[("user_code", &text(&body, "user_code"))])
        .await
        .page();
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(html.contains("not right, or it has expired"), "{html}");
    assert!(
        html.contains("name=\"user_code\""),
        "the form is shown again"
    );
}

#[tokio::test]
async fn wrong_user_codes_are_refused_and_then_throttled_per_client_address() {
    let backend = backends().await.remove(0);
    let app = &backend.app;
    let tv = device_client(app);
    let body = codes(app, &tv, "openid").await;
    let browser = app.browser();
    let (url, _, html) = browser.open(&app.url("/device")).await.page();
    for wrong in ["BCDF-GHJK", "not a code", "ZZZZ-ZZZZ", "", "AAAA-AAAA"]
        .iter()
        .cycle()
        .take(10)
    {
        let (_, status, page) = browser
            .submit(&url, &html, &[("user_code", wrong)])
            .await
            .page();
        assert_eq!(status, StatusCode::BAD_REQUEST, "{wrong}");
        assert!(page.contains("not right, or it has expired"), "{page}");
    }
    // The eleventh code is not even looked at, right or not.
    let (_, status, page) = browser
        .submit(&url, &html, &[("user_code", &text(&body, "user_code"))])
        .await
        .page();
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    assert!(page.contains("Too many wrong codes"), "{page}");
}

#[tokio::test]
async fn the_device_form_is_refused_without_its_csrf_token() {
    let backend = backends().await.remove(0);
    let app = &backend.app;
    let tv = device_client(app);
    let body = codes(app, &tv, "openid").await;
    let browser = app.browser();
    let (url, _, html) = browser.open(&app.url("/device")).await.page();
    let (_, status, page) = browser
        .submit(
            &url,
            &html,
            &[("user_code", &text(&body, "user_code")), ("csrf", "forged")],
        )
        .await
        .page();
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(page.contains("could not be verified"), "{page}");
}

#[tokio::test]
async fn another_client_polling_a_device_code_is_an_invalid_grant_and_changes_nothing() {
    for backend in backends().await {
        let app = &backend.app;
        let tv = device_client(app);
        let other = device_client(app);
        let device_code = text(&codes(app, &tv, "openid").await, "device_code");
        assert_eq!(refused(app, &other.id, &device_code).await, "invalid_grant");
        // The other client's poll was not the device's: no slow_down.
        assert_eq!(
            refused(app, &tv.id, &device_code).await,
            "authorization_pending"
        );
        assert_eq!(refused(app, &tv.id, "made-up").await, "invalid_grant");
    }
}

#[tokio::test]
async fn unknown_and_unauthorized_clients_and_unknown_scopes_are_refused() {
    let backend = backends().await.remove(0);
    let app = &backend.app;
    let (status, body) = status_and_json(ask(app, "nobody", "openid").await).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["error"], "invalid_client");

    let web = app.add_client(true);
    let (status, body) = status_and_json(ask(app, &web.id, "openid").await).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"], "unauthorized_client");
    assert_eq!(
        refused(app, &web.id, "whatever").await,
        "unauthorized_client"
    );

    let tv = device_client(app);
    let (status, body) = status_and_json(ask(app, &tv.id, "unheard-of").await).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"], "invalid_scope");

    // A confidential client authenticates as at the token endpoint.
    let box_client = app.add_client_with(ClientDraft {
        grant_types: vec![DEVICE_GRANT.into()],
        ..ClientDraft::default()
    });
    let secret = box_client.secret.clone().unwrap();
    let response = http()
        .post(app.url("/device_authorization"))
        .basic_auth(&box_client.id, Some("wrong"))
        .form(&[("scope", "openid")])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let response = http()
        .post(app.url("/device_authorization"))
        .basic_auth(&box_client.id, Some(&secret))
        .form(&[("scope", "openid")])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
}

#[tokio::test]
async fn discovery_lists_the_device_authorization_endpoint_and_its_grant_type() {
    let backend = backends().await.remove(0);
    let app = &backend.app;
    let metadata = app.get_json("/.well-known/openid-configuration").await;
    assert_eq!(
        metadata["device_authorization_endpoint"],
        app.url("/device_authorization")
    );
    let grants = metadata["grant_types_supported"].as_array().unwrap();
    assert!(grants.iter().any(|g| g == DEVICE_GRANT), "{grants:?}");
}

#[tokio::test]
async fn the_openidconnect_crate_completes_a_device_flow() {
    use openidconnect::core::{CoreClient, CoreProviderMetadata};
    use openidconnect::{
        ClientId, DeviceAuthorizationUrl, IssuerUrl, Nonce, OAuth2TokenResponse, Scope,
        TokenResponse,
    };

    let backend = backends().await.remove(0);
    let app = &backend.app;
    app.add_user("alice").await;
    let tv = device_client(app);
    let rp_http = crate::helpers::http_builder()
        .redirect(openidconnect::reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let metadata =
        CoreProviderMetadata::discover_async(IssuerUrl::new(app.issuer.clone()).unwrap(), &rp_http)
            .await
            .unwrap();
    let rp = CoreClient::from_provider_metadata(metadata, ClientId::new(tv.id.clone()), None)
        .set_device_authorization_url(
            DeviceAuthorizationUrl::new(app.url("/device_authorization")).unwrap(),
        );
    let details: openidconnect::core::CoreDeviceAuthorizationResponse = rp
        .exchange_device_code()
        .add_scope(Scope::new("profile".into()))
        .request_async(&rp_http)
        .await
        .unwrap();
    assert_eq!(details.interval(), Duration::from_secs(5));
    let user_code = details.user_code().secret().clone();
    let browser = app.browser();
    let approved = AtomicBool::new(false);
    // The crate's wait between polls moves the provider's clock, and the first one is
    // when the user approves.
    let wait = |interval: Duration| {
        let (browser, user_code, approved) = (&browser, user_code.clone(), &approved);
        async move {
            app.clock.advance(interval.as_secs() as i64);
            if !approved.swap(true, Ordering::SeqCst) {
                let done = decide(browser, &app.url("/device"), &user_code, "alice", "allow").await;
                assert!(done.contains("You may return to your device"));
            }
        }
    };
    let tokens = rp
        .exchange_device_access_token(&details)
        .unwrap()
        .request_async(&rp_http, wait, None)
        .await
        .unwrap();
    assert!(approved.load(Ordering::SeqCst));
    let scopes: Vec<String> = tokens
        .scopes()
        .map(|s| s.iter().map(|s| s.as_str().to_owned()).collect())
        .unwrap_or_default();
    assert!(scopes.contains(&"profile".to_owned()), "{scopes:?}");
    let id_token = tokens.id_token().expect("an ID token for openid");
    let claims = id_token
        .claims(
            &rp.id_token_verifier(),
            |_: Option<&Nonce>| -> Result<(), String> { Ok(()) },
        )
        .unwrap();
    assert_eq!(claims.audiences()[0].as_str(), tv.id);
}

#[tokio::test]
async fn a_device_authorized_on_one_instance_is_approved_and_polled_on_the_other() {
    let Some(cluster) = crate::cluster::Cluster::start().await else {
        return;
    };
    let registered = crate::helpers::register_client(ClientDraft {
        name: Some("Living Room TV".into()),
        auth_method: Some("none".into()),
        grant_types: vec![DEVICE_GRANT.into()],
        ..ClientDraft::default()
    });
    {
        use portcullis::store::ClientStore;
        cluster.store.create_client(&registered.client).unwrap();
    }
    let client_id = registered.client.id;
    let response = http()
        .post(cluster.a.url("/device_authorization"))
        .form(&[("client_id", client_id.as_str()), ("scope", "openid")])
        .send()
        .await
        .unwrap();
    let (status, body) = status_and_json(response).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let done = decide(
        &cluster.browser(),
        &cluster.b.url("/device"),
        &text(&body, "user_code"),
        "alice",
        "allow",
    )
    .await;
    assert!(done.contains("You may return to your device"), "{done}");
    let device_code = text(&body, "device_code");
    let (status, tokens) = poll_at(&cluster.b.url("/token"), &client_id, &device_code).await;
    assert_eq!(status, StatusCode::OK, "{tokens}");
    assert!(tokens["id_token"].is_string());
    let (status, again) = poll_at(&cluster.a.url("/token"), &client_id, &device_code).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(again["error"], "invalid_grant");
}

#[tokio::test]
async fn a_device_client_registers_from_the_command_line_or_dynamically() {
    let app = spawn_app_with(Options {
        env: vec![("REGISTRATION", "open".to_owned())],
        ..Default::default()
    })
    .await;
    let db = format!(
        "sqlite://{}",
        app.dir.path().join("portcullis.db").display()
    );
    let out = crate::cli::portcullis_on(
        &db,
        &[("PORTCULLIS_KEY_ENCRYPTION_KEY", crate::helpers::TEST_KEK)],
        &[
            "clients",
            "add",
            "--name",
            "Living Room TV",
            "--public",
            "--grant-type",
            DEVICE_GRANT,
        ],
        None,
    );
    assert!(out.status.success(), "{out:?}");
    let added: Value = serde_json::from_slice(&out.stdout).unwrap();
    let (status, body) =
        status_and_json(ask(&app, &text(&added, "client_id"), "openid").await).await;
    assert_eq!(status, StatusCode::OK, "{body}");

    let registered = http()
        .post(app.url("/register"))
        .json(&serde_json::json!({
            "client_name": "Console",
            "grant_types": [DEVICE_GRANT],
            "token_endpoint_auth_method": "none",
        }))
        .send()
        .await
        .unwrap();
    let (status, client) = status_and_json(registered).await;
    assert_eq!(status, StatusCode::CREATED, "{client}");
    assert_eq!(client["grant_types"], serde_json::json!([DEVICE_GRANT]));
    let (status, body) =
        status_and_json(ask(&app, &text(&client, "client_id"), "openid").await).await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

/// In Chromium: the device page, the sign-in, the consent page naming the device's
/// application and the page that ends it, each checked by axe-core.
#[tokio::test]
async fn a_person_connects_a_device_in_a_real_browser() {
    let Some(chrome) = crate::browser::Chrome::start("device").await else {
        return;
    };
    let backend = backends().await.remove(0);
    let app = &backend.app;
    app.add_user("alice").await;
    let tv = device_client(app);
    let body = codes(app, &tv, "openid profile").await;
    chrome.goto(&app.url("/device")).await;
    chrome.find("#user_code").await;
    chrome.check("device").await;
    chrome
        .type_into("#user_code", &text(&body, "user_code").to_lowercase())
        .await;
    chrome.click("button[type=submit]").await;
    chrome.type_into("#username", "alice").await;
    chrome
        .type_into("#password", crate::helpers::PASSWORD)
        .await;
    chrome.click("button[type=submit]").await;
    chrome.find("button[value=allow]").await;
    chrome.check("device-consent").await;
    chrome.click("button[value=allow]").await;
    let status = chrome.find("[role=status]").await;
    assert!(status.text().await.unwrap().contains("Living Room TV"));
    chrome.check("device-done").await;
    chrome.done().await;
    app.clock.advance(5);
    let (status, tokens) = poll(app, &tv.id, &text(&body, "device_code")).await;
    assert_eq!(status, StatusCode::OK, "{tokens}");
}

/// A device authorization request of public `client_id` from `address` (the app trusts
/// 127.0.0.1 as its proxy).
async fn ask_from(app: &TestApp, client_id: &str, address: &str) -> reqwest::Response {
    http()
        .post(app.url("/device_authorization"))
        .header("x-forwarded-for", address)
        .form(&[("client_id", client_id), ("scope", "openid")])
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn a_flood_of_device_authorizations_from_one_address_is_refused_and_others_still_sign_in() {
    let app = spawn_app_with(Options {
        env: vec![
            ("TRUSTED_PROXIES", "127.0.0.1".into()),
            ("DEVICE_AUTHORIZATIONS_PER_ADDRESS", "3".into()),
        ],
        ..Default::default()
    })
    .await;
    let tv = device_client(&app);
    for n in 0..3 {
        let response = ask_from(&app, &tv.id, "203.0.113.5").await;
        assert_eq!(response.status(), StatusCode::OK, "request {n}");
    }
    let (status, body) = status_and_json(ask_from(&app, &tv.id, "203.0.113.5").await).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{body}");
    assert_eq!(body["error"], "temporarily_unavailable");
    // Another address is not held to the first one's count, and sign-ins go on.
    let other = ask_from(&app, &tv.id, "203.0.113.6").await;
    assert_eq!(other.status(), StatusCode::OK);
    let web = app.add_client(false);
    let (url, _) = app.authorize_url(&web, &[]);
    let login = app.browser().open(&url).await;
    assert!(login.is_page("/login"), "{login:?}");
}

#[tokio::test]
async fn of_two_polls_at_once_one_is_pending_and_the_other_slow_down() {
    for backend in backends().await {
        let app = &backend.app;
        let tv = device_client(app);
        let device_code = text(&codes(app, &tv, "openid").await, "device_code");
        let (a, b) = tokio::join!(
            refused(app, &tv.id, &device_code),
            refused(app, &tv.id, &device_code)
        );
        let mut answers = [a, b];
        answers.sort();
        assert_eq!(answers, ["authorization_pending", "slow_down"]);
    }
}

#[tokio::test]
async fn a_poll_four_seconds_after_the_last_is_within_the_slack_and_pending() {
    let backend = backends().await.remove(0);
    let app = &backend.app;
    let tv = device_client(app);
    let device_code = text(&codes(app, &tv, "openid").await, "device_code");
    assert_eq!(
        refused(app, &tv.id, &device_code).await,
        "authorization_pending"
    );
    app.clock.advance(4);
    assert_eq!(
        refused(app, &tv.id, &device_code).await,
        "authorization_pending"
    );
}

#[tokio::test]
async fn the_code_from_the_complete_link_is_shown_to_check_on_the_device_and_consent_pages() {
    {
        let label = "Check that it matches the code on your device";
        let backend = backends().await.remove(0);
        let app = &backend.app;
        app.add_user("alice").await;
        let tv = device_client(app);
        let body = codes(app, &tv, "openid").await;
        let user_code = text(&body, "user_code");
        let browser = app.browser();
        let complete = text(&body, "verification_uri_complete");
        let (url, status, html) = browser.open(&complete).await.page();
        assert_eq!(status, StatusCode::OK);
        assert!(html.contains(label), "{html}");
        assert!(html.contains(&format!("<strong class=\"user-code\">{user_code}</strong>")));
        let login = browser
            .submit(&url, &html, &[("user_code", &user_code.to_lowercase())])
            .await;
        let consent = browser.login(login, "alice").await;
        assert!(consent.is_page("/consent"), "{consent:?}");
        let (_, _, html) = consent.page();
        assert!(html.contains(label), "{html}");
        assert!(html.contains(&format!("<strong class=\"user-code\">{user_code}</strong>")));
        // Nothing of it in clear in the store.
        let held = app.sessions.values().await.unwrap().join("\n");
        assert!(!held.contains(&user_code));
        assert!(!held.contains(&user_code.replace('-', "")));
    }
}

#[tokio::test]
async fn a_device_page_without_a_code_asks_nothing_to_be_checked() {
    let backend = backends().await.remove(0);
    let app = &backend.app;
    let (_, status, html) = app.browser().open(&app.url("/device")).await.page();
    assert_eq!(status, StatusCode::OK);
    assert!(!html.contains("Check that it matches"), "{html}");
}

#[tokio::test]
async fn denied_in_one_tab_then_allowed_in_another_stays_denied_and_records_no_consent() {
    for backend in backends().await {
        let app = &backend.app;
        let alice = app.add_user("alice").await;
        let tv = device_client(app);
        let body = codes(app, &tv, "openid").await;
        let user_code = text(&body, "user_code");
        let first = app.browser();
        let second = app.browser();
        let deny = to_consent(&first, &app.url("/device"), &user_code, "alice").await;
        let allow = to_consent(&second, &app.url("/device"), &user_code, "alice").await;
        let (url, _, html) = deny.page();
        let (_, status, _) = first
            .submit(&url, &html, &[("decision", "deny")])
            .await
            .page();
        assert_eq!(status, StatusCode::OK);
        let (url, _, html) = allow.page();
        let (_, status, page) = second
            .submit(&url, &html, &[("decision", "allow")])
            .await
            .page();
        assert_eq!(status, StatusCode::BAD_REQUEST, "{page}");
        assert!(page.contains("expired or was already used"), "{page}");
        assert_eq!(
            refused(app, &tv.id, &text(&body, "device_code")).await,
            "access_denied"
        );
        assert!(
            app.store.find_consent(&alice, &tv.id).unwrap().is_none(),
            "the allow that came too late recorded nothing"
        );
    }
}

#[tokio::test]
async fn allowed_after_the_code_expired_is_refused_and_records_no_consent() {
    for backend in backends().await {
        let app = &backend.app;
        let alice = app.add_user("alice").await;
        let tv = device_client(app);
        let body = codes(app, &tv, "openid").await;
        let browser = app.browser();
        let consent = to_consent(
            &browser,
            &app.url("/device"),
            &text(&body, "user_code"),
            "alice",
        )
        .await;
        app.clock.advance(600);
        let (url, _, html) = consent.page();
        let (_, status, page) = browser
            .submit(&url, &html, &[("decision", "allow")])
            .await
            .page();
        assert_eq!(status, StatusCode::BAD_REQUEST, "{page}");
        assert!(page.contains("expired or was already used"), "{page}");
        assert!(app.store.find_consent(&alice, &tv.id).unwrap().is_none());
        assert_eq!(
            refused(app, &tv.id, &text(&body, "device_code")).await,
            "expired_token"
        );
    }
}

#[tokio::test]
async fn a_device_whose_application_is_removed_mid_flow_gets_a_clear_page_not_a_500() {
    for backend in backends().await {
        let app = &backend.app;
        app.add_user("alice").await;
        let tv = device_client(app);
        let body = codes(app, &tv, "openid").await;
        let browser = app.browser();
        let consent = to_consent(
            &browser,
            &app.url("/device"),
            &text(&body, "user_code"),
            "alice",
        )
        .await;
        assert!(app.store.delete_client(&tv.id).unwrap());
        let (url, _, html) = consent.page();
        let (_, status, page) = browser
            .submit(&url, &html, &[("decision", "allow")])
            .await
            .page();
        assert!(status.is_client_error(), "{status}: {page}");
        assert!(!page.contains("server_error"), "{page}");
        // The device is no longer a client: its polls are refused, not left pending.
        let (status, answer) = poll(app, &tv.id, &text(&body, "device_code")).await;
        assert_ne!(answer["error"], "authorization_pending", "{answer}");
        assert!(status.is_client_error(), "{status}");
    }
}
