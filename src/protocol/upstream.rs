//! What a verified upstream identity leads to (issue 24): the rules, as plain Rust over
//! the store. The identity is keyed by (upstream issuer, upstream `sub`), never by email:
//!
//! 1. linked: its local account signs in (a disabled account is refused; a removed one
//!    left a tombstone, and is refused too, never silently replaced by a JIT account);
//! 2. unknown, `link = "verified_email"`, the upstream marks the email verified, its
//!    domain is one the provider is trusted for, and exactly one local account has that
//!    address, verified here too: linked, then signed in;
//! 3. unknown and `jit = true`: a new local account (unless an account has the address:
//!    then nothing is created, and the person is asked to sign in to link);
//! 4. otherwise: no account; the person may prove both sides to link ([`LinkProof`]).
//!
//! The network side (discovery, exchange, ID token verification) is `crate::upstream`'s.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use super::{Context, OAuthError};
use crate::config::{LinkMode, UpstreamProvider};
use crate::crypto::tokens::{constant_time_eq, random_uuid, token_hash};
use crate::domain::{Level, UnixTime, check_username};
use crate::mail::EmailAddress;
use crate::sessions::SsoSession;
use crate::store::{NewAuditEvent, StoreError, UpstreamIdentity, User};

/// An identity whose ID token was verified: who it is at the upstream, and its claims.
#[derive(Clone, Debug)]
pub struct VerifiedIdentity {
    pub provider: String,
    pub issuer: String,
    pub subject: String,
    pub claims: Map<String, Value>,
    /// The provider could not say which address is its user's (GitHub's `/user/emails`
    /// failed): an unknown identity gets no JIT account (one with the address may
    /// exist here), and a linked one keeps the address recorded before.
    pub email_unavailable: bool,
}

/// The profile the upstream's claims give, through the provider's claim mapping.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Profile {
    pub email: Option<String>,
    /// Only a JSON `true` counts (a string "true" is no verification).
    pub email_verified: bool,
    pub preferred_username: Option<String>,
    pub name: Option<String>,
    pub given_name: Option<String>,
    pub family_name: Option<String>,
    pub locale: Option<String>,
    pub picture: Option<String>,
}

impl Profile {
    /// The address to store on the identity and show (account page, link confirmation):
    /// only one the upstream marks verified. An unverified one is whatever its user
    /// typed (say, the victim's own address on a link confirmation page).
    pub fn shown_email(&self) -> Option<&str> {
        self.email.as_deref().filter(|_| self.email_verified)
    }
}

fn text_claim(claims: &Map<String, Value>, name: &str) -> Option<String> {
    claims
        .get(name)
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|s| !s.is_empty() && s.len() <= 1024)
        .map(str::to_owned)
}

/// The profile of `claims`, each of our claims read from the upstream claim the
/// provider maps to it (`[upstream.claims]`; by default the same name).
pub fn profile_of(provider: &UpstreamProvider, claims: &Map<String, Value>) -> Profile {
    let read = |ours: &str| text_claim(claims, provider.claim_source(ours));
    // An address as mail takes it (RFC 5322 addr-spec), at most 254 bytes (RFC 5321).
    let email = read("email").filter(|e| e.len() <= 254 && EmailAddress::parse(e).is_ok());
    // `email_verified` speaks of the `email` claim only (OIDC Core §5.1): an address read
    // from another claim (say `upn`) is never taken as verified. (The network side keeps
    // `email` and `email_verified` from one source: both the ID token's or both the
    // UserInfo's.)
    let verified_source = provider.claim_source("email") == "email";
    let flag = |name: &str| claims.get(name).and_then(Value::as_bool) == Some(true);
    let domain = email.as_deref().and_then(domain_of);
    let said_verified = match provider.preset.as_deref() {
        // Entra ID: `email` is set by the tenant's administrator (nOAuth); only
        // `xms_edov` ("email domain owner verified") says the tenant owns its domain.
        Some("microsoft") => flag("xms_edov"),
        // Google: a consumer account can be made on any address; only a Workspace
        // account whose `hd` is the address's domain (or Google's own gmail.com)
        // speaks for that domain.
        Some("google") => {
            flag("email_verified")
                && domain.as_deref().is_some_and(|d| {
                    d == "gmail.com"
                        || d == "googlemail.com"
                        || claims
                            .get("hd")
                            .and_then(Value::as_str)
                            .is_some_and(|hd| hd.eq_ignore_ascii_case(d))
                })
        }
        _ => flag("email_verified"),
    };
    Profile {
        email_verified: email.is_some() && verified_source && said_verified,
        email,
        preferred_username: read("preferred_username"),
        name: read("name"),
        given_name: read("given_name"),
        family_name: read("family_name"),
        locale: read("locale"),
        picture: read("picture").filter(|p| p.starts_with("https://")),
    }
}

