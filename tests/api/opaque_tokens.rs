//! Opaque access tokens (issue 26) over HTTP, on SQLite and on PostgreSQL: a client whose
//! operator chose them gets random references that introspection, userinfo, revocation,
//! token exchange and the admin API resolve, and that die with their grant as JWTs do.
//! A JWT client is unchanged; the CLI and the admin API set the format.

use portcullis::crypto::tokens::token_hash;
use portcullis::domain::AccessTokenFormat;
use portcullis::protocol::registration::ClientDraft;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::backends::TempDatabase;
use crate::dpop::{
    Key, admin_service, challenge, client_token, error_of, now, ok_json, resource, resource_proof,
    token_request,
};
use crate::helpers::{Options, TestApp, TestClient, jwt_part, query, spawn_app, spawn_app_with};

const EXCHANGE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
const ACCESS: &str = "urn:ietf:params:oauth:token-type:access_token";
const API: &str = "https://api.example/";

/// An instance on each backend this machine has (SQLite always), with the PostgreSQL
/// database kept alive beside it.
async fn apps() -> Vec<(TestApp, Option<TempDatabase>)> {
    let mut apps = vec![(spawn_app_with(Options::default()).await, None)];
    if let Some(db) = TempDatabase::create() {
        let app = spawn_app_with(Options {
            database_url: Some(db.url.clone()),
            ..Default::default()
        })
        .await;
        apps.push((app, Some(db)));
    }
    apps
}

/// A confidential client with the code and refresh grants and opaque access tokens.
fn opaque_client(app: &TestApp) -> TestClient {
    app.add_client_with(ClientDraft {
        grant_types: vec!["authorization_code".into(), "refresh_token".into()],
        access_token_format: AccessTokenFormat::Opaque,
        ..ClientDraft::default()
    })
}

/// A client of opaque tokens that may exchange them for `API`, impersonating, with the
/// code and refresh grants and `more`.
fn opaque_exchanger(app: &TestApp, more: &[&str]) -> TestClient {
    let mut grant_types: Vec<String> = vec!["authorization_code".into(), "refresh_token".into()];
    grant_types.extend(more.iter().map(|g| g.to_string()));
    grant_types.push(EXCHANGE.into());
    app.add_client_with(ClientDraft {
        grant_types,
        exchange_audiences: vec![API.into()],
        exchange_impersonation: true,
        access_token_format: AccessTokenFormat::Opaque,
        ..ClientDraft::default()
    })
}

fn text(v: &Value, name: &str) -> String {
    v[name]
        .as_str()
        .unwrap_or_else(|| panic!("{name} in {v}"))
        .to_owned()
}

/// 256 bits in base64url, nothing a resource server could parse.
fn assert_opaque(token: &str) {
    assert_eq!(token.len(), 43, "{token}");
    assert!(
        token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'),
        "{token}"
    );
}

async fn introspect(app: &TestApp, caller: &TestClient, form: &[(&str, &str)]) -> Value {
    ok_json(app.post_as(caller, "/introspect", form).await).await
}

async fn active(app: &TestApp, caller: &TestClient, token: &str) -> bool {
    let info = introspect(app, caller, &[("token", token)]).await;
    if info["active"] == false {
        assert_eq!(info, json!({"active": false}), "nothing but that");
    }
    info["active"] == true
}

