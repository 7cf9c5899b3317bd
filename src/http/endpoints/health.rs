//! `/healthz`: the process is alive. `/readyz`: the database and session store answer,
//! each within a short time (a backend that hangs is as unready as one that refuses).

use std::time::Duration;

use actix_web::HttpResponse;
use serde_json::json;

use crate::http::state::{State, blocking};

/// Where the probes are, below the issuer.
pub const LIVENESS: &str = "/healthz";
pub const READINESS: &str = "/readyz";

const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(json!({ "status": "ok" }))
}

pub async fn readyz(state: State) -> HttpResponse {
    let database =
        tokio::time::timeout(PROBE_TIMEOUT, blocking(&state, |ctx| Ok(ctx.store.ping()?)));
    let sessions = tokio::time::timeout(PROBE_TIMEOUT, state.sessions.ping());
    let (database, sessions) = tokio::join!(database, sessions);
    let database = matches!(database, Ok(Ok(())));
    let sessions = matches!(sessions, Ok(Ok(())));
    let body = json!({ "database": database, "sessions": sessions });
    if database && sessions {
        HttpResponse::Ok().json(body)
    } else {
        HttpResponse::ServiceUnavailable().json(body)
    }
}
