//! The admin console (`/admin`): server-rendered pages over the operations of `admin`.
//! It is an OIDC client of this provider like any other (`portcullis-console`, public,
//! code flow with PKCE): it signs in at `/authorize`, redeems its code through the same
//! grant code as `/token`, and keeps the access token, sealed under the key-encryption
//! key, in an HttpOnly cookie of its own. Every request checks that token as the admin
//! API does, so a disabled or demoted administrator is out at once.

use actix_web::cookie::{Cookie, SameSite, time::Duration as CookieDuration};
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::admin::{Actor, Admin, AdminError, AdminResult, CONSOLE_CLIENT_ID, NewUser, UserPatch};
use crate::crypto::tokens::{constant_time_eq, pkce_s256, random_token};
use crate::domain::{Secret, format_utc};
use crate::http::endpoints::at;
use crate::http::error::{PageError, page_response};
use crate::http::interaction::{redirect, with_cookie};
use crate::http::pages::render;
use crate::http::ui::Ui;
use crate::http::{State, client_address_of, from_our_pages, sign_out};
use crate::protocol::grants::{TokenRequest, exchange};
use crate::protocol::{ErrorCode, OAuthError, Params};

const SESSION_COOKIE: &str = "portcullis_console";
const LOGIN_COOKIE: &str = "portcullis_console_login";
const SESSION_CONTEXT: &str = "console-session";
const LOGIN_CONTEXT: &str = "console-login";

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(at("/admin").get(home).done())
        .service(at("/admin/callback").get(callback).done())
        .service(at("/admin/logout").post(logout).done())
        .service(at("/admin/users").get(users).post(create_user).done())
        .service(at("/admin/users/{id}").get(user).done())
        .service(at("/admin/users/{id}/{action}").post(user_action).done())
        .service(at("/admin/sessions/end").post(end_session).done())
        .service(
            at("/admin/clients")
                .get(clients)
                .post(register_client)
                .done(),
        )
        .service(
            at("/admin/clients/{id}/{action}")
                .post(client_action)
                .done(),
        )
        .service(at("/admin/keys").get(keys).done())
        .service(at("/admin/keys/rotate").post(rotate_keys).done())
        .service(at("/admin/audit").get(audit).done());
}

/// The console's own client registration (every instance makes sure it is there and
/// points at this issuer).
pub fn console_client_draft(
    settings: &crate::config::Settings,
) -> crate::protocol::registration::ClientDraft {
    crate::protocol::registration::ClientDraft {
        name: Some("Portcullis admin console".into()),
        redirect_uris: vec![settings.endpoint("/admin/callback")],
        post_logout_redirect_uris: vec![settings.endpoint("/admin")],
        auth_method: Some("none".into()),
        grant_types: vec!["authorization_code".into()],
        scope: Some(format!("openid profile {}", crate::admin::ADMIN_SCOPE)),
        // The provider's own app: its administrator is not asked to "allow" it.
        first_party: true,
        ..Default::default()
    }
}

/// A signed-in administrator on a console page.
struct Console {
    actor: Actor,
    /// The CSRF token of this sign-in's forms.
    csrf: String,
    address: String,
}

impl Console {
    fn name(&self) -> String {
        match &self.actor {
            Actor::User { username, .. } => username.clone(),
            other => other.label(),
        }
    }
}

