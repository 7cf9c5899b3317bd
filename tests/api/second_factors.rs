//! Second factors at sign-in (issue 22): TOTP enrolment when a second factor is required,
//! one-time codes used at most once, recovery codes, the per-factor throttle, and the
//! step-up of a password session to two factors in the same session.

use portcullis::domain::{ACR_MFA, Clock};
use portcullis::protocol::factors::{recovery, totp};
use reqwest::StatusCode;
use serde_json::json;
use url::Url;

use crate::helpers::{
    Browser, Options, Outcome, TestApp, jwt_part, spawn_app, spawn_app_with, test_kek,
};

async fn app_with(env: &[(&'static str, &str)]) -> TestApp {
    spawn_app_with(Options {
        env: env.iter().map(|(k, v)| (*k, (*v).to_owned())).collect(),
        ..Options::default()
    })
    .await
}

/// The user's TOTP key, read back as the authenticator app would have it.
fn totp_secret(app: &TestApp, user_id: &str) -> totp::TotpSecret {
    let credential = app
        .store
        .find_totp(user_id)
        .unwrap()
        .expect("a TOTP credential");
    totp::TotpSecret::unseal(&test_kek(), &credential.sealed_secret, user_id).unwrap()
}

fn code_now(app: &TestApp, secret: &totp::TotpSecret) -> String {
    totp::code_at(secret, app.clock.now(), totp::DIGITS).unwrap()
}

/// Gives `user_id` a confirmed TOTP credential, as an enrolment would.
fn enrol_totp(app: &TestApp, user_id: &str) -> totp::TotpSecret {
    let secret = totp::TotpSecret::generate();
    let sealed = secret.seal(&test_kek(), user_id).unwrap();
    let now = app.clock.now();
    assert!(app.store.begin_totp(user_id, &sealed, now).unwrap());
    // An old step: the codes of now are still unused.
    assert!(app.store.confirm_totp(user_id, &sealed, 1, now).unwrap());
    secret
}

/// A password sign-in that stops at the second-factor page.
async fn at_second_factor(browser: &Browser, url: &str) -> (Url, String) {
    let outcome = browser.login(browser.open(url).await, "alice").await;
    let (url, status, html) = outcome.page();
    assert_eq!(status, StatusCode::OK, "{html}");
    assert!(url.path().ends_with("/login/factor"), "{url}");
    (url, html)
}

fn ends_at_client(outcome: Outcome) -> Url {
    outcome.left()
}

#[tokio::test]
async fn a_required_second_factor_is_enrolled_at_sign_in_and_asked_for_every_time() {
    let app = app_with(&[("MFA", "required")]).await;
    let alice = app.add_user("alice").await;
    let client = app.add_client(false);
    let (url, pkce) = app.authorize_url(&client, &[("acr_values", ACR_MFA)]);
    let browser = app.browser();
    let (page, html) = at_second_factor(&browser, &url).await;
    // The enrolment shows the key as text, the otpauth URI and a QR code made here.
    assert!(html.contains("otpauth://totp/"), "{html}");
    assert!(html.contains("<svg"), "{html}");
    assert!(html.contains("name=\"code\""));
    let secret = totp_secret(&app, &alice);
    assert!(html.contains(&secret.to_base32()), "the key as text");
    assert!(
        app.store
            .find_totp(&alice)
            .unwrap()
            .unwrap()
            .confirmed_at
            .is_none(),
        "not a factor until its first code"
    );
    let wrong = browser.submit(&page, &html, &[("code", "000000")]).await;
    let (_, status, html) = wrong.page();
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(html.contains("role=\"alert\""));
    let outcome = browser
        .submit(&page, &html, &[("code", &code_now(&app, &secret))])
        .await;
    let callback = ends_at_client(browser.consent_if_asked(outcome).await);
    let tokens = app.exchange(&client, &callback, &pkce).await;
    let id_token = jwt_part(tokens["id_token"].as_str().unwrap(), 1);
    assert_eq!(id_token["amr"], json!(["pwd", "otp", "mfa"]));
    assert_eq!(id_token["acr"], ACR_MFA);
    let access = jwt_part(tokens["access_token"].as_str().unwrap(), 1);
    assert_eq!(
        access["amr"],
        json!(["pwd", "otp", "mfa"]),
        "RFC 9068 §2.2.1"
    );
    assert_eq!(access["acr"], ACR_MFA);
    assert!(
        app.store
            .find_totp(&alice)
            .unwrap()
            .unwrap()
            .confirmed_at
            .is_some()
    );

    // The next sign-in asks for a code; the code just used is refused (RFC 6238 §5.2).
    let used = code_now(&app, &secret);
    let other = app.browser();
    let (url, _) = app.authorize_url(&client, &[]);
    let (page, html) = at_second_factor(&other, &url).await;
    assert!(!html.contains("otpauth://"), "no enrolment this time");
    let (_, status, html) = other.submit(&page, &html, &[("code", &used)]).await.page();
    assert_eq!(status, StatusCode::UNAUTHORIZED, "a used code: {html}");
    app.clock.advance(30);
    let outcome = other
        .submit(&page, &html, &[("code", &code_now(&app, &secret))])
        .await;
    ends_at_client(other.consent_if_asked(outcome).await);
}

#[tokio::test]
async fn recovery_codes_work_once_each_and_regeneration_kills_the_old_set() {
    let app = spawn_app().await;
    let alice = app.add_user("alice").await;
    enrol_totp(&app, &alice);
    let codes = recovery::generate();
    let now = app.clock.now();
    app.store
        .replace_recovery_codes(&alice, &recovery::hashes(&test_kek(), &alice, &codes), now)
        .unwrap();
    let client = app.add_client(false);
    let use_recovery = |code: String| {
        let app = &app;
        let client = &client;
        async move {
            let browser = app.browser();
            let (url, _) = app.authorize_url(client, &[]);
            let (page, html) = at_second_factor(&browser, &url).await;
            // The page offers the other factors the user has by links.
            let link = page.join(&link_to(&html, "factor=recovery")).unwrap();
            let (page, _, html) = browser.open(link.as_str()).await.page();
            assert!(html.contains("value=\"recovery\""), "{html}");
            let outcome = browser.submit(&page, &html, &[("code", &code)]).await;
            browser.consent_if_asked(outcome).await
        }
    };
    // Typed with spaces and in capitals: the same code.
    let typed = codes[0].to_uppercase().replace('-', " ");
    let callback = use_recovery(typed).await.left();
    assert!(callback.query().unwrap().contains("code="));
    assert_eq!(app.store.count_recovery_codes(&alice).unwrap(), 9);
    let (_, status, _) = use_recovery(codes[0].clone()).await.page();
    assert_eq!(status, StatusCode::UNAUTHORIZED, "used once");
    // A new set: the old codes stop working.
    let fresh = recovery::generate();
    app.store
        .replace_recovery_codes(&alice, &recovery::hashes(&test_kek(), &alice, &fresh), now)
        .unwrap();
    let (_, status, _) = use_recovery(codes[1].clone()).await.page();
    assert_eq!(status, StatusCode::UNAUTHORIZED, "the old set is gone");
    use_recovery(fresh[1].clone()).await.left();
}

/// The `href` of the page's link containing `needle`.
fn link_to(html: &str, needle: &str) -> String {
    html.split("href=\"")
        .skip(1)
        .map(|rest| {
            rest[..rest.find('"').unwrap()]
                .replace("&amp;", "&")
                .replace("&#38;", "&")
        })
        .find(|href| href.contains(needle))
        .unwrap_or_else(|| panic!("no link with {needle}: {html}"))
}

#[tokio::test]
async fn wrong_codes_are_throttled_per_account_and_the_right_one_then_waits_too() {
    let app = spawn_app().await;
    let alice = app.add_user("alice").await;
    let secret = enrol_totp(&app, &alice);
    let client = app.add_client(false);
    let browser = app.browser();
    let (url, _) = app.authorize_url(&client, &[]);
    let (page, mut html) = at_second_factor(&browser, &url).await;
    for _ in 0..5 {
        let (_, status, next) = browser
            .submit(&page, &html, &[("code", "000000")])
            .await
            .page();
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        html = next;
    }
    let (_, status, html) = browser
        .submit(&page, &html, &[("code", &code_now(&app, &secret))])
        .await
        .page();
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{html}");
    // Another browser (another sign-in, the password again) is held to the same count.
    let other = app.browser();
    let (page, html) = at_second_factor(&other, &url).await;
    let (_, status, _) = other
        .submit(&page, &html, &[("code", &code_now(&app, &secret))])
        .await
        .page();
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
}

#[tokio::test]
async fn a_password_session_asked_for_two_factors_is_stepped_up_in_place() {
    let app = spawn_app().await;
    let alice = app.add_user("alice").await;
    let client = app.add_client(false);
    let browser = app.browser();
    let (url, pkce) = app.authorize_url(&client, &[("acr_values", "urn:portcullis:acr:password")]);
    let callback = browser.sign_in(&url, "alice").await;
    let first = app.exchange(&client, &callback, &pkce).await;
    let first_id = jwt_part(first["id_token"].as_str().unwrap(), 1);
    assert_eq!(first_id["amr"], json!(["pwd"]));
    // Alice enrols an authenticator; the app then asks for two factors.
    let secret = enrol_totp(&app, &alice);
    app.clock.advance(60);
    let (url, pkce) = app.authorize_url(&client, &[("acr_values", ACR_MFA)]);
    let (page, _, html) = browser.open(&url).await.page();
    assert!(
        page.path().ends_with("/login/factor"),
        "straight to the factor: {page}"
    );
    assert!(
        !html.contains("name=\"password\""),
        "the password is not asked again"
    );
    let outcome = browser
        .submit(&page, &html, &[("code", &code_now(&app, &secret))])
        .await;
    let callback = browser.consent_if_asked(outcome).await.left();
    let stepped = app.exchange(&client, &callback, &pkce).await;
    let id = jwt_part(stepped["id_token"].as_str().unwrap(), 1);
    assert_eq!(id["sid"], first_id["sid"], "the same session");
    assert_eq!(id["acr"], ACR_MFA);
    assert_eq!(id["amr"], json!(["pwd", "otp", "mfa"]));
    assert_eq!(
        id["auth_time"], first_id["auth_time"],
        "authenticated when the password was: the oldest proof"
    );
    // prompt=none now gets a code at once: the session has two factors.
    let (url, _) = app.authorize_url(&client, &[("acr_values", ACR_MFA), ("prompt", "none")]);
    assert!(
        browser
            .open(&url)
            .await
            .left()
            .query()
            .unwrap()
            .contains("code=")
    );
    // A fresh browser with prompt=none and a two-factor request: login_required.
    let (url, _) = app.authorize_url(&client, &[("acr_values", ACR_MFA), ("prompt", "none")]);
    let left = app.browser().open(&url).await.left();
    assert!(
        left.query().unwrap().contains("error=login_required"),
        "{left}"
    );
}

#[tokio::test]
async fn with_mfa_off_discovery_offers_one_level_and_an_essential_mfa_request_is_refused() {
    let app = app_with(&[("MFA", "off")]).await;
    let doc = app.get_json("/.well-known/openid-configuration").await;
    assert_eq!(
        doc["acr_values_supported"],
        json!(["urn:portcullis:acr:password"])
    );
    app.add_user("alice").await;
    let client = app.add_client(false);
    let claims = json!({"id_token": {"acr": {"essential": true, "value": ACR_MFA}}}).to_string();
    let (url, _) = app.authorize_url(&client, &[("claims", &claims)]);
    let left = app.browser().open(&url).await.left();
    assert!(
        left.query().unwrap().contains("error=access_denied"),
        "{left}"
    );
}

#[tokio::test]
async fn a_step_up_of_a_session_ended_meanwhile_completes_nothing() {
    let app = spawn_app().await;
    let alice = app.add_user("alice").await;
    let client = app.add_client(false);
    let browser = app.signed_in(&client, "alice").await;
    let secret = enrol_totp(&app, &alice);
    let (url, _) = app.authorize_url(&client, &[("acr_values", ACR_MFA)]);
    let (page, _, html) = browser.open(&url).await.page();
    assert!(page.path().ends_with("/login/factor"), "{page}");
    // The session ends (signed out everywhere) while the code is being typed.
    app.store
        .end_user_sessions(&alice, app.clock.now())
        .unwrap();
    let outcome = browser
        .submit(&page, &html, &[("code", &code_now(&app, &secret))])
        .await;
    let (_, status, _) = outcome.page();
    assert_eq!(status, StatusCode::BAD_REQUEST, "the step-up has expired");
    let (url, _) = app.authorize_url(&client, &[("prompt", "none")]);
    let left = browser.open(&url).await.left();
    assert!(
        left.query().unwrap().contains("error=login_required"),
        "{left}"
    );
}

#[tokio::test]
async fn an_enrolment_key_is_shown_only_to_the_flow_that_began_it() {
    let app = app_with(&[("MFA", "required")]).await;
    let alice = app.add_user("alice").await;
    let client = app.add_client(false);
    // Two sign-ins reach the enrolment page; each shows a key of its own.
    let (url, _) = app.authorize_url(&client, &[]);
    let (first, second) = (app.browser(), app.browser());
    let (page_1, html_1) = at_second_factor(&first, &url).await;
    let key_1 = totp_secret(&app, &alice);
    let (_, html_2) = at_second_factor(&second, &url).await;
    let key_2 = totp_secret(&app, &alice);
    assert_ne!(key_1.to_base32(), key_2.to_base32());
    assert!(html_1.contains(&key_1.to_base32()) && !html_2.contains(&key_1.to_base32()));
    // The first key was replaced: its code confirms nothing.
    let (_, status, _) = first
        .submit(&page_1, &html_1, &[("code", &code_now(&app, &key_1))])
        .await
        .page();
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(
        app.store
            .find_totp(&alice)
            .unwrap()
            .unwrap()
            .confirmed_at
            .is_none()
    );
}
