//! The device authorization grant's records (RFC 8628): kept under hashes of the codes
//! (the callers pass `token_hash` of each code, never a code), so that any instance
//! sharing the store answers the device, the `/device` page and the token endpoint.

use std::time::Duration;

use serde::{Serialize, de::DeserializeOwned};

use super::{SessionError, SessionResult, Sessions, key};

/// The device authorization, under the hash of its device code.
const DEVICE: &str = "device:";
/// The hash of the device code, under the hash of its user code.
const USER_CODE: &str = "device-user-code:";
/// The user's decision, under the hash of the device code.
const DECISION: &str = "device-decision:";
/// When the device last polled, under the hash of the device code.
const LAST_POLL: &str = "device-poll:";
/// The one poll that goes on from a given last poll, under the hash of the device code
/// and that last poll's time: of polls at once (on any instance), one alone.
const POLL_CLAIM: &str = "device-poll-claim:";
/// How long a poll's claim is kept: longer than any race of polls that read the same
/// last poll (the next poll reads the time this one writes, so another claim).
const POLL_CLAIM_KEPT: Duration = Duration::from_secs(60);
/// How many `slow_down`s the device was told, under the hash of the device code.
const SLOW_DOWNS: &str = "device-slow-downs:";
/// Wrong user codes typed from an address.
const GUESSES: &str = "device-guesses:";

fn read<T: DeserializeOwned>(json: Option<String>) -> SessionResult<Option<T>> {
    json.map(|j| serde_json::from_str(&j).map_err(|e| SessionError::Corrupt(e.to_string())))
        .transpose()
}

fn write<T: Serialize>(value: &T) -> SessionResult<String> {
    serde_json::to_string(value).map_err(|e| SessionError::Corrupt(e.to_string()))
}

impl Sessions {
    /// Keeps a device authorization for `ttl` under `device_code_hash`, and the way to it
    /// under `user_code_hash`: `false` (and nothing kept) if another device still holds
    /// that user code (the caller draws another).
    pub async fn save_device<T: Serialize>(
        &self,
        device_code_hash: &str,
        user_code_hash: &str,
        record: &T,
        ttl: Duration,
    ) -> SessionResult<bool> {
        let claimed = self
            .store
            .put_if_absent(
                &format!("{USER_CODE}{user_code_hash}"),
                device_code_hash.to_owned(),
                ttl,
            )
            .await?;
        if !claimed {
            return Ok(false);
        }
        self.store
            .put(&format!("{DEVICE}{device_code_hash}"), write(record)?, ttl)
            .await?;
        Ok(true)
    }

    /// Puts back a device authorization taken for a poll whose tokens could not be
    /// issued (a server error), for the `ttl` it had left.
    pub async fn restore_device<T: Serialize>(
        &self,
        device_code_hash: &str,
        record: &T,
        ttl: Duration,
    ) -> SessionResult<()> {
        self.store
            .put(&format!("{DEVICE}{device_code_hash}"), write(record)?, ttl)
            .await
    }

    /// Puts back a user code taken for a decision that could not be recorded, for the
    /// `ttl` its device has left: the user may decide again.
    pub async fn restore_user_code(
        &self,
        user_code_hash: &str,
        device_code_hash: &str,
        ttl: Duration,
    ) -> SessionResult<bool> {
        self.store
            .put_if_absent(
                &format!("{USER_CODE}{user_code_hash}"),
                device_code_hash.to_owned(),
                ttl,
            )
            .await
    }

    pub async fn load_device<T: DeserializeOwned>(
        &self,
        device_code_hash: &str,
    ) -> SessionResult<Option<T>> {
        read(
            self.store
                .get(&format!("{DEVICE}{device_code_hash}"))
                .await?,
        )
    }

    /// Takes the device authorization: its tokens are issued once (§3.5 and RFC 6749
    /// §10.5), whatever instance the device polls.
    pub async fn take_device<T: DeserializeOwned>(
        &self,
        device_code_hash: &str,
    ) -> SessionResult<Option<T>> {
        read(
            self.store
                .take(&format!("{DEVICE}{device_code_hash}"))
                .await?,
        )
    }

    /// The device authorization a user code names, if it is still waiting.
    pub async fn find_device_by_user_code<T: DeserializeOwned>(
        &self,
        user_code_hash: &str,
    ) -> SessionResult<Option<T>> {
        match self
            .store
            .get(&format!("{USER_CODE}{user_code_hash}"))
            .await?
        {
            Some(device_code_hash) => self.load_device(&device_code_hash).await,
            None => Ok(None),
        }
    }

    /// Takes the user code: it is decided on once. `false` if another decision took it.
    pub async fn take_user_code(&self, user_code_hash: &str) -> SessionResult<bool> {
        Ok(self
            .store
            .take(&format!("{USER_CODE}{user_code_hash}"))
            .await?
            .is_some())
    }

