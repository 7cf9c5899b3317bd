//! When the session store comes back empty (issue 26): a Redis restarted without
//! persistence, or flushed, loses every single sign-on session and the login throttle's
//! counts, while the database still lists the sessions as live. This notices the loss
//! and puts both right.
//!
//! What is noticed is the whole store emptied, not a part of it: the marker is one key,
//! so a Cluster that lost one shard (or a shard failed over to a replica that missed
//! writes) still holds it whenever that shard is not its own, and a failover to a
//! lagging replica keeps the marker, which was written long before. Sessions lost so go
//! on in the database until they expire; an operator ends them with `portcullis sessions
//! end SID`, or all of a user's with `portcullis users sign-out-everywhere`.
//!
//! Noticing: the store holds a marker with no TTL (`Sessions::has_marker`). Every instance
//! looks for it at start and every `CHECK_INTERVAL` (one GET), so also after Redis came
//! back and the connection with it. The instance that finds it missing and takes the
//! reconciliation's lease (SET NX with a TTL) reconciles; the others see the lease and
//! wait. The lease is renewed per page only while this instance still holds it, and the
//! marker is written back (and the lease given up) in one step under the same condition:
//! a lease that disappeared means the store lost data again (or the lease ran out and
//! another instance took over), so the walk stops and leaves the marker missing, and the
//! next check reconciles again, sessions created since included. An instance that dies
//! mid-way leaves the lease to expire and the marker missing: another one starts again.
//!
//! Reconciling: the throttle's counts are raised back to the failures the database kept
//! for the window (`login_failures`), then the database's live sessions are walked in
//! pages of `PAGE` (keyset, by `sid`), one round trip to the store per page, and those
//! whose record is gone are ended as `portcullis sessions end` ends one (grants revoked,
//! apps told by back-channel logout through the outbox), audited as `session.ended` with
//! reason `store_lost`. A sign-in writes its session's record before its database row, so
//! a row without its record has lost it; still a session is judged twice, `RECHECK_AFTER`
//! apart, and ended only while it is still under the record found missing, because a
//! renewal moves the row to a new record. Ending is a conditional
//! UPDATE (`WHERE ended_at IS NULL AND store_key = ...`): of two instances reconciling
//! together, one ends each session and queues its logout tokens, so each app is told once.
//!
//! Memory: the sessions found missing are held for their second look in batches of at
//! most `BATCH`; each batch is looked at again (one pause), ended, and let go before the
//! walk goes on, so a store that lost a million sessions never has them all in memory.
//! Ending already walked sessions moves no page of the walk: the keyset is the `sid`.

use std::sync::{Arc, Weak};
use std::time::Duration;

use crate::domain::{Clock, UnixTime};
use crate::logout_delivery::Outbox;
use crate::protocol::throttle;
use crate::sessions::{SessionError, Sessions};
use crate::store::{AdminChange, NewAuditEvent, Store, StoreError, StoreResult};

/// How often each instance looks for the marker: the longest a loss goes unnoticed.
pub const CHECK_INTERVAL: Duration = Duration::from_secs(5);
/// How long a session found missing is given to appear before it is ended: a second
/// look. A sign-in writes its record before its row (see the module), so this guards
/// against no known race; it costs a reconciliation one pause per `BATCH` found missing.
pub const RECHECK_AFTER: Duration = Duration::from_secs(1);
/// Sessions looked up in the store per round trip: one page of the walk.
pub const PAGE: i64 = 200;
/// The most sessions found missing held at once for their second look (50 pages' worth,
/// a few MB). Each batch costs one `RECHECK_AFTER` pause: a million sessions lost cost
/// 100 pauses (100 s) beside the million conditional UPDATEs that end them, where a pause
/// per page would cost 5,000 (well over an hour).
pub const BATCH: usize = 10_000;
/// Why the sessions ended, in their audit events and log lines.
pub const REASON: &str = "store_lost";

