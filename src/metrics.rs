//! The Prometheus metrics every layer records into (requests, tokens, logins, backend
//! failures, back-channel logout deliveries, mail), rendered by the `/metrics` listener.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::protocol::error::Backend;

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
pub struct MailLabels {
    pub kind: String,
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
    mail_sent: Family<MailLabels, Counter>,
    mail_failed: Family<MailLabels, Counter>,
    mail_given_up: Family<MailLabels, Counter>,
    in_flight: Gauge,
}

/// What became of one attempt to send a mail.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MailOutcome {
    Sent,
    /// Failed; tried again later.
    Failed,
    /// Failed for the last time (or for good: a permanent refusal).
    GivenUp,
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
        let mail_sent = Family::<MailLabels, Counter>::default();
        let mail_failed = Family::<MailLabels, Counter>::default();
        let mail_given_up = Family::<MailLabels, Counter>::default();
        let in_flight = Gauge::default();
        registry.register(
            "http_requests_in_flight",
            "HTTP requests being answered now (a graceful stop waits for them)",
            in_flight.clone(),
        );
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
        registry.register(
            "mail_sent",
            "Mails accepted by the SMTP server (or written to data/outbox/), by kind",
            mail_sent.clone(),
        );
        registry.register(
            "mail_failed",
            "Attempts to send a mail that failed and will be retried, by kind",
            mail_failed.clone(),
        );
        registry.register(
            "mail_given_up",
            "Mails given up (refused for good, or failed at every attempt), by kind",
            mail_given_up.clone(),
        );
        Self {
            registry,
            requests,
            latency,
            tokens_issued,
            logins,
            backend_errors,
            logout_deliveries,
            mail_sent,
            mail_failed,
            mail_given_up,
            in_flight,
        }
    }
}

/// A request being answered, counted in `http_requests_in_flight` until dropped.
pub struct InFlight(Gauge);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.dec();
    }
}

impl Metrics {
    /// Counts a request in flight until the guard is dropped.
    pub fn in_flight(&self) -> InFlight {
        self.in_flight.inc();
        InFlight(self.in_flight.clone())
    }

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

    /// One attempt to send a mail of `kind` (`password_reset`, ...).
    pub fn mail(&self, outcome: MailOutcome, kind: &str) {
        let family = match outcome {
            MailOutcome::Sent => &self.mail_sent,
            MailOutcome::Failed => &self.mail_failed,
            MailOutcome::GivenUp => &self.mail_given_up,
        };
        family
            .get_or_create(&MailLabels {
                kind: kind.to_owned(),
            })
            .inc();
    }

    /// One answered request: its route, method, status and how long it took.
    pub fn request(&self, route: String, method: String, status: u16, seconds: f64) {
        self.latency
            .get_or_create(&RouteLabels {
                route: route.clone(),
            })
            .observe(seconds);
        self.requests
            .get_or_create(&RequestLabels {
                route,
                method,
                status,
            })
            .inc();
    }

    pub fn backend_error(&self, failure: Backend) {
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
