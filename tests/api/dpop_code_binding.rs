//! Authorization codes bound to a DPoP key (RFC 9449 §10): by `dpop_jkt` at the
//! authorization endpoint or the PAR endpoint, or by a proof sent with the push (§10.1);
//! the code is then redeemed only with a proof by that key.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::backends::TempDatabase;
use crate::dpop::{Key, error_of, now, ok_json, token_request};
use crate::helpers::{Options, Pkce, TestApp, TestClient, http, jwt_part, query, spawn_app_with};

/// The code grant's form for the code in `callback`.
fn code_form<'a>(
    client: &'a TestClient,
    code: &'a str,
    pkce: &'a Pkce,
) -> [(&'static str, &'a str); 4] {
    [
        ("grant_type", "authorization_code"),
        ("code", code),
        ("redirect_uri", client.redirect_uri.as_str()),
        ("code_verifier", pkce.verifier.as_str()),
    ]
}

fn token_proof(app: &TestApp, key: &Key) -> String {
    key.proof("POST", &app.url("/token"), now(app), json!({}))
}

/// A push of `client`'s request (PKCE, `extra`) with `proof` as its `DPoP` header.
async fn push(
    app: &TestApp,
    client: &TestClient,
    pkce: &Pkce,
    extra: &[(&str, &str)],
    proof: Option<&str>,
) -> reqwest::Response {
    let mut form = vec![
        ("response_type", "code"),
        ("client_id", client.id.as_str()),
        ("redirect_uri", client.redirect_uri.as_str()),
        ("scope", "openid"),
        ("state", "pushed"),
        ("code_challenge", pkce.challenge.as_str()),
        ("code_challenge_method", "S256"),
    ];
    form.extend_from_slice(extra);
    let mut request = http()
        .post(app.url("/par"))
        .basic_auth(&client.id, client.secret.as_deref());
    if let Some(proof) = proof {
        request = request.header("DPoP", proof);
    }
    request.form(&form).send().await.unwrap()
}

/// Alice's code for the pushed request `response` answered.
async fn code_of_push(app: &TestApp, client: &TestClient, response: reqwest::Response) -> String {
    let status = response.status();
    let body: Value = response.json().await.unwrap();
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let mut url = url::Url::parse(&app.url("/authorize")).unwrap();
    url.query_pairs_mut()
        .append_pair("client_id", &client.id)
        .append_pair("request_uri", body["request_uri"].as_str().unwrap());
    let callback = app.browser().sign_in(url.as_str(), "alice").await;
    query(&callback, "code").unwrap()
}

/// A bound code: refused without a proof and with another key's (nothing used up), then
/// redeemed with a proof by `key` for tokens bound to it.
async fn only_the_key_redeems(
    app: &TestApp,
    client: &TestClient,
    code: &str,
    pkce: &Pkce,
    key: &Key,
) {
    let form = code_form(client, code, pkce);
    let without = token_request(app, client, &form, None).await;
    assert_eq!(
        error_of(without).await,
        (StatusCode::BAD_REQUEST, "invalid_grant".into())
    );
    let other = token_proof(app, &Key::new());
    let by_other = token_request(app, client, &form, Some(&other)).await;
    assert_eq!(
        error_of(by_other).await,
        (StatusCode::BAD_REQUEST, "invalid_grant".into())
    );
    let mine = token_proof(app, key);
    let tokens = ok_json(token_request(app, client, &form, Some(&mine)).await).await;
    assert_eq!(tokens["token_type"], "DPoP");
    let access = tokens["access_token"].as_str().unwrap();
    assert_eq!(jwt_part(access, 1)["cnf"]["jkt"], key.jkt().as_str());
}

