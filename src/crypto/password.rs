//! argon2id password hashing: m=19 MiB, t=2, p=1 (the OWASP minimum, and what the `argon2`
//! crate and node-oidc-provider's peer use), as standard PHC strings.
//!
//! Hashing is the one deliberately slow thing the server does, so it runs apart:
//! - on a pool of its own, one thread per core this process may run on, so a flood of
//!   logins queues instead of taking every core (and the async workers with them);
//! - at a lower scheduling priority (nice +10), so that when a core is contended, token,
//!   JWKS and userinfo requests go first and a login waits a little longer instead;
//! - each thread keeps its 19 MiB work area for the next hash (`argon2_rust::Hasher`), so
//!   memory stays at one area per core however many logins pass, instead of 19 MiB blocks
//!   left behind in the allocator's per-thread arenas; after a quiet minute the area is
//!   wiped and given back.
//!
//! `argon2-rust` is a port of the reference implementation with SIMD chosen at run time:
//! about 9 ms per hash on this kind of machine against 22–25 ms with the `argon2` crate
//! (bench/README.md). Its PHC strings and the `argon2` crate's verify each other (tests).
//!
//! Hashes imported from other providers (bcrypt, PBKDF2, scrypt, argon2 at other costs;
//! `formats`) are checked on the same threads, and replaced by our argon2id at the first
//! right password ([`Checked::Right`]).

use std::sync::mpsc;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use argon2_rust::{Algorithm, Argon2, Hasher, Params, Version};

use crate::domain::Secret;

mod formats;

pub use formats::{HashFormatError, HashKind, hash_kind};
use formats::{Parsed, argon2_ceiling, needs_upgrade};

/// A worker's work area is given back after this long without a job.
const IDLE_RELEASE: Duration = Duration::from_secs(60);

fn argon2id() -> Argon2 {
    Argon2::new(Algorithm::Argon2id, Version::V0x13, Params::default())
}

type Job = Box<dyn FnOnce(&mut Hasher) + Send>;

struct Pool {
    jobs: mpsc::Sender<Job>,
}

/// The number of hashing threads: the cores this process may run on (its CPU affinity).
fn workers() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

#[allow(
    clippy::expect_used,
    reason = "a process that cannot start its hashing threads cannot sign anyone in"
)]
fn pool() -> &'static Pool {
    static POOL: OnceLock<Pool> = OnceLock::new();
    POOL.get_or_init(|| {
        let (sender, receiver) = mpsc::channel::<Job>();
        let receiver = Arc::new(Mutex::new(receiver));
        for i in 0..workers() {
            let receiver = receiver.clone();
            std::thread::Builder::new()
                .name(format!("argon2-{i}"))
                .spawn(move || work(&receiver))
                .expect("a password hashing thread");
        }
        Pool { jobs: sender }
    })
}

fn work(jobs: &Mutex<mpsc::Receiver<Job>>) {
    lower_priority();
    let mut hasher = argon2id().hasher();
    loop {
        let next = match jobs.lock() {
            Ok(receiver) => receiver.recv_timeout(IDLE_RELEASE),
            Err(_) => return,
        };
        match next {
            Ok(job) => {
                // A job that panics (a bug, or a crate's assertion on some stored hash)
                // must not take its thread with it: each lost thread would shrink the
                // pool for good, and the last one would leave every sign-in waiting. Its
                // reply is dropped unanswered, so its caller gets an error; the work area
                // it may have left half-written is replaced.
                let ran =
                    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| job(&mut hasher)));
                if ran.is_err() {
                    hasher = argon2id().hasher();
                }
            }
            Err(mpsc::RecvTimeoutError::Timeout) => hasher.clear(),
            Err(mpsc::RecvTimeoutError::Disconnected) => return,
        }
    }
}

/// nice +10 for the calling thread only (on Linux a thread is a schedulable task of its
/// own). Raising one's own niceness needs no privilege; where it fails, hashing simply
/// runs at normal priority.
fn lower_priority() {
    #[cfg(target_os = "linux")]
    // SAFETY: plain system calls on the calling thread's own id; no memory is passed.
    unsafe {
        let tid = libc::gettid();
        libc::setpriority(libc::PRIO_PROCESS, tid as libc::id_t, 10);
    }
}

/// Runs `f` on a hashing thread and hands its result to `reply`.
fn submit<T: Send + 'static>(
    f: impl FnOnce(&mut Hasher) -> T + Send + 'static,
    reply: impl FnOnce(T) + Send + 'static,
) -> anyhow::Result<()> {
    let job: Job = Box::new(move |hasher| reply(f(hasher)));
    pool()
        .jobs
        .send(job)
        .map_err(|_| anyhow::anyhow!("password hashing pool stopped"))
}

/// Runs `f` on a hashing thread and waits for it (for synchronous callers: the CLI, admin
/// operations on the blocking pool; never an async worker).
fn run_blocking<T: Send + 'static>(
    f: impl FnOnce(&mut Hasher) -> T + Send + 'static,
) -> anyhow::Result<T> {
    let (sender, receiver) = mpsc::sync_channel(1);
    submit(f, move |result| {
        let _ = sender.send(result);
    })?;
    receiver
        .recv()
        .map_err(|_| anyhow::anyhow!("password hashing thread failed"))
}

