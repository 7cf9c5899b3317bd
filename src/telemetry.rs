//! Logging: `tracing` with a human or JSON format.

use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::layer::{Context, Layer, SubscriberExt};
use tracing_subscriber::util::SubscriberInitExt;

use crate::config::LogFormat;

pub fn init(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Pretty => builder.finish().with(ClientFaults).try_init(),
        LogFormat::Json => builder.json().finish().with(ClientFaults).try_init(),
    };
}

/// Where actix-http logs a connection it gave up on.
const DISPATCHER: &str = "actix_http::h1::dispatcher";

/// ERROR is for our faults. actix-http writes every connection it gave up on at ERROR
/// (`stream error: ...`), the ones any sender causes included: a request head that does
/// not parse (a malformed header) or a connection reset while it was read. Those are
/// written at INFO instead, like the access log line every request gets; the rest stay
/// ERROR.
struct ClientFaults;

impl<S: Subscriber> Layer<S> for ClientFaults {
    fn event_enabled(&self, event: &Event<'_>, _ctx: Context<'_, S>) -> bool {
        let metadata = event.metadata();
        if *metadata.level() != Level::ERROR || metadata.target() != DISPATCHER {
            return true;
        }
        let mut message = Message::default();
        event.record(&mut message);
        match client_fault(&message.0) {
            Some(cause) => {
                tracing::info!(cause = %cause, "request refused before routing");
                false
            }
            None => true,
        }
    }
}

/// The cause in an actix-http dispatcher message when the request's sender caused it
/// (the head did not parse; the connection failed while it was read), `None` otherwise.
fn client_fault(message: &str) -> Option<&str> {
    let cause = message.strip_prefix("stream error: ")?;
    (cause.starts_with("request parse error") || cause.starts_with("I/O error")).then_some(cause)
}

/// An event's `message` field, as written.
#[derive(Default)]
struct Message(String);

impl Visit for Message {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            self.0 = format!("{value:?}");
        }
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.0 = value.to_owned();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::client_fault;
    use actix_web::error::{DispatchError, ParseError};

    /// The line actix-http's dispatcher writes for `error`.
    fn logged(error: DispatchError) -> String {
        format!("stream error: {error}")
    }

    #[test]
    fn what_a_sender_causes_is_not_logged_as_our_error() {
        for error in [
            DispatchError::Parse(ParseError::Header),
            DispatchError::Parse(ParseError::Method),
            DispatchError::Parse(ParseError::TooLarge),
            DispatchError::Io(std::io::Error::from(std::io::ErrorKind::ConnectionReset)),
        ] {
            let line = logged(error);
            assert!(client_fault(&line).is_some(), "{line}");
        }
        assert_eq!(
            client_fault(&logged(DispatchError::Parse(ParseError::Header))),
            Some("request parse error: invalid Header provided")
        );
    }

    #[test]
    fn our_own_faults_stay_errors() {
        for line in [
            logged(DispatchError::InternalError),
            logged(DispatchError::Upgrade),
            "Internal server error: unexpected payload chunk".to_owned(),
            "Response payload stream error: boom".to_owned(),
            "request parse error: not from the dispatcher's stream line".to_owned(),
        ] {
            assert_eq!(client_fault(&line), None, "{line}");
        }
    }
}
