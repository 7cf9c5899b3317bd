//! A fake Microsoft Entra ID for the `microsoft` preset (multi-tenant, v2.0 endpoints):
//! Entra is not reachable here, so an in-process server answers as Microsoft's
//! documentation ("Microsoft identity platform and OpenID Connect protocol", "ID token
//! claims reference") says `login.microsoftonline.com` does, for what a sign-in uses:
//!
//! - `GET /common/v2.0/.well-known/openid-configuration`: the multi-tenant document,
//!   whose `issuer` is the template `https://login.microsoftonline.com/{tenantid}/v2.0`
//!   (as Entra's own is: each token's `iss` names its tenant), its endpoints here;
//! - `GET /common/discovery/v2.0/keys`: the JWK Set (RS256);
//! - `GET /common/oauth2/v2.0/authorize`: redirects at once (302) to the redirect URI
//!   with `code` and `state`, for the identity the test chose ([`FakeEntra::next`]);
//! - `POST /common/oauth2/v2.0/token`: the client's secret (basic or in the body), the
//!   code (single use, bound to the redirect URI and the S256 challenge), then an ID token
//!   with `tid`, `oid`, `iss` (the tenant's issuer, or another the test chose), `aud`,
//!   `nonce`, `preferred_username`, `name` and `email`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use actix_web::dev::ServerHandle;
use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use portcullis::crypto::SigningKey;
use portcullis::domain::KeyAlgorithm;
use serde_json::json;
use url::Url;

/// The loopback address it listens on (see the parent module on why not 127.0.0.1).
pub const HOST: &str = "127.0.0.6";
/// Entra's multi-tenant issuer template.
pub const TEMPLATE: &str = "https://login.microsoftonline.com/{tenantid}/v2.0";

/// Who the next authorization signs in as.
#[derive(Clone, Debug)]
pub struct EntraUser {
    /// The tenant (`tid`).
    pub tid: String,
    /// The user's object id in it (`oid`; `sub` is derived from it, per application).
    pub oid: String,
    pub username: String,
    pub email: String,
    /// `iss` of the ID token: `None`, the tenant's (the template with `tid`).
    pub iss: Option<String>,
}

impl EntraUser {
    pub fn new(tid: &str, username: &str) -> Self {
        Self {
            tid: tid.to_owned(),
            oid: portcullis::crypto::tokens::random_uuid(),
            username: username.to_owned(),
            email: format!("{username}@contoso.example"),
            iss: None,
        }
    }
}

struct Grant {
    user: EntraUser,
    redirect_uri: String,
    challenge: String,
    nonce: Option<String>,
}

struct State {
    client_id: String,
    client_secret: String,
    next: Option<EntraUser>,
    codes: HashMap<String, Grant>,
    key: SigningKey,
    token_requests: usize,
}

type Shared = Arc<Mutex<State>>;

/// The fake Entra ID: one app registration (client id and secret).
pub struct FakeEntra {
    /// `http://127.0.0.6:PORT`: `{url}/common/v2.0` is the preset's `discovery_url`.
    pub url: String,
    pub client_id: String,
    pub client_secret: String,
    state: Shared,
    handle: ServerHandle,
}

impl FakeEntra {
    pub async fn start() -> Self {
        let listener = std::net::TcpListener::bind((HOST, 0)).unwrap();
        let url = format!("http://{HOST}:{}", listener.local_addr().unwrap().port());
        let client_id = portcullis::crypto::tokens::random_uuid();
        let client_secret = portcullis::crypto::tokens::random_token(32);
        let (key, _) = SigningKey::generate(KeyAlgorithm::Rs256).unwrap();
        let state: Shared = Arc::new(Mutex::new(State {
            client_id: client_id.clone(),
            client_secret: client_secret.clone(),
            next: None,
            codes: HashMap::new(),
            key,
            token_requests: 0,
        }));
        let data = web::Data::new(state.clone());
        let base = url.clone();
        let server = HttpServer::new(move || {
            App::new()
                .app_data(data.clone())
                .app_data(web::Data::new(base.clone()))
                .route(
                    "/common/v2.0/.well-known/openid-configuration",
                    web::get().to(discovery),
                )
                .route("/common/discovery/v2.0/keys", web::get().to(keys))
                .route("/common/oauth2/v2.0/authorize", web::get().to(authorize))
                .route("/common/oauth2/v2.0/token", web::post().to(token))
        })
        .workers(1)
        .disable_signals()
        .listen(listener)
        .unwrap()
        .run();
        let handle = server.handle();
        tokio::spawn(server);
        Self {
            url,
            client_id,
            client_secret,
            state,
            handle,
        }
    }

    /// The preset's `discovery_url`.
    pub fn discovery_url(&self) -> String {
        format!("{}/common/v2.0", self.url)
    }

    /// The next authorization signs in as `user`.
    pub fn next(&self, user: EntraUser) {
        self.state.lock().unwrap().next = Some(user);
    }

    /// How many token requests were answered with tokens.
    pub fn token_requests(&self) -> usize {
        self.state.lock().unwrap().token_requests
    }
}

impl Drop for FakeEntra {
    fn drop(&mut self) {
        let handle = self.handle.clone();
        tokio::spawn(async move { handle.stop(false).await });
    }
}

