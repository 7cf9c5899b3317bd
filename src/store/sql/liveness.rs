//! What userinfo and introspection ask on every request (is this access token still live,
//! who is its grant's user), and the client metadata nearly every request reads, answered
//! from memory after the first time.
//!
//! The answers change only when something is revoked, a user or a group changes (its
//! name, its members) or a client changes (removed, a new secret, another scope, grant
//! type, redirect URI or any metadata), and
//! those writes are rare. A write through this store clears the cache as soon as it has
//! committed, and tells the other instances (`on_change`, Redis pub/sub in production). A
//! write that nobody announces (a second process on the same database without Redis) is
//! seen within [`LIVENESS_TTL`]: no answer is older than that, clients included (they
//! used to be kept 30 s, which let a client keep a scope or a secret that long on the
//! other instances).
//!
//! Only "live" is remembered: a revoked token or grant stays revoked, and an unknown
//! client unknown, and is asked about at the database each time (so nobody can fill the
//! cache with junk tokens or client ids).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use crate::domain::UnixTime;
use crate::store::{Client, User};

/// The longest a cached answer is used: how late an unannounced revocation is seen.
pub const LIVENESS_TTL: Duration = Duration::from_secs(1);
/// Entries past this are dropped wholesale (a burst of distinct tokens cannot grow memory).
const MAX_ENTRIES: usize = 20_000;
/// The same for clients (only registered clients are kept, so only registration grows it).
const MAX_CLIENTS: usize = 10_000;

/// A grant seen unrevoked at `checked_at`, with its absolute end (checked against the
/// request's clock on every use) and, once asked for, its user and requested claims, and
/// the names of the user's groups, each with when it was read. `checked_at` is refreshed
/// by any token of the grant, so the user and the groups keep their own read time: were
/// they judged by `checked_at`, two tokens of one grant checked in turn would keep them
/// forever.
#[derive(Clone)]
struct GrantEntry {
    expires_at: UnixTime,
    user: Option<((User, Option<String>), Instant)>,
    groups: Option<(Vec<String>, Instant)>,
    checked_at: Instant,
}

#[derive(Default)]
struct Entries {
    /// Access token ids seen absent from the denylist.
    unrevoked_jtis: HashMap<String, Instant>,
    grants: HashMap<String, GrantEntry>,
    /// Clients found by id, with when they were read. An unknown id is not remembered.
    clients: HashMap<String, (Client, Instant)>,
}

type ChangeHook = Box<dyn Fn() + Send + Sync>;

pub struct LivenessCache {
    entries: Mutex<Entries>,
    ttl: Duration,
    /// Bumped by every clear: an answer read from the database before a revocation
    /// committed is not stored after it (the reader saw an older generation).
    generation: AtomicU64,
    on_change: OnceLock<ChangeHook>,
}

/// A point before a database read: store what it found only if nothing changed meanwhile.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Generation(u64);

impl Default for LivenessCache {
    fn default() -> Self {
        Self::with_ttl(LIVENESS_TTL)
    }
}

impl LivenessCache {
    /// A cache whose answers last `ttl` (tests use a long one to show that a change is
    /// heard, not waited out).
    pub fn with_ttl(ttl: Duration) -> Self {
        Self {
            entries: Mutex::default(),
            ttl,
            generation: AtomicU64::new(0),
            on_change: OnceLock::new(),
        }
    }

