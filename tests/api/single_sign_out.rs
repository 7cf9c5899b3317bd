//! Single sign-out: OIDC Back-Channel Logout 1.0 (a relying party in the test process
//! receives and checks the logout tokens) and Front-Channel Logout 1.0 (the signed-out
//! page's iframes and CSP), and tokens that die with their session.

use portcullis::domain::Clock;
use portcullis::protocol::registration::ClientDraft;
use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::{
    Browser, Options, TestApp, TestClient, jwt_part, query, spawn_app, spawn_app_with,
};
use crate::logout_receiver::{Receiver, verify_logout_token};

/// A refreshing client whose back-channel logout URI is `receiver`'s `name`.
pub(crate) fn listening_client(app: &TestApp, receiver: &Receiver, name: &str) -> TestClient {
    app.add_client_with(ClientDraft {
        grant_types: vec!["authorization_code".into(), "refresh_token".into()],
        backchannel_logout_uri: Some(receiver.uri(name)),
        backchannel_logout_session_required: Some(true),
        post_logout_redirect_uris: vec!["http://127.0.0.1:1/bye".into()],
        ..ClientDraft::default()
    })
}

/// Signs `browser` in to `client` (logging in if needed) with offline access; returns
/// the token response.
pub(crate) async fn tokens_in(app: &TestApp, browser: &Browser, client: &TestClient) -> Value {
    let (url, pkce) = app.authorize_url(
        client,
        &[
            ("scope", "openid profile offline_access"),
            ("prompt", "consent"),
        ],
    );
    let mut outcome = browser.open(&url).await;
    if outcome.is_page("/login") {
        outcome = browser.login(outcome, "alice").await;
    }
    let callback = browser.consent_if_asked(outcome).await.left();
    app.exchange(client, &callback, &pkce).await
}

