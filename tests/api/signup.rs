//! Invitations and sign-up (issue 23 §4) on a real server: an administrator invites by the
//! admin API, the console or the command line; the mail (an `.eml` file, as without
//! `smtp_url`) carries a link whose page makes an account with its address verified,
//! once; with `signup = open` the login page leads to a form whose account exists only
//! once the mailed link is used. Bad links get pages that say what to do, never a 500.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use url::Url;

use crate::admin_api::{audit_events, automation, call};
use crate::console::{console_as, csrf, post};
use crate::helpers::{
    Browser, Options, PASSWORD, TEST_KEK, TestApp, hidden_inputs, spawn_app_with,
};

fn with_signup(mode: &str) -> Options {
    Options {
        env: vec![("SIGNUP", mode.to_owned())],
        ..Options::default()
    }
}

/// The text part of each mail written so far, by recipient.
fn mails(app: &TestApp) -> Vec<(String, String)> {
    let dir = app.dir.path().join("outbox");
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return Vec::new();
    };
    entries
        .filter_map(|e| {
            let path = e.ok()?.path();
            (path.extension()? == "eml").then(|| read_eml(&path))
        })
        .map(|parsed| {
            (
                parsed["headers"]["To"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
                parsed["parts"][0]["text"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
            )
        })
        .collect()
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

/// The link to `path` in the mail sent to `to`, once it is written (the delivery task
/// runs in the background).
pub(crate) async fn link_mailed_to(app: &TestApp, to: &str, path: &str) -> (String, String) {
    let prefix = app.url(path);
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some((_, text)) = mails(app).into_iter().find(|(rcpt, _)| rcpt == to) {
            let start = text
                .find(&prefix)
                .unwrap_or_else(|| panic!("no link in {text}"));
            let link = text[start..].split_whitespace().next().unwrap().to_owned();
            return (link, text);
        }
        assert!(Instant::now() < deadline, "no mail to {to}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn token_of(link: &str) -> String {
    let url = Url::parse(link).unwrap();
    crate::helpers::query(&url, "token").unwrap()
}

/// Chooses a username and a password on an invitation's page; returns the answer.
async fn accept(
    browser: &Browser,
    link: &str,
    username: &str,
    again: &str,
) -> (StatusCode, String) {
    let (url, status, html) = browser.open(link).await.page();
    assert_eq!(status, StatusCode::OK, "{html}");
    let (_, status, html) = browser
        .submit(
            &url,
            &html,
            &[
                ("username", username),
                ("password", PASSWORD),
                ("password_confirmation", again),
            ],
        )
        .await
        .page();
    (status, html)
}

/// The user `username` signs in to a client with the code flow: the account works.
async fn signs_in(app: &TestApp, username: &str) {
    let client = app.add_client(true);
    let tokens = app.tokens_for(&client, username).await;
    assert!(tokens["id_token"].is_string(), "{tokens}");
}

#[tokio::test]
async fn an_invitation_by_the_admin_api_makes_a_verified_account_once() {
    let app = spawn_app_with(with_signup("invite")).await;
    let (automation, token) = automation(&app).await;
    let (status, sent) = call(
        &app,
        Some(&token),
        Method::POST,
        "/invitations",
        Some(json!({ "email": "carol@example.org" })),
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{sent}");
    assert_eq!(sent["email"], "carol@example.org");
    let (link, text) = link_mailed_to(&app, "carol@example.org", "/signup/invitation").await;
    assert!(text.contains("7 days"), "{text}");

    // Opening the link (a mail scanner would) uses nothing.
    let scanner = app.browser();
    let (_, status, html) = scanner.open(&link).await.page();
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("carol@example.org") && html.contains("Accept your invitation"));

    let browser = app.browser();
    let (status, html) = accept(&browser, &link, "carol", "not the same password").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        html.contains("The two passwords are not the same."),
        "{html}"
    );
    let (status, html) = accept(&browser, &link, "Carol", PASSWORD).await;
    assert_eq!(status, StatusCode::OK, "{html}");
    assert!(html.contains("Your account is ready"), "{html}");

    let carol = app.store.find_user_by_username("carol").unwrap().unwrap();
    assert_eq!(carol.username, "Carol");
    assert_eq!(carol.email.as_deref(), Some("carol@example.org"));
    assert!(carol.email_verified);
    signs_in(&app, "carol").await;

    // Used: the page says so, and nothing more is made.
    let (_, status, html) = scanner.open(&link).await.page();
    assert_eq!(status, StatusCode::GONE);
    assert!(html.contains("This link was used already"), "{html}");

    let events = audit_events(&app, &token, "").await;
    let invited = events
        .iter()
        .find(|e| e["action"] == "user.invited")
        .unwrap();
    assert_eq!(invited["actor"], format!("client:{}", automation.id));
    assert_eq!(invited["target"], "carol@example.org");
    let joined = events
        .iter()
        .find(|e| e["action"] == "user.signed_up")
        .unwrap();
    assert_eq!(joined["actor"], "user:Carol");
    assert_eq!(joined["target"], json!(carol.id));
    let trail = serde_json::to_string(&events).unwrap();
    assert!(
        !trail.contains(&token_of(&link)),
        "no link in the audit trail"
    );
    app.stop().await;
}

#[tokio::test]
async fn two_answers_to_one_invitation_at_once_make_one_account() {
    one_account_of_two_racing_answers(with_signup("invite")).await;
}

#[tokio::test]
async fn two_answers_to_one_invitation_at_once_make_one_account_on_postgresql() {
    let Some(db) = crate::backends::TempDatabase::create() else {
        return;
    };
    one_account_of_two_racing_answers(Options {
        database_url: Some(db.url.clone()),
        ..with_signup("invite")
    })
    .await;
}

async fn one_account_of_two_racing_answers(options: Options) {
    let app = spawn_app_with(options).await;
    let (_, token) = automation(&app).await;
    call(
        &app,
        Some(&token),
        Method::POST,
        "/invitations",
        Some(json!({ "email": "race@example.org" })),
    )
    .await;
    let (link, _) = link_mailed_to(&app, "race@example.org", "/signup/invitation").await;
    let (first, second) = (app.browser(), app.browser());
    let (a, b) = tokio::join!(
        accept(&first, &link, "racer1", PASSWORD),
        accept(&second, &link, "racer2", PASSWORD)
    );
    let mut statuses = [a.0, b.0];
    statuses.sort();
    assert_eq!(
        statuses,
        [StatusCode::OK, StatusCode::GONE],
        "{} / {}",
        a.1,
        b.1
    );
    let made = ["racer1", "racer2"]
        .iter()
        .filter(|n| app.store.find_user_by_username(n).unwrap().is_some())
        .count();
    assert_eq!(made, 1);
    app.stop().await;
}

#[tokio::test]
async fn an_invitation_link_expires_after_seven_days_and_bad_links_get_pages() {
    let app = spawn_app_with(with_signup("invite")).await;
    let (_, token) = automation(&app).await;
    call(
        &app,
        Some(&token),
        Method::POST,
        "/invitations",
        Some(json!({ "email": "late@example.org", "locale": "fr" })),
    )
    .await;
    let (link, text) = link_mailed_to(&app, "late@example.org", "/signup/invitation").await;
    assert!(text.contains("7 jours"), "{text}");
    app.clock.advance(7 * 24 * 3600);
    let browser = app.browser();
    let (_, status, html) = browser.open(&link).await.page();
    assert_eq!(status, StatusCode::GONE);
    assert!(html.contains("This link has expired"), "{html}");
    assert!(
        html.contains("ask the administrator who invited you"),
        "{html}"
    );
    for made_up in [
        "/signup/invitation?token=not-a-token",
        "/signup/invitation",
        "/signup/invitation?token=",
    ] {
        let (_, status, html) = browser.open(&app.url(made_up)).await.page();
        assert_eq!(status, StatusCode::NOT_FOUND, "{made_up}");
        assert!(html.contains("This link does not work"), "{html}");
    }
    // A form posted without its CSRF token does nothing.
    let response = browser
        .http
        .post(app.url("/signup/invitation"))
        .form(&[("token", token_of(&link).as_str()), ("username", "x")])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    app.stop().await;
}

#[tokio::test]
async fn with_signup_off_invitations_are_refused_and_sign_up_is_closed() {
    let app = spawn_app_with(Options::default()).await;
    let (_, token) = automation(&app).await;
    let (status, body) = call(
        &app,
        Some(&token),
        Method::POST,
        "/invitations",
        Some(json!({ "email": "nobody@example.org" })),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        body["error_description"]
            .as_str()
            .unwrap()
            .contains("signup"),
        "{body}"
    );
    let browser = app.browser();
    for path in [
        "/signup",
        "/signup/invitation?token=x",
        "/signup/verify?token=x",
    ] {
        let (_, status, html) = browser.open(&app.url(path)).await.page();
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}");
        assert!(html.contains("Sign-up is closed"), "{html}");
    }
    let response = browser
        .http
        .post(app.url("/signup"))
        .form(&[("username", "x"), ("email", "x@example.org")])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    // The login page offers no account.
    let client = app.add_client(true);
    let (url, _) = app.authorize_url(&client, &[]);
    let (_, _, html) = browser.open(&url).await.page();
    assert!(!html.contains("Create an account"));
    // Nor does the command line invite.
    let db = format!(
        "sqlite://{}",
        app.dir.path().join("portcullis.db").display()
    );
    let out = crate::cli::portcullis_on(
        &db,
        &[("PORTCULLIS_KEY_ENCRYPTION_KEY", TEST_KEK)],
        &["users", "invite", "nobody@example.org"],
        None,
    );
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("signup = off"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    app.stop().await;
}

#[tokio::test]
async fn the_command_line_and_the_console_invite() {
    let app = spawn_app_with(with_signup("invite")).await;
    let db = format!(
        "sqlite://{}",
        app.dir.path().join("portcullis.db").display()
    );
    let out = crate::cli::portcullis_on(
        &db,
        &[
            ("PORTCULLIS_KEY_ENCRYPTION_KEY", TEST_KEK),
            ("PORTCULLIS_ISSUER", &app.issuer),
            ("PORTCULLIS_SIGNUP", "invite"),
        ],
        &["users", "invite", "dora@example.org", "--locale", "fr"],
        None,
    );
    let printed = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(printed.contains("invited dora@example.org"), "{printed}");
    // The running server sends what the command queued, once its clock (the test's,
    // standing still) has reached the time the command queued it at (the real one).
    app.clock.advance(60);
    let (link, _) = link_mailed_to(&app, "dora@example.org", "/signup/invitation").await;
    let (status, html) = accept(&app.browser(), &link, "dora", PASSWORD).await;
    assert_eq!(status, StatusCode::OK, "{html}");
    signs_in(&app, "dora").await;

    app.add_admin("root").await;
    let (browser, _, html) = console_as(&app, "root").await;
    assert!(html.contains("Invite someone"), "{html}");
    let (_, status, html) = post(
        &browser,
        &app,
        "/admin/invitations",
        &[
            ("csrf", &csrf(&html)),
            ("email", "eve@example.org"),
            ("locale", "en"),
        ],
    )
    .await
    .page();
    assert_eq!(status, StatusCode::OK, "{html}");
    assert!(
        html.contains("Invitation sent to eve@example.org"),
        "{html}"
    );
    // An address with an account is not invited again.
    let (_, status, html) = post(
        &browser,
        &app,
        "/admin/invitations",
        &[("csrf", &csrf(&html)), ("email", "dora@example.org")],
    )
    .await
    .page();
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(html.contains("an account has the address"), "{html}");
    let (link, _) = link_mailed_to(&app, "eve@example.org", "/signup/invitation").await;
    let (status, _) = accept(&app.browser(), &link, "eve", PASSWORD).await;
    assert_eq!(status, StatusCode::OK);
    let events = crate::admin_api::audit_events(&app, &automation(&app).await.1, "").await;
    let inviters: Vec<&str> = events
        .iter()
        .filter(|e| e["action"] == "user.invited")
        .map(|e| e["actor"].as_str().unwrap())
        .collect();
    assert_eq!(inviters, ["user:root", "cli"]);
    app.stop().await;
}

/// The sign-up form, fresh.
async fn form_page(browser: &Browser, app: &TestApp) -> (Url, String) {
    let (url, status, html) = browser.open(&app.url("/signup")).await.page();
    assert_eq!(status, StatusCode::OK, "{html}");
    (url, html)
}

/// Fills in the sign-up form reached from `page`.
async fn sign_up(
    browser: &Browser,
    page: (Url, String),
    username: &str,
    email: &str,
    password: &str,
    again: &str,
) -> (Url, StatusCode, String) {
    browser
        .submit(
            &page.0,
            &page.1,
            &[
                ("username", username),
                ("email", email),
                ("password", password),
                ("password_confirmation", again),
            ],
        )
        .await
        .page()
}

#[tokio::test]
async fn an_open_sign_up_makes_the_account_only_once_its_address_answers() {
    let app = spawn_app_with(with_signup("open")).await;
    let client = app.add_client(true);
    let browser = app.browser();
    let (authorize, _) = app.authorize_url(&client, &[]);
    let (login_url, _, html) = browser.open(&authorize).await.page();
    assert!(html.contains("Create an account"), "{html}");
    let handle = hidden_inputs(&html)
        .into_iter()
        .find(|(name, _)| name == "id")
        .map(|(_, v)| v)
        .unwrap();
    let (url, status, form) = browser
        .open(&app.url(&format!("/signup?id={handle}")))
        .await
        .page();
    assert!(
        form.contains(&format!("name=\"id\" value=\"{handle}\"")),
        "{form}"
    );
    assert_eq!(status, StatusCode::OK, "{form}");
    assert!(form.contains("name=\"password_confirmation\""));
    let (_, status, html) = sign_up(
        &browser,
        (url, form),
        "Frank",
        "frank@example.org",
        PASSWORD,
        PASSWORD,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{html}");
    assert!(html.contains("Check your mail"), "{html}");
    assert!(html.contains("Back to sign in"), "{html}");

    // No account yet: the sign-in fails as for any unknown name.
    let other = app.browser();
    let outcome = other.login(other.open(&authorize).await, "frank").await;
    assert_eq!(outcome.page().1, StatusCode::UNAUTHORIZED);
    assert!(app.store.find_user_by_username("frank").unwrap().is_none());

    let (link, _) = link_mailed_to(&app, "frank@example.org", "/signup/verify").await;
    let late = app.browser();
    let (url, status, html) = late.open(&link).await.page();
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("Confirm your address") && html.contains("frank@example.org"));
    assert!(
        app.store.find_user_by_username("frank").unwrap().is_none(),
        "GET made nothing"
    );
    // The owner of the address who did not sign up does not know the password: nothing.
    let stranger = app.browser();
    let (url2, _, html2) = stranger.open(&link).await.page();
    let (_, status, html3) = stranger
        .submit(&url2, &html2, &[("password", "a guess, not the one")])
        .await
        .page();
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{html3}");
    assert!(app.store.find_user_by_username("frank").unwrap().is_none());
    let mailer = app.browser();
    let (url2, _, html2) = mailer.open(&link).await.page();
    let (_, status, done) = mailer
        .submit(&url2, &html2, &[("password", PASSWORD)])
        .await
        .page();
    assert_eq!(status, StatusCode::OK, "{done}");
    assert!(done.contains("Your account is ready"), "{done}");
    let frank = app.store.find_user_by_username("frank").unwrap().unwrap();
    assert!(frank.email_verified);
    assert_eq!(frank.email.as_deref(), Some("frank@example.org"));
    // Once: the first browser's confirmation comes too late.
    let (_, status, html) = late
        .submit(&url, &html, &[("password", PASSWORD)])
        .await
        .page();
    assert_eq!(status, StatusCode::GONE, "{html}");
    let (_, status, _) = app.browser().open(&link).await.page();
    assert_eq!(status, StatusCode::GONE);

    // Back to the sign-in the sign-up came from: it goes on to the app.
    let login = browser.open(login_url.as_str()).await;
    let left = browser
        .consent_if_asked(browser.login(login, "frank").await)
        .await
        .left();
    assert!(crate::helpers::query(&left, "code").is_some(), "{left}");
    app.stop().await;
}

#[tokio::test]
async fn the_sign_up_form_refuses_what_it_must_and_never_tells_who_has_an_account() {
    let app = spawn_app_with(with_signup("open")).await;
    app.add_user("alice").await;
    let browser = app.browser();
    let (_, status, html) = sign_up(
        &browser,
        form_page(&browser, &app).await,
        "ALICE",
        "a2@example.org",
        PASSWORD,
        PASSWORD,
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert!(html.contains("This username is taken"), "{html}");
    let (_, status, html) = sign_up(
        &browser,
        form_page(&browser, &app).await,
        "gina",
        "g@example.org",
        "password1",
        "password1",
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(html.contains("too easy to guess"), "{html}");
    assert!(
        html.contains("value=\"gina\""),
        "the form keeps what was typed"
    );
    let (_, status, _) = sign_up(
        &browser,
        form_page(&browser, &app).await,
        "gina",
        "not-an-address",
        PASSWORD,
        PASSWORD,
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    // Alice's address: the same answer, and no mail.
    let (_, status, same) = sign_up(
        &browser,
        form_page(&browser, &app).await,
        "alice2",
        "alice@example.com",
        PASSWORD,
        PASSWORD,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert!(same.contains("Check your mail"));
    let (_, status, _) = sign_up(
        &browser,
        form_page(&browser, &app).await,
        "hank",
        "hank@example.org",
        PASSWORD,
        PASSWORD,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    link_mailed_to(&app, "hank@example.org", "/signup/verify").await;
    let recipients: Vec<String> = mails(&app).into_iter().map(|(to, _)| to).collect();
    assert_eq!(recipients, ["hank@example.org"]);
    app.stop().await;
}

#[tokio::test]
async fn sign_up_forms_are_limited_per_client_address() {
    let app = spawn_app_with(Options {
        env: vec![
            ("SIGNUP", "open".to_owned()),
            ("SIGNUPS_PER_ADDRESS", "2".to_owned()),
        ],
        ..Options::default()
    })
    .await;
    let browser = app.browser();
    let mut statuses = Vec::new();
    for n in 0..3 {
        let (url, _, html) = browser.open(&app.url("/signup")).await.page();
        let (_, status, html) = sign_up(
            &browser,
            (url, html),
            &format!("user{n}"),
            &format!("user{n}@example.org"),
            PASSWORD,
            PASSWORD,
        )
        .await;
        if n == 2 {
            assert!(html.contains("Too many sign-ups"), "{html}");
        }
        statuses.push(status);
    }
    assert_eq!(
        statuses,
        [
            StatusCode::OK,
            StatusCode::OK,
            StatusCode::TOO_MANY_REQUESTS
        ]
    );
    app.stop().await;
}

#[tokio::test]
async fn the_pages_speak_french() {
    let app = spawn_app_with(with_signup("open")).await;
    let response = app
        .browser()
        .http
        .get(app.url("/signup"))
        .header("accept-language", "fr")
        .send()
        .await
        .unwrap();
    let html = response.text().await.unwrap();
    assert!(html.contains("<html lang=\"fr\">"), "{html}");
    assert!(html.contains("Créer un compte") && html.contains("Mot de passe, à nouveau"));
    let inputs: Vec<String> = hidden_inputs(&html).into_iter().map(|(n, _)| n).collect();
    assert_eq!(inputs, ["csrf"]);
    app.stop().await;
}
