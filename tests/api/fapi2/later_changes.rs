//! The FAPI 2.0 profile's rules past registration and issue (review of the profile): the
//! assertion's `aud` as a string, EdDSA assertions, refresh tokens that are not rotated,
//! and a code issued before the client was profiled.

use portcullis::crypto::KeyAlgorithm;
use portcullis::crypto::keys::SigningKey;
use portcullis::domain::{Clock, Profile};
use portcullis::protocol::registration::ClientDraft;
use reqwest::StatusCode;
use serde_json::{Value, json};

use super::{
    FapiClient, JWT_BEARER, REDIRECT_URI, apps, assertion, assertion_for, authorized_with,
    fapi_client, fapi_draft, keys, par_form, push, push_refused, redeem,
};
use crate::helpers::{Options, Pkce, TestApp, TestClient, query, spawn_app, spawn_app_with};

/// FAPI 2.0 §5.3.2.1: the issuer "as a string"; an array of it is refused for a fapi2
/// client and taken from a client under no profile.
#[tokio::test]
async fn a_fapi2_client_assertion_naming_the_issuer_in_an_array_is_invalid_client() {
    let app = spawn_app().await;
    let fapi = fapi_client(&app);
    let in_array = assertion_for(&app, &fapi.client, &fapi.es256, json!([app.issuer]));
    assert_eq!(
        push_refused(&app, &par_form(&fapi, &Pkce::new(), in_array, &[])).await,
        (StatusCode::UNAUTHORIZED, "invalid_client".into())
    );
    let as_string = assertion(&app, &fapi);
    let (status, body) = push(&app, &par_form(&fapi, &Pkce::new(), as_string, &[])).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");

    let FapiClient { es256, rs256, .. } = fapi;
    let set = json!({ "keys": [es256.public_jwk(), rs256.public_jwk()] });
    let plain = FapiClient {
        client: app.add_client_with(ClientDraft {
            profile: None,
            ..fapi_draft(set)
        }),
        es256,
        rs256,
    };
    let in_array = assertion_for(&app, &plain.client, &plain.es256, json!([app.issuer]));
    let (status, body) = push(&app, &par_form(&plain, &Pkce::new(), in_array, &[])).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
}

