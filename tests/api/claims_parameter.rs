//! The `claims` request parameter (OIDC Core §5.5), `acr_values` and `amr`, `display`,
//! `ui_locales`, `claims_locales` and `prompt=select_account`.

use portcullis::protocol::claims_request::ACR_PASSWORD;
use portcullis::protocol::registration::ClientDraft;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{TestApp, TestClient, jwt_part, query, spawn_app};

/// Alice, with a phone number beside the email and name every test user has.
async fn alice(app: &TestApp) {
    let id = app.add_user("alice").await;
    let mut user = app.store.find_user(&id).unwrap().unwrap();
    user.phone_number = Some("+1 555 0100".into());
    user.locale = Some("fr-CA".into());
    app.store
        .update_user(&user, portcullis::domain::now())
        .unwrap();
}

async fn tokens_with(app: &TestApp, client: &TestClient, extra: &[(&str, &str)]) -> Value {
    let (url, pkce) = app.authorize_url(client, extra);
    let callback = app.browser().sign_in(&url, "alice").await;
    app.exchange(client, &callback, &pkce).await
}

async fn userinfo(app: &TestApp, tokens: &Value) -> Value {
    crate::helpers::http()
        .get(app.url("/userinfo"))
        .bearer_auth(tokens["access_token"].as_str().unwrap())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

#[tokio::test]
async fn single_claims_are_released_where_the_request_asked_for_them() {
    let app = spawn_app().await;
    alice(&app).await;
    let client = app.add_refreshing_client();
    let claims = json!({
        "userinfo": {"phone_number": {"essential": true}, "email": null},
        "id_token": {"locale": null, "shoe_size": null},
    })
    .to_string();
    let tokens = tokens_with(
        &app,
        &client,
        &[
            ("scope", "openid offline_access"),
            ("prompt", "consent"),
            ("claims", &claims),
        ],
    )
    .await;

    // userinfo: the two asked for, beyond `openid` (which releases only `sub`).
    let info = userinfo(&app, &tokens).await;
    assert_eq!(info["phone_number"], "+1 555 0100");
    assert_eq!(info["email"], "alice@example.com");
    assert!(
        info.get("locale").is_none(),
        "asked for the ID token, not userinfo"
    );
    // The ID token: `locale` (and nothing for a claim the user does not have).
    let id = jwt_part(tokens["id_token"].as_str().unwrap(), 1);
    assert_eq!(id["locale"], "fr-CA");
    assert!(id.get("shoe_size").is_none() && id.get("phone_number").is_none());

    // Kept with the grant: the refreshed ID token and userinfo honour it still.
    let refreshed: Value = app
        .refresh(&client, tokens["refresh_token"].as_str().unwrap(), &[])
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        jwt_part(refreshed["id_token"].as_str().unwrap(), 1)["locale"],
        "fr-CA"
    );
    assert_eq!(
        userinfo(&app, &refreshed).await["phone_number"],
        "+1 555 0100"
    );

    // Without the parameter, `openid` alone releases the subject alone.
    let plain = tokens_with(&app, &client, &[("scope", "openid")]).await;
    let info = userinfo(&app, &plain).await;
    assert_eq!(info.as_object().unwrap().len(), 1, "{info}");
}

#[tokio::test]
async fn the_consent_page_names_the_single_claims_asked_for() {
    let app = spawn_app().await;
    alice(&app).await;
    let client = app.add_client(false);
    let claims = json!({"userinfo": {"phone_number": null, "email": null}}).to_string();
    let (url, _) = app.authorize_url(&client, &[("scope", "openid"), ("claims", &claims)]);
    let browser = app.browser();
    let (_, _, html) = browser
        .login(browser.open(&url).await, "alice")
        .await
        .page();
    assert!(
        html.contains("See these details: email, phone_number"),
        "{html}"
    );
}