/// The domain of an address, lower case.
fn domain_of(email: &str) -> Option<String> {
    email
        .rsplit_once('@')
        .map(|(_, d)| d.to_ascii_lowercase())
        .filter(|d| !d.is_empty())
}

/// Whether the provider may vouch for `profile`'s address: `link = "verified_email"`,
/// the upstream marks it verified, and its domain is one the provider is trusted for
/// (exactly, not a subdomain: a provider trusted for `corp.example` says nothing of
/// `evil.corp.example`). `Err(reason)`: the address is not trusted, and why.
pub fn trusted_email(
    provider: &UpstreamProvider,
    profile: &Profile,
) -> Result<String, &'static str> {
    if provider.link != LinkMode::VerifiedEmail {
        return Err("email_linking_off");
    }
    vouched_email(provider, profile)
}

/// Whether the provider vouches for `profile`'s address, whatever its `link` mode: the
/// upstream marks it verified, and its domain is one of the provider's
/// `trusted_email_domains` (exactly). Any provider can claim any address verified; only
/// the domains the operator trusts it for count (issue 24: "an email claimed verified
/// by a provider not trusted for it" is refused).
pub fn vouched_email(
    provider: &UpstreamProvider,
    profile: &Profile,
) -> Result<String, &'static str> {
    let Some(email) = &profile.email else {
        return Err("no_email");
    };
    if !profile.email_verified {
        return Err("email_unverified");
    }
    let domain = domain_of(email).ok_or("no_email")?;
    if !provider.trusted_email_domains.contains(&domain) {
        return Err("email_domain_untrusted");
    }
    Ok(email.clone())
}

/// The local account an address names for linking by verified email: exactly one
/// account has it, it is verified here too, and the account is enabled.
pub fn email_link_target<'a>(email: &str, accounts: &'a [User]) -> Option<&'a User> {
    let same: Vec<&User> = accounts
        .iter()
        .filter(|u| {
            u.email
                .as_deref()
                .is_some_and(|e| e.trim().eq_ignore_ascii_case(email.trim()))
        })
        .collect();
    match same.as_slice() {
        [one] if one.email_verified && one.disabled_at.is_none() => Some(one),
        _ => None,
    }
}

/// A username for a JIT account: the upstream's `preferred_username`, else the
/// address's local part, else the name, else "user"; made unique by a numbered suffix
/// (`taken` says whether a name is in use), then by a random one: names someone
/// registered in advance (`ann`, `ann2`, ...) cannot exhaust it. `None` when no
/// candidate is free.
pub fn derive_username<E>(
    profile: &Profile,
    mut taken: impl FnMut(&str) -> Result<bool, E>,
) -> Result<Option<String>, E> {
    let base = [
        profile.preferred_username.clone(),
        profile
            .email
            .as_deref()
            .and_then(|e| e.split_once('@'))
            .map(|(local, _)| local.to_owned()),
        profile.name.clone(),
    ]
    .into_iter()
    .flatten()
    .filter_map(|c| {
        let cleaned: String = c.chars().filter(|c| !c.is_control()).take(64).collect();
        check_username(&cleaned).ok()
    })
    .next()
    .unwrap_or_else(|| "user".to_owned());
    let candidates = std::iter::once(base.clone())
        .chain((2..10).map(|n| format!("{base}{n}")))
        .chain((0..5).map(|_| {
            let n = crate::crypto::tokens::random_bytes(4)
                .iter()
                .fold(0u32, |n, b| (n << 8) | u32::from(*b))
                % 1_000_000;
            format!("{base}-{n:06}")
        }));
    for candidate in candidates {
        if check_username(&candidate).is_ok() && !taken(&candidate)? {
            return Ok(Some(candidate));
        }
    }
    Ok(None)
}

/// What a verified identity leads to.
#[derive(Debug)]
pub enum Resolution {
    /// This local account signs in (linked before).
    SignIn { user: User },
    /// This local account has the identity's trusted, verified address: it signs in, and
    /// the identity is linked to it ([`link_by_email`]) only once the sign-in succeeded.
    LinkByEmail { user: User },
    /// No free username could be found for a JIT account: nothing made.
    NoUsername,
    /// The linked account is disabled.
    Disabled { user_id: String },
    /// The linked account was removed: the identity is refused (its tombstone).
    Removed,
    /// A new local account was made for it (JIT).
    Created { user: User },
    /// JIT would make an account, but one has the address: nothing is made; the person
    /// signs in to that account to link it.
    AddressTaken,
    /// The upstream claimed an address verified for a domain it is not trusted for:
    /// refused, nothing made (`upstream.refused` recorded).
    UntrustedEmail,
    /// No account, and none made: the person may link it to theirs.
    NoAccount,
    /// JIT would make an account, but the provider did not say the person's address
    /// (so whether an account here has it is unknown): nothing made, refused
    /// (`upstream.refused`, `email_unavailable`).
    EmailUnavailable,
}

