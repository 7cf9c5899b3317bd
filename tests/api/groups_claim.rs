//! The `groups` scope and claim: the user's group names, sorted, in the ID token, at
//! userinfo, in the JWT access token and at introspection when the scope is granted, and
//! nowhere without it; asked for by name with the `claims` parameter; a rename or a
//! membership change seen at once by userinfo and introspection and in the next token;
//! listed on the consent page and in discovery.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::admin_api::{automation, call};
use crate::helpers::{TestApp, TestClient, http, jwt_part, query, spawn_app};

/// The admin API, as the operator's automation.
struct Operator<'a> {
    app: &'a TestApp,
    token: String,
}

impl<'a> Operator<'a> {
    async fn new(app: &'a TestApp) -> Self {
        let (_, token) = automation(app).await;
        Self { app, token }
    }

    async fn send(&self, method: Method, path: &str, body: Option<Value>) -> Value {
        let (status, answer) = call(self.app, Some(&self.token), method, path, body).await;
        assert!(status.is_success(), "{path}: {status} {answer}");
        answer
    }

    async fn group(&self, name: &str, members: &[&str]) -> String {
        let created = self
            .send(Method::POST, "/groups", Some(json!({ "name": name })))
            .await;
        let id = created["id"].as_str().unwrap().to_owned();
        for user in members {
            self.join(&id, user).await;
        }
        id
    }

    async fn join(&self, group: &str, user: &str) {
        self.send(
            Method::POST,
            &format!("/groups/{group}/members"),
            Some(json!({ "user_id": user })),
        )
        .await;
    }
}

