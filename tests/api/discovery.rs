//! Discovery, JWKS and health endpoints.

use crate::helpers::spawn_app;

#[tokio::test]
async fn discovery_lists_every_endpoint_under_the_issuer_and_only_what_works() {
    let app = spawn_app().await;
    let response = crate::helpers::get(app.url("/.well-known/openid-configuration"))
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let doc: serde_json::Value = response.json().await.unwrap();
    assert_eq!(doc["issuer"], app.issuer.as_str());
    for (key, path) in [
        ("authorization_endpoint", "/authorize"),
        ("token_endpoint", "/token"),
        ("userinfo_endpoint", "/userinfo"),
        ("jwks_uri", "/jwks"),
        ("end_session_endpoint", "/logout"),
        ("revocation_endpoint", "/revoke"),
        ("introspection_endpoint", "/introspect"),
        ("device_authorization_endpoint", "/device_authorization"),
    ] {
        assert_eq!(doc[key], app.url(path), "{key}");
    }
    assert_eq!(
        doc["response_types_supported"],
        serde_json::json!([
            "code",
            "id_token",
            "id_token token",
            "code id_token",
            "code token",
            "code id_token token"
        ])
    );
    assert_eq!(
        doc["grant_types_supported"],
        serde_json::json!([
            "authorization_code",
            "implicit",
            "refresh_token",
            "client_credentials",
            "urn:ietf:params:oauth:grant-type:token-exchange",
            "urn:ietf:params:oauth:grant-type:device_code"
        ])
    );
    assert_eq!(
        doc["token_endpoint_auth_methods_supported"],
        serde_json::json!([
            "client_secret_basic",
            "client_secret_post",
            "client_secret_jwt",
            "private_key_jwt",
            "none"
        ])
    );
    assert!(
        !doc["introspection_endpoint_auth_methods_supported"]
            .as_array()
            .unwrap()
            .contains(&"none".into()),
        "introspection needs an authenticated client"
    );
    assert!(
        doc["scopes_supported"]
            .as_array()
            .unwrap()
            .contains(&"offline_access".into())
    );
    assert_eq!(
        doc["code_challenge_methods_supported"],
        serde_json::json!(["S256"])
    );
    assert_eq!(doc["authorization_response_iss_parameter_supported"], true);
    let algs = doc["id_token_signing_alg_values_supported"]
        .as_array()
        .unwrap();
    assert!(algs.contains(&"RS256".into()));
}

#[tokio::test]
async fn jwks_publishes_public_keys_with_kid_alg_and_use() {
    let app = spawn_app().await;
    let jwks: serde_json::Value = app.get_json("/jwks").await;
    let keys = jwks["keys"].as_array().unwrap();
    let algs: Vec<&str> = keys.iter().map(|k| k["alg"].as_str().unwrap()).collect();
    assert!(
        algs.contains(&"RS256") && algs.contains(&"ES256"),
        "{algs:?}"
    );
    for key in keys {
        assert!(key["kid"].is_string());
        assert_eq!(key["use"], "sig");
        for private in ["d", "p", "q", "dp", "dq", "qi"] {
            assert!(
                key.get(private).is_none(),
                "{private} must not be published"
            );
        }
    }
}

#[tokio::test]
async fn health_and_readiness_answer() {
    let app = spawn_app().await;
    assert_eq!(
        crate::helpers::get(app.url("/healthz"))
            .await
            .unwrap()
            .status(),
        200
    );
    let ready = crate::helpers::get(app.url("/readyz")).await.unwrap();
    assert_eq!(ready.status(), 200);
    let body: serde_json::Value = ready.json().await.unwrap();
    assert_eq!(body["database"], true);
}

#[tokio::test]
async fn an_issuer_with_a_path_mounts_every_route_and_page_asset_under_it() {
    let app = crate::helpers::spawn_app_with(crate::helpers::Options {
        issuer_path: "/auth",
        ..Default::default()
    })
    .await;
    app.add_user("alice").await;
    let doc: serde_json::Value = app.get_json("/.well-known/openid-configuration").await;
    assert_eq!(doc["issuer"], app.issuer.as_str());
    assert!(app.issuer.ends_with("/auth"));
    let client = app.add_client(false);
    let tokens = app.tokens_for(&client, "alice").await;
    assert!(tokens["id_token"].is_string());
    let (_, _, html) = app
        .browser()
        .open(&app.url("/login?id=unknown"))
        .await
        .page();
    assert!(html.contains("href=\"/auth/static/style.css\""), "{html}");
    assert_eq!(
        crate::helpers::get(app.url("/static/style.css"))
            .await
            .unwrap()
            .status(),
        200
    );
}

