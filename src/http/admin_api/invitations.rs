//! The admin API's invitations (issue 23 §4): `POST /admin/api/invitations`
//! `{"email", "locale"?}` sends one (202: the mail is queued).

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};

use super::{JsonBody, Reply, run};
use crate::admin::NewInvitation;
use crate::http::paths::{admin_api, signup};
use crate::http::routes::at;
use crate::http::state::State;

pub(super) fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(at(admin_api::INVITATIONS).post(invite).done());
}

async fn invite(req: HttpRequest, body: web::Bytes, state: State) -> Reply {
    let body = JsonBody::of(&req, body);
    let issuer = state.settings.issuer.clone();
    let sent = run(&req, &state, move |admin, _| {
        let invitation: NewInvitation = body.parse()?;
        admin.invite(&invitation, &|token| {
            signup::link(&issuer, signup::INVITATION, token)
        })
    })
    .await?;
    state.mail.wake();
    Ok(HttpResponse::Accepted()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(sent))
}
