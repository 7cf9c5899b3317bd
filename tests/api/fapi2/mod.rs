//! The FAPI 2.0 Security Profile of a client (`profile: fapi2`) over HTTP: a client that
//! follows it (PAR, PKCE S256, private_key_jwt with an ES256 key) walks through to tokens
//! on every backend, and each rule it breaks is refused with the spec's code in the spec's
//! place.

use portcullis::crypto::KeyAlgorithm;
use portcullis::crypto::keys::SigningKey;
use portcullis::crypto::tokens::random_token;
use portcullis::domain::{Clock, Profile};
use portcullis::protocol::registration::ClientDraft;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use url::Url;

mod later_changes;

use crate::backends::TempDatabase;
use crate::helpers::{
    Options, Pkce, TestApp, TestClient, http, jwt_part, query, spawn_app, spawn_app_with,
    status_and_json,
};

const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
const REDIRECT_URI: &str = "https://rp.example/cb";

/// An instance on each backend this machine has (SQLite always), with the PostgreSQL
/// database kept alive beside it.
async fn apps() -> Vec<(TestApp, Option<TempDatabase>)> {
    let mut apps = vec![(spawn_app().await, None)];
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

/// A FAPI 2.0 client and the keys in its JWK Set: `es256` is the one it signs with,
/// `rs256` is there to show that the profile, not a missing key, refuses RS256.
struct FapiClient {
    client: TestClient,
    es256: SigningKey,
    rs256: SigningKey,
}

fn keys() -> (SigningKey, SigningKey, Value) {
    let es256 = SigningKey::generate(KeyAlgorithm::Es256).unwrap().0;
    let rs256 = SigningKey::generate(KeyAlgorithm::Rs256).unwrap().0;
    let set = json!({ "keys": [es256.public_jwk(), rs256.public_jwk()] });
    (es256, rs256, set)
}

fn fapi_draft(jwks: Value) -> ClientDraft {
    ClientDraft {
        name: Some("Bank App".into()),
        auth_method: Some("private_key_jwt".into()),
        jwks: Some(jwks),
        redirect_uris: vec![REDIRECT_URI.into()],
        grant_types: vec!["authorization_code".into(), "refresh_token".into()],
        profile: Some(Profile::Fapi2),
        ..ClientDraft::default()
    }
}

fn fapi_client(app: &TestApp) -> FapiClient {
    let (es256, rs256, set) = keys();
    let client = app.add_client_with(fapi_draft(set));
    FapiClient {
        client,
        es256,
        rs256,
    }
}

/// A client assertion (RFC 7523) of `client` for `aud` (a string or an array), signed
/// with `key`.
fn assertion_for(
    app: &TestApp,
    client: &TestClient,
    key: &SigningKey,
    aud: impl Into<Value>,
) -> String {
    let aud: Value = aud.into();
    key.sign_jwt(
        "JWT",
        &json!({
            "iss": client.id, "sub": client.id, "aud": aud,
            "exp": app.clock.now() + 60, "jti": random_token(16),
        }),
    )
    .unwrap()
}

/// An ES256 assertion naming the issuer, as the profile has it.
fn assertion(app: &TestApp, fapi: &FapiClient) -> String {
    assertion_for(app, &fapi.client, &fapi.es256, app.issuer.as_str())
}

/// The pushed request of a client that follows the profile; `extra` replaces members
/// and an empty value removes one.
fn par_form(
    fapi: &FapiClient,
    pkce: &Pkce,
    assertion: String,
    extra: &[(&str, &str)],
) -> Vec<(String, String)> {
    let mut form: Vec<(String, String)> = [
        ("response_type", "code"),
        ("client_id", fapi.client.id.as_str()),
        ("redirect_uri", REDIRECT_URI),
        ("scope", "openid profile"),
        ("state", "fapi-state"),
        ("nonce", "fapi-nonce"),
        ("code_challenge", pkce.challenge.as_str()),
        ("code_challenge_method", "S256"),
        ("client_assertion_type", JWT_BEARER),
        ("client_assertion", assertion.as_str()),
    ]
    .iter()
    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
    .collect();
    for (k, v) in extra {
        form.retain(|(name, _)| name != k);
        if !v.is_empty() {
            form.push(((*k).to_owned(), (*v).to_owned()));
        }
    }
    form
}

async fn push(app: &TestApp, form: &[(String, String)]) -> (StatusCode, Value) {
    let response = http()
        .post(app.url("/par"))
        .form(form)
        .send()
        .await
        .unwrap();
    status_and_json(response).await
}

/// A refused push: the status and the error code (RFC 9126 §2.3: JSON, never a redirect).
async fn push_refused(app: &TestApp, form: &[(String, String)]) -> (StatusCode, String) {
    let (status, body) = push(app, form).await;
    assert!(body.get("request_uri").is_none(), "{body}");
    (
        status,
        body["error"].as_str().unwrap_or_default().to_owned(),
    )
}

fn authorize_with(app: &TestApp, client: &TestClient, request_uri: &str) -> String {
    let mut url = Url::parse(&app.url("/authorize")).unwrap();
    url.query_pairs_mut()
        .append_pair("client_id", &client.id)
        .append_pair("request_uri", request_uri);
    url.into()
}

/// Pushes the profile's request, signs `alice` in, and returns the callback and PKCE.
async fn authorized(app: &TestApp, fapi: &FapiClient) -> (Url, Pkce) {
    authorized_with(app, fapi, &[]).await
}

/// As `authorized`, with `extra` members in the pushed request (as `par_form`).
async fn authorized_with(app: &TestApp, fapi: &FapiClient, extra: &[(&str, &str)]) -> (Url, Pkce) {
    let pkce = Pkce::new();
    let (status, body) = push(app, &par_form(fapi, &pkce, assertion(app, fapi), extra)).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert!(body["expires_in"].as_i64().unwrap() < 600, "{body}");
    let uri = body["request_uri"].as_str().unwrap();
    let callback = app
        .browser()
        .sign_in(&authorize_with(app, &fapi.client, uri), "alice")
        .await;
    (callback, pkce)
}

async fn redeem(app: &TestApp, code: &str, pkce: &Pkce, assertion: String) -> (StatusCode, Value) {
    let form = [
        ("grant_type", "authorization_code"),
        ("code", code),
        ("redirect_uri", REDIRECT_URI),
        ("code_verifier", pkce.verifier.as_str()),
        ("client_assertion_type", JWT_BEARER),
        ("client_assertion", assertion.as_str()),
    ];
    proved_token_request(app, &form).await
}

/// A token request as a fapi2 client makes it: with a DPoP proof (the profile's
/// sender-constrained tokens), by a key of its own, made now.
pub(super) async fn proved_token_request(
    app: &TestApp,
    form: &[(&str, &str)],
) -> (StatusCode, Value) {
    let key = crate::dpop::Key::new();
    let proof = key.proof("POST", &app.url("/token"), crate::dpop::now(app), json!({}));
    let response = http()
        .post(app.url("/token"))
        .header("DPoP", proof)
        .form(form)
        .send()
        .await
        .unwrap();
    status_and_json(response).await
}

#[tokio::test]
async fn a_fapi2_client_walks_through_par_pkce_and_private_key_jwt_to_tokens_on_every_backend() {
    for (app, _db) in apps().await {
        app.add_user("alice").await;
        let fapi = fapi_client(&app);
        let stored = app.store.find_client(&fapi.client.id).unwrap().unwrap();
        assert_eq!(stored.metadata.profile, Some(Profile::Fapi2));

        let (callback, pkce) = authorized(&app, &fapi).await;
        assert!(callback.as_str().starts_with(REDIRECT_URI), "{callback}");
        assert_eq!(query(&callback, "state").as_deref(), Some("fapi-state"));
        // RFC 9207: the response names its issuer.
        assert_eq!(
            query(&callback, "iss").as_deref(),
            Some(app.issuer.as_str())
        );
        let code = query(&callback, "code").unwrap();

        let (status, tokens) = redeem(&app, &code, &pkce, assertion(&app, &fapi)).await;
        assert_eq!(status, StatusCode::OK, "{tokens}");
        let id_token = tokens["id_token"].as_str().unwrap();
        assert_eq!(jwt_part(id_token, 0)["alg"], "PS256");
        assert_eq!(jwt_part(id_token, 1)["nonce"], "fapi-nonce");
        let access = tokens["access_token"].as_str().unwrap();
        assert_eq!(jwt_part(access, 0)["alg"], "PS256");
        // Sender-constrained: bound to the proof's key (RFC 9449 §6).
        assert_eq!(tokens["token_type"], "DPoP");
        assert!(jwt_part(access, 1)["cnf"]["jkt"].is_string(), "{access}");
        app.stop().await;
    }
}

#[tokio::test]
async fn a_plain_authorization_request_of_a_fapi2_client_is_sent_back_as_invalid_request() {
    let app = spawn_app().await;
    let fapi = fapi_client(&app);
    let (url, _) = app.authorize_url(&fapi.client, &[]);
    // The client and its redirect URI are known: the error may go back to it (RFC 6749
    // §4.1.2.1), with `iss` (RFC 9207).
    let back = app.browser().open(&url).await.left();
    assert!(back.as_str().starts_with(REDIRECT_URI), "{back}");
    assert_eq!(query(&back, "error").as_deref(), Some("invalid_request"));
    assert_eq!(query(&back, "state").as_deref(), Some("st-123"));
    assert_eq!(query(&back, "iss").as_deref(), Some(app.issuer.as_str()));
    assert_eq!(query(&back, "code"), None);
}

#[tokio::test]
async fn a_pushed_request_without_pkce_or_with_plain_pkce_is_invalid_request() {
    let app = spawn_app().await;
    let fapi = fapi_client(&app);
    let pkce = Pkce::new();
    let missing = par_form(
        &fapi,
        &pkce,
        assertion(&app, &fapi),
        &[("code_challenge", ""), ("code_challenge_method", "")],
    );
    assert_eq!(
        push_refused(&app, &missing).await,
        (StatusCode::BAD_REQUEST, "invalid_request".into())
    );
    let plain = par_form(
        &fapi,
        &pkce,
        assertion(&app, &fapi),
        &[
            ("code_challenge", pkce.verifier.as_str()),
            ("code_challenge_method", "plain"),
        ],
    );
    assert_eq!(
        push_refused(&app, &plain).await,
        (StatusCode::BAD_REQUEST, "invalid_request".into())
    );
}

#[tokio::test]
async fn a_pushed_request_without_redirect_uri_is_invalid_request_even_with_one_registered() {
    let app = spawn_app().await;
    let fapi = fapi_client(&app);
    let form = par_form(
        &fapi,
        &Pkce::new(),
        assertion(&app, &fapi),
        &[("redirect_uri", ""), ("scope", "profile")],
    );
    assert_eq!(
        push_refused(&app, &form).await,
        (StatusCode::BAD_REQUEST, "invalid_request".into())
    );
}

#[tokio::test]
async fn implicit_and_hybrid_response_types_and_other_response_modes_are_refused() {
    let app = spawn_app().await;
    let fapi = fapi_client(&app);
    for response_type in ["code id_token", "id_token", "code token", "id_token token"] {
        let form = par_form(
            &fapi,
            &Pkce::new(),
            assertion(&app, &fapi),
            &[("response_type", response_type)],
        );
        assert_eq!(
            push_refused(&app, &form).await,
            (StatusCode::BAD_REQUEST, "unauthorized_client".into()),
            "{response_type}"
        );
    }
    for mode in ["fragment", "form_post"] {
        let form = par_form(
            &fapi,
            &Pkce::new(),
            assertion(&app, &fapi),
            &[("response_mode", mode)],
        );
        assert_eq!(
            push_refused(&app, &form).await,
            (StatusCode::BAD_REQUEST, "invalid_request".into()),
            "{mode}"
        );
    }
}

#[tokio::test]
async fn a_client_assertion_signed_with_rs256_or_for_the_token_endpoint_is_invalid_client() {
    let app = spawn_app().await;
    app.add_user("alice").await;
    let fapi = fapi_client(&app);
    let pkce = Pkce::new();
    let rs256 = assertion_for(&app, &fapi.client, &fapi.rs256, app.issuer.as_str());
    let token_endpoint = app.url("/token");
    let aimed_at_endpoint = assertion_for(&app, &fapi.client, &fapi.es256, token_endpoint.as_str());
    for refused in [rs256, aimed_at_endpoint] {
        assert_eq!(
            push_refused(&app, &par_form(&fapi, &pkce, refused, &[])).await,
            (StatusCode::UNAUTHORIZED, "invalid_client".into())
        );
    }

    // At the token endpoint too.
    let (callback, pkce) = authorized(&app, &fapi).await;
    let code = query(&callback, "code").unwrap();
    let rs256 = assertion_for(&app, &fapi.client, &fapi.rs256, app.issuer.as_str());
    let (status, body) = redeem(&app, &code, &pkce, rs256).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert_eq!(body["error"], "invalid_client");

    // The same keys and request from a client under no profile pass: RS256 and the
    // token endpoint's URL are the profile's refusals.
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
    let rs256 = assertion_for(&app, &plain.client, &plain.rs256, app.issuer.as_str());
    let aimed_at_endpoint =
        assertion_for(&app, &plain.client, &plain.es256, token_endpoint.as_str());
    for accepted in [rs256, aimed_at_endpoint] {
        let (status, body) = push(&app, &par_form(&plain, &Pkce::new(), accepted, &[])).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }
}

#[tokio::test]
async fn client_secret_authentication_is_refused_for_a_fapi2_client() {
    let app = spawn_app().await;
    let fapi = fapi_client(&app);
    // A fapi2 client has no secret; one presented anyway authenticates nobody.
    let response = http()
        .post(app.url("/par"))
        .basic_auth(&fapi.client.id, Some("guessed"))
        .form(&[
            ("response_type", "code"),
            ("redirect_uri", REDIRECT_URI),
            ("scope", "openid"),
        ])
        .send()
        .await
        .unwrap();
    let (status, body) = status_and_json(response).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert_eq!(body["error"], "invalid_client");
}

#[tokio::test]
async fn a_request_object_signed_with_rs256_is_invalid_request_object() {
    let app = spawn_app().await;
    let fapi = fapi_client(&app);
    let pkce = Pkce::new();
    let object = |key: &SigningKey| {
        key.sign_jwt(
            "oauth-authz-req+jwt",
            &json!({
                "iss": fapi.client.id, "aud": app.issuer, "client_id": fapi.client.id,
                "response_type": "code", "redirect_uri": REDIRECT_URI, "scope": "openid",
                "code_challenge": pkce.challenge, "code_challenge_method": "S256",
                "exp": app.clock.now() + 60, "nbf": app.clock.now(),
            }),
        )
        .unwrap()
    };
    let rs256 = object(&fapi.rs256);
    let form = par_form(&fapi, &pkce, assertion(&app, &fapi), &[("request", &rs256)]);
    assert_eq!(
        push_refused(&app, &form).await,
        (StatusCode::BAD_REQUEST, "invalid_request_object".into())
    );
    let es256 = object(&fapi.es256);
    let form = par_form(&fapi, &pkce, assertion(&app, &fapi), &[("request", &es256)]);
    let (status, body) = push(&app, &form).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
}

#[tokio::test]
async fn a_fapi2_clients_code_dies_after_sixty_seconds_whatever_the_configured_lifetime() {
    let app = spawn_app_with(Options {
        env: vec![("AUTHORIZATION_CODE_TTL", "600".into())],
        ..Default::default()
    })
    .await;
    app.add_user("alice").await;
    let fapi = fapi_client(&app);
    let (callback, pkce) = authorized(&app, &fapi).await;
    let code = query(&callback, "code").unwrap();
    app.clock.advance(61);
    let (status, body) = redeem(&app, &code, &pkce, assertion(&app, &fapi)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["error"], "invalid_grant");

    // A client under no profile keeps the configured lifetime.
    let plain = app.add_client(false);
    let browser = app.browser();
    let (url, pkce) = app.authorize_url(&plain, &[]);
    let callback = browser.sign_in(&url, "alice").await;
    app.clock.advance(61);
    app.exchange(&plain, &callback, &pkce).await;
}

#[tokio::test]
async fn a_fapi2_clients_token_request_without_a_dpop_proof_is_refused() {
    // `ClientProfile::requires_dpop`: the token endpoint refuses a request without a
    // proof (RFC 9449 §5.2, as for `dpop_bound_access_tokens`) and uses up nothing: the
    // same code is then redeemed with a proof.
    let app = spawn_app().await;
    app.add_user("alice").await;
    let fapi = fapi_client(&app);
    let (callback, pkce) = authorized(&app, &fapi).await;
    let code = query(&callback, "code").unwrap();
    let form = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", REDIRECT_URI),
        ("code_verifier", pkce.verifier.as_str()),
        ("client_assertion_type", JWT_BEARER),
    ];
    let unproved_assertion = assertion(&app, &fapi);
    let mut unproved = form.to_vec();
    unproved.push(("client_assertion", unproved_assertion.as_str()));
    let (status, body) = status_and_json(app.token_request(&unproved, None).await).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["error"], "invalid_request");
    assert!(body.get("access_token").is_none());
    let (status, tokens) = redeem(&app, &code, &pkce, assertion(&app, &fapi)).await;
    assert_eq!(status, StatusCode::OK, "{tokens}");
    assert_eq!(tokens["token_type"], "DPoP");
}

