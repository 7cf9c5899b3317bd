//! A fake GitHub for the `github` preset: GitHub is not reachable here, so two in-process
//! servers answer like `github.com` and `api.github.com` do, per GitHub's documentation
//! ("Authorizing OAuth apps", "Troubleshooting OAuth app access token request errors",
//! the REST pages for `GET /user` and `GET /user/emails`), for the calls an OAuth App's
//! sign-in makes:
//!
//! - web (`github.com`): `GET /login/oauth/authorize` redirects at once (302) to the
//!   redirect URI with `code` and `state`, as the user the test chose
//!   ([`FakeGithub::approve_as`]), or with `error=access_denied` ([`FakeGithub::deny`]);
//!   `POST /login/oauth/access_token` answers JSON with `Accept: application/json` and a
//!   form-encoded body otherwise; its errors are 200 with `error`, `error_description`
//!   and `error_uri`. Codes are single use, live 10 minutes and are bound to the client,
//!   the redirect URI and the PKCE challenge (S256) given at `authorize`.
//! - API (`api.github.com`): `GET /user` and `GET /user/emails`, with `Authorization:
//!   Bearer T` or `token T`; 403 without `User-Agent`, 401 with a bad token, and
//!   `/user/emails` 404 for a token without the `user:email` (or `user`) scope.
//!
//! Every request is recorded ([`FakeGithub::requests`]) so that tests can check what the
//! relying party sent (its PKCE verifier, its User-Agent, how it authenticated).
//! Where the documentation is silent, the choice is noted (a PKCE mismatch answers
//! `bad_verification_code`).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use actix_web::dev::ServerHandle;
use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use serde_json::json;
use url::Url;

const DOCS: &str = "https://docs.github.com/apps/managing-oauth-apps";
/// How long an authorization code lives at GitHub.
const CODE_LIFETIME: Duration = Duration::from_secs(600);

/// An account at the fake GitHub.
#[derive(Clone, Debug)]
pub struct GithubUser {
    /// GitHub's numeric id: the stable identifier (logins can be renamed).
    pub id: u64,
    pub login: String,
    pub name: Option<String>,
    /// The public email of the profile (`email` of `GET /user`): often null.
    pub public_email: Option<String>,
    /// What `GET /user/emails` lists.
    pub emails: Vec<GithubEmail>,
}

#[derive(Clone, Debug)]
pub struct GithubEmail {
    pub email: String,
    pub primary: bool,
    pub verified: bool,
    /// `"public"`, `"private"` or null.
    pub visibility: Option<String>,
}

impl GithubUser {
    /// A user with one primary address, verified or not, kept private (so `email` of
    /// `GET /user` is null, as for most GitHub accounts).
    pub fn new(id: u64, login: &str, email: &str, verified: bool) -> Self {
        Self {
            id,
            login: login.to_owned(),
            name: Some(format!("{login} Hub")),
            public_email: None,
            emails: vec![GithubEmail {
                email: email.to_owned(),
                primary: true,
                verified,
                visibility: Some("private".to_owned()),
            }],
        }
    }
}

/// One request the fake received.
#[derive(Clone, Debug)]
pub struct Recorded {
    pub method: String,
    pub path: String,
    pub query: Vec<(String, String)>,
    /// Header names in lower case.
    pub headers: Vec<(String, String)>,
    /// The form-encoded body's fields (empty for other bodies).
    pub form: Vec<(String, String)>,
}

