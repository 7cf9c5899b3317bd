//! Single sign-out: the logout token of OIDC Back-Channel Logout 1.0 §2.4, the retry
//! policy of its delivery, and the iframe URIs of Front-Channel Logout 1.0 §3.

use serde_json::json;

use super::OAuthError;
use super::tokens::{id_token_alg, signing_key, subject_for};
use crate::crypto::KeySet;
use crate::crypto::kek::KeyEncryptionKey;
use crate::crypto::tokens::random_token;
use crate::domain::UnixTime;
use crate::sessions::SsoSession;
use crate::store::{Client, Store, StoreResult, User};

/// The user a browser session speaks for, if it still does: the user exists and signed
/// in after the last password change, and the session was not ended (by the CLI, or on
/// an instance that does not share this one's session store), whatever the session
/// store still holds. A session with no record (begun before sessions were recorded)
/// counts as open.
pub fn session_user(store: &dyn Store, session: &SsoSession) -> StoreResult<Option<User>> {
    let open = store
        .find_session(&session.sid)?
        .is_none_or(|record| record.ended_at.is_none());
    if !open {
        return Ok(None);
    }
    Ok(store
        .find_user(&session.user_id)?
        .filter(|u| u.accepts_session_from(session.auth_time)))
}

/// §2.4: "Logout Tokens SHOULD be explicitly typed ... `logout+jwt`".
pub const LOGOUT_TOKEN_TYP: &str = "logout+jwt";

/// §2.4 `events`: the member that makes a JWT a logout token.
pub const BACKCHANNEL_LOGOUT_EVENT: &str = "http://schemas.openid.net/event/backchannel-logout";

/// How long a logout token is good for: long enough for clock skew and a slow relying
/// party, short enough that a leaked one is soon worthless (it is also single-use by `jti`).
pub const LOGOUT_TOKEN_TTL: i64 = 120;

/// Delivery attempts before a logout is given up (and counted as failed).
pub const MAX_DELIVERY_ATTEMPTS: i32 = 5;

/// A logout token for `client`: `sub` and `sid` both (§2.4 allows either; sending both
/// serves clients that keep sessions by either, and `sid` whenever the client requires
/// it), no `nonce` ("MUST NOT contain a nonce Claim"), signed with the key the client's
/// ID tokens use, so that it verifies with the keys the client already trusts.
/// `user_id` becomes the `sub` this client knows the user by (pairwise or not).
pub fn logout_token(
    client: &Client,
    user_id: &str,
    sid: &str,
    issuer: &str,
    keys: &KeySet,
    kek: &KeyEncryptionKey,
    now: UnixTime,
) -> Result<String, OAuthError> {
    let claims = json!({
        "iss": issuer,
        "aud": client.id,
        "iat": now,
        "exp": now + LOGOUT_TOKEN_TTL,
        "jti": random_token(16),
        "sub": subject_for(client, user_id, kek),
        "sid": sid,
        "events": { BACKCHANNEL_LOGOUT_EVENT: {} },
    });
    signing_key(keys, id_token_alg(client), now)?
        .sign_jwt(LOGOUT_TOKEN_TYP, &claims)
        .map_err(OAuthError::server)
}

/// Seconds until the next attempt after `attempts` failed ones (2, 4, 8, 16 s), or `None`
/// when that was the last attempt.
pub fn retry_delay(attempts: i32) -> Option<i64> {
    (attempts < MAX_DELIVERY_ATTEMPTS).then(|| 1_i64 << attempts.clamp(1, 10))
}

/// The URI the signed-out page loads for `client` (Front-Channel Logout §3): its
/// `frontchannel_logout_uri` with `iss` and `sid` added ("the OP MUST" add both when the
/// client requires them; we always do, as they never hurt and let the client check them).
pub fn frontchannel_uri(client: &Client, issuer: &str, sid: &str) -> Option<String> {
    let logout = client.frontchannel_logout.as_ref()?;
    let mut url = url::Url::parse(&logout.uri).ok()?;
    url.query_pairs_mut()
        .append_pair("iss", issuer)
        .append_pair("sid", sid);
    Some(url.into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::keys::{JwtExpectations, SigningKey};
    use crate::crypto::{KeyAlgorithm, KeySet};
    use crate::store::LogoutUri;

    fn client() -> Client {
        Client {
            name: "RP".into(),
            frontchannel_logout: Some(LogoutUri {
                uri: "https://rp.example/fc?x=1".into(),
                session_required: true,
            }),
            ..crate::protocol::testing::client("rp")
        }
    }

    #[test]
    fn a_logout_token_is_typed_carries_the_event_and_has_no_nonce() {
        let (key, _) = SigningKey::generate(KeyAlgorithm::Es256).unwrap();
        let mut c = client();
        c.metadata.id_token_signed_response_alg = Some(KeyAlgorithm::Es256);
        let keys = KeySet::new(vec![key]);
        let kek = KeyEncryptionKey::from_bytes(&[7; 32]).unwrap();
        let token = logout_token(&c, "alice", "sid-1", "https://op", &keys, &kek, 1000).unwrap();
        let expect = JwtExpectations {
            issuer: "https://op",
            typ: Some(LOGOUT_TOKEN_TYP),
            now: Some(1000),
            audience: Some("rp"),
        };
        let claims: serde_json::Value = keys.verify(&token, &expect).unwrap();
        assert_eq!(claims["sub"], "alice");
        assert_eq!(claims["sid"], "sid-1");
        assert_eq!(claims["exp"], 1000 + LOGOUT_TOKEN_TTL);
        assert_eq!(claims["events"][BACKCHANNEL_LOGOUT_EVENT], json!({}));
        assert!(claims.get("nonce").is_none());
        assert_eq!(claims["jti"].as_str().unwrap().len(), 22);
    }

    #[test]
    fn deliveries_back_off_and_stop_after_the_last_attempt() {
        let delays: Vec<_> = (1..=MAX_DELIVERY_ATTEMPTS).map(retry_delay).collect();
        assert_eq!(delays, vec![Some(2), Some(4), Some(8), Some(16), None]);
    }

    #[test]
    fn the_frontchannel_uri_keeps_its_query_and_adds_iss_and_sid() {
        let uri = frontchannel_uri(&client(), "https://op", "s 1").unwrap();
        assert_eq!(
            uri,
            "https://rp.example/fc?x=1&iss=https%3A%2F%2Fop&sid=s+1"
        );
        let mut none = client();
        none.frontchannel_logout = None;
        assert_eq!(frontchannel_uri(&none, "https://op", "s"), None);
    }
}
