//! The groups pages: every group with its member count and a form to create one
//! (`GROUPS`), and one group (`GROUP`): its members, adding one by username, removing
//! one, renaming the group and deleting it (which asks first).

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use serde::Deserialize;

use super::{Console, Page, Refusal, confirm, finish, links, run, see_other, signed_in, verified};
use crate::admin::GroupView;
use crate::domain::format_utc;
use crate::http::pages::render;
use crate::http::state::State;
use crate::http::ui::Ui;
use crate::protocol::{ErrorCode, OAuthError};

#[derive(Template)]
#[template(path = "admin_groups.html")]
struct GroupsPage {
    ui: Ui,
    links: crate::http::paths::Links,
    csrf: String,
    actor: String,
    groups: Vec<GroupView>,
    message: Option<String>,
}

struct MemberRow {
    id: String,
    username: String,
    added: String,
}

#[derive(Template)]
#[template(path = "admin_group.html")]
struct GroupPage {
    ui: Ui,
    links: crate::http::paths::Links,
    csrf: String,
    actor: String,
    group: GroupView,
    /// "N members".
    members_shown: String,
    members: Vec<MemberRow>,
    /// What the last change did.
    done: Option<String>,
    /// Why the last change was refused.
    message: Option<String>,
}

/// A refusal the person can act on (a bad or taken name, an unknown user), said on the
/// page; anything else as any console error.
fn said_on_page(refusal: Refusal) -> Result<String, Refusal> {
    match refusal {
        Refusal::Page(e) if e.0.code == ErrorCode::InvalidRequest => {
            Ok(e.0.description.map(|d| d.into_owned()).unwrap_or_default())
        }
        other => Err(other),
    }
}

pub(super) async fn groups(req: HttpRequest, state: State) -> HttpResponse {
    let page = async {
        let console = signed_in(&req, &state).await?;
        groups_page(&state, &console, None).await
    }
    .await;
    finish(&state, page)
}

async fn groups_page(state: &State, console: &Console, message: Option<String>) -> Page {
    let groups = run(state, console, |admin| admin.list_groups()).await?;
    let status = if message.is_some() {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::OK
    };
    Ok(render(
        status,
        &GroupsPage {
            ui: Ui::current(),
            links: links(state),
            csrf: console.csrf.clone(),
            actor: console.name(),
            groups,
            message,
        },
    ))
}

#[derive(Deserialize)]
pub(super) struct CreateForm {
    csrf: String,
    name: String,
}

pub(super) async fn create_group(
    req: HttpRequest,
    form: web::Form<CreateForm>,
    state: State,
) -> HttpResponse {
    let page = async {
        let form = form.into_inner();
        let console = verified(&req, &state, &form.csrf).await?;
        let name = form.name;
        match run(&state, &console, move |admin| admin.create_group(&name)).await {
            Ok(group) => Ok(see_other(&links(&state).console_group(&group.id))),
            Err(refusal) => groups_page(&state, &console, Some(said_on_page(refusal)?)).await,
        }
    }
    .await;
    finish(&state, page)
}

#[derive(Deserialize)]
pub(super) struct GroupQuery {
    done: Option<String>,
}

pub(super) async fn group(
    req: HttpRequest,
    path: web::Path<String>,
    query: web::Query<GroupQuery>,
    state: State,
) -> HttpResponse {
    let page = async {
        let console = signed_in(&req, &state).await?;
        let done = query.done.as_deref().map(|done| {
            let key = match done {
                "added" => "console.groups.done.added",
                "removed" => "console.groups.done.removed",
                "renamed" => "console.groups.done.renamed",
                _ => "console.done.saved",
            };
            Ui::current().t(key).to_owned()
        });
        group_page(&state, &console, path.into_inner(), done, None).await
    }
    .await;
    finish(&state, page)
}

async fn group_page(
    state: &State,
    console: &Console,
    id: String,
    done: Option<String>,
    message: Option<String>,
) -> Page {
    let (group, members) = run(state, console, move |admin| {
        Ok((admin.get_group(&id)?, admin.list_members(&id)?))
    })
    .await?;
    let ui = Ui::current();
    let status = if message.is_some() {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::OK
    };
    Ok(render(
        status,
        &GroupPage {
            members_shown: match group.members {
                0 => ui.t("console.groups.members_none").to_owned(),
                1 => ui.t("console.groups.members_one").to_owned(),
                n => ui.fill("console.groups.members_many", &[("count", &n.to_string())]),
            },
            ui,
            links: links(state),
            csrf: console.csrf.clone(),
            actor: console.name(),
            group,
            members: members
                .into_iter()
                .map(|m| MemberRow {
                    id: m.id,
                    username: m.username,
                    added: format_utc(m.added_at),
                })
                .collect(),
            done,
            message,
        },
    ))
}

#[derive(Deserialize)]
pub(super) struct GroupActionForm {
    csrf: String,
    confirm: Option<String>,
    name: Option<String>,
    username: Option<String>,
    user_id: Option<String>,
}

pub(super) async fn group_action(
    req: HttpRequest,
    path: web::Path<(String, String)>,
    form: web::Form<GroupActionForm>,
    state: State,
) -> HttpResponse {
    let page = async {
        let (id, action) = path.into_inner();
        let form = form.into_inner();
        let console = verified(&req, &state, &form.csrf).await?;
        let back = links(&state).console_group(&id);
        let target = id.clone();
        let outcome = match action.as_str() {
            "rename" => {
                let name = form.name.unwrap_or_default();
                run(&state, &console, move |admin| {
                    admin.rename_group(&target, &name).map(|_| "renamed")
                })
                .await
            }
            "add_member" => {
                let username = form.username.unwrap_or_default();
                run(&state, &console, move |admin| {
                    admin.add_member_named(&target, &username).map(|_| "added")
                })
                .await
            }
            "remove_member" => {
                let user_id = form.user_id.unwrap_or_default();
                run(&state, &console, move |admin| {
                    admin.remove_member(&target, &user_id).map(|()| "removed")
                })
                .await
            }
            "delete" if form.confirm.as_deref() != Some("yes") => {
                let group = run(&state, &console, move |admin| admin.get_group(&target)).await?;
                return Ok(confirm(
                    &state,
                    &console,
                    "console.confirm.delete_group",
                    &group.name,
                    links(&state).console_group_action(&id, "delete"),
                    back,
                ));
            }
            "delete" => {
                run(&state, &console, move |admin| admin.delete_group(&target)).await?;
                return Ok(see_other(&links(&state).console_groups()));
            }
            _ => return Err(OAuthError::invalid_request("no such action").into()),
        };
        match outcome {
            Ok(done) => Ok(see_other(&format!("{back}?done={done}"))),
            Err(refusal) => {
                let message = said_on_page(refusal)?;
                group_page(&state, &console, id, None, Some(message)).await
            }
        }
    }
    .await;
    finish(&state, page)
}
