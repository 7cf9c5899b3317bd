//! Passkeys in a real browser (issue 22): headless Chromium with WebDriver's virtual
//! authenticators (`virtual_authenticator`) runs real WebAuthn ceremonies against the
//! pages and `static/passkey.js`. The issuer is `http://localhost:PORT`: a secure context
//! and a domain, so an RP ID (the server listens on 127.0.0.1, which `localhost` reaches).
//! The window is a 375 px phone, and every page is checked as in `browser` (axe, console,
//! no sideways scroll).

use std::time::{Duration, Instant};

use portcullis::protocol::registration::ClientDraft;
use serde_json::Value;

use crate::browser::Chrome;
use crate::helpers::{Options, PASSWORD, TestApp, TestClient, spawn_app_with};
use crate::logout_receiver::Receiver;
use crate::virtual_authenticator::{
    add_virtual_authenticator, remove_virtual_authenticator, virtual_credentials,
    with_passkey_autofill, without_passkey_autofill,
};

async fn app_at_localhost() -> TestApp {
    spawn_app_with(Options {
        issuer_host: Some("localhost"),
        ..Options::default()
    })
    .await
}

/// A first-party app (no consent page) whose callback is the receiver's.
fn first_party_app(app: &TestApp, receiver: &Receiver) -> TestClient {
    app.add_client_with(ClientDraft {
        name: Some("Travel Planner".into()),
        redirect_uris: vec![format!("{}/app/callback", receiver.base)],
        first_party: true,
        ..ClientDraft::default()
    })
}

fn passkeys_of(app: &TestApp, user_id: &str) -> Vec<portcullis::store::StoredPasskey> {
    app.store.list_passkeys(user_id).unwrap()
}

/// Signs out through the logout page (confirmed by its button).
async fn sign_out(chrome: &Chrome, app: &TestApp) {
    chrome.goto(&app.url("/logout")).await;
    chrome.click("button[value=logout]").await;
    chrome
        .wait_for_url("the signed-out page", |u| !u.path().ends_with("/logout"))
        .await;
}