    fn fresh(&self, at: Instant) -> bool {
        at.elapsed() < self.ttl
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Entries> {
        self.entries.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn generation(&self) -> Generation {
        Generation(self.generation.load(Ordering::Acquire))
    }

    /// Something this instance wrote may have ended a token, a grant or changed a user or
    /// a client: forget everything, here at once and on the other instances through the
    /// hook.
    pub fn changed(&self) {
        self.forget_all();
        if let Some(hook) = self.on_change.get() {
            hook();
        }
    }

    /// Another instance announced a change (or the announcements may have been missed).
    pub fn forget_all(&self) {
        let mut entries = self.lock();
        self.generation.fetch_add(1, Ordering::AcqRel);
        entries.unrevoked_jtis.clear();
        entries.grants.clear();
        entries.clients.clear();
    }

    /// Called after every local change; set once, by whoever tells the other instances.
    pub fn set_on_change(&self, hook: impl Fn() + Send + Sync + 'static) {
        let _ = self.on_change.set(Box::new(hook));
    }

    /// `Some(true)` if both the token and its grant were seen live lately and the grant
    /// has not reached its end by `now`; `None` if the database must be asked.
    pub fn token_live(&self, jti: &str, grant_id: Option<&str>, now: UnixTime) -> Option<bool> {
        let entries = self.lock();
        if !entries
            .unrevoked_jtis
            .get(jti)
            .is_some_and(|at| self.fresh(*at))
        {
            return None;
        }
        match grant_id {
            None => Some(true),
            Some(id) => {
                let grant = entries
                    .grants
                    .get(id)
                    .filter(|g| self.fresh(g.checked_at))?;
                // Past its end the grant is dead whatever the database says.
                Some(grant.expires_at > now)
            }
        }
    }

    /// Records what the database said at `seen`: the token is not on the denylist, and
    /// the grant (if it was found unrevoked) ends at `grant_expires_at`.
    pub fn remember_token(
        &self,
        seen: Generation,
        jti: &str,
        grant: Option<(&str, UnixTime)>,
        at: Instant,
    ) {
        let mut entries = self.lock();
        if self.generation.load(Ordering::Acquire) != seen.0 {
            return;
        }
        if entries.unrevoked_jtis.len() >= MAX_ENTRIES || entries.grants.len() >= MAX_ENTRIES {
            entries.unrevoked_jtis.clear();
            entries.grants.clear();
        }
        entries.unrevoked_jtis.insert(jti.to_owned(), at);
        if let Some((id, expires_at)) = grant {
            let entry = entries.grants.entry(id.to_owned()).or_insert(GrantEntry {
                expires_at,
                user: None,
                groups: None,
                checked_at: at,
            });
            // The user and the groups keep their own read time (see `GrantEntry`).
            entry.expires_at = expires_at;
            entry.checked_at = at;
        }
    }

    /// The user of a grant seen unrevoked lately (the caller checked the token first).
    pub fn grant_user(&self, grant_id: &str) -> Option<(User, Option<String>)> {
        let entries = self.lock();
        entries
            .grants
            .get(grant_id)
            .filter(|g| self.fresh(g.checked_at))
            .and_then(|g| g.user.as_ref())
            .filter(|(_, read)| self.fresh(*read))
            .map(|(user, _)| user.clone())
    }

    /// Adds the user, read from the database at `at`, to a grant entry already there (only
    /// a live grant has one).
    pub fn remember_grant_user(
        &self,
        seen: Generation,
        grant_id: &str,
        user: &(User, Option<String>),
        at: Instant,
    ) {
        let mut entries = self.lock();
        if self.generation.load(Ordering::Acquire) != seen.0 {
            return;
        }
        if let Some(grant) = entries.grants.get_mut(grant_id) {
            grant.user = Some((user.clone(), at));
        }
    }

    /// The names of the groups of a grant's user, for a grant seen unrevoked lately.
    pub fn grant_groups(&self, grant_id: &str) -> Option<Vec<String>> {
        let entries = self.lock();
        entries
            .grants
            .get(grant_id)
            .filter(|g| self.fresh(g.checked_at))
            .and_then(|g| g.groups.as_ref())
            .filter(|(_, read)| self.fresh(*read))
            .map(|(names, _)| names.clone())
    }

    /// Adds the user's group names to a grant entry already there (as `remember_grant_user`).
    pub fn remember_grant_groups(
        &self,
        seen: Generation,
        grant_id: &str,
        names: &[String],
        at: Instant,
    ) {
        let mut entries = self.lock();
        if self.generation.load(Ordering::Acquire) != seen.0 {
            return;
        }
        if let Some(grant) = entries.grants.get_mut(grant_id) {
            grant.groups = Some((names.to_vec(), at));
        }
    }

    /// The client `id` as read from the database lately; `None` if it must be asked.
    pub fn client(&self, id: &str) -> Option<Client> {
        let entries = self.lock();
        entries
            .clients
            .get(id)
            .filter(|(_, at)| self.fresh(*at))
            .map(|(client, _)| client.clone())
    }

    /// Records the client the database returned at `seen` (read at `at`).
    pub fn remember_client(&self, seen: Generation, client: &Client, at: Instant) {
        let mut entries = self.lock();
        if self.generation.load(Ordering::Acquire) != seen.0 {
            return;
        }
        if entries.clients.len() >= MAX_CLIENTS {
            entries.clients.clear();
        }
        entries
            .clients
            .insert(client.id.clone(), (client.clone(), at));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user() -> (User, Option<String>) {
        (User::new("u1".into(), "alice".into(), "x".into(), 7), None)
    }

    #[test]
    fn a_remembered_token_is_live_until_its_grant_ends() {
        let cache = LivenessCache::default();
        assert_eq!(cache.token_live("j1", Some("g1"), 100), None);
        cache.remember_token(cache.generation(), "j1", Some(("g1", 200)), Instant::now());
        assert_eq!(cache.token_live("j1", Some("g1"), 199), Some(true));
        assert_eq!(cache.token_live("j1", Some("g1"), 200), Some(false));
        // Another grant, or another token, is not known.
        assert_eq!(cache.token_live("j1", Some("g2"), 100), None);
        assert_eq!(cache.token_live("j2", Some("g1"), 100), None);
        // A client's own token has no grant.
        assert_eq!(cache.token_live("j1", None, 100), Some(true));
    }

    #[test]
    fn answers_expire_after_the_ttl() {
        let cache = LivenessCache::default();
        let old = Instant::now() - LIVENESS_TTL;
        cache.remember_token(cache.generation(), "j1", Some(("g1", 200)), old);
        assert_eq!(cache.token_live("j1", Some("g1"), 100), None);
        assert_eq!(cache.token_live("j1", None, 100), None);
    }

    #[test]
    fn a_change_forgets_everything_and_is_announced() {
        let cache = LivenessCache::default();
        let announced = std::sync::Arc::new(AtomicU64::new(0));
        let seen = announced.clone();
        cache.set_on_change(move || {
            seen.fetch_add(1, Ordering::Relaxed);
        });
        cache.remember_token(cache.generation(), "j1", Some(("g1", 200)), Instant::now());
        cache.remember_grant_user(cache.generation(), "g1", &user(), Instant::now());
        assert!(cache.grant_user("g1").is_some());
        cache.changed();
        assert_eq!(cache.token_live("j1", Some("g1"), 100), None);
        assert!(cache.grant_user("g1").is_none());
        assert_eq!(announced.load(Ordering::Relaxed), 1);
        // A change heard from elsewhere is not announced again.
        cache.forget_all();
        assert_eq!(announced.load(Ordering::Relaxed), 1);
    }

    #[test]
    fn an_answer_read_before_a_change_is_not_stored_after_it() {
        let cache = LivenessCache::default();
        let before = cache.generation();
        cache.changed();
        cache.remember_token(before, "j1", Some(("g1", 200)), Instant::now());
        assert_eq!(cache.token_live("j1", Some("g1"), 100), None);
        cache.remember_token(cache.generation(), "j1", Some(("g1", 200)), Instant::now());
        let stale = Generation(before.0);
        cache.remember_grant_user(stale, "g1", &user(), Instant::now());
        assert!(cache.grant_user("g1").is_none());
    }

    #[test]
    fn a_user_is_only_kept_for_a_grant_seen_live() {
        let cache = LivenessCache::default();
        cache.remember_grant_user(cache.generation(), "g1", &user(), Instant::now());
        assert!(cache.grant_user("g1").is_none());
        cache.remember_grant_groups(cache.generation(), "g1", &["a".into()], Instant::now());
        assert!(cache.grant_groups("g1").is_none());
    }

    #[test]
    fn a_user_and_groups_read_with_a_stale_grant_entry_are_read_again() {
        let cache = LivenessCache::default();
        let old = Instant::now() - LIVENESS_TTL;
        cache.remember_token(cache.generation(), "j1", Some(("g1", 200)), old);
        cache.remember_grant_user(cache.generation(), "g1", &user(), old);
        cache.remember_grant_groups(cache.generation(), "g1", &["ops".into()], old);
        // The token checked again at the database: the grant is fresh, its user is not.
        cache.remember_token(cache.generation(), "j1", Some(("g1", 200)), Instant::now());
        assert!(cache.grant_user("g1").is_none());
        assert!(cache.grant_groups("g1").is_none());
    }

    #[test]
    fn two_tokens_of_a_grant_checked_in_turn_do_not_keep_its_user_past_the_ttl() {
        let ttl = Duration::from_millis(100);
        let cache = LivenessCache::with_ttl(ttl);
        let read = Instant::now();
        cache.remember_token(cache.generation(), "j1", Some(("g1", 200)), read);
        cache.remember_grant_user(cache.generation(), "g1", &user(), read);
        cache.remember_grant_groups(cache.generation(), "g1", &["ops".into()], read);
        assert!(cache.grant_user("g1").is_some());
        // Each token is checked at the database in turn, each time within the TTL of the
        // other's check: the grant stays fresh, the user and groups read at `read` must not.
        let deadline = read + 20 * ttl;
        let mut turn = 0u64;
        loop {
            let jti = if turn.is_multiple_of(2) { "j2" } else { "j1" };
            cache.remember_token(cache.generation(), jti, Some(("g1", 200)), Instant::now());
            turn += 1;
            if cache.grant_user("g1").is_none() && cache.grant_groups("g1").is_none() {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "the user read at the start is still served after {turn} checks"
            );
            std::thread::yield_now();
        }
        assert!(read.elapsed() >= ttl, "dropped only once past the TTL");
        assert_eq!(cache.token_live("j1", Some("g1"), 100), Some(true));
    }

    #[test]
    fn a_users_groups_are_kept_with_the_grant_until_a_change() {
        let cache = LivenessCache::default();
        cache.remember_token(cache.generation(), "j1", Some(("g1", 200)), Instant::now());
        let before = cache.generation();
        cache.remember_grant_groups(
            before,
            "g1",
            &["admins".into(), "ops".into()],
            Instant::now(),
        );
        assert_eq!(
            cache.grant_groups("g1"),
            Some(vec!["admins".to_owned(), "ops".to_owned()])
        );
        // A group renamed, or a member added or removed, anywhere: forgotten.
        cache.changed();
        assert!(cache.grant_groups("g1").is_none());
        cache.remember_token(cache.generation(), "j1", Some(("g1", 200)), Instant::now());
        cache.remember_grant_groups(before, "g1", &["admins".into()], Instant::now());
        assert!(
            cache.grant_groups("g1").is_none(),
            "read before the change, not kept after it"
        );
    }

    #[test]
    fn the_cache_is_bounded() {
        let cache = LivenessCache::default();
        let now = Instant::now();
        for i in 0..=MAX_ENTRIES {
            cache.remember_token(cache.generation(), &format!("j{i}"), None, now);
        }
        assert!(cache.lock().unrevoked_jtis.len() <= MAX_ENTRIES);
    }
}
