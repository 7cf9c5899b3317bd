//! The device authorization request (RFC 8628 §3.1–§3.3): a device that cannot show a
//! sign-in page asks for a device code (which it polls the token endpoint with) and a
//! user code (which its user types on the `/device` page of another screen).
//!
//! Only hashes are kept: the session store holds the request under the hash of the
//! device code and a pointer under the hash of the user code; neither code can be
//! rebuilt from what is stored (§5.2: "The device code ... MUST NOT be guessable").

use serde::Serialize;

use super::authorize::{AuthorizationRequest, Prompt, client_scopes};
pub use super::grants::device_code::{DeviceAuthorization, grant_code};
use super::{Context, ErrorCode, OAuthError, Params};
use crate::crypto::kek::KeyEncryptionKey;
use crate::crypto::tokens::{random_bytes, random_token, token_hash};
use crate::domain::{GrantType, UnixTime};
use crate::store::Client;

/// §6.1: "the characters [should be] restricted to a set that avoids ... similar looking
/// characters": the consonants but Y, uppercase, no digits (no vowel spells a word, no
/// 0/O or 1/I/L confusion). Typed in any case.
pub const USER_CODE_ALPHABET: &[u8; 20] = b"BCDFGHJKLMNPQRSTVWXZ";
/// Shown as `XXXX-XXXX`.
pub const USER_CODE_LENGTH: usize = 8;
/// How long the codes live (`expires_in`, §3.2).
pub const DEVICE_CODE_TTL: i64 = 600;
/// The polling interval the response names (§3.2; its default is 5 s).
pub const POLL_INTERVAL: i64 = 5;
/// Wrong user codes one client address may type in [`USER_CODE_GUESS_WINDOW`] seconds.
///
/// §5.1: the space must be large enough for the lifetime. It holds 20^8 = 2.56e10
/// codes. An address gets 10 wrong guesses per 10 minutes (one code lifetime), so with
/// even 100,000 codes waiting at once one address finds one with a chance of at most
/// 10 * 1e5 / 2.56e10 ≈ 4e-5 per lifetime; 1,000 addresses together, 4 %. (The user's
/// consent page still shows which device asks, and the right code is needed by nobody
/// but its own user.)
pub const USER_CODE_GUESSES: i64 = 10;
pub const USER_CODE_GUESS_WINDOW: i64 = DEVICE_CODE_TTL;
/// How long past its lifetime the session store keeps a device authorization's records.
pub const KEPT_GRACE: i64 = 120;
/// How long the session store keeps a device authorization's records: its lifetime and
/// a short grace, so that a poll just after it expired is told `expired_token` (§3.5)
/// rather than that it never was (the expiry itself is decided on `expires_at`, by the
/// provider's clock, not the store's), and no longer (each request holds store entries:
/// `device_authorizations_per_address` bounds how many one address holds).
pub const KEPT_FOR: std::time::Duration =
    std::time::Duration::from_secs((DEVICE_CODE_TTL + KEPT_GRACE) as u64);
/// How many new user codes to draw when one drawn is still held by another device.
pub const USER_CODE_DRAWS: usize = 3;
/// What the key a user code is found by is derived under: the user code space is small
/// (2^34.6), so an unkeyed hash in a store dump would be inverted in a second.
const USER_CODE_KEY: &str = "device-user-code";

/// The authorization request the user's sign-in and consent answer (the interaction
/// of `/authorize`): consent is always asked (§5.4: the user confirms the device),
/// and nothing goes back through a browser.
pub fn authorization_request(device: &DeviceAuthorization) -> AuthorizationRequest {
    AuthorizationRequest {
        client_id: device.client_id.clone(),
        scope: device.scope.clone(),
        prompt: vec![Prompt::Consent],
        ..AuthorizationRequest::default()
    }
}

/// A device authorization just made: the codes (given to the device once, never
/// stored) and the record.
pub struct Issued {
    pub device_code: String,
    /// In its display form, `XXXX-XXXX`.
    pub user_code: String,
    pub record: DeviceAuthorization,
}

