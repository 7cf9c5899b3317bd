//! The audit log page, newest first, a hundred events at a time.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use serde::{Deserialize, Serialize};

use super::{finish, links, run, signed_in};
use crate::domain::format_utc;
use crate::http::pages::render;
use crate::http::state::State;

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
    links: crate::http::paths::Links,
    csrf: String,
    actor: String,
    events: Vec<EventRow>,
    older: Option<i64>,
}

#[derive(Deserialize, Serialize)]
pub(super) struct AuditQuery {
    before: Option<i64>,
}

pub(super) async fn audit(
    req: HttpRequest,
    query: web::Query<AuditQuery>,
    state: State,
) -> HttpResponse {
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
                links: links(&state),
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
