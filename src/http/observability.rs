//! Request ids, access logs and Prometheus metrics: one middleware sees every request.

use std::time::Instant;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::middleware::Next;
use actix_web::{HttpResponse, web};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use tracing::Instrument;

use super::State;
use crate::crypto::tokens::random_token;
// Error responses carry the failed backend as an extension (see `http::error`).
use crate::protocol::error::Backend;

pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    pub route: String,
    pub method: String,
    pub status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RouteLabels {
    pub route: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct GrantLabels {
    pub grant_type: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutcomeLabels {
    pub outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct BackendLabels {
    pub backend: String,
}

pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    latency: Family<RouteLabels, Histogram>,
    tokens_issued: Family<GrantLabels, Counter>,
    logins: Family<OutcomeLabels, Counter>,
    backend_errors: Family<BackendLabels, Counter>,
    logout_deliveries: Family<OutcomeLabels, Counter>,
}

fn latency_histogram() -> Histogram {
    // 0.25 ms to ~8 s.
    Histogram::new(exponential_buckets(0.00025, 2.0, 16))
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("portcullis");
        let requests = Family::<RequestLabels, Counter>::default();
        let latency = Family::<RouteLabels, Histogram>::new_with_constructor(
            latency_histogram as fn() -> Histogram,
        );
        let tokens_issued = Family::<GrantLabels, Counter>::default();
        let logins = Family::<OutcomeLabels, Counter>::default();
        let backend_errors = Family::<BackendLabels, Counter>::default();
        let logout_deliveries = Family::<OutcomeLabels, Counter>::default();
        registry.register(
            "http_requests",
            "HTTP requests by route, method and status",
            requests.clone(),
        );
        registry.register(
            "http_request_duration_seconds",
            "HTTP request latency by route",
            latency.clone(),
        );
        registry.register(
            "tokens_issued",
            "Token responses issued, by grant type",
            tokens_issued.clone(),
        );
        registry.register(
            "logins",
            "Login attempts by outcome (succeeded, failed)",
            logins.clone(),
        );
        registry.register(
            "backend_errors",
            "Requests failed by an unavailable backend (database, sessions)",
            backend_errors.clone(),
        );
        registry.register(
            "backchannel_logout_deliveries",
            "Back-channel logout attempts by outcome (delivered, retried, failed: given up)",
            logout_deliveries.clone(),
        );
        Self {
            registry,
            requests,
            latency,
            tokens_issued,
            logins,
            backend_errors,
            logout_deliveries,
        }
    }
}

impl Metrics {
    pub fn token_issued(&self, grant_type: &str) {
        self.tokens_issued
            .get_or_create(&GrantLabels {
                grant_type: grant_type.to_owned(),
            })
            .inc();
    }

    pub fn login(&self, succeeded: bool) {
        let outcome = if succeeded { "succeeded" } else { "failed" };
        self.logins
            .get_or_create(&OutcomeLabels {
                outcome: outcome.to_owned(),
            })
            .inc();
    }

    /// `outcome`: delivered, retried or failed (given up).
    pub fn logout_delivery(&self, outcome: &str) {
        self.logout_deliveries
            .get_or_create(&OutcomeLabels {
                outcome: outcome.to_owned(),
            })
            .inc();
    }

    fn backend_error(&self, failure: Backend) {
        let backend = match failure {
            Backend::Database => "database",
            Backend::Sessions => "sessions",
        };
        self.backend_errors
            .get_or_create(&BackendLabels {
                backend: backend.to_owned(),
            })
            .inc();
    }

    pub fn render(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = encode(&mut out, &self.registry);
        out
    }
}

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
    let mut response = next.call(req).instrument(span.clone()).await?;
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
        metrics
            .requests
            .get_or_create(&RequestLabels {
                route: route.clone(),
                method: method.clone(),
                status,
            })
            .inc();
        metrics
            .latency
            .get_or_create(&RouteLabels { route })
            .observe(elapsed.as_secs_f64());
        if let Some(failure) = response.response().extensions().get::<Backend>() {
            metrics.backend_error(*failure);
        }
    }
    if path != "/healthz" {
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
