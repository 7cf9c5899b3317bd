//! Login and consent pages: CSRF, one message for every failure, deny.

use reqwest::StatusCode;

use crate::helpers::{PASSWORD, query, spawn_app};

#[tokio::test]
async fn login_post_without_a_valid_csrf_token_is_refused_and_logs_nobody_in() {
    let app = spawn_app().await;
    app.add_user("alice").await;
    let client = app.add_client(false);
    let (url, _) = app.authorize_url(&client, &[]);
    let browser = app.browser();
    let (login_url, _, html) = browser.open(&url).await.page();
    let forged = browser
        .submit(
            &login_url,
            &html,
            &[
                ("csrf", "forged"),
                ("username", "alice"),
                ("password", PASSWORD),
            ],
        )
        .await;
    let (_, status, _) = forged.page();
    assert_eq!(status, StatusCode::BAD_REQUEST);
    // Still nobody signed in: the next request shows the login form again.
    assert!(browser.open(&url).await.is_page("/login"));
    let (url, _) = app.authorize_url(&client, &[("prompt", "none")]);
    let callback = browser.open(&url).await.left();
    assert_eq!(query(&callback, "error").as_deref(), Some("login_required"));
}

#[tokio::test]
async fn login_form_posted_from_another_browser_is_refused() {
    let app = spawn_app().await;
    app.add_user("alice").await;
    let client = app.add_client(false);
    let (url, _) = app.authorize_url(&client, &[]);
    let (login_url, _, html) = app.browser().open(&url).await.page();
    // A second browser (the victim of login CSRF) posts the attacker's form verbatim.
    let outcome = app
        .browser()
        .submit(
            &login_url,
            &html,
            &[("username", "alice"), ("password", PASSWORD)],
        )
        .await;
    assert_eq!(outcome.page().1, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn unknown_user_and_wrong_password_get_the_same_message() {
    let app = spawn_app().await;
    app.add_user("alice").await;
    let client = app.add_client(false);
    let (url, _) = app.authorize_url(&client, &[]);
    let browser = app.browser();
    let mut bodies = Vec::new();
    for (user, password) in [("alice", "wrong"), ("nobody", PASSWORD)] {
        let (login_url, _, html) = browser.open(&url).await.page();
        let (page_url, status, html) = browser
            .submit(
                &login_url,
                &html,
                &[("username", user), ("password", password)],
            )
            .await
            .page();
        assert_eq!(page_url.path(), "/login");
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert!(html.contains("Incorrect username or password."));
        bodies.push(html.replace(user, "USER"));
    }
    let strip = |h: &str| {
        h.lines()
            .filter(|l| !l.contains("name=\"id\"") && !l.contains("name=\"csrf\""))
            .collect::<Vec<_>>()
            .join("\n")
    };
    assert_eq!(strip(&bodies[0]), strip(&bodies[1]));
}

#[tokio::test]
async fn consent_page_names_the_client_and_each_scope_and_deny_redirects_access_denied() {
    let app = spawn_app().await;
    app.add_user("alice").await;
    let client = app.add_client(false);
    let (url, _) = app.authorize_url(&client, &[]);
    let browser = app.browser();
    let consent = browser.login(browser.open(&url).await, "alice").await;
    let (consent_url, _, html) = consent.page();
    assert_eq!(consent_url.path(), "/consent");
    assert!(html.contains("Test App"));
    for words in ["Sign you in", "See your profile", "See your email address"] {
        assert!(html.contains(words), "{words}");
    }
    assert!(
        html.contains("name=\"decision\" value=\"allow\"")
            && html.contains("name=\"decision\" value=\"deny\"")
    );
    let callback = browser
        .submit(&consent_url, &html, &[("decision", "deny")])
        .await
        .left();
    assert_eq!(query(&callback, "error").as_deref(), Some("access_denied"));
    assert_eq!(query(&callback, "state").as_deref(), Some("st-123"));
}

#[tokio::test]
async fn consent_is_remembered_for_the_same_or_fewer_scopes_only() {
    let app = spawn_app().await;
    app.add_user("alice").await;
    let client = app.add_client(false);
    let browser = app.browser();
    let (url, _) = app.authorize_url(&client, &[("scope", "openid profile")]);
    browser.sign_in(&url, "alice").await;
    let (fewer, _) = app.authorize_url(&client, &[("scope", "openid")]);
    assert!(query(&browser.open(&fewer).await.left(), "code").is_some());
    let (more, _) = app.authorize_url(&client, &[("scope", "openid email")]);
    assert!(browser.open(&more).await.is_page("/consent"));
}

#[tokio::test]
async fn pages_are_not_cacheable_not_framable_and_styled() {
    let app = spawn_app().await;
    let client = app.add_client(false);
    let (url, _) = app.authorize_url(&client, &[]);
    let browser = app.browser();
    let first = browser.http.get(&url).send().await.unwrap();
    let cookies: Vec<String> = first
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .collect();
    assert!(
        cookies
            .iter()
            .all(|c| c.contains("HttpOnly") && c.contains("SameSite=Lax")),
        "{cookies:?}"
    );
    let page = browser.follow(first).await;
    let (login_url, _, html) = page.page();
    assert!(html.contains("name=\"username\"") && html.contains("name=\"password\""));
    assert!(!html.contains("<script"));
    let response = browser.http.get(login_url).send().await.unwrap();
    assert_eq!(response.headers()["cache-control"], "no-store");
    assert_eq!(response.headers()["x-frame-options"], "DENY");
    let css = crate::helpers::get(app.url("/static/style.css"))
        .await
        .unwrap();
    assert_eq!(css.status(), 200);
    assert!(
        css.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/css")
    );
}

#[tokio::test]
async fn an_expired_or_unknown_interaction_shows_an_error_page() {
    let app = spawn_app().await;
    let (_, status, html) = app
        .browser()
        .open(&app.url("/login?id=unknown"))
        .await
        .page();
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(html.contains("expired"));
}

#[tokio::test]
async fn a_malformed_login_post_gets_the_error_page() {
    let app = spawn_app().await;
    let response = crate::helpers::http()
        .post(app.url("/login"))
        .form(&[("username", "x")])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    assert!(response.text().await.unwrap().contains("invalid_request"));
}

#[tokio::test]
async fn cookies_are_secure_with_the_host_prefix_behind_tls() {
    let app = crate::helpers::spawn_app_with(crate::helpers::Options {
        env: vec![("COOKIE_SECURE", "true".into())],
        ..Default::default()
    })
    .await;
    let client = app.add_client(false);
    let (url, _) = app.authorize_url(&client, &[]);
    let response = crate::helpers::http_builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .get(&url)
        .send()
        .await
        .unwrap();
    let cookies: Vec<String> = response
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .collect();
    assert!(!cookies.is_empty());
    for cookie in cookies {
        assert!(cookie.starts_with("__Host-"), "{cookie}");
        assert!(
            cookie.contains("Secure") && cookie.contains("HttpOnly") && cookie.contains("Path=/"),
            "{cookie}"
        );
    }
}

#[tokio::test]
async fn repeated_failures_stop_that_address_for_that_name_but_not_the_owner_elsewhere() {
    let app = crate::helpers::spawn_app_with(crate::helpers::Options {
        env: vec![("TRUSTED_PROXIES", "127.0.0.1".into())],
        ..Default::default()
    })
    .await;
    app.add_user("alice").await;
    app.add_user("bob").await;
    let client = app.add_client(false);
    let (url, _) = app.authorize_url(&client, &[]);
    let attempt = |user: &'static str, password: &'static str, from: &'static str| {
        let (browser, url) = (app.browser(), url.clone());
        async move { sign_in_from(&browser, &url, user, password, from).await }
    };
    for _ in 0..5 {
        let (status, _) = attempt("alice", "wrong", "198.51.100.1").await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    }
    let (status, html) = attempt("alice", PASSWORD, "198.51.100.1").await;
    assert_eq!(
        status,
        StatusCode::TOO_MANY_REQUESTS,
        "even the right password waits"
    );
    assert!(html.contains("Too many sign-in attempts"));
    // Names are compared without case, and other accounts are unaffected.
    let (status, _) = attempt("ALICE", PASSWORD, "198.51.100.1").await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    let (status, _) = attempt("bob", PASSWORD, "198.51.100.1").await;
    assert_eq!(status, StatusCode::SEE_OTHER, "bob signs in");
    // The owner, elsewhere, is not locked out by a stranger's guesses.
    let (status, _) = attempt("alice", PASSWORD, "203.0.113.5").await;
    assert_eq!(
        status,
        StatusCode::SEE_OTHER,
        "alice signs in from her own address"
    );
}

/// Opens a new authorization request in `browser` and posts its login form from `from`
/// (an `X-Forwarded-For` address, the app trusting 127.0.0.1); the status and the page.
async fn sign_in_from(
    browser: &crate::helpers::Browser,
    url: &str,
    user: &str,
    password: &str,
    from: &str,
) -> (StatusCode, String) {
    let (login_url, _, html) = browser.open(url).await.page();
    let mut form = crate::helpers::hidden_inputs(&html);
    form.push(("username".into(), user.into()));
    form.push(("password".into(), password.into()));
    let response = browser
        .http
        .post(login_url.join("login").unwrap())
        .header("x-forwarded-for", from)
        .form(&form)
        .send()
        .await
        .unwrap();
    let status = response.status();
    (status, response.text().await.unwrap())
}

fn behind_a_proxy(mut env: Vec<(&'static str, String)>) -> crate::helpers::Options {
    env.push(("TRUSTED_PROXIES", "127.0.0.1".into()));
    crate::helpers::Options {
        env,
        ..Default::default()
    }
}

#[tokio::test]
async fn colleagues_failures_under_other_names_do_not_keep_a_person_from_the_same_address_out() {
    // One address, many people (an office's NAT): 55 failed passwords under 55 names, more
    // than the 50 that once shut the whole address out for 15 minutes.
    let app = crate::helpers::spawn_app_with(behind_a_proxy(vec![])).await;
    app.add_user("carol").await;
    let client = app.add_client(false);
    let (url, _) = app.authorize_url(&client, &[]);
    let office = "198.51.100.7";
    for i in 0..55 {
        let name = format!("colleague-{i}");
        let (status, _) = sign_in_from(&app.browser(), &url, &name, "typo", office).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "failure {i}");
    }
    let (status, _) = sign_in_from(&app.browser(), &url, "carol", PASSWORD, office).await;
    assert_eq!(status, StatusCode::SEE_OTHER, "carol signs in");
}

#[tokio::test]
async fn past_password_failures_per_address_attempts_are_spaced_not_refused() {
    let app = crate::helpers::spawn_app_with(behind_a_proxy(vec![(
        "PASSWORD_FAILURES_PER_ADDRESS",
        "2".into(),
    )]))
    .await;
    app.add_user("carol").await;
    let client = app.add_client(false);
    let (url, _) = app.authorize_url(&client, &[]);
    let office = "198.51.100.8";
    let (status, _) = sign_in_from(&app.browser(), &url, "dave", "typo", office).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    // The last attempt within the budget of two takes the first place in the address's
    // queue; each further attempt comes a second after the one before it. Nothing is
    // refused.
    let started = std::time::Instant::now();
    let (status, _) = sign_in_from(&app.browser(), &url, "erin", "typo", office).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _) = sign_in_from(&app.browser(), &url, "frank", "typo", office).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "checked, not refused");
    let first_past = started.elapsed();
    let (status, _) = sign_in_from(&app.browser(), &url, "carol", PASSWORD, office).await;
    assert_eq!(status, StatusCode::SEE_OTHER, "carol signs in");
    assert!(
        first_past >= std::time::Duration::from_secs(1)
            && started.elapsed() >= std::time::Duration::from_secs(2),
        "each attempt past the budget waited its turn: {first_past:?}, {:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn the_eleventh_attempt_on_an_account_is_the_first_to_wait() {
    let app = crate::helpers::spawn_app_with(behind_a_proxy(vec![])).await;
    app.add_user("gina").await;
    let client = app.add_client(false);
    let (url, _) = app.authorize_url(&client, &[]);
    // From ten addresses (each under its own five per name), so only the account counts.
    let mut tenth = std::time::Instant::now();
    for n in 1..=10 {
        let from = format!("198.51.100.{n}");
        tenth = std::time::Instant::now();
        let (status, _) = sign_in_from(&app.browser(), &url, "gina", "typo", &from).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    }
    // The tenth took the first place in the account's queue (at once); the eleventh comes
    // a second after it.
    let (status, _) = sign_in_from(&app.browser(), &url, "gina", PASSWORD, "198.51.100.11").await;
    assert_eq!(
        status,
        StatusCode::SEE_OTHER,
        "the right password, after its wait"
    );
    assert!(
        tenth.elapsed() >= std::time::Duration::from_secs(1),
        "the eleventh attempt went straight through: {:?} after the tenth began",
        tenth.elapsed()
    );
}