#[tokio::test]
async fn acr_is_reported_when_asked_for_and_amr_always() {
    let app = spawn_app().await;
    alice(&app).await;
    let client = app.add_client(false);
    let plain = tokens_with(&app, &client, &[]).await;
    let id = jwt_part(plain["id_token"].as_str().unwrap(), 1);
    assert!(id.get("acr").is_none(), "not asked for");
    assert_eq!(id["amr"], json!(["pwd"]));

    let asked = tokens_with(&app, &client, &[("acr_values", "urn:other:loa:2 urn:x")]).await;
    let id = jwt_part(asked["id_token"].as_str().unwrap(), 1);
    assert_eq!(
        id["acr"], ACR_PASSWORD,
        "what was achieved, as asked voluntarily"
    );

    let essential_met = json!({"id_token": {"acr": {"essential": true, "values": [ACR_PASSWORD]}}});
    let tokens = tokens_with(&app, &client, &[("claims", &essential_met.to_string())]).await;
    assert_eq!(
        jwt_part(tokens["id_token"].as_str().unwrap(), 1)["acr"],
        ACR_PASSWORD
    );

    // An essential acr that cannot be met is a failed authentication (§5.5.1.1).
    let unmet = json!({"id_token": {"acr": {"essential": true, "values": ["urn:mfa"]}}});
    let (url, _) = app.authorize_url(&client, &[("claims", &unmet.to_string())]);
    let back = app.browser().open(&url).await.left();
    assert_eq!(query(&back, "error").as_deref(), Some("access_denied"));
    assert_eq!(query(&back, "state").as_deref(), Some("st-123"));
}

