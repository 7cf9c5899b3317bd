//! Answering a read-only request on the async worker when all it needs is in memory.
//!
//! Most userinfo and introspection requests need nothing but caches (keys, clients, token
//! liveness). Handing them to the blocking pool costs two thread hand-offs, more than the
//! work itself. [`attempt`] runs the work on the calling thread with I/O refused: every
//! place that would block (a database connection, a fetch of a client's keys) asks
//! [`io_refused`] first and fails instead. If anything was refused the attempt's result
//! is thrown away and the caller runs the work again where blocking is allowed, so the
//! work must not change anything before its first I/O (reads only).

use std::cell::Cell;

#[derive(Clone, Copy, PartialEq)]
enum Mode {
    /// Blocking I/O is allowed (the default, and on every blocking-pool thread).
    Blocking,
    /// Inside `attempt`: no I/O yet.
    InMemory,
    /// Inside `attempt`, and something wanted I/O.
    Refused,
}

thread_local! {
    static MODE: Cell<Mode> = const { Cell::new(Mode::Blocking) };
}

/// Runs `work` with I/O refused: its result, or `None` if it needed I/O.
pub fn attempt<T>(work: impl FnOnce() -> T) -> Option<T> {
    struct Restore(Mode);
    impl Drop for Restore {
        fn drop(&mut self) {
            MODE.with(|m| m.set(self.0));
        }
    }
    let _restore = Restore(MODE.with(|m| m.replace(Mode::InMemory)));
    let out = work();
    (MODE.with(Cell::get) == Mode::InMemory).then_some(out)
}

/// Called before blocking I/O: `true` (and the attempt marked as failed) inside `attempt`.
pub fn io_refused() -> bool {
    MODE.with(|m| match m.get() {
        Mode::Blocking => false,
        Mode::InMemory | Mode::Refused => {
            m.set(Mode::Refused);
            true
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn work_without_io_is_answered() {
        assert_eq!(attempt(|| 7), Some(7));
        assert!(!io_refused(), "outside an attempt I/O is allowed");
    }

    #[test]
    fn work_that_wants_io_is_refused_and_the_mode_restored() {
        assert_eq!(attempt(io_refused), None);
        // Refused once stays refused, whatever the work did next.
        assert_eq!(
            attempt(|| {
                let _ = io_refused();
                MODE.with(Cell::get) == Mode::Refused
            }),
            None
        );
        assert!(!io_refused());
    }

    #[test]
    fn the_mode_is_restored_after_a_panic() {
        let caught = std::panic::catch_unwind(|| attempt(|| panic!("boom")));
        assert!(caught.is_err());
        assert!(!io_refused());
    }
}
