//! The users page: the list, the search, and the form that adds a user.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use serde::Deserialize;
use serde_json::Value;

use super::{Console, Page, Refusal, finish, links, run, see_other, signed_in, verified};
use crate::admin::NewUser;
use crate::domain::Secret;
use crate::http::pages::render;
use crate::http::state::State;
use crate::http::ui::Ui;
use crate::protocol::ErrorCode;

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
    links: crate::http::paths::Links,
    csrf: String,
    actor: String,
    search: String,
    /// "N shown".
    shown: String,
    users: Vec<UserRow>,
    next_after: Option<String>,
    message: Option<String>,
    /// Sign-up and invitations (issue 23 §4): the invitation form is shown when `signup`
    /// allows them; `invited` says what was sent, `invite_error` why not.
    invitations: bool,
    invited: Option<String>,
    invite_error: Option<String>,
}

/// What the invitation form said last (`invitations::invite`).
#[derive(Default)]
pub(super) struct InviteOutcome {
    pub(super) invited: Option<String>,
    pub(super) error: Option<String>,
}

#[derive(Default, Deserialize)]
pub(super) struct UsersQuery {
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

pub(super) async fn users(
    req: HttpRequest,
    query: web::Query<UsersQuery>,
    state: State,
) -> HttpResponse {
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
    users_page_with(state, console, query, message, InviteOutcome::default()).await
}

pub(super) async fn users_page_with(
    state: &State,
    console: &Console,
    query: UsersQuery,
    message: Option<String>,
    invite: InviteOutcome,
) -> Page {
    let (search, after) = (query.search.clone(), query.after.clone());
    let page = run(state, console, move |admin| {
        admin.list_users(search.as_deref(), after.as_deref(), Some(50))
    })
    .await?;
    let status = if message.is_some() || invite.error.is_some() {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::OK
    };
    Ok(render(
        status,
        &UsersPage {
            ui: crate::http::ui::Ui::current(),
            links: links(state),
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
            invitations: state.settings.signup.invitations(),
            invited: invite.invited,
            invite_error: invite.error,
        },
    ))
}

#[derive(Deserialize)]
pub(super) struct NewUserForm {
    csrf: String,
    username: String,
    #[serde(default)]
    email: String,
    password: String,
    admin: Option<String>,
}

pub(super) async fn create_user(
    req: HttpRequest,
    form: web::Form<NewUserForm>,
    state: State,
) -> HttpResponse {
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
            Ok(user) => Ok(see_other(&links(&state).console_user(&user.id))),
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