#[tokio::test]
async fn an_opaque_clients_tokens_are_references_that_introspection_and_userinfo_resolve() {
    for (app, _db) in apps().await {
        let sub = app.add_user("alice").await;
        let client = opaque_client(&app);
        let (tokens, _) = app.offline_tokens(&client, "alice").await;
        let access = text(&tokens, "access_token");
        assert_opaque(&access);
        assert_eq!(tokens["token_type"], "Bearer");
        assert_eq!(tokens["expires_in"], 3600);
        // The ID token is still a JWT, and its at_hash covers the opaque token.
        assert!(jwt_part(&text(&tokens, "id_token"), 1)["at_hash"].is_string());
        // Stored as its hash only.
        let store = app.store.clone();
        let (hash, plain) = (token_hash(&access), access.clone());
        let (by_hash, by_token) = tokio::task::spawn_blocking(move || {
            (
                store.find_opaque_access_token(&hash).unwrap(),
                store.find_opaque_access_token(&plain).unwrap(),
            )
        })
        .await
        .unwrap();
        assert!(by_hash.is_some() && by_token.is_none());

        let resource_server = app.add_client(false);
        let info = introspect(&app, &resource_server, &[("token", &access)]).await;
        assert_eq!(info["active"], true, "{info}");
        assert_eq!(info["iss"], app.issuer.as_str());
        assert_eq!(info["client_id"], client.id.as_str());
        assert_eq!(info["sub"], sub.as_str());
        assert_eq!(info["aud"], app.issuer.as_str());
        assert_eq!(info["scope"], "offline_access openid profile");
        assert_eq!(info["token_type"], "Bearer");
        assert!(info["jti"].is_string() && info["auth_time"].is_i64());
        let (iat, exp) = (info["iat"].as_i64().unwrap(), info["exp"].as_i64().unwrap());
        assert_eq!(exp - iat, 3600);

        let userinfo = ok_json(resource(&app, "/userinfo", "Bearer", &access, None).await).await;
        assert_eq!(userinfo["sub"], sub.as_str());

        // A refresh: another opaque token, the first one still good.
        let response = app
            .refresh(&client, &text(&tokens, "refresh_token"), &[])
            .await;
        let refreshed = ok_json(response).await;
        let second = text(&refreshed, "access_token");
        assert_opaque(&second);
        assert_ne!(second, access);
        assert!(active(&app, &resource_server, &second).await);
        assert!(active(&app, &resource_server, &access).await);
    }
}

#[tokio::test]
async fn revocation_makes_an_opaque_token_inactive_with_or_without_a_hint() {
    for (app, _db) in apps().await {
        app.add_user("alice").await;
        let client = opaque_client(&app);
        let (tokens, _) = app.offline_tokens(&client, "alice").await;
        let refresh = text(&tokens, "refresh_token");
        let mut access = vec![text(&tokens, "access_token")];
        for _ in 0..2 {
            let refreshed = ok_json(app.refresh(&client, &refresh, &[]).await).await;
            access.push(text(&refreshed, "access_token"));
        }
        let hints: [&[(&str, &str)]; 3] = [
            &[],
            &[("token_type_hint", "access_token")],
            // §2.1: a wrong hint makes the server look further, not fail.
            &[("token_type_hint", "refresh_token")],
        ];
        for (token, hint) in access.iter().zip(hints) {
            assert!(active(&app, &client, token).await);
            let mut form = vec![("token", token.as_str())];
            form.extend_from_slice(hint);
            let revoked = app.post_as(&client, "/revoke", &form).await;
            assert_eq!(revoked.status(), StatusCode::OK, "{hint:?}");
            assert!(!active(&app, &client, token).await, "{hint:?}");
            assert_eq!(app.userinfo_status(token).await, 401);
        }
        // Another confidential client may not revoke them (RFC 7009 §2.1).
        let (more, _) = app.offline_tokens(&client, "alice").await;
        let other = app.add_client(false);
        let foreign = app
            .post_as(
                &other,
                "/revoke",
                &[("token", &text(&more, "access_token"))],
            )
            .await;
        assert_eq!(foreign.status(), StatusCode::BAD_REQUEST);
        assert!(active(&app, &client, &text(&more, "access_token")).await);
    }
}

