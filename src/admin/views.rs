//! What the admin API answers: records as JSON, without secrets or hashes.

use serde::Serialize;
use serde_json::{Map, Value};

use crate::protocol::claims::all_claims;
use crate::store::{
    AuditEvent, BrowserSession, Consent, FactorSummary, Group, GroupMember, GroupSummary,
    PasskeySummary, StoredKey, TotpSummary, User,
};

#[derive(Debug, Serialize)]
pub struct UserView {
    /// The user's `sub` (for clients with public subject identifiers).
    pub id: String,
    pub username: String,
    pub admin: bool,
    pub disabled: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub disabled_at: Option<i64>,
    /// An administrator requires a second factor of the user.
    pub mfa_required: bool,
    pub created_at: i64,
    pub updated_at: i64,
    /// Standard claims the user has, `sub` and `preferred_username` aside.
    pub claims: Map<String, Value>,
    /// The groups the user belongs to, by name: in the view of one user (listings leave
    /// it out).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub groups: Option<Vec<GroupRef>>,
}

impl UserView {
    pub fn of(user: &User) -> Self {
        let mut claims = all_claims(user);
        claims.remove("sub");
        claims.remove("preferred_username");
        Self {
            id: user.id.clone(),
            username: user.username.clone(),
            admin: user.is_admin,
            disabled: user.disabled_at.is_some(),
            disabled_at: user.disabled_at,
            mfa_required: user.mfa_required,
            created_at: user.created_at,
            updated_at: user.updated_at,
            claims,
            groups: None,
        }
    }
}

/// A group: its name as the `groups` claim says it, and how many members it has.
#[derive(Debug, Serialize)]
pub struct GroupView {
    pub id: String,
    pub name: String,
    pub members: i64,
    pub created_at: i64,
    pub updated_at: i64,
}

impl GroupView {
    pub fn of(summary: &GroupSummary) -> Self {
        Self {
            id: summary.group.id.clone(),
            name: summary.group.name.clone(),
            members: summary.members,
            created_at: summary.group.created_at,
            updated_at: summary.group.updated_at,
        }
    }
}

/// A group as a user's view names it.
#[derive(Debug, Serialize)]
pub struct GroupRef {
    pub id: String,
    pub name: String,
}

impl GroupRef {
    pub fn of(group: &Group) -> Self {
        Self {
            id: group.id.clone(),
            name: group.name.clone(),
        }
    }
}

/// A member of a group: the user (`id` is the user's `sub`) and when they were added.
#[derive(Debug, Serialize)]
pub struct MemberView {
    pub id: String,
    pub username: String,
    pub added_at: i64,
}

impl MemberView {
    pub fn of(member: &GroupMember) -> Self {
        Self {
            id: member.user_id.clone(),
            username: member.username.clone(),
            added_at: member.added_at,
        }
    }
}

/// One page of users; `next_after` is the `after` of the next page, if there is one.
#[derive(Debug, Serialize)]
pub struct UserPage {
    pub users: Vec<UserView>,
    pub next_after: Option<String>,
}

/// One page of clients (each as the admin API describes it, `clients::describe`);
/// `next_after` is the `after` of the next page, if there is one.
#[derive(Debug, Serialize)]
pub struct ClientPage {
    pub clients: Vec<serde_json::Value>,
    pub next_after: Option<String>,
}

/// A user's second factors: kinds, names and times. Built from `FactorSummary`, which
/// holds no secret; the sealed TOTP secret, the recovery-code hashes and the passkeys'
/// credentials (public keys, counters) never reach it.
#[derive(Debug, Serialize)]
pub struct FactorsView {
    /// The one-time code authenticator, once confirmed (a pending enrolment is none).
    pub totp: Option<TotpView>,
    /// Oldest first.
    pub passkeys: Vec<PasskeyView>,
    pub recovery_codes_left: i64,
}