fn event(
    ctx: &Context<'_>,
    actor: String,
    action: &str,
    target: Option<String>,
    address: &str,
    details: Value,
) -> NewAuditEvent {
    NewAuditEvent {
        at: ctx.now,
        actor,
        action: action.to_owned(),
        target,
        address: Some(address.to_owned()),
        details: Some(details.to_string()),
    }
}

/// Records a refused upstream sign-in (`upstream.refused`): the reason and the
/// provider, never a token or a code.
pub fn record_refusal(
    ctx: &Context<'_>,
    provider: &str,
    reason: &str,
    address: &str,
) -> Result<(), OAuthError> {
    ctx.store.record_audit_event(&event(
        ctx,
        "system".into(),
        "upstream.refused",
        None,
        address,
        json!({ "provider": provider, "reason": reason }),
    ))?;
    crate::audit::upstream_event("upstream.refused", provider, reason, address);
    Ok(())
}

/// Decides what `identity` leads to, and does it (a link by verified email, a JIT
/// account: each one transaction with its audit event).
pub fn resolve(
    ctx: &Context<'_>,
    provider: &UpstreamProvider,
    identity: &VerifiedIdentity,
    address: &str,
) -> Result<Resolution, OAuthError> {
    let profile = profile_of(provider, &identity.claims);
    let existing = ctx
        .store
        .find_upstream_identity(&identity.issuer, &identity.subject)?;
    if let Some(row) = &existing {
        if let Some(user_id) = &row.user_id {
            let Some(user) = ctx.store.find_user(user_id)? else {
                record_refusal(ctx, &provider.id, "account_removed", address)?;
                return Ok(Resolution::Removed);
            };
            if user.disabled_at.is_some() {
                record_refusal(ctx, &provider.id, "account_disabled", address)?;
                return Ok(Resolution::Disabled { user_id: user.id });
            }
            // Its last use is recorded by [`touch`] once the sign-in succeeded (its
            // second factor too): the upstream credentials alone change nothing.
            return Ok(Resolution::SignIn { user });
        }
        if row.is_tombstone() {
            record_refusal(ctx, &provider.id, "account_removed", address)?;
            return Ok(Resolution::Removed);
        }
    }
    let new_link = |user_id: &str| UpstreamIdentity {
        issuer: identity.issuer.clone(),
        subject: identity.subject.clone(),
        provider: provider.id.clone(),
        user_id: Some(user_id.to_owned()),
        email: profile.shown_email().map(str::to_owned),
        created_at: ctx.now,
        last_used_at: Some(ctx.now),
        unlinked_at: None,
    };
    // 2. Linking by verified email, where the operator opted in for the domain.
    if provider.link == LinkMode::VerifiedEmail {
        match trusted_email(provider, &profile) {
            Ok(email) => {
                let accounts = ctx.store.find_users_by_email(&email)?;
                if let Some(user) = email_link_target(&email, &accounts) {
                    // An account that has an identity of this issuer already is not
                    // given a second one by its address.
                    let has_one = ctx
                        .store
                        .list_upstream_identities(&user.id)?
                        .iter()
                        .any(|l| l.issuer == identity.issuer);
                    if !has_one {
                        // Nothing written yet: the link is made by [`link_by_email`]
                        // once the sign-in succeeded (its second factor too).
                        return Ok(Resolution::LinkByEmail { user: user.clone() });
                    }
                }
            }
            // A verified address of a domain the provider is not trusted for is never
            // linked; the refusal is recorded (the sign-in goes on as for any unknown
            // identity).
            Err(reason @ "email_domain_untrusted") if !provider.jit => {
                record_refusal(ctx, &provider.id, reason, address)?;
            }
            Err(_) => {}
        }
    }
    if !provider.jit {
        return Ok(Resolution::NoAccount);
    }
    // Without the address, a JIT account could be a second account of someone who has
    // one here (the address check below would find nothing): fail closed.
    if identity.email_unavailable {
        record_refusal(ctx, &provider.id, "email_unavailable", address)?;
        return Ok(Resolution::EmailUnavailable);
    }
    // 3. JIT. The address is copied only when the provider vouches for it (verified, of
    // a trusted domain): any upstream can claim any address verified, and an address
    // it is not trusted for would squat (or impersonate) someone else's.
    let vouched = vouched_email(provider, &profile);
    if profile.email_verified
        && !provider.trusted_email_domains.is_empty()
        && vouched == Err("email_domain_untrusted")
    {
        record_refusal(ctx, &provider.id, "email_domain_untrusted", address)?;
        return Ok(Resolution::UntrustedEmail);
    }
    let email = vouched.ok();
    // Nothing is made for a vouched address an account has (that would be a second
    // account for the same person). Only a vouched address is looked up: an
    // unvouched one is dropped unseen, so an upstream account with a chosen address
    // learns nothing of our accounts.
    if let Some(email) = &email
        && ctx.store.email_in_use(email)?
    {
        return Ok(Resolution::AddressTaken);
    }
    for _ in 0..5 {
        let Some(username) = derive_username(&profile, |name| ctx.store.username_in_use(name))?
        else {
            break;
        };
        let mut user = User::new(random_uuid(), username, String::new(), ctx.now);
        user.email_verified = email.is_some();
        user.email = email.clone();
        user.name = profile.name.clone();
        user.given_name = profile.given_name.clone();
        user.family_name = profile.family_name.clone();
        user.locale = profile.locale.clone();
        user.picture = profile.picture.clone();
        let created = ctx.store.create_upstream_user(
            &user,
            &new_link(&user.id),
            &event(
                ctx,
                format!("user:{}", user.username),
                "upstream.jit_created",
                Some(user.id.clone()),
                address,
                json!({ "provider": provider.id }),
            ),
        );
        match created {
            Ok(true) => {
                crate::audit::upstream_event("upstream.jit_created", &provider.id, "jit", address);
                return Ok(Resolution::Created { user });
            }
            // Linked by a racing callback meanwhile: resolve again.
            Ok(false) => return resolve(ctx, provider, identity, address),
            // The name was taken meanwhile: the next one.
            Err(StoreError::Conflict) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Ok(Resolution::NoUsername)
}

/// Records a successful sign-in through a linked identity: when, and its (verified)
/// address as the upstream says it now.
pub fn touch(
    ctx: &Context<'_>,
    provider: &UpstreamProvider,
    identity: &VerifiedIdentity,
) -> Result<(), OAuthError> {
    let profile = profile_of(provider, &identity.claims);
    // An address the provider could not tell this time is not taken for "none".
    let kept = if identity.email_unavailable {
        ctx.store
            .find_upstream_identity(&identity.issuer, &identity.subject)?
            .and_then(|row| row.email)
    } else {
        profile.shown_email().map(str::to_owned)
    };
    ctx.store.touch_upstream_identity(
        &identity.issuer,
        &identity.subject,
        kept.as_deref(),
        ctx.now,
    )?;
    Ok(())
}

/// How long a link proof lives.
pub const LINK_PROOF_TTL: i64 = 600;

/// The proof that a browser just signed in with an upstream identity that no account
/// has, kept server-side (the session store) until the person signs in locally in the
/// same browser and confirms the link. It is bound to that identity (issuer, subject),
/// to that browser (the hash of a cookie value only that browser got), taken once, and
/// dead once the identity is unlinked after it was issued (Keycloak's 2026 account
/// linking CVEs got each of these wrong).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct LinkProof {
    pub provider: String,
    pub issuer: String,
    pub subject: String,
    /// The upstream's address, shown on the confirmation page.
    pub email: Option<String>,
    /// Hash of the browser-binding cookie's value.
    pub browser: String,
    /// Hash of the browser id (the MAC'd cookie every page of ours sets) the upstream
    /// sign-in came back to: a binding cookie planted in another browser (by a sibling
    /// subdomain) is worthless there.
    #[serde(default)]
    pub known_browser: String,
    /// Hash of the `sid` of the session the proof's own local sign-in made
    /// ([`bind_session`]): only that sign-in confirms the link, never another session
    /// the browser happens to have.
    #[serde(default)]
    pub session: Option<String>,
    pub issued_at: UnixTime,
    /// The interaction the upstream sign-in came from, continued after the link.
    #[serde(default)]
    pub interaction: Option<String>,
}

/// Why a link confirmation is refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProofRefused {
    /// Not this browser's proof.
    OtherBrowser,
    /// The session is not the one the proof's local sign-in made.
    OtherSession,
    /// Too old.
    Expired,
    /// No local sign-in since the proof was issued, or not at the account's full level.
    NotSignedInSince,
    /// The identity is linked (to anyone) or a tombstone, or was unlinked after the
    /// proof was issued.
    IdentityChanged,
}