#[derive(Debug, thiserror::Error)]
pub enum LossError {
    #[error(transparent)]
    Sessions(#[from] SessionError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("blocking task failed: {0}")]
    Task(String),
    /// The reconciliation's lease went mid-way: the store lost data again, or another
    /// instance took over. The marker was not written; the next check starts again.
    #[error("the reconciliation's lease was lost mid-way")]
    LeaseLost,
}

/// What a reconciliation did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Reconciled {
    /// Throttle counters restored.
    pub counters: usize,
    /// Sessions ended by this instance (another may have ended more).
    pub sessions: usize,
    /// Logout tokens this instance queued.
    pub deliveries: usize,
    /// Batches of sessions found missing that were looked at a second time (each after
    /// one pause).
    pub rechecks: usize,
}

/// How the database's live sessions are walked: `page` of them per round trip to the
/// store, and at most `batch` found missing held for their second look (see the module;
/// a `batch` smaller than `page` holds up to a page's worth, settled after every page).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Walk {
    pub page: i64,
    pub batch: usize,
}

impl Default for Walk {
    fn default() -> Self {
        Self {
            page: PAGE,
            batch: BATCH,
        }
    }
}

/// Which session store this instance has, and so what a loss can mean.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Watch {
    /// A store shared by every instance (Redis): watched for its marker all the time.
    Shared,
    /// This process's own store, and the only instance (in-process, SQLite): empty at
    /// every start, so reconciled once at start.
    Alone,
    /// This process's own store beside other instances' (in-process, PostgreSQL): each
    /// holds sessions the others cannot see, so none is ended (an instance would end
    /// the others'); only the throttle's counts are restored at start.
    CountersOnly,
}

/// A live session of the database whose record the store was found to lack.
struct LostSession {
    sid: String,
    store_key: String,
    user_id: String,
}

pub struct StoreLoss {
    pub sessions: Sessions,
    /// Weak: the watch ends with the application.
    pub store: Weak<dyn Store>,
    pub clock: Arc<dyn Clock>,
    /// This instance's name in the reconciliation's lease.
    pub holder: String,
    pub recheck: Duration,
    pub walk: Walk,
    /// Woken when logout tokens were queued (`None`: the outbox's own poll finds them).
    pub outbox: Option<Outbox>,
}

impl StoreLoss {
    /// Looks for the marker; if it is missing and no other instance is on it,
    /// reconciles. `None` when there was nothing to do.
    pub async fn check(&self) -> Result<Option<Reconciled>, LossError> {
        if self.sessions.has_marker().await? {
            return Ok(None);
        }
        if !self.sessions.claim_reconciliation(&self.holder).await? {
            return Ok(None);
        }
        tracing::warn!("the session store has lost its marker: reconciling sessions with it");
        match self.reconcile_under(true, Some(self.holder.as_str())).await {
            Ok(done) => {
                if !self.sessions.finish_reconciliation(&self.holder).await? {
                    return Err(LossError::LeaseLost);
                }
                Ok(Some(done))
            }
            Err(e) => {
                // The next check tries again; failing to let go only delays it (the lease
                // runs out). A lease already lost is not ours to give up (a no-op).
                let _ = self.sessions.abandon_reconciliation(&self.holder).await;
                Err(e)
            }
        }
    }

    /// Restores the throttle's counts and (with `end_sessions`) ends the sessions the
    /// store no longer holds, holding no lease (an instance alone with its store).
    pub async fn reconcile(&self, end_sessions: bool) -> Result<Reconciled, LossError> {
        self.reconcile_under(end_sessions, None).await
    }

    /// As `reconcile`; with `lease` (its holder), renewing it per page and stopping with
    /// `LeaseLost` once it is gone.
    async fn reconcile_under(
        &self,
        end_sessions: bool,
        lease: Option<&str>,
    ) -> Result<Reconciled, LossError> {
        let mut done = Reconciled {
            counters: self.restore_counters().await?,
            ..Reconciled::default()
        };
        if !end_sessions {
            return Ok(done);
        }
        self.end_lost_sessions(lease, &mut done).await?;
        if done.sessions > 0 {
            tracing::warn!(
                sessions = done.sessions,
                deliveries = done.deliveries,
                counters = done.counters,
                rechecks = done.rechecks,
                "reconciled the database with the session store"
            );
        }
        Ok(done)
    }

