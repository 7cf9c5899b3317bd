//! The admin console over HTTP (the browser tests click the same pages): it signs in
//! through the provider with the code flow and PKCE, refuses non-administrators, checks
//! CSRF on every form, and asks before destroying anything.

use reqwest::StatusCode;
use url::Url;

use crate::helpers::{Browser, Outcome, TestApp, hidden_inputs, spawn_app};

/// A browser signed in to the console as `username`; returns it with the first page.
pub(crate) async fn console_as(app: &TestApp, username: &str) -> (Browser, Url, String) {
    let browser = app.browser();
    let outcome = browser.open(&app.url("/admin")).await;
    assert!(
        outcome.is_page("/login"),
        "the console sends to the sign-in page"
    );
    let outcome = browser.login(outcome, username).await;
    assert!(
        !outcome.is_page("/consent"),
        "the console is first-party: its administrator is not asked to allow it"
    );
    let (url, status, html) = outcome.page();
    assert_eq!(status, StatusCode::OK, "{html}");
    (browser, url, html)
}

pub(crate) fn csrf(html: &str) -> String {
    hidden_inputs(html)
        .into_iter()
        .find(|(name, _)| name == "csrf")
        .map(|(_, v)| v)
        .expect("a CSRF token")
}

pub(crate) async fn post(
    browser: &Browser,
    app: &TestApp,
    path: &str,
    form: &[(&str, &str)],
) -> Outcome {
    let response = browser
        .http
        .post(app.url(path))
        .header("origin", app.url("").trim_end_matches('/'))
        .form(form)
        .send()
        .await
        .unwrap();
    browser.follow(response).await
}

#[tokio::test]
async fn an_administrator_signs_in_and_registers_an_app_whose_secret_is_shown_once() {
    let app = spawn_app().await;
    app.add_admin("root").await;
    let (browser, url, html) = console_as(&app, "root").await;
    assert!(url.path().ends_with("/admin/users"), "{url}");
    assert!(html.contains("root") && html.contains("Add a user"));
    let token = csrf(&html);

    let (_, status, html) = post(
        &browser,
        &app,
        "/admin/clients",
        &[
            ("csrf", &token),
            ("name", "Payroll"),
            ("redirect_uri", "https://payroll.example/callback"),
            ("kind", "web"),
        ],
    )
    .await
    .page();
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("Payroll is registered"), "{html}");
    assert!(html.contains(&app.url("/.well-known/openid-configuration")));
    let secret = html
        .split("<code class=\"secret\">")
        .nth(1)
        .and_then(|rest| rest.split('<').next())
        .expect("the secret is shown")
        .to_owned();
    assert!(secret.len() > 30);
    let (_, _, listed) = browser.open(&app.url("/admin/clients")).await.page();
    assert!(
        listed.contains("Payroll") && !listed.contains(&secret),
        "shown once"
    );

    // A bad redirect URI is said on the form, and nothing is registered.
    let (_, status, html) = post(
        &browser,
        &app,
        "/admin/clients",
        &[
            ("csrf", &token),
            ("name", "Bad"),
            ("redirect_uri", "ftp://x"),
            ("kind", "web"),
        ],
    )
    .await
    .page();
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(html.contains("role=\"alert\""), "{html}");
    assert!(!html.contains("<td>Bad</td>"));

    // Without the form's CSRF token nothing happens.
    let (_, status, _) = post(
        &browser,
        &app,
        "/admin/clients",
        &[
            ("csrf", "forged"),
            ("name", "Evil"),
            ("redirect_uri", "https://evil.example/cb"),
            ("kind", "web"),
        ],
    )
    .await
    .page();
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (_, _, listed) = browser.open(&app.url("/admin/clients")).await.page();
    assert!(!listed.contains("Evil"));
}

#[tokio::test]
async fn destructive_actions_ask_first_and_a_disabled_user_is_shown_so() {
    let app = spawn_app().await;
    app.add_admin("root").await;
    let victim = app.add_user("mallory").await;
    let (browser, _, html) = console_as(&app, "root").await;
    let token = csrf(&html);

    // Her apps are listed, and their access can be withdrawn.
    let client = app.add_client(false);
    app.tokens_for(&client, "mallory").await;
    let (_, _, page) = browser
        .open(&app.url(&format!("/admin/users/{victim}")))
        .await
        .page();
    assert!(
        page.contains(&format!("<code>{}</code>", client.id)),
        "{page}"
    );
    let withdraw = format!("/admin/users/{victim}/withdraw");
    let (_, _, page) = post(
        &browser,
        &app,
        &withdraw,
        &[("csrf", &token), ("client_id", &client.id)],
    )
    .await
    .page();
    assert!(
        page.contains("access was withdrawn")
            && !page.contains(&format!("<code>{}</code>", client.id)),
        "{page}"
    );

    let delete = format!("/admin/users/{victim}/delete");
    let (_, status, html) = post(&browser, &app, &delete, &[("csrf", &token)])
        .await
        .page();
    assert_eq!(status, StatusCode::OK);
    assert!(
        html.contains("Delete mallory?") && html.contains("name=\"confirm\""),
        "{html}"
    );
    let (_, _, page) = browser
        .open(&app.url(&format!("/admin/users/{victim}")))
        .await
        .page();
    assert!(page.contains("mallory"), "not deleted before confirming");

    let disable = format!("/admin/users/{victim}/disable");
    let (_, _, page) = post(&browser, &app, &disable, &[("csrf", &token)])
        .await
        .page();
    assert!(page.contains("· disabled"), "{page}");

    let (url, _, _) = post(
        &browser,
        &app,
        &delete,
        &[("csrf", &token), ("confirm", "yes")],
    )
    .await
    .page();
    assert!(url.path().ends_with("/admin/users"));
    let (_, status, _) = browser
        .open(&app.url(&format!("/admin/users/{victim}")))
        .await
        .page();
    assert_eq!(status, StatusCode::BAD_REQUEST, "gone");
}