impl ProofRefused {
    pub fn reason(self) -> &'static str {
        match self {
            Self::OtherBrowser => "proof_other_browser",
            Self::OtherSession => "proof_other_session",
            Self::Expired => "proof_expired",
            Self::NotSignedInSince => "proof_no_fresh_sign_in",
            Self::IdentityChanged => "proof_identity_changed",
        }
    }
}

/// Whether `proof` may link its identity to `session`'s account now: the browser brings
/// the proof's cookie value, the proof is young, the session's methods that reach the
/// account's `level` were all proved after the proof was issued (a sign-in at full
/// strength in this flow, not a session left open), and the identity is still free.
pub fn check_proof(
    proof: &LinkProof,
    browser_value: Option<&str>,
    browser_id: Option<&str>,
    session: &SsoSession,
    level: Level,
    identity: Option<&UpstreamIdentity>,
    now: UnixTime,
) -> Result<(), ProofRefused> {
    let same_browser = browser_value
        .is_some_and(|v| constant_time_eq(token_hash(v).as_bytes(), proof.browser.as_bytes()));
    let same_id = browser_id.is_some_and(|v| {
        constant_time_eq(token_hash(v).as_bytes(), proof.known_browser.as_bytes())
    });
    if !same_browser || !same_id {
        return Err(ProofRefused::OtherBrowser);
    }
    let same_session = proof
        .session
        .as_deref()
        .is_some_and(|s| constant_time_eq(token_hash(&session.sid).as_bytes(), s.as_bytes()));
    if !same_session {
        return Err(ProofRefused::OtherSession);
    }
    if now - proof.issued_at > LINK_PROOF_TTL || proof.issued_at > now {
        return Err(ProofRefused::Expired);
    }
    // The session's sign-in, at the account's level, is from after the proof: every
    // method it recorded was proved since, and they reach the level.
    let methods = session.method_uses();
    let fresh = !methods.is_empty()
        && methods
            .iter()
            .all(|m| m.at >= proof.issued_at && m.at <= now)
        && !methods.iter().any(|m| m.amr == "fed")
        && session.level >= level;
    if !fresh {
        return Err(ProofRefused::NotSignedInSince);
    }
    if let Some(row) = identity
        && (row.user_id.is_some()
            || row.is_tombstone()
            || row.unlinked_at.is_some_and(|at| at >= proof.issued_at))
    {
        return Err(ProofRefused::IdentityChanged);
    }
    Ok(())
}