async fn userinfo(app: &TestApp, access_token: &str) -> Value {
    let response = http()
        .get(app.url("/userinfo"))
        .bearer_auth(access_token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    response.json().await.unwrap()
}

async fn introspect(app: &TestApp, client: &TestClient, token: &str) -> Value {
    let response = app
        .post_as(client, "/introspect", &[("token", token)])
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let info: Value = response.json().await.unwrap();
    assert_eq!(info["active"], true, "{info}");
    info
}

/// A sign-in of alice for `scope` (and `extra` parameters) in a fresh browser, consenting
/// if asked; the token response.
async fn tokens(app: &TestApp, client: &TestClient, scope: &str, extra: &[(&str, &str)]) -> Value {
    let mut params = vec![("scope", scope)];
    params.extend_from_slice(extra);
    let (url, pkce) = app.authorize_url(client, &params);
    let callback = app.browser().sign_in(&url, "alice").await;
    app.exchange(client, &callback, &pkce).await
}

/// The `groups` of the ID token, the access token, userinfo and introspection.
async fn everywhere(app: &TestApp, client: &TestClient, tokens: &Value) -> [Value; 4] {
    let access = tokens["access_token"].as_str().unwrap();
    [
        jwt_part(tokens["id_token"].as_str().unwrap(), 1)["groups"].clone(),
        jwt_part(access, 1)["groups"].clone(),
        userinfo(app, access).await["groups"].clone(),
        introspect(app, client, access).await["groups"].clone(),
    ]
}

#[tokio::test]
async fn the_groups_scope_puts_the_users_groups_everywhere_and_nothing_without_it() {
    let app = spawn_app().await;
    let alice = app.add_user("alice").await;
    let bob = app.add_user("bob").await;
    let operator = Operator::new(&app).await;
    operator.group("Ops", &[&alice, &bob]).await;
    operator.group("admins", &[&alice]).await;
    operator.group("Billing", &[&bob]).await;
    let client = app.add_client(false);

    let granted = tokens(&app, &client, "openid profile groups", &[]).await;
    assert_eq!(granted["scope"], "groups openid profile");
    let sorted = json!(["admins", "Ops"]);
    assert_eq!(
        everywhere(&app, &client, &granted).await,
        [sorted.clone(), sorted.clone(), sorted.clone(), sorted],
        "sorted by name in any case, bob's Billing not among them"
    );

    let plain = tokens(&app, &client, "openid profile", &[]).await;
    assert_eq!(
        everywhere(&app, &client, &plain).await,
        [Value::Null, Value::Null, Value::Null, Value::Null]
    );

    let doc = app.get_json("/.well-known/openid-configuration").await;
    assert!(
        doc["scopes_supported"]
            .as_array()
            .unwrap()
            .contains(&json!("groups"))
    );
    assert!(
        doc["claims_supported"]
            .as_array()
            .unwrap()
            .contains(&json!("groups"))
    );
}

#[tokio::test]
async fn a_rename_or_a_membership_change_is_seen_at_once_and_in_the_next_token() {
    let app = spawn_app().await;
    let alice = app.add_user("alice").await;
    let operator = Operator::new(&app).await;
    let ops = operator.group("Ops", &[&alice]).await;
    let client = app.add_refreshing_client();
    let first = tokens(
        &app,
        &client,
        "openid groups offline_access",
        &[("prompt", "consent")],
    )
    .await;
    let access = first["access_token"].as_str().unwrap().to_owned();
    let refresh = first["refresh_token"].as_str().unwrap().to_owned();
    // Read, and so cached with the grant.
    assert_eq!(userinfo(&app, &access).await["groups"], json!(["Ops"]));

    operator
        .send(
            Method::PATCH,
            &format!("/groups/{ops}"),
            Some(json!({ "name": "Operations" })),
        )
        .await;
    // Userinfo and introspection say what is true now; the token issued before keeps
    // what was true then.
    assert_eq!(
        userinfo(&app, &access).await["groups"],
        json!(["Operations"])
    );
    assert_eq!(
        introspect(&app, &client, &access).await["groups"],
        json!(["Operations"])
    );
    assert_eq!(
        introspect(&app, &client, &refresh).await["groups"],
        json!(["Operations"])
    );
    assert_eq!(jwt_part(&access, 1)["groups"], json!(["Ops"]));
    // The next tokens carry the change.
    let response = app.refresh(&client, &refresh, &[]).await;
    assert_eq!(response.status(), StatusCode::OK);
    let second: Value = response.json().await.unwrap();
    assert_eq!(
        jwt_part(second["access_token"].as_str().unwrap(), 1)["groups"],
        json!(["Operations"])
    );
    assert_eq!(
        jwt_part(second["id_token"].as_str().unwrap(), 1)["groups"],
        json!(["Operations"])
    );

    // Joined, left, the group gone: each seen at once.
    let admins = operator.group("admins", &[&alice]).await;
    assert_eq!(
        userinfo(&app, &access).await["groups"],
        json!(["admins", "Operations"])
    );
    operator
        .send(
            Method::DELETE,
            &format!("/groups/{ops}/members/{alice}"),
            None,
        )
        .await;
    assert_eq!(userinfo(&app, &access).await["groups"], json!(["admins"]));
    operator
        .send(Method::DELETE, &format!("/groups/{admins}"), None)
        .await;
    assert_eq!(
        userinfo(&app, &access).await["groups"],
        json!([]),
        "granted, and in no group: an empty list"
    );
    let response = app
        .refresh(&client, second["refresh_token"].as_str().unwrap(), &[])
        .await;
    let third: Value = response.json().await.unwrap();
    assert_eq!(
        jwt_part(third["access_token"].as_str().unwrap(), 1)["groups"],
        json!([])
    );

    // A refresh narrowed to leave the scope out leaves the groups out.
    operator.join(&ops, &alice).await;
    let response = app
        .refresh(
            &client,
            third["refresh_token"].as_str().unwrap(),
            &[("scope", "openid offline_access")],
        )
        .await;
    let narrowed: Value = response.json().await.unwrap();
    assert_eq!(narrowed["scope"], "offline_access openid", "{narrowed}");
    let access = narrowed["access_token"].as_str().unwrap();
    assert_eq!(jwt_part(access, 1).get("groups"), None);
    assert_eq!(
        jwt_part(narrowed["id_token"].as_str().unwrap(), 1).get("groups"),
        None
    );
    assert_eq!(userinfo(&app, access).await.get("groups"), None);
}

#[tokio::test]
async fn the_claims_parameter_asks_for_the_groups_by_name_with_the_users_consent() {
    let app = spawn_app().await;
    let alice = app.add_user("alice").await;
    Operator::new(&app).await.group("Ops", &[&alice]).await;
    let client = app.add_client(false);
    let claims = r#"{"id_token":{"groups":null},"userinfo":{"groups":{"essential":true}}}"#;
    let (url, pkce) = app.authorize_url(&client, &[("scope", "openid"), ("claims", claims)]);
    let browser = app.browser();
    let consent = browser.login(browser.open(&url).await, "alice").await;
    let (page_url, _, html) = consent.page();
    assert!(html.contains("See these details: groups"), "{html}");
    let callback = browser
        .submit(&page_url, &html, &[("decision", "allow")])
        .await
        .left();
    let granted = app.exchange(&client, &callback, &pkce).await;
    let access = granted["access_token"].as_str().unwrap();
    assert_eq!(
        jwt_part(granted["id_token"].as_str().unwrap(), 1)["groups"],
        json!(["Ops"])
    );
    assert_eq!(userinfo(&app, access).await["groups"], json!(["Ops"]));
    // The scope was not granted: the access token and introspection say nothing of them.
    assert_eq!(jwt_part(access, 1).get("groups"), None);
    assert_eq!(introspect(&app, &client, access).await.get("groups"), None);
}

#[tokio::test]
async fn the_consent_page_says_the_groups_are_released_in_english_and_french() {
    let app = spawn_app().await;
    app.add_user("alice").await;
    let client = app.add_client(false);
    for (locale, words) in [
        ("en", "See the groups you belong to"),
        ("fr", "Voir les groupes dont vous êtes membre"),
    ] {
        let (url, _) = app.authorize_url(
            &client,
            &[("scope", "openid groups"), ("ui_locales", locale)],
        );
        let browser = app.browser();
        let consent = browser.login(browser.open(&url).await, "alice").await;
        let (_, status, html) = consent.page();
        assert_eq!(status, StatusCode::OK);
        assert!(html.contains(words), "{locale}: {html}");
    }
}

#[tokio::test]
async fn implicit_and_hybrid_tokens_carry_the_groups_too() {
    let app = spawn_app().await;
    let alice = app.add_user("alice").await;
    Operator::new(&app).await.group("Ops", &[&alice]).await;
    let client = app.add_client_with(portcullis::protocol::registration::ClientDraft {
        response_types: vec!["id_token token".into()],
        ..Default::default()
    });
    let (url, _) = app.authorize_url(
        &client,
        &[
            ("response_type", "id_token token"),
            ("scope", "openid groups"),
        ],
    );
    let back = app.browser().sign_in(&url, "alice").await;
    let pairs: Vec<(String, String)> =
        url::form_urlencoded::parse(back.fragment().unwrap_or("").as_bytes())
            .into_owned()
            .collect();
    let field = |name: &str| {
        pairs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
            .unwrap_or_else(|| panic!("no {name} in {back}"))
    };
    assert_eq!(jwt_part(&field("id_token"), 1)["groups"], json!(["Ops"]));
    assert_eq!(
        jwt_part(&field("access_token"), 1)["groups"],
        json!(["Ops"])
    );
    assert!(query(&back, "error").is_none());
}