/// The codes are credentials: never in a log line.
impl std::fmt::Debug for Issued {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Issued")
            .field("device_code", &"[redacted]")
            .field("user_code", &"[redacted]")
            .field("record", &self.record)
            .finish()
    }
}

/// RFC 8628 §3.2.
#[derive(Serialize)]
pub struct DeviceAuthorizationResponse {
    pub device_code: String,
    pub user_code: String,
    pub verification_uri: String,
    pub verification_uri_complete: String,
    pub expires_in: i64,
    pub interval: i64,
}

impl std::fmt::Debug for DeviceAuthorizationResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeviceAuthorizationResponse")
            .field("device_code", &"[redacted]")
            .field("user_code", &"[redacted]")
            .field("verification_uri", &self.verification_uri)
            .field("expires_in", &self.expires_in)
            .field("interval", &self.interval)
            .finish()
    }
}

impl Issued {
    /// Another user code, for when the one drawn is still held by another device (the
    /// caller saw its pointer taken): the record's key follows.
    pub fn redraw_user_code(&mut self, kek: &KeyEncryptionKey) {
        self.user_code = new_user_code(&mut random_bytes);
        self.record.user_code_hash = user_code_hash(kek, &self.user_code).unwrap_or_default();
    }

    /// The response, with `verification_uri` the `/device` page.
    pub fn response(self, verification_uri: &str, now: UnixTime) -> DeviceAuthorizationResponse {
        let complete =
            url::Url::parse_with_params(verification_uri, [("user_code", &self.user_code)])
                .map(String::from)
                .unwrap_or_else(|_| verification_uri.to_owned());
        DeviceAuthorizationResponse {
            device_code: self.device_code,
            user_code: self.user_code,
            verification_uri: verification_uri.to_owned(),
            verification_uri_complete: complete,
            expires_in: self.record.expires_at - now,
            interval: self.record.interval,
        }
    }
}

/// §3.1: the request of an authenticated `client`.
pub fn authorize(
    params: &Params,
    client: &Client,
    ctx: &Context<'_>,
) -> Result<Issued, OAuthError> {
    if !client.may_use_grant(GrantType::DeviceCode) {
        return Err(OAuthError::new(
            ErrorCode::UnauthorizedClient,
            "client may not use the device authorization grant",
        ));
    }
    let scope = client_scopes(params.single("scope")?, client)?;
    let device_code = random_token(32);
    let user_code = new_user_code(&mut random_bytes);
    Ok(Issued {
        record: DeviceAuthorization {
            client_id: client.id.clone(),
            client_name: client.name.clone(),
            scope: scope.to_string(),
            expires_at: ctx.now + DEVICE_CODE_TTL,
            interval: POLL_INTERVAL,
            device_code_hash: token_hash(&device_code),
            user_code_hash: user_code_hash(ctx.kek, &user_code).unwrap_or_default(),
            grant_code_hash: token_hash(&grant_code(ctx.kek, &device_code)),
        },
        device_code,
        user_code,
    })
}

/// A new user code in display form, drawn from `random` (uniformly: bytes at or above
/// the largest multiple of the alphabet's size are drawn again).
pub fn new_user_code(random: &mut dyn FnMut(usize) -> Vec<u8>) -> String {
    let n = USER_CODE_ALPHABET.len();
    let limit = 256 - 256 % n;
    let mut chars = Vec::with_capacity(USER_CODE_LENGTH + 1);
    while chars.len() < USER_CODE_LENGTH {
        for byte in random(USER_CODE_LENGTH) {
            if usize::from(byte) < limit && chars.len() < USER_CODE_LENGTH {
                chars.push(USER_CODE_ALPHABET[usize::from(byte) % n]);
            }
        }
    }
    chars.insert(USER_CODE_LENGTH / 2, b'-');
    String::from_utf8(chars).unwrap_or_default()
}

