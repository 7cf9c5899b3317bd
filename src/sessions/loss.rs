//! What the session store keeps so that a store that came back empty (a Redis restarted
//! without persistence, or flushed) is noticed (issue 26): a marker written with no TTL,
//! and a lease on the reconciliation that follows. A partial loss is not noticed (see
//! `store_loss`).
//! `store_loss` decides what to do; this is only the keys.

use std::time::Duration;

use super::{
    FAILED_BROWSER, FAILED_FROM, FAILED_LOGINS, FAILED_SOURCE, SSO, SessionResult, Sessions,
    browser_login_key, code_keys, login_keys,
};

/// There as long as the store has kept what it was given: a store without it has lost
/// everything (or was never used). Under one hash tag with `RECONCILING`, so that on a
/// Cluster both live in one slot and one script can write this while checking that.
/// (The tag stays the key's first one unless the configured prefix has one of its own,
/// which both keys then share alike.)
const MARKER: &str = "{store-loss}:marker";
/// Held by the instance reconciling after a loss, so that the others wait for it.
const RECONCILING: &str = "{store-loss}:lease";

/// How long a reconciliation holds its lease without renewing it: an instance that dies
/// mid-way leaves it to another after this.
pub const RECONCILIATION_LEASE: Duration = Duration::from_secs(60);

impl Sessions {
    /// Whether the store still holds its marker (see the module).
    pub async fn has_marker(&self) -> SessionResult<bool> {
        Ok(self.store.get(MARKER).await?.is_some())
    }

    /// Takes the reconciliation's lease for `holder` (an instance's id), unless another
    /// instance holds it.
    pub async fn claim_reconciliation(&self, holder: &str) -> SessionResult<bool> {
        self.store
            .put_if_absent(RECONCILING, holder.to_owned(), RECONCILIATION_LEASE)
            .await
    }

    /// Extends the lease while `holder` still holds it (a reconciliation of many sessions
    /// outlasts one). `false`: the lease is gone (the store lost data again) or another
    /// instance took it after it ran out; the reconciliation must stop, and is never
    /// given the lease back by this.
    pub async fn renew_reconciliation(&self, holder: &str) -> SessionResult<bool> {
        self.store
            .extend_if(RECONCILING, holder, RECONCILIATION_LEASE)
            .await
    }

    /// Writes the marker back and gives the lease up, in one step and only while
    /// `holder` still holds the lease: the loss is dealt with. `false` (no marker): the
    /// lease went meanwhile, so the store may have lost what was written since, and the
    /// next check reconciles again.
    pub async fn finish_reconciliation(&self, holder: &str) -> SessionResult<bool> {
        self.store
            .release_if(RECONCILING, holder, Some((MARKER, "1".to_owned())))
            .await
    }

    /// Gives the lease up without the marker, if `holder` still holds it: the next check
    /// tries again.
    pub async fn abandon_reconciliation(&self, holder: &str) -> SessionResult<()> {
        self.store
            .release_if(RECONCILING, holder, None)
            .await
            .map(|_| ())
    }

    /// Which of the sessions (by `sso_record_key`) the store still holds, in order, in
    /// one round trip.
    pub async fn sso_records_present(&self, record_keys: &[String]) -> SessionResult<Vec<bool>> {
        let keys: Vec<String> = record_keys.iter().map(|k| format!("{SSO}{k}")).collect();
        self.store.present(&keys).await
    }

    /// The store keys a failed password counts under (as `reserve_login` counted them,
    /// `browser` as given to it): what the database keeps of a failure so that the counts
    /// can be restored. Hashes, like every key of the store.
    pub fn login_failure_keys(username: &str, address: &str, browser: Option<&str>) -> Vec<String> {
        let mut keys = login_keys(username, address).to_vec();
        if let Some(b) = browser {
            keys.push(browser_login_key(username, b));
        }
        keys
    }

    /// The store keys a wrong code counts under (as `reserve_code` counted them).
    pub fn code_failure_keys(kind: &str, user_id: &str, address: &str) -> Vec<String> {
        code_keys(kind, user_id, address).to_vec()
    }

