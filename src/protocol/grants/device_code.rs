//! The device authorization grant at the token endpoint (RFC 8628 §3.4, §3.5): the
//! device polls with its device code until its user decides.
//!
//! `poll` decides a poll from what the session store holds (the HTTP side reads it and
//! writes back the poll's time and any `slow_down`); `exchange` then redeems the
//! authorization code the approval recorded, through the code grant, so the tokens are
//! the code flow's (claims, `sid`, `amr`, `acr`, refresh token).

use serde::{Deserialize, Serialize};

use super::TokenResponse;
use super::authorization_code::{self, CodeRequest};
use crate::crypto::kek::KeyEncryptionKey;
use crate::crypto::tokens::token_hash;
use crate::domain::UnixTime;
use crate::protocol::{Context, ErrorCode, OAuthError, Params};
use crate::store::Client;

pub struct DeviceCodeRequest {
    device_code: String,
}

/// The device code is a credential: never in a log line.
impl std::fmt::Debug for DeviceCodeRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeviceCodeRequest")
            .field("device_code", &"[redacted]")
            .finish()
    }
}

impl DeviceCodeRequest {
    /// §3.4: `device_code` is required.
    pub fn parse(params: &Params) -> Result<Self, OAuthError> {
        Ok(Self {
            device_code: params.required("device_code")?.to_owned(),
        })
    }

    /// The key the device authorization is kept under.
    pub fn device_code_hash(&self) -> String {
        token_hash(&self.device_code)
    }
}

/// The user's decision on the `/device` page.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Decision {
    Approved,
    Denied,
}

/// What the session store holds about a device code when it is polled.
#[derive(Clone, Copy, Debug)]
pub struct Polled<'a> {
    /// None: never issued, expired long ago, or already redeemed.
    pub device: Option<&'a DeviceAuthorization>,
    pub decision: Option<Decision>,
    /// When the device last polled (by this provider's clock).
    pub last_poll: Option<UnixTime>,
    /// How many `slow_down`s the device was told.
    pub slow_downs: i64,
    /// Another poll that read the same `last_poll` went on first (polls at once, on any
    /// instance): this one is too soon.
    pub raced: bool,
}

/// The tolerance of the interval check: `now` is whole seconds, so polls 4.99 s apart
/// across a second boundary would otherwise count as 4 s and be slowed down for good.
pub const POLL_SLACK: i64 = 1;

/// The interval the device must keep now: §3.5, each `slow_down` adds 5 seconds "for
/// this and all subsequent requests".
pub fn current_interval(device: &DeviceAuthorization, slow_downs: i64) -> i64 {
    device.interval + SLOW_DOWN_STEP * slow_downs
}

/// §3.5: the answer to a poll by `client_id` at `now`, before any token: `Ok` when the
/// user approved (the caller takes the record, then calls `exchange`).
pub fn poll(polled: &Polled<'_>, client_id: &str, now: UnixTime) -> Result<(), OAuthError> {
    let device = polled
        .device
        .ok_or_else(|| OAuthError::invalid_grant("unknown, expired or used device code"))?;
    // RFC 6749 §5.2 (which §3.5 extends): a grant "issued to another client" is
    // `invalid_grant`; nothing of the other client's request changes.
    if device.client_id != client_id {
        return Err(OAuthError::invalid_grant(
            "the device code was issued to another client",
        ));
    }
    if !device.is_live(now) {
        return Err(OAuthError::new(
            ErrorCode::ExpiredToken,
            "the device code has expired; start again",
        ));
    }
    let too_soon = polled
        .last_poll
        .is_some_and(|last| now - last < current_interval(device, polled.slow_downs) - POLL_SLACK);
    if too_soon || polled.raced {
        return Err(OAuthError::new(
            ErrorCode::SlowDown,
            "polled faster than the interval; the interval grows by 5 seconds",
        ));
    }
    match polled.decision {
        None => Err(OAuthError::new(
            ErrorCode::AuthorizationPending,
            "the user has not decided yet",
        )),
        Some(Decision::Denied) => Err(OAuthError::new(
            ErrorCode::AccessDenied,
            "the user denied the request",
        )),
        Some(Decision::Approved) => Ok(()),
    }
}

/// §3.5 `slow_down`: "the interval MUST be increased by 5 seconds for this and all
/// subsequent requests".
pub const SLOW_DOWN_STEP: i64 = 5;
/// What the approval's authorization code is derived under (from the device code).
const GRANT_CODE: &str = "device-grant";