#[tokio::test]
async fn an_opaque_token_dies_with_its_grant() {
    for (app, _db) in apps().await {
        let sub = app.add_user("alice").await;
        let client = opaque_client(&app);

        // Its refresh token revoked: the grant ends, and its access tokens with it.
        let (tokens, _) = app.offline_tokens(&client, "alice").await;
        let access = text(&tokens, "access_token");
        let revoked = app
            .post_as(
                &client,
                "/revoke",
                &[("token", &text(&tokens, "refresh_token"))],
            )
            .await;
        assert_eq!(revoked.status(), StatusCode::OK);
        assert!(!active(&app, &client, &access).await);
        assert_eq!(app.userinfo_status(&access).await, 401);

        // A rotated refresh token used again after the grace period: theft, the family ends.
        let (tokens, _) = app.offline_tokens(&client, "alice").await;
        let first = text(&tokens, "refresh_token");
        let refreshed = ok_json(app.refresh(&client, &first, &[]).await).await;
        let access = text(&refreshed, "access_token");
        app.clock.advance(60);
        let replayed = app.refresh(&client, &first, &[]).await;
        assert_eq!(replayed.status(), StatusCode::BAD_REQUEST);
        assert!(!active(&app, &client, &access).await);

        // The user signed out everywhere.
        let (tokens, _) = app.offline_tokens(&client, "alice").await;
        let access = text(&tokens, "access_token");
        assert!(active(&app, &client, &access).await);
        let (store, id, at) = (app.store.clone(), sub.clone(), now(&app));
        tokio::task::spawn_blocking(move || store.end_user_sessions(&id, at).unwrap())
            .await
            .unwrap();
        assert!(!active(&app, &client, &access).await);

        // The client deleted.
        let (tokens, _) = app.offline_tokens(&client, "alice").await;
        let access = text(&tokens, "access_token");
        let reader = app.add_client(false);
        assert!(active(&app, &reader, &access).await);
        let (store, id) = (app.store.clone(), client.id.clone());
        tokio::task::spawn_blocking(move || store.delete_client(&id).unwrap())
            .await
            .unwrap();
        assert!(!active(&app, &reader, &access).await);
    }
}

#[tokio::test]
async fn an_expired_opaque_token_is_inactive_and_swept_away() {
    for (app, _db) in apps().await {
        app.add_user("alice").await;
        let client = opaque_client(&app);
        let access = text(&app.tokens_for(&client, "alice").await, "access_token");
        app.clock.advance(3599);
        assert!(active(&app, &client, &access).await);
        assert_eq!(app.userinfo_status(&access).await, 200);
        // Exactly at `exp` it is expired, as a JWT is (RFC 7519 §4.1.4).
        app.clock.advance(1);
        assert!(!active(&app, &client, &access).await);
        assert_eq!(app.userinfo_status(&access).await, 401);
        let revoke = app.post_as(&client, "/revoke", &[("token", &access)]).await;
        assert_eq!(
            revoke.status(),
            StatusCode::OK,
            "nothing to revoke, still 200"
        );

        // The sweeper's purge takes the row.
        let (store, hash, after) = (app.store.clone(), token_hash(&access), now(&app) + 1);
        let left = tokio::task::spawn_blocking(move || {
            store.purge_expired(after).unwrap();
            store.find_opaque_access_token(&hash).unwrap()
        })
        .await
        .unwrap();
        assert!(left.is_none());
    }
}

/// A public client's code redeemed with a proof by `key`: the token response.
async fn bound_tokens(app: &TestApp, client: &TestClient, key: &Key) -> Value {
    let (url, pkce) = app.authorize_url(client, &[]);
    let callback = app.browser().sign_in(&url, "alice").await;
    let code = query(&callback, "code").unwrap();
    let proof = key.proof("POST", &app.url("/token"), now(app), json!({}));
    let form = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", client.redirect_uri.as_str()),
        ("code_verifier", pkce.verifier.as_str()),
    ];
    ok_json(token_request(app, client, &form, Some(&proof)).await).await
}