/// A typed user code in its canonical form (uppercase, no dash or space), or `None` if
/// it cannot be one: §6.1, the code is compared without case or punctuation.
pub fn canonical_user_code(typed: &str) -> Option<String> {
    let code: String = typed
        .chars()
        .filter(|c| !c.is_whitespace() && *c != '-')
        .map(|c| c.to_ascii_uppercase())
        .collect();
    (code.len() == USER_CODE_LENGTH && code.bytes().all(|b| USER_CODE_ALPHABET.contains(&b)))
        .then_some(code)
}

/// A typed user code in display form (for a prefilled form): its canonical form with
/// the dash, or the text as typed.
pub fn display_user_code(typed: &str) -> String {
    match canonical_user_code(typed) {
        Some(code) => format!(
            "{}-{}",
            &code[..USER_CODE_LENGTH / 2],
            &code[USER_CODE_LENGTH / 2..]
        ),
        None => typed.chars().take(32).collect(),
    }
}

/// The user code in display form sealed under the KEK for `device` (bound to its device
/// code's hash): carried by the interaction to the consent page, never in clear.
pub fn seal_user_code(
    kek: &KeyEncryptionKey,
    device: &DeviceAuthorization,
    typed: &str,
) -> Option<String> {
    let display = display_user_code(canonical_user_code(typed)?.as_str());
    kek.encrypt(display.as_bytes(), &sealed_context(device))
        .ok()
}

/// The display user code `seal_user_code` sealed for `device`.
pub fn open_user_code(
    kek: &KeyEncryptionKey,
    device: &DeviceAuthorization,
    sealed: &str,
) -> Option<String> {
    let plain = kek.decrypt(sealed, &sealed_context(device)).ok()?;
    String::from_utf8(plain).ok()
}

fn sealed_context(device: &DeviceAuthorization) -> String {
    format!("{USER_CODE_KEY}:{}", device.device_code_hash)
}

