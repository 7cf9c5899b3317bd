//! Languages and branding of the pages: `ui_locales` (remembered for the pages that
//! follow), `Accept-Language`, English by default; the operator's name, logo and colour;
//! the first-run hint.

use std::collections::HashMap;

use portcullis::config::Settings;
use reqwest::StatusCode;

use crate::helpers::{Options, TestApp, http, spawn_app, spawn_app_with};

async fn login_page(
    app: &TestApp,
    extra: &[(&str, &str)],
    accept_language: Option<&str>,
) -> (String, Option<String>) {
    let client = app.add_client(false);
    let (url, _) = app.authorize_url(&client, extra);
    let browser = app.browser();
    let mut request = browser.http.get(&url);
    if let Some(value) = accept_language {
        request = request.header("accept-language", value);
    }
    let response = request.send().await.unwrap();
    let cookie = response
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|c| c.starts_with("portcullis_locale="))
        .map(str::to_owned);
    let mut outcome = browser.follow(response).await;
    if let Some(value) = accept_language {
        let (url, _, _) = outcome.page();
        let response = browser
            .http
            .get(url)
            .header("accept-language", value)
            .send()
            .await
            .unwrap();
        outcome = browser.follow(response).await;
    }
    let (_, status, html) = outcome.page();
    assert_eq!(status, StatusCode::OK);
    (html, cookie)
}

#[tokio::test]
async fn pages_follow_ui_locales_then_accept_language_then_english() {
    let app = spawn_app().await;
    let (english, cookie) = login_page(&app, &[], None).await;
    assert!(english.contains("<html lang=\"en\">") && english.contains("<h1>Sign in</h1>"));
    assert!(cookie.is_none());

    let (french, cookie) = login_page(&app, &[("ui_locales", "de fr-CA en")], None).await;
    assert!(french.contains("<html lang=\"fr\">"), "{french}");
    assert!(french.contains("<h1>Connexion</h1>") && french.contains("Mot de passe"));
    let cookie = cookie.expect("the choice is remembered for the pages that follow");
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax"),
        "{cookie}"
    );

    let (accepted, _) = login_page(&app, &[], Some("fr-CH, fr;q=0.9, en;q=0.8")).await;
    assert!(accepted.contains("<html lang=\"fr\">"));
    let (unknown, _) = login_page(&app, &[("ui_locales", "ja")], Some("de")).await;
    assert!(
        unknown.contains("<html lang=\"en\">"),
        "nothing we speak: English"
    );

    let discovery = app.get_json("/.well-known/openid-configuration").await;
    assert_eq!(
        discovery["ui_locales_supported"],
        serde_json::json!(["en", "fr"])
    );
}

#[tokio::test]
async fn a_wrong_password_is_told_in_the_page_language() {
    let app = spawn_app().await;
    app.add_user("zoe").await;
    let client = app.add_client(false);
    let (url, _) = app.authorize_url(&client, &[("ui_locales", "fr")]);
    let browser = app.browser();
    let outcome = browser.open(&url).await;
    let (page, _, html) = outcome.page();
    let outcome = browser
        .submit(&page, &html, &[("username", "zoe"), ("password", "wrong")])
        .await;
    let (_, _, html) = outcome.page();
    assert!(
        html.contains("Nom d’utilisateur ou mot de passe incorrect."),
        "{html}"
    );
}

#[tokio::test]
async fn the_operator_brands_the_pages_without_rebuilding() {
    let dir = tempfile::TempDir::new().unwrap();
    let sheet = dir.path().join("brand.css");
    std::fs::write(&sheet, ".card { border-width: 3px; }").unwrap();
    let app = spawn_app_with(Options {
        env: vec![
            ("BRAND_NAME", "Acme ID".into()),
            ("BRAND_LOGO_URL", "https://acme.example/logo.svg".into()),
            ("BRAND_ACCENT_COLOR", "#AA3300".into()),
            ("BRAND_STYLESHEET", sheet.display().to_string()),
        ],
        ..Options::default()
    })
    .await;
    let (html, _) = login_page(&app, &[], None).await;
    assert!(html.contains("Sign in · Acme ID</title>"), "{html}");
    assert!(
        html.contains("<img class=\"logo\" src=\"https://acme.example/logo.svg\" alt=\"\">Acme ID")
    );
    assert!(html.contains("/static/brand.css"));
    let css = http()
        .get(app.url("/static/brand.css"))
        .send()
        .await
        .unwrap();
    assert_eq!(css.headers()["content-type"], "text/css; charset=utf-8");
    let css = css.text().await.unwrap();
    assert!(css.contains(":root { --accent: #aa3300; }") && css.contains("border-width: 3px"));

    // Without branding, no extra stylesheet is linked.
    let plain = spawn_app().await;
    let (html, _) = login_page(&plain, &[], None).await;
    assert!(html.contains("Sign in · Portcullis</title>") && !html.contains("brand.css"));
}

#[test]
fn bad_branding_stops_the_server_with_a_message_naming_the_key() {
    for (key, value, named) in [
        ("PORTCULLIS_BRAND_ACCENT_COLOR", "red", "brand_accent_color"),
        (
            "PORTCULLIS_BRAND_LOGO_URL",
            "http://insecure.example/logo.png",
            "brand_logo_url",
        ),
        (
            "PORTCULLIS_BRAND_STYLESHEET",
            "/no/such/file.css",
            "brand_stylesheet",
        ),
        ("PORTCULLIS_BRAND_NAME", &"x".repeat(61), "brand_name"),
    ] {
        let env = HashMap::from([(key.to_owned(), value.to_owned())]);
        let error = Settings::from_sources(None, |k| env.get(k).cloned()).unwrap_err();
        assert_eq!(error.key, named);
    }
}

#[tokio::test]
async fn an_empty_database_says_how_to_create_the_first_admin() {
    let app = spawn_app().await;
    let settings = Settings::from_sources(None, |k| {
        (k == "PORTCULLIS_ISSUER").then(|| app.issuer.clone())
    })
    .unwrap();
    let hint = portcullis::startup::first_run_hint(&*app.store, &settings)
        .unwrap()
        .unwrap();
    assert!(
        hint.contains("portcullis users add --username admin --admin --password-stdin"),
        "{hint}"
    );
    assert!(hint.contains(&app.url("/admin")), "{hint}");
    app.add_user("first").await;
    assert!(
        portcullis::startup::first_run_hint(&*app.store, &settings)
            .unwrap()
            .is_none()
    );
}