/// FAPI 2.0 §5.4.1 names EdDSA (Ed25519): a client signing its assertions with an
/// Ed25519 key is authenticated.
#[tokio::test]
async fn a_fapi2_client_authenticates_with_an_eddsa_assertion() {
    let app = spawn_app().await;
    let (es256, rs256, _) = keys();
    let ed25519 = SigningKey::generate(KeyAlgorithm::EdDsa).unwrap().0;
    let set = json!({ "keys": [ed25519.public_jwk(), es256.public_jwk()] });
    let fapi = FapiClient {
        client: app.add_client_with(fapi_draft(set)),
        es256,
        rs256,
    };
    let eddsa = assertion_for(&app, &fapi.client, &ed25519, app.issuer.as_str());
    assert_eq!(super::jwt_part(&eddsa, 0)["alg"], "EdDSA");
    let (status, body) = push(&app, &par_form(&fapi, &Pkce::new(), eddsa, &[])).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    // Discovery says so.
    let discovery: Value = crate::helpers::http()
        .get(app.url("/.well-known/openid-configuration"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let algs = &discovery["token_endpoint_auth_signing_alg_values_supported"];
    assert!(algs.as_array().unwrap().contains(&json!("EdDSA")), "{algs}");
}

async fn refresh(app: &TestApp, fapi: &FapiClient, token: &str) -> (StatusCode, Value) {
    let assertion = assertion(app, fapi);
    let form = [
        ("grant_type", "refresh_token"),
        ("refresh_token", token),
        ("client_assertion_type", JWT_BEARER),
        ("client_assertion", assertion.as_str()),
    ];
    super::proved_token_request(app, &form).await
}

/// FAPI 2.0 §5.3.2.1: no rotation unless a retry with the previous token succeeds. A
/// fapi2 client's refresh token is answered with itself and keeps working, long after
/// a rotating client's grace window would have revoked the grant.
#[tokio::test]
async fn a_fapi2_clients_refresh_token_is_not_rotated_and_a_late_retry_with_it_succeeds() {
    for (app, _db) in apps().await {
        app.add_user("alice").await;
        let fapi = fapi_client(&app);
        let offline = [("scope", "openid offline_access"), ("prompt", "consent")];
        let (callback, pkce) = authorized_with(&app, &fapi, &offline).await;
        let code = query(&callback, "code").unwrap();
        let (status, tokens) = redeem(&app, &code, &pkce, assertion(&app, &fapi)).await;
        assert_eq!(status, StatusCode::OK, "{tokens}");
        let original = tokens["refresh_token"].as_str().unwrap().to_owned();

        let (status, first) = refresh(&app, &fapi, &original).await;
        assert_eq!(status, StatusCode::OK, "{first}");
        assert_eq!(first["refresh_token"], original.as_str(), "not rotated");
        // The response was lost; the client retries with the token it has, much later.
        app.clock.advance(61);
        let (status, retried) = refresh(&app, &fapi, &original).await;
        assert_eq!(status, StatusCode::OK, "{retried}");
        assert_eq!(retried["refresh_token"], original.as_str());
        assert_ne!(retried["access_token"], first["access_token"]);
        // The grant is live, and the token too.
        let (status, again) = refresh(&app, &fapi, &original).await;
        assert_eq!(status, StatusCode::OK, "{again}");
        app.stop().await;
    }
}

/// The operator puts `client` under fapi2 (as the admin API or the console would write
/// it), keeping the rest of its registration.
fn operator_profiles(app: &TestApp, client: &TestClient) {
    let mut stored = app.store.find_client(&client.id).unwrap().unwrap();
    stored.metadata.profile = Some(Profile::Fapi2);
    stored.pkce_required = true;
    let event = portcullis::store::NewAuditEvent {
        at: app.clock.now(),
        actor: "admin:test".into(),
        action: "client.updated".into(),
        target: Some(client.id.clone()),
        address: None,
        details: None,
    };
    app.store
        .apply_audited(
            portcullis::store::AdminChange::UpdateClient(&stored),
            &event,
        )
        .unwrap();
}

/// A code of `client` from the ordinary authorization endpoint (no PAR), with or
/// without PKCE.
async fn plain_code(app: &TestApp, client: &TestClient, pkce: bool) -> (String, Pkce) {
    let without = [("code_challenge", ""), ("code_challenge_method", "")];
    let (url, pkce_pair) = app.authorize_url(client, if pkce { &[] } else { &without });
    let callback = app.browser().sign_in(&url, "alice").await;
    let code = query(&callback, "code").unwrap_or_else(|| panic!("no code in {callback}"));
    (code, pkce_pair)
}

async fn redeem_without_pkce(app: &TestApp, code: &str, assertion: String) -> (StatusCode, Value) {
    let form = [
        ("grant_type", "authorization_code"),
        ("code", code),
        ("redirect_uri", REDIRECT_URI),
        ("client_assertion_type", JWT_BEARER),
        ("client_assertion", assertion.as_str()),
    ];
    super::proved_token_request(app, &form).await
}

/// A code issued before the operator put the client under fapi2 is held to the profile
/// when it is redeemed: PKCE, and 60 s from its issue whatever the configured lifetime.
#[tokio::test]
async fn a_code_issued_before_the_client_became_fapi2_is_held_to_the_profile_at_redemption() {
    let app = spawn_app_with(Options {
        env: vec![("AUTHORIZATION_CODE_TTL", "600".into())],
        ..Default::default()
    })
    .await;
    app.add_user("alice").await;
    let (es256, rs256, set) = keys();
    let fapi = FapiClient {
        client: app.add_client_with(ClientDraft {
            profile: None,
            require_pkce: Some(false),
            ..fapi_draft(set)
        }),
        es256,
        rs256,
    };
    let (without_pkce, _) = plain_code(&app, &fapi.client, false).await;
    let (late, late_pkce) = plain_code(&app, &fapi.client, true).await;
    let (prompt, prompt_pkce) = plain_code(&app, &fapi.client, true).await;
    operator_profiles(&app, &fapi.client);

    let (status, body) = redeem_without_pkce(&app, &without_pkce, assertion(&app, &fapi)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["error"], "invalid_grant");
    // Within 60 s, a code with PKCE is redeemed (the assertion and client are fine).
    let (status, body) = redeem(&app, &prompt, &prompt_pkce, assertion(&app, &fapi)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    app.clock.advance(61);
    let (status, body) = redeem(&app, &late, &late_pkce, assertion(&app, &fapi)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["error"], "invalid_grant");
}