fn cookie(state: &State, name: &'static str, value: String, max_age: i64) -> Cookie<'static> {
    let mut c = Cookie::build(name, value)
        .path(format!("{}/admin", state.settings.issuer_path))
        .http_only(true)
        .secure(state.settings.cookie_secure)
        // Lax, not Strict: a link to the console from another site (mail, chat) is a
        // cross-site navigation, and under Strict the sign-in's own redirects would never
        // carry the cookie the callback set. Forms are guarded by the CSRF token and the
        // Origin check, and Lax keeps the cookie off cross-site POSTs anyway.
        .same_site(SameSite::Lax)
        .finish();
    c.set_max_age(CookieDuration::seconds(max_age));
    c
}

/// Why a console page cannot be shown: not signed in (go sign in), or refused.
enum Refusal {
    SignIn,
    Page(PageError),
}

impl From<PageError> for Refusal {
    fn from(e: PageError) -> Self {
        Self::Page(e)
    }
}

impl From<OAuthError> for Refusal {
    fn from(e: OAuthError) -> Self {
        Self::Page(e.into())
    }
}

impl From<AdminError> for Refusal {
    fn from(e: AdminError) -> Self {
        Self::Page(admin_page_error(e))
    }
}

/// What an administrative operation refused, as the console's page shows it. A storage
/// failure's text names our hosts and tables: the page says only that it failed, the
/// log (`http::error`) says why.
fn admin_page_error(e: AdminError) -> PageError {
    PageError(match e {
        AdminError::Invalid { description, .. } | AdminError::Conflict(description) => {
            OAuthError::invalid_request(description)
        }
        AdminError::NotFound(what) => OAuthError::invalid_request(format!("no such {what}")),
        AdminError::Unavailable(cause) => OAuthError::unavailable(cause),
        AdminError::Internal(cause) => OAuthError::server(cause),
    })
}

type Page = Result<HttpResponse, Refusal>;

/// The administrator this browser signed in as, if its console token still holds.
async fn signed_in(req: &HttpRequest, state: &State) -> Result<Console, Refusal> {
    let Some(sealed) = req.cookie(SESSION_COOKIE).map(|c| c.value().to_owned()) else {
        return Err(Refusal::SignIn);
    };
    let Ok(token) = state.kek.decrypt(&sealed, SESSION_CONTEXT) else {
        return Err(Refusal::SignIn);
    };
    let token = String::from_utf8(token).map_err(|_| Refusal::SignIn)?;
    let actor = crate::http::blocking(state, move |ctx| {
        Ok(crate::admin::authenticate(&token, ctx))
    })
    .await?;
    let actor = match actor {
        Ok(actor) => actor,
        // Expired or revoked: sign in again (the SSO session makes it quick).
        Err(e) if e.code == ErrorCode::InvalidToken => return Err(Refusal::SignIn),
        Err(e) => return Err(Refusal::Page(e.into())),
    };
    Ok(Console {
        actor,
        csrf: state.kek.derive("console-form", &sealed),
        address: client_address_of(req, &state.settings),
    })
}

/// A console form: signed in, posted from our pages, with this sign-in's CSRF token.
async fn verified(req: &HttpRequest, state: &State, csrf: &str) -> Result<Console, Refusal> {
    let console = signed_in(req, state).await?;
    if !from_our_pages(req, &state.settings)
        || !constant_time_eq(console.csrf.as_bytes(), csrf.as_bytes())
    {
        return Err(OAuthError::invalid_request("the form could not be verified").into());
    }
    Ok(console)
}

/// Runs an administrative operation as the console's administrator.
async fn run<T, F>(state: &State, console: &Console, op: F) -> Result<T, Refusal>
where
    T: Send + 'static,
    F: FnOnce(&Admin<'_>) -> AdminResult<T> + Send + 'static,
{
    let actor = console.actor.clone();
    let address = console.address.clone();
    let outcome = crate::http::blocking(state, move |ctx| {
        Ok(op(&Admin::in_context(ctx, &actor, Some(&address))))
    })
    .await?;
    Ok(outcome?)
}

/// Sends the browser to sign in: authorize with PKCE, the state and verifier sealed in
/// a short-lived cookie.
fn sign_in(state: &State) -> HttpResponse {
    let verifier = random_token(32);
    let nonce = random_token(16);
    let login = serde_json::json!({ "state": nonce, "verifier": verifier });
    let Ok(sealed) = state
        .kek
        .encrypt(login.to_string().as_bytes(), LOGIN_CONTEXT)
    else {
        return PageError(OAuthError::server("cannot seal the console sign-in"))
            .render(&state.settings.issuer_path);
    };
    let Ok(mut url) = url::Url::parse(&state.settings.endpoint("/authorize")) else {
        return PageError(OAuthError::server("the issuer is not a URL"))
            .render(&state.settings.issuer_path);
    };
    url.query_pairs_mut()
        .append_pair("response_type", "code")
        .append_pair("client_id", CONSOLE_CLIENT_ID)
        .append_pair("redirect_uri", &state.settings.endpoint("/admin/callback"))
        .append_pair("scope", "openid admin")
        .append_pair("state", &nonce)
        .append_pair("code_challenge", &pkce_s256(&verifier))
        .append_pair("code_challenge_method", "S256");
    with_cookie(
        redirect(StatusCode::SEE_OTHER, url.as_str()),
        &cookie(state, LOGIN_COOKIE, sealed, 600),
    )
}

fn finish(state: &State, page: Page) -> HttpResponse {
    match page {
        Ok(response) => response,
        Err(Refusal::SignIn) => sign_in(state),
        Err(Refusal::Page(e)) => page_response(&state.settings, Err(e)),
    }
}

fn base(state: &State) -> String {
    state.settings.issuer_path.clone()
}

fn see_other(state: &State, path: &str) -> HttpResponse {
    redirect(
        StatusCode::SEE_OTHER,
        &format!("{}/admin{path}", state.settings.issuer_path),
    )
}

async fn home(state: State) -> HttpResponse {
    see_other(&state, "/users")
}

#[derive(Deserialize)]
struct CallbackQuery {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
}

#[derive(Deserialize)]
struct PendingLogin {
    state: String,
    verifier: String,
}

async fn callback(
    req: HttpRequest,
    query: web::Query<CallbackQuery>,
    state: State,
) -> HttpResponse {
    let page = callback_page(&req, query.into_inner(), &state).await;
    finish(&state, page)
}

async fn callback_page(req: &HttpRequest, query: CallbackQuery, state: &State) -> Page {
    let refused = || {
        OAuthError::new(
            ErrorCode::AccessDenied,
            "the console sign-in did not complete",
        )
    };
    let pending: PendingLogin = req
        .cookie(LOGIN_COOKIE)
        .and_then(|c| state.kek.decrypt(c.value(), LOGIN_CONTEXT).ok())
        .and_then(|plain| serde_json::from_slice(&plain).ok())
        .ok_or_else(refused)?;
    let same_state = query
        .state
        .as_deref()
        .is_some_and(|s| constant_time_eq(s.as_bytes(), pending.state.as_bytes()));
    if !same_state || query.error.is_some() {
        return Err(refused().into());
    }
    let code = query.code.ok_or_else(refused)?;
    let form = serde_urlencoded::to_string([
        ("grant_type", "authorization_code"),
        ("code", &code),
        ("redirect_uri", &state.settings.endpoint("/admin/callback")),
        ("code_verifier", &pending.verifier),
        ("client_id", CONSOLE_CLIENT_ID),
    ])
    .map_err(OAuthError::server)?;
    let params = Params::from_urlencoded(&form)?;
    let tokens = crate::http::blocking(state, move |ctx| {
        let client = ctx
            .store
            .find_client(CONSOLE_CLIENT_ID)?
            .ok_or_else(|| OAuthError::server("the console client is not registered"))?;
        exchange(TokenRequest::parse(&params)?, &client, ctx)
    })
    .await?;
    let sealed = state
        .kek
        .encrypt(tokens.access_token.as_bytes(), SESSION_CONTEXT)
        .map_err(OAuthError::server)?;
    let response = with_cookie(
        see_other(state, "/users"),
        &cookie(
            state,
            SESSION_COOKIE,
            sealed,
            state.settings.access_token_ttl,
        ),
    );
    Ok(with_cookie(
        response,
        &cookie(state, LOGIN_COOKIE, String::new(), 0),
    ))
}

#[derive(Deserialize)]
struct CsrfForm {
    csrf: String,
    confirm: Option<String>,
}

/// Signs out of the console and of the provider (RP-initiated logout, back to `/admin`).
async fn logout(req: HttpRequest, form: web::Form<CsrfForm>, state: State) -> HttpResponse {
    let page = async {
        verified(&req, &state, &form.csrf).await?;
        let mut url = url::Url::parse(&state.settings.endpoint("/logout"))
            .map_err(|_| OAuthError::server("the issuer is not a URL"))?;
        url.query_pairs_mut()
            .append_pair("client_id", CONSOLE_CLIENT_ID)
            .append_pair(
                "post_logout_redirect_uri",
                &state.settings.endpoint("/admin"),
            );
        Ok(with_cookie(
            redirect(StatusCode::SEE_OTHER, url.as_str()),
            &cookie(&state, SESSION_COOKIE, String::new(), 0),
        ))
    }
    .await;
    finish(&state, page)
}

#[derive(Template)]
#[template(path = "admin_confirm.html")]
struct ConfirmPage {
    ui: crate::http::ui::Ui,
    base: String,
    csrf: String,
    actor: String,
    question: String,
    consequence: String,
    verb: String,
    action: String,
    back: String,
}

/// A destructive action asks first: the same form again, with `confirm=yes`. `what` is
/// the catalogue key of the question (`{name}` in it), with `.why` and `.verb` beside it.
fn confirm(
    state: &State,
    console: &Console,
    what: &str,
    name: &str,
    action: String,
    back: String,
) -> HttpResponse {
    let ui = Ui::current();
    render(
        StatusCode::OK,
        &ConfirmPage {
            question: ui.fill(what, &[("name", name)]),
            consequence: ui.t(&format!("{what}.why")).to_owned(),
            verb: ui.t(&format!("{what}.verb")).to_owned(),
            ui,
            base: base(state),
            csrf: console.csrf.clone(),
            actor: console.name(),
            action,
            back,
        },
    )
}

struct UserRow {
    id: String,
    username: String,
    name: String,
    email: String,
    admin: bool,
    disabled: bool,
}

#[derive(Template)]
#[template(path = "admin_users.html")]
struct UsersPage {
    ui: crate::http::ui::Ui,
    base: String,
    csrf: String,
    actor: String,
    search: String,
    /// "N shown".
    shown: String,
    users: Vec<UserRow>,
    next_after: Option<String>,
    message: Option<String>,
}

#[derive(Deserialize)]
struct UsersQuery {
    search: Option<String>,
    after: Option<String>,
}

fn claim(view: &crate::admin::UserView, name: &str) -> String {
    view.claims
        .get(name)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned()
}

async fn users(req: HttpRequest, query: web::Query<UsersQuery>, state: State) -> HttpResponse {
    let page = async {
        let console = signed_in(&req, &state).await?;
        users_page(&state, &console, query.into_inner(), None).await
    }
    .await;
    finish(&state, page)
}

async fn users_page(
    state: &State,
    console: &Console,
    query: UsersQuery,
    message: Option<String>,
) -> Page {
    let (search, after) = (query.search.clone(), query.after.clone());
    let page = run(state, console, move |admin| {
        admin.list_users(search.as_deref(), after.as_deref(), Some(50))
    })
    .await?;
    let status = if message.is_some() {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::OK
    };
    Ok(render(
        status,
        &UsersPage {
            ui: crate::http::ui::Ui::current(),
            base: base(state),
            csrf: console.csrf.clone(),
            actor: console.name(),
            search: query.search.unwrap_or_default(),
            shown: Ui::current().fill(
                "console.users.shown",
                &[("count", &page.users.len().to_string())],
            ),
            users: page
                .users
                .iter()
                .map(|u| UserRow {
                    id: u.id.clone(),
                    username: u.username.clone(),
                    name: claim(u, "name"),
                    email: claim(u, "email"),
                    admin: u.admin,
                    disabled: u.disabled,
                })
                .collect(),
            next_after: page.next_after,
            message,
        },
    ))
}

#[derive(Deserialize)]
struct NewUserForm {
    csrf: String,
    username: String,
    #[serde(default)]
    email: String,
    password: String,
    admin: Option<String>,
}

async fn create_user(req: HttpRequest, form: web::Form<NewUserForm>, state: State) -> HttpResponse {
    let page = async {
        let form = form.into_inner();
        let console = verified(&req, &state, &form.csrf).await?;
        let mut claims = serde_json::Map::new();
        if !form.email.trim().is_empty() {
            claims.insert("email".into(), Value::String(form.email.trim().to_owned()));
        }
        let new = NewUser {
            username: form.username,
            password: Secret::new(form.password),
            admin: form.admin.is_some(),
            claims,
        };
        match run(&state, &console, move |admin| admin.create_user(new)).await {
            Ok(user) => Ok(see_other(&state, &format!("/users/{}", user.id))),
            // Bad input is said on the form, which stays as it was.
            Err(Refusal::Page(e)) if e.0.code == ErrorCode::InvalidRequest => {
                let message = e.0.description.map(|d| d.into_owned());
                users_page(
                    &state,
                    &console,
                    UsersQuery {
                        search: None,
                        after: None,
                    },
                    message,
                )
                .await
            }
            Err(other) => Err(other),
        }
    }
    .await;
    finish(&state, page)
}

struct ConsentRow {
    client_id: String,
    scope: String,
    since: String,
}

struct SessionRow {
    sid: String,
    browser: String,
    address: String,
    since: String,
}

#[derive(Template)]
#[template(path = "admin_user.html")]
struct UserPage {
    ui: crate::http::ui::Ui,
    base: String,
    csrf: String,
    actor: String,
    user: crate::admin::UserView,
    claims: Vec<(String, String)>,
    sessions: Vec<SessionRow>,
    consents: Vec<ConsentRow>,
    message: Option<String>,
}

#[derive(Deserialize)]
struct UserQuery {
    done: Option<String>,
}

async fn user(
    req: HttpRequest,
    path: web::Path<String>,
    query: web::Query<UserQuery>,
    state: State,
) -> HttpResponse {
    let page = async {
        let console = signed_in(&req, &state).await?;
        let id = path.into_inner();
        let (user, sessions, consents) = run(&state, &console, move |admin| {
            Ok((
                admin.get_user(&id)?,
                admin.list_sessions(&id)?,
                admin.list_consents(&id)?,
            ))
        })
        .await?;
        let claims = user
            .claims
            .iter()
            .map(|(k, v)| {
                (
                    k.clone(),
                    v.as_str().map_or_else(|| v.to_string(), str::to_owned),
                )
            })
            .collect();
        let message = query.done.as_deref().map(|done| {
            let key = match done {
                "password" => "console.done.password",
                "session" => "console.done.session",
                "withdrawn" => "console.done.withdrawn",
                _ => "console.done.saved",
            };
            Ui::current().t(key).to_owned()
        });
        Ok(render(
            StatusCode::OK,
            &UserPage {
                ui: crate::http::ui::Ui::current(),
                base: base(&state),
                csrf: console.csrf.clone(),
                actor: console.name(),
                claims,
                sessions: sessions
                    .into_iter()
                    .map(|s| SessionRow {
                        sid: s.sid,
                        browser: s.browser,
                        address: s.ip_address.unwrap_or_default(),
                        since: format_utc(s.created_at),
                    })
                    .collect(),
                consents: consents
                    .into_iter()
                    .map(|c| ConsentRow {
                        client_id: c.client_id,
                        scope: c.scope,
                        since: format_utc(c.granted_at),
                    })
                    .collect(),
                user,
                message,
            },
        ))
    }
    .await;
    finish(&state, page)
}

#[derive(Deserialize)]
struct UserActionForm {
    csrf: String,
    confirm: Option<String>,
    password: Option<String>,
    client_id: Option<String>,
}

async fn user_action(
    req: HttpRequest,
    path: web::Path<(String, String)>,
    form: web::Form<UserActionForm>,
    state: State,
) -> HttpResponse {
    let page = async {
        let (id, action) = path.into_inner();
        let form = form.into_inner();
        let console = verified(&req, &state, &form.csrf).await?;
        let back = format!("/users/{id}");
        match action.as_str() {
            "disable" | "enable" => {
                let patch = UserPatch {
                    disabled: Some(action == "disable"),
                    ..UserPatch::default()
                };
                let target = id.clone();
                let (_, ended) = run(&state, &console, move |admin| {
                    admin.update_user(&target, &patch)
                })
                .await?;
                sign_out::forget(&state, &ended).await?;
                Ok(see_other(&state, &format!("{back}?done=saved")))
            }
            "password" => {
                let password = Secret::new(form.password.unwrap_or_default());
                let target = id.clone();
                let ended = run(&state, &console, move |admin| {
                    admin.set_password(&target, &password)
                })
                .await?;
                sign_out::forget(&state, &ended).await?;
                Ok(see_other(&state, &format!("{back}?done=password")))
            }
            "withdraw" => {
                let client = form.client_id.unwrap_or_default();
                let target = id.clone();
                run(&state, &console, move |admin| {
                    admin.withdraw_consent(&target, &client)
                })
                .await?;
                Ok(see_other(&state, &format!("{back}?done=withdrawn")))
            }
            "delete" if form.confirm.as_deref() != Some("yes") => {
                let target = id.clone();
                let user = run(&state, &console, move |admin| admin.get_user(&target)).await?;
                Ok(confirm(
                    &state,
                    &console,
                    "console.confirm.delete_user",
                    &user.username,
                    format!("{}/admin/users/{id}/delete", base(&state)),
                    format!("{}/admin{back}", base(&state)),
                ))
            }
            "delete" => {
                let ended = run(&state, &console, move |admin| admin.delete_user(&id)).await?;
                sign_out::forget(&state, &ended).await?;
                Ok(see_other(&state, "/users"))
            }
            _ => Err(OAuthError::invalid_request("no such action").into()),
        }
    }
    .await;
    finish(&state, page)
}

#[derive(Deserialize)]
struct EndSessionForm {
    csrf: String,
    sid: String,
}

async fn end_session(
    req: HttpRequest,
    form: web::Form<EndSessionForm>,
    state: State,
) -> HttpResponse {
    let page = async {
        let form = form.into_inner();
        let console = verified(&req, &state, &form.csrf).await?;
        let sid = form.sid.clone();
        let ended = run(&state, &console, move |admin| admin.end_session(&sid)).await?;
        sign_out::forget(&state, &ended).await?;
        // Back to the session's user (from the record, not from the form).
        let user = ended
            .sessions
            .first()
            .map(|s| s.user_id.clone())
            .unwrap_or_default();
        Ok(see_other(&state, &format!("/users/{user}?done=session")))
    }
    .await;
    finish(&state, page)
}

struct ClientRow {
    name: String,
    client_id: String,
    auth_method: String,
    has_secret: bool,
    deletable: bool,
}

/// A client just registered (or given a new secret): shown once.
struct Registered {
    /// "NAME is registered".
    title: String,
    client_id: String,
    client_secret: Option<String>,
}

#[derive(Template)]
#[template(path = "admin_clients.html")]
struct ClientsPage {
    ui: crate::http::ui::Ui,
    base: String,
    csrf: String,
    actor: String,
    clients: Vec<ClientRow>,
    registered: Option<Registered>,
    discovery_url: String,
    message: Option<String>,
}

async fn clients(req: HttpRequest, state: State) -> HttpResponse {
    let page = async {
        let console = signed_in(&req, &state).await?;
        clients_page(&state, &console, None, None).await
    }
    .await;
    finish(&state, page)
}

async fn clients_page(
    state: &State,
    console: &Console,
    registered: Option<Registered>,
    message: Option<String>,
) -> Page {
    let list = run(state, console, |admin| admin.list_clients()).await?;
    let text = |v: &Value, k: &str| v[k].as_str().unwrap_or_default().to_owned();
    let status = if message.is_some() {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::OK
    };
    Ok(render(
        status,
        &ClientsPage {
            ui: crate::http::ui::Ui::current(),
            base: base(state),
            csrf: console.csrf.clone(),
            actor: console.name(),
            clients: list
                .iter()
                .map(|c| ClientRow {
                    name: text(c, "client_name"),
                    client_id: text(c, "client_id"),
                    auth_method: text(c, "token_endpoint_auth_method"),
                    has_secret: c.get("client_secret_expires_at").is_some(),
                    deletable: c["client_id"] != CONSOLE_CLIENT_ID,
                })
                .collect(),
            registered,
            discovery_url: state.settings.endpoint("/.well-known/openid-configuration"),
            message,
        },
    ))
}

#[derive(Deserialize)]
struct RegisterForm {
    csrf: String,
    name: String,
    redirect_uri: String,
    kind: String,
}

async fn register_client(
    req: HttpRequest,
    form: web::Form<RegisterForm>,
    state: State,
) -> HttpResponse {
    let page = async {
        let form = form.into_inner();
        let console = verified(&req, &state, &form.csrf).await?;
        let draft = crate::protocol::registration::ClientDraft {
            name: Some(form.name.clone()),
            redirect_uris: vec![form.redirect_uri.trim().to_owned()],
            auth_method: (form.kind == "public").then(|| "none".to_owned()),
            ..Default::default()
        };
        match run(&state, &console, move |admin| admin.register_client(draft)).await {
            Ok(r) => {
                let shown = Registered {
                    title: Ui::current().fill("console.registered", &[("name", &form.name)]),
                    client_id: r.client_id,
                    client_secret: r.client_secret,
                };
                clients_page(&state, &console, Some(shown), None).await
            }
            Err(Refusal::Page(e)) if e.0.code == ErrorCode::InvalidRequest => {
                let message = e.0.description.map(|d| d.into_owned());
                clients_page(&state, &console, None, message).await
            }
            Err(other) => Err(other),
        }
    }
    .await;
    finish(&state, page)
}

async fn client_action(
    req: HttpRequest,
    path: web::Path<(String, String)>,
    form: web::Form<CsrfForm>,
    state: State,
) -> HttpResponse {
    let page = async {
        let (id, action) = path.into_inner();
        let console = verified(&req, &state, &form.csrf).await?;
        let confirmed = form.confirm.as_deref() == Some("yes");
        let name = if confirmed {
            String::new()
        } else {
            let target = id.clone();
            let client = run(&state, &console, move |admin| admin.get_client(&target)).await?;
            client["client_name"].as_str().unwrap_or(&id).to_owned()
        };
        let action_url = format!("{}/admin/clients/{id}/{action}", base(&state));
        let back = format!("{}/admin/clients", base(&state));
        match (action.as_str(), confirmed) {
            ("secret", false) => Ok(confirm(
                &state,
                &console,
                "console.confirm.new_secret",
                &name,
                action_url,
                back,
            )),
            ("secret", true) => {
                let r = run(&state, &console, move |admin| admin.rotate_secret(&id)).await?;
                let shown = Registered {
                    title: Ui::current().fill(
                        "console.registered",
                        &[(
                            "name",
                            r.metadata["client_name"].as_str().unwrap_or_default(),
                        )],
                    ),
                    client_id: r.client_id,
                    client_secret: r.client_secret,
                };
                clients_page(&state, &console, Some(shown), None).await
            }
            ("delete", false) => Ok(confirm(
                &state,
                &console,
                "console.confirm.delete_app",
                &name,
                action_url,
                back,
            )),
            ("delete", true) => {
                run(&state, &console, move |admin| admin.delete_client(&id)).await?;
                Ok(see_other(&state, "/clients"))
            }
            _ => Err(OAuthError::invalid_request("no such action").into()),
        }
    }
    .await;
    finish(&state, page)
}

struct KeyRow {
    kid: String,
    alg: String,
    created: String,
    activates: String,
    retires: String,
}

#[derive(Template)]
#[template(path = "admin_keys.html")]
struct KeysPage {
    ui: crate::http::ui::Ui,
    base: String,
    csrf: String,
    actor: String,
    keys: Vec<KeyRow>,
}

async fn keys(req: HttpRequest, state: State) -> HttpResponse {
    let page = async {
        let console = signed_in(&req, &state).await?;
        let keys = run(&state, &console, |admin| admin.list_keys()).await?;
        Ok(render(
            StatusCode::OK,
            &KeysPage {
                ui: crate::http::ui::Ui::current(),
                base: base(&state),
                csrf: console.csrf.clone(),
                actor: console.name(),
                keys: keys
                    .into_iter()
                    .map(|k| KeyRow {
                        kid: k.kid,
                        alg: k.alg,
                        created: format_utc(k.created_at),
                        activates: format_utc(k.activates_at),
                        retires: k.retires_at.map(format_utc).unwrap_or_else(|| "-".into()),
                    })
                    .collect(),
            },
        ))
    }
    .await;
    finish(&state, page)
}

#[derive(Deserialize)]
struct RotateForm {
    csrf: String,
    #[serde(default)]
    alg: String,
}

async fn rotate_keys(req: HttpRequest, form: web::Form<RotateForm>, state: State) -> HttpResponse {
    let page = async {
        let form = form.into_inner();
        let console = verified(&req, &state, &form.csrf).await?;
        let alg = Some(form.alg).filter(|a| !a.is_empty());
        let ring = state.keys.clone();
        run(&state, &console, move |admin| {
            admin.rotate_keys(alg.as_deref(), crate::keyring::DEFAULT_ACTIVATION_DELAY)?;
            let kek = admin
                .kek
                .ok_or_else(|| AdminError::Internal("no key-encryption key".into()))?;
            ring.reload(admin.store, kek, admin.now)
                .map_err(|e| AdminError::Internal(e.to_string()))
        })
        .await?;
        Ok(see_other(&state, "/keys"))
    }
    .await;
    finish(&state, page)
}

struct EventRow {
    at: String,
    actor: String,
    action: String,
    target: String,
    address: String,
}

#[derive(Template)]
#[template(path = "admin_audit.html")]
struct AuditPage {
    ui: crate::http::ui::Ui,
    base: String,
    csrf: String,
    actor: String,
    events: Vec<EventRow>,
    older: Option<i64>,
}

#[derive(Deserialize, Serialize)]
struct AuditQuery {
    before: Option<i64>,
}

async fn audit(req: HttpRequest, query: web::Query<AuditQuery>, state: State) -> HttpResponse {
    let page = async {
        let console = signed_in(&req, &state).await?;
        let before = query.before;
        let events = run(&state, &console, move |admin| {
            admin.list_audit(before, Some(100))
        })
        .await?;
        let older = (events.len() == 100)
            .then(|| events.last().map(|e| e.id))
            .flatten();
        Ok(render(
            StatusCode::OK,
            &AuditPage {
                ui: crate::http::ui::Ui::current(),
                base: base(&state),
                csrf: console.csrf.clone(),
                actor: console.name(),
                events: events
                    .into_iter()
                    .map(|e| EventRow {
                        at: format_utc(e.at),
                        actor: e.actor,
                        action: e.action,
                        target: e.target.unwrap_or_default(),
                        address: e.address.unwrap_or_default(),
                    })
                    .collect(),
                older,
            },
        ))
    }
    .await;
    finish(&state, page)
}

#[cfg(test)]
mod tests {
    use super::admin_page_error;
    use crate::admin::AdminError;

    #[test]
    fn storage_failures_are_logged_not_shown() {
        let text = "could not connect to server: db.internal:5432";
        for refused in [
            AdminError::Unavailable(text.into()),
            AdminError::Internal(text.into()),
        ] {
            let error = admin_page_error(refused).0;
            assert!(
                !error.description.as_deref().unwrap_or("").contains(text),
                "{error:?}"
            );
            // `http::error` logs the cause of an error that has one.
            assert_eq!(error.cause.as_deref(), Some(text));
        }
    }
}
