//! Groups in a real browser, on a 375 px phone: the console's groups page and one
//! group's page (create, add a member, delete after asking), and the consent page that
//! says the `groups` scope releases the user's groups, in English and French. Every page
//! is checked as in `browser` (axe, console errors, no sideways scroll).

use crate::browser::Chrome;
use crate::helpers::{PASSWORD, spawn_app};

#[tokio::test]
async fn an_administrator_manages_groups_in_the_console_on_a_phone() {
    let Some(chrome) = Chrome::start("groups").await else {
        return;
    };
    chrome.client.set_window_size(375, 812).await.unwrap();
    let app = spawn_app().await;
    app.add_admin("root").await;
    app.add_user("alice").await;

    chrome.goto(&app.url("/admin")).await;
    chrome.type_into("#username", "root").await;
    chrome.type_into("#password", PASSWORD).await;
    chrome.click("button[type=submit]").await;
    chrome.find("#new-username").await;

    chrome.click("nav a[href$='/admin/groups']").await;
    chrome.find("#group-name").await;
    chrome.check("console-groups-empty").await;
    chrome.type_into("#group-name", "Ops").await;
    chrome.click("form.panel button[type=submit]").await;
    chrome.find("#member-username").await;
    chrome.type_into("#member-username", "alice").await;
    chrome
        .click("form[action$='/add_member'] button[type=submit]")
        .await;
    let shown = chrome.find("[role=status]").await.text().await.unwrap();
    assert!(shown.contains("The member was added."), "{shown}");
    chrome.check("console-group").await;

    // A refusal is said on the page, where a screen reader hears it.
    chrome.type_into("#member-username", "nobody").await;
    chrome
        .click("form[action$='/add_member'] button[type=submit]")
        .await;
    let alert = chrome.find("[role=alert]").await.text().await.unwrap();
    assert!(alert.contains("no such user"), "{alert}");
    chrome.check("console-group-refused").await;

    chrome.goto(&app.url("/admin/groups")).await;
    chrome.find("table").await;
    chrome.check("console-groups").await;

    // The consent page names what the scope releases (root signed in already).
    let client = app.add_client(false);
    for (locale, words) in [
        ("en", "See the groups you belong to"),
        ("fr", "Voir les groupes dont vous êtes membre"),
    ] {
        let (url, _) = app.authorize_url(
            &client,
            &[("scope", "openid groups"), ("ui_locales", locale)],
        );
        chrome.goto(&url).await;
        let list = chrome.find("ul.scopes").await.text().await.unwrap();
        assert!(list.contains(words), "{locale}: {list}");
        chrome.check(&format!("consent-groups-{locale}")).await;
    }

    // The console in French now (the choice is kept in a cookie), and deleting asks.
    chrome.goto(&app.url("/admin/groups")).await;
    chrome.click("td a").await;
    chrome.find("#member-username").await;
    chrome.check("console-group-fr").await;
    chrome.click("form[action$='/delete'] button").await;
    chrome.find("input[name=confirm]").await;
    chrome.check("console-group-confirm-fr").await;
    chrome.click("button.danger").await;
    chrome.find("#group-name").await;
    let source = chrome.client.source().await.unwrap();
    assert!(source.contains("Aucun groupe"), "deleted, in French");
    chrome.done().await;
}
