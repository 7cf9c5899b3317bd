//! The admin console (`/admin`): server-rendered pages over the operations of `admin`.
//! It is an OIDC client of this provider like any other (`portcullis-console`, public,
//! code flow with PKCE): it signs in at `/authorize`, redeems its code through the same
//! grant code as `/token`, and keeps the access token, sealed under the key-encryption
//! key, in an HttpOnly cookie of its own. Every request checks that token as the admin
//! API does, so a disabled or demoted administrator is out at once.
//!
//! One module per page: `sign_in` (the sign-in, its callback, and signing out), `users`,
//! `user` (one user, its sessions and consents), `groups` (the groups and one group),
//! `clients`, `keys`, `audit`. This one
//! holds what they share: who is signed in, the CSRF check, the cookies and the refusals.

mod audit;
mod clients;
mod groups;
mod invitations;
mod keys;
mod sign_in;
mod upstreams;
mod user;
mod users;

use actix_web::cookie::{Cookie, SameSite, time::Duration as CookieDuration};
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use serde::Deserialize;

use crate::admin::{Actor, Admin, AdminError, AdminResult};
use crate::crypto::tokens::constant_time_eq;
use crate::http::client_address::client_address_of;
use crate::http::csrf::from_our_pages;
use crate::http::error::{PageError, page_response};
use crate::http::interaction::redirect;
use crate::http::pages::render;
use crate::http::paths::{Links, console};
use crate::http::routes::at;
use crate::http::state::State;
use crate::http::ui::Ui;
use crate::protocol::{ErrorCode, OAuthError};

const SESSION_COOKIE: &str = "portcullis_console";
const LOGIN_COOKIE: &str = "portcullis_console_login";
const SESSION_CONTEXT: &str = "console-session";
const LOGIN_CONTEXT: &str = "console-login";

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(at(console::HOME).get(home).done())
        .service(at(console::CALLBACK).get(sign_in::callback).done())
        .service(at(console::LOGOUT).post(sign_in::logout).done())
        .service(
            at(console::USERS)
                .get(users::users)
                .post(users::create_user)
                .done(),
        )
        .service(at(console::USER).get(user::user).done())
        .service(at(console::USER_ACTION).post(user::user_action).done())
        .service(at(console::END_SESSION).post(user::end_session).done())
        .service(
            at(console::CLIENTS)
                .get(clients::clients)
                .post(clients::register_client)
                .done(),
        )
        .service(
            at(console::CLIENT_ACTION)
                .post(clients::client_action)
                .done(),
        )
        .service(at(console::KEYS).get(keys::keys).done())
        .service(at(console::UPSTREAMS).get(upstreams::upstreams).done())
        .service(at(console::ROTATE_KEYS).post(keys::rotate_keys).done())
        .service(at(console::AUDIT).get(audit::audit).done())
        .service(
            at(console::GROUPS)
                .get(groups::groups)
                .post(groups::create_group)
                .done(),
        )
        .service(at(console::GROUP).get(groups::group).done())
        .service(at(console::GROUP_ACTION).post(groups::group_action).done())
        .service(at(console::INVITATIONS).post(invitations::invite).done());
}

/// The console's own client registration (every instance makes sure it is there and
/// points at this issuer).
pub fn console_client_draft(
    settings: &crate::config::Settings,
) -> crate::protocol::registration::ClientDraft {
    crate::protocol::registration::ClientDraft {
        name: Some("Portcullis admin console".into()),
        redirect_uris: vec![settings.endpoint(console::CALLBACK)],
        post_logout_redirect_uris: vec![settings.endpoint(console::HOME)],
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
        .path(format!("{}{}", state.settings.issuer_path, console::HOME))
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
    let actor = crate::http::state::blocking(state, move |ctx| {
        // The console's own token, from its own sign-in: never DPoP-bound.
        Ok(crate::admin::authenticate(
            &token,
            crate::protocol::dpop::Presented::Bearer,
            ctx,
        ))
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
    let settings = state.settings.clone();
    let outcome = crate::http::state::blocking(state, move |ctx| {
        Ok(op(&Admin::in_context(
            ctx,
            &settings,
            &actor,
            Some(&address),
        )))
    })
    .await?;
    Ok(outcome?)
}

fn finish(state: &State, page: Page) -> HttpResponse {
    match page {
        Ok(response) => response,
        Err(Refusal::SignIn) => sign_in::start(state),
        Err(Refusal::Page(e)) => page_response(&state.settings, Err(e)),
    }
}

/// Where the console's links and redirects go, below the issuer.
fn links(state: &State) -> Links {
    Links::new(&state.settings.issuer_path)
}

fn see_other(location: &str) -> HttpResponse {
    redirect(StatusCode::SEE_OTHER, location)
}

async fn home(state: State) -> HttpResponse {
    see_other(&links(&state).console_users())
}

#[derive(Deserialize)]
struct CsrfForm {
    csrf: String,
    confirm: Option<String>,
}

#[derive(Template)]
#[template(path = "admin_confirm.html")]
struct ConfirmPage {
    ui: crate::http::ui::Ui,
    links: Links,
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
            links: links(state),
            csrf: console.csrf.clone(),
            actor: console.name(),
            action,
            back,
        },
    )
}

#[cfg(test)]
mod tests {
    use super::{admin_page_error, console_client_draft};
    use crate::admin::AdminError;
    use crate::config::Settings;
    use crate::http::paths::console::{CALLBACK, HOME};

    #[test]
    fn the_console_client_comes_back_to_the_console() {
        let settings = Settings::from_sources(None, |_| None).unwrap();
        let draft = console_client_draft(&settings);
        assert_eq!(draft.redirect_uris, [settings.endpoint("/admin/callback")]);
        assert_eq!(
            draft.post_logout_redirect_uris,
            [settings.endpoint("/admin")]
        );
        // The console's cookies (path `HOME`) reach its callback.
        assert!(CALLBACK.starts_with(&format!("{HOME}/")));
    }

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