/// The proof's local sign-in finished with `session`: only it may confirm the link.
/// `false`: the proof already had a session (a second sign-in does not replace it).
pub fn bind_session(proof: &mut LinkProof, session: &SsoSession) -> bool {
    if proof.session.is_some() {
        return false;
    }
    proof.session = Some(token_hash(&session.sid));
    true
}

/// Links `identity` to `user` by its verified address (`Resolution::LinkByEmail`), now
/// that the sign-in succeeded, its second factor included. `false`: linked meanwhile,
/// nothing written.
pub fn link_by_email(
    ctx: &Context<'_>,
    provider: &UpstreamProvider,
    identity: &VerifiedIdentity,
    user: &User,
    address: &str,
) -> Result<bool, OAuthError> {
    let profile = profile_of(provider, &identity.claims);
    let link = UpstreamIdentity {
        issuer: identity.issuer.clone(),
        subject: identity.subject.clone(),
        provider: provider.id.clone(),
        user_id: Some(user.id.clone()),
        email: profile.shown_email().map(str::to_owned),
        created_at: ctx.now,
        last_used_at: Some(ctx.now),
        unlinked_at: None,
    };
    linked(ctx, &link, user, "verified_email", address)
}

/// Links the proof's identity to `user` (one transaction with `upstream.linked`).
/// `false`: linked meanwhile by someone else, nothing written.
pub fn link_by_proof(
    ctx: &Context<'_>,
    proof: &LinkProof,
    user: &User,
    address: &str,
) -> Result<bool, OAuthError> {
    let link = UpstreamIdentity {
        issuer: proof.issuer.clone(),
        subject: proof.subject.clone(),
        provider: proof.provider.clone(),
        user_id: Some(user.id.clone()),
        email: proof.email.clone(),
        created_at: ctx.now,
        last_used_at: None,
        unlinked_at: None,
    };
    linked(ctx, &link, user, "sign_in", address)
}

/// Writes `link` with its `upstream.linked` event (`via` says how it was proved) in one
/// transaction, and logs it; `false` when the identity was linked meanwhile.
fn linked(
    ctx: &Context<'_>,
    link: &UpstreamIdentity,
    user: &User,
    via: &str,
    address: &str,
) -> Result<bool, OAuthError> {
    let written = ctx.store.link_upstream_identity(
        link,
        &event(
            ctx,
            format!("user:{}", user.username),
            "upstream.linked",
            Some(user.id.clone()),
            address,
            json!({ "provider": link.provider, "via": via }),
        ),
    )?;
    if written {
        crate::audit::upstream_event("upstream.linked", &link.provider, via, address);
    }
    Ok(written)
}

