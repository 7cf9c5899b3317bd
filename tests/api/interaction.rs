//! The interaction between /authorize and the pages: bound to the browser that started
//! it, CSRF tokens that work in that browser only, and a session store that holds no
//! credential.

use reqwest::StatusCode;

use crate::backends::TempRedis;
use crate::helpers::{
    Browser, Options, PASSWORD, TestApp, hidden_inputs, set_cookie, spawn_app, spawn_app_with,
};

fn cookie_value(set_cookie_header: &str) -> String {
    let pair = set_cookie_header.split(';').next().unwrap();
    pair.split_once('=').unwrap().1.to_owned()
}

#[tokio::test]
async fn another_browser_cannot_open_a_pending_requests_pages_or_post_its_forms() {
    let app = spawn_app().await;
    app.add_user("alice").await;
    let client = app.add_client(false);
    let victim = app.browser();
    let (url, _) = app.authorize_url(&client, &[]);
    let (login_url, status, html) = victim.open(&url).await.page();
    assert_eq!(status, StatusCode::OK);
    let victims_form = hidden_inputs(&html);

    // Someone who learnt the request's id, without the victim's cookies.
    let attacker = app.browser();
    let (_, status, page) = attacker.open(login_url.as_str()).await.page();
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(page.contains("another browser"), "{page}");
    assert!(hidden_inputs(&page).iter().all(|(name, _)| name != "csrf"));

    // The victim's own form token is worthless in another browser.
    let mut form = victims_form.clone();
    form.push(("username".into(), "alice".into()));
    form.push(("password".into(), PASSWORD.into()));
    let response = attacker
        .http
        .post(app.url("/login"))
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);

    // And the victim is not disturbed.
    let callback = victim
        .consent_if_asked(
            victim
                .login(victim.open(login_url.as_str()).await, "alice")
                .await,
        )
        .await
        .left();
    assert!(crate::helpers::query(&callback, "code").is_some());
}

#[tokio::test]
async fn a_browser_id_the_client_made_up_is_replaced_not_trusted() {
    let app = spawn_app().await;
    let client = app.add_client(false);
    let (url, _) = app.authorize_url(&client, &[]);
    let planted = "a".repeat(43);
    let response = crate::helpers::http_builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .get(&url)
        .header("cookie", format!("portcullis_browser={planted}"))
        .send()
        .await
        .unwrap();
    let issued = set_cookie(&response, "portcullis_browser").expect("a browser id is issued");
    assert_ne!(cookie_value(&issued), planted);
}

#[tokio::test]
async fn a_continue_link_works_only_in_the_browser_that_posted_the_request() {
    let app = spawn_app().await;
    let client = app.add_client(false);
    let (url, _) = app.authorize_url(&client, &[]);
    let (endpoint, query) = url.split_once('?').unwrap();
    let poster = app.browser();
    let posted = poster
        .http
        .post(endpoint)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(query.to_owned())
        .send()
        .await
        .unwrap();
    assert_eq!(posted.status(), StatusCode::SEE_OTHER);
    let location = posted.headers()["location"].to_str().unwrap().to_owned();
    let continue_url = format!("http://127.0.0.1:{}{location}", app.port);

    let (_, status, page) = app.browser().open(&continue_url).await.page();
    assert_eq!(
        status,
        StatusCode::BAD_REQUEST,
        "a link passed to someone else"
    );
    assert!(page.contains("another browser"));
    assert!(poster.open(&continue_url).await.is_page("/login"));
}

/// Every value the store holds, as one string to search.
async fn store_contents(app: &TestApp) -> String {
    app.sessions.values().await.unwrap().join("\n")
}

async fn nothing_in_the_store_rebuilds_a_credential(app: &TestApp) {
    app.add_user("alice").await;
    let client = app.add_client(false);
    let browser: Browser = app.browser();
    let (url, _) = app.authorize_url(&client, &[]);
    let login = browser.open(&url).await;
    let (login_url, _, html) = login.page();
    let login_csrf = hidden_inputs(&html)
        .into_iter()
        .find(|(n, _)| n == "csrf")
        .unwrap()
        .1;
    let mut form = hidden_inputs(&html);
    form.push(("username".into(), "alice".into()));
    form.push(("password".into(), PASSWORD.into()));
    let response = browser
        .http
        .post(login_url.join("login").unwrap())
        .form(&form)
        .send()
        .await
        .unwrap();
    let session = cookie_value(&set_cookie(&response, "portcullis_session").unwrap());
    // The consent page is pending now, with its own form token.
    let (_, _, consent) = browser.follow(response).await.page();
    let consent_csrf = hidden_inputs(&consent)
        .into_iter()
        .find(|(n, _)| n == "csrf")
        .unwrap()
        .1;
    let contents = store_contents(app).await;
    assert!(!contents.is_empty());
    for (what, secret) in [
        ("the session cookie", session.as_str()),
        ("the login form token", login_csrf.as_str()),
        ("the consent form token", consent_csrf.as_str()),
    ] {
        assert!(
            !contents.contains(secret),
            "the store holds {what}: {contents}"
        );
    }
}

#[tokio::test]
async fn the_in_process_store_holds_nothing_that_rebuilds_a_cookie_or_form_token() {
    nothing_in_the_store_rebuilds_a_credential(&spawn_app().await).await;
}

