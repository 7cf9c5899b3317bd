//! The upstream identity providers page (issue 24): each `[[upstream]]` table and its
//! health as this instance saw it. Read-only: the configuration is the source of truth.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse};
use askama::Template;

use super::{finish, links, run, signed_in};
use crate::domain::format_utc;
use crate::http::pages::render;
use crate::http::state::State;

struct UpstreamRow {
    id: String,
    name: String,
    issuer: String,
    discovered: String,
    jwks: String,
    error: String,
}

#[derive(Template)]
#[template(path = "admin_upstreams.html")]
struct UpstreamsPage {
    ui: crate::http::ui::Ui,
    links: crate::http::paths::Links,
    csrf: String,
    actor: String,
    upstreams: Vec<UpstreamRow>,
}

pub(super) async fn upstreams(req: HttpRequest, state: State) -> HttpResponse {
    let page = async {
        let console = signed_in(&req, &state).await?;
        // An administrator's page like the others (the same check).
        run(&state, &console, |_| Ok(())).await?;
        let ui = crate::http::ui::Ui::current();
        let never = ui.t("console.upstreams.never");
        let rows = state
            .upstreams
            .health()
            .into_iter()
            .map(|h| UpstreamRow {
                id: h.id,
                name: h.name,
                issuer: h.issuer,
                discovered: h
                    .discovered_at
                    .map(format_utc)
                    .unwrap_or_else(|| never.into()),
                jwks: h
                    .jwks_fetched_at
                    .map(format_utc)
                    .unwrap_or_else(|| never.into()),
                error: h.last_error.unwrap_or_else(|| "-".into()),
            })
            .collect();
        Ok(render(
            StatusCode::OK,
            &UpstreamsPage {
                ui,
                links: links(&state),
                csrf: console.csrf.clone(),
                actor: console.name(),
                upstreams: rows,
            },
        ))
    }
    .await;
    finish(&state, page)
}