#[tokio::test]
async fn a_dpop_bound_opaque_token_is_used_only_with_a_proof_by_its_key() {
    for (app, _db) in apps().await {
        app.add_user("alice").await;
        let client = app.add_client_with(ClientDraft {
            auth_method: Some("none".into()),
            access_token_format: AccessTokenFormat::Opaque,
            ..ClientDraft::default()
        });
        let key = Key::new();
        let tokens = bound_tokens(&app, &client, &key).await;
        assert_eq!(tokens["token_type"], "DPoP");
        let access = text(&tokens, "access_token");
        assert_opaque(&access);

        let reader = app.add_client(false);
        let info = introspect(&app, &reader, &[("token", &access)]).await;
        assert_eq!(info["token_type"], "DPoP");
        assert_eq!(info["cnf"], json!({"jkt": key.jkt()}));

        let proof = resource_proof(&app, &key, "/userinfo", &access);
        ok_json(resource(&app, "/userinfo", "DPoP", &access, Some(&proof)).await).await;
        // RFC 9449 §7.1: as Bearer it is refused, with a DPoP challenge.
        let as_bearer = resource(&app, "/userinfo", "Bearer", &access, None).await;
        assert!(challenge(&as_bearer).starts_with("DPoP "));
        assert_eq!(
            error_of(as_bearer).await,
            (StatusCode::UNAUTHORIZED, "invalid_token".into())
        );
        // A proof that does not hash this token (`ath`), or by another key.
        let without_ath = key.proof("GET", &app.url("/userinfo"), now(&app), json!({}));
        let refused = resource(&app, "/userinfo", "DPoP", &access, Some(&without_ath)).await;
        assert_eq!(error_of(refused).await.1, "invalid_dpop_proof");
        let wrong_ath = key.proof(
            "GET",
            &app.url("/userinfo"),
            now(&app),
            json!({"ath": crate::dpop::ath("another token")}),
        );
        let refused = resource(&app, "/userinfo", "DPoP", &access, Some(&wrong_ath)).await;
        assert_eq!(error_of(refused).await.1, "invalid_dpop_proof");
        let other = resource_proof(&app, &Key::new(), "/userinfo", &access);
        let refused = resource(&app, "/userinfo", "DPoP", &access, Some(&other)).await;
        assert_eq!(error_of(refused).await.1, "invalid_dpop_proof");
    }
}