#[tokio::test]
async fn malformed_claims_and_display_values_are_invalid_requests_and_locales_are_accepted() {
    let app = spawn_app().await;
    alice(&app).await;
    let client = app.add_client(false);
    for extra in [
        ("claims", "not json"),
        ("claims", "[]"),
        ("claims", r#"{"userinfo": ["email"]}"#),
        ("display", "hologram"),
    ] {
        let (url, _) = app.authorize_url(&client, &[extra]);
        let back = app.browser().open(&url).await.left();
        assert_eq!(
            query(&back, "error").as_deref(),
            Some("invalid_request"),
            "{extra:?}"
        );
    }
    let tokens = tokens_with(
        &app,
        &client,
        &[
            ("display", "popup"),
            ("ui_locales", "fr-CA en"),
            ("claims_locales", "fr"),
        ],
    )
    .await;
    assert!(tokens["id_token"].is_string());
}

#[tokio::test]
async fn prompt_select_account_shows_the_login_page_to_a_signed_in_browser() {
    let app = spawn_app().await;
    alice(&app).await;
    app.add_user("bob").await;
    let client = app.add_client(false);
    let browser = app.browser();
    browser
        .sign_in(&app.authorize_url(&client, &[]).0, "alice")
        .await;
    let (url, pkce) = app.authorize_url(&client, &[("prompt", "select_account")]);
    let outcome = browser.open(&url).await;
    assert!(
        outcome.is_page("/login"),
        "an account is chosen on the login page"
    );
    let callback = browser
        .consent_if_asked(browser.login(outcome, "bob").await)
        .await
        .left();
    let tokens = app.exchange(&client, &callback, &pkce).await;
    assert_eq!(
        jwt_part(tokens["id_token"].as_str().unwrap(), 1)["name"],
        Value::Null
    );
    assert_eq!(userinfo(&app, &tokens).await["preferred_username"], "bob");
}

#[tokio::test]
async fn an_id_token_from_the_front_channel_carries_the_claims_asked_for() {
    let app = spawn_app().await;
    alice(&app).await;
    let client = app.add_client_with(ClientDraft {
        response_types: vec!["id_token token".into()],
        ..ClientDraft::default()
    });
    let claims = json!({"id_token": {"phone_number": null}}).to_string();
    let (url, _) = app.authorize_url(
        &client,
        &[
            ("response_type", "id_token token"),
            ("scope", "openid"),
            ("claims", &claims),
        ],
    );
    let back = app.browser().sign_in(&url, "alice").await;
    let pairs: Vec<(String, String)> =
        url::form_urlencoded::parse(back.fragment().unwrap().as_bytes())
            .into_owned()
            .collect();
    let id_token = &pairs.iter().find(|(k, _)| k == "id_token").unwrap().1;
    assert_eq!(jwt_part(id_token, 1)["phone_number"], "+1 555 0100");
}

#[tokio::test]
async fn discovery_announces_the_claims_parameter_acr_values_and_display_values() {
    let app = spawn_app().await;
    let doc = app.get_json("/.well-known/openid-configuration").await;
    assert_eq!(doc["claims_parameter_supported"], true);
    assert_eq!(
        doc["acr_values_supported"],
        json!([ACR_PASSWORD, portcullis::protocol::claims_request::ACR_MFA])
    );
    assert_eq!(
        doc["display_values_supported"],
        json!(["page", "popup", "touch", "wap"])
    );
    let status = crate::helpers::get(app.url("/.well-known/openid-configuration"))
        .await
        .unwrap()
        .status();
    assert_eq!(status, StatusCode::OK);
}

/// OIDC Core §5.5.1: a request for a particular `sub` gets a response for that user only,
/// "even if [another user has] an active session".
#[tokio::test]
async fn a_claims_request_for_another_users_sub_never_answers_for_the_signed_in_user() {
    let app = spawn_app().await;
    alice(&app).await;
    let bob = app.add_user("bob").await;
    let client = app.add_client(false);
    let browser = app.browser();
    let (url, _) = app.authorize_url(&client, &[]);
    browser.sign_in(&url, "alice").await;
    let for_bob = json!({"id_token": {"sub": {"value": bob}}}).to_string();

    // Alice's session cannot answer silently for Bob.
    let (url, _) = app.authorize_url(&client, &[("claims", &for_bob), ("prompt", "none")]);
    let callback = browser.open(&url).await.left();
    assert_eq!(query(&callback, "error").as_deref(), Some("login_required"));
    assert!(query(&callback, "code").is_none());

    // Asked interactively, the login page comes first; Alice signing in there gets no code.
    let (url, _) = app.authorize_url(&client, &[("claims", &for_bob)]);
    let outcome = browser.open(&url).await;
    assert!(outcome.is_page("/login"), "{outcome:?}");
    let callback = browser.login(outcome, "alice").await.left();
    assert_eq!(query(&callback, "error").as_deref(), Some("login_required"));

    // Bob signing in gets Bob's tokens.
    let (url, pkce) = app.authorize_url(&client, &[("claims", &for_bob)]);
    let outcome = browser.login(browser.open(&url).await, "bob").await;
    let callback = browser.consent_if_asked(outcome).await.left();
    let tokens = app.exchange(&client, &callback, &pkce).await;
    let id_token = jwt_part(tokens["id_token"].as_str().unwrap(), 1);
    assert_eq!(id_token["sub"], json!(bob));

    // A value that is not a string is a malformed request.
    let bad = json!({"id_token": {"sub": {"value": 7}}}).to_string();
    let (url, _) = app.authorize_url(&client, &[("claims", &bad)]);
    let callback = app.browser().open(&url).await.left();
    assert_eq!(
        query(&callback, "error").as_deref(),
        Some("invalid_request")
    );
}

/// OIDC Core §3.1.2.4, §5.5: a remembered consent covers the claims it released; claims
/// asked for later one by one need the user's consent again, or `consent_required`.
#[tokio::test]
async fn a_remembered_consent_does_not_release_claims_asked_for_later() {
    let app = spawn_app().await;
    alice(&app).await;
    let client = app.add_client(false);
    let browser = app.browser();
    let (url, _) = app.authorize_url(&client, &[("scope", "openid")]);
    browser.sign_in(&url, "alice").await;
    let claims = json!({"userinfo": {"email": null, "phone_number": null}}).to_string();
    let asking = [("scope", "openid"), ("claims", claims.as_str())];

    let mut silent = asking.to_vec();
    silent.push(("prompt", "none"));
    let (url, _) = app.authorize_url(&client, &silent);
    let callback = browser.open(&url).await.left();
    assert_eq!(
        query(&callback, "error").as_deref(),
        Some("consent_required")
    );

    // Asked interactively: the consent page, then the claims.
    let (url, pkce) = app.authorize_url(&client, &asking);
    let outcome = browser.open(&url).await;
    assert!(outcome.is_page("/consent"), "{outcome:?}");
    let callback = browser.consent_if_asked(outcome).await.left();
    let tokens = app.exchange(&client, &callback, &pkce).await;
    let info = userinfo(&app, &tokens).await;
    assert_eq!(info["email"], "alice@example.com");
    assert_eq!(info["phone_number"], "+1 555 0100");

    // Now remembered: no page, even silently.
    let (url, _) = app.authorize_url(&client, &silent);
    assert!(query(&browser.open(&url).await.left(), "code").is_some());
    // Claims a consented scope releases need no page either.
    let address = json!({"userinfo": {"email": null}}).to_string();
    let other = app.add_client(false);
    let (url, _) = app.authorize_url(&other, &[("scope", "openid email")]);
    browser
        .consent_if_asked(browser.open(&url).await)
        .await
        .left();
    let (url, _) = app.authorize_url(
        &other,
        &[
            ("scope", "openid"),
            ("claims", &address),
            ("prompt", "none"),
        ],
    );
    assert!(query(&browser.open(&url).await.left(), "code").is_some());
}
