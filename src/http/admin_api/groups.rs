//! The admin API's groups: `/admin/api/groups[/{id}[/members[/{user_id}]]]`.

use actix_web::{HttpRequest, web};

use super::{JsonBody, Reply, created, no_content, ok, run};
use crate::admin::{GroupNameBody, NewMember};
use crate::http::paths::{admin_api, fill};
use crate::http::routes::at;
use crate::http::state::State;

pub(super) fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        at(admin_api::GROUPS)
            .get(list_groups)
            .post(create_group)
            .done(),
    )
    .service(
        at(admin_api::GROUP)
            .get(get_group)
            .patch(rename_group)
            .delete(delete_group)
            .done(),
    )
    .service(
        at(admin_api::GROUP_MEMBERS)
            .get(list_members)
            .post(add_member)
            .done(),
    )
    .service(at(admin_api::GROUP_MEMBER).delete(remove_member).done());
}

async fn list_groups(req: HttpRequest, state: State) -> Reply {
    Ok(ok(run(&req, &state, |admin, _| admin.list_groups()).await?))
}

async fn create_group(req: HttpRequest, body: web::Bytes, state: State) -> Reply {
    let body = JsonBody::of(&req, body);
    let group = run(&req, &state, move |admin, _| {
        let GroupNameBody { name } = body.parse()?;
        admin.create_group(&name)
    })
    .await?;
    let location = state
        .settings
        .endpoint(&fill(admin_api::GROUP, &[&group.id]));
    Ok(created(location, group))
}

async fn get_group(req: HttpRequest, path: web::Path<String>, state: State) -> Reply {
    let id = path.into_inner();
    Ok(ok(
        run(&req, &state, move |admin, _| admin.get_group(&id)).await?
    ))
}

/// `{"name"}`: the one thing about a group that changes.
async fn rename_group(
    req: HttpRequest,
    path: web::Path<String>,
    body: web::Bytes,
    state: State,
) -> Reply {
    let id = path.into_inner();
    let body = JsonBody::of(&req, body);
    let group = run(&req, &state, move |admin, _| {
        let GroupNameBody { name } = body.parse()?;
        admin.rename_group(&id, &name)
    })
    .await?;
    Ok(ok(group))
}

async fn delete_group(req: HttpRequest, path: web::Path<String>, state: State) -> Reply {
    let id = path.into_inner();
    run(&req, &state, move |admin, _| admin.delete_group(&id)).await?;
    Ok(no_content())
}

async fn list_members(req: HttpRequest, path: web::Path<String>, state: State) -> Reply {
    let id = path.into_inner();
    Ok(ok(run(&req, &state, move |admin, _| {
        admin.list_members(&id)
    })
    .await?))
}

/// `{"user_id"}` → `201`, the membership at `…/members/{user_id}`.
async fn add_member(
    req: HttpRequest,
    path: web::Path<String>,
    body: web::Bytes,
    state: State,
) -> Reply {
    let group_id = path.into_inner();
    let body = JsonBody::of(&req, body);
    let target = group_id.clone();
    let member = run(&req, &state, move |admin, _| {
        let NewMember { user_id } = body.parse()?;
        admin.add_member(&target, &user_id)
    })
    .await?;
    let location = state
        .settings
        .endpoint(&fill(admin_api::GROUP_MEMBER, &[&group_id, &member.id]));
    Ok(created(location, member))
}

async fn remove_member(req: HttpRequest, path: web::Path<(String, String)>, state: State) -> Reply {
    let (group_id, user_id) = path.into_inner();
    run(&req, &state, move |admin, _| {
        admin.remove_member(&group_id, &user_id)
    })
    .await?;
    Ok(no_content())
}