/// Registrations the profile refuses, through the admin API: each with its RFC 7591 code.
#[tokio::test]
async fn the_admin_api_registers_fapi2_clients_and_refuses_what_the_profile_forbids() {
    let app = spawn_app().await;
    let (_, token) = crate::admin_api::automation(&app).await;
    let (_, _, set) = keys();
    let good = json!({
        "client_name": "Bank App",
        "redirect_uris": [REDIRECT_URI],
        "token_endpoint_auth_method": "private_key_jwt",
        "jwks": set,
        "profile": "fapi2",
    });
    let (status, created) = crate::admin_api::call(
        &app,
        Some(&token),
        Method::POST,
        "/clients",
        Some(good.clone()),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_eq!(created["profile"], "fapi2");
    assert_eq!(created["id_token_signed_response_alg"], "PS256");
    assert_eq!(created["require_pushed_authorization_requests"], true);
    assert!(created.get("client_secret").is_none());
    let id = created["client_id"].as_str().unwrap().to_owned();

    let with = |member: &str, value: Value| {
        let mut body = good.clone();
        body[member] = value;
        body
    };
    let mut secret = good.clone();
    secret["token_endpoint_auth_method"] = json!("client_secret_basic");
    secret.as_object_mut().unwrap().remove("jwks");
    let refused = [
        (secret, "invalid_client_metadata"),
        (
            with("id_token_signed_response_alg", json!("RS256")),
            "invalid_client_metadata",
        ),
        (
            with("response_types", json!(["code", "code id_token"])),
            "invalid_client_metadata",
        ),
        (
            with("redirect_uris", json!(["http://127.0.0.1:9/cb"])),
            "invalid_redirect_uri",
        ),
        (with("profile", json!("fapi1")), "invalid_client_metadata"),
    ];
    for (body, code) in refused {
        let (status, answer) =
            crate::admin_api::call(&app, Some(&token), Method::POST, "/clients", Some(body)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
        assert_eq!(answer["error"], code, "{answer}");
    }

    // A change is held to the profile too; removing the profile is the operator's choice.
    let path = format!("/clients/{id}");
    let (status, answer) = crate::admin_api::call(
        &app,
        Some(&token),
        Method::PATCH,
        &path,
        Some(json!({ "access_token_signed_response_alg": "RS256" })),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
    assert_eq!(answer["error"], "invalid_client_metadata");
    let (status, changed) = crate::admin_api::call(
        &app,
        Some(&token),
        Method::PATCH,
        &path,
        Some(json!({ "client_name": "Bank App 2" })),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{changed}");
    assert_eq!(changed["profile"], "fapi2", "a change keeps the profile");
    let (status, changed) = crate::admin_api::call(
        &app,
        Some(&token),
        Method::PATCH,
        &path,
        Some(json!({ "profile": null })),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{changed}");
    assert!(changed.get("profile").is_none(), "{changed}");
}

#[tokio::test]
async fn dynamic_registration_cannot_choose_a_profile() {
    let app = spawn_app_with(Options {
        env: vec![("REGISTRATION", "open".into())],
        ..Default::default()
    })
    .await;
    let (_, _, set) = keys();
    let response = http()
        .post(app.url("/register"))
        .json(&json!({
            "redirect_uris": [REDIRECT_URI],
            "token_endpoint_auth_method": "private_key_jwt",
            "jwks": set,
            "profile": "fapi2",
        }))
        .send()
        .await
        .unwrap();
    let (status, body) = status_and_json(response).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert!(body.get("profile").is_none(), "{body}");
}

#[tokio::test]
async fn clients_add_with_profile_fapi2_registers_a_fapi2_client_and_refuses_a_secret() {
    let dir = tempfile::TempDir::new().unwrap();
    let db = format!("sqlite://{}/portcullis.db", dir.path().display());
    let env = [("PORTCULLIS_KEY_ENCRYPTION_KEY", crate::helpers::TEST_KEK)];
    let (_, _, set) = keys();
    let jwks = set.to_string();
    let migrate = crate::cli::portcullis_on(&db, &env, &["migrate"], None);
    assert!(migrate.status.success(), "{migrate:?}");
    let add = |extra: &[&str]| {
        let mut args = vec![
            "clients",
            "add",
            "--name",
            "Bank App",
            "--redirect-uri",
            REDIRECT_URI,
            "--profile",
            "fapi2",
        ];
        args.extend_from_slice(extra);
        crate::cli::portcullis_on(&db, &env, &args, None)
    };
    let added = add(&["--auth-method", "private_key_jwt", "--jwks", &jwks]);
    assert!(added.status.success(), "{added:?}");
    let out: Value = serde_json::from_slice(&added.stdout).unwrap();
    assert!(out.get("client_secret").is_none(), "{out}");
    let id = out["client_id"].as_str().unwrap().to_owned();

    for (refused, says) in [
        (&[][..], "private_key_jwt"),
        (
            &[
                "--auth-method",
                "private_key_jwt",
                "--jwks",
                &jwks,
                "--id-token-alg",
                "RS256",
            ][..],
            "RS256",
        ),
    ] {
        let out = add(refused);
        assert!(!out.status.success(), "{refused:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(says), "{stderr}");
    }

    let app = spawn_app_with(Options {
        database_url: Some(db.clone()),
        ..Default::default()
    })
    .await;
    let stored = app.store.find_client(&id).unwrap().unwrap();
    assert_eq!(stored.metadata.profile, Some(Profile::Fapi2));
    assert!(stored.metadata.require_pushed_authorization_requests);
    app.stop().await;
}