    /// Raises a failure counter to `failures` for what is left of its `window` (see
    /// `SessionStore::raise`); a key of no failure counter is ignored.
    pub async fn restore_failures(
        &self,
        key: &str,
        failures: i64,
        window: Duration,
    ) -> SessionResult<()> {
        let counter = [FAILED_LOGINS, FAILED_FROM, FAILED_SOURCE, FAILED_BROWSER]
            .iter()
            .any(|ns| key.starts_with(ns))
            || key.starts_with("failed-code");
        if !counter || window.is_zero() {
            return Ok(());
        }
        self.store.raise(key, failures, window).await
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::sessions::{MemorySessionStore, SessionStore};

    const WINDOW: Duration = Duration::from_secs(900);

    #[tokio::test]
    async fn restored_counts_are_raised_to_not_added_to_and_other_keys_are_left_alone() {
        let store = Arc::new(MemorySessionStore::new());
        let sessions = Sessions::new(store.clone());
        let keys = Sessions::login_failure_keys("Alice", "198.51.100.1", None);
        sessions
            .restore_failures(&keys[1], 5, WINDOW)
            .await
            .unwrap();
        sessions
            .restore_failures(&keys[1], 5, WINDOW)
            .await
            .unwrap();
        let after = sessions
            .reserve_login("alice", "198.51.100.1", None, WINDOW)
            .await
            .unwrap();
        assert_eq!(after.from_address, 6, "restored twice, counted once");
        assert_eq!(after.for_account, 1);
        sessions.restore_failures("sso:x", 5, WINDOW).await.unwrap();
        assert_eq!(store.get("sso:x").await.unwrap(), None);
    }

    #[tokio::test]
    async fn the_marker_is_missing_until_a_reconciliation_finishes_and_one_holds_the_lease() {
        let sessions = Sessions::new(Arc::new(MemorySessionStore::new()));
        assert!(!sessions.has_marker().await.unwrap());
        assert!(sessions.claim_reconciliation("a").await.unwrap());
        assert!(!sessions.claim_reconciliation("b").await.unwrap());
        assert!(sessions.renew_reconciliation("a").await.unwrap());
        assert!(!sessions.renew_reconciliation("b").await.unwrap());
        assert!(!sessions.finish_reconciliation("b").await.unwrap());
        assert!(
            !sessions.has_marker().await.unwrap(),
            "b never held the lease"
        );
        assert!(sessions.finish_reconciliation("a").await.unwrap());
        assert!(sessions.has_marker().await.unwrap());
        assert!(sessions.claim_reconciliation("b").await.unwrap());
    }

    #[tokio::test]
    async fn a_lease_that_disappeared_is_neither_renewed_nor_finished_and_a_taken_one_is_kept() {
        let store = Arc::new(MemorySessionStore::new());
        let sessions = Sessions::new(store.clone());
        assert!(sessions.claim_reconciliation("a").await.unwrap());
        // The store loses everything again mid-walk.
        store.delete(RECONCILING).await.unwrap();
        assert!(!sessions.renew_reconciliation("a").await.unwrap());
        assert_eq!(store.get(RECONCILING).await.unwrap(), None, "not recreated");
        assert!(!sessions.finish_reconciliation("a").await.unwrap());
        assert!(!sessions.has_marker().await.unwrap(), "no marker written");
        // Another instance took the lease: the old holder neither renews, nor finishes,
        // nor gives up what is not its own.
        assert!(sessions.claim_reconciliation("b").await.unwrap());
        assert!(!sessions.renew_reconciliation("a").await.unwrap());
        sessions.abandon_reconciliation("a").await.unwrap();
        assert!(!sessions.finish_reconciliation("a").await.unwrap());
        assert_eq!(store.get(RECONCILING).await.unwrap().as_deref(), Some("b"));
        assert!(!sessions.has_marker().await.unwrap());
        assert!(sessions.finish_reconciliation("b").await.unwrap());
        assert!(sessions.has_marker().await.unwrap());
    }
}