/// Runs `f` on a hashing thread; the async caller's worker is free meanwhile.
async fn run_async<T: Send + 'static>(
    f: impl FnOnce(&mut Hasher) -> T + Send + 'static,
) -> anyhow::Result<T> {
    let (sender, receiver) = tokio::sync::oneshot::channel();
    submit(f, move |result| {
        let _ = sender.send(result);
    })?;
    receiver
        .await
        .map_err(|_| anyhow::anyhow!("password hashing thread failed"))
}

fn hash_with(hasher: &mut Hasher, password: &[u8]) -> anyhow::Result<String> {
    hasher
        .hash_password_with_random_salt(password)
        .map_err(|e| anyhow::anyhow!("password hashing failed: {e}"))
}

/// A PHC string of `password` with a fresh random salt.
pub fn hash_password(password: &Secret<String>) -> anyhow::Result<String> {
    let password = password.clone();
    run_blocking(move |hasher| hash_with(hasher, password.expose().as_bytes()))?
}

/// What a password check found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Checked {
    /// No stored hash (an unknown user, or one without a password), or the wrong password.
    Wrong,
    /// The right password. `upgraded` is a hash of it in our own form when the stored one
    /// was another (imported, or argon2 at other parameters): the caller stores it in
    /// place of the one that verified, if that is still the one stored.
    Right { upgraded: Option<String> },
}

/// A hash that is never stored: what an unknown user (or one without a usable hash) is
/// checked against, so that those failures take as long as a wrong password.
fn dummy(hasher: &mut Hasher) -> &'static str {
    static DUMMY: OnceLock<String> = OnceLock::new();
    DUMMY.get_or_init(|| {
        let random = crate::crypto::tokens::random_token(16);
        hash_with(hasher, random.as_bytes()).unwrap_or_default()
    })
}

fn verify_argon2(hasher: &mut Hasher, phc: &str, algorithm: Algorithm, password: &[u8]) -> bool {
    hasher
        .verify_encoded_bounded(phc, password, algorithm, argon2_ceiling())
        .is_ok()
}

/// With `None` (unknown user), or a stored value that is no hash we accept (a user
/// imported without a password), verifies against the dummy hash and answers `Wrong`, so
/// that those failures take the time a wrong password does. A right password for a hash
/// in another form than ours comes with its replacement, made on the same thread.
fn check_with(hasher: &mut Hasher, password: &[u8], stored: Option<&str>) -> Checked {
    let parsed = stored.and_then(|phc| formats::parse(phc).ok().map(|(_, p)| (phc, p)));
    let Some((phc, parsed)) = parsed else {
        let dummy = dummy(hasher);
        verify_argon2(hasher, dummy, Algorithm::Argon2id, password);
        return Checked::Wrong;
    };
    let right = match &parsed {
        Parsed::Argon2(algorithm) => verify_argon2(hasher, phc, *algorithm, password),
        other => formats::verify_other(other, phc, password),
    };
    if !right {
        return Checked::Wrong;
    }
    let upgraded = needs_upgrade(phc)
        .then(|| hash_with(hasher, password).ok())
        .flatten();
    Checked::Right { upgraded }
}

/// Verifies `password` against a stored PHC string, waiting for the answer (the tests';
/// the server verifies with [`check_password_async`]).
#[cfg(test)]
fn verify_password(password: &Secret<String>, stored: Option<&str>) -> bool {
    let (password, stored) = (password.clone(), stored.map(str::to_owned));
    let checked = run_blocking(move |hasher| {
        check_with(hasher, password.expose().as_bytes(), stored.as_deref())
    });
    matches!(checked, Ok(Checked::Right { .. }))
}

/// Whether `password` is the one `stored` (a PHC string of ours) was made from, waiting
/// for the answer on a hashing thread: for code already on a blocking thread.
pub fn is_password_of(password: &Secret<String>, stored: &str) -> bool {
    let (password, stored) = (password.clone(), stored.to_owned());
    let checked =
        run_blocking(move |hasher| check_with(hasher, password.expose().as_bytes(), Some(&stored)));
    matches!(checked, Ok(Checked::Right { .. }))
}

/// Checks `password` against a stored hash on a hashing thread (the caller's worker is
/// free meanwhile), with our own hash of it when the stored one should be replaced.
pub async fn check_password_async(password: Secret<String>, stored: Option<String>) -> Checked {
    run_async(move |hasher| check_with(hasher, password.expose().as_bytes(), stored.as_deref()))
        .await
        .unwrap_or(Checked::Wrong)
}

#[cfg(test)]
mod tests {
    use super::*;
    use argon2::{PasswordHasher as _, PasswordVerifier as _};