/// A device authorization as the session store keeps it, under the hash of its device
/// code: no code in it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceAuthorization {
    pub client_id: String,
    pub client_name: String,
    /// The scopes asked for, already checked against the client (`client_scopes`).
    pub scope: String,
    pub expires_at: UnixTime,
    /// The interval the device was told (before any `slow_down`).
    pub interval: i64,
    /// `token_hash` of the device code: the key of this record.
    pub device_code_hash: String,
    /// `user_code_hash` of the user code (keyed under the KEK): the key of its pointer.
    pub user_code_hash: String,
    /// `token_hash` of the authorization code an approval records: only the device code
    /// derives the code itself (`grant_code`).
    pub grant_code_hash: String,
}

impl DeviceAuthorization {
    pub fn is_live(&self, now: UnixTime) -> bool {
        self.expires_at > now
    }

    /// The seconds left, for the store's time to live (at least one).
    pub fn seconds_left(&self, now: UnixTime) -> u64 {
        (self.expires_at - now).max(1) as u64
    }
}

/// The authorization code an approval records for `device_code`: derived under the key
/// encryption key, so that neither the store nor the page side needs the device code.
pub fn grant_code(kek: &KeyEncryptionKey, device_code: &str) -> String {
    kek.derive(GRANT_CODE, device_code)
}