#[derive(Debug, Serialize)]
pub struct TotpView {
    /// When the enrolment began (the account's security page says "added" of it).
    pub created_at: i64,
    /// When the first code confirmed it: a factor since then.
    pub confirmed_at: i64,
    pub last_used_at: Option<i64>,
}

#[derive(Debug, Serialize)]
pub struct PasskeyView {
    pub id: String,
    pub name: String,
    pub created_at: i64,
    pub last_used_at: Option<i64>,
    /// The credential may be synced to other devices (WebAuthn's BE flag).
    pub backup_eligible: bool,
    /// It is synced, as last seen (the BS flag).
    pub backed_up: bool,
}

impl FactorsView {
    pub fn of(summary: &FactorSummary) -> Self {
        Self {
            totp: summary.totp.as_ref().map(TotpView::of),
            passkeys: summary.passkeys.iter().map(PasskeyView::of).collect(),
            recovery_codes_left: summary.recovery_codes_left,
        }
    }

    /// Whether there is anything a reset would remove.
    pub fn is_empty(&self) -> bool {
        self.totp.is_none() && self.passkeys.is_empty() && self.recovery_codes_left == 0
    }
}

impl TotpView {
    fn of(t: &TotpSummary) -> Self {
        Self {
            created_at: t.created_at,
            confirmed_at: t.confirmed_at,
            last_used_at: t.last_used_at,
        }
    }
}

impl PasskeyView {
    fn of(p: &PasskeySummary) -> Self {
        Self {
            id: p.id.clone(),
            name: p.name.clone(),
            created_at: p.created_at,
            last_used_at: p.last_used_at,
            backup_eligible: p.backup_eligible,
            backed_up: p.backed_up,
        }
    }
}

#[derive(Debug, Serialize)]
pub struct SessionView {
    pub sid: String,
    pub user_id: String,
    pub created_at: i64,
    pub expires_at: i64,
    pub ip_address: Option<String>,
    /// The browser, as the account page names it ("Firefox on Linux").
    pub browser: String,
}

impl SessionView {
    pub fn of(s: &BrowserSession) -> Self {
        Self {
            sid: s.sid.clone(),
            user_id: s.user_id.clone(),
            created_at: s.created_at,
            expires_at: s.expires_at,
            ip_address: s.ip_address.clone(),
            browser: crate::domain::describe_user_agent(s.user_agent.as_deref().unwrap_or("")),
        }
    }
}

#[derive(Debug, Serialize)]
pub struct ConsentView {
    pub client_id: String,
    pub scope: String,
    pub granted_at: i64,
}

impl ConsentView {
    pub fn of(c: &Consent) -> Self {
        Self {
            client_id: c.client_id.clone(),
            scope: c.scope.clone(),
            granted_at: c.granted_at,
        }
    }
}

#[derive(Debug, Serialize)]
pub struct KeyView {
    pub kid: String,
    pub alg: String,
    pub created_at: i64,
    /// It signs from then on (it is published before).
    pub activates_at: i64,
    /// Leaves the JWKS then, once the tokens it signed have expired.
    pub retires_at: Option<i64>,
}

impl KeyView {
    pub fn of(k: &StoredKey) -> Self {
        Self {
            kid: k.kid.clone(),
            alg: k.alg.clone(),
            created_at: k.created_at,
            activates_at: k.activates_at,
            retires_at: k.retired_at,
        }
    }
}

#[derive(Debug, Serialize)]
pub struct AuditView {
    pub id: i64,
    pub at: i64,
    pub actor: String,
    pub action: String,
    pub target: Option<String>,
    pub address: Option<String>,
    pub details: Value,
}

impl AuditView {
    pub fn of(e: AuditEvent) -> Self {
        Self {
            details: e
                .details
                .as_deref()
                .and_then(|d| serde_json::from_str(d).ok())
                .unwrap_or(Value::Null),
            id: e.id,
            at: e.at,
            actor: e.actor,
            action: e.action,
            target: e.target,
            address: e.address,
        }
    }
}
