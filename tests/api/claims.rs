//! Standard claims (OIDC Core §5.1) set from the command line and released by scope
//! (§5.4): `profile`, `email`, `address` (structured) and `phone`.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::cli::portcullis_on;
use crate::helpers::{PASSWORD, TestApp, spawn_app};

fn db(app: &TestApp) -> String {
    format!("sqlite://{}/portcullis.db", app.dir.path().display())
}

fn cli(app: &TestApp, args: &[&str], stdin: Option<&str>) -> std::process::Output {
    portcullis_on(&db(app), &[], args, stdin)
}

async fn userinfo(app: &TestApp, scope: &str) -> Value {
    let client = app.add_client(false);
    let (url, pkce) = app.authorize_url(&client, &[("scope", scope)]);
    let callback = app.browser().sign_in(&url, "carol").await;
    let tokens = app.exchange(&client, &callback, &pkce).await;
    let response = crate::helpers::http()
        .get(app.url("/userinfo"))
        .bearer_auth(tokens["access_token"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    response.json().await.unwrap()
}

#[tokio::test]
async fn claims_set_from_the_command_line_are_released_by_their_scopes() {
    let app = spawn_app().await;
    let password = format!("{PASSWORD}\n");
    let out = cli(
        &app,
        &[
            "users",
            "add",
            "--username",
            "carol",
            "--email",
            "carol@example.com",
            "--email-verified",
            "--name",
            "Carol Danvers",
            "--claim",
            "phone_number=+1 555 0100",
            "--claim",
            "phone_number_verified=true",
            "--claim",
            "birthdate=1990-01-31",
            "--claim",
            "locale=fr-CA",
            "--claim",
            "zoneinfo=America/Montreal",
            "--claim",
            "website=https://carol.example",
            "--claim",
            "address.street_address=1 Rue Sainte-Catherine",
            "--claim",
            "address.locality=Montréal",
            "--claim",
            "address.country=CA",
            "--password-stdin",
        ],
        Some(&password),
    );
    assert!(out.status.success(), "{out:?}");

    let claims = userinfo(&app, "openid profile email address phone").await;
    assert_eq!(claims["name"], "Carol Danvers");
    assert_eq!(claims["birthdate"], "1990-01-31");
    assert_eq!(claims["locale"], "fr-CA");
    assert_eq!(claims["zoneinfo"], "America/Montreal");
    assert_eq!(claims["website"], "https://carol.example");
    assert_eq!(claims["email_verified"], true);
    assert_eq!(claims["phone_number"], "+1 555 0100");
    assert_eq!(claims["phone_number_verified"], true);
    assert_eq!(
        claims["address"],
        json!({"street_address": "1 Rue Sainte-Catherine", "locality": "Montréal", "country": "CA"})
    );
    assert!(claims["updated_at"].is_i64());

    // Only what the scopes release.
    let narrow = userinfo(&app, "openid phone").await;
    assert!(narrow.get("address").is_none() && narrow.get("name").is_none());
    assert_eq!(narrow["phone_number"], "+1 555 0100");

    // Update: one member goes, another claim changes, and updated_at moves on (from a
    // time long past, so that no waiting is needed to see it move).
    let mut carol = app.store.find_user_by_username("carol").unwrap().unwrap();
    carol.name = Some("Carol Danvers".into());
    app.store.update_user(&carol, 1_000).unwrap();
    let out = cli(
        &app,
        &[
            "users",
            "update",
            "carol",
            "--unset-claim",
            "address.street_address",
            "--claim",
            "phone_number_verified=false",
            "--name",
            "Carol D.",
        ],
        None,
    );
    assert!(out.status.success(), "{out:?}");
    let claims = userinfo(&app, "openid profile address phone").await;
    assert_eq!(claims["name"], "Carol D.");
    assert_eq!(
        claims["address"],
        json!({"locality": "Montréal", "country": "CA"})
    );
    assert_eq!(claims["phone_number_verified"], false);
    assert!(claims["updated_at"].as_i64().unwrap() > 1_000);
}

#[tokio::test]
async fn unknown_claims_and_bad_values_are_refused_and_nothing_is_written() {
    let app = spawn_app().await;
    let password = format!("{PASSWORD}\n");
    for (claim, message) in [
        ("shoe_size=42", "unknown claim shoe_size"),
        ("address.planet=Mars", "unknown claim address.planet"),
        ("phone_number_verified=yes", "must be true or false"),
        ("birthdate=31/01/1990", "YYYY-MM-DD"),
        ("sub=someone-else", "sub is not set this way"),
        ("no-equals-sign", "expected NAME=VALUE"),
    ] {
        let out = cli(
            &app,
            &[
                "users",
                "add",
                "--username",
                "dave",
                "--claim",
                claim,
                "--password-stdin",
            ],
            Some(&password),
        );
        assert!(!out.status.success(), "{claim}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(message), "{claim}: {stderr}");
        assert_eq!(stderr.trim().lines().count(), 1, "one line: {stderr}");
    }
    assert!(app.store.find_user_by_username("dave").unwrap().is_none());
    let out = cli(&app, &["users", "update", "nobody", "--name", "X"], None);
    assert!(!out.status.success());
}

#[tokio::test]
async fn discovery_lists_the_address_scope_and_the_standard_claims() {
    let app = spawn_app().await;
    let doc = app.get_json("/.well-known/openid-configuration").await;
    let scopes = doc["scopes_supported"].as_array().unwrap();
    assert!(scopes.contains(&json!("address")) && scopes.contains(&json!("phone")));
    let claims = doc["claims_supported"].as_array().unwrap();
    for claim in [
        "address",
        "birthdate",
        "zoneinfo",
        "locale",
        "updated_at",
        "phone_number_verified",
    ] {
        assert!(claims.contains(&json!(claim)), "{claim}");
    }
}