#[tokio::test]
async fn the_admin_api_takes_an_opaque_client_token_bound_or_not() {
    let app = spawn_app().await;
    let service = admin_service(
        &app,
        ClientDraft {
            access_token_format: AccessTokenFormat::Opaque,
            ..ClientDraft::default()
        },
    );
    let key = Key::new();
    let body = ok_json(client_token(&app, &service, &key).await).await;
    let token = text(&body, "access_token");
    assert_opaque(&token);
    let path = "/admin/api/clients";
    let proof = resource_proof(&app, &key, path, &token);
    ok_json(resource(&app, path, "DPoP", &token, Some(&proof)).await).await;
    let as_bearer = resource(&app, path, "Bearer", &token, None).await;
    assert_eq!(as_bearer.status(), StatusCode::UNAUTHORIZED);

    let plain = app
        .token_request(
            &[("grant_type", "client_credentials")],
            Some((&service.id, service.secret.as_deref().unwrap())),
        )
        .await;
    let plain = text(&ok_json(plain).await, "access_token");
    assert_opaque(&plain);
    ok_json(resource(&app, path, "Bearer", &plain, None).await).await;
    let revoked = app.post_as(&service, "/revoke", &[("token", &plain)]).await;
    assert_eq!(revoked.status(), StatusCode::OK);
    let after = resource(&app, path, "Bearer", &plain, None).await;
    assert_eq!(after.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn token_exchange_takes_opaque_subject_and_actor_tokens() {
    for (app, _db) in apps().await {
        app.add_user("alice").await;
        let exchanger = opaque_exchanger(&app, &["client_credentials"]);
        let (tokens, _) = app.offline_tokens(&exchanger, "alice").await;
        let subject = text(&tokens, "access_token");
        assert_opaque(&subject);
        let secret = exchanger.secret.clone().unwrap();
        let basic = Some((exchanger.id.as_str(), secret.as_str()));

        let form = [
            ("grant_type", EXCHANGE),
            ("subject_token", subject.as_str()),
            ("subject_token_type", ACCESS),
            ("resource", API),
        ];
        let exchanged = ok_json(app.token_request(&form, basic).await).await;
        assert_eq!(exchanged["issued_token_type"], ACCESS);
        let issued = text(&exchanged, "access_token");
        assert_opaque(&issued);
        let reader = app.add_client(false);
        let info = introspect(&app, &reader, &[("token", &issued)]).await;
        assert_eq!(info["active"], true, "{info}");
        assert_eq!(info["aud"], API);

        // Delegation: the client's own opaque token as the actor.
        let own = app
            .token_request(&[("grant_type", "client_credentials")], basic)
            .await;
        let own = text(&ok_json(own).await, "access_token");
        assert_opaque(&own);
        let mut delegated_form = form.to_vec();
        delegated_form.extend([("actor_token", own.as_str()), ("actor_token_type", ACCESS)]);
        let delegated = ok_json(app.token_request(&delegated_form, basic).await).await;
        let delegated = text(&delegated, "access_token");
        let info = introspect(&app, &reader, &[("token", &delegated)]).await;
        assert_eq!(info["act"], json!({"sub": exchanger.id}), "{info}");

        // The subject token revoked: what was exchanged from it dies too.
        let revoked = app
            .post_as(&exchanger, "/revoke", &[("token", &subject)])
            .await;
        assert_eq!(revoked.status(), StatusCode::OK);
        assert!(!active(&app, &reader, &issued).await);
        assert!(!active(&app, &reader, &delegated).await);
    }
}

/// Runs `sqlite` or `postgres`, statements for the backend `app` is on, on its database
/// through a connection of the test's own.
fn on_database(app: &TestApp, db: Option<&TempDatabase>, sqlite: &str, postgres: &str) {
    use diesel::Connection;
    use diesel::connection::SimpleConnection;
    match db {
        Some(db) => diesel::PgConnection::establish(&db.url)
            .unwrap()
            .batch_execute(postgres)
            .unwrap(),
        None => {
            let path = app.dir.path().join("portcullis.db");
            let mut conn = diesel::SqliteConnection::establish(path.to_str().unwrap()).unwrap();
            conn.batch_execute("PRAGMA busy_timeout = 5000;").unwrap();
            conn.batch_execute(sqlite).unwrap();
        }
    }
}

/// Every INSERT of an opaque token's row fails (as a full disk or a lost server would).
const REFUSE_SQLITE: &str = "CREATE TRIGGER refuse_opaque BEFORE INSERT ON opaque_access_tokens \
     BEGIN SELECT RAISE(ABORT, 'refused by the test'); END;";
const REFUSE_POSTGRES: &str = "CREATE FUNCTION refuse_opaque() RETURNS trigger LANGUAGE plpgsql \
     AS $$ BEGIN RAISE EXCEPTION 'refused by the test'; END $$; \
     CREATE TRIGGER refuse_opaque BEFORE INSERT ON opaque_access_tokens \
     FOR EACH ROW EXECUTE FUNCTION refuse_opaque();";

#[tokio::test]
async fn a_redemption_that_cannot_record_its_opaque_token_leaves_the_code_unused() {
    for (app, db) in apps().await {
        app.add_user("alice").await;
        let client = opaque_client(&app);
        // With `groups`: the response looks up the user's groups, and still the token's
        // row is written in the redemption's transaction.
        let (url, pkce) = app.authorize_url(&client, &[("scope", "openid groups")]);
        let callback = app.browser().sign_in(&url, "alice").await;
        let code = query(&callback, "code").unwrap();

        on_database(&app, db.as_ref(), REFUSE_SQLITE, REFUSE_POSTGRES);
        let failed = app.redeem(&client, &code, Some(&pkce.verifier)).await;
        assert!(failed.status().is_server_error(), "{}", failed.status());
        on_database(
            &app,
            db.as_ref(),
            "DROP TRIGGER refuse_opaque;",
            "DROP TRIGGER refuse_opaque ON opaque_access_tokens;",
        );

        // Not used up: the client's retry gets its tokens.
        let tokens = ok_json(app.redeem(&client, &code, Some(&pkce.verifier)).await).await;
        assert!(text(&tokens, "scope").contains("groups"), "{tokens}");
        let access = text(&tokens, "access_token");
        assert_opaque(&access);
        assert!(active(&app, &client, &access).await);
    }
}

#[tokio::test]
async fn an_exchange_whose_subject_grant_is_deleted_meanwhile_is_refused() {
    for (app, db) in apps().await {
        app.add_user("alice").await;
        let exchanger = opaque_exchanger(&app, &[]);
        let (tokens, _) = app.offline_tokens(&exchanger, "alice").await;
        let subject = text(&tokens, "access_token");
        // The grant goes (its user or client deleted) after the exchange found it live
        // and before the issued token's row refers to it: right before that INSERT.
        on_database(
            &app,
            db.as_ref(),
            "CREATE TRIGGER end_grant BEFORE INSERT ON opaque_access_tokens \
             BEGIN DELETE FROM grants WHERE id = NEW.grant_id; END;",
            "CREATE FUNCTION end_grant() RETURNS trigger LANGUAGE plpgsql \
             AS $$ BEGIN DELETE FROM grants WHERE id = NEW.grant_id; RETURN NEW; END $$; \
             CREATE TRIGGER end_grant BEFORE INSERT ON opaque_access_tokens \
             FOR EACH ROW EXECUTE FUNCTION end_grant();",
        );
        let secret = exchanger.secret.clone().unwrap();
        let form = [
            ("grant_type", EXCHANGE),
            ("subject_token", subject.as_str()),
            ("subject_token_type", ACCESS),
            ("resource", API),
        ];
        let response = app
            .token_request(&form, Some((exchanger.id.as_str(), secret.as_str())))
            .await;
        let status = response.status();
        let body: Value = response.json().await.unwrap();
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        assert_eq!(body["error"], "invalid_request", "{body}");
        assert_eq!(
            body["error_description"], "the subject token's grant has ended",
            "{body}"
        );
    }
}

#[tokio::test]
async fn a_jwt_client_is_unchanged() {
    let app = spawn_app().await;
    app.add_user("alice").await;
    let client = app.add_refreshing_client();
    let (tokens, _) = app.offline_tokens(&client, "alice").await;
    let access = text(&tokens, "access_token");
    assert_eq!(jwt_part(&access, 0)["typ"], "at+jwt");
    assert_eq!(jwt_part(&access, 1)["client_id"], client.id.as_str());
    let (store, hash) = (app.store.clone(), token_hash(&access));
    let stored = tokio::task::spawn_blocking(move || store.find_opaque_access_token(&hash))
        .await
        .unwrap()
        .unwrap();
    assert!(stored.is_none(), "a JWT is not stored");
    assert!(active(&app, &client, &access).await);
}

async fn admin(
    app: &TestApp,
    token: &str,
    method: Method,
    path: &str,
    body: Value,
) -> (StatusCode, Value) {
    crate::admin_api::call(app, Some(token), method, path, Some(body)).await
}

async fn cc_token(app: &TestApp, id: &str, secret: &str) -> String {
    let response = app
        .token_request(&[("grant_type", "client_credentials")], Some((id, secret)))
        .await;
    text(&ok_json(response).await, "access_token")
}

#[tokio::test]
async fn the_admin_api_sets_the_format_and_refuses_other_values() {
    let app = spawn_app().await;
    let (_, token) = crate::admin_api::automation(&app).await;
    let service = json!({
        "client_name": "Reports",
        "grant_types": ["client_credentials"],
        "redirect_uris": [],
        "scope": "reports:read",
    });
    let mut opaque = service.clone();
    opaque["access_token_format"] = json!("opaque");
    let (status, created) = admin(&app, &token, Method::POST, "/clients", opaque).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_eq!(created["access_token_format"], "opaque");
    let (id, secret) = (text(&created, "client_id"), text(&created, "client_secret"));
    assert_opaque(&cc_token(&app, &id, &secret).await);

    // A change elsewhere keeps it; a change of it takes effect at the next token.
    let path = format!("/clients/{id}");
    let (status, kept) = admin(
        &app,
        &token,
        Method::PATCH,
        &path,
        json!({"client_name": "R"}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{kept}");
    assert_eq!(kept["access_token_format"], "opaque");
    let (status, changed) = admin(
        &app,
        &token,
        Method::PATCH,
        &path,
        json!({"access_token_format": "jwt"}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{changed}");
    assert_eq!(changed["access_token_format"], "jwt");
    let jwt = cc_token(&app, &id, &secret).await;
    assert_eq!(jwt.matches('.').count(), 2);

    for bad in [json!("reference"), json!("JWT"), json!(42)] {
        let mut body = service.clone();
        body["access_token_format"] = bad.clone();
        let (status, error) = admin(&app, &token, Method::POST, "/clients", body).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}: {error}");
        assert_eq!(error["error"], "invalid_client_metadata", "{bad}");
        let (status, _) = admin(
            &app,
            &token,
            Method::PATCH,
            &path,
            json!({"access_token_format": bad}),
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
    }
    let read = crate::admin_api::get(&app, &token, &path).await;
    assert_eq!(
        read["access_token_format"], "jwt",
        "refused changes changed nothing"
    );
}

#[tokio::test]
async fn dynamic_registration_cannot_ask_for_opaque_tokens() {
    let app = spawn_app_with(Options {
        env: vec![("REGISTRATION", "open".into())],
        ..Default::default()
    })
    .await;
    let response = crate::helpers::http()
        .post(app.url("/register"))
        .json(&json!({
            "redirect_uris": ["https://rp.example/cb"],
            "access_token_format": "opaque",
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    let registered: Value = response.json().await.unwrap();
    assert!(registered.get("access_token_format").is_none());
    let id = text(&registered, "client_id");
    let (store, id2) = (app.store.clone(), id.clone());
    let client = tokio::task::spawn_blocking(move || store.find_client(&id2).unwrap().unwrap())
        .await
        .unwrap();
    assert_eq!(client.access_token_format, AccessTokenFormat::Jwt);
}

#[tokio::test]
async fn the_cli_sets_the_format_and_refuses_other_values() {
    let dir = tempfile::TempDir::new().unwrap();
    let db = format!("sqlite://{}/cli.db", dir.path().display());
    let add = |format: &str| {
        crate::cli::portcullis_on(
            &db,
            &[("PORTCULLIS_KEY_ENCRYPTION_KEY", crate::helpers::TEST_KEK)],
            &[
                "clients",
                "add",
                "--name",
                "Batch",
                "--grant-type",
                "client_credentials",
                "--access-token-format",
                format,
            ],
            None,
        )
    };
    let ids: Vec<String> = ["opaque", "jwt"]
        .into_iter()
        .map(|format| {
            let out = add(format);
            assert!(out.status.success(), "{format}: {out:?}");
            let printed: Value = serde_json::from_slice(&out.stdout).unwrap();
            text(&printed, "client_id")
        })
        .collect();
    let refused = add("reference");
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("--access-token-format"));

    let app = spawn_app_with(Options {
        database_url: Some(db.clone()),
        ..Default::default()
    })
    .await;
    let store = app.store.clone();
    let formats = tokio::task::spawn_blocking(move || {
        ids.iter()
            .map(|id| store.find_client(id).unwrap().unwrap().access_token_format)
            .collect::<Vec<_>>()
    })
    .await
    .unwrap();
    assert_eq!(formats, [AccessTokenFormat::Opaque, AccessTokenFormat::Jwt]);
}