#[tokio::test]
async fn browser_clients_may_call_token_and_userinfo_cross_origin() {
    let app = spawn_app().await;
    for path in ["/token", "/userinfo"] {
        let response = crate::helpers::http()
            .request(reqwest::Method::OPTIONS, app.url(path))
            .header("origin", "https://spa.example")
            .header("access-control-request-method", "POST")
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 204);
        assert_eq!(response.headers()["access-control-allow-origin"], "*");
    }
}

#[tokio::test]
async fn every_response_carries_a_request_id_and_only_a_trusted_proxys_is_kept() {
    let direct = spawn_app().await;
    let response = crate::helpers::http()
        .get(direct.url("/jwks"))
        .header("x-request-id", "forged-by-client")
        .send()
        .await
        .unwrap();
    assert_ne!(response.headers()["x-request-id"], "forged-by-client");
    let app = crate::helpers::spawn_app_with(crate::helpers::Options {
        env: vec![("TRUSTED_PROXIES", "127.0.0.1/32".into())],
        ..Default::default()
    })
    .await;
    let response = crate::helpers::get(app.url("/jwks")).await.unwrap();
    let generated = response.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(generated.len() >= 12);
    let response = crate::helpers::http()
        .get(app.url("/jwks"))
        .header("x-request-id", "lb-abc-123")
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()["x-request-id"], "lb-abc-123");
    let response = crate::helpers::http()
        .get(app.url("/jwks"))
        .header("x-request-id", "bad id\twith spaces")
        .send()
        .await
        .unwrap();
    assert_ne!(response.headers()["x-request-id"], "bad id\twith spaces");
}

#[tokio::test]
async fn metrics_count_requests_per_route_tokens_per_grant_and_logins() {
    let app = spawn_app().await;
    app.add_user("alice").await;
    let client = app.add_client(false);
    app.tokens_for(&client, "alice").await;
    let (url, _) = app.authorize_url(&client, &[]);
    let browser = app.browser();
    let (login_url, _, html) = browser.open(&url).await.page();
    browser
        .submit(
            &login_url,
            &html,
            &[("username", "alice"), ("password", "wrong")],
        )
        .await;
    let text = app.metrics_text().await;
    for needle in [
        "portcullis_http_requests_total{route=\"/token\",method=\"POST\",status=\"200\"} 1",
        "portcullis_tokens_issued_total{grant_type=\"authorization_code\"} 1",
        "portcullis_logins_total{outcome=\"succeeded\"} 1",
        "portcullis_logins_total{outcome=\"failed\"} 1",
        "portcullis_http_request_duration_seconds_bucket{le=",
    ] {
        assert!(text.contains(needle), "{needle} missing from:\n{text}");
    }
    let public = crate::helpers::get(app.url("/metrics")).await.unwrap();
    assert_eq!(
        public.status(),
        404,
        "metrics are not on the public listener"
    );
}

/// Each published endpoint URL answers (with a method it supports: an error for an empty
/// request, never 404), and a switched-off feature loses its route with its entry.
#[tokio::test]
async fn every_published_endpoint_is_routed_and_switched_off_ones_are_neither() {
    use crate::helpers::{Options, spawn_app_with};
    for (mode, registration_on) in [("open", true), ("off", false)] {
        let app = spawn_app_with(Options {
            env: vec![("REGISTRATION", mode.to_owned())],
            ..Default::default()
        })
        .await;
        let doc = app.get_json("/.well-known/openid-configuration").await;
        let endpoints: Vec<(&String, &str)> = doc
            .as_object()
            .unwrap()
            .iter()
            .filter(|(k, _)| k.ends_with("_endpoint") || *k == "jwks_uri")
            .map(|(k, v)| (k, v.as_str().unwrap()))
            .collect();
        assert_eq!(endpoints.len(), 9 + usize::from(registration_on), "{doc}");
        let http = crate::helpers::http_builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        for (name, url) in endpoints {
            assert!(url.starts_with(app.issuer.as_str()), "{name}: {url}");
            let response = http.post(url).send().await.unwrap();
            assert_ne!(response.status(), 404, "{name}: {url}");
        }
        let register = http.post(app.url("/register")).send().await.unwrap();
        assert_eq!(
            doc.get("registration_endpoint").is_some(),
            registration_on,
            "{mode}"
        );
        assert_eq!(register.status() == 404, !registration_on, "{mode}");
    }
}