/// Unlinks one of `user`'s identities (one transaction with `upstream.unlinked`),
/// unless it is the account's last way to sign in.
pub fn unlink(
    ctx: &Context<'_>,
    user: &User,
    issuer: &str,
    subject: &str,
    providers: &[String],
    address: &str,
) -> Result<crate::store::Unlinked, OAuthError> {
    let provider = ctx
        .store
        .find_upstream_identity(issuer, subject)?
        .map(|r| r.provider)
        .unwrap_or_default();
    let done = ctx.store.unlink_upstream_identity(
        &user.id,
        issuer,
        subject,
        ctx.now,
        &crate::store::WaysIn {
            passkeys: ctx.config.passkeys,
            providers,
        },
        &event(
            ctx,
            format!("user:{}", user.username),
            "upstream.unlinked",
            Some(user.id.clone()),
            address,
            json!({ "provider": provider }),
        ),
    )?;
    if done == crate::store::Unlinked::Done {
        crate::audit::upstream_event("upstream.unlinked", &provider, "account_page", address);
    }
    Ok(done)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::config::upstream::{UpstreamAuthMethod, UpstreamResponseMode};
    use crate::domain::MethodUse;

    fn provider(link: LinkMode, domains: &[&str]) -> UpstreamProvider {
        UpstreamProvider {
            id: "corp".into(),
            name: "Corp".into(),
            issuer: "https://id.corp.example".into(),
            preset: None,
            client_id: "c".into(),
            client_secret: None,
            auth_method: UpstreamAuthMethod::ClientSecretBasic,
            scopes: vec!["openid".into()],
            jit: false,
            link,
            trusted_email_domains: domains.iter().map(|d| (*d).to_owned()).collect(),
            claims: BTreeMap::new(),
            end_session: false,
            response_mode: UpstreamResponseMode::Query,
            kind: crate::config::upstream::UpstreamKind::OpenId,
            allow_private_network: false,
        }
    }

    fn claims(value: Value) -> Map<String, Value> {
        value.as_object().unwrap().clone()
    }

    #[test]
    fn only_a_json_true_verifies_an_address_and_the_mapping_is_followed() {
        let mut p = provider(LinkMode::Off, &[]);
        let c = claims(
            json!({"email": "a@corp.example", "email_verified": "true", "mail_name": "Ann"}),
        );
        assert!(!profile_of(&p, &c).email_verified);
        p.claims.insert("name".into(), "mail_name".into());
        let profile = profile_of(
            &p,
            &claims(json!({"email": "a@corp.example", "email_verified": true, "mail_name": "Ann"})),
        );
        assert!(profile.email_verified);
        assert_eq!(profile.name.as_deref(), Some("Ann"));
        // An address read from another claim is never verified by `email_verified`.
        p.claims.insert("email".into(), "upn".into());
        let profile = profile_of(
            &p,
            &claims(
                json!({"upn": "ceo@corp.example", "email": "a@x.example", "email_verified": true}),
            ),
        );
        assert_eq!(profile.email.as_deref(), Some("ceo@corp.example"));
        assert!(!profile.email_verified);
        // Presets: Google speaks for a domain only with `hd`; Entra ID only with
        // `xms_edov`.
        let mut google = provider(LinkMode::Off, &[]);
        google.preset = Some("google".into());
        let verified = |p: &UpstreamProvider, c: Value| profile_of(p, &claims(c)).email_verified;
        assert!(!verified(
            &google,
            json!({"email": "a@corp.example", "email_verified": true})
        ));
        assert!(verified(
            &google,
            json!({"email": "a@corp.example", "email_verified": true, "hd": "corp.example"})
        ));
        assert!(verified(
            &google,
            json!({"email": "a@gmail.com", "email_verified": true})
        ));
        let mut entra = provider(LinkMode::Off, &[]);
        entra.preset = Some("microsoft".into());
        assert!(!verified(
            &entra,
            json!({"email": "a@corp.example", "email_verified": true})
        ));
        assert!(verified(
            &entra,
            json!({"email": "a@corp.example", "xms_edov": true})
        ));
        // Not an address: none.
        let plain = provider(LinkMode::Off, &[]);
        for bad in [
            "a@",
            "@b.example",
            "a b@c.example",
            "x@y@z",
            "<a@b.example>",
        ] {
            let profile = profile_of(
                &plain,
                &claims(json!({"email": bad, "email_verified": true})),
            );
            assert_eq!(profile.email, None, "{bad}");
            assert!(!profile.email_verified);
        }
    }

    #[test]
    fn an_address_is_trusted_only_verified_and_of_an_exact_trusted_domain() {
        let p = provider(LinkMode::VerifiedEmail, &["corp.example"]);
        let profile = |email: &str, verified: bool| Profile {
            email: Some(email.into()),
            email_verified: verified,
            ..Profile::default()
        };
        assert_eq!(
            trusted_email(&p, &profile("a@CORP.example", true)).as_deref(),
            Ok("a@CORP.example")
        );
        assert_eq!(
            trusted_email(&p, &profile("a@corp.example", false)),
            Err("email_unverified")
        );
        assert_eq!(
            trusted_email(&p, &profile("a@evil.corp.example", true)),
            Err("email_domain_untrusted")
        );
        assert_eq!(
            trusted_email(&p, &profile("a@other.example", true)),
            Err("email_domain_untrusted")
        );
        let off = provider(LinkMode::Off, &[]);
        assert_eq!(
            trusted_email(&off, &profile("a@corp.example", true)),
            Err("email_linking_off")
        );
    }

    fn user(id: &str, email: &str, verified: bool) -> User {
        let mut u = User::new(id.into(), id.into(), String::new(), 1);
        u.email = Some(email.into());
        u.email_verified = verified;
        u
    }

    #[test]
    fn an_address_links_only_to_the_one_account_that_verified_it() {
        let one = [user("a", "a@corp.example", true)];
        assert_eq!(
            email_link_target("A@corp.example", &one).map(|u| u.id.as_str()),
            Some("a")
        );
        assert!(
            email_link_target("a@corp.example", &[user("a", "a@corp.example", false)]).is_none()
        );
        let two = [
            user("a", "a@corp.example", true),
            user("b", "a@corp.example", true),
        ];
        assert!(email_link_target("a@corp.example", &two).is_none());
        let mut disabled = user("a", "a@corp.example", true);
        disabled.disabled_at = Some(1);
        assert!(email_link_target("a@corp.example", &[disabled]).is_none());
    }

    #[test]
    fn a_username_comes_from_the_claims_and_is_made_unique() {
        let profile = Profile {
            preferred_username: Some("ann".into()),
            email: Some("ann.b@corp.example".into()),
            ..Profile::default()
        };
        let derive = |p: &Profile, taken: &dyn Fn(&str) -> bool| {
            derive_username::<()>(p, |n| Ok(taken(n))).unwrap()
        };
        assert_eq!(derive(&profile, &|_| false).as_deref(), Some("ann"));
        assert_eq!(
            derive(&profile, &|n| n == "ann" || n == "ann2").as_deref(),
            Some("ann3")
        );
        // Every numbered name taken in advance: a random suffix still finds one.
        let squatted = derive(&profile, &|n| {
            n == "ann" || (n.len() <= 5 && n.starts_with("ann"))
        })
        .unwrap();
        assert!(
            squatted.starts_with("ann-") && squatted.len() == 10,
            "{squatted}"
        );
        let by_email = Profile {
            email: Some("ann.b@corp.example".into()),
            ..Profile::default()
        };
        assert_eq!(derive(&by_email, &|_| false).as_deref(), Some("ann.b"));
        assert_eq!(
            derive(&Profile::default(), &|_| false).as_deref(),
            Some("user")
        );
        assert_eq!(derive(&Profile::default(), &|_| true), None);
    }

    fn proof(issued_at: UnixTime) -> LinkProof {
        LinkProof {
            provider: "corp".into(),
            issuer: "https://id.corp.example".into(),
            subject: "s".into(),
            email: None,
            browser: token_hash("cookie"),
            known_browser: token_hash("browser-id"),
            session: Some(token_hash("sid")),
            issued_at,
            interaction: None,
        }
    }

    fn session(methods: &[(&str, UnixTime)], level: Level) -> SsoSession {
        SsoSession {
            id: "x".into(),
            sid: "sid".into(),
            user_id: "u".into(),
            auth_time: methods.first().map(|m| m.1).unwrap_or_default(),
            amr: methods.iter().map(|m| m.0.to_owned()).collect(),
            level,
            methods: methods
                .iter()
                .map(|(amr, at)| MethodUse {
                    amr: (*amr).into(),
                    at: *at,
                })
                .collect(),
            expires_at: 10_000,
            idp: None,
            upstream_id_token: None,
        }
    }

    #[test]
    fn a_proof_needs_its_browser_a_fresh_full_sign_in_and_a_free_identity() {
        let p = proof(1_000);
        let fresh = session(&[("pwd", 1_010), ("otp", 1_020)], Level::MultiFactor);
        assert_eq!(
            check_proof(
                &p,
                Some("cookie"),
                Some("browser-id"),
                &fresh,
                Level::MultiFactor,
                None,
                1_030
            ),
            Ok(())
        );
        assert_eq!(
            check_proof(
                &p,
                Some("other"),
                Some("browser-id"),
                &fresh,
                Level::MultiFactor,
                None,
                1_030
            ),
            Err(ProofRefused::OtherBrowser)
        );
        // The binding cookie planted in another browser (other browser id): refused.
        assert_eq!(
            check_proof(
                &p,
                Some("cookie"),
                Some("attacker-browser"),
                &fresh,
                Level::MultiFactor,
                None,
                1_030
            ),
            Err(ProofRefused::OtherBrowser)
        );
        assert_eq!(
            check_proof(
                &p,
                Some("cookie"),
                None,
                &fresh,
                Level::MultiFactor,
                None,
                1_030
            ),
            Err(ProofRefused::OtherBrowser)
        );
        // Another fresh session of this browser than the one the proof's sign-in made,
        // or a proof whose sign-in never finished: refused.
        let mut other = fresh.clone();
        other.sid = "other-sid".into();
        assert_eq!(
            check_proof(
                &p,
                Some("cookie"),
                Some("browser-id"),
                &other,
                Level::MultiFactor,
                None,
                1_030
            ),
            Err(ProofRefused::OtherSession)
        );
        let mut unbound = p.clone();
        unbound.session = None;
        assert_eq!(
            check_proof(
                &unbound,
                Some("cookie"),
                Some("browser-id"),
                &fresh,
                Level::MultiFactor,
                None,
                1_030
            ),
            Err(ProofRefused::OtherSession)
        );
        assert!(bind_session(&mut unbound, &fresh));
        assert!(!bind_session(&mut unbound, &other), "bound once");
        assert_eq!(
            check_proof(
                &unbound,
                Some("cookie"),
                Some("browser-id"),
                &fresh,
                Level::MultiFactor,
                None,
                1_030
            ),
            Ok(())
        );
        assert_eq!(
            check_proof(
                &p,
                None,
                Some("browser-id"),
                &fresh,
                Level::MultiFactor,
                None,
                1_030
            ),
            Err(ProofRefused::OtherBrowser)
        );
        assert_eq!(
            check_proof(
                &p,
                Some("cookie"),
                Some("browser-id"),
                &fresh,
                Level::MultiFactor,
                None,
                1_000 + LINK_PROOF_TTL + 1
            ),
            Err(ProofRefused::Expired)
        );
        let before = session(&[("pwd", 990), ("otp", 1_020)], Level::MultiFactor);
        assert_eq!(
            check_proof(
                &p,
                Some("cookie"),
                Some("browser-id"),
                &before,
                Level::MultiFactor,
                None,
                1_030
            ),
            Err(ProofRefused::NotSignedInSince)
        );
        let weak = session(&[("pwd", 1_010)], Level::SingleFactor);
        assert_eq!(
            check_proof(
                &p,
                Some("cookie"),
                Some("browser-id"),
                &weak,
                Level::MultiFactor,
                None,
                1_030
            ),
            Err(ProofRefused::NotSignedInSince)
        );
        let federated = session(&[("fed", 1_010)], Level::SingleFactor);
        assert_eq!(
            check_proof(
                &p,
                Some("cookie"),
                Some("browser-id"),
                &federated,
                Level::SingleFactor,
                None,
                1_030
            ),
            Err(ProofRefused::NotSignedInSince)
        );
        let row = |user: Option<&str>, unlinked: Option<i64>| UpstreamIdentity {
            issuer: p.issuer.clone(),
            subject: p.subject.clone(),
            provider: "corp".into(),
            user_id: user.map(str::to_owned),
            email: None,
            created_at: 1,
            last_used_at: None,
            unlinked_at: unlinked,
        };
        let refused = |r: UpstreamIdentity| {
            check_proof(
                &p,
                Some("cookie"),
                Some("browser-id"),
                &fresh,
                Level::MultiFactor,
                Some(&r),
                1_030,
            )
        };
        assert_eq!(
            refused(row(Some("v"), None)),
            Err(ProofRefused::IdentityChanged)
        );
        assert_eq!(
            refused(row(None, None)),
            Err(ProofRefused::IdentityChanged),
            "tombstone"
        );
        assert_eq!(
            refused(row(None, Some(1_005))),
            Err(ProofRefused::IdentityChanged),
            "unlinked after"
        );
        assert_eq!(refused(row(None, Some(900))), Ok(()), "unlinked before");
    }
}