#[tokio::test]
async fn redis_holds_nothing_that_rebuilds_a_cookie_or_form_token() {
    let Some(redis) = TempRedis::create() else {
        return;
    };
    let app = spawn_app_with(Options {
        env: vec![
            ("REDIS_URL", redis.url.clone()),
            ("REDIS_PREFIX", redis.prefix.clone()),
        ],
        ..Default::default()
    })
    .await;
    nothing_in_the_store_rebuilds_a_credential(&app).await;
    assert!(!redis.keys().is_empty(), "the records are in Redis");
}

/// The same login form posted twice at once, to `a` and to `b`: one wins, and the loser
/// leaves no session behind.
async fn one_session_from_two_simultaneous_submissions(a: &TestApp, b: &TestApp) {
    a.add_user("alice").await;
    let client = a.add_client(false);
    let browser = a.browser();
    let (url, _) = a.authorize_url(&client, &[]);
    let (login_url, _, html) = browser.open(&url).await.page();
    let mut form = hidden_inputs(&html);
    form.push(("username".into(), "alice".into()));
    form.push(("password".into(), PASSWORD.into()));
    let post = |app: &TestApp| {
        let mut target = login_url.join("login").unwrap();
        target.set_port(Some(app.port)).unwrap();
        browser.http.post(target).form(&form).send()
    };
    let (x, y) = futures::join!(post(a), post(b));
    let statuses = [x.unwrap().status(), y.unwrap().status()];
    assert!(
        statuses.contains(&StatusCode::SEE_OTHER) && statuses.contains(&StatusCode::BAD_REQUEST),
        "{statuses:?}"
    );
    let sessions = a
        .sessions
        .values()
        .await
        .unwrap()
        .into_iter()
        .filter(|v| v.contains("\"sid\""))
        .count();
    assert_eq!(sessions, 1, "the losing submission left nothing behind");
}

#[tokio::test]
async fn two_simultaneous_submissions_of_one_login_form_leave_one_session() {
    let app = spawn_app().await;
    one_session_from_two_simultaneous_submissions(&app, &app).await;
}

#[tokio::test]
async fn two_instances_given_one_login_form_at_once_leave_one_session() {
    let Some(redis) = TempRedis::create() else {
        return;
    };
    let dir = tempfile::TempDir::new().unwrap();
    let options = Options {
        env: vec![
            ("REDIS_URL", redis.url.clone()),
            ("REDIS_PREFIX", redis.prefix.clone()),
        ],
        database_url: Some(format!("sqlite://{}/shared.db", dir.path().display())),
        ..Default::default()
    };
    let a = spawn_app_with(options.clone()).await;
    let b = spawn_app_with(options).await;
    one_session_from_two_simultaneous_submissions(&a, &b).await;
}

/// One address opens `limit` pending requests within a minute; the next one gets 429.
async fn pending_requests_per_address_are_limited_to(limit: usize, app: &TestApp) {
    let client = app.add_client(false);
    let (url, _) = app.authorize_url(&client, &[]);
    let http = crate::helpers::http_builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let mut statuses = Vec::new();
    for _ in 0..=limit {
        statuses.push(http.get(&url).send().await.unwrap().status());
    }
    assert!(
        statuses[..limit]
            .iter()
            .all(|s| *s == StatusCode::SEE_OTHER)
    );
    assert_eq!(statuses[limit], StatusCode::TOO_MANY_REQUESTS);
    let stored = app.sessions.values().await.unwrap().len();
    assert!(stored <= limit + 1, "{stored} records");
}

#[tokio::test]
async fn one_address_cannot_flood_the_store_with_pending_requests() {
    let app = spawn_app_with(Options {
        env: vec![("PENDING_SIGN_INS_PER_ADDRESS", "10".into())],
        ..Default::default()
    })
    .await;
    pending_requests_per_address_are_limited_to(10, &app).await;
}

#[tokio::test]
async fn by_default_an_office_signing_in_at_nine_is_not_stopped_at_120_a_minute() {
    let app = spawn_app().await;
    pending_requests_per_address_are_limited_to(600, &app).await;
}

#[tokio::test]
async fn a_form_posted_from_a_sibling_origin_is_refused_even_with_our_cookies_and_token() {
    let app = spawn_app().await;
    app.add_user("alice").await;
    let client = app.add_client(false);
    let browser = app.browser();
    let (url, _) = app.authorize_url(&client, &[]);
    let (login_url, _, html) = browser.open(&url).await.page();
    let mut form = hidden_inputs(&html);
    form.push(("username".into(), "alice".into()));
    form.push(("password".into(), PASSWORD.into()));
    let post = |origin: String| {
        browser
            .http
            .post(login_url.join("login").unwrap())
            .header("origin", origin)
            .form(&form)
            .send()
    };
    // Cookies do not tell ports apart; Origin does.
    let sibling = post("http://127.0.0.1:1".into()).await.unwrap();
    assert_eq!(sibling.status(), StatusCode::BAD_REQUEST);
    let ours = post(format!("http://127.0.0.1:{}", app.port))
        .await
        .unwrap();
    assert_eq!(
        ours.status(),
        StatusCode::SEE_OTHER,
        "our own page's form works"
    );
}