impl Recorded {
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.as_str())
    }

    /// A parameter from the query or the form body.
    pub fn param(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .chain(&self.form)
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

enum Approval {
    As(String),
    Deny,
}

struct Grant {
    login: String,
    redirect_uri: Option<String>,
    scope: Vec<String>,
    challenge: Option<String>,
    issued: Instant,
}

struct State {
    client_id: String,
    client_secret: String,
    callback_url: String,
    web_url: String,
    api_url: String,
    users: Vec<GithubUser>,
    approval: Approval,
    codes: HashMap<String, Grant>,
    tokens: HashMap<String, (String, Vec<String>)>,
    requests: Vec<Recorded>,
    api_failure: Option<u16>,
    emails_failure: Option<u16>,
}

type Shared = Arc<Mutex<State>>;

/// The fake GitHub: one OAuth App (client id, secret, callback URL) and its users.
pub struct FakeGithub {
    /// The `https://github.com` role (authorize and access_token), e.g.
    /// `http://127.0.0.4:PORT`.
    pub web_url: String,
    /// The `https://api.github.com` role (`/user`, `/user/emails`), another port.
    pub api_url: String,
    pub client_id: String,
    pub client_secret: String,
    /// The OAuth App's registered callback URL.
    pub callback_url: String,
    state: Shared,
    handles: Vec<ServerHandle>,
}

/// The loopback address both roles listen on.
pub const HOST: &str = "127.0.0.4";

impl FakeGithub {
    /// Starts both roles for an OAuth App whose callback URL is `callback_url`, with one
    /// user, `octocat` (id 583231, `octocat@example.test` verified), who approves.
    pub async fn start(callback_url: &str) -> Self {
        let web = std::net::TcpListener::bind((HOST, 0)).unwrap();
        let api = std::net::TcpListener::bind((HOST, 0)).unwrap();
        let web_url = format!("http://{HOST}:{}", web.local_addr().unwrap().port());
        let api_url = format!("http://{HOST}:{}", api.local_addr().unwrap().port());
        let client_id = format!("Iv1.{}", &hex_token()[..16]);
        let client_secret = format!("{}{}", hex_token(), &hex_token()[..8]);
        let state: Shared = Arc::new(Mutex::new(State {
            client_id: client_id.clone(),
            client_secret: client_secret.clone(),
            callback_url: callback_url.to_owned(),
            web_url: web_url.clone(),
            api_url: api_url.clone(),
            users: vec![GithubUser::new(
                583231,
                "octocat",
                "octocat@example.test",
                true,
            )],
            approval: Approval::As("octocat".to_owned()),
            codes: HashMap::new(),
            tokens: HashMap::new(),
            requests: Vec::new(),
            api_failure: None,
            emails_failure: None,
        }));
        let data = web::Data::new(state.clone());
        let web_data = data.clone();
        let web_server = HttpServer::new(move || {
            App::new()
                .app_data(web_data.clone())
                .route("/login/oauth/authorize", web::get().to(authorize))
                .route("/login/oauth/access_token", web::post().to(access_token))
                .default_service(web::to(not_found))
        })
        .workers(1)
        .disable_signals()
        .listen(web)
        .unwrap()
        .run();
        let api_server = HttpServer::new(move || {
            App::new()
                .app_data(data.clone())
                .route("/user", web::get().to(user))
                .route("/user/emails", web::get().to(emails))
                .default_service(web::to(not_found))
        })
        .workers(1)
        .disable_signals()
        .listen(api)
        .unwrap()
        .run();
        let handles = vec![web_server.handle(), api_server.handle()];
        tokio::spawn(web_server);
        tokio::spawn(api_server);
        Self {
            web_url,
            api_url,
            client_id,
            client_secret,
            callback_url: callback_url.to_owned(),
            state,
            handles,
        }
    }

    /// Adds (or replaces, by login) a user.
    pub fn add_user(&self, user: GithubUser) {
        let mut state = self.state.lock().unwrap();
        state.users.retain(|u| u.login != user.login);
        state.users.push(user);
    }

    /// The next authorizations are approved by `login` (who must exist).
    pub fn approve_as(&self, login: &str) {
        let mut state = self.state.lock().unwrap();
        assert!(
            state.users.iter().any(|u| u.login == login),
            "no user {login}"
        );
        state.approval = Approval::As(login.to_owned());
    }

    /// The next authorizations are denied by the user (`error=access_denied`).
    pub fn deny(&self) {
        self.state.lock().unwrap().approval = Approval::Deny;
    }

    /// The API answers every call with `status` (e.g. 500, 503) from now on; `None`
    /// heals it.
    pub fn fail_api(&self, status: Option<u16>) {
        self.state.lock().unwrap().api_failure = status;
    }

    /// `GET /user/emails` alone answers `status` from now on (GitHub failing that one
    /// call); `None` heals it.
    pub fn fail_emails(&self, status: Option<u16>) {
        self.state.lock().unwrap().emails_failure = status;
    }

    /// Every request received so far, in order.
    pub fn requests(&self) -> Vec<Recorded> {
        self.state.lock().unwrap().requests.clone()
    }

    /// The requests received at `path`.
    pub fn requests_to(&self, path: &str) -> Vec<Recorded> {
        self.requests()
            .into_iter()
            .filter(|r| r.path == path)
            .collect()
    }

    /// Both roles stop listening (GitHub down).
    pub async fn stop(&self) {
        for handle in &self.handles {
            handle.stop(false).await;
        }
    }
}

impl Drop for FakeGithub {
    fn drop(&mut self) {
        // Stop accepting at once; the servers' futures end with the test's runtime.
        for handle in self.handles.drain(..) {
            drop(handle.stop(false));
        }
    }
}

fn hex_token() -> String {
    portcullis::crypto::tokens::random_uuid().replace('-', "")
}

fn record(state: &Shared, req: &HttpRequest, body: &[u8]) {
    let is_form = req
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
    let pairs = |bytes: &[u8]| -> Vec<(String, String)> {
        url::form_urlencoded::parse(bytes).into_owned().collect()
    };
    let recorded = Recorded {
        method: req.method().to_string(),
        path: req.path().to_owned(),
        query: pairs(req.query_string().as_bytes()),
        headers: req
            .headers()
            .iter()
            .map(|(k, v)| {
                (
                    k.as_str().to_ascii_lowercase(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect(),
        form: if is_form { pairs(body) } else { Vec::new() },
    };
    state.lock().unwrap().requests.push(recorded);
}

async fn not_found(req: HttpRequest, state: web::Data<Shared>) -> HttpResponse {
    record(&state, &req, &[]);
    HttpResponse::NotFound().json(json!({
        "message": "Not Found",
        "documentation_url": "https://docs.github.com/rest",
        "status": "404"
    }))
}

/// GitHub's rule for a `redirect_uri`: the registered callback's scheme, host and port
/// (any port for a loopback host), and its path or a subdirectory of it.
fn redirect_allowed(callback: &str, given: &str) -> bool {
    let (Ok(callback), Ok(given)) = (Url::parse(callback), Url::parse(given)) else {
        return false;
    };
    let loopback = matches!(given.host_str(), Some("127.0.0.1" | "localhost" | "[::1]"));
    let base = callback.path().trim_end_matches('/');
    callback.scheme() == given.scheme()
        && callback.host_str() == given.host_str()
        && (loopback || callback.port_or_known_default() == given.port_or_known_default())
        && (given.path() == callback.path() || given.path().starts_with(&format!("{base}/")))
}

fn redirect_to(base: &str, params: &[(&str, &str)]) -> HttpResponse {
    let mut url = Url::parse(base).unwrap();
    url.query_pairs_mut().extend_pairs(params);
    HttpResponse::Found()
        .insert_header(("location", url.to_string()))
        .finish()
}

async fn authorize(req: HttpRequest, state: web::Data<Shared>) -> HttpResponse {
    record(&state, &req, &[]);
    let params: HashMap<String, String> =
        url::form_urlencoded::parse(req.query_string().as_bytes())
            .into_owned()
            .collect();
    let mut s = state.lock().unwrap();
    if params.get("client_id") != Some(&s.client_id) {
        // github.com shows its 404 page for an unknown application.
        return HttpResponse::NotFound()
            .content_type("text/html; charset=utf-8")
            .body("<!DOCTYPE html><title>Page not found · GitHub</title><h1>404</h1>");
    }
    let state_param = params.get("state").cloned();
    let with_state = |mut pairs: Vec<(&'static str, String)>| {
        if let Some(st) = &state_param {
            pairs.push(("state", st.clone()));
        }
        pairs
    };
    let send = |base: &str, pairs: Vec<(&'static str, String)>| {
        let pairs: Vec<(&str, &str)> = pairs.iter().map(|(k, v)| (*k, v.as_str())).collect();
        redirect_to(base, &pairs)
    };
    let redirect_uri = params.get("redirect_uri").cloned();
    if let Some(given) = &redirect_uri
        && !redirect_allowed(&s.callback_url, given)
    {
        let error = with_state(vec![
            ("error", "redirect_uri_mismatch".into()),
            (
                "error_description",
                "The redirect_uri MUST match the registered callback URL for this application."
                    .into(),
            ),
            (
                "error_uri",
                format!(
                    "{DOCS}/troubleshooting-authorization-request-errors/#redirect-uri-mismatch"
                ),
            ),
        ]);
        return send(&s.callback_url, error);
    }
    let target = redirect_uri
        .clone()
        .unwrap_or_else(|| s.callback_url.clone());
    let challenge = match (
        params.get("code_challenge"),
        params.get("code_challenge_method").map(String::as_str),
    ) {
        (None, None) => None,
        (Some(c), Some("S256")) if c.len() == 43 => Some(c.clone()),
        _ => {
            return HttpResponse::BadRequest()
                .content_type("text/html; charset=utf-8")
                .body("<!DOCTYPE html><p>Invalid code_challenge or code_challenge_method (S256 only)</p>");
        }
    };
    let login = match &s.approval {
        Approval::Deny => {
            let error = with_state(vec![
                ("error", "access_denied".into()),
                (
                    "error_description",
                    "The user has denied your application access.".into(),
                ),
                (
                    "error_uri",
                    format!("{DOCS}/troubleshooting-authorization-request-errors/#access-denied"),
                ),
            ]);
            return send(&target, error);
        }
        Approval::As(login) => login.clone(),
    };
    let code = hex_token()[..20].to_owned();
    s.codes.insert(
        code.clone(),
        Grant {
            login,
            redirect_uri,
            // Requested space-delimited; granted as asked.
            scope: params
                .get("scope")
                .map(|s| {
                    s.split([' ', ','])
                        .filter(|x| !x.is_empty())
                        .map(str::to_owned)
                        .collect()
                })
                .unwrap_or_default(),
            challenge,
            issued: Instant::now(),
        },
    );
    send(&target, with_state(vec![("code", code)]))
}

/// An answer of `POST /login/oauth/access_token` (always 200), JSON or form-encoded by
/// the `Accept` header.
fn token_answer(req: &HttpRequest, fields: &[(&str, String)]) -> HttpResponse {
    let json = req
        .headers()
        .get("accept")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("application/json"));
    if json {
        let map: serde_json::Map<String, serde_json::Value> = fields
            .iter()
            .map(|(k, v)| ((*k).to_owned(), json!(v)))
            .collect();
        HttpResponse::Ok().json(map)
    } else {
        let body = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(fields.iter().map(|(k, v)| (*k, v.as_str())))
            .finish();
        HttpResponse::Ok()
            .content_type("application/x-www-form-urlencoded; charset=utf-8")
            .body(body)
    }
}

fn token_error(req: &HttpRequest, error: &str, description: &str, anchor: &str) -> HttpResponse {
    token_answer(
        req,
        &[
            ("error", error.to_owned()),
            ("error_description", description.to_owned()),
            (
                "error_uri",
                format!("{DOCS}/troubleshooting-oauth-app-access-token-request-errors/#{anchor}"),
            ),
        ],
    )
}

/// `client_id`/`client_secret` from the parameters, or from HTTP Basic.
fn client_credentials(req: &HttpRequest, params: &HashMap<String, String>) -> (String, String) {
    use base64::Engine;
    let basic = req
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic "))
        .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok())
        .and_then(|b| String::from_utf8(b).ok())
        .and_then(|pair| {
            let (id, secret) = pair.split_once(':')?;
            let decode = |x: &str| {
                url::form_urlencoded::parse(format!("x={x}").as_bytes())
                    .next()
                    .map(|(_, v)| v.into_owned())
                    .unwrap_or_default()
            };
            Some((decode(id), decode(secret)))
        });
    basic.unwrap_or_else(|| {
        (
            params.get("client_id").cloned().unwrap_or_default(),
            params.get("client_secret").cloned().unwrap_or_default(),
        )
    })
}

async fn access_token(
    req: HttpRequest,
    body: web::Bytes,
    state: web::Data<Shared>,
) -> HttpResponse {
    record(&state, &req, &body);
    // GitHub documents query parameters; form bodies are accepted as well.
    let params: HashMap<String, String> =
        url::form_urlencoded::parse(req.query_string().as_bytes())
            .chain(url::form_urlencoded::parse(&body))
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
    let (id, secret) = client_credentials(&req, &params);
    let mut s = state.lock().unwrap();
    if id != s.client_id || secret != s.client_secret {
        return token_error(
            &req,
            "incorrect_client_credentials",
            "The client_id and/or client_secret passed are incorrect.",
            "incorrect-client-credentials",
        );
    }
    let code = params.get("code").cloned().unwrap_or_default();
    // Single use: taken whatever comes next.
    let grant = s.codes.remove(&code);
    let redirect_mismatch = match (&grant, params.get("redirect_uri")) {
        (_, Some(given)) if !redirect_allowed(&s.callback_url, given) => true,
        (
            Some(Grant {
                redirect_uri: Some(asked),
                ..
            }),
            Some(given),
        ) => asked != given,
        _ => false,
    };
    if redirect_mismatch {
        return token_error(
            &req,
            "redirect_uri_mismatch",
            "The redirect_uri MUST match the registered callback URL for this application.",
            "redirect-uri-mismatch2",
        );
    }
    let bad_code = || {
        token_error(
            &req,
            "bad_verification_code",
            "The code passed is incorrect or expired.",
            "bad-verification-code",
        )
    };
    let Some(grant) = grant else {
        return bad_code();
    };
    if grant.issued.elapsed() > CODE_LIFETIME {
        return bad_code();
    }
    if let Some(challenge) = &grant.challenge {
        // GitHub documents no distinct error for a PKCE mismatch: the code's error here.
        let verifier = params
            .get("code_verifier")
            .map(String::as_str)
            .unwrap_or("");
        if portcullis::crypto::tokens::pkce_s256(verifier) != *challenge {
            return bad_code();
        }
    }
    let token = format!("gho_{}", &format!("{}{}", hex_token(), hex_token())[..36]);
    let scope = grant.scope.join(",");
    s.tokens.insert(token.clone(), (grant.login, grant.scope));
    token_answer(
        &req,
        &[
            ("access_token", token),
            ("scope", scope),
            ("token_type", "bearer".to_owned()),
        ],
    )
}

fn api_error(status: u16, message: &str, docs: &str) -> HttpResponse {
    HttpResponse::build(actix_web::http::StatusCode::from_u16(status).unwrap()).json(json!({
        "message": message,
        "documentation_url": docs,
        "status": status.to_string(),
    }))
}

/// The checks every API call makes; the user and the token's scopes when they pass.
fn api_caller(
    req: &HttpRequest,
    s: &State,
    docs: &str,
) -> Result<(GithubUser, Vec<String>), Box<HttpResponse>> {
    if !req.headers().contains_key("user-agent") {
        return Err(Box::new(HttpResponse::Forbidden()
            .content_type("text/plain; charset=utf-8")
            .body(
                "Request forbidden by administrative rules. Please make sure your request has a \
                 User-Agent header (https://docs.github.com/en/rest/overview/resources-in-the-rest-api#user-agent-required). \
                 Check https://developer.github.com for other possible causes.\n",
            )));
    }
    if let Some(status) = s.api_failure {
        return Err(Box::new(api_error(
            status,
            "Server Error",
            "https://docs.github.com/rest",
        )));
    }
    let Some(header) = req
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
    else {
        return Err(Box::new(api_error(401, "Requires authentication", docs)));
    };
    let token = header
        .split_once(' ')
        .filter(|(scheme, _)| {
            scheme.eq_ignore_ascii_case("bearer") || scheme.eq_ignore_ascii_case("token")
        })
        .map(|(_, t)| t.trim());
    let found = token
        .and_then(|t| s.tokens.get(t))
        .and_then(|(login, scope)| {
            let user = s.users.iter().find(|u| &u.login == login)?;
            Some((user.clone(), scope.clone()))
        });
    found.ok_or_else(|| {
        Box::new(api_error(
            401,
            "Bad credentials",
            "https://docs.github.com/rest",
        ))
    })
}

fn with_scopes(mut response: HttpResponse, scopes: &[String], accepted: &str) -> HttpResponse {
    let headers = response.headers_mut();
    headers.insert(
        actix_web::http::header::HeaderName::from_static("x-oauth-scopes"),
        scopes.join(", ").parse().unwrap(),
    );
    headers.insert(
        actix_web::http::header::HeaderName::from_static("x-accepted-oauth-scopes"),
        accepted.parse().unwrap(),
    );
    response
}

async fn user(req: HttpRequest, state: web::Data<Shared>) -> HttpResponse {
    record(&state, &req, &[]);
    let s = state.lock().unwrap();
    let docs = "https://docs.github.com/rest/users/users#get-the-authenticated-user";
    let (u, scopes) = match api_caller(&req, &s, docs) {
        Ok(found) => found,
        Err(response) => return *response,
    };
    let body = json!({
        "login": u.login,
        "id": u.id,
        "node_id": format!("MDQ6VXNlcj{}", u.id),
        "avatar_url": format!("https://avatars.githubusercontent.com/u/{}?v=4", u.id),
        "gravatar_id": "",
        "url": format!("{}/users/{}", s.api_url, u.login),
        "html_url": format!("{}/{}", s.web_url, u.login),
        "type": "User",
        "site_admin": false,
        "name": u.name,
        "company": null,
        "blog": "",
        "location": null,
        "email": u.public_email,
        "hireable": null,
        "bio": null,
        "twitter_username": null,
        "public_repos": 8,
        "public_gists": 8,
        "followers": 20,
        "following": 0,
        "created_at": "2011-01-25T18:44:36Z",
        "updated_at": "2026-01-22T12:00:00Z",
    });
    with_scopes(HttpResponse::Ok().json(body), &scopes, "")
}

async fn emails(req: HttpRequest, state: web::Data<Shared>) -> HttpResponse {
    record(&state, &req, &[]);
    let s = state.lock().unwrap();
    let docs =
        "https://docs.github.com/rest/users/emails#list-email-addresses-for-the-authenticated-user";
    let (u, scopes) = match api_caller(&req, &s, docs) {
        Ok(found) => found,
        Err(response) => return *response,
    };
    if let Some(status) = s.emails_failure {
        return api_error(status, "Server Error", docs);
    }
    if !scopes.iter().any(|x| x == "user:email" || x == "user") {
        // GitHub hides what a token's scopes do not reach.
        return with_scopes(api_error(404, "Not Found", docs), &scopes, "user");
    }
    let list: Vec<serde_json::Value> = u
        .emails
        .iter()
        .map(|e| {
            json!({
                "email": e.email,
                "primary": e.primary,
                "verified": e.verified,
                "visibility": e.visibility,
            })
        })
        .collect();
    with_scopes(HttpResponse::Ok().json(list), &scopes, "user")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::helpers::{Pkce, query};
    use reqwest::StatusCode;

    const UA: &str = "portcullis-test";

    async fn authorize_as(github: &FakeGithub, pkce: &Pkce, scope: &str) -> Url {
        let mut url = Url::parse(&format!("{}/login/oauth/authorize", github.web_url)).unwrap();
        url.query_pairs_mut()
            .append_pair("client_id", &github.client_id)
            .append_pair("redirect_uri", &github.callback_url)
            .append_pair("scope", scope)
            .append_pair("state", "st-1")
            .append_pair("code_challenge", &pkce.challenge)
            .append_pair("code_challenge_method", "S256");
        let response = super::super::browser_http().get(url).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::FOUND);
        super::super::location(&response).unwrap()
    }

    async fn exchange(
        github: &FakeGithub,
        code: &str,
        verifier: &str,
        accept_json: bool,
    ) -> reqwest::Response {
        let mut request = crate::helpers::http()
            .post(format!("{}/login/oauth/access_token", github.web_url))
            .header("user-agent", UA)
            .form(&[
                ("client_id", github.client_id.as_str()),
                ("client_secret", github.client_secret.as_str()),
                ("code", code),
                ("redirect_uri", github.callback_url.as_str()),
                ("code_verifier", verifier),
            ]);
        if accept_json {
            request = request.header("accept", "application/json");
        }
        request.send().await.unwrap()
    }

    #[tokio::test]
    async fn fake_github_signs_an_oauth_app_in_as_github_documents() {
        let callback = "http://127.0.0.1:1/upstream/github/callback";
        let github = FakeGithub::start(callback).await;
        let mut mona = GithubUser::new(1_000_001, "mona", "mona@work.example", true);
        mona.emails.push(GithubEmail {
            email: "mona@unverified.example".into(),
            primary: false,
            verified: false,
            visibility: None,
        });
        mona.public_email = Some("mona@work.example".into());
        github.add_user(mona);
        github.approve_as("mona");

        // Authorize: a code and the state back at the callback.
        let pkce = Pkce::new();
        let back = authorize_as(&github, &pkce, "read:user user:email").await;
        assert!(back.as_str().starts_with(callback), "{back}");
        assert_eq!(query(&back, "state").as_deref(), Some("st-1"));
        let code = query(&back, "code").unwrap();

        // A wrong verifier: 200 with an error; the code is spent either way.
        let wrong = exchange(&github, &code, &Pkce::new().verifier, true).await;
        assert_eq!(wrong.status(), StatusCode::OK);
        let body: serde_json::Value = wrong.json().await.unwrap();
        assert_eq!(body["error"], "bad_verification_code", "{body}");

        // The right verifier, JSON.
        let code = query(
            &authorize_as(&github, &pkce, "read:user user:email").await,
            "code",
        )
        .unwrap();
        let tokens: serde_json::Value = exchange(&github, &code, &pkce.verifier, true)
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(tokens["token_type"], "bearer");
        assert_eq!(tokens["scope"], "read:user,user:email");
        let token = tokens["access_token"].as_str().unwrap().to_owned();
        assert!(token.starts_with("gho_"));
        // Replayed: refused.
        let replay: serde_json::Value = exchange(&github, &code, &pkce.verifier, true)
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(replay["error"], "bad_verification_code");

        // Without `Accept: application/json`: form-encoded, errors as well.
        let code = query(&authorize_as(&github, &pkce, "user:email").await, "code").unwrap();
        let form = exchange(&github, &code, &pkce.verifier, false).await;
        assert!(
            form.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("application/x-www-form-urlencoded")
        );
        let text = form.text().await.unwrap();
        assert!(
            text.starts_with("access_token=gho_") && text.contains("token_type=bearer"),
            "{text}"
        );
        let bad_secret = crate::helpers::http()
            .post(format!("{}/login/oauth/access_token", github.web_url))
            .form(&[
                ("client_id", github.client_id.as_str()),
                ("client_secret", "nope"),
                ("code", "x"),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(bad_secret.status(), StatusCode::OK);
        assert!(
            bad_secret
                .text()
                .await
                .unwrap()
                .starts_with("error=incorrect_client_credentials&")
        );

        // The API: User-Agent required, Bearer or token.
        let api = crate::helpers::http();
        let no_ua = api
            .get(format!("{}/user", github.api_url))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        assert_eq!(no_ua.status(), StatusCode::FORBIDDEN);
        let me: serde_json::Value = api
            .get(format!("{}/user", github.api_url))
            .header("user-agent", UA)
            .header("authorization", format!("token {token}"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(me["id"], 1_000_001);
        assert_eq!(me["login"], "mona");
        assert_eq!(me["email"], "mona@work.example");
        let emails = api
            .get(format!("{}/user/emails", github.api_url))
            .header("user-agent", UA)
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        assert_eq!(emails.headers()["x-oauth-scopes"], "read:user, user:email");
        let emails: serde_json::Value = emails.json().await.unwrap();
        assert_eq!(emails[0]["email"], "mona@work.example");
        assert_eq!(emails[0]["verified"], true);
        assert_eq!(emails[1]["verified"], false);
        let bad = api
            .get(format!("{}/user", github.api_url))
            .header("user-agent", UA)
            .bearer_auth("gho_nope")
            .send()
            .await
            .unwrap();
        assert_eq!(bad.status(), StatusCode::UNAUTHORIZED);
        github.fail_api(Some(503));
        let failing = api
            .get(format!("{}/user", github.api_url))
            .header("user-agent", UA)
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        assert_eq!(failing.status(), StatusCode::SERVICE_UNAVAILABLE);
        github.fail_api(None);

        // Recorded: the verifier and the User-Agent the relying party sent.
        let exchanges = github.requests_to("/login/oauth/access_token");
        assert_eq!(exchanges[1].method, "POST");
        assert_eq!(
            exchanges[1].param("code_verifier"),
            Some(pkce.verifier.as_str())
        );
        assert_eq!(exchanges[1].header("User-Agent"), Some(UA));
        assert_eq!(github.requests_to("/user").len(), 4);

        // A redirect URI elsewhere, and a denial.
        let mut elsewhere =
            Url::parse(&format!("{}/login/oauth/authorize", github.web_url)).unwrap();
        elsewhere
            .query_pairs_mut()
            .append_pair("client_id", &github.client_id)
            .append_pair("redirect_uri", "http://127.0.0.1:1/other")
            .append_pair("state", "s2");
        let response = super::super::browser_http()
            .get(elsewhere)
            .send()
            .await
            .unwrap();
        let to = super::super::location(&response).unwrap();
        assert!(to.as_str().starts_with(callback));
        assert_eq!(
            query(&to, "error").as_deref(),
            Some("redirect_uri_mismatch")
        );
        github.deny();
        let denied = authorize_as(&github, &pkce, "user:email").await;
        assert_eq!(query(&denied, "error").as_deref(), Some("access_denied"));
        assert_eq!(query(&denied, "state").as_deref(), Some("st-1"));

        // Down.
        github.stop().await;
        assert!(
            crate::helpers::get(format!("{}/user", github.api_url))
                .await
                .is_err()
        );
    }
}
