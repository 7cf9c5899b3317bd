//! Small value types shared by every layer.

mod clock;
mod scope;
mod secret;

pub use clock::{Clock, ManualClock, SystemClock};

pub use scope::{Scope, Scopes};
pub use secret::Secret;

/// Seconds since the Unix epoch: the one clock unit of the protocol layer.
pub type UnixTime = i64;

/// The current time; only `http` and the CLI call this, protocol code takes `now` as input.
pub fn now() -> UnixTime {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}
