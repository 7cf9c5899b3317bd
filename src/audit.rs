//! Security events, one structured log line each (target `audit`, so they can be routed
//! apart from the access log), in one vocabulary. They name accounts, clients and
//! addresses, never a password, secret, code or token; a username that failed to sign in
//! is logged as a short keyed hash (people type passwords into the username field, and an
//! unkeyed hash would give them away to a dictionary).

use crate::crypto::kek::KeyEncryptionKey;
use crate::domain::UsernameKey;

/// The reference to an account name in audit lines: the same for every line of one name,
/// and reversible by nobody without the key-encryption key. Names are compared as the store
/// compares them (`UsernameKey`), so one account has one reference in every case.
pub fn account_ref(kek: &KeyEncryptionKey, username: &str) -> String {
    kek.derive("audit-account", UsernameKey::new(username).as_str())[..12].to_owned()
}

pub fn login_succeeded(sub: &str, client_address: &str) {
    tracing::info!(target: "audit", event = "login.succeeded", sub, client = client_address);
}

/// The right password for a disabled account.
pub fn login_refused_disabled(sub: &str, client_address: &str) {
    tracing::info!(target: "audit", event = "login.refused_disabled", sub, client = client_address);
}

pub fn login_failed(account: &str, client_address: &str) {
    tracing::info!(target: "audit", event = "login.failed", account = %account, client = client_address);
}

pub fn login_throttled(account: &str, client_address: &str) {
    tracing::info!(target: "audit", event = "login.throttled", account = %account, client = client_address);
}

pub fn consent_given(sub: &str, client_id: &str, scope: &str) {
    tracing::info!(target: "audit", event = "consent.given", sub, client_id, scope);
}

pub fn consent_denied(sub: &str, client_id: &str) {
    tracing::info!(target: "audit", event = "consent.denied", sub, client_id);
}

/// A user approved a device's request on the `/device` page (RFC 8628 §3.3).
pub fn device_approved(sub: &str, client_id: &str, scope: &str, client_address: &str) {
    tracing::info!(target: "audit", event = "device.approved", sub, client_id, scope, client = client_address);
}

/// A user denied a device's request on the `/device` page.
pub fn device_denied(sub: &str, client_id: &str, client_address: &str) {
    tracing::info!(target: "audit", event = "device.denied", sub, client_id, client = client_address);
}

/// A wrong or expired user code was typed on the `/device` page.
pub fn device_code_refused(client_address: &str, throttled: bool) {
    tracing::info!(target: "audit", event = "device.code_refused", throttled, client = client_address);
}

pub fn tokens_issued(grant_type: &str, client_id: &str) {
    tracing::info!(target: "audit", event = "tokens.issued", grant_type, client_id);
}

pub fn token_revoked(client_id: &str) {
    tracing::info!(target: "audit", event = "token.revoked", client_id);
}

/// A refresh token was replayed after rotation: its whole family was revoked.
pub fn refresh_token_reused(client_id: &str, grant_id: &str) {
    tracing::warn!(target: "audit", event = "grant.revoked_on_reuse", client_id, grant_id);
}

/// An authorization code was presented again by its client: what it issued was revoked.
pub fn code_reused(client_id: &str, grant_id: &str) {
    tracing::warn!(target: "audit", event = "grant.revoked_on_reuse", client_id, grant_id, via = "code");
}

/// RFC 8693: `client_id` exchanged a token of `sub` for one to `audience`, acting as
/// `actor` (empty: impersonation).
pub fn token_exchanged(sub: &str, actor: &str, client_id: &str, audience: &str) {
    tracing::info!(target: "audit", event = "token.exchanged", sub, actor, client_id, audience);
}

pub fn client_registered(client_id: &str, how: &str) {
    tracing::info!(target: "audit", event = "client.registered", client_id, how);
}

pub fn client_removed(client_id: &str) {
    tracing::info!(target: "audit", event = "client.removed", client_id);
}

pub fn key_rotated(kid: &str, alg: &str, scheduled: bool) {
    tracing::info!(target: "audit", event = "key.rotated", kid, alg, scheduled);
}

pub fn password_changed(sub: &str) {
    tracing::info!(target: "audit", event = "password.changed", sub);
}

/// A password hash in another form (imported, or argon2 at other costs) was replaced by
/// our argon2id at a sign-in with the right password; `from` is the old kind.
pub fn password_upgraded(sub: &str, from: &str) {
    tracing::info!(target: "audit", event = "password.upgraded", sub, from);
}

/// Sessions ended, and why (`signed_out`, `ended_by_user`, `ended_by_operator`,
/// `signed_out_everywhere`, `user_removed`, `password_changed`, `second_factors_reset`,
/// `store_lost`: the session store came back empty, `store_loss`).
pub fn sessions_ended(sub: &str, sessions: usize, reason: &str) {
    tracing::info!(target: "audit", event = "sessions.ended", sub, sessions, reason);
}

pub fn consent_withdrawn(sub: &str, client_id: &str) {
    tracing::info!(target: "audit", event = "consent.withdrawn", sub, client_id);
}

/// A change made through administration (the admin API, the console, the CLI); the same
/// event is kept in the audit trail.
pub fn admin_change(actor: &str, action: &str, target: &str, address: &str) {
    tracing::info!(target: "audit", event = action, actor, object = target, client = address);
}

/// A second factor (`otp`, `recovery`, `passkey`) proved in a sign-in.
pub fn factor_used(sub: &str, kind: &str, client_address: &str) {
    tracing::info!(target: "audit", event = "factor.used", sub, kind, client = client_address);
}

/// A wrong code, or a passkey assertion that failed (never the code or assertion itself).
pub fn factor_failed(sub: &str, kind: &str, client_address: &str) {
    tracing::info!(target: "audit", event = "factor.failed", sub, kind, client = client_address);
}

pub fn factor_throttled(sub: &str, kind: &str, client_address: &str) {
    tracing::info!(target: "audit", event = "factor.throttled", sub, kind, client = client_address);
}

pub fn factor_enrolled(sub: &str, kind: &str, client_address: &str) {
    tracing::info!(target: "audit", event = "factor.enrolled", sub, kind, client = client_address);
}

pub fn factor_removed(sub: &str, kind: &str, client_address: &str) {
    tracing::info!(target: "audit", event = "factor.removed", sub, kind, client = client_address);
}

/// A password reset was asked for an account (never the link).
pub fn password_reset_requested(sub: &str, address: &str) {
    tracing::info!(target: "audit", event = "password.reset_requested", sub, address);
}

/// A password was reset by a link (and the account's second factors, if any).
pub fn password_reset(sub: &str, address: &str) {
    tracing::info!(target: "audit", event = "password.reset", sub, address);
}

/// An upstream identity provider's event (issue 24): `upstream.linked`,
/// `upstream.unlinked`, `upstream.jit_created`, `upstream.refused`; `detail` says how or
/// why. Never a token or a code.
pub fn upstream_event(event: &str, provider: &str, detail: &str, address: &str) {
    tracing::info!(target: "audit", event, provider, detail, address);
}

/// An address was verified by a link sent to it.
pub fn email_verified(sub: &str, address: &str) {
    tracing::info!(target: "audit", event = "email.verified", sub, address);
}
