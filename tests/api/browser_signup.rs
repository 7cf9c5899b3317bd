//! Invitations and sign-up in a real browser on a 375 px phone, in English and French:
//! the invitation's form (refused, then accepted; in both languages), a used link's page, "Create an
//! account" from the login page, "Check your mail", the confirmation and the account
//! that is ready. Every page is checked as in `browser` (axe, console errors, no
//! sideways scroll); forms are sent with the keyboard.

use reqwest::Method;
use serde_json::json;

use crate::admin_api::{automation, call};
use crate::browser::Chrome;
use crate::helpers::{Options, PASSWORD, spawn_app_with};
use crate::signup::link_mailed_to;
use crate::virtual_authenticator::add_virtual_authenticator;

#[tokio::test]
async fn the_invitation_and_sign_up_pages_work_on_a_phone_in_english_and_french() {
    let Some(chrome) = Chrome::start("signup").await else {
        return;
    };
    chrome.client.set_window_size(375, 812).await.unwrap();
    let app = spawn_app_with(Options {
        env: vec![("SIGNUP", "open".to_owned())],
        ..Options::default()
    })
    .await;
    let (_, token) = automation(&app).await;
    call(
        &app,
        Some(&token),
        Method::POST,
        "/invitations",
        Some(json!({ "email": "ivy@example.org" })),
    )
    .await;
    let (link, _) = link_mailed_to(&app, "ivy@example.org", "/signup/invitation").await;

    chrome.goto(&link).await;
    chrome.find("#password_confirmation").await;
    chrome.check("invitation").await;
    chrome.type_into("#username", "ivy").await;
    chrome.type_into("#password", PASSWORD).await;
    chrome
        .type_into("#password_confirmation", "something else entirely")
        .await;
    chrome.press("\u{E007}").await; // Enter
    let alert = chrome.find("[role=alert]").await.text().await.unwrap();
    assert!(alert.contains("not the same"), "{alert}");
    chrome.check("invitation-refused").await;
    chrome.type_into("#password", PASSWORD).await;
    chrome.type_into("#password_confirmation", PASSWORD).await;
    chrome.press("\u{E007}").await;
    chrome.wait_for_heading("Your account is ready").await;
    chrome.check("invitation-done").await;
    chrome.goto(&link).await;
    chrome.find("h1").await;
    chrome.check("invitation-used").await;

    // "Créer un compte" from the login page of an app's sign-in, in French.
    let client = app.add_client(true);
    let (url, _) = app.authorize_url(&client, &[("ui_locales", "fr")]);
    chrome.goto(&url).await;
    chrome.find("#username").await;
    chrome.check("login-signup-fr").await;
    chrome.click("p.signup a").await;
    chrome.find("#email").await;
    chrome.check("signup-fr").await;
    chrome.type_into("#username", "jules").await;
    chrome.type_into("#email", "jules@example.org").await;
    chrome.type_into("#password", PASSWORD).await;
    chrome.type_into("#password_confirmation", PASSWORD).await;
    chrome.press("\u{E007}").await;
    chrome.wait_for_heading("Consultez vos e-mails").await;
    chrome.check("check-mail-fr").await;
    let (link, text) = link_mailed_to(&app, "jules@example.org", "/signup/verify").await;
    assert!(text.contains("24 heures"), "{text}");
    chrome.goto(&link).await;
    chrome.find("form button[type=submit]").await;
    chrome.check("verify-fr").await;
    chrome.type_into("#password", PASSWORD).await;
    chrome.click("form button[type=submit]").await;
    chrome.wait_for_heading("Votre compte est prêt").await;
    chrome.check("signup-done-fr").await;
    assert!(
        app.store
            .find_user_by_username("jules")
            .unwrap()
            .unwrap()
            .email_verified
    );

    // An invitation's page in French (the browser now speaks it: the sign-in's
    // ui_locales is remembered), refused then accepted with the keyboard.
    call(
        &app,
        Some(&token),
        Method::POST,
        "/invitations",
        Some(json!({ "email": "lou@example.org", "locale": "fr" })),
    )
    .await;
    let (link, text) = link_mailed_to(&app, "lou@example.org", "/signup/invitation").await;
    assert!(text.contains("7 jours"), "{text}");
    chrome.goto(&link).await;
    chrome.wait_for_heading("Accepter votre invitation").await;
    chrome.check("invitation-fr").await;
    chrome.type_into("#username", "lou").await;
    chrome.type_into("#password", PASSWORD).await;
    chrome
        .type_into("#password_confirmation", "tout autre chose")
        .await;
    chrome.press("\u{E007}").await;
    chrome.find("[role=alert]").await;
    chrome.check("invitation-refused-fr").await;
    chrome.type_into("#password", PASSWORD).await;
    chrome.type_into("#password_confirmation", PASSWORD).await;
    chrome.press("\u{E007}").await;
    chrome.wait_for_heading("Votre compte est prêt").await;
    chrome.check("invitation-done-fr").await;
    chrome.done().await;
    app.stop().await;
}

/// An invitation accepted with "Create a passkey" in a real browser (Chromium's virtual
/// authenticator, as in `browser_passkeys`), then a sign-in with that passkey alone: the
/// login page's autofill offers it, and the virtual authenticator answers by itself.
#[tokio::test]
async fn an_invitation_accepted_with_a_passkey_in_the_browser_signs_in_with_it() {
    let Some(chrome) = Chrome::start("signup-passkey").await else {
        return;
    };
    chrome.client.set_window_size(375, 812).await.unwrap();
    let app = spawn_app_with(Options {
        issuer_host: Some("localhost"),
        env: vec![("SIGNUP", "invite".to_owned())],
        ..Options::default()
    })
    .await;
    let (_, token) = automation(&app).await;
    call(
        &app,
        Some(&token),
        Method::POST,
        "/invitations",
        Some(json!({ "email": "nia@example.org" })),
    )
    .await;
    let (link, _) = link_mailed_to(&app, "nia@example.org", "/signup/invitation").await;

    chrome.goto(&link).await;
    add_virtual_authenticator(&chrome.client).await.unwrap();
    let button = chrome
        .find("[data-passkey=invitation] [data-passkey-start]")
        .await;
    assert_eq!(button.text().await.unwrap(), "Create a passkey");
    assert!(button.is_displayed().await.unwrap());
    chrome.check("invitation-passkey").await;
    chrome.type_into("#username", "nia").await;
    button.click().await.unwrap();
    // The account is made; the script sends the browser to sign in, and the login page's
    // autofill signs it in with the new passkey, to the account page.
    chrome
        .wait_for_url("the account page", |u| u.path() == "/account")
        .await;
    let lead = chrome.find("p.lead strong").await.text().await.unwrap();
    assert_eq!(lead, "nia");
    chrome.check("invitation-passkey-signed-in").await;
    let nia = app.store.find_user_by_username("nia").unwrap().unwrap();
    assert_eq!(nia.password_hash, "");
    assert!(nia.email_verified);
    let passkeys = app.store.list_passkeys(&nia.id).unwrap();
    assert_eq!(passkeys.len(), 1);
    assert!(passkeys[0].last_used_at.is_some(), "it signed in");
    chrome.done().await;
    app.stop().await;
}