#[tokio::test]
async fn a_user_without_the_admin_role_is_refused_and_signing_out_ends_the_session() {
    let app = spawn_app().await;
    app.add_user("plain").await;
    let browser = app.browser();
    let outcome = browser
        .login(browser.open(&app.url("/admin")).await, "plain")
        .await;
    let (_, status, html) = outcome.page();
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(html.contains("insufficient_scope"), "{html}");

    app.add_admin("root").await;
    let (browser, _, html) = console_as(&app, "root").await;
    let outcome = post(&browser, &app, "/admin/logout", &[("csrf", &csrf(&html))]).await;
    // RP-initiated logout of the console's own session: confirm, and back to /admin,
    // which asks for a sign-in again.
    let (url, _, html) = outcome.page();
    assert!(url.path().ends_with("/logout"), "{url}");
    let outcome = browser.submit(&url, &html, &[("decision", "logout")]).await;
    if !outcome.is_page("/login") {
        // The signed-out page, which goes on to /admin: that asks for a sign-in again.
        let again = browser.open(&app.url("/admin")).await;
        assert!(again.is_page("/login"), "signed out of the provider too");
    }
}

/// The form of a confirmation page that says yes: its path and its fields.
fn confirmation_form(html: &str) -> (String, Vec<(String, String)>) {
    let form = html
        .split("<form")
        .find(|f| f.contains("name=\"confirm\""))
        .expect("a confirmation form");
    let form = &form[..form.find("</form>").unwrap()];
    let action = form
        .split("action=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap()
        .replace("&#x2f;", "/")
        .replace("&#47;", "/");
    (action, hidden_inputs(form))
}

#[tokio::test]
async fn the_user_page_shows_second_factors_without_secrets_and_resets_them_after_asking() {
    let app = spawn_app().await;
    app.add_admin("root").await;
    let nina = app.add_user("nina").await;
    let client = app.add_client(false);
    let tokens = app.tokens_for(&client, "nina").await;
    let access = tokens["access_token"].as_str().unwrap();
    let sealed = crate::cli_factors::enrol(&app, &nina);
    let (browser, _, html) = console_as(&app, "root").await;
    let token = csrf(&html);
    let user_page = app.url(&format!("/admin/users/{nina}"));

    let (_, _, page) = browser.open(&user_page).await.page();
    for shown in [
        "Second factors",
        "Authenticator app",
        "Passkey: YubiKey\t5",
        "last used never",
        "9 recovery codes left.",
    ] {
        assert!(page.contains(shown), "{shown} in {page}");
    }
    for secret in [sealed.as_str(), "public key", "secret-looking", "Y3JlZA"] {
        assert!(!page.contains(secret), "{secret} in {page}");
    }

    // Without the form's CSRF token nothing happens, confirmed or not.
    let reset = format!("/admin/users/{nina}/reset_factors");
    let (_, status, _) = post(
        &browser,
        &app,
        &reset,
        &[("csrf", "forged"), ("confirm", "yes")],
    )
    .await
    .page();
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(app.store.find_totp(&nina).unwrap().is_some());

    // It asks first, and nothing is removed before the answer.
    let (_, status, html) = post(&browser, &app, &reset, &[("csrf", &token)])
        .await
        .page();
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("Reset the second factors of nina?"), "{html}");
    assert!(app.store.find_totp(&nina).unwrap().is_some());
    assert_eq!(app.userinfo_status(access).await, 200);

    let (action, fields) = confirmation_form(&html);
    assert_eq!(action, reset);
    let fields: Vec<(&str, &str)> = fields
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let (url, status, page) = post(&browser, &app, &action, &fields).await.page();
    assert_eq!(status, StatusCode::OK);
    assert_eq!(url.path(), format!("/admin/users/{nina}"));
    assert!(
        page.contains("The second factors were removed")
            && page.contains("No authenticator app or passkey.")
            && page.contains("0 recovery codes left.")
            && !page.contains("YubiKey"),
        "{page}"
    );
    assert!(app.store.find_totp(&nina).unwrap().is_none());
    assert!(app.store.list_passkeys(&nina).unwrap().is_empty());
    assert_eq!(app.userinfo_status(access).await, 401, "her sessions ended");
    let event = &app.store.list_audit_events(None, 1).unwrap()[0];
    assert_eq!(
        (
            event.actor.as_str(),
            event.action.as_str(),
            event.target.as_deref()
        ),
        (
            "user:root",
            "user.second_factors_reset",
            Some(nina.as_str())
        )
    );
}

