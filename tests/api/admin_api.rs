//! The admin API (`/admin/api/...`): every operation over real HTTP with tokens from the
//! provider itself, and every refusal (no token, no admin scope, expired, disabled admin,
//! bad input) with nothing changed.

use portcullis::protocol::registration::ClientDraft;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{PASSWORD, TestApp, TestClient, http, jwt_part, spawn_app};

/// A client registered for the admin scope, and a client_credentials token of it.
pub(crate) async fn automation(app: &TestApp) -> (TestClient, String) {
    let client = app.add_service_client("admin", &[]);
    let token = client_token(app, &client).await;
    (client, token)
}

async fn client_token(app: &TestApp, client: &TestClient) -> String {
    let response = app
        .token_request(
            &[("grant_type", "client_credentials")],
            Some((&client.id, client.secret.as_deref().unwrap())),
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    body["access_token"].as_str().unwrap().to_owned()
}

/// Calls the admin API; returns the status and the JSON body (Null when empty).
pub(crate) async fn call(
    app: &TestApp,
    token: Option<&str>,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let mut request = http().request(method, app.url(&format!("/admin/api{path}")));
    if let Some(t) = token {
        request = request.bearer_auth(t);
    }
    if let Some(b) = body {
        request = request.json(&b);
    }
    crate::helpers::status_and_json(request.send().await.unwrap()).await
}

/// The status of an admin API call (the body is not looked at).
async fn status_of(
    app: &TestApp,
    token: &str,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> StatusCode {
    call(app, Some(token), method, path, body).await.0
}

pub(crate) async fn get(app: &TestApp, token: &str, path: &str) -> Value {
    let (status, body) = call(app, Some(token), Method::GET, path, None).await;
    assert_eq!(status, StatusCode::OK, "{path}: {body}");
    body
}

/// An access token with the admin scope for `username`, through the code flow of a
/// client registered for it (as the console signs in).
pub(crate) async fn user_token(app: &TestApp, username: &str) -> String {
    let console = app.add_client_with(ClientDraft {
        scope: Some("openid profile admin".into()),
        ..ClientDraft::default()
    });
    let (url, pkce) = app.authorize_url(&console, &[("scope", "openid admin")]);
    let callback = app.browser().sign_in(&url, username).await;
    let tokens = app.exchange(&console, &callback, &pkce).await;
    tokens["access_token"].as_str().unwrap().to_owned()
}

/// The scope a user's tokens carry (the response's, and the access token's own, RFC 9068).
async fn scopes_issued_to(app: &TestApp, client: &TestClient, username: &str) -> (Value, Value) {
    let (url, pkce) = app.authorize_url(client, &[("scope", "openid admin")]);
    let callback = app.browser().sign_in(&url, username).await;
    let tokens = app.exchange(client, &callback, &pkce).await;
    let access = jwt_part(tokens["access_token"].as_str().unwrap(), 1);
    (tokens["scope"].clone(), access["scope"].clone())
}

#[tokio::test]
async fn the_admin_scope_is_issued_to_administrators_only() {
    let app = spawn_app().await;
    app.add_user("henry").await;
    app.add_admin("ida").await;
    let console = app.add_client_with(ClientDraft {
        scope: Some("openid profile admin".into()),
        ..ClientDraft::default()
    });
    assert_eq!(
        scopes_issued_to(&app, &console, "henry").await,
        (json!("openid"), json!("openid")),
        "a user without the admin role"
    );
    assert_eq!(
        scopes_issued_to(&app, &console, "ida").await,
        (json!("admin openid"), json!("admin openid")),
        "an administrator"
    );
}

/// The audit trail, newest first, without the start-up's own registration of the
/// console client (by `system`).
pub(crate) async fn audit_events(app: &TestApp, token: &str, query: &str) -> Vec<Value> {
    let events = get(app, token, &format!("/audit{query}")).await;
    let all = events.as_array().unwrap();
    if query.is_empty() {
        let first = all.last().unwrap();
        assert_eq!(
            (&first["actor"], &first["action"]),
            (&json!("system"), &json!("client.registered"))
        );
    }
    all.iter()
        .filter(|e| e["actor"] != "system")
        .cloned()
        .collect()
}

async fn audit_actions(app: &TestApp, token: &str) -> Vec<String> {
    audit_events(app, token, "")
        .await
        .iter()
        .map(|e| e["action"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn users_are_created_read_listed_changed_and_deleted() {
    let app = spawn_app().await;
    let (automation, token) = automation(&app).await;

    let (status, created) = call(
        &app,
        Some(&token),
        Method::POST,
        "/users",
        Some(json!({
            "username": "carol",
            "password": "a long passphrase",
            "claims": { "email": "carol@example.com", "email_verified": true,
                        "address": { "locality": "Paris" } },
        })),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let id = created["id"].as_str().unwrap().to_owned();
    assert_eq!(created["username"], "carol");
    assert_eq!(created["admin"], false);
    assert_eq!(created["claims"]["email"], "carol@example.com");
    assert_eq!(created["claims"]["address"]["locality"], "Paris");
    assert!(created.get("password").is_none() && !created.to_string().contains("passphrase"));

    let read = get(&app, &token, &format!("/users/{id}")).await;
    assert_eq!(read["claims"]["email_verified"], true);

    for name in ["dave", "erin", "frank"] {
        app.add_user(name).await;
    }
    // Paging by username, two at a time, and search.
    let first = get(&app, &token, "/users?limit=2").await;
    let names = |page: &Value| -> Vec<String> {
        page["users"]
            .as_array()
            .unwrap()
            .iter()
            .map(|u| u["username"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(names(&first), ["carol", "dave"]);
    assert_eq!(first["next_after"], "dave");
    let second = get(&app, &token, "/users?limit=2&after=dave").await;
    assert_eq!(names(&second), ["erin", "frank"]);
    assert_eq!(second["next_after"], Value::Null);
    let found = get(&app, &token, "/users?search=ERIN%40example").await;
    assert_eq!(names(&found), ["erin"]);
    let none = get(&app, &token, "/users?search=100%25").await;
    assert_eq!(names(&none), Vec::<String>::new(), "% is no wildcard");

    let (status, changed) = call(
        &app,
        Some(&token),
        Method::PATCH,
        &format!("/users/{id}"),
        Some(json!({ "claims": { "name": "Carol C", "email": null }, "admin": true })),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{changed}");
    assert_eq!(changed["claims"]["name"], "Carol C");
    assert!(changed["claims"].get("email").is_none());
    assert_eq!(changed["admin"], true);

    assert_eq!(
        status_of(
            &app,
            &token,
            Method::POST,
            &format!("/users/{id}/password"),
            Some(json!({ "password": PASSWORD }))
        )
        .await,
        StatusCode::NO_CONTENT
    );
    // The new password signs in (a sign-in in the second of the change would not count).
    app.clock.advance(1);
    let client = app.add_client(false);
    let tokens = app.tokens_for(&client, "carol").await;
    assert!(tokens["id_token"].is_string());

    assert_eq!(
        status_of(&app, &token, Method::DELETE, &format!("/users/{id}"), None).await,
        StatusCode::NO_CONTENT
    );
    let (status, body) = call(
        &app,
        Some(&token),
        Method::GET,
        &format!("/users/{id}"),
        None,
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::NOT_FOUND, Some("not_found"))
    );
    assert_eq!(
        app.userinfo_status(tokens["access_token"].as_str().unwrap())
            .await,
        401,
        "a deleted user's tokens die"
    );

    // Every change is in the audit trail, by this client, and no secret is.
    let events = Value::Array(audit_events(&app, &token, "").await);
    let actions = audit_actions(&app, &token).await;
    assert_eq!(
        actions,
        [
            "user.deleted",
            "user.password_set",
            "user.updated",
            "user.created"
        ]
    );
    let text = events.to_string();
    assert!(!text.contains("passphrase") && !text.contains(PASSWORD));
    for event in events.as_array().unwrap() {
        assert_eq!(event["actor"], format!("client:{}", automation.id));
        assert_eq!(event["target"], id.as_str());
        assert_eq!(event["address"], "127.0.0.1");
    }
}

#[tokio::test]
async fn a_disabled_user_cannot_sign_in_and_loses_every_token() {
    let app = spawn_app().await;
    let (_, token) = automation(&app).await;
    let sub = app.add_user("gina").await;
    let client = app.add_refreshing_client();
    let (tokens, _browser) = app.offline_tokens(&client, "gina").await;

    let (status, body) = call(
        &app,
        Some(&token),
        Method::PATCH,
        &format!("/users/{sub}"),
        Some(json!({ "disabled": true })),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["disabled"], true);
    assert_eq!(
        app.userinfo_status(tokens["access_token"].as_str().unwrap())
            .await,
        401
    );
    let refresh = app
        .refresh(&client, tokens["refresh_token"].as_str().unwrap(), &[])
        .await;
    assert_eq!(refresh.status(), StatusCode::BAD_REQUEST);

    // The right password is told the account is disabled; no code is issued.
    let (url, _) = app.authorize_url(&client, &[]);
    let browser = app.browser();
    let outcome = browser.login(browser.open(&url).await, "gina").await;
    let (page, _, html) = outcome.page();
    assert!(page.path().ends_with("/login"), "{page}");
    assert!(html.contains("disabled"), "{html}");

    let (status, body) = call(
        &app,
        Some(&token),
        Method::PATCH,
        &format!("/users/{sub}"),
        Some(json!({ "disabled": false })),
    )
    .await;
    assert_eq!((status, &body["disabled"]), (StatusCode::OK, &json!(false)));
    assert!(app.tokens_for(&client, "gina").await["access_token"].is_string());
    let actions = audit_actions(&app, &token).await;
    assert_eq!(actions, ["user.enabled", "user.disabled"]);
}

#[tokio::test]
async fn callers_without_the_admin_scope_role_or_a_live_token_are_refused() {
    let app = spawn_app().await;

    // No token: a bare Bearer challenge (RFC 6750 §3.1).
    let response = http()
        .get(app.url("/admin/api/users"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        response.headers()["www-authenticate"],
        "Bearer realm=\"portcullis\""
    );

    // A garbage token.
    let (status, body) = call(&app, Some("nonsense"), Method::GET, "/users", None).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("invalid_token"))
    );

    // A token of this provider without the admin scope.
    let api = app.add_service_client("api:read", &[]);
    let api_token = client_token(&app, &api).await;
    let (status, body) = call(&app, Some(&api_token), Method::GET, "/users", None).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::FORBIDDEN, Some("insufficient_scope"))
    );

    // A user without the admin role, even with a token carrying the scope.
    app.add_user("henry").await;
    let henry = user_token(&app, "henry").await;
    let (status, body) = call(&app, Some(&henry), Method::GET, "/users", None).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::FORBIDDEN, Some("insufficient_scope"))
    );

    // An administrator is let in, until disabled by another one.
    let ida = app.add_admin("ida").await;
    let ida_token = user_token(&app, "ida").await;
    let listed = get(&app, &ida_token, "/users").await;
    assert_eq!(listed["users"].as_array().unwrap().len(), 2);
    let (_, automation_token) = automation(&app).await;
    assert_eq!(
        status_of(
            &app,
            &automation_token,
            Method::PATCH,
            &format!("/users/{ida}"),
            Some(json!({ "disabled": true }))
        )
        .await,
        StatusCode::OK
    );
    assert_eq!(
        status_of(&app, &ida_token, Method::GET, "/users", None).await,
        StatusCode::UNAUTHORIZED,
        "a disabled admin's token is dead"
    );

    // An expired token.
    app.clock.advance(3601);
    let (status, body) = call(&app, Some(&automation_token), Method::GET, "/users", None).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("invalid_token"))
    );
}

#[tokio::test]
async fn an_administrator_cannot_lock_themselves_out() {
    let app = spawn_app().await;
    let jo = app.add_admin("jo").await;
    let token = user_token(&app, "jo").await;
    for change in [json!({ "disabled": true }), json!({ "admin": false })] {
        assert_eq!(
            status_of(
                &app,
                &token,
                Method::PATCH,
                &format!("/users/{jo}"),
                Some(change)
            )
            .await,
            StatusCode::BAD_REQUEST
        );
    }
    assert_eq!(
        status_of(&app, &token, Method::DELETE, &format!("/users/{jo}"), None).await,
        StatusCode::BAD_REQUEST
    );
    let me = get(&app, &token, &format!("/users/{jo}")).await;
    assert_eq!(
        (me["admin"].clone(), me["disabled"].clone()),
        (json!(true), json!(false))
    );
    assert!(audit_actions(&app, &token).await.is_empty());
}

#[tokio::test]
async fn invalid_input_is_refused_with_a_json_error_and_changes_nothing() {
    let app = spawn_app().await;
    let (_, token) = automation(&app).await;
    let sub = app.add_user("kim").await;
    let before_users = get(&app, &token, "/users").await;
    let before_clients = get(&app, &token, "/clients").await;
    let kim = get(&app, &token, &format!("/users/{sub}")).await;

    let bad: [(Method, String, Value, StatusCode, &str); 11] = [
        (
            Method::POST,
            "/users".into(),
            json!({ "username": "x", "password": "short" }),
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        (
            Method::POST,
            "/users".into(),
            json!({ "username": "kim", "password": "long enough pass" }),
            StatusCode::CONFLICT,
            "conflict",
        ),
        // Usernames are one account in every case.
        (
            Method::POST,
            "/users".into(),
            json!({ "username": "Kim", "password": "long enough pass" }),
            StatusCode::CONFLICT,
            "conflict",
        ),
        (
            Method::POST,
            "/users".into(),
            json!({ "username": "y", "password": "long enough pass", "role": "root" }),
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        (
            Method::POST,
            "/users".into(),
            json!({ "username": "z", "password": "long enough pass", "claims": { "email": "nope" } }),
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        (
            Method::PATCH,
            format!("/users/{sub}"),
            json!({ "claims": { "name": "New", "email": "not-an-address" } }),
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        (
            Method::PATCH,
            format!("/users/{sub}"),
            json!({ "claims": { "sub": "other" } }),
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        (
            Method::PATCH,
            "/users/no-such-user".into(),
            json!({ "admin": true }),
            StatusCode::NOT_FOUND,
            "not_found",
        ),
        (
            Method::POST,
            "/clients".into(),
            json!({ "client_name": "Bad", "redirect_uris": ["http://example.com/cb"] }),
            StatusCode::BAD_REQUEST,
            "invalid_redirect_uri",
        ),
        (
            Method::POST,
            "/clients".into(),
            json!({ "redirect_uris": "https://app.example/cb" }),
            StatusCode::BAD_REQUEST,
            "invalid_client_metadata",
        ),
        (
            Method::POST,
            "/keys/rotate".into(),
            json!({ "alg": "HS256" }),
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
    // Not JSON at all.
    let response = http()
        .post(app.url("/admin/api/users"))
        .bearer_auth(&token)
        .body("username=x")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert_eq!(get(&app, &token, "/users").await, before_users);
    assert_eq!(get(&app, &token, "/clients").await, before_clients);
    assert_eq!(get(&app, &token, &format!("/users/{sub}")).await, kim);
    assert!(audit_actions(&app, &token).await.is_empty());
}

#[tokio::test]
async fn clients_are_registered_changed_given_new_secrets_and_deleted() {
    let app = spawn_app().await;
    let (_, token) = automation(&app).await;

    let (status, created) = call(
        &app,
        Some(&token),
        Method::POST,
        "/clients",
        Some(json!({
            "client_name": "Reports",
            "grant_types": ["client_credentials"],
            "redirect_uris": [],
            "scope": "reports:read",
        })),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let id = created["client_id"].as_str().unwrap().to_owned();
    let secret = created["client_secret"].as_str().unwrap().to_owned();
    // An operator may grant API scopes (dynamic registration may not).
    let issued = app
        .token_request(
            &[("grant_type", "client_credentials")],
            Some((&id, &secret)),
        )
        .await;
    let issued: Value = issued.json().await.unwrap();
    assert_eq!(issued["scope"], "reports:read");
    let read = get(&app, &token, &format!("/clients/{id}")).await;
    assert_eq!(read["client_name"], "Reports");
    assert_eq!(read["scope"], "reports:read");
    assert!(read.get("client_secret").is_none());
    let listed = get(&app, &token, "/clients").await;
    assert!(
        listed
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["client_id"] == id.as_str())
    );
    assert!(
        !listed.to_string().contains(&secret),
        "secrets are shown once"
    );

    // Change its grant types, redirect URIs, scope and auth method; the secret stays.
    let (status, changed) = call(
        &app,
        Some(&token),
        Method::PATCH,
        &format!("/clients/{id}"),
        Some(json!({
            "grant_types": ["authorization_code", "client_credentials"],
            "redirect_uris": ["https://reports.example/callback"],
            "scope": "openid reports:read reports:write",
            "token_endpoint_auth_method": "client_secret_post",
        })),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{changed}");
    assert_eq!(
        changed["redirect_uris"],
        json!(["https://reports.example/callback"])
    );
    assert_eq!(changed["token_endpoint_auth_method"], "client_secret_post");
    assert!(changed.get("client_secret").is_none());
    let post = app
        .token_request(
            &[
                ("grant_type", "client_credentials"),
                ("client_id", &id),
                ("client_secret", &secret),
                ("scope", "reports:write"),
            ],
            None,
        )
        .await;
    assert_eq!(post.status(), StatusCode::OK);
    assert_eq!(
        status_of(
            &app,
            &token,
            Method::PATCH,
            &format!("/clients/{id}"),
            Some(json!({ "client_id": "mine" }))
        )
        .await,
        StatusCode::BAD_REQUEST
    );

    // A new secret: the old one stops working at once.
    let (status, rotated) = call(
        &app,
        Some(&token),
        Method::POST,
        &format!("/clients/{id}/secret"),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let new_secret = rotated["client_secret"].as_str().unwrap().to_owned();
    assert_ne!(new_secret, secret);
    let form = |s: &str| {
        vec![
            ("grant_type", "client_credentials".to_owned()),
            ("client_id", id.clone()),
            ("client_secret", s.to_owned()),
        ]
    };
    for (s, expect) in [
        (&secret, StatusCode::UNAUTHORIZED),
        (&new_secret, StatusCode::OK),
    ] {
        let response = http()
            .post(app.url("/token"))
            .form(&form(s))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), expect);
    }

    assert_eq!(
        status_of(
            &app,
            &token,
            Method::DELETE,
            &format!("/clients/{id}"),
            None
        )
        .await,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        status_of(&app, &token, Method::GET, &format!("/clients/{id}"), None).await,
        StatusCode::NOT_FOUND
    );
    let gone = http()
        .post(app.url("/token"))
        .form(&form(&new_secret))
        .send()
        .await
        .unwrap();
    assert_eq!(gone.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        audit_actions(&app, &token).await,
        [
            "client.deleted",
            "client.secret_rotated",
            "client.updated",
            "client.registered"
        ]
    );
}

#[tokio::test]
async fn sessions_and_consents_are_listed_and_ended() {
    let app = spawn_app().await;
    let (_, token) = automation(&app).await;
    let sub = app.add_user("lee").await;
    let client = app.add_client(false);
    let tokens = app.tokens_for(&client, "lee").await;
    let access = tokens["access_token"].as_str().unwrap();

    let sessions = get(&app, &token, &format!("/users/{sub}/sessions")).await;
    let sessions = sessions.as_array().unwrap();
    assert_eq!(sessions.len(), 1);
    let sid = sessions[0]["sid"].as_str().unwrap().to_owned();
    let consents = get(&app, &token, &format!("/users/{sub}/consents")).await;
    assert_eq!(consents[0]["client_id"], client.id.as_str());

    assert_eq!(
        status_of(
            &app,
            &token,
            Method::DELETE,
            &format!("/sessions/{sid}"),
            None
        )
        .await,
        StatusCode::NO_CONTENT
    );
    assert_eq!(app.userinfo_status(access).await, 401);
    assert!(
        get(&app, &token, &format!("/users/{sub}/sessions"))
            .await
            .as_array()
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        status_of(
            &app,
            &token,
            Method::DELETE,
            &format!("/sessions/{sid}"),
            None
        )
        .await,
        StatusCode::NOT_FOUND,
        "it ended already"
    );

    let path = format!("/users/{sub}/consents/{}", client.id);
    assert_eq!(
        status_of(&app, &token, Method::DELETE, &path, None).await,
        StatusCode::NO_CONTENT
    );
    assert!(
        get(&app, &token, &format!("/users/{sub}/consents"))
            .await
            .as_array()
            .unwrap()
            .is_empty()
    );

    // Sign out everywhere.
    let again = app.tokens_for(&client, "lee").await;
    assert_eq!(
        status_of(
            &app,
            &token,
            Method::DELETE,
            &format!("/users/{sub}/sessions"),
            None
        )
        .await,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        app.userinfo_status(again["access_token"].as_str().unwrap())
            .await,
        401
    );
    assert_eq!(
        audit_actions(&app, &token).await,
        [
            "user.signed_out_everywhere",
            "consent.withdrawn",
            "session.ended"
        ]
    );
}

#[tokio::test]
async fn keys_are_listed_and_rotated_and_audit_events_are_paged() {
    let app = spawn_app().await;
    let (_, token) = automation(&app).await;
    let keys = get(&app, &token, "/keys").await;
    assert!(keys.as_array().unwrap().iter().any(|k| k["alg"] == "ES256"));
    assert!(!keys.to_string().contains("private"), "{keys}");

    let (status, rotated) = call(
        &app,
        Some(&token),
        Method::POST,
        "/keys/rotate",
        Some(json!({ "alg": "ES256", "activate_in": 0 })),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{rotated}");
    let kid = rotated[0]["kid"].as_str().unwrap().to_owned();
    let jwks = app.get_json("/jwks").await;
    assert!(
        jwks["keys"]
            .as_array()
            .unwrap()
            .iter()
            .any(|k| k["kid"] == kid.as_str()),
        "published here at once"
    );
    assert_eq!(
        status_of(&app, &token, Method::POST, "/keys/rotate", None).await,
        StatusCode::OK,
        "every algorithm"
    );

    let all = audit_events(&app, &token, "").await;
    assert_eq!(all.len(), 5, "one ES256 rotation, then four algorithms");
    assert_eq!(all[4]["target"], kid.as_str());
    let page = get(
        &app,
        &token,
        &format!("/audit?limit=2&before={}", all[1]["id"]),
    )
    .await;
    let ids: Vec<&Value> = page.as_array().unwrap().iter().map(|e| &e["id"]).collect();
    assert_eq!(ids, [&all[2]["id"], &all[3]["id"]]);
    assert_eq!(
        status_of(&app, &token, Method::GET, "/audit?limit=0", None).await,
        StatusCode::BAD_REQUEST
    );
}

/// Disables the user straight in the store, as if ending the sessions had failed.
async fn disable_only(app: &TestApp, sub: &str) {
    let store = app.store.clone();
    let sub = sub.to_owned();
    tokio::task::spawn_blocking(move || {
        let mut user = store.find_user(&sub).unwrap().unwrap();
        user.disabled_at = Some(1);
        store.update_user(&user, 1).unwrap();
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn a_disabled_account_is_refused_even_where_its_sessions_were_not_ended() {
    let app = spawn_app().await;
    let sub = app.add_user("hal").await;
    let client = app.add_client(false);
    // A signed-in browser, and a code not yet redeemed.
    let (url, pkce) = app.authorize_url(&client, &[]);
    let browser = app.browser();
    let callback = browser.sign_in(&url, "hal").await;
    disable_only(&app, &sub).await;
    let code = crate::helpers::query(&callback, "code").unwrap();
    let redeemed = app.redeem(&client, &code, Some(&pkce.verifier)).await;
    assert_eq!(
        redeemed.status(),
        StatusCode::BAD_REQUEST,
        "no grant for a disabled user"
    );
    // The browser's session no longer speaks for the user: the login form again.
    let (again, _) = app.authorize_url(&client, &[]);
    assert!(browser.open(&again).await.is_page("/login"));
}

#[tokio::test]
async fn a_caller_without_a_token_learns_that_before_what_is_wrong_with_its_input() {
    let app = spawn_app().await;
    let response = http()
        .post(app.url("/admin/api/users"))
        .body("not json")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let response = http()
        .get(app.url("/admin/api/audit?limit=nope"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn the_consoles_own_client_and_a_pairwise_sector_cannot_be_changed() {
    let app = spawn_app().await;
    let (_, token) = automation(&app).await;
    let console = "/clients/portcullis-console";
    let before = get(&app, &token, console).await;
    for (method, path, body) in [
        (
            Method::PATCH,
            console.to_owned(),
            Some(json!({ "redirect_uris": ["https://evil.example/cb"] })),
        ),
        (Method::POST, format!("{console}/secret"), None),
        (Method::DELETE, console.to_owned(), None),
    ] {
        assert_eq!(
            status_of(&app, &token, method, &path, body).await,
            StatusCode::BAD_REQUEST
        );
    }
    assert_eq!(get(&app, &token, console).await, before);

    let (status, created) = call(
        &app,
        Some(&token),
        Method::POST,
        "/clients",
        Some(json!({ "redirect_uris": ["https://a.example/cb"], "subject_type": "pairwise" })),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let id = created["client_id"].as_str().unwrap();
    let (status, body) = call(
        &app,
        Some(&token),
        Method::PATCH,
        &format!("/clients/{id}"),
        Some(json!({ "redirect_uris": ["https://b.example/cb"] })),
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_client_metadata"))
    );
    // Within the sector, the redirect URIs may change.
    let (status, body) = call(
        &app,
        Some(&token),
        Method::PATCH,
        &format!("/clients/{id}"),
        Some(json!({ "redirect_uris": ["https://a.example/other"], "client_name": "Renamed" })),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

#[tokio::test]
async fn the_admin_api_requires_a_second_factor_of_a_user_or_a_client_and_changes_keep_it() {
    let app = spawn_app().await;
    let ann = app.add_user("ann").await;
    let (_, token) = automation(&app).await;
    let user = format!("/users/{ann}");
    assert_eq!(get(&app, &token, &user).await["mfa_required"], false);
    let (status, changed) = call(
        &app,
        Some(&token),
        Method::PATCH,
        &user,
        Some(json!({ "mfa_required": true })),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{changed}");
    assert_eq!(changed["mfa_required"], true);
    let (_, changed) = call(
        &app,
        Some(&token),
        Method::PATCH,
        &user,
        Some(json!({ "claims": { "name": "Ann A" } })),
    )
    .await;
    assert_eq!(changed["mfa_required"], true, "another change keeps it");
    assert!(app.store.find_user(&ann).unwrap().unwrap().mfa_required);

    let (status, created) = call(
        &app,
        Some(&token),
        Method::POST,
        "/clients",
        Some(json!({ "client_name": "Payroll", "redirect_uris": ["https://rp.example/cb"], "require_mfa": true })),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_eq!(created["require_mfa"], true);
    let path = format!("/clients/{}", created["client_id"].as_str().unwrap());
    assert_eq!(get(&app, &token, &path).await["require_mfa"], true, "read");
    let (_, changed) = call(
        &app,
        Some(&token),
        Method::PATCH,
        &path,
        Some(json!({ "client_name": "Payroll 2" })),
    )
    .await;
    assert_eq!(changed["require_mfa"], true, "another change keeps it");
    let (_, changed) = call(
        &app,
        Some(&token),
        Method::PATCH,
        &path,
        Some(json!({ "require_mfa": false })),
    )
    .await;
    assert_eq!(changed["require_mfa"], false);
}

#[tokio::test]
async fn a_users_second_factors_are_listed_without_a_secret_and_reset_with_their_sessions() {
    let app = spawn_app().await;
    let (bot, token) = automation(&app).await;
    let mia = app.add_user("mia").await;
    let noel = app.add_user("noel").await;
    let client = app.add_client(false);
    let tokens = app.tokens_for(&client, "mia").await;
    let access = tokens["access_token"].as_str().unwrap();
    assert_eq!(app.userinfo_status(access).await, 200);
    let sealed = crate::cli_factors::enrol(&app, &mia);
    let path = format!("/users/{mia}/factors");

    let response = http()
        .get(app.url(&format!("/admin/api{path}")))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["cache-control"], "no-store");
    let text = response.text().await.unwrap();
    for secret in [sealed.as_str(), "public key", "secret-looking", "Y3JlZA"] {
        assert!(!text.contains(secret), "{secret} in {text}");
    }
    let listed: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(
        listed,
        json!({
            "totp": { "created_at": 100, "confirmed_at": 110, "last_used_at": 150 },
            "passkeys": [{
                "id": "pk-1", "name": "YubiKey\t5", "created_at": 130, "last_used_at": null,
                "backup_eligible": false, "backed_up": false,
            }],
            "recovery_codes_left": 9,
        })
    );
    assert_eq!(
        get(&app, &token, &format!("/users/{noel}/factors")).await,
        json!({ "totp": null, "passkeys": [], "recovery_codes_left": 0 })
    );
    for method in [Method::GET, Method::DELETE] {
        assert_eq!(
            status_of(&app, &token, method, "/users/nobody/factors", None).await,
            StatusCode::NOT_FOUND
        );
    }

    assert_eq!(
        status_of(&app, &token, Method::DELETE, &path, None).await,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        get(&app, &token, &path).await,
        json!({ "totp": null, "passkeys": [], "recovery_codes_left": 0 })
    );
    assert!(app.store.find_totp(&mia).unwrap().is_none());
    // Whoever signed in with a factor that is gone is signed out: sessions and tokens end.
    assert_eq!(app.userinfo_status(access).await, 401);
    let sessions = get(&app, &token, &format!("/users/{mia}/sessions")).await;
    assert_eq!(sessions, json!([]));
    let events = audit_events(&app, &token, "").await;
    assert_eq!(
        (
            &events[0]["actor"],
            &events[0]["action"],
            &events[0]["target"],
            &events[0]["details"]
        ),
        (
            &json!(format!("client:{}", bot.id)),
            &json!("user.second_factors_reset"),
            &json!(mia),
            &json!({ "totp": true, "passkeys": 1, "recovery_codes_left": 9 })
        )
    );
}

#[tokio::test]
async fn only_an_administrator_lists_or_resets_second_factors() {
    let app = spawn_app().await;
    let olga = app.add_user("olga").await;
    crate::cli_factors::enrol(&app, &olga);
    let path = format!("/users/{olga}/factors");
    let api = app.add_service_client("api:read", &[]);
    let api_token = client_token(&app, &api).await;
    app.add_user("henry").await;
    let henry = user_token(&app, "henry").await;
    for token in [api_token.as_str(), henry.as_str()] {
        for method in [Method::GET, Method::DELETE] {
            let (status, body) = call(&app, Some(token), method, &path, None).await;
            assert_eq!(
                (status, body["error"].as_str()),
                (StatusCode::FORBIDDEN, Some("insufficient_scope"))
            );
        }
    }
    let (status, _) = call(&app, None, Method::DELETE, &path, None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(
        app.store.find_totp(&olga).unwrap().is_some(),
        "nothing removed"
    );
    assert_eq!(app.store.list_passkeys(&olga).unwrap().len(), 1);
}