async fn codes_bound_to_a_dpop_key_redeem_only_with_it(database_url: Option<String>) {
    let app = spawn_app_with(Options {
        database_url,
        ..Options::default()
    })
    .await;
    app.add_user("alice").await;
    let client = app.add_client(false);

    // dpop_jkt at the authorization endpoint.
    let key = Key::new();
    let (url, pkce) = app.authorize_url(&client, &[("dpop_jkt", &key.jkt())]);
    let callback = app.browser().sign_in(&url, "alice").await;
    let code = query(&callback, "code").unwrap();
    only_the_key_redeems(&app, &client, &code, &pkce, &key).await;

    // A proof at the PAR endpoint binds the code as dpop_jkt would (§10.1).
    let key = Key::new();
    let pkce = Pkce::new();
    let proof = key.proof("POST", &app.url("/par"), now(&app), json!({}));
    let pushed = push(&app, &client, &pkce, &[], Some(&proof)).await;
    let code = code_of_push(&app, &client, pushed).await;
    only_the_key_redeems(&app, &client, &code, &pkce, &key).await;

    // dpop_jkt at the PAR endpoint, and with a proof by the same key.
    let key = Key::new();
    let pkce = Pkce::new();
    let pushed = push(&app, &client, &pkce, &[("dpop_jkt", &key.jkt())], None).await;
    let code = code_of_push(&app, &client, pushed).await;
    only_the_key_redeems(&app, &client, &code, &pkce, &key).await;
    let pkce = Pkce::new();
    let proof = key.proof("POST", &app.url("/par"), now(&app), json!({}));
    let pushed = push(
        &app,
        &client,
        &pkce,
        &[("dpop_jkt", &key.jkt())],
        Some(&proof),
    )
    .await;
    let code = code_of_push(&app, &client, pushed).await;
    only_the_key_redeems(&app, &client, &code, &pkce, &key).await;

    // A code bound to nothing redeems without a proof, as before.
    let (url, pkce) = app.authorize_url(&client, &[]);
    let callback = app.browser().sign_in(&url, "alice").await;
    let code = query(&callback, "code").unwrap();
    let form = code_form(&client, &code, &pkce);
    let tokens = ok_json(token_request(&app, &client, &form, None).await).await;
    assert_eq!(tokens["token_type"], "Bearer");
}

#[tokio::test]
async fn codes_bound_to_a_dpop_key_redeem_only_with_it_over_sqlite() {
    codes_bound_to_a_dpop_key_redeem_only_with_it(None).await;
}

#[tokio::test]
async fn codes_bound_to_a_dpop_key_redeem_only_with_it_over_postgres() {
    let Some(db) = TempDatabase::create() else {
        return;
    };
    codes_bound_to_a_dpop_key_redeem_only_with_it(Some(db.url.clone())).await;
}

#[tokio::test]
async fn a_malformed_dpop_jkt_is_invalid_request_at_authorize_and_at_par() {
    let app = spawn_app_with(Options::default()).await;
    let client = app.add_client(false);
    let malformed = "not-a-thumbprint";
    let (url, _) = app.authorize_url(&client, &[("dpop_jkt", malformed)]);
    let back = app.browser().open(&url).await.left();
    assert_eq!(query(&back, "error").as_deref(), Some("invalid_request"));
    assert!(
        query(&back, "error_description")
            .unwrap()
            .contains("dpop_jkt")
    );
    assert_eq!(query(&back, "state").as_deref(), Some("st-123"));

    let pushed = push(
        &app,
        &client,
        &Pkce::new(),
        &[("dpop_jkt", malformed)],
        None,
    )
    .await;
    assert_eq!(
        error_of(pushed).await,
        (StatusCode::BAD_REQUEST, "invalid_request".into())
    );
}

#[tokio::test]
async fn a_push_whose_proof_is_bad_or_by_another_key_than_dpop_jkt_is_refused() {
    let app = spawn_app_with(Options::default()).await;
    let client = app.add_client(false);
    let (key, other) = (Key::new(), Key::new());
    // §10.1: "MUST reject the request if the JWK Thumbprint in dpop_jkt does not match".
    let proof = key.proof("POST", &app.url("/par"), now(&app), json!({}));
    let mismatched = push(
        &app,
        &client,
        &Pkce::new(),
        &[("dpop_jkt", &other.jkt())],
        Some(&proof),
    )
    .await;
    let (status, error) = error_of(mismatched).await;
    assert_eq!(
        (status, error.as_str()),
        (StatusCode::BAD_REQUEST, "invalid_request")
    );
    // A proof for another endpoint, and one replayed: checked as at the token endpoint.
    let for_token = key.proof("POST", &app.url("/token"), now(&app), json!({}));
    let wrong_htu = push(&app, &client, &Pkce::new(), &[], Some(&for_token)).await;
    assert_eq!(
        error_of(wrong_htu).await,
        (StatusCode::BAD_REQUEST, "invalid_dpop_proof".into())
    );
    let proof = key.proof("POST", &app.url("/par"), now(&app), json!({}));
    let first = push(&app, &client, &Pkce::new(), &[], Some(&proof)).await;
    assert_eq!(first.status(), StatusCode::CREATED);
    let replayed = push(&app, &client, &Pkce::new(), &[], Some(&proof)).await;
    assert_eq!(
        error_of(replayed).await,
        (StatusCode::BAD_REQUEST, "invalid_dpop_proof".into())
    );
}
