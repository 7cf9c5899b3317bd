//! HTTP at the edges (issue 7, items 4 and 7): bodies over the limit or too slow,
//! HEAD and wrong methods, and the security headers of pages and TLS deployments.

use std::time::{Duration, Instant};

use portcullis::http::{BODY_LIMIT, BODY_TIMEOUT};
use reqwest::{Method, StatusCode};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::helpers::{Options, TestApp, http, spawn_app, spawn_app_with};

/// The back-channel endpoints, whose errors are JSON.
const JSON_PATHS: [&str; 5] = ["/token", "/revoke", "/introspect", "/register", "/userinfo"];

/// The browser's pages (and authorize), whose errors are the HTML error page.
const PAGE_PATHS: [&str; 8] = [
    "/authorize",
    "/login",
    "/consent",
    "/logout",
    "/logout/confirm",
    "/account/sessions/end",
    "/account/sign-out-everywhere",
    "/account/consents/withdraw",
];

fn too_large() -> serde_json::Value {
    json!({"error": "invalid_request", "error_description": "the request body is too large"})
}

async fn assert_json_refusal(response: reqwest::Response, status: u16, description: &str) {
    let url = response.url().clone();
    assert_eq!(response.status(), status, "{url}");
    assert_eq!(response.headers()["cache-control"], "no-store", "{url}");
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/json"),
        "{url}"
    );
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(
        body,
        json!({"error": "invalid_request", "error_description": description}),
        "{url}"
    );
}

async fn assert_page_refusal(response: reqwest::Response, status: u16, description: &str) {
    let url = response.url().clone();
    assert_eq!(response.status(), status, "{url}");
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html"),
        "{url}"
    );
    let html = response.text().await.unwrap();
    assert!(html.contains("invalid_request"), "{url}: {html}");
    assert!(html.contains(description), "{url}: {html}");
}

/// What a raw connection got: everything the server sent until it closed (or until the
/// deadline), whether it closed, and when the first byte came.
struct Raw {
    text: String,
    closed: bool,
    first_byte: Option<Duration>,
}

/// Sends `request` as is on a new connection and reads until the server closes it or
/// `deadline` passes.
async fn raw_exchange(app: &TestApp, request: &[u8], deadline: Duration) -> Raw {
    let started = Instant::now();
    let mut stream = TcpStream::connect(("127.0.0.1", app.port)).await.unwrap();
    stream.write_all(request).await.unwrap();
    let mut received = Vec::new();
    let mut first_byte = None;
    let mut closed = false;
    let mut buf = [0u8; 8192];
    while let Some(left) = deadline.checked_sub(started.elapsed()) {
        match tokio::time::timeout(left, stream.read(&mut buf)).await {
            Err(_) => break,
            Ok(Ok(0)) | Ok(Err(_)) => {
                closed = true;
                break;
            }
            Ok(Ok(n)) => {
                first_byte.get_or_insert_with(|| started.elapsed());
                received.extend_from_slice(&buf[..n]);
            }
        }
    }
    Raw {
        text: String::from_utf8_lossy(&received).into_owned(),
        closed,
        first_byte,
    }
}

fn head_of(app: &TestApp, method: &str, path: &str, headers: &str) -> Vec<u8> {
    format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\n{headers}\r\n",
        app.port
    )
    .into_bytes()
}

#[tokio::test]
async fn bodies_over_the_limit_get_413_as_json_or_the_error_page() {
    let app = spawn_app().await;
    let big = "a".repeat(BODY_LIMIT + 1);
    for path in JSON_PATHS {
        let request = http().post(app.url(path));
        let request = if path == "/register" {
            request
                .header("content-type", "application/json")
                .body(format!("{{\"client_name\":\"{big}\"}}"))
        } else {
            request.form(&[("token", big.as_str())])
        };
        let response = request.send().await.unwrap();
        assert_json_refusal(response, 413, "the request body is too large").await;
    }
    for path in PAGE_PATHS {
        let response = http()
            .post(app.url(path))
            .form(&[("id", big.as_str())])
            .send()
            .await
            .unwrap();
        assert_page_refusal(response, 413, "the request body is too large").await;
    }
    // Just within the limit, the handler answers as before.
    let response = http()
        .post(app.url("/token"))
        .form(&[("grant_type", "x".repeat(BODY_LIMIT - 20))])
        .send()
        .await
        .unwrap();
    assert_ne!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_ne!(body["error_description"], too_large()["error_description"]);
}

