//! Groups through the admin API (`/admin/api/groups...`): created, renamed, listed with
//! their member counts, members added and removed, deleted, each change audited; bad
//! input refused with a JSON error and nothing changed; only administrators let in.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::admin_api::{audit_events, automation, call, get, user_token};
use crate::helpers::{http, spawn_app};

fn names(listed: &Value, field: &str) -> Vec<String> {
    listed
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g[field].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn groups_and_their_members_are_managed_and_every_change_is_audited() {
    let app = spawn_app().await;
    let (automation, token) = automation(&app).await;
    let alice = app.add_user("alice").await;
    let bob = app.add_user("bob").await;

    let response = http()
        .post(app.url("/admin/api/groups"))
        .bearer_auth(&token)
        .json(&json!({ "name": "  Ops " }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    let location = response.headers()["location"].to_str().unwrap().to_owned();
    let ops: Value = response.json().await.unwrap();
    let ops_id = ops["id"].as_str().unwrap().to_owned();
    assert_eq!(location, app.url(&format!("/admin/api/groups/{ops_id}")));
    assert_eq!((&ops["name"], &ops["members"]), (&json!("Ops"), &json!(0)));
    let (status, admins) = call(
        &app,
        Some(&token),
        Method::POST,
        "/groups",
        Some(json!({ "name": "admins" })),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{admins}");
    let admins_id = admins["id"].as_str().unwrap().to_owned();

    // Members, by their user id.
    let response = http()
        .post(app.url(&format!("/admin/api/groups/{ops_id}/members")))
        .bearer_auth(&token)
        .json(&json!({ "user_id": alice }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    assert_eq!(
        response.headers()["location"],
        app.url(&format!("/admin/api/groups/{ops_id}/members/{alice}"))
            .as_str()
    );
    let added: Value = response.json().await.unwrap();
    assert_eq!(
        (&added["id"], &added["username"]),
        (&json!(alice), &json!("alice"))
    );
    assert!(added["added_at"].is_i64());
    for (group, user) in [(&ops_id, &bob), (&admins_id, &alice)] {
        let (status, body) = call(
            &app,
            Some(&token),
            Method::POST,
            &format!("/groups/{group}/members"),
            Some(json!({ "user_id": user })),
        )
        .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }

    let listed = get(&app, &token, "/groups").await;
    assert_eq!(names(&listed, "name"), ["admins", "Ops"]);
    assert_eq!(listed[1]["members"], 2);
    let members = get(&app, &token, &format!("/groups/{ops_id}/members")).await;
    assert_eq!(names(&members, "username"), ["alice", "bob"]);
    assert_eq!(
        get(&app, &token, &format!("/groups/{ops_id}")).await["members"],
        2
    );
    // A user's view names their groups.
    let viewed = get(&app, &token, &format!("/users/{alice}")).await;
    assert_eq!(names(&viewed["groups"], "name"), ["admins", "Ops"]);
    assert_eq!(viewed["groups"][1]["id"], json!(ops_id));

    let (status, renamed) = call(
        &app,
        Some(&token),
        Method::PATCH,
        &format!("/groups/{ops_id}"),
        Some(json!({ "name": "Operations" })),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{renamed}");
    assert_eq!(
        (&renamed["name"], &renamed["members"]),
        (&json!("Operations"), &json!(2))
    );

    let (status, _) = call(
        &app,
        Some(&token),
        Method::DELETE,
        &format!("/groups/{ops_id}/members/{bob}"),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, body) = call(
        &app,
        Some(&token),
        Method::DELETE,
        &format!("/groups/{ops_id}/members/{bob}"),
        None,
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::NOT_FOUND, Some("not_found")),
        "no longer a member"
    );
    let (status, _) = call(
        &app,
        Some(&token),
        Method::DELETE,
        &format!("/groups/{admins_id}"),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = call(
        &app,
        Some(&token),
        Method::GET,
        &format!("/groups/{admins_id}"),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(
        names(
            &get(&app, &token, &format!("/users/{alice}")).await["groups"],
            "name"
        ),
        ["Operations"]
    );

    // A deleted user leaves their groups.
    let (status, _) = call(
        &app,
        Some(&token),
        Method::DELETE,
        &format!("/users/{alice}"),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(
        get(&app, &token, &format!("/groups/{ops_id}/members")).await,
        json!([])
    );

    let events: Vec<Value> = audit_events(&app, &token, "")
        .await
        .into_iter()
        .filter(|e| e["action"].as_str().unwrap().starts_with("group."))
        .collect();
    let summary: Vec<(String, String)> = events
        .iter()
        .rev()
        .map(|e| {
            assert_eq!(e["actor"], format!("client:{}", automation.id));
            (
                e["action"].as_str().unwrap().to_owned(),
                e["target"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let expected = [
        ("group.created", &ops_id),
        ("group.created", &admins_id),
        ("group.member_added", &ops_id),
        ("group.member_added", &ops_id),
        ("group.member_added", &admins_id),
        ("group.renamed", &ops_id),
        ("group.member_removed", &ops_id),
        ("group.deleted", &admins_id),
    ]
    .map(|(a, t)| (a.to_owned(), t.clone()));
    assert_eq!(summary, expected);
    let renamed = events
        .iter()
        .find(|e| e["action"] == "group.renamed")
        .unwrap();
    assert_eq!(
        renamed["details"],
        json!({ "from": "Ops", "to": "Operations" })
    );
    let added = events
        .iter()
        .rfind(|e| e["action"] == "group.member_added")
        .unwrap();
    assert_eq!(
        added["details"],
        json!({ "group": "Ops", "user": alice, "username": "alice" })
    );
}

#[tokio::test]
async fn bad_group_input_is_refused_with_a_json_error_and_changes_nothing() {
    let app = spawn_app().await;
    let (_, token) = automation(&app).await;
    let alice = app.add_user("alice").await;
    let (_, ops) = call(
        &app,
        Some(&token),
        Method::POST,
        "/groups",
        Some(json!({ "name": "Ops" })),
    )
    .await;
    let ops = ops["id"].as_str().unwrap().to_owned();
    let (_, admins) = call(
        &app,
        Some(&token),
        Method::POST,
        "/groups",
        Some(json!({ "name": "admins" })),
    )
    .await;
    let admins = admins["id"].as_str().unwrap().to_owned();
    let (status, _) = call(
        &app,
        Some(&token),
        Method::POST,
        &format!("/groups/{ops}/members"),
        Some(json!({ "user_id": alice })),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    let before = get(&app, &token, "/groups").await;
    let audited = audit_events(&app, &token, "").await.len();

    let long = "x".repeat(65);
    let bad: [(Method, String, Value, StatusCode, &str); 12] = [
        (
            Method::POST,
            "/groups".into(),
            json!({ "name": "OPS" }),
            StatusCode::CONFLICT,
            "conflict",
        ),
        (
            Method::POST,
            "/groups".into(),
            json!({ "name": " " }),
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        (
            Method::POST,
            "/groups".into(),
            json!({ "name": long }),
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        (
            Method::POST,
            "/groups".into(),
            json!({ "name": "ops\u{202E}" }),
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        (
            Method::POST,
            "/groups".into(),
            json!({ "name": "x", "owner": "me" }),
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        (
            Method::POST,
            "/groups".into(),
            json!(["Ops"]),
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        (
            Method::PATCH,
            format!("/groups/{admins}"),
            json!({ "name": "ops" }),
            StatusCode::CONFLICT,
            "conflict",
        ),
        (
            Method::PATCH,
            "/groups/no-such-group".into(),
            json!({ "name": "x" }),
            StatusCode::NOT_FOUND,
            "not_found",
        ),
        (
            Method::POST,
            format!("/groups/{ops}/members"),
            json!({ "user_id": alice }),
            StatusCode::CONFLICT,
            "conflict",
        ),
        (
            Method::POST,
            format!("/groups/{ops}/members"),
            json!({ "user_id": "no-such-user" }),
            StatusCode::NOT_FOUND,
            "not_found",
        ),
        (
            Method::POST,
            "/groups/no-such-group/members".into(),
            json!({ "user_id": alice }),
            StatusCode::NOT_FOUND,
            "not_found",
        ),
        (
            Method::POST,
            format!("/groups/{ops}/members"),
            json!({ "username": "alice" }),
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
    ];
    for (method, path, body, status, error) in bad {
        let (got, answer) = call(
            &app,
            Some(&token),
            method.clone(),
            &path,
            Some(body.clone()),
        )
        .await;
        assert_eq!(
            (got, answer["error"].as_str()),
            (status, Some(error)),
            "{method} {path} {body}: {answer}"
        );
        assert!(answer["error_description"].is_string());
    }
    let (status, body) = call(
        &app,
        Some(&token),
        Method::DELETE,
        "/groups/no-such-group",
        None,
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::NOT_FOUND, Some("not_found"))
    );
    // Not JSON.
    let response = http()
        .post(app.url("/admin/api/groups"))
        .bearer_auth(&token)
        .body("name=x")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    // A field given twice is refused, not read as its last value; an array is refused
    // whatever whitespace comes before it.
    for raw in [
        r#"{"name": "Billing", "name": "admins2"}"#,
        " \n\t[\"Billing\"]",
        r#"{"name": "Billing"} trailing"#,
    ] {
        let response = http()
            .post(app.url("/admin/api/groups"))
            .bearer_auth(&token)
            .header("content-type", "application/json")
            .body(raw)
            .send()
            .await
            .unwrap();
        let (status, answer) = crate::helpers::status_and_json(response).await;
        assert_eq!(
            (status, answer["error"].as_str()),
            (StatusCode::BAD_REQUEST, Some("invalid_request")),
            "{raw}: {answer}"
        );
    }
    // The same object once, after whitespace, is taken (then deleted to keep the count).
    let response = http()
        .post(app.url("/admin/api/groups"))
        .bearer_auth(&token)
        .header("content-type", "application/json")
        .body(" \r\n{\"name\": \"Billing\"}")
        .send()
        .await
        .unwrap();
    let (status, billing) = crate::helpers::status_and_json(response).await;
    assert_eq!(status, StatusCode::CREATED, "{billing}");
    let (status, _) = call(
        &app,
        Some(&token),
        Method::DELETE,
        &format!("/groups/{}", billing["id"].as_str().unwrap()),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(get(&app, &token, "/groups").await, before);
    assert_eq!(audit_events(&app, &token, "").await.len(), audited + 2);
}

#[tokio::test]
async fn only_administrators_see_or_change_groups() {
    let app = spawn_app().await;
    let (status, _) = call(&app, None, Method::GET, "/groups", None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    app.add_user("henry").await;
    let henry = user_token(&app, "henry").await;
    for (method, path) in [(Method::GET, "/groups"), (Method::POST, "/groups")] {
        let (status, body) = call(
            &app,
            Some(&henry),
            method,
            path,
            Some(json!({ "name": "mine" })),
        )
        .await;
        assert_eq!(
            (status, body["error"].as_str()),
            (StatusCode::FORBIDDEN, Some("insufficient_scope"))
        );
    }
    // An administrator signed in as a user is named so in the audit trail.
    app.add_admin("ida").await;
    let ida = user_token(&app, "ida").await;
    let (status, _) = call(
        &app,
        Some(&ida),
        Method::POST,
        "/groups",
        Some(json!({ "name": "Ops" })),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    let events = audit_events(&app, &ida, "").await;
    assert_eq!(
        (&events[0]["actor"], &events[0]["action"]),
        (&json!("user:ida"), &json!("group.created"))
    );
    assert_eq!(get(&app, &ida, "/groups").await[0]["name"], "Ops");
}

/// A member whose id came from another provider (`auth0|…:…@…`) is added, found at the
/// `Location` the answer gives (its id encoded as one path segment) and removed there.
#[tokio::test]
async fn a_member_whose_id_has_reserved_characters_is_reached_at_its_location() {
    use portcullis::store::User;

    let app = spawn_app().await;
    let (_, token) = automation(&app).await;
    let id = "auth0|64a1:x@example";
    app.store
        .create_user(&User::new(
            id.into(),
            "imported".into(),
            String::new(),
            portcullis::domain::now(),
        ))
        .unwrap();
    let (status, user) = call(
        &app,
        Some(&token),
        Method::GET,
        "/users/auth0%7C64a1%3Ax%40example",
        None,
    )
    .await;
    assert_eq!(
        (status, &user["id"]),
        (StatusCode::OK, &json!(id)),
        "{user}"
    );
    let (_, ops) = call(
        &app,
        Some(&token),
        Method::POST,
        "/groups",
        Some(json!({ "name": "Ops" })),
    )
    .await;
    let ops = ops["id"].as_str().unwrap().to_owned();
    let response = http()
        .post(app.url(&format!("/admin/api/groups/{ops}/members")))
        .bearer_auth(&token)
        .json(&json!({ "user_id": id }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    let location = response.headers()["location"].to_str().unwrap().to_owned();
    assert_eq!(
        location,
        app.url(&format!(
            "/admin/api/groups/{ops}/members/auth0%7C64a1%3Ax%40example"
        ))
    );
    let response = http()
        .delete(&location)
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    let members = get(&app, &token, &format!("/groups/{ops}/members")).await;
    assert_eq!(members, json!([]));
}

/// A user is in at most `MAX_USER_GROUPS` groups: the claim stays bounded.
#[tokio::test]
async fn a_user_joins_at_most_a_hundred_groups() {
    use portcullis::domain::{GroupName, MAX_USER_GROUPS, now};
    use portcullis::store::{AdminChange, Group, NewAuditEvent};

    let app = spawn_app().await;
    let (_, token) = automation(&app).await;
    let alice = app.add_user("alice").await;
    let event = NewAuditEvent {
        at: now(),
        actor: "test".into(),
        action: "test".into(),
        target: None,
        address: None,
        details: None,
    };
    for i in 0..=MAX_USER_GROUPS {
        let group = Group::new(
            format!("g{i}"),
            &GroupName::parse(&format!("g{i}")).unwrap(),
            now(),
        );
        app.store
            .apply_audited(AdminChange::CreateGroup(&group), &event)
            .unwrap();
        if i < MAX_USER_GROUPS {
            let (status, body) = call(
                &app,
                Some(&token),
                Method::POST,
                &format!("/groups/g{i}/members"),
                Some(json!({ "user_id": alice })),
            )
            .await;
            assert_eq!(status, StatusCode::CREATED, "{body}");
        }
    }
    let (status, body) = call(
        &app,
        Some(&token),
        Method::POST,
        &format!("/groups/g{MAX_USER_GROUPS}/members"),
        Some(json!({ "user_id": alice })),
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::CONFLICT, Some("conflict")),
        "{body}"
    );
    // Already a member of one of them: said so, as before.
    let (status, body) = call(
        &app,
        Some(&token),
        Method::POST,
        "/groups/g0/members",
        Some(json!({ "user_id": alice })),
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert!(
        body["error_description"]
            .as_str()
            .unwrap()
            .contains("already"),
        "{body}"
    );
}
