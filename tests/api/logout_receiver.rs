//! A relying party's back-channel logout endpoint, in the test process: it records every
//! POST, checks each logout token as OIDC Back-Channel Logout §2.6 tells a relying party
//! to (signature against the provider's JWKS, `typ`, `iss`, `aud`, `iat`, `exp`, `jti`,
//! `events`, no `nonce`), and can be told to fail the next requests.

use std::net::TcpListener;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use actix_web::{App, HttpResponse, HttpServer, web};
use serde_json::Value;

const EVENT: &str = "http://schemas.openid.net/event/backchannel-logout";

/// One POST as received: the path it went to and its `logout_token`.
#[derive(Clone, Debug)]
pub struct Received {
    pub path: String,
    pub token: Option<String>,
}

#[derive(Default)]
struct Inbox {
    received: Mutex<Vec<Received>>,
    fail_next: AtomicUsize,
    /// Documents served by GET (a sector identifier document, say).
    documents: Mutex<std::collections::HashMap<String, serde_json::Value>>,
}

async fn document(req: actix_web::HttpRequest, inbox: web::Data<Arc<Inbox>>) -> HttpResponse {
    match inbox.documents.lock().unwrap().get(req.path()) {
        // A string is served as itself (a request object), anything else as JSON.
        Some(serde_json::Value::String(text)) => HttpResponse::Ok()
            .content_type("application/oauth-authz-req+jwt")
            .body(text.clone()),
        Some(doc) => HttpResponse::Ok().json(doc),
        None => HttpResponse::NotFound().finish(),
    }
}

pub struct Receiver {
    pub base: String,
    inbox: Arc<Inbox>,
    handle: actix_web::dev::ServerHandle,
}

async fn receive(
    req: actix_web::HttpRequest,
    form: web::Form<Vec<(String, String)>>,
    inbox: web::Data<Arc<Inbox>>,
) -> HttpResponse {
    let token = form
        .iter()
        .find(|(k, _)| k == "logout_token")
        .map(|(_, v)| v.clone());
    inbox.received.lock().unwrap().push(Received {
        path: req.path().to_owned(),
        token,
    });
    let failing = inbox
        .fail_next
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
        .is_ok();
    if failing {
        HttpResponse::ServiceUnavailable().finish()
    } else {
        HttpResponse::Ok().finish()
    }
}

impl Receiver {
    pub async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let base = format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port());
        let inbox = Arc::new(Inbox::default());
        let data = web::Data::new(inbox.clone());
        let server = HttpServer::new(move || {
            App::new()
                .app_data(data.clone())
                .route("/{tail:.*}", web::post().to(receive))
                .route("/{tail:.*}", web::get().to(document))
        })
        .workers(1)
        .disable_signals()
        .listen(listener)
        .unwrap()
        .run();
        let handle = server.handle();
        tokio::spawn(server);
        Self {
            base,
            inbox,
            handle,
        }
    }

    /// The URI for one client's logouts.
    pub fn uri(&self, name: &str) -> String {
        format!("{}/bc/{name}", self.base)
    }

    /// Serves `doc` at `path` (GET); returns its URL.
    pub fn serve(&self, path: &str, doc: serde_json::Value) -> String {
        self.inbox
            .documents
            .lock()
            .unwrap()
            .insert(path.to_owned(), doc);
        format!("{}{path}", self.base)
    }

    /// Answers the next `n` POSTs with 503.
    pub fn fail_next(&self, n: usize) {
        self.inbox.fail_next.store(n, Ordering::SeqCst);
    }

    pub fn received(&self) -> Vec<Received> {
        self.inbox.received.lock().unwrap().clone()
    }

    /// Waits (polling, with a deadline) until `n` POSTs have arrived; returns them all.
    pub async fn wait_for(&self, n: usize) -> Vec<Received> {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let got = self.received();
            if got.len() >= n {
                return got;
            }
            assert!(
                Instant::now() < deadline,
                "expected {n} back-channel logouts, got {}: {got:?}",
                got.len()
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    pub async fn stop(self) {
        self.handle.stop(false).await;
    }
}

/// Validates a logout token as a relying party must (§2.6) and returns its claims.
pub async fn verify_logout_token(token: &str, issuer: &str, client_id: &str) -> Value {
    let header = jsonwebtoken::decode_header(token).unwrap();
    assert_eq!(
        header.typ.as_deref(),
        Some("logout+jwt"),
        "§2.4 explicit typing"
    );
    let jwks: jsonwebtoken::jwk::JwkSet = crate::helpers::get(format!("{issuer}/jwks"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let kid = header.kid.clone().expect("a kid");
    let jwk = jwks.find(&kid).expect("signed with a published key");
    let key = jsonwebtoken::DecodingKey::from_jwk(jwk).unwrap();
    let mut validation = jsonwebtoken::Validation::new(header.alg);
    validation.set_issuer(&[issuer]);
    validation.set_audience(&[client_id]);
    validation.set_required_spec_claims(&["iss", "aud", "exp", "iat"]);
    let claims = jsonwebtoken::decode::<Value>(token, &key, &validation)
        .expect("a valid signature, issuer, audience and lifetime")
        .claims;
    assert!(claims["jti"].as_str().is_some_and(|j| !j.is_empty()));
    assert!(claims["iat"].as_i64().is_some());
    assert!(
        claims["sub"].is_string() || claims["sid"].is_string(),
        "sub and/or sid"
    );
    assert_eq!(claims["events"][EVENT], serde_json::json!({}));
    assert!(claims.get("nonce").is_none(), "§2.4: no nonce");
    claims
}