#[tokio::test]
async fn a_body_announced_over_the_limit_is_refused_unread() {
    let app = spawn_app().await;
    // Ten megabytes announced, none sent: the answer comes at once, and the connection
    // is closed (the body was never read).
    let request = head_of(
        &app,
        "POST",
        "/token",
        "Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 10000000\r\n",
    );
    let raw = raw_exchange(&app, &request, Duration::from_secs(5)).await;
    assert!(
        raw.text.starts_with("HTTP/1.1 413"),
        "no 413 for an oversized announcement: {:?}",
        raw.text
    );
    assert!(raw.first_byte.unwrap() < Duration::from_secs(2));
    assert!(
        raw.closed,
        "the connection stays open after refusing its body"
    );
    assert!(
        raw.text.contains("\"the request body is too large\""),
        "{}",
        raw.text
    );
    assert!(
        raw.text
            .to_ascii_lowercase()
            .contains("cache-control: no-store")
    );

    // A chunked body (no length announced) is cut off once it passes the limit.
    let chunk = "b".repeat(16 * 1024);
    let mut request = head_of(&app, "POST", "/login", "Transfer-Encoding: chunked\r\n");
    for _ in 0..5 {
        request.extend_from_slice(format!("{:x}\r\n{chunk}\r\n", chunk.len()).as_bytes());
    }
    let raw = raw_exchange(&app, &request, Duration::from_secs(5)).await;
    assert!(raw.text.starts_with("HTTP/1.1 413"), "{:?}", raw.text);
    assert!(raw.text.contains("text/html"), "{}", raw.text);
    assert!(raw.text.contains("invalid_request"), "{}", raw.text);
}

#[tokio::test]
async fn a_body_that_never_arrives_is_timed_out_in_the_endpoints_format() {
    let app = spawn_app().await;
    // Both at once: 100 bytes announced, 10 sent, then silence.
    let stalled = |path: &'static str| {
        let mut request = head_of(
            &app,
            "POST",
            path,
            "Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 100\r\n",
        );
        request.extend_from_slice(b"grant_type");
        request
    };
    let (token, login) = (stalled("/token"), stalled("/login"));
    let deadline = BODY_TIMEOUT + Duration::from_secs(2);
    let (token, login) = tokio::join!(
        raw_exchange(&app, &token, deadline),
        raw_exchange(&app, &login, deadline)
    );
    for raw in [&token, &login] {
        assert!(
            raw.text.starts_with("HTTP/1.1 408"),
            "no 408 within {deadline:?}: {:?}",
            raw.text
        );
        assert!(raw.closed, "the stalled connection is still open");
        assert!(raw.first_byte.unwrap() >= BODY_TIMEOUT - Duration::from_millis(500));
        assert!(raw.text.contains("the request body did not arrive in time"));
    }
    assert!(token.text.contains("application/json"), "{}", token.text);
    assert!(
        token.text.contains("\"error\":\"invalid_request\""),
        "{}",
        token.text
    );
    assert!(login.text.contains("text/html"), "{}", login.text);
    // The server still serves.
    let response = crate::helpers::get(app.url("/healthz")).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
}

/// Every GET route, with what a request without credentials gets there.
const GET_PATHS: [&str; 10] = [
    "/.well-known/openid-configuration",
    "/jwks",
    "/healthz",
    "/readyz",
    "/static/style.css",
    "/userinfo",
    "/register/nobody",
    "/login?id=unknown",
    "/consent?id=unknown",
    "/authorize/continue?id=unknown",
];