#[tokio::test]
async fn the_console_requires_a_second_factor_of_a_user_and_of_an_app() {
    let app = spawn_app().await;
    app.add_admin("root").await;
    let oscar = app.add_user("oscar").await;
    let (browser, _, html) = console_as(&app, "root").await;
    let token = csrf(&html);

    let (_, _, page) = post(
        &browser,
        &app,
        &format!("/admin/users/{oscar}/require_mfa"),
        &[("csrf", &token)],
    )
    .await
    .page();
    assert!(page.contains("· second factor required"), "{page}");
    assert!(page.contains("Stop requiring a second factor"), "{page}");
    assert!(app.store.find_user(&oscar).unwrap().unwrap().mfa_required);
    let (_, _, page) = post(
        &browser,
        &app,
        &format!("/admin/users/{oscar}/waive_mfa"),
        &[("csrf", &token)],
    )
    .await
    .page();
    assert!(!page.contains("· second factor required"), "{page}");
    assert!(!app.store.find_user(&oscar).unwrap().unwrap().mfa_required);

    // An app registered with the box ticked, then changed from its row.
    let (_, status, html) = post(
        &browser,
        &app,
        "/admin/clients",
        &[
            ("csrf", &token),
            ("name", "Payroll"),
            ("redirect_uri", "https://payroll.example/callback"),
            ("kind", "web"),
            ("require_mfa", "yes"),
        ],
    )
    .await
    .page();
    assert_eq!(status, StatusCode::OK, "{html}");
    assert!(html.contains("Payroll <span class=\"tag\">second factor required</span>"));
    let payroll = |app: &TestApp| {
        app.store
            .list_clients()
            .unwrap()
            .into_iter()
            .find(|c| c.name == "Payroll")
            .unwrap()
    };
    let id = payroll(&app).id;
    assert!(payroll(&app).require_mfa);
    let waive = format!("/admin/clients/{id}/waive_mfa");
    let (_, status, _) = post(&browser, &app, &waive, &[("csrf", "forged")])
        .await
        .page();
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        payroll(&app).require_mfa,
        "unchanged without the CSRF token"
    );
    let (url, _, listed) = post(&browser, &app, &waive, &[("csrf", &token)])
        .await
        .page();
    assert!(url.path().ends_with("/admin/clients"), "{url}");
    assert!(!listed.contains("second factor required"), "{listed}");
    assert!(!payroll(&app).require_mfa);
    post(
        &browser,
        &app,
        &format!("/admin/clients/{id}/require_mfa"),
        &[("csrf", &token)],
    )
    .await;
    assert!(payroll(&app).require_mfa);
    assert_eq!(
        app.store.list_audit_events(None, 1).unwrap()[0].action,
        "client.updated"
    );

    // The console's own app is the provider's: it stays as every instance sets it up.
    let (_, status, _) = post(
        &browser,
        &app,
        "/admin/clients/portcullis-console/require_mfa",
        &[("csrf", &token)],
    )
    .await
    .page();
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

/// A user whose `sub` came from another provider (`auth0|…`, or any `:` and `@`) is the
/// one the console's links and forms act on, and so is one whose id holds a `%` (written
/// before imports refused it): ids are encoded in paths, and the router decodes them
/// back, so `%76ictim` never reaches `victim`.
#[tokio::test]
async fn console_actions_reach_the_user_whose_id_has_reserved_characters() {
    use portcullis::store::User;

    let app = spawn_app().await;
    app.add_admin("root").await;
    for (id, username) in [
        ("victim", "victim"),
        ("auth0|64a1:x@example", "imported"),
        ("%76ictim", "percent"),
    ] {
        app.store
            .create_user(&User::new(
                id.into(),
                username.into(),
                String::new(),
                portcullis::domain::now(),
            ))
            .unwrap();
    }
    let (browser, _, html) = console_as(&app, "root").await;
    let token = csrf(&html);
    for (encoded, username) in [
        ("auth0%7C64a1%3Ax%40example", "imported"),
        ("%2576ictim", "percent"),
    ] {
        let page = format!("/admin/users/{encoded}");
        assert!(html.contains(&page), "the list links to {page}: {html}");
        let (_, status, shown) = browser.open(&app.url(&page)).await.page();
        assert_eq!(status, StatusCode::OK, "{shown}");
        assert!(shown.contains(username), "{shown}");
        let disable = format!("{page}/disable");
        assert!(shown.contains(&disable), "{shown}");
        let (_, _, after) = post(&browser, &app, &disable, &[("csrf", &token)])
            .await
            .page();
        assert!(after.contains("· disabled"), "{after}");
        let user = app.store.find_user_by_username(username).unwrap().unwrap();
        assert!(user.disabled_at.is_some(), "{username} is the one disabled");
    }
    let victim = app.store.find_user("victim").unwrap().unwrap();
    assert!(victim.disabled_at.is_none(), "no other user was touched");
}
