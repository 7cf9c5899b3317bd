//! `/healthz`: the process is alive. `/readyz`: the database and session store answer.

use actix_web::HttpResponse;
use serde_json::json;

use crate::http::{State, blocking};

pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(json!({ "status": "ok" }))
}

pub async fn readyz(state: State) -> HttpResponse {
    let database = blocking(&state, |ctx| Ok(ctx.store.ping()?)).await.is_ok();
    let sessions = state.sessions.ping().await.is_ok();
    let body = json!({ "database": database, "sessions": sessions });
    if database && sessions {
        HttpResponse::Ok().json(body)
    } else {
        HttpResponse::ServiceUnavailable().json(body)
    }
}