#[tokio::test]
async fn a_browser_that_signed_in_before_gets_in_though_its_address_spent_the_names_attempts() {
    let app = crate::helpers::spawn_app_with(behind_a_proxy(vec![])).await;
    app.add_user("alice").await;
    let client = app.add_client(false);
    let own_browser = app.signed_in(&client, "alice").await;
    let (url, _) = app.authorize_url(&client, &[]);
    let shared = "198.51.100.9";
    // Someone behind alice's NAT guesses her password.
    for _ in 0..5 {
        let (status, _) = sign_in_from(&app.browser(), &url, "alice", "wrong", shared).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    }
    // Other browsers at that address stay refused for her name (the per-account limit)...
    let (status, _) = sign_in_from(&app.browser(), &url, "alice", PASSWORD, shared).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    // ...but the browser she signed in with before is held to its own attempts only.
    let (again, _) = app.authorize_url(&client, &[("prompt", "login")]);
    let (status, _) = sign_in_from(&own_browser, &again, "alice", PASSWORD, shared).await;
    assert_eq!(
        status,
        StatusCode::SEE_OTHER,
        "alice's own browser signs in"
    );
    // And it does not get to guess for ever: five failures of its own, then refused.
    for _ in 0..5 {
        let (status, _) = sign_in_from(&own_browser, &again, "alice", "wrong", shared).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    }
    let (status, _) = sign_in_from(&own_browser, &again, "alice", PASSWORD, shared).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
}