/// The key a user code is found by: its canonical form derived under the key encryption
/// key (as `grant_code`), so that a copy of the store cannot be searched for the codes.
pub fn user_code_hash(kek: &KeyEncryptionKey, typed: &str) -> Option<String> {
    canonical_user_code(typed).map(|c| kek.derive(USER_CODE_KEY, &c))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::testing::TestWorld;
    use crate::store::AuthMethod;

    fn params(pairs: &[(&str, &str)]) -> Params {
        Params::new(
            pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        )
    }

    fn device_client(world: &TestWorld) -> Client {
        let (mut client, _) = world.add_client("tv", AuthMethod::None);
        client.grant_types = vec![GrantType::DeviceCode, GrantType::RefreshToken];
        client
    }

    #[test]
    fn user_codes_are_eight_unambiguous_letters_with_a_dash() {
        for _ in 0..200 {
            let code = new_user_code(&mut random_bytes);
            assert_eq!(code.len(), 9, "{code}");
            assert_eq!(&code[4..5], "-");
            assert!(canonical_user_code(&code).is_some(), "{code}");
        }
    }

    #[test]
    fn a_user_code_draws_again_the_bytes_that_would_bias_it() {
        // 240 and above are drawn again; 0..20 map one to one.
        let mut rounds = vec![vec![255u8, 240, 0, 1, 2, 3, 4, 5, 6, 7], vec![19u8; 8]];
        rounds.reverse();
        let code = new_user_code(&mut |_| rounds.pop().unwrap_or_default());
        assert_eq!(code, "BCDF-GHJK");
        let mut last = vec![vec![239u8; 8]];
        let code = new_user_code(&mut |_| last.pop().unwrap_or_default());
        assert_eq!(code, "ZZZZ-ZZZZ", "239 % 20 = 19");
    }

    #[test]
    fn a_typed_user_code_is_read_without_case_dashes_or_spaces() {
        assert_eq!(
            canonical_user_code("bcdf-ghjk").as_deref(),
            Some("BCDFGHJK")
        );
        assert_eq!(
            canonical_user_code(" BCDF GHJK ").as_deref(),
            Some("BCDFGHJK")
        );
        assert_eq!(
            canonical_user_code("BC-DF-GH-JK").as_deref(),
            Some("BCDFGHJK")
        );
        let world = TestWorld::default();
        let kek = world.ctx().kek;
        assert_eq!(
            user_code_hash(kek, "bcdfghjk"),
            user_code_hash(kek, "BCDF-GHJK")
        );
        for wrong in [
            "BCDF-GHJ",
            "BCDF-GHJKL",
            "ABCD-EFGH",
            "BCDF-GHJ1",
            "",
            "BCDF-GHJÉ",
        ] {
            assert_eq!(canonical_user_code(wrong), None, "{wrong}");
        }
        assert_eq!(display_user_code("bcdfghjk"), "BCDF-GHJK");
        assert_eq!(display_user_code("nope"), "nope");
    }

    #[test]
    fn a_device_authorization_keeps_only_hashes_of_its_codes() {
        let world = TestWorld::default();
        let client = device_client(&world);
        let ctx = world.ctx();
        let issued = authorize(&params(&[("scope", "openid profile")]), &client, &ctx).unwrap();
        let record = &issued.record;
        assert_eq!(record.client_id, "tv");
        assert_eq!(record.scope, "openid profile");
        assert_eq!(record.expires_at, ctx.now + DEVICE_CODE_TTL);
        assert_eq!(record.interval, POLL_INTERVAL);
        assert_eq!(record.device_code_hash, token_hash(&issued.device_code));
        assert_eq!(
            record.user_code_hash,
            user_code_hash(ctx.kek, &issued.user_code).unwrap()
        );
        assert_eq!(
            record.grant_code_hash,
            token_hash(&grant_code(ctx.kek, &issued.device_code))
        );
        let stored = serde_json::to_string(record).unwrap();
        assert!(!stored.contains(&issued.device_code));
        assert!(!stored.contains(&canonical_user_code(&issued.user_code).unwrap()));
        let now = ctx.now;
        let user_code = issued.user_code.clone();
        let response = issued.response("https://op.example/device", now);
        assert_eq!(response.expires_in, DEVICE_CODE_TTL);
        assert_eq!(response.interval, 5);
        assert_eq!(
            response.verification_uri_complete,
            format!("https://op.example/device?user_code={user_code}")
        );
    }

    #[test]
    fn a_client_without_the_grant_type_is_unauthorized() {
        let world = TestWorld::default();
        let (client, _) = world.add_client("web", AuthMethod::None);
        let refused = authorize(&params(&[("scope", "openid")]), &client, &world.ctx());
        assert_eq!(refused.unwrap_err().code, ErrorCode::UnauthorizedClient);
    }

    #[test]
    fn a_scope_the_client_may_not_have_is_invalid() {
        let world = TestWorld::default();
        let client = device_client(&world);
        for scope in [None, Some("nothing-known"), Some("open\u{7f}id")] {
            let pairs: Vec<(&str, &str)> = scope.map(|s| ("scope", s)).into_iter().collect();
            let refused = authorize(&params(&pairs), &client, &world.ctx());
            assert_eq!(
                refused.unwrap_err().code,
                ErrorCode::InvalidScope,
                "{scope:?}"
            );
        }
    }

    #[test]
    fn a_device_authorization_is_live_until_it_expires_and_always_asks_consent() {
        let world = TestWorld::default();
        let client = device_client(&world);
        let ctx = world.ctx();
        let issued = authorize(&params(&[("scope", "openid")]), &client, &ctx).unwrap();
        let record = issued.record;
        assert!(record.is_live(record.expires_at - 1));
        assert!(!record.is_live(record.expires_at));
        assert_eq!(record.seconds_left(record.expires_at - 7), 7);
        assert_eq!(record.seconds_left(record.expires_at + 7), 1);
        let request = authorization_request(&record);
        assert_eq!(request.prompt, [Prompt::Consent]);
        assert_eq!(request.client_id, "tv");
        assert_eq!(request.scope, "openid");
        assert!(request.redirect_uri.is_empty());
    }

    #[test]
    fn a_user_code_is_found_by_a_key_derived_under_the_kek_not_a_plain_hash() {
        let world = TestWorld::default();
        let client = device_client(&world);
        let ctx = world.ctx();
        let issued = authorize(&params(&[("scope", "openid")]), &client, &ctx).unwrap();
        let canonical = canonical_user_code(&issued.user_code).unwrap();
        assert_ne!(issued.record.user_code_hash, token_hash(&canonical));
        assert_eq!(
            issued.record.user_code_hash,
            ctx.kek.derive("device-user-code", &canonical)
        );
    }

    #[test]
    fn debug_output_of_issued_codes_and_the_response_never_contains_a_code() {
        let world = TestWorld::default();
        let client = device_client(&world);
        let ctx = world.ctx();
        let issued = authorize(&params(&[("scope", "openid")]), &client, &ctx).unwrap();
        let (device_code, user_code) = (issued.device_code.clone(), issued.user_code.clone());
        let printed = format!("{issued:?}");
        assert!(!printed.contains(&device_code), "{printed}");
        assert!(!printed.contains(&user_code), "{printed}");
        // Redacted, not silent: the record is still there to debug with.
        assert!(printed.contains("device_code: \"[redacted]\""), "{printed}");
        assert!(printed.contains("client_id: \"tv\""), "{printed}");
        let response = issued.response("https://op.example/device", ctx.now);
        let printed = format!("{response:?}");
        assert!(!printed.contains(&device_code), "{printed}");
        assert!(!printed.contains(&user_code), "{printed}");
        assert!(printed.contains("user_code: \"[redacted]\""), "{printed}");
        assert!(printed.contains("https://op.example/device"), "{printed}");
    }

    #[test]
    fn the_store_keeps_a_device_authorization_its_lifetime_and_a_short_grace_only() {
        assert!(KEPT_FOR.as_secs() <= (DEVICE_CODE_TTL + 120) as u64);
        assert!(KEPT_FOR.as_secs() > DEVICE_CODE_TTL as u64);
    }

    #[test]
    fn a_redrawn_user_code_changes_the_key_it_is_found_by() {
        let world = TestWorld::default();
        let client = device_client(&world);
        let ctx = world.ctx();
        let mut issued = authorize(&params(&[("scope", "openid")]), &client, &ctx).unwrap();
        let before = (
            issued.user_code.clone(),
            issued.record.user_code_hash.clone(),
        );
        issued.redraw_user_code(ctx.kek);
        assert_ne!(issued.user_code, before.0);
        assert_ne!(issued.record.user_code_hash, before.1);
        assert_eq!(
            Some(issued.record.user_code_hash.clone()),
            user_code_hash(ctx.kek, &issued.user_code)
        );
    }

    #[test]
    fn a_sealed_user_code_opens_for_its_device_only_and_holds_no_clear_code() {
        let world = TestWorld::default();
        let client = device_client(&world);
        let ctx = world.ctx();
        let issued = authorize(&params(&[("scope", "openid")]), &client, &ctx).unwrap();
        let typed = issued.user_code.to_lowercase();
        let sealed = seal_user_code(ctx.kek, &issued.record, &typed).unwrap();
        assert!(!sealed.contains(&canonical_user_code(&typed).unwrap()));
        assert_eq!(
            open_user_code(ctx.kek, &issued.record, &sealed).as_deref(),
            Some(issued.user_code.as_str())
        );
        let other = DeviceAuthorization {
            device_code_hash: "another".into(),
            ..issued.record.clone()
        };
        assert_eq!(open_user_code(ctx.kek, &other, &sealed), None);
        assert_eq!(seal_user_code(ctx.kek, &issued.record, "nope"), None);
    }
}