    pub async fn save_device_decision<T: Serialize>(
        &self,
        device_code_hash: &str,
        decision: &T,
        ttl: Duration,
    ) -> SessionResult<()> {
        self.store
            .put(
                &format!("{DECISION}{device_code_hash}"),
                write(decision)?,
                ttl,
            )
            .await
    }

    pub async fn load_device_decision<T: DeserializeOwned>(
        &self,
        device_code_hash: &str,
    ) -> SessionResult<Option<T>> {
        read(
            self.store
                .get(&format!("{DECISION}{device_code_hash}"))
                .await?,
        )
    }

    /// When the device last polled (`None`: never), and how many `slow_down`s it had.
    pub async fn device_polls(&self, device_code_hash: &str) -> SessionResult<(Option<i64>, i64)> {
        let last = self
            .store
            .get(&format!("{LAST_POLL}{device_code_hash}"))
            .await?
            .and_then(|v| v.parse().ok());
        // A counter of `add`, read as it is stored (its decimal text).
        let slow_downs = self
            .store
            .get(&format!("{SLOW_DOWNS}{device_code_hash}"))
            .await?
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        Ok((last, slow_downs))
    }

    /// Claims the poll after the one at `last` (`None`: the first): `false` if another
    /// poll that read the same last poll claimed it first (a poll at once: too soon).
    pub async fn claim_device_poll(
        &self,
        device_code_hash: &str,
        last: Option<i64>,
    ) -> SessionResult<bool> {
        let after = last.map_or_else(|| "first".to_owned(), |t| t.to_string());
        self.store
            .put_if_absent(
                &format!("{POLL_CLAIM}{device_code_hash}:{after}"),
                "1".to_owned(),
                POLL_CLAIM_KEPT,
            )
            .await
    }

    /// Records a poll at `now` (and a `slow_down` told), for `ttl`.
    pub async fn record_device_poll(
        &self,
        device_code_hash: &str,
        now: i64,
        slowed: bool,
        ttl: Duration,
    ) -> SessionResult<()> {
        if slowed {
            self.store
                .add(&format!("{SLOW_DOWNS}{device_code_hash}"), 1, ttl)
                .await?;
        }
        self.store
            .put(
                &format!("{LAST_POLL}{device_code_hash}"),
                now.to_string(),
                ttl,
            )
            .await
    }

    /// Counts a user code typed from `address` before it is looked up (so that codes
    /// sent at once to any instance are all counted); returns the count in `window`.
    pub async fn reserve_user_code_guess(
        &self,
        address: &str,
        window: Duration,
    ) -> SessionResult<i64> {
        self.store.add(&key(GUESSES, address), 1, window).await
    }

    /// A right user code is not held against its address.
    pub async fn user_code_guess_right(
        &self,
        address: &str,
        window: Duration,
    ) -> SessionResult<()> {
        self.store.add(&key(GUESSES, address), -1, window).await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::sessions::MemorySessionStore;

    fn sessions() -> Sessions {
        Sessions::new(Arc::new(MemorySessionStore::new()))
    }

    const KEPT: Duration = Duration::from_secs(60);

    #[tokio::test]
    async fn a_user_code_still_held_by_another_device_is_not_overwritten() {
        let sessions = sessions();
        assert!(sessions.save_device("d1", "u", &"one", KEPT).await.unwrap());
        assert!(!sessions.save_device("d2", "u", &"two", KEPT).await.unwrap());
        let found: Option<String> = sessions.find_device_by_user_code("u").await.unwrap();
        assert_eq!(found.as_deref(), Some("one"));
        let second: Option<String> = sessions.load_device("d2").await.unwrap();
        assert_eq!(second, None, "nothing kept for the device that drew again");
    }

    #[tokio::test]
    async fn a_taken_user_code_is_put_back_for_its_device_and_found_again() {
        let sessions = sessions();
        assert!(sessions.save_device("d1", "u", &"one", KEPT).await.unwrap());
        assert!(sessions.take_user_code("u").await.unwrap());
        assert!(sessions.restore_user_code("u", "d1", KEPT).await.unwrap());
        let found: Option<String> = sessions.find_device_by_user_code("u").await.unwrap();
        assert_eq!(found.as_deref(), Some("one"));
    }

    #[tokio::test]
    async fn of_two_polls_after_the_same_last_poll_one_alone_goes_on() {
        let sessions = sessions();
        let (a, b) = tokio::join!(
            sessions.claim_device_poll("d", Some(100)),
            sessions.claim_device_poll("d", Some(100))
        );
        assert!(a.unwrap() ^ b.unwrap());
        assert!(sessions.claim_device_poll("d", Some(105)).await.unwrap());
        assert!(sessions.claim_device_poll("d", None).await.unwrap());
        assert!(!sessions.claim_device_poll("d", None).await.unwrap());
    }
}
