//! Request ids, access logs and Prometheus metrics: one middleware sees every request.

use std::time::Instant;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::middleware::Next;
use actix_web::{HttpResponse, web};
use tracing::Instrument;

use crate::crypto::tokens::random_token;
use crate::http::state::State;
// Error responses carry the failed backend as an extension (see `http::error`).
use crate::protocol::error::Backend;

pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

pub use crate::metrics::Metrics;

/// A request id set by a trusted proxy is kept if it is short and plain; any other
/// caller's is replaced (a client must not forge or collide log correlation ids).
fn request_id(req: &ServiceRequest, from_trusted_proxy: bool) -> String {
    req.headers()
        .get(&REQUEST_ID)
        .filter(|_| from_trusted_proxy)
        .and_then(|v| v.to_str().ok())
        .filter(|v| {
            !v.is_empty()
                && v.len() <= 64
                && v.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
        })
        .map(str::to_owned)
        .unwrap_or_else(|| random_token(12))
}

/// Every log line of a request carries its `request_id`; the response carries it too.
pub async fn observe(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let state = req.app_data::<State>().cloned();
    let trusted: &[crate::domain::IpRange] = state
        .as_ref()
        .map(|s| s.settings.trusted_proxies.as_slice())
        .unwrap_or(&[]);
    let peer = req.peer_addr().map(|a| a.ip());
    let from_trusted_proxy = peer.is_some_and(|ip| trusted.iter().any(|r| r.contains(ip)));
    let forwarded = super::forwarded_for(req.headers());
    let client = super::client_address(peer, forwarded.as_deref(), trusted)
        .map(|ip| ip.to_string())
        .unwrap_or_else(|| "unknown".to_owned());
    let id = request_id(&req, from_trusted_proxy);
    let span = tracing::info_span!("request", request_id = %id);
    let started = Instant::now();
    // Only the methods we route are label values; anything else is "other", so that
    // made-up methods cannot create unbounded metric series.
    let method = match req.method().as_str() {
        m @ ("GET" | "POST" | "OPTIONS" | "HEAD") => m.to_owned(),
        _ => "other".to_owned(),
    };
    // The path only: query strings may carry tokens (id_token_hint) and never reach logs.
    let path = req.path().to_owned();
    let in_flight = state.as_ref().map(|s| s.metrics.in_flight());
    let mut response = next.call(req).instrument(span.clone()).await?;
    drop(in_flight);
    let elapsed = started.elapsed();
    let status = response.status().as_u16();
    if let Ok(value) = HeaderValue::from_str(&id) {
        response.headers_mut().insert(REQUEST_ID, value);
    }
    if let Some(state) = state {
        let route = response
            .request()
            .match_pattern()
            .unwrap_or_else(|| "unmatched".to_owned());
        let metrics = &state.metrics;
        metrics.request(route, method.clone(), status, elapsed.as_secs_f64());
        if let Some(failure) = response.response().extensions().get::<Backend>() {
            metrics.backend_error(*failure);
        }
    }
    if path != crate::http::endpoints::health::LIVENESS {
        span.in_scope(|| {
            tracing::info!(method = %method, path = %path, status, client = %client, ms = elapsed.as_secs_f64() * 1e3, "request");
        });
    }
    Ok(response)
}

pub async fn metrics(metrics: web::Data<std::sync::Arc<Metrics>>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/openmetrics-text; version=1.0.0; charset=utf-8")
        .body(metrics.render())
}