async fn assert_head_is_get(app: &TestApp, path: &str) {
    let get = http().get(app.url(path)).send().await.unwrap();
    let head = http().head(app.url(path)).send().await.unwrap();
    assert_eq!(head.status(), get.status(), "{path}");
    for name in [
        "content-type",
        "content-length",
        "cache-control",
        "www-authenticate",
        "content-security-policy",
        "referrer-policy",
        "access-control-allow-origin",
    ] {
        assert_eq!(
            head.headers().get(name),
            get.headers().get(name),
            "{path}: {name}"
        );
    }
    assert!(
        head.bytes().await.unwrap().is_empty(),
        "{path}: HEAD with a body"
    );
}

#[tokio::test]
async fn head_answers_every_get_route_like_get_without_a_body() {
    let app = spawn_app().await;
    for path in GET_PATHS {
        assert_head_is_get(&app, path).await;
    }
    // authorize and logout too (their answers carry fresh ids, so compare the status).
    let client = app.add_client(false);
    let (url, _) = app.authorize_url(&client, &[]);
    let browser = app.browser();
    let head = browser.http.head(&url).send().await.unwrap();
    assert_eq!(head.status(), StatusCode::SEE_OTHER);
    assert!(
        head.headers()["location"]
            .to_str()
            .unwrap()
            .contains("/login?id=")
    );
    let head = browser.http.head(app.url("/logout")).send().await.unwrap();
    assert_eq!(head.status(), StatusCode::OK);
    assert!(head.bytes().await.unwrap().is_empty());
}

#[tokio::test]
async fn wrong_methods_get_405_with_allow_and_unknown_paths_stay_404() {
    let app = spawn_app().await;
    let cases: [(Method, &str, &str); 10] = [
        (Method::GET, "/token", "POST, OPTIONS"),
        (Method::DELETE, "/token", "POST, OPTIONS"),
        (Method::PUT, "/userinfo", "GET, HEAD, POST, OPTIONS"),
        (Method::GET, "/introspect", "POST"),
        (Method::GET, "/register", "POST"),
        (Method::POST, "/register/someone", "GET, HEAD, PUT, DELETE"),
        (Method::POST, "/jwks", "GET, HEAD"),
        (
            Method::POST,
            "/.well-known/openid-configuration",
            "GET, HEAD",
        ),
        (Method::PATCH, "/revoke", "POST, OPTIONS"),
        (Method::POST, "/healthz", "GET, HEAD"),
    ];
    for (method, path, allow) in cases {
        let response = http()
            .request(method.clone(), app.url(path))
            .send()
            .await
            .unwrap();
        assert_eq!(response.headers()["allow"], allow, "{method} {path}");
        assert_json_refusal(response, 405, "this method is not allowed here").await;
    }
    let cases: [(Method, &str, &str); 9] = [
        (Method::PUT, "/authorize", "GET, HEAD, POST"),
        (Method::POST, "/authorize/continue", "GET, HEAD"),
        (Method::DELETE, "/login", "GET, HEAD, POST"),
        (Method::OPTIONS, "/consent", "GET, HEAD, POST"),
        (Method::GET, "/logout/confirm", "POST"),
        (Method::POST, "/static/style.css", "GET, HEAD"),
        (Method::POST, "/static/frontchannel.js", "GET, HEAD"),
        (Method::POST, "/account", "GET, HEAD"),
        (Method::GET, "/account/sign-out-everywhere", "POST"),
    ];
    for (method, path, allow) in cases {
        let response = http()
            .request(method.clone(), app.url(path))
            .send()
            .await
            .unwrap();
        assert_eq!(response.headers()["allow"], allow, "{method} {path}");
        assert_page_refusal(response, 405, "this method is not allowed here").await;
    }
    for (method, path) in [
        (Method::GET, "/nowhere"),
        (Method::POST, "/token/extra"),
        (Method::HEAD, "/static/missing.css"),
        (Method::DELETE, "/"),
    ] {
        let response = http()
            .request(method.clone(), app.url(path))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::NOT_FOUND, "{method} {path}");
    }
}