pub(crate) fn sid_of(tokens: &Value) -> String {
    jwt_part(tokens["id_token"].as_str().unwrap(), 1)["sid"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// The text of HTML-escaped attribute values (askama escapes with numeric references).
fn unescape(html: &str) -> String {
    html.replace("&#38;", "&")
        .replace("&amp;", "&")
        .replace("&#x2f;", "/")
        .replace("&#47;", "/")
}

/// Confirms the sign-out page in `browser`; returns the outcome of the confirmation.
async fn sign_out(app: &TestApp, browser: &Browser) -> crate::helpers::Outcome {
    let (page, _, html) = browser.open(&app.url("/logout")).await.page();
    browser
        .submit(&page, &html, &[("decision", "logout")])
        .await
}

async fn introspected_active(app: &TestApp, client: &TestClient, token: &str) -> bool {
    let body: Value = app
        .post_as(client, "/introspect", &[("token", token)])
        .await
        .json()
        .await
        .unwrap();
    body["active"] == true
}

/// The first delivery row of session `sid` once `ready` holds for it (polled, with a
/// deadline).
async fn row_when(
    app: &TestApp,
    sid: &str,
    ready: impl Fn(&portcullis::store::LogoutDelivery) -> bool,
) -> portcullis::store::LogoutDelivery {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let rows = app.store.find_logout_deliveries(sid).unwrap();
        if let Some(row) = rows.first().filter(|r| ready(r)) {
            return row.clone();
        }
        assert!(std::time::Instant::now() < deadline, "deliveries: {rows:?}");
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
}

/// Waits until every delivery of session `sid` is settled as delivered.
async fn delivered(app: &TestApp, sid: &str, expected: usize) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let rows = app.store.find_logout_deliveries(sid).unwrap();
        if rows.len() == expected && rows.iter().all(|r| r.delivered_at.is_some()) {
            return;
        }
        assert!(std::time::Instant::now() < deadline, "deliveries: {rows:?}");
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
}

#[tokio::test]
async fn signing_out_posts_one_valid_logout_token_to_each_client_of_the_session() {
    let app = spawn_app().await;
    let alice = app.add_user("alice").await;
    let receiver = Receiver::start().await;
    let (first, second) = (
        listening_client(&app, &receiver, "first"),
        listening_client(&app, &receiver, "second"),
    );
    // Listens, but never got tokens in this session: not told.
    let _bystander = listening_client(&app, &receiver, "bystander");
    let browser = app.browser();
    let tokens = tokens_in(&app, &browser, &first).await;
    let second_tokens = tokens_in(&app, &browser, &second).await;
    let sid = sid_of(&tokens);
    assert_eq!(sid, sid_of(&second_tokens), "one SSO session");

    let before = app.clock.now();
    let outcome = sign_out(&app, &browser).await;
    assert_eq!(outcome.page().1, StatusCode::OK);
    delivered(&app, &sid, 2).await;

    let received = receiver.received();
    let mut paths: Vec<&str> = received.iter().map(|r| r.path.as_str()).collect();
    paths.sort();
    assert_eq!(paths, ["/bc/first", "/bc/second"], "one POST per client");
    for (r, client) in [("/bc/first", &first), ("/bc/second", &second)] {
        let token = received
            .iter()
            .find(|x| x.path == r)
            .unwrap()
            .token
            .clone()
            .unwrap();
        let claims = verify_logout_token(&token, &app.issuer, &client.id).await;
        assert_eq!(claims["sub"], alice.as_str());
        assert_eq!(claims["sid"], sid.as_str());
        assert!(claims["iat"].as_i64().unwrap() >= before);
    }
    let metrics = app.metrics_text().await;
    assert!(
        metrics.contains("portcullis_backchannel_logout_deliveries_total{outcome=\"delivered\"} 2"),
        "{metrics}"
    );

    // The tokens of the session died with it, offline ones included.
    for (client, tokens) in [(&first, &tokens), (&second, &second_tokens)] {
        let access = tokens["access_token"].as_str().unwrap();
        assert_eq!(app.userinfo_status(access).await, 401);
        assert!(!introspected_active(&app, client, access).await);
        let refresh = tokens["refresh_token"].as_str().unwrap();
        assert!(!introspected_active(&app, client, refresh).await);
        assert_eq!(app.refresh(client, refresh, &[]).await.status(), 400);
    }
    receiver.stop().await;
}

#[tokio::test]
async fn a_failed_delivery_is_retried_after_a_backoff() {
    let app = spawn_app().await;
    app.add_user("alice").await;
    let receiver = Receiver::start().await;
    let client = listening_client(&app, &receiver, "rp");
    let browser = app.browser();
    let tokens = tokens_in(&app, &browser, &client).await;
    let sid = sid_of(&tokens);
    receiver.fail_next(1);

    sign_out(&app, &browser).await;
    receiver.wait_for(1).await;
    // Not again before the backoff (2 s on the provider's clock, which stands still).
    let row = row_when(&app, &sid, |r| r.last_error.is_some()).await;
    assert_eq!(row.last_error.as_deref(), Some("HTTP 503"));
    assert_eq!(row.next_attempt_at, app.clock.now() + 2);
    assert_eq!(receiver.received().len(), 1);
    assert!(
        app.metrics_text()
            .await
            .contains("portcullis_backchannel_logout_deliveries_total{outcome=\"retried\"} 1")
    );

    app.clock.advance(2);
    let received = receiver.wait_for(2).await;
    delivered(&app, &sid, 1).await;
    assert_eq!(received.len(), 2, "one failure, one success");
    let token = received[1].token.clone().unwrap();
    verify_logout_token(&token, &app.issuer, &client.id).await;
    let row = &app.store.find_logout_deliveries(&sid).unwrap()[0];
    assert_eq!(row.attempts, 2);
    receiver.stop().await;
}

#[tokio::test]
async fn a_relying_party_that_never_answers_is_given_up_after_five_attempts() {
    let app = spawn_app().await;
    app.add_user("alice").await;
    let receiver = Receiver::start().await;
    let client = listening_client(&app, &receiver, "rp");
    let browser = app.browser();
    let sid = sid_of(&tokens_in(&app, &browser, &client).await);
    receiver.fail_next(100);

    sign_out(&app, &browser).await;
    for attempt in 1..=5 {
        receiver.wait_for(attempt).await;
        // Let the failure be recorded (no longer leased), then move past its backoff.
        let now = app.clock.now();
        row_when(&app, &sid, |row| {
            let settled = row.failed_at.is_some() || row.next_attempt_at <= now + 16;
            row.attempts == attempt as i32 && row.last_error.is_some() && settled
        })
        .await;
        app.clock.advance(16);
    }
    let row = app.store.find_logout_deliveries(&sid).unwrap().remove(0);
    assert!(row.failed_at.is_some(), "given up: {row:?}");
    // Given up for good: no claim, however late, takes it again (rather than waiting to
    // see nothing happen).
    let later = app.clock.now() + 100_000;
    assert!(
        app.store
            .claim_logout_deliveries(later, later + 60, 10)
            .unwrap()
            .is_empty()
    );
    assert_eq!(receiver.received().len(), 5, "no sixth attempt");
    assert!(
        app.metrics_text()
            .await
            .contains("portcullis_backchannel_logout_deliveries_total{outcome=\"failed\"} 1")
    );
    receiver.stop().await;
}

#[tokio::test]
async fn a_logout_queued_while_the_provider_was_down_is_delivered_after_it_restarts() {
    let app = spawn_app().await;
    app.add_user("alice").await;
    let receiver = Receiver::start().await;
    let client = listening_client(&app, &receiver, "rp");
    let browser = app.browser();
    let tokens = tokens_in(&app, &browser, &client).await;
    let sid = sid_of(&tokens);
    let (dir, port) = (app.dir.clone(), app.port);
    app.stop().await;

    // The operator ends the session while no provider runs: only the outbox knows.
    let db = format!("sqlite://{}/portcullis.db", dir.path().display());
    let out = crate::cli::portcullis_on(&db, &[], &["sessions", "end", &sid], None);
    assert!(out.status.success(), "{out:?}");
    assert!(receiver.received().is_empty());

    let app = spawn_app_with(Options {
        dir: Some(dir),
        port: Some(port),
        ..Options::default()
    })
    .await;
    let received = receiver.wait_for(1).await;
    let claims = verify_logout_token(
        received[0].token.as_deref().unwrap(),
        &app.issuer,
        &client.id,
    )
    .await;
    assert_eq!(claims["sid"], sid.as_str());
    delivered(&app, &sid, 1).await;
    // The ended session is honoured though this instance's session store still holds it.
    let (url, _) = app.authorize_url(&client, &[("prompt", "none")]);
    assert_eq!(
        query(&browser.open(&url).await.left(), "error").as_deref(),
        Some("login_required")
    );
    receiver.stop().await;
}

#[tokio::test]
async fn an_expired_session_is_announced_and_ends_what_depended_on_it_but_not_offline_access() {
    let app = spawn_app().await;
    app.add_user("alice").await;
    let receiver = Receiver::start().await;
    let client = listening_client(&app, &receiver, "rp");
    let browser = app.browser();
    let offline = tokens_in(&app, &browser, &client).await;
    let sid = sid_of(&offline);
    // A second app of the same session, without offline access.
    let online_client = app.add_client(false);
    let (url, pkce) = app.authorize_url(&online_client, &[]);
    let callback = browser
        .consent_if_asked(browser.open(&url).await)
        .await
        .left();
    let online = app.exchange(&online_client, &callback, &pkce).await;
    assert_eq!(sid_of(&online), sid);

    app.clock.advance(86_400);
    let received = receiver.wait_for(1).await;
    let claims = verify_logout_token(
        received[0].token.as_deref().unwrap(),
        &app.issuer,
        &client.id,
    )
    .await;
    assert_eq!(claims["sid"], sid.as_str());
    assert_eq!(
        app.userinfo_status(online["access_token"].as_str().unwrap())
            .await,
        401,
        "the online grant ended with the session"
    );
    // OIDC Core §11: offline access outlives the session.
    let refresh = offline["refresh_token"].as_str().unwrap();
    assert_eq!(
        app.refresh(&client, refresh, &[]).await.status(),
        StatusCode::OK
    );
    receiver.stop().await;
}

#[tokio::test]
async fn a_consent_given_in_a_session_ended_elsewhere_is_not_recorded() {
    let app = spawn_app().await;
    let alice = app.add_user("alice").await;
    let (first, second) = (app.add_client(false), app.add_client(false));
    let browser = app.browser();
    let (url, _) = app.authorize_url(&first, &[]);
    browser.sign_in(&url, "alice").await;
    let (url, _) = app.authorize_url(&second, &[]);
    let (page, _, html) = browser.open(&url).await.page();
    assert!(page.path().ends_with("/consent"));
    let sid = app
        .store
        .list_user_sessions(&alice, app.clock.now())
        .unwrap()[0]
        .sid
        .clone();
    let db = format!("sqlite://{}/portcullis.db", app.dir.path().display());
    assert!(
        crate::cli::portcullis_on(&db, &[], &["sessions", "end", &sid], None)
            .status
            .success()
    );

    let outcome = browser.submit(&page, &html, &[("decision", "allow")]).await;
    assert!(outcome.is_page("/login"), "signed out: a sign-in first");
    assert!(
        app.store
            .find_consent(&alice, &second.id)
            .unwrap()
            .is_none()
    );
}

#[tokio::test]
async fn the_account_sign_in_is_not_a_consent_request() {
    let app = spawn_app().await;
    let browser = app.browser();
    let (login, _, _) = browser.open(&app.url("/account")).await.page();
    let id = query(&login, "id").unwrap();
    let (_, status, html) = browser
        .open(&app.url(&format!("/consent?id={id}")))
        .await
        .page();
    assert_eq!(status, StatusCode::BAD_REQUEST, "{html}");
}

#[tokio::test]
async fn a_code_from_a_session_that_ended_before_redemption_makes_no_tokens() {
    let app = spawn_app().await;
    app.add_user("alice").await;
    let client = app.add_client(false);
    let browser = app.browser();
    let (url, pkce) = app.authorize_url(&client, &[]);
    let callback = browser.sign_in(&url, "alice").await;
    sign_out(&app, &browser).await;
    let code = query(&callback, "code").unwrap();
    let response = app.redeem(&client, &code, Some(&pkce.verifier)).await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"], "invalid_grant");
}

#[tokio::test]
async fn the_signed_out_page_loads_each_front_channel_uri_then_continues() {
    let app = spawn_app().await;
    app.add_user("alice").await;
    let front = |path: &str| ClientDraft {
        redirect_uris: vec![format!("https://rp.example:8443/{path}/cb")],
        frontchannel_logout_uri: Some(format!("https://rp.example:8443/{path}/fc?tenant=7")),
        frontchannel_logout_session_required: Some(true),
        post_logout_redirect_uris: vec!["https://rp.example:8443/bye".into()],
        ..ClientDraft::default()
    };
    let (one, two) = (
        app.add_client_with(front("one")),
        app.add_client_with(front("two")),
    );
    let quiet = app.add_client(false);
    let browser = app.browser();
    let mut sid = String::new();
    for client in [&one, &two, &quiet] {
        let (url, pkce) = app.authorize_url(client, &[]);
        let mut outcome = browser.open(&url).await;
        if outcome.is_page("/login") {
            outcome = browser.login(outcome, "alice").await;
        }
        let callback = browser.consent_if_asked(outcome).await.left();
        let tokens = app.exchange(client, &callback, &pkce).await;
        sid = sid_of(&tokens);
    }

    let logout = format!(
        "/logout?client_id={}&post_logout_redirect_uri=https%3A%2F%2Frp.example%3A8443%2Fbye&state=s1",
        one.id
    );
    let (page, _, html) = browser.open(&app.url(&logout)).await.page();
    let _ = page;
    let action = app.url("/logout/confirm");
    let mut form = crate::helpers::hidden_inputs(&html);
    form.push(("decision".into(), "logout".into()));
    let response = browser.http.post(action).form(&form).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK, "a page, not a redirect");
    let csp = response.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    let html = response.text().await.unwrap();

    let frames: Vec<String> = html
        .split("<iframe")
        .skip(1)
        .map(|tag| {
            let src = tag.split("src=\"").nth(1).unwrap();
            unescape(&src[..src.find('"').unwrap()])
        })
        .collect();
    let issuer: String = url::form_urlencoded::byte_serialize(app.issuer.as_bytes()).collect();
    let mut expected: Vec<String> = ["one", "two"]
        .iter()
        .map(|p| format!("https://rp.example:8443/{p}/fc?tenant=7&iss={issuer}&sid={sid}"))
        .collect();
    let mut got = frames.clone();
    got.sort();
    expected.sort();
    assert_eq!(got, expected, "one hidden iframe per front-channel client");
    assert_eq!(
        html.matches(r#"sandbox="allow-scripts allow-same-origin" hidden></iframe>"#)
            .count(),
        2,
        "hidden, and unable to navigate the page or open windows"
    );

    // Those frames and nothing more: the two exact paths, our own script, no inline code.
    let frame_src = csp
        .split(';')
        .map(str::trim)
        .find(|d| d.starts_with("frame-src"))
        .unwrap();
    let mut sources: Vec<&str> = frame_src.split(' ').skip(1).collect();
    sources.sort();
    assert_eq!(
        sources,
        [
            "https://rp.example:8443/one/fc",
            "https://rp.example:8443/two/fc"
        ]
    );
    assert!(csp.contains("script-src 'self'"), "{csp}");
    assert!(csp.contains("default-src 'none'"), "{csp}");
    assert!(!csp.contains("unsafe-inline"), "{csp}");
    let plain = unescape(&html);
    assert!(
        plain.contains("href=\"https://rp.example:8443/bye?state=s1\""),
        "continues to the post-logout redirect with state: {html}"
    );
    assert!(html.contains("/static/frontchannel.js"));
    let script = crate::helpers::get(app.url("/static/frontchannel.js"))
        .await
        .unwrap();
    assert_eq!(script.status(), StatusCode::OK);
    assert!(script.text().await.unwrap().contains("location.replace"));
}

#[tokio::test]
async fn without_front_channel_clients_signing_out_redirects_at_once() {
    let app = spawn_app().await;
    app.add_user("alice").await;
    let client = app.add_client_with(ClientDraft {
        post_logout_redirect_uris: vec!["http://127.0.0.1:1/bye".into()],
        ..ClientDraft::default()
    });
    let browser = app.browser();
    let (url, _) = app.authorize_url(&client, &[]);
    browser.sign_in(&url, "alice").await;
    let logout = format!(
        "/logout?client_id={}&post_logout_redirect_uri=http%3A%2F%2F127.0.0.1%3A1%2Fbye",
        client.id
    );
    let (page, _, html) = browser.open(&app.url(&logout)).await.page();
    let back = browser
        .submit(&page, &html, &[("decision", "logout")])
        .await
        .left();
    assert_eq!(back.path(), "/bye");
}

#[tokio::test]
async fn discovery_announces_both_logout_channels_with_sessions() {
    let app = spawn_app().await;
    let doc = app.get_json("/.well-known/openid-configuration").await;
    for name in [
        "backchannel_logout_supported",
        "backchannel_logout_session_supported",
        "frontchannel_logout_supported",
        "frontchannel_logout_session_supported",
    ] {
        assert_eq!(doc[name], true, "{name}");
    }
}

#[tokio::test]
async fn registration_accepts_logout_uris_and_refuses_bad_ones() {
    let app = spawn_app_with(Options {
        env: vec![("REGISTRATION", "open".into())],
        ..Options::default()
    })
    .await;
    let register = |body: Value| {
        let url = app.url("/register");
        async move {
            crate::helpers::http()
                .post(url)
                .json(&body)
                .send()
                .await
                .unwrap()
        }
    };
    let ok = register(serde_json::json!({
        "redirect_uris": ["https://rp.example/cb"],
        "backchannel_logout_uri": "https://rp.example/backchannel",
        "backchannel_logout_session_required": true,
        "frontchannel_logout_uri": "https://rp.example/frontchannel",
        "frontchannel_logout_session_required": true,
    }))
    .await;
    assert_eq!(ok.status(), StatusCode::CREATED);
    let body: Value = ok.json().await.unwrap();
    assert_eq!(
        body["backchannel_logout_uri"],
        "https://rp.example/backchannel"
    );
    assert_eq!(body["backchannel_logout_session_required"], true);
    assert_eq!(
        body["frontchannel_logout_uri"],
        "https://rp.example/frontchannel"
    );
    assert_eq!(body["frontchannel_logout_session_required"], true);
    let stored = app
        .store
        .find_client(body["client_id"].as_str().unwrap())
        .unwrap()
        .unwrap();
    assert!(stored.backchannel_logout.unwrap().session_required);

    for (field, bad) in [
        ("backchannel_logout_uri", "http://rp.example/backchannel"),
        (
            "backchannel_logout_uri",
            "https://rp.example/backchannel#frag",
        ),
        (
            "frontchannel_logout_uri",
            "https://elsewhere.example/frontchannel",
        ),
        ("frontchannel_logout_uri", "https://rp.example/fc#frag"),
    ] {
        let response = register(serde_json::json!({
            "redirect_uris": ["https://rp.example/cb"],
            field: bad,
        }))
        .await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{field} {bad}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"], "invalid_client_metadata", "{field} {bad}");
    }
    let not_bool = register(serde_json::json!({
        "redirect_uris": ["https://rp.example/cb"],
        "backchannel_logout_uri": "https://rp.example/bc",
        "backchannel_logout_session_required": "yes",
    }))
    .await;
    assert_eq!(not_bool.status(), StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn signing_in_again_keeps_the_session_so_signing_out_reaches_both_apps() {
    let app = spawn_app().await;
    app.add_user("alice").await;
    let receiver = Receiver::start().await;
    let (first, second) = (
        listening_client(&app, &receiver, "first"),
        listening_client(&app, &receiver, "second"),
    );
    let browser = app.browser();
    let tokens = tokens_in(&app, &browser, &first).await;
    // The second app insists on a fresh login: a new cookie, the same session.
    let (url, pkce) = app.authorize_url(&second, &[("prompt", "login consent")]);
    let outcome = browser.login(browser.open(&url).await, "alice").await;
    let callback = browser.consent_if_asked(outcome).await.left();
    let again = app.exchange(&second, &callback, &pkce).await;
    assert_eq!(sid_of(&again), sid_of(&tokens));
    let claims = jwt_part(again["id_token"].as_str().unwrap(), 1);
    assert!(
        claims["auth_time"].as_i64()
            >= jwt_part(tokens["id_token"].as_str().unwrap(), 1)["auth_time"].as_i64()
    );

    sign_out(&app, &browser).await;
    assert_eq!(receiver.wait_for(2).await.len(), 2);
    assert_eq!(
        app.userinfo_status(tokens["access_token"].as_str().unwrap())
            .await,
        401
    );
    receiver.stop().await;
}

#[tokio::test]
async fn another_user_signing_in_in_the_same_browser_ends_the_first_users_session() {
    let app = spawn_app().await;
    app.add_user("alice").await;
    app.add_user("bob").await;
    let receiver = Receiver::start().await;
    let client = listening_client(&app, &receiver, "rp");
    let browser = app.browser();
    let alices = tokens_in(&app, &browser, &client).await;
    let (url, _) = app.authorize_url(&client, &[("prompt", "login")]);
    browser.login(browser.open(&url).await, "bob").await;

    let received = receiver.wait_for(1).await;
    let claims = verify_logout_token(
        received[0].token.as_deref().unwrap(),
        &app.issuer,
        &client.id,
    )
    .await;
    assert_eq!(claims["sid"], sid_of(&alices).as_str());
    assert_eq!(
        app.userinfo_status(alices["access_token"].as_str().unwrap())
            .await,
        401
    );
    receiver.stop().await;
}