    /// Walks the database's live sessions a page at a time (the lease renewed before
    /// each page after the first), gathering those whose record the store lacks; a batch
    /// that could not take another page is settled (`settle`) before the walk goes on,
    /// and so is what is left at the end.
    async fn end_lost_sessions(
        &self,
        lease: Option<&str>,
        done: &mut Reconciled,
    ) -> Result<(), LossError> {
        let now = self.clock.now();
        let size = self.walk.page.max(1);
        let batch = self.walk.batch;
        let mut missing: Vec<LostSession> = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let from = after.take();
            let page = self
                .blocking(move |store| store.list_live_sessions(from.as_deref(), now, size))
                .await?;
            let keys: Vec<String> = page.iter().map(|s| s.store_key.clone()).collect();
            let present = self.sessions.sso_records_present(&keys).await?;
            let last = (page.len() as i64) < size;
            after = page.last().map(|s| s.sid.clone());
            missing.extend(page.into_iter().zip(present).filter(|(_, here)| !here).map(
                |(s, _)| LostSession {
                    sid: s.sid,
                    store_key: s.store_key,
                    user_id: s.user_id,
                },
            ));
            // Settled before the next page could take the batch past its size.
            if !missing.is_empty() && (last || missing.len() + size as usize > batch) {
                self.settle(&missing, lease, done).await?;
                missing.clear();
            }
            if last {
                return Ok(());
            }
            self.renew(lease).await?;
        }
    }

    /// Gives `missing` `recheck` to appear, then ends those still gone, a page at a time,
    /// the lease renewed before each; then wakes the outbox for the logout tokens queued
    /// (a wake with none queued costs the outbox one look at its table, once a batch).
    async fn settle(
        &self,
        missing: &[LostSession],
        lease: Option<&str>,
        done: &mut Reconciled,
    ) -> Result<(), LossError> {
        tokio::time::sleep(self.recheck).await;
        done.rechecks += 1;
        let result = self.end_missing(missing, lease, done).await;
        if let Some(outbox) = &self.outbox {
            outbox.wake();
        }
        result
    }

    /// Ends those of `missing` whose record is still gone, a page at a time, the lease
    /// renewed before each.
    async fn end_missing(
        &self,
        missing: &[LostSession],
        lease: Option<&str>,
        done: &mut Reconciled,
    ) -> Result<(), LossError> {
        for page in missing.chunks(self.walk.page.max(1) as usize) {
            self.renew(lease).await?;
            let keys: Vec<String> = page.iter().map(|s| s.store_key.clone()).collect();
            let present = self.sessions.sso_records_present(&keys).await?;
            for (lost, here) in page.iter().zip(present) {
                if !here {
                    self.end(lost, done).await?;
                }
            }
        }
        Ok(())
    }

    /// Renews the lease, if there is one; `LeaseLost` if it is gone.
    async fn renew(&self, lease: Option<&str>) -> Result<(), LossError> {
        if let Some(holder) = lease
            && !self.sessions.renew_reconciliation(holder).await?
        {
            return Err(LossError::LeaseLost);
        }
        Ok(())
    }

    /// Raises each throttle counter to the failures the database kept for it in the
    /// window, for what is left of its window.
    async fn restore_counters(&self) -> Result<usize, LossError> {
        let now = self.clock.now();
        let window = throttle::WINDOW.as_secs() as UnixTime;
        let counts = self
            .blocking(move |store| store.login_failures_since(now - window))
            .await?;
        let mut restored = 0;
        for count in counts {
            let left = (count.first_at + window - now).max(0) as u64;
            self.sessions
                .restore_failures(
                    &count.counter_key,
                    count.failures,
                    Duration::from_secs(left),
                )
                .await?;
            restored += 1;
        }
        Ok(restored)
    }

    /// Ends one lost session with its audit event, if it is still live under its
    /// record's key.
    async fn end(&self, lost: &LostSession, done: &mut Reconciled) -> Result<(), LossError> {
        let (sid, key, user) = (
            lost.sid.as_str(),
            lost.store_key.as_str(),
            lost.user_id.as_str(),
        );
        let event = NewAuditEvent {
            at: self.clock.now(),
            actor: "system".to_owned(),
            action: "session.ended".to_owned(),
            target: Some(sid.to_owned()),
            address: None,
            details: Some(serde_json::json!({ "user": user, "reason": REASON }).to_string()),
        };
        let (sid_owned, key_owned) = (sid.to_owned(), key.to_owned());
        let applied = self
            .blocking(move |store| {
                let change = AdminChange::EndLostSession {
                    sid: &sid_owned,
                    store_key: &key_owned,
                };
                store.apply_audited(change, &event)
            })
            .await?;
        if let Some(ended) = applied {
            crate::audit::admin_change("system", "session.ended", sid, "");
            crate::audit::sessions_ended(user, ended.sessions.len(), REASON);
            done.sessions += ended.sessions.len();
            done.deliveries += ended.deliveries;
        }
        Ok(())
    }

    async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&dyn Store) -> StoreResult<T> + Send + 'static,
    ) -> Result<T, LossError> {
        let store = self
            .store
            .upgrade()
            .ok_or_else(|| LossError::Task("the store is closed".into()))?;
        tokio::task::spawn_blocking(move || f(store.as_ref()))
            .await
            .map_err(|e| LossError::Task(e.to_string()))?
            .map_err(LossError::from)
    }
}