    #[test]
    fn a_job_that_panics_fails_alone_and_its_thread_goes_on() {
        // More panics than there are threads: were each to end its thread, none would be
        // left for the job after them.
        for _ in 0..=workers() {
            let failed = run_blocking::<()>(|_| panic!("a bug in a job"));
            assert!(failed.is_err());
        }
        let (sender, receiver) = mpsc::sync_channel(1);
        submit(
            |hasher: &mut Hasher| hash_with(hasher, b"still here"),
            move |hash| {
                let _ = sender.send(hash);
            },
        )
        .unwrap();
        let hash = receiver
            .recv_timeout(Duration::from_secs(60))
            .expect("a hashing thread left to take the job");
        assert!(hash.unwrap().starts_with("$argon2id$"));
    }

    fn secret(s: &str) -> Secret<String> {
        Secret::new(s.into())
    }

    #[test]
    fn hash_is_argon2id_at_the_owasp_cost_and_verifies_only_the_right_password() {
        let hash = hash_password(&secret("correct horse")).unwrap();
        assert!(
            hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
            "{hash}"
        );
        assert!(verify_password(&secret("correct horse"), Some(&hash)));
        assert!(!verify_password(&secret("wrong"), Some(&hash)));
        assert!(!verify_password(&secret("correct horse"), None));
        assert_ne!(hash, hash_password(&secret("correct horse")).unwrap());
    }

    #[test]
    fn our_hashes_verify_with_the_argon2_crate_and_its_hashes_verify_here() {
        // Ours → the RustCrypto crate (what older Portcullis versions stored, and what
        // other tools read).
        let ours = hash_password(&secret("pässwörd")).unwrap();
        let theirs_verifier = argon2::Argon2::default();
        assert!(
            theirs_verifier
                .verify_password("pässwörd".as_bytes(), ours.as_str())
                .is_ok()
        );
        assert!(
            theirs_verifier
                .verify_password(b"passwoerd", ours.as_str())
                .is_err()
        );
        // The RustCrypto crate's (existing databases) → ours.
        let theirs = argon2::Argon2::default()
            .hash_password(b"hunter2")
            .unwrap()
            .to_string();
        assert!(verify_password(&secret("hunter2"), Some(&theirs)));
        assert!(!verify_password(&secret("hunter3"), Some(&theirs)));
    }

    #[test]
    fn argon2i_and_other_costs_verify_but_malformed_or_unbounded_hashes_do_not() {
        use argon2::{Algorithm as A, Params as P, Version as V};
        let argon2i = argon2::Argon2::new(A::Argon2i, V::V0x13, P::new(8192, 3, 1, None).unwrap())
            .hash_password(b"legacy")
            .unwrap()
            .to_string();
        assert!(verify_password(&secret("legacy"), Some(&argon2i)));
        for bad in [
            "",
            "plaintext",
            "$bcrypt$whatever",
            "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$",
            // A cost beyond the ceiling is refused, not allocated (4 TiB here).
            "$argon2id$v=19$m=4294967295,t=2,p=1$c2FsdHNhbHRzYWx0$5MzPIqWSFfBFTqbDh8Xje3mz8MmRBOD+9jDPUaSjeeI",
        ] {
            assert!(!verify_password(&secret("legacy"), Some(bad)), "{bad}");
        }
    }

    #[tokio::test]
    async fn the_async_checker_agrees_and_upgrades_only_hashes_not_in_our_form() {
        let hash = hash_password(&secret("s3cret")).unwrap();
        let (right, wrong, unknown, unusable) = tokio::join!(
            check_password_async(secret("s3cret"), Some(hash.clone())),
            check_password_async(secret("nope"), Some(hash.clone())),
            check_password_async(secret("s3cret"), None),
            // A user imported without a password: nothing verifies.
            check_password_async(secret(""), Some(String::new())),
        );
        assert_eq!(right, Checked::Right { upgraded: None });
        assert_eq!(wrong, Checked::Wrong);
        assert_eq!(unknown, Checked::Wrong);
        assert_eq!(unusable, Checked::Wrong);

        // argon2i at other parameters, and a bcrypt hash (jBCrypt's test vector): the
        // right password comes back with our argon2id of it, which verifies.
        use argon2::{Algorithm as A, Params as P, Version as V};
        let argon2i = argon2::Argon2::new(A::Argon2i, V::V0x13, P::new(8192, 3, 1, None).unwrap())
            .hash_password(b"legacy")
            .unwrap()
            .to_string();
        let bcrypt = "$2a$06$If6bvum7DFjUnE9p2uDeDu0YHzrHM6tf.iqN8.yx.jNN1ILEf7h0i";
        for (stored, password) in [(argon2i.as_str(), "legacy"), (bcrypt, "abc")] {
            let Checked::Right {
                upgraded: Some(upgraded),
            } = check_password_async(secret(password), Some(stored.to_owned())).await
            else {
                panic!("{stored} should verify and be upgraded");
            };
            assert!(upgraded.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"));
            assert_eq!(
                check_password_async(secret(password), Some(upgraded)).await,
                Checked::Right { upgraded: None }
            );
            assert_eq!(
                check_password_async(secret("other"), Some(stored.to_owned())).await,
                Checked::Wrong
            );
        }
    }
}