async fn discovery(base: web::Data<String>) -> HttpResponse {
    let base = base.as_str();
    HttpResponse::Ok().json(json!({
        "issuer": TEMPLATE,
        "authorization_endpoint": format!("{base}/common/oauth2/v2.0/authorize"),
        "token_endpoint": format!("{base}/common/oauth2/v2.0/token"),
        "jwks_uri": format!("{base}/common/discovery/v2.0/keys"),
        "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
        "response_modes_supported": ["query", "fragment", "form_post"],
        "subject_types_supported": ["pairwise"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "token_endpoint_auth_methods_supported": ["client_secret_post", "private_key_jwt", "client_secret_basic"],
        "scopes_supported": ["openid", "profile", "email", "offline_access"],
        "claims_supported": ["sub", "iss", "aud", "exp", "iat", "nonce", "tid", "oid", "name", "preferred_username", "email"],
        "tenant_region_scope": null,
        "cloud_instance_name": "microsoftonline.com",
    }))
}

async fn keys(state: web::Data<Shared>) -> HttpResponse {
    let state = state.lock().unwrap();
    HttpResponse::Ok().json(json!({ "keys": [state.key.public_jwk()] }))
}

fn param(url: &Url, name: &str) -> Option<String> {
    url.query_pairs()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

async fn authorize(req: HttpRequest, state: web::Data<Shared>) -> HttpResponse {
    let url = Url::parse(&format!("http://x{}", req.uri())).unwrap();
    let mut state = state.lock().unwrap();
    let (Some(redirect_uri), Some(challenge)) =
        (param(&url, "redirect_uri"), param(&url, "code_challenge"))
    else {
        return HttpResponse::BadRequest().body("AADSTS900144: missing parameter");
    };
    if param(&url, "client_id").as_deref() != Some(state.client_id.as_str())
        || param(&url, "code_challenge_method").as_deref() != Some("S256")
    {
        return HttpResponse::BadRequest().body("AADSTS700016: application not found");
    }
    let user = state.next.clone().expect("FakeEntra::next was not called");
    let code = portcullis::crypto::tokens::random_token(32);
    state.codes.insert(
        code.clone(),
        Grant {
            user,
            redirect_uri: redirect_uri.clone(),
            challenge,
            nonce: param(&url, "nonce"),
        },
    );
    let mut back = Url::parse(&redirect_uri).unwrap();
    back.query_pairs_mut().append_pair("code", &code);
    if let Some(s) = param(&url, "state") {
        back.query_pairs_mut().append_pair("state", &s);
    }
    HttpResponse::Found()
        .insert_header(("location", back.to_string()))
        .finish()
}

fn token_error(error: &str) -> HttpResponse {
    HttpResponse::BadRequest().json(json!({ "error": error, "error_description": error }))
}

async fn token(
    req: HttpRequest,
    form: web::Form<HashMap<String, String>>,
    state: web::Data<Shared>,
) -> HttpResponse {
    let mut state = state.lock().unwrap();
    let basic = req
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic "))
        .and_then(|b| {
            use base64::Engine;
            base64::engine::general_purpose::STANDARD.decode(b).ok()
        })
        .and_then(|b| String::from_utf8(b).ok())
        .and_then(|s| s.split_once(':').map(|(i, p)| (i.to_owned(), p.to_owned())));
    let (id, secret) = match basic {
        Some((id, secret)) => (
            url::form_urlencoded::parse(id.as_bytes())
                .map(|(k, _)| k.into_owned())
                .next()
                .unwrap_or(id),
            url::form_urlencoded::parse(secret.as_bytes())
                .map(|(k, _)| k.into_owned())
                .next()
                .unwrap_or(secret),
        ),
        None => (
            form.get("client_id").cloned().unwrap_or_default(),
            form.get("client_secret").cloned().unwrap_or_default(),
        ),
    };
    if id != state.client_id || secret != state.client_secret {
        return token_error("invalid_client");
    }
    let Some(grant) = form.get("code").and_then(|c| state.codes.remove(c)) else {
        return token_error("invalid_grant");
    };
    let verifier = form.get("code_verifier").cloned().unwrap_or_default();
    if form.get("redirect_uri") != Some(&grant.redirect_uri)
        || portcullis::crypto::tokens::pkce_s256(&verifier) != grant.challenge
    {
        return token_error("invalid_grant");
    }
    let now = portcullis::domain::now();
    let user = grant.user;
    let iss = user
        .iss
        .clone()
        .unwrap_or_else(|| TEMPLATE.replace("{tenantid}", &user.tid));
    let mut claims = json!({
        "ver": "2.0",
        "iss": iss,
        "sub": format!("sub-{}", user.oid),
        "aud": state.client_id,
        "exp": now + 3600,
        "iat": now,
        "nbf": now,
        "tid": user.tid,
        "oid": user.oid,
        "name": user.username,
        "preferred_username": user.email,
        "email": user.email,
    });
    if let Some(nonce) = grant.nonce {
        claims["nonce"] = nonce.into();
    }
    let id_token = state.key.sign_jwt("JWT", &claims).unwrap();
    state.token_requests += 1;
    HttpResponse::Ok().json(json!({
        "token_type": "Bearer",
        "scope": "openid profile email",
        "expires_in": 3600,
        "access_token": portcullis::crypto::tokens::random_token(32),
        "id_token": id_token,
    }))
}