#[tokio::test]
async fn cors_preflights_still_answer() {
    let app = spawn_app().await;
    for path in ["/token", "/userinfo", "/revoke"] {
        let response = http()
            .request(Method::OPTIONS, app.url(path))
            .header("origin", "https://spa.example")
            .header("access-control-request-method", "POST")
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::NO_CONTENT, "{path}");
        assert_eq!(response.headers()["access-control-allow-origin"], "*");
        assert_eq!(
            response.headers()["access-control-allow-methods"],
            "GET, POST"
        );
    }
}

#[tokio::test]
async fn methods_and_head_work_below_an_issuer_path() {
    let app = spawn_app_with(Options {
        issuer_path: "/auth",
        ..Options::default()
    })
    .await;
    assert_head_is_get(&app, "/.well-known/openid-configuration").await;
    assert_head_is_get(&app, "/login?id=unknown").await;
    let response = http().get(app.url("/token")).send().await.unwrap();
    assert_eq!(response.headers()["allow"], "POST, OPTIONS");
    assert_json_refusal(response, 405, "this method is not allowed here").await;
    let response = http().put(app.url("/consent")).send().await.unwrap();
    assert_page_refusal(response, 405, "this method is not allowed here").await;
    // The error page links the stylesheet below the issuer's path.
    let response = http()
        .post(app.url("/login"))
        .form(&[("id", "x".repeat(BODY_LIMIT))])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert!(
        response
            .text()
            .await
            .unwrap()
            .contains("/auth/static/style.css")
    );
    let response = http()
        .post(app.url("/token"))
        .form(&[("id", "x".repeat(BODY_LIMIT))])
        .send()
        .await
        .unwrap();
    assert_json_refusal(response, 413, "the request body is too large").await;
    let outside = format!("http://127.0.0.1:{}/token", app.port);
    let response = http().get(outside).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn pages_restrict_form_targets_and_send_no_referrer() {
    let app = spawn_app().await;
    let client = app.add_client(false);
    let (url, _) = app.authorize_url(&client, &[]);
    let browser = app.browser();
    let (login, status, _) = browser.open(&url).await.page();
    assert_eq!(status, StatusCode::OK);
    // The login page itself and an error page.
    for url in [login.to_string(), app.url("/login?id=unknown")] {
        let response = browser.http.get(&url).send().await.unwrap();
        let csp = response.headers()["content-security-policy"]
            .to_str()
            .unwrap()
            .to_owned();
        let directives: Vec<&str> = csp.split(';').map(str::trim).collect();
        // Our own origin, plus (on the login page) the client's, where the form may end.
        assert!(
            directives.iter().any(
                |d| *d == "form-action 'self'" || *d == "form-action 'self' http://127.0.0.1:1"
            ),
            "{url}: {csp}"
        );
        assert!(directives.contains(&"default-src 'none'"), "{url}: {csp}");
        assert_eq!(
            response.headers()["referrer-policy"],
            "same-origin",
            "{url}"
        );
    }
}

#[test]
fn a_form_target_widens_form_action_by_its_origin_or_scheme() {
    use portcullis::http::allow_form_redirect;
    let page = || {
        actix_web::HttpResponse::Ok()
            .insert_header((
                "content-security-policy",
                "default-src 'none'; form-action 'self'; base-uri 'none'",
            ))
            .finish()
    };
    let csp = |r: &actix_web::HttpResponse| {
        r.headers()
            .get("content-security-policy")
            .unwrap()
            .to_str()
            .unwrap()
            .to_owned()
    };
    for (target, expected) in [
        (
            "https://app.example/cb?x=1",
            "form-action 'self' https://app.example;",
        ),
        (
            "http://127.0.0.1:53122/callback",
            "form-action 'self' http://127.0.0.1:53122;",
        ),
        (
            "com.example.app:/oauth2redirect",
            "form-action 'self' com.example.app:;",
        ),
    ] {
        let mut response = page();
        allow_form_redirect(&mut response, target);
        assert!(
            csp(&response).contains(expected),
            "{target}: {}",
            csp(&response)
        );
    }
    // Garbage changes nothing.
    let mut response = page();
    allow_form_redirect(&mut response, "not a url; script-src *");
    assert_eq!(csp(&response), csp(&page()));
}

const HSTS: &str = "max-age=63072000";

#[tokio::test]
async fn hsts_is_sent_on_every_response_only_when_served_over_tls() {
    let plain = spawn_app().await;
    let response = crate::helpers::get(plain.url("/.well-known/openid-configuration"))
        .await
        .unwrap();
    assert!(
        response
            .headers()
            .get("strict-transport-security")
            .is_none()
    );

    // The test issuers are all http://127.0.0.1: Secure cookies stand for TLS here
    // (see `portcullis::http::sends_hsts`).
    let tls = spawn_app_with(Options {
        env: vec![("COOKIE_SECURE", "true".into())],
        ..Options::default()
    })
    .await;
    let big = "a".repeat(BODY_LIMIT + 1);
    let responses = [
        http()
            .get(tls.url("/.well-known/openid-configuration"))
            .send()
            .await,
        http().get(tls.url("/login?id=unknown")).send().await,
        http().get(tls.url("/nowhere")).send().await,
        http().delete(tls.url("/token")).send().await,
        http().post(tls.url("/token")).body(big).send().await,
        http().head(tls.url("/jwks")).send().await,
    ];
    for response in responses {
        let response = response.unwrap();
        assert_eq!(
            response.headers()["strict-transport-security"],
            HSTS,
            "{} {}",
            response.url(),
            response.status()
        );
    }
}

const FORM_ONLY: &str = "the content type must be application/x-www-form-urlencoded";
const JSON_ONLY: &str = "the content type must be application/json";

#[tokio::test]
async fn form_endpoints_read_only_bodies_declared_as_forms() {
    let app = spawn_app().await;
    let client = app.add_client(false);
    let secret = client.secret.as_deref().unwrap();
    // RFC 6749 §3.2, RFC 7009 §2.1, RFC 7662 §2.1, RFC 9126 §2.1.
    for path in ["/token", "/revoke", "/introspect", "/par"] {
        for content_type in [
            Some("application/json"),
            Some("text/plain"),
            Some("multipart/form-data; boundary=x"),
            Some("application/x-www-form-urlencodedx"),
            None,
        ] {
            let mut request = http()
                .post(app.url(path))
                .basic_auth(&client.id, Some(secret))
                .body("grant_type=client_credentials&token=x");
            if let Some(value) = content_type {
                request = request.header("content-type", value);
            }
            let response = request.send().await.unwrap();
            assert_json_refusal(response, 400, FORM_ONLY).await;
        }
        // Parameters and case do not matter.
        for content_type in [
            "application/x-www-form-urlencoded; charset=UTF-8",
            "Application/X-WWW-Form-URLEncoded",
        ] {
            let response = http()
                .post(app.url(path))
                .basic_auth(&client.id, Some(secret))
                .header("content-type", content_type)
                .body("token=x")
                .send()
                .await
                .unwrap();
            let text = response.text().await.unwrap();
            assert!(!text.contains(FORM_ONLY), "{path} {content_type}: {text}");
        }
    }
}

#[tokio::test]
async fn userinfo_reads_a_token_from_a_body_only_when_it_is_a_form() {
    let app = spawn_app().await;
    let response = http()
        .post(app.url("/userinfo"))
        .header("content-type", "text/plain")
        .body("access_token=not-a-token")
        .send()
        .await
        .unwrap();
    assert_json_refusal(response, 400, FORM_ONLY).await;
    // A form is read (and this token refused as such).
    let response = http()
        .post(app.url("/userinfo"))
        .header(
            "content-type",
            "application/x-www-form-urlencoded; charset=UTF-8",
        )
        .body("access_token=not-a-token")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    // With the token in the header, a body of another kind is not read, nor refused.
    app.add_user("alice").await;
    let client = app.add_client(false);
    let tokens = app.tokens_for(&client, "alice").await;
    let response = http()
        .post(app.url("/userinfo"))
        .bearer_auth(tokens["access_token"].as_str().unwrap())
        .header("content-type", "application/json")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
}

#[tokio::test]
async fn registration_and_admin_api_bodies_must_be_json() {
    let app = spawn_app_with(Options {
        env: vec![("REGISTRATION", "open".into())],
        ..Options::default()
    })
    .await;
    let metadata = json!({"client_name": "RP", "redirect_uris": ["https://rp.example/cb"]});
    // RFC 7591 §3.1.
    for content_type in ["text/plain", "application/x-www-form-urlencoded"] {
        let response = http()
            .post(app.url("/register"))
            .header("content-type", content_type)
            .body(metadata.to_string())
            .send()
            .await
            .unwrap();
        assert_json_refusal(response, 400, JSON_ONLY).await;
    }
    let response = http()
        .post(app.url("/register"))
        .header("content-type", "application/json; charset=UTF-8")
        .body(metadata.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);

    let automation = app.add_service_client("admin", &[]);
    let response = app
        .token_request(
            &[("grant_type", "client_credentials")],
            Some((&automation.id, automation.secret.as_deref().unwrap())),
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let tokens: serde_json::Value = response.json().await.unwrap();
    let token = tokens["access_token"].as_str().unwrap();
    let user = json!({"username": "carol", "password": "a long passphrase"});
    let response = http()
        .post(app.url("/admin/api/users"))
        .bearer_auth(token)
        .header("content-type", "text/plain")
        .body(user.to_string())
        .send()
        .await
        .unwrap();
    assert_json_refusal(response, 400, JSON_ONLY).await;
    let response = http()
        .post(app.url("/admin/api/users"))
        .bearer_auth(token)
        .header("content-type", "application/json; charset=utf-8")
        .body(user.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
}

const BROWSER_ACCEPT: &str = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8";

#[tokio::test]
async fn unknown_paths_get_the_error_page_in_a_browser_and_json_otherwise() {
    let app = spawn_app().await;
    for path in [
        "/nowhere",
        "/token/extra",
        "/admin/api/nothing",
        "/static/missing.css",
    ] {
        let response = http()
            .get(app.url(path))
            .header("accept", BROWSER_ACCEPT)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::NOT_FOUND, "{path}");
        assert!(
            response.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("text/html"),
            "{path}"
        );
        assert!(
            response.headers().contains_key("content-security-policy"),
            "{path}"
        );
        let html = response.text().await.unwrap();
        assert!(html.contains("not_found"), "{path}: {html}");
        assert!(
            html.contains("There is no page at this address."),
            "{path}: {html}"
        );

        let response = http().get(app.url(path)).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::NOT_FOUND, "{path}");
        let body: serde_json::Value = response.json().await.unwrap();
        assert_eq!(body["error"], "not_found", "{path}");
    }
    // In French for a French browser.
    let response = http()
        .get(app.url("/nowhere"))
        .header("accept", BROWSER_ACCEPT)
        .header("accept-language", "fr")
        .send()
        .await
        .unwrap();
    assert!(
        response
            .text()
            .await
            .unwrap()
            .contains("Il n’y a pas de page à cette adresse.")
    );

    // Outside the issuer's path too, with the page's links below it.
    let app = spawn_app_with(Options {
        issuer_path: "/auth",
        ..Options::default()
    })
    .await;
    let outside = format!("http://127.0.0.1:{}/elsewhere", app.port);
    let response = http()
        .get(outside)
        .header("accept", BROWSER_ACCEPT)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    assert!(
        response
            .text()
            .await
            .unwrap()
            .contains("/auth/static/style.css")
    );
}

#[tokio::test]
async fn the_passkey_script_is_served_from_static_as_javascript() {
    let app = spawn_app().await;
    let script = http()
        .get(app.url("/static/passkey.js"))
        .send()
        .await
        .unwrap();
    assert_eq!(script.status(), StatusCode::OK);
    assert_eq!(
        script.headers()["content-type"],
        "text/javascript; charset=utf-8"
    );
    assert_eq!(script.headers()["x-content-type-options"], "nosniff");
    let text = script.text().await.unwrap();
    assert!(text.contains("data-passkey-options"), "{text}");
}