/// Starts watching: with a shared store, a check now and every `CHECK_INTERVAL` until
/// the store is dropped; with an in-process one, the reconciliation its start calls for.
pub fn spawn(loss: StoreLoss, watch: Watch) {
    tokio::spawn(async move {
        match watch {
            Watch::Shared => loop {
                if loss.store.strong_count() == 0 {
                    return;
                }
                if let Err(e) = loss.check().await {
                    tracing::warn!(error = %e, "could not check the session store for a loss");
                }
                tokio::time::sleep(CHECK_INTERVAL).await;
            },
            Watch::Alone | Watch::CountersOnly => {
                if let Err(e) = loss.reconcile(watch == Watch::Alone).await {
                    tracing::warn!(error = %e, "could not reconcile sessions after a start");
                }
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::ManualClock;
    use crate::sessions::{MemorySessionStore, SessionStore, SsoSession};
    use crate::store::sql::SqlStore;
    use crate::store::{BrowserSession, User};

    const NOW: UnixTime = 1_800_000_000;

    struct World {
        store: Arc<dyn Store>,
        memory: Arc<MemorySessionStore>,
        sessions: Sessions,
        clock: Arc<ManualClock>,
        user: String,
    }

    impl World {
        fn new() -> Self {
            let store: Arc<dyn Store> = Arc::new(SqlStore::open("sqlite://:memory:").unwrap());
            let user = User::new("u1".into(), "alice".into(), "x".into(), NOW);
            store.create_user(&user).unwrap();
            let memory = Arc::new(MemorySessionStore::new());
            Self {
                store,
                sessions: Sessions::new(memory.clone()),
                memory,
                clock: Arc::new(ManualClock::new(NOW)),
                user: user.id,
            }
        }

        fn loss(&self) -> StoreLoss {
            StoreLoss {
                sessions: self.sessions.clone(),
                store: Arc::downgrade(&self.store),
                clock: self.clock.clone(),
                holder: "instance-a".into(),
                recheck: Duration::from_millis(10),
                walk: Walk::default(),
                outbox: None,
            }
        }

        /// A session signed in with cookie `cookie`: its row, and (`kept`) its record.
        async fn signed_in(&self, sid: &str, cookie: &str, kept: bool) {
            let session = SsoSession {
                id: cookie.into(),
                sid: sid.into(),
                user_id: self.user.clone(),
                auth_time: NOW,
                amr: vec!["pwd".into()],
                level: Default::default(),
                methods: Vec::new(),
                expires_at: NOW + 3600,
                idp: None,
                upstream_id_token: None,
            };
            self.store
                .record_session(&BrowserSession {
                    sid: sid.into(),
                    user_id: self.user.clone(),
                    store_key: Sessions::sso_record_key(cookie),
                    created_at: NOW,
                    expires_at: NOW + 3600,
                    ended_at: None,
                    user_agent: None,
                    ip_address: None,
                })
                .unwrap();
            if kept {
                self.sessions.save_sso(&session, NOW).await.unwrap();
            }
        }

        fn live(&self) -> Vec<String> {
            let mut sids: Vec<String> = self
                .store
                .list_user_sessions(&self.user, NOW)
                .unwrap()
                .into_iter()
                .map(|s| s.sid)
                .collect();
            sids.sort();
            sids
        }

        fn store_lost_events(&self) -> Vec<String> {
            self.store
                .list_audit_events(None, 100)
                .unwrap()
                .into_iter()
                .filter(|e| e.details.as_deref().is_some_and(|d| d.contains(REASON)))
                .map(|e| format!("{} {} {}", e.actor, e.action, e.target.unwrap_or_default()))
                .collect()
        }
    }

    #[tokio::test]
    async fn a_lost_session_is_ended_once_with_its_reason_and_a_kept_one_is_left_alone() {
        let world = World::new();
        world.signed_in("kept", "cookie-1", true).await;
        world.signed_in("lost", "cookie-2", false).await;
        let done = world.loss().check().await.unwrap().unwrap();
        assert_eq!((done.sessions, done.deliveries), (1, 0));
        assert_eq!(world.live(), ["kept"]);
        assert_eq!(world.store_lost_events(), ["system session.ended lost"]);
        assert!(world.sessions.has_marker().await.unwrap(), "marked again");
        // Marked: the next check does nothing; a reconciliation run again ends nothing
        // more and records nothing more.
        assert_eq!(world.loss().check().await.unwrap(), None);
        let again = world.loss().reconcile(true).await.unwrap();
        assert_eq!(again.sessions, 0);
        assert_eq!(world.store_lost_events().len(), 1);
    }

    #[tokio::test]
    async fn the_walk_ends_lost_sessions_a_bounded_batch_at_a_time() {
        let world = World::new();
        // Twelve sessions, s03 and s08 kept, walked two a page with at most five held.
        for n in 0..12 {
            let kept = n == 3 || n == 8;
            world
                .signed_in(&format!("s{n:02}"), &format!("c{n:02}"), kept)
                .await;
        }
        let loss = StoreLoss {
            walk: Walk { page: 2, batch: 5 },
            ..world.loss()
        };
        let done = loss.check().await.unwrap().unwrap();
        assert_eq!(done.sessions, 10);
        // Settled whenever another page could take the batch past five: after s00-s05
        // (five missing) and s06-s11 (five); the last, empty page finds nothing left.
        // One pause per batch, never more than five held.
        assert_eq!(done.rechecks, 2);
        assert_eq!(world.live(), ["s03", "s08"]);
        assert_eq!(world.store_lost_events().len(), 10);
        assert!(world.sessions.has_marker().await.unwrap(), "marked again");
    }

    #[tokio::test]
    async fn a_walk_that_finds_nothing_missing_never_pauses() {
        let world = World::new();
        for n in 0..5 {
            world
                .signed_in(&format!("s{n}"), &format!("c{n}"), true)
                .await;
        }
        let loss = StoreLoss {
            walk: Walk { page: 2, batch: 4 },
            ..world.loss()
        };
        let done = loss.reconcile(true).await.unwrap();
        assert_eq!((done.sessions, done.rechecks), (0, 0));
        assert_eq!(world.live().len(), 5);
    }

    #[tokio::test]
    async fn two_instances_reconciling_together_end_each_session_once() {
        let world = World::new();
        for n in 0..5 {
            world
                .signed_in(&format!("s{n}"), &format!("c{n}"), false)
                .await;
        }
        let (a, b) = (world.loss(), world.loss());
        let (a, b) = tokio::join!(a.reconcile(true), b.reconcile(true));
        assert_eq!(a.unwrap().sessions + b.unwrap().sessions, 5);
        assert_eq!(world.store_lost_events().len(), 5);
        assert!(world.live().is_empty());
    }

    #[tokio::test]
    async fn only_the_instance_holding_the_lease_reconciles() {
        let world = World::new();
        world.signed_in("lost", "cookie", false).await;
        assert!(
            world
                .sessions
                .claim_reconciliation("instance-b")
                .await
                .unwrap()
        );
        assert_eq!(world.loss().check().await.unwrap(), None);
        assert_eq!(world.live(), ["lost"], "instance-b is on it");
    }

    #[tokio::test]
    async fn a_walk_whose_lease_disappears_stops_and_writes_no_marker() {
        let world = World::new();
        world.signed_in("lost", "cookie", false).await;
        let loss = StoreLoss {
            recheck: Duration::from_millis(300),
            ..world.loss()
        };
        // The store loses everything again while the walk waits for its recheck (the
        // lease's key, as `Sessions` names it).
        let memory = world.memory.clone();
        let second_loss = async move {
            tokio::time::sleep(Duration::from_millis(50)).await;
            memory.delete("{store-loss}:lease").await.unwrap();
        };
        let (checked, ()) = tokio::join!(loss.check(), second_loss);
        assert!(matches!(checked, Err(LossError::LeaseLost)), "{checked:?}");
        assert_eq!(world.live(), ["lost"], "the walk stopped before ending it");
        assert!(!world.sessions.has_marker().await.unwrap(), "no marker");
        // The next check reconciles again.
        let done = world.loss().check().await.unwrap().unwrap();
        assert_eq!(done.sessions, 1);
        assert!(world.sessions.has_marker().await.unwrap());
    }

    #[tokio::test]
    async fn a_session_whose_record_appears_before_the_recheck_is_not_ended() {
        let world = World::new();
        // A record that appears between the two looks (sign-ins write it before the
        // row, so this is the second look alone).
        world.signed_in("fresh", "cookie", false).await;
        let loss = StoreLoss {
            recheck: Duration::from_millis(300),
            ..world.loss()
        };
        let memory = world.memory.clone();
        let key = format!("sso:{}", Sessions::sso_record_key("cookie"));
        let writer = async move {
            tokio::time::sleep(Duration::from_millis(50)).await;
            memory
                .put(&key, "{}".into(), Duration::from_secs(60))
                .await
                .unwrap();
        };
        let (done, ()) = tokio::join!(loss.reconcile(true), writer);
        assert_eq!(done.unwrap().sessions, 0);
        assert_eq!(world.live(), ["fresh"]);
    }

    #[tokio::test]
    async fn a_session_renewed_under_another_record_is_not_ended_by_its_old_one() {
        let world = World::new();
        world.signed_in("renewed", "old-cookie", false).await;
        let ended = world
            .store
            .apply_audited(
                AdminChange::EndLostSession {
                    sid: "renewed",
                    store_key: &Sessions::sso_record_key("another-cookie"),
                },
                &NewAuditEvent {
                    at: NOW,
                    actor: "system".into(),
                    action: "session.ended".into(),
                    target: Some("renewed".into()),
                    address: None,
                    details: None,
                },
            )
            .unwrap();
        assert!(ended.is_none());
        assert_eq!(world.live(), ["renewed"]);
    }

    #[test]
    fn failures_are_purged_once_outside_the_window() {
        let world = World::new();
        let keys = Sessions::login_failure_keys("alice", "198.51.100.7", None);
        let window = throttle::WINDOW.as_secs() as UnixTime;
        world
            .store
            .record_login_failure(&keys, NOW - window - 1)
            .unwrap();
        world.store.record_login_failure(&keys, NOW - 60).unwrap();
        let purged = world.store.purge_login_failures(NOW - window).unwrap();
        assert_eq!(purged, keys.len());
        let left = world.store.login_failures_since(0).unwrap();
        assert_eq!(left.len(), keys.len());
        assert!(
            left.iter()
                .all(|c| c.failures == 1 && c.first_at == NOW - 60)
        );
    }

    #[tokio::test]
    async fn failures_in_the_window_are_restored_and_older_ones_are_not() {
        let world = World::new();
        let recent = Sessions::login_failure_keys("alice", "198.51.100.7", None);
        for _ in 0..5 {
            world.store.record_login_failure(&recent, NOW - 60).unwrap();
        }
        let old = Sessions::login_failure_keys("bob", "198.51.100.7", None);
        let long_ago = NOW - throttle::WINDOW.as_secs() as UnixTime - 1;
        world.store.record_login_failure(&old, long_ago).unwrap();
        let done = world.loss().reconcile(false).await.unwrap();
        // alice's three counters (account, account and address, address); bob's are
        // outside the window.
        assert_eq!(done.counters, 3);
        let alice = world
            .sessions
            .reserve_login("alice", "198.51.100.7", None, throttle::WINDOW)
            .await
            .unwrap();
        assert_eq!((alice.for_account, alice.from_address), (6, 6));
        assert_eq!(
            throttle::decide(alice, false, 100),
            throttle::Throttle::Refuse
        );
        let bob = world
            .sessions
            .reserve_login("bob", "198.51.100.9", None, throttle::WINDOW)
            .await
            .unwrap();
        assert_eq!(bob.for_account, 1);
    }
}