/// Thirty wrong passwords sent at once, spread over two instances sharing Redis: each
/// attempt is reserved before its password is checked, so exactly five are checked.
async fn a_burst_of_guesses_checks_only_five(redis: &crate::backends::TempRedis) {
    let dir = tempfile::TempDir::new().unwrap();
    let options = crate::helpers::Options {
        env: vec![
            ("REDIS_URL", redis.url.clone()),
            ("REDIS_PREFIX", redis.prefix.clone()),
        ],
        database_url: Some(format!("sqlite://{}/shared.db", dir.path().display())),
        ..Default::default()
    };
    let a = crate::helpers::spawn_app_with(options.clone()).await;
    let b = crate::helpers::spawn_app_with(options).await;
    a.add_user("alice").await;
    let client = a.add_client(false);
    let mut forms = Vec::new();
    for i in 0..30 {
        let app = if i % 2 == 0 { &a } else { &b };
        let browser = app.browser();
        let (url, _) = app.authorize_url(&client, &[]);
        let (login_url, _, html) = browser.open(&url).await.page();
        let mut form = crate::helpers::hidden_inputs(&html);
        form.push(("username".into(), "alice".into()));
        form.push(("password".into(), "wrong".into()));
        forms.push((browser, login_url.join("login").unwrap(), form));
    }
    let statuses = futures::future::join_all(forms.iter().map(|(browser, url, form)| async move {
        browser
            .http
            .post(url.clone())
            .form(form)
            .send()
            .await
            .unwrap()
            .status()
    }))
    .await;
    let checked = statuses
        .iter()
        .filter(|s| **s == StatusCode::UNAUTHORIZED)
        .count();
    let refused = statuses
        .iter()
        .filter(|s| **s == StatusCode::TOO_MANY_REQUESTS)
        .count();
    // At most five are checked. Fewer is possible: the three counters of an attempt are
    // counted one after the other, so under load an attempt within the five of its
    // address may already be beyond ten for the account, and waits in (or is turned away
    // from) the account's queue.
    assert!((1..=5).contains(&checked), "{statuses:?}");
    assert_eq!(checked + refused, 30, "{statuses:?}");
    // The right password from the same address is refused too, on either instance.
    let browser = b.browser();
    let (url, _) = b.authorize_url(&client, &[]);
    let outcome = browser.login(browser.open(&url).await, "alice").await;
    assert_eq!(outcome.page().1, StatusCode::TOO_MANY_REQUESTS);
}

#[tokio::test]
async fn thirty_simultaneous_wrong_passwords_across_two_instances_check_only_five() {
    let Some(redis) = crate::backends::TempRedis::create() else {
        return;
    };
    a_burst_of_guesses_checks_only_five(&redis).await;
}

#[tokio::test]
async fn a_username_signs_in_typed_in_any_case_and_keeps_the_case_it_was_given() {
    let app = spawn_app().await;
    let sub = app.add_user("Alice").await;
    let client = app.add_client(false);
    let tokens = app.tokens_for(&client, "ALICE").await;
    let id_token = crate::helpers::jwt_part(tokens["id_token"].as_str().unwrap(), 1);
    assert_eq!(id_token["sub"], sub.as_str());
    let userinfo: serde_json::Value = crate::helpers::http()
        .get(app.url("/userinfo"))
        .bearer_auth(tokens["access_token"].as_str().unwrap())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(userinfo["preferred_username"], "Alice");
}