/// Waits (polling, with a deadline) until the page says `text`.
async fn wait_for_text(chrome: &Chrome, text: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let page = chrome.client.source().await.unwrap();
        if page.contains(text) {
            return;
        }
        assert!(Instant::now() < deadline, "never said {text:?}: {page}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The text of the passkey block's message once the script shows one.
async fn passkey_message(chrome: &Chrome) -> String {
    let alert = chrome.find("[data-passkey-error]:not([hidden])").await;
    alert.text().await.unwrap()
}

#[tokio::test]
async fn a_person_adds_a_passkey_signs_in_with_it_alone_and_after_a_password_then_removes_it() {
    let Some(chrome) = Chrome::start("passkeys").await else {
        return;
    };
    chrome.client.set_window_size(375, 812).await.unwrap();
    let app = app_at_localhost().await;
    let receiver = Receiver::start().await;
    let client = first_party_app(&app, &receiver);
    let alice = app.add_user("alice").await;

    // (a) A fresh sign-in with the password, then "Add a passkey" on the security page.
    chrome.goto(&app.url("/account/security")).await;
    let phone = add_virtual_authenticator(&chrome.client).await.unwrap();
    chrome.type_into("#username", "alice").await;
    chrome.type_into("#password", PASSWORD).await;
    chrome.click("button[type=submit]").await;
    chrome
        .wait_for_url("the account page", |u| u.path() == "/account")
        .await;
    chrome.goto(&app.url("/account/security")).await;
    let add = chrome
        .find("[data-passkey=register] [data-passkey-start]")
        .await;
    assert_eq!(add.text().await.unwrap(), "Add a passkey");
    chrome.check("security").await;
    chrome.type_into("#passkey-name", "Test phone").await;
    add.click().await.unwrap();
    let named = chrome.find("ul.items .item-name").await;
    assert_eq!(named.text().await.unwrap(), "Test phone");
    let stored = passkeys_of(&app, &alice);
    assert_eq!(stored.len(), 1);
    assert!(stored[0].user_verified);
    let held = virtual_credentials(&chrome.client, &phone).await.unwrap();
    assert_eq!(held.len(), 1);
    assert_eq!(held[0]["isResidentCredential"], true, "discoverable");
    assert_eq!(
        held[0]["credentialId"].as_str(),
        Some(stored[0].credential_id.as_str())
    );
    chrome.check("security-with-passkey").await;

    // (b) Signed out, then in with the passkey alone, no username: the browser offers it
    // in the username field's autofill (conditional mediation), which the virtual
    // authenticator answers at once, by itself.
    sign_out(&chrome, &app).await;
    let (authorize, pkce) = app.authorize_url(&client, &[]);
    chrome.goto(&authorize).await;
    let back = chrome
        .wait_for_url("the app", |u| u.path() == "/app/callback")
        .await;
    let tokens = app.exchange(&client, &back, &pkce).await;
    let id_token = crate::helpers::jwt_part(tokens["id_token"].as_str().unwrap(), 1);
    assert_eq!(id_token["sub"], alice.as_str());
    let amr: Vec<&str> = id_token["amr"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(
        amr.contains(&"mfa") && (amr.contains(&"hwk") || amr.contains(&"swk")),
        "a verifying passkey alone is two factors: {amr:?}"
    );
    assert!(passkeys_of(&app, &alice)[0].last_used_at.is_some());

    // ... and with the "Sign in with a passkey" button, in a browser whose autofill
    // offers none.
    sign_out(&chrome, &app).await;
    let no_autofill = without_passkey_autofill(&chrome.client).await.unwrap();
    let (authorize, _) = app.authorize_url(&client, &[]);
    chrome.goto(&authorize).await;
    let button = chrome
        .find("[data-passkey=sign-in] [data-passkey-start]")
        .await;
    assert_eq!(button.text().await.unwrap(), "Sign in with a passkey");
    let autocomplete = chrome.find("#username").await.attr("autocomplete").await;
    assert_eq!(autocomplete.unwrap().as_deref(), Some("username webauthn"));
    chrome.check("login-passkey").await;
    button.click().await.unwrap();
    chrome
        .wait_for_url("the app", |u| u.path() == "/app/callback")
        .await;

    // (c) The password, then the passkey as the second factor.
    sign_out(&chrome, &app).await;
    let (authorize, _) = app.authorize_url(&client, &[]);
    chrome.goto(&authorize).await;
    chrome.type_into("#username", "alice").await;
    chrome.type_into("#password", PASSWORD).await;
    chrome.click("button[type=submit]").await;
    let use_it = chrome
        .find("[data-passkey=second-factor] [data-passkey-start]")
        .await;
    assert!(chrome.url().await.path().ends_with("/login/factor"));
    assert_eq!(use_it.text().await.unwrap(), "Use your passkey");
    chrome.check("factor-passkey").await;
    use_it.click().await.unwrap();
    chrome
        .wait_for_url("the app", |u| u.path() == "/app/callback")
        .await;

    // (e) Another authenticator, whose credential this server never registered: refused,
    // with words for the person, and nobody is signed in by it.
    remove_virtual_authenticator(&chrome.client, &phone)
        .await
        .unwrap();
    let stranger = add_virtual_authenticator(&chrome.client).await.unwrap();
    let (authorize, _) = app.authorize_url(&client, &[("prompt", "login")]);
    chrome.goto(&authorize).await;
    chrome
        .find("[data-passkey=sign-in] [data-passkey-start]")
        .await;
    chrome
        .script(
            "return navigator.credentials.create({ publicKey: {
               rp: { id: 'localhost', name: 'Elsewhere' },
               user: { id: new Uint8Array([9, 9, 9]), name: 'alice', displayName: 'Alice' },
               challenge: crypto.getRandomValues(new Uint8Array(32)),
               pubKeyCredParams: [{ type: 'public-key', alg: -7 }],
               authenticatorSelection: { residentKey: 'required', userVerification: 'required' },
             } }).then(c => c.id);",
        )
        .await
        .unwrap();
    assert_eq!(
        virtual_credentials(&chrome.client, &stranger)
            .await
            .unwrap()
            .len(),
        1
    );
    chrome
        .click("[data-passkey=sign-in] [data-passkey-start]")
        .await;
    let refusal = "This passkey is not registered here. Sign in another way, then add it.";
    assert_eq!(passkey_message(&chrome).await, refusal);
    assert!(chrome.url().await.path().ends_with("/login"));
    assert_eq!(chrome.refused_by("/login/passkey/finish").await, 1);
    chrome.check("login-passkey-refused").await;
    // The autofill, answered by that authenticator by itself, is refused the same way,
    // and stops asking after three refusals (it would ask in a loop): the page checks
    // after them find no further one in the console.
    with_passkey_autofill(&chrome.client, &no_autofill)
        .await
        .unwrap();
    let (authorize, _) = app.authorize_url(&client, &[("prompt", "login")]);
    chrome.goto(&authorize).await;
    assert_eq!(passkey_message(&chrome).await, refusal);
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut refusals = 0;
    while refusals < 3 {
        assert!(Instant::now() < deadline, "{refusals} refusals");
        refusals += chrome.refused_by("/login/passkey/finish").await;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(refusals, 3);
    chrome.check("login-passkey-autofill-refused").await;
    assert_eq!(passkey_message(&chrome).await, refusal);
    assert!(chrome.url().await.path().ends_with("/login"));

    // (d) Removed on the security page (the sign-in of (c) is recent and strong enough).
    chrome.goto(&app.url("/account/security")).await;
    chrome
        .click("ul.items form:not(.inline) button.danger")
        .await;
    wait_for_text(&chrome, "No passkeys yet.").await;
    assert!(passkeys_of(&app, &alice).is_empty());

    // A sign-in that is no longer recent adds nothing: the page asks to confirm first,
    // and a fresh sign-in brings back the button.
    app.clock.advance(600);
    chrome.goto(&app.url("/account/security")).await;
    let confirm = chrome
        .find("form:has(input[name=action][value=confirm]) button")
        .await;
    assert_eq!(confirm.text().await.unwrap(), "Confirm it's you");
    let page = chrome.client.source().await.unwrap();
    assert!(!page.contains("data-passkey-start"), "{page}");
    chrome.check("security-confirm").await;
    confirm.click().await.unwrap();
    chrome.type_into("#password", PASSWORD).await;
    chrome.click("button[type=submit]").await;
    chrome
        .find("[data-passkey=register] [data-passkey-start]")
        .await;
    assert_eq!(chrome.url().await.path(), "/account/security");
    chrome.done().await;
}