/// Redeems the approval of `request`'s device code: the authorization code the
/// approval recorded is derived from the device code (`device::grant_code`), and the
/// code grant issues the tokens, once (its redemption is atomic in the database).
pub fn exchange(
    request: DeviceCodeRequest,
    client: &Client,
    ctx: &Context<'_>,
) -> Result<TokenResponse, OAuthError> {
    let code = grant_code(ctx.kek, &request.device_code);
    authorization_code::exchange(CodeRequest::of_device(code), client, ctx)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::testing::START;

    fn device() -> DeviceAuthorization {
        DeviceAuthorization {
            client_id: "tv".into(),
            client_name: "TV".into(),
            scope: "openid".into(),
            expires_at: START + 600,
            interval: 5,
            device_code_hash: "d".into(),
            user_code_hash: "u".into(),
            grant_code_hash: "g".into(),
        }
    }

    fn polled(device: &DeviceAuthorization) -> Polled<'_> {
        Polled {
            device: Some(device),
            decision: None,
            last_poll: None,
            slow_downs: 0,
            raced: false,
        }
    }

    fn refused(answer: Result<(), OAuthError>) -> ErrorCode {
        answer.unwrap_err().code
    }

    #[test]
    fn an_undecided_request_is_pending() {
        let d = device();
        assert_eq!(
            refused(poll(&polled(&d), "tv", START)),
            ErrorCode::AuthorizationPending
        );
    }

    #[test]
    fn an_approved_request_is_redeemed_and_a_denied_one_is_access_denied() {
        let d = device();
        let approved = Polled {
            decision: Some(Decision::Approved),
            ..polled(&d)
        };
        assert!(poll(&approved, "tv", START).is_ok());
        let denied = Polled {
            decision: Some(Decision::Denied),
            ..polled(&d)
        };
        assert_eq!(refused(poll(&denied, "tv", START)), ErrorCode::AccessDenied);
    }

    #[test]
    fn an_unknown_device_code_is_an_invalid_grant() {
        let unknown = Polled {
            device: None,
            decision: Some(Decision::Approved),
            last_poll: None,
            slow_downs: 0,
            raced: false,
        };
        assert_eq!(
            refused(poll(&unknown, "tv", START)),
            ErrorCode::InvalidGrant
        );
    }

    #[test]
    fn another_clients_device_code_is_an_invalid_grant_even_approved() {
        let d = device();
        let approved = Polled {
            decision: Some(Decision::Approved),
            ..polled(&d)
        };
        assert_eq!(
            refused(poll(&approved, "other", START)),
            ErrorCode::InvalidGrant
        );
    }

    #[test]
    fn a_device_code_expires_at_its_expiry_and_not_a_second_before() {
        let d = device();
        let approved = Polled {
            decision: Some(Decision::Approved),
            ..polled(&d)
        };
        assert!(poll(&approved, "tv", d.expires_at - 1).is_ok());
        assert_eq!(
            refused(poll(&approved, "tv", d.expires_at)),
            ErrorCode::ExpiredToken
        );
        assert_eq!(
            refused(poll(&approved, "tv", d.expires_at + 1)),
            ErrorCode::ExpiredToken
        );
    }

    #[test]
    fn polling_faster_than_the_interval_is_slow_down_and_at_the_interval_is_not() {
        let d = device();
        let waited = |slow_downs: i64| Polled {
            last_poll: Some(START),
            slow_downs,
            ..polled(&d)
        };
        assert_eq!(
            refused(poll(&waited(0), "tv", START + 3)),
            ErrorCode::SlowDown
        );
        // One second of slack: 4.99 s apart may read as 4.
        assert_eq!(
            refused(poll(&waited(0), "tv", START + 4)),
            ErrorCode::AuthorizationPending
        );
        assert_eq!(
            refused(poll(&waited(0), "tv", START + 5)),
            ErrorCode::AuthorizationPending
        );
        // After one slow_down the interval is 10 s.
        assert_eq!(
            refused(poll(&waited(1), "tv", START + 8)),
            ErrorCode::SlowDown
        );
        assert_eq!(
            refused(poll(&waited(1), "tv", START + 9)),
            ErrorCode::AuthorizationPending
        );
        assert_eq!(current_interval(&d, 0), 5);
        assert_eq!(current_interval(&d, 2), 15);
    }

    #[test]
    fn a_poll_that_lost_the_race_to_another_at_once_is_slow_down_even_approved() {
        let d = device();
        let raced = Polled {
            decision: Some(Decision::Approved),
            raced: true,
            ..polled(&d)
        };
        assert_eq!(refused(poll(&raced, "tv", START)), ErrorCode::SlowDown);
    }

    #[test]
    fn an_approval_redeems_once_for_the_code_flows_tokens_and_nothing_before_it() {
        use crate::protocol::authorize::{AuthorizationRequest, issue_device_code};
        use crate::protocol::testing::TestWorld;
        use crate::sessions::SsoSession;
        use crate::store::{AuthMethod, BrowserSession};

        let world = TestWorld::default();
        let alice = world.add_user("alice");
        let (client, _) = world.add_client("tv", AuthMethod::None);
        let ctx = world.ctx();
        world
            .store
            .record_session(&BrowserSession {
                sid: "sid-1".into(),
                user_id: alice.id.clone(),
                store_key: "k".into(),
                created_at: ctx.now,
                expires_at: ctx.now + 3600,
                ended_at: None,
                user_agent: None,
                ip_address: None,
            })
            .unwrap();
        let session = SsoSession {
            id: "cookie".into(),
            sid: "sid-1".into(),
            user_id: alice.id.clone(),
            auth_time: ctx.now - 10,
            amr: vec!["pwd".into(), "otp".into()],
            level: Default::default(),
            methods: Vec::new(),
            expires_at: ctx.now + 3600,
            idp: None,
            upstream_id_token: None,
        };
        let request = |code: &str| DeviceCodeRequest {
            device_code: code.into(),
        };
        let before = exchange(request("device-code-1"), &client, &ctx);
        assert_eq!(before.unwrap_err().code, ErrorCode::InvalidGrant);
        let approved = AuthorizationRequest {
            client_id: "tv".into(),
            scope: "offline_access openid".into(),
            ..AuthorizationRequest::default()
        };
        let code_hash = token_hash(&grant_code(ctx.kek, "device-code-1"));
        issue_device_code(&approved, &session, &code_hash, ctx.now + 600, &ctx).unwrap();
        // Another device code derives another code.
        let other = exchange(request("device-code-2"), &client, &ctx);
        assert_eq!(other.unwrap_err().code, ErrorCode::InvalidGrant);
        let tokens = exchange(request("device-code-1"), &client, &ctx).unwrap();
        assert_eq!(tokens.scope, "offline_access openid");
        assert!(tokens.refresh_token.is_some());
        let id_token = tokens.id_token.unwrap();
        let claims: serde_json::Value = {
            use base64::Engine;
            let payload = id_token.split('.').nth(1).unwrap();
            let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(payload)
                .unwrap();
            serde_json::from_slice(&bytes).unwrap()
        };
        assert_eq!(claims["sid"], "sid-1");
        assert_eq!(claims["amr"], serde_json::json!(["pwd", "otp"]));
        let again = exchange(request("device-code-1"), &client, &ctx);
        assert_eq!(again.unwrap_err().code, ErrorCode::InvalidGrant);
    }

    #[test]
    fn a_device_code_never_appears_in_debug_output() {
        let request = DeviceCodeRequest {
            device_code: "the-secret-code".into(),
        };
        assert!(!format!("{request:?}").contains("the-secret-code"));
        assert_eq!(request.device_code_hash(), token_hash("the-secret-code"));
    }

    #[test]
    fn a_device_code_is_required() {
        let params = Params::new(vec![]);
        assert_eq!(
            DeviceCodeRequest::parse(&params).unwrap_err().code,
            ErrorCode::InvalidRequest
        );
        let params = Params::new(vec![("device_code".into(), "abc".into())]);
        assert_eq!(
            DeviceCodeRequest::parse(&params)
                .unwrap()
                .device_code_hash(),
            token_hash("abc")
        );
    }

    #[test]
    fn a_device_code_request_shows_its_shape_in_debug_but_never_its_code() {
        let request = DeviceCodeRequest {
            device_code: "dc-secret-4711".into(),
        };
        let shown = format!("{request:?}");
        assert!(shown.contains("DeviceCodeRequest"), "{shown}");
        assert!(shown.contains("[redacted]"), "{shown}");
        assert!(!shown.contains("dc-secret-4711"), "{shown}");
    }
}
