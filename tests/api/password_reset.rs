//! Password reset and email verification (issue 23 §2, §3) on a real server: the request
//! answers the same for any address, the mail arrives (read back from the `.eml` files the
//! server writes without `smtp_url`, or from a real SMTP server) and its link works once;
//! used, expired and made-up links get a page that explains; requests are throttled; an
//! account with a second factor passes it before its new password is taken; a reset ends
//! every session and token of the user on both backends; a new address replaces the old
//! only once a link sent to it is used.

use std::collections::HashSet;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use portcullis::domain::Clock;
use portcullis::protocol::factors::totp;
use reqwest::StatusCode;
use serde_json::Value;
use url::Url;

use crate::helpers::{
    Browser, Options, Outcome, PASSWORD, TestApp, hidden_inputs, spawn_app, spawn_app_with,
    test_kek,
};

const NEW_PASSWORD: &str = "violet tugboat anthem drizzle";

/// The mails the server wrote to its outbox folder, read with Python's own parser.
struct Mailbox {
    seen: HashSet<String>,
}

impl Mailbox {
    fn new() -> Self {
        Self {
            seen: HashSet::new(),
        }
    }

    fn files(app: &TestApp) -> Vec<String> {
        let dir = app.dir.path().join("outbox");
        std::fs::read_dir(&dir)
            .map(|entries| {
                entries
                    .filter_map(|e| e.ok()?.file_name().into_string().ok())
                    .filter(|name| name.ends_with(".eml"))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The next mail to arrive (waits for it, with a deadline).
    async fn next(&mut self, app: &TestApp) -> Value {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(name) = Self::files(app)
                .into_iter()
                .find(|n| !self.seen.contains(n))
            {
                self.seen.insert(name.clone());
                return read_eml(&app.dir.path().join("outbox").join(name));
            }
            assert!(Instant::now() < deadline, "no new mail arrived");
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// Mails that arrived and were not read yet.
    fn unread(&self, app: &TestApp) -> usize {
        Self::files(app)
            .iter()
            .filter(|n| !self.seen.contains(*n))
            .count()
    }
}

fn read_eml(path: &Path) -> Value {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/read_eml.py");
    let out = Command::new("/usr/bin/python3")
        .arg(script)
        .arg(path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// The link of a mail's text part that goes to `path`.
fn link_in(mail: &Value, path: &str) -> String {
    let text = mail["parts"][0]["text"].as_str().unwrap();
    text.split_whitespace()
        .find(|word| word.contains(path) && word.contains("code="))
        .unwrap_or_else(|| panic!("no link to {path} in {text}"))
        .trim_end_matches(['.', ')', '>'])
        .to_owned()
}

fn to_of(mail: &Value) -> String {
    mail["headers"]["To"].as_str().unwrap().to_owned()
}

/// Asks for a reset of `email` from the login page's "Forgot your password?" link.
async fn ask_reset(app: &TestApp, browser: &Browser, email: &str) -> (StatusCode, String) {
    let (login, _, html) = browser.open(&app.url("/account")).await.page();
    assert!(html.contains("Forgot your password?"), "{html}");
    let forgot = login.join(&href_of(&html, "/login/forgot")).unwrap();
    let (url, status, html) = browser.open(forgot.as_str()).await.page();
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("name=\"email\""), "{html}");
    let (_, status, html) = browser
        .submit(&url, &html, &[("email", email)])
        .await
        .page();
    (status, html)
}

/// The `href` of the link whose target ends with `path`.
fn href_of(html: &str, path: &str) -> String {
    html.split("href=\"")
        .skip(1)
        .map(|rest| &rest[..rest.find('"').unwrap()])
        .find(|href| href.ends_with(path))
        .unwrap_or_else(|| panic!("no link to {path} in {html}"))
        .replace("&#x2f;", "/")
}

/// Follows a reset link and presses its button: the next page (a second factor's, or
/// the new password's).
async fn open_link(browser: &Browser, link: &str) -> Outcome {
    let (url, status, html) = browser.open(link).await.page();
    assert_eq!(status, StatusCode::OK, "{html}");
    browser.submit(&url, &html, &[]).await
}

async fn set_password(outcome: Outcome, browser: &Browser, password: &str) -> Outcome {
    let (url, status, html) = outcome.page();
    assert_eq!(status, StatusCode::OK, "{html}");
    assert!(url.path().ends_with("/login/reset/password"), "{url}");
    assert!(html.contains("type=\"password\""), "{html}");
    browser
        .submit(
            &url,
            &html,
            &[("password", password), ("password_again", password)],
        )
        .await
}

/// Whether a new browser signs `username` in with `password` at the account page.
async fn signs_in(app: &TestApp, username: &str, password: &str) -> bool {
    let browser = app.browser();
    let (url, _, html) = browser.open(&app.url("/account")).await.page();
    browser
        .submit(
            &url,
            &html,
            &[("username", username), ("password", password)],
        )
        .await
        .is_page("/account")
}

#[tokio::test]
async fn a_reset_request_answers_the_same_for_any_address_and_its_link_works_once() {
    let app = spawn_app().await;
    app.add_user("alice").await;
    let mut mailbox = Mailbox::new();
    let browser = app.browser();
    let (status, unknown) = ask_reset(&app, &browser, "nobody@example.com").await;
    assert_eq!(status, StatusCode::OK);
    let (status, known) = ask_reset(&app, &browser, "alice@example.com").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(unknown, known, "the same page, account or not");

    let mail = mailbox.next(&app).await;
    assert_eq!(to_of(&mail), "alice@example.com");
    let link = link_in(&mail, "/login/reset");
    assert_eq!(mailbox.unread(&app), 0, "nothing for the unknown address");

    // GET does nothing (mail scanners fetch links): the page is shown again and again.
    let (_, status, html) = browser.open(&link).await.page();
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("alice"), "{html}");
    let reader = app.browser();
    let done = set_password(open_link(&reader, &link).await, &reader, NEW_PASSWORD).await;
    let (_, status, html) = done.page();
    assert_eq!(status, StatusCode::OK, "{html}");
    // A sign-in in the very second of the change is not believed (`accepts_session_from`).
    app.clock.advance(1);
    assert!(signs_in(&app, "alice", NEW_PASSWORD).await);
    assert!(!signs_in(&app, "alice", PASSWORD).await);

    // The user is told, and the link is spent.
    let notice = mailbox.next(&app).await;
    assert_eq!(to_of(&notice), "alice@example.com");
    assert!(link_in_opt(&notice).is_none());
    let (_, status, html) = app.browser().open(&link).await.page();
    assert_eq!(status, StatusCode::GONE, "{html}");
    assert!(html.contains("already used"), "{html}");
    assert!(
        html.contains("/login/forgot"),
        "a new link is offered: {html}"
    );
    let audit = app.store.list_audit_events(None, 50).unwrap();
    let actions: Vec<&str> = audit.iter().map(|e| e.action.as_str()).collect();
    assert!(
        actions.contains(&"user.password_reset_requested"),
        "{actions:?}"
    );
    assert!(actions.contains(&"user.password_reset"), "{actions:?}");
    let token = link.split("code=").nth(1).unwrap();
    assert!(
        audit.iter().all(|e| !format!("{e:?}").contains(token)),
        "no link in the audit trail"
    );
}

#[tokio::test]
async fn a_reset_mail_goes_through_a_real_smtp_server_and_its_link_works() {
    let Some(sink) = crate::mail::SmtpSink::start(&[]) else {
        return;
    };
    let app = spawn_app_with(Options {
        env: vec![("SMTP_URL", sink.url())],
        ..Options::default()
    })
    .await;
    app.add_user("alice").await;
    let browser = app.browser();
    ask_reset(&app, &browser, "alice@example.com").await;
    let received = sink.wait_for(1).await;
    let mail = received[0].parsed();
    assert_eq!(to_of(&mail), "alice@example.com");
    let html = mail["parts"][1]["text"].as_str().unwrap();
    let link = link_in(&mail, "/login/reset");
    assert!(
        html.contains(&link.replace('&', "&amp;")),
        "the HTML part has it too"
    );
    let done = set_password(open_link(&browser, &link).await, &browser, NEW_PASSWORD).await;
    assert_eq!(done.page().1, StatusCode::OK);
    // The notice follows.
    let notice = sink.wait_for(2).await[1].parsed();
    assert!(link_in_opt(&notice).is_none());
}

fn link_in_opt(mail: &Value) -> Option<String> {
    let text = mail["parts"][0]["text"].as_str()?;
    text.split_whitespace()
        .find(|w| w.contains("code="))
        .map(str::to_owned)
}

#[tokio::test]
async fn expired_made_up_and_raced_links_get_a_page_that_explains_never_a_500() {
    let app = spawn_app().await;
    app.add_user("alice").await;
    let mut mailbox = Mailbox::new();
    let browser = app.browser();
    ask_reset(&app, &browser, "alice@example.com").await;
    let link = link_in(&mailbox.next(&app).await, "/login/reset");

    let mut tampered = link.clone();
    let last = tampered.pop().unwrap();
    tampered.push(if last == 'A' { 'B' } else { 'A' });
    for made_up in [tampered.as_str(), &format!("{link}{}", "x".repeat(5000))] {
        let (_, status, html) = browser.open(made_up).await.page();
        assert_eq!(status, StatusCode::NOT_FOUND, "{html}");
        assert!(html.contains("/login/forgot"), "{html}");
    }
    let no_code = app.url("/login/reset");
    let (_, status, _) = browser.open(&no_code).await.page();
    assert_eq!(status, StatusCode::NOT_FOUND);

    // Opened and pressed, then left until after its 30 minutes.
    let password_page = open_link(&browser, &link).await;
    app.clock.advance(30 * 60);
    let (url, _, html) = password_page.page();
    let (_, status, html) = browser
        .submit(
            &url,
            &html,
            &[("password", NEW_PASSWORD), ("password_again", NEW_PASSWORD)],
        )
        .await
        .page();
    assert!(status.is_client_error(), "{status}: {html}");
    let (_, status, html) = browser.open(&link).await.page();
    assert_eq!(status, StatusCode::GONE);
    assert!(html.contains("expired"), "{html}");
    assert!(signs_in(&app, "alice", PASSWORD).await, "nothing changed");
}

#[tokio::test]
async fn a_reset_link_works_in_the_browser_that_pressed_its_button_and_a_refused_password_spends_nothing()
 {
    let app = spawn_app().await;
    app.add_user("alice").await;
    let mut mailbox = Mailbox::new();
    let browser = app.browser();
    ask_reset(&app, &browser, "alice@example.com").await;
    let link = link_in(&mailbox.next(&app).await, "/login/reset");
    let (url, _, html) = open_link(&browser, &link).await.page();
    // Another browser with the same page: refused.
    let other = app.browser();
    let (_, status, _) = other
        .submit(
            &url,
            &html,
            &[("password", NEW_PASSWORD), ("password_again", NEW_PASSWORD)],
        )
        .await
        .page();
    assert!(status.is_client_error(), "{status}");
    // A weak password: the form again, the link still good.
    let (url, status, html) = browser
        .submit(
            &url,
            &html,
            &[("password", "alice"), ("password_again", "alice")],
        )
        .await
        .page();
    assert_eq!(status, StatusCode::BAD_REQUEST, "{html}");
    let done = set_password(
        Outcome::Page {
            url,
            status: StatusCode::OK,
            html,
        },
        &browser,
        NEW_PASSWORD,
    )
    .await;
    assert_eq!(done.page().1, StatusCode::OK);
    app.clock.advance(1);
    assert!(signs_in(&app, "alice", NEW_PASSWORD).await);
}

#[tokio::test]
async fn reset_requests_are_throttled_per_address_of_the_account() {
    let app = spawn_app_with(Options {
        env: vec![("RESET_REQUESTS_PER_ACCOUNT", "2".into())],
        ..Options::default()
    })
    .await;
    app.add_user("alice").await;
    let browser = app.browser();
    for _ in 0..2 {
        assert_eq!(
            ask_reset(&app, &browser, "alice@example.com").await.0,
            StatusCode::OK
        );
    }
    let (status, html) = ask_reset(&app, &browser, "Alice@Example.com").await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{html}");
    // Counted the same for an address no account has: the answer tells nothing.
    for _ in 0..2 {
        ask_reset(&app, &browser, "nobody@example.com").await;
    }
    assert_eq!(
        ask_reset(&app, &browser, "nobody@example.com").await.0,
        StatusCode::TOO_MANY_REQUESTS
    );
}

#[tokio::test]
async fn reset_requests_are_throttled_per_client_address() {
    let app = spawn_app_with(Options {
        env: vec![("RESET_REQUESTS_PER_ADDRESS", "3".into())],
        ..Options::default()
    })
    .await;
    let browser = app.browser();
    for n in 0..3 {
        let email = format!("person{n}@example.com");
        assert_eq!(ask_reset(&app, &browser, &email).await.0, StatusCode::OK);
    }
    let (status, html) = ask_reset(&app, &browser, "person9@example.com").await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{html}");
}

/// Gives `user_id` a confirmed TOTP credential, as an enrolment would.
fn enrol_totp(app: &TestApp, user_id: &str) -> totp::TotpSecret {
    let secret = totp::TotpSecret::generate();
    let sealed = secret.seal(&test_kek(), user_id).unwrap();
    let now = app.clock.now();
    assert!(app.store.begin_totp(user_id, &sealed, now).unwrap());
    assert!(app.store.confirm_totp(user_id, &sealed, 1, now).unwrap());
    secret
}

#[tokio::test]
async fn a_reset_of_an_account_with_a_second_factor_takes_no_password_before_the_code() {
    let app = spawn_app().await;
    let alice = app.add_user("alice").await;
    let secret = enrol_totp(&app, &alice);
    let mut mailbox = Mailbox::new();
    let browser = app.browser();
    ask_reset(&app, &browser, "alice@example.com").await;
    let link = link_in(&mailbox.next(&app).await, "/login/reset");
    let (factor_url, status, html) = open_link(&browser, &link).await.page();
    assert_eq!(status, StatusCode::OK, "{html}");
    assert!(factor_url.path().ends_with("/login/factor"), "{factor_url}");
    assert!(html.contains("name=\"code\""), "{html}");
    let id = factor_url
        .query_pairs()
        .find(|(k, _)| k == "id")
        .unwrap()
        .1
        .into_owned();

    // Straight to the new password, without the code: sent back to the code.
    let password_page = app.url(&format!("/login/reset/password?id={id}"));
    let (url, _, _) = browser.open(&password_page).await.page();
    assert!(url.path().ends_with("/login/factor"), "{url}");
    let forged = browser
        .http
        .post(app.url("/login/reset/password"))
        .form(&[
            ("id", id.as_str()),
            ("csrf", "x"),
            ("password", NEW_PASSWORD),
            ("password_again", NEW_PASSWORD),
        ])
        .send()
        .await
        .unwrap();
    assert!(forged.status().is_redirection() || forged.status().is_client_error());
    // Nor has it a login form to go around the code.
    let (_, status, _) = browser
        .open(&app.url(&format!("/login?id={id}")))
        .await
        .page();
    assert!(status.is_client_error(), "{status}");
    let hash_of = || app.store.find_user(&alice).unwrap().unwrap().password_hash;
    let before = hash_of();

    // A wrong code, then the right one.
    let (url, status, html) = browser.open(factor_url.as_str()).await.page();
    assert_eq!(status, StatusCode::OK, "{html}");
    let (url, status, html) = browser
        .submit(&url, &html, &[("code", "000000")])
        .await
        .page();
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{html}");
    let code = totp::code_at(&secret, app.clock.now(), totp::DIGITS).unwrap();
    let next = browser.submit(&url, &html, &[("code", &code)]).await;
    assert_eq!(hash_of(), before, "unchanged until the code was right");
    let done = set_password(next, &browser, NEW_PASSWORD).await;
    assert_eq!(done.page().1, StatusCode::OK);
    assert_ne!(hash_of(), before);
    let events = app.store.list_audit_events(None, 50).unwrap();
    assert!(events.iter().any(|e| e.action == "factor.used"));
    assert!(events.iter().any(|e| e.action == "user.password_reset"));
}

#[tokio::test]
async fn a_reset_asks_for_the_accounts_second_factor_with_mfa_off_too() {
    let app = spawn_app_with(Options {
        env: vec![("MFA", "off".into())],
        ..Options::default()
    })
    .await;
    let alice = app.add_user("alice").await;
    let secret = enrol_totp(&app, &alice);
    let mut mailbox = Mailbox::new();
    let browser = app.browser();
    ask_reset(&app, &browser, "alice@example.com").await;
    let link = link_in(&mailbox.next(&app).await, "/login/reset");
    let (url, status, html) = open_link(&browser, &link).await.page();
    assert_eq!(status, StatusCode::OK, "{html}");
    assert!(url.path().ends_with("/login/factor"), "{url}");
    let before = app.store.find_user(&alice).unwrap().unwrap().password_hash;
    let code = totp::code_at(&secret, app.clock.now(), totp::DIGITS).unwrap();
    let next = browser.submit(&url, &html, &[("code", &code)]).await;
    let done = set_password(next, &browser, NEW_PASSWORD).await;
    assert_eq!(done.page().1, StatusCode::OK);
    assert_ne!(
        app.store.find_user(&alice).unwrap().unwrap().password_hash,
        before
    );
}

#[tokio::test]
async fn a_factor_enrolled_during_a_reset_is_asked_before_the_new_password() {
    let app = spawn_app().await;
    let alice = app.add_user("alice").await;
    let mut mailbox = Mailbox::new();
    let browser = app.browser();
    ask_reset(&app, &browser, "alice@example.com").await;
    let link = link_in(&mailbox.next(&app).await, "/login/reset");
    // No second factor when the reset began: straight to the new password's form.
    let (url, status, html) = open_link(&browser, &link).await.page();
    assert_eq!(status, StatusCode::OK, "{html}");
    assert!(url.path().ends_with("/login/reset/password"), "{url}");
    // The account's owner enrols an authenticator meanwhile.
    let secret = enrol_totp(&app, &alice);
    let hash_of = || app.store.find_user(&alice).unwrap().unwrap().password_hash;
    let before = hash_of();
    let (url, status, html) = browser
        .submit(
            &url,
            &html,
            &[("password", NEW_PASSWORD), ("password_again", NEW_PASSWORD)],
        )
        .await
        .page();
    assert_eq!(status, StatusCode::OK, "{html}");
    assert!(url.path().ends_with("/login/factor"), "{url}");
    assert_eq!(hash_of(), before, "nothing set without the new factor");
    let code = totp::code_at(&secret, app.clock.now(), totp::DIGITS).unwrap();
    let next = browser.submit(&url, &html, &[("code", &code)]).await;
    let done = set_password(next, &browser, NEW_PASSWORD).await;
    assert_eq!(done.page().1, StatusCode::OK);
    assert_ne!(hash_of(), before);
}

/// Every session and token of the user is dead after a reset.
async fn a_reset_ends_sessions_and_tokens(app: &TestApp) {
    app.add_user("alice").await;
    let client = app.add_refreshing_client();
    let (tokens, signed_in) = app.offline_tokens(&client, "alice").await;
    let access = tokens["access_token"].as_str().unwrap();
    let refresh = tokens["refresh_token"].as_str().unwrap();
    assert_eq!(app.userinfo_status(access).await, 200);
    assert!(
        signed_in
            .open(&app.url("/account"))
            .await
            .is_page("/account")
    );

    let mut mailbox = Mailbox::new();
    let browser = app.browser();
    ask_reset(app, &browser, "alice@example.com").await;
    let link = link_in(&mailbox.next(app).await, "/login/reset");
    let done = set_password(open_link(&browser, &link).await, &browser, NEW_PASSWORD).await;
    assert_eq!(done.page().1, StatusCode::OK);

    assert_eq!(app.userinfo_status(access).await, 401);
    let refreshed = app.refresh(&client, refresh, &[]).await;
    assert_eq!(refreshed.status(), StatusCode::BAD_REQUEST);
    let (url, _, _) = signed_in.open(&app.url("/account")).await.page();
    assert!(
        url.path().ends_with("/login"),
        "the old session is over: {url}"
    );
}

#[tokio::test]
async fn after_a_reset_old_sessions_refresh_and_access_tokens_are_dead_on_sqlite() {
    a_reset_ends_sessions_and_tokens(&spawn_app().await).await;
}

#[tokio::test]
async fn after_a_reset_old_sessions_refresh_and_access_tokens_are_dead_on_postgres_and_redis() {
    let (Some(db), Some(redis)) = (
        crate::backends::TempDatabase::create(),
        crate::backends::TempRedis::create(),
    ) else {
        return;
    };
    let app = spawn_app_with(Options {
        database_url: Some(db.url.clone()),
        env: vec![
            ("REDIS_URL", redis.url.clone()),
            ("REDIS_PREFIX", redis.prefix.clone()),
        ],
        ..Options::default()
    })
    .await;
    a_reset_ends_sessions_and_tokens(&app).await;
}

/// A browser signed in to the account page, and the page's form token.
async fn on_account_page(app: &TestApp, username: &str) -> (Browser, Url, String) {
    let browser = app.browser();
    let outcome = browser
        .login(browser.open(&app.url("/account")).await, username)
        .await;
    let (url, status, html) = outcome.page();
    assert_eq!(status, StatusCode::OK);
    assert!(url.path().ends_with("/account"), "{url}");
    (browser, url, html)
}

fn csrf_of(html: &str) -> String {
    hidden_inputs(html)
        .into_iter()
        .find(|(name, _)| name == "csrf")
        .unwrap()
        .1
}

#[tokio::test]
async fn a_new_address_replaces_the_old_only_once_a_link_sent_to_it_is_used() {
    let app = spawn_app().await;
    let alice = app.add_user("alice").await;
    let (browser, _, html) = on_account_page(&app, "alice").await;
    assert!(html.contains("alice@example.com"), "{html}");
    let csrf = csrf_of(&html);
    let response = browser
        .http
        .post(app.url("/account/email"))
        .form(&[
            ("csrf", csrf.as_str()),
            ("action", "change"),
            ("email", "alice@new.example"),
        ])
        .send()
        .await
        .unwrap();
    let (_, status, html) = browser.follow(response).await.page();
    assert_eq!(status, StatusCode::OK, "{html}");
    assert!(html.contains("alice@new.example"), "{html}");

    // Two mails, in either order: the link to the new address, a notice to the old.
    let mut mailbox = Mailbox::new();
    let (first, second) = (mailbox.next(&app).await, mailbox.next(&app).await);
    let (mail, notice) = if to_of(&first) == "alice@new.example" {
        (first, second)
    } else {
        (second, first)
    };
    assert_eq!(to_of(&mail), "alice@new.example");
    assert_eq!(to_of(&notice), "alice@example.com");
    let link = link_in(&mail, "/account/verify");
    // The mail names the account it acts on, and says what to do if nobody asked.
    let words = mail["parts"][0]["text"]
        .as_str()
        .unwrap()
        .split_whitespace();
    let text = words.collect::<Vec<_>>().join(" ");
    assert!(text.contains("account alice by"), "{text}");
    assert!(text.contains("If you did not ask for this"), "{text}");
    let user = app.store.find_user(&alice).unwrap().unwrap();
    assert_eq!(user.email.as_deref(), Some("alice@example.com"));
    assert!(user.email_verified, "the old address stays meanwhile");

    // The link's page does nothing by GET; its button does, once.
    let reader = app.browser();
    let (url, status, html) = reader.open(&link).await.page();
    assert_eq!(status, StatusCode::OK, "{html}");
    assert!(html.contains("alice@new.example"));
    assert!(html.contains("Account: alice"), "{html}");
    assert!(html.contains("do not confirm"), "{html}");
    let unchanged = app.store.find_user(&alice).unwrap().unwrap();
    assert_eq!(unchanged.email.as_deref(), Some("alice@example.com"));
    let (_, status, html) = reader.submit(&url, &html, &[]).await.page();
    assert_eq!(status, StatusCode::OK, "{html}");
    let changed = app.store.find_user(&alice).unwrap().unwrap();
    assert_eq!(changed.email.as_deref(), Some("alice@new.example"));
    assert!(changed.email_verified);
    let (_, status, html) = reader.open(&link).await.page();
    assert_eq!(status, StatusCode::GONE, "{html}");
}

/// Asks, from the account page of `browser`, for a link to `email` (a change of address).
async fn ask_change(app: &TestApp, browser: &Browser, csrf: &str, email: &str) -> StatusCode {
    let response = browser
        .http
        .post(app.url("/account/email"))
        .form(&[("csrf", csrf), ("action", "change"), ("email", email)])
        .send()
        .await
        .unwrap();
    let (_, status, html) = browser.follow(response).await.page();
    if status == StatusCode::TOO_MANY_REQUESTS {
        assert!(html.contains("Too many links asked for"), "{html}");
    }
    status
}

#[tokio::test]
async fn address_links_are_throttled_per_account_and_per_address_they_go_to() {
    let app = spawn_app_with(Options {
        env: vec![("RESET_REQUESTS_PER_ACCOUNT", "2".into())],
        ..Options::default()
    })
    .await;
    app.add_user("alice").await;
    app.add_user("bob").await;
    let (alice, _, html) = on_account_page(&app, "alice").await;
    let alice_csrf = csrf_of(&html);
    for _ in 0..2 {
        let status = ask_change(&app, &alice, &alice_csrf, "victim@example.net").await;
        assert_eq!(status, StatusCode::OK);
    }
    // Another account, the same mailbox: refused.
    let (bob, _, html) = on_account_page(&app, "bob").await;
    let bob_csrf = csrf_of(&html);
    let status = ask_change(&app, &bob, &bob_csrf, "victim@example.net").await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    // The same account, another mailbox: refused too.
    let status = ask_change(&app, &alice, &alice_csrf, "other@example.net").await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    // Bob to a mailbox nobody flooded: sent.
    let status = ask_change(&app, &bob, &bob_csrf, "bob@new.example").await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn an_unverified_address_is_verified_by_its_link_and_not_by_opening_it() {
    let app = spawn_app().await;
    let alice = app.add_user("alice").await;
    let mut user = app.store.find_user(&alice).unwrap().unwrap();
    user.email_verified = false;
    app.store.update_user(&user, 1).unwrap();
    let (browser, _, html) = on_account_page(&app, "alice").await;
    assert!(html.contains("Verify your address"), "{html}");
    let csrf = csrf_of(&html);
    let response = browser
        .http
        .post(app.url("/account/email"))
        .form(&[("csrf", csrf.as_str()), ("action", "verify")])
        .send()
        .await
        .unwrap();
    let (_, status, html) = browser.follow(response).await.page();
    assert_eq!(status, StatusCode::OK, "{html}");
    let mut mailbox = Mailbox::new();
    let mail = mailbox.next(&app).await;
    assert_eq!(to_of(&mail), "alice@example.com");
    let link = link_in(&mail, "/account/verify");
    let (url, status, html) = app.browser().open(&link).await.page();
    assert_eq!(status, StatusCode::OK);
    assert!(!app.store.find_user(&alice).unwrap().unwrap().email_verified);
    // A form posted without this browser's token does nothing.
    let stranger = app.browser();
    let (_, status, _) = stranger.submit(&url, &html, &[]).await.page();
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let reader = app.browser();
    let (url, _, html) = reader.open(&link).await.page();
    let (_, status, _) = reader.submit(&url, &html, &[]).await.page();
    assert_eq!(status, StatusCode::OK);
    assert!(app.store.find_user(&alice).unwrap().unwrap().email_verified);
}

#[tokio::test]
async fn the_reset_pages_are_accessible_in_english_and_french_on_a_phone() {
    let Some(chrome) = crate::browser::Chrome::start("reset").await else {
        return;
    };
    chrome.client.set_window_size(375, 812).await.unwrap();
    let app = spawn_app().await;
    app.add_user("alice").await;
    let mut mailbox = Mailbox::new();
    for lang in ["en", "fr"] {
        chrome
            .goto(&app.url(&format!("/login/forgot?ui_locales={lang}")))
            .await;
        chrome.find("#email").await;
        chrome.check(&format!("forgot-{lang}")).await;
        chrome.type_into("#email", "alice@example.com").await;
        chrome.click("button[type=submit]").await;
        chrome.find("[role=status]").await;
        chrome.check(&format!("forgot-sent-{lang}")).await;

        let link = link_in(&mailbox.next(&app).await, "/login/reset");
        chrome.goto(&link).await;
        chrome.find("input[name=code]").await;
        chrome.check(&format!("reset-link-{lang}")).await;
        chrome.click("button[type=submit]").await;
        chrome.find("#password_again").await;
        chrome.check(&format!("reset-password-{lang}")).await;
        let password = format!("{NEW_PASSWORD} {lang}");
        chrome.type_into("#password", &password).await;
        chrome.type_into("#password_again", &password).await;
        chrome.click("button[type=submit]").await;
        chrome.find("[role=status]").await;
        chrome.check(&format!("reset-done-{lang}")).await;
        // The password-changed notice.
        mailbox.next(&app).await;

        chrome.goto(&link).await;
        chrome.find("a[href$='/login/forgot']").await;
        chrome.check(&format!("link-used-{lang}")).await;
    }
    chrome.done().await;
}
