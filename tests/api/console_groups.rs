//! The console's groups pages over HTTP (the browser test clicks them too): create,
//! rename, add and remove members, delete after asking; CSRF on every form; refusals said
//! on the page; a user's groups on the user's page; English and French.

use reqwest::StatusCode;

use crate::console::{console_as, csrf, post};
use crate::helpers::spawn_app;

#[tokio::test]
async fn an_administrator_manages_groups_and_their_members_in_the_console() {
    let app = spawn_app().await;
    app.add_admin("root").await;
    let alice = app.add_user("alice").await;
    let (browser, _, html) = console_as(&app, "root").await;
    assert!(html.contains("/admin/groups\">Groups</a>"), "in the menu");
    let token = csrf(&html);
    let (_, status, html) = browser.open(&app.url("/admin/groups")).await.page();
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("No groups yet."), "{html}");

    let (url, status, html) = post(
        &browser,
        &app,
        "/admin/groups",
        &[("csrf", &token), ("name", "Ops")],
    )
    .await
    .page();
    assert_eq!(status, StatusCode::OK, "{html}");
    let group = url.path().rsplit('/').next().unwrap().to_owned();
    assert_eq!(url.path(), format!("/admin/groups/{group}"));
    assert!(
        html.contains("<h1>Ops</h1>") && html.contains("No members ·"),
        "{html}"
    );
    let group_path = |action: &str| format!("/admin/groups/{group}/{action}");

    // Refusals are said on the form's page; a forged form changes nothing.
    let (_, status, html) = post(
        &browser,
        &app,
        "/admin/groups",
        &[("csrf", &token), ("name", "OPS")],
    )
    .await
    .page();
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        html.contains("role=\"alert\"") && html.contains("exists already"),
        "{html}"
    );
    let (_, status, _) = post(
        &browser,
        &app,
        "/admin/groups",
        &[("csrf", "forged"), ("name", "Evil")],
    )
    .await
    .page();
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (_, _, listed) = browser.open(&app.url("/admin/groups")).await.page();
    assert!(
        listed.contains(">Ops</a>") && !listed.contains("Evil"),
        "{listed}"
    );

    let (url, _, html) = post(
        &browser,
        &app,
        &group_path("add_member"),
        &[("csrf", &token), ("username", "ALICE")],
    )
    .await
    .page();
    assert_eq!(url.query(), Some("done=added"));
    assert!(
        html.contains("The member was added.") && html.contains(">alice</a>"),
        "{html}"
    );
    for (username, message) in [
        ("nobody", "no such user"),
        ("alice", "alice is a member of Ops already"),
    ] {
        let (_, status, html) = post(
            &browser,
            &app,
            &group_path("add_member"),
            &[("csrf", &token), ("username", username)],
        )
        .await
        .page();
        assert_eq!(status, StatusCode::BAD_REQUEST, "{username}");
        assert!(html.contains(message), "{username}: {html}");
    }
    let (_, status, _) = post(
        &browser,
        &app,
        &group_path("remove_member"),
        &[("csrf", "forged"), ("user_id", &alice)],
    )
    .await
    .page();
    assert_eq!(status, StatusCode::BAD_REQUEST);

    let (_, _, html) = post(
        &browser,
        &app,
        &group_path("rename"),
        &[("csrf", &token), ("name", "Operations")],
    )
    .await
    .page();
    assert!(html.contains("<h1>Operations</h1>") && html.contains("The group was renamed."));
    let (_, _, user_page) = browser
        .open(&app.url(&format!("/admin/users/{alice}")))
        .await
        .page();
    assert!(
        user_page.contains(&format!("/admin/groups/{group}\">Operations</a>")),
        "{user_page}"
    );

    let (_, _, html) = post(
        &browser,
        &app,
        &group_path("remove_member"),
        &[("csrf", &token), ("user_id", &alice)],
    )
    .await
    .page();
    assert!(html.contains("The member was removed.") && html.contains("No members yet."));

    // Deleting asks first.
    let (_, status, html) = post(&browser, &app, &group_path("delete"), &[("csrf", &token)])
        .await
        .page();
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("Delete the group Operations?"), "{html}");
    assert!(app.store.find_group(&group).unwrap().is_some());
    let (url, _, html) = post(
        &browser,
        &app,
        &group_path("delete"),
        &[("csrf", &token), ("confirm", "yes")],
    )
    .await
    .page();
    assert_eq!(url.path(), "/admin/groups");
    assert!(html.contains("No groups yet."));

    let actions: Vec<(String, String)> = app
        .store
        .list_audit_events(None, 100)
        .unwrap()
        .into_iter()
        .rev()
        .filter(|e| e.action.starts_with("group."))
        .map(|e| (e.actor, e.action))
        .collect();
    let root = "user:root".to_owned();
    assert_eq!(
        actions,
        [
            "group.created",
            "group.member_added",
            "group.renamed",
            "group.member_removed",
            "group.deleted"
        ]
        .map(|a| (root.clone(), a.to_owned()))
    );
}

#[tokio::test]
async fn the_groups_pages_speak_french() {
    let app = spawn_app().await;
    app.add_admin("root").await;
    let (browser, _, html) = console_as(&app, "root").await;
    let token = csrf(&html);
    let (url, _, _) = post(
        &browser,
        &app,
        "/admin/groups",
        &[("csrf", &token), ("name", "Équipe")],
    )
    .await
    .page();
    for (path, words) in [
        ("/admin/groups".to_owned(), ["Groupes", "Créer un groupe"]),
        (
            url.path().to_owned(),
            ["Aucun membre pour l’instant.", "Supprimer le groupe…"],
        ),
    ] {
        let response = browser
            .http
            .get(app.url(&path))
            .header("accept-language", "fr-CA,fr;q=0.9")
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        let html = response.text().await.unwrap();
        assert!(html.contains("lang=\"fr\""), "{html}");
        for word in words {
            assert!(html.contains(word), "{path}: {word}: {html}");
        }
    }
}
