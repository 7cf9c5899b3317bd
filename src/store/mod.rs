//! Storage: narrow traits over the records the protocol needs, implemented once with
//! diesel for SQLite and PostgreSQL (`sql`). Calls are blocking: from async code, run them
//! on a blocking thread (`web::block`).

pub mod schema;
pub mod sql;

use diesel::prelude::*;

use crate::domain::{ApplicationType, GrantType, GroupName, ResponseType, Scopes, UnixTime};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("already exists")]
    Conflict,
    #[error("a record it refers to no longer exists")]
    Gone,
    #[error("storage unavailable: {0}")]
    Unavailable(String),
    #[error("storage error: {0}")]
    Internal(String),
}

pub type StoreResult<T> = Result<T, StoreError>;

#[derive(Clone, Debug, Queryable, Selectable, Insertable)]
#[diesel(table_name = schema::users)]
pub struct User {
    pub id: String,
    pub username: String,
    pub password_hash: String,
    pub name: Option<String>,
    pub given_name: Option<String>,
    pub family_name: Option<String>,
    pub middle_name: Option<String>,
    pub nickname: Option<String>,
    pub profile: Option<String>,
    pub picture: Option<String>,
    pub website: Option<String>,
    pub email: Option<String>,
    pub email_verified: bool,
    pub gender: Option<String>,
    pub birthdate: Option<String>,
    pub zoneinfo: Option<String>,
    pub locale: Option<String>,
    pub phone_number: Option<String>,
    pub phone_number_verified: bool,
    pub created_at: i64,
    pub updated_at: i64,
    /// When the password last changed: sessions signed in before then are over.
    pub credentials_changed_at: i64,
    /// OIDC Core §5.1.1 `address`: a JSON object of its members.
    pub address: Option<String>,
    /// May administer the provider (the admin API and console, with the `admin` scope).
    pub is_admin: bool,
    /// When the account was disabled: it cannot sign in, and its tokens were revoked.
    pub disabled_at: Option<i64>,
    /// An administrator requires a second factor of this user, whatever the server-wide
    /// `mfa` policy says.
    pub mfa_required: bool,
}

impl User {
    /// Whether a browser session signed in at `auth_time` still speaks for this user:
    /// none of a disabled account, and only one that began after the last password change (strictly: a sign-in in the
    /// same second as the change may have been the intruder's).
    pub fn accepts_session_from(&self, auth_time: UnixTime) -> bool {
        auth_time > self.credentials_changed_at && self.disabled_at.is_none()
    }

    /// A user with only the required fields set; profile claims are filled in by the caller.
    pub fn new(id: String, username: String, password_hash: String, now: UnixTime) -> Self {
        Self {
            id,
            username,
            password_hash,
            name: None,
            given_name: None,
            family_name: None,
            middle_name: None,
            nickname: None,
            profile: None,
            picture: None,
            website: None,
            email: None,
            email_verified: false,
            gender: None,
            birthdate: None,
            zoneinfo: None,
            locale: None,
            phone_number: None,
            phone_number_verified: false,
            created_at: now,
            updated_at: now,
            credentials_changed_at: 0,
            address: None,
            is_admin: false,
            disabled_at: None,
            mfa_required: false,
        }
    }
}

/// RFC 7591 §2 `token_endpoint_auth_method` (OIDC Core §9).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AuthMethod {
    ClientSecretBasic,
    ClientSecretPost,
    /// RFC 7523 assertion MACed with the client secret (HS256).
    ClientSecretJwt,
    /// RFC 7523 assertion signed with a key from the client's JWK Set.
    PrivateKeyJwt,
    None,
}

impl AuthMethod {
    pub const SUPPORTED: [&'static str; 5] = [
        "client_secret_basic",
        "client_secret_post",
        "client_secret_jwt",
        "private_key_jwt",
        "none",
    ];

    pub fn parse(value: &str) -> Option<Self> {
        match value {
            "client_secret_basic" => Some(Self::ClientSecretBasic),
            "client_secret_post" => Some(Self::ClientSecretPost),
            "client_secret_jwt" => Some(Self::ClientSecretJwt),
            "private_key_jwt" => Some(Self::PrivateKeyJwt),
            "none" => Some(Self::None),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::ClientSecretBasic => "client_secret_basic",
            Self::ClientSecretPost => "client_secret_post",
            Self::ClientSecretJwt => "client_secret_jwt",
            Self::PrivateKeyJwt => "private_key_jwt",
            Self::None => "none",
        }
    }

    /// Whether the client is issued a secret (shown once at registration).
    pub fn has_secret(self) -> bool {
        matches!(
            self,
            Self::ClientSecretBasic | Self::ClientSecretPost | Self::ClientSecretJwt
        )
    }
}

#[derive(Clone, Debug)]
pub struct Client {
    pub id: String,
    pub name: String,
    pub secret_hash: Option<String>,
    pub auth_method: AuthMethod,
    /// OIDC Registration §2: decides the redirect URIs it may register.
    pub application_type: ApplicationType,
    pub grant_types: Vec<GrantType>,
    /// In the order registered (and echoed in the registration response).
    pub response_types: Vec<ResponseType>,
    /// Scopes the client may request; `None` means every scope we support.
    pub scope: Option<Scopes>,
    pub redirect_uris: Vec<String>,
    pub post_logout_redirect_uris: Vec<String>,
    pub metadata: crate::domain::ClientMetadata,
    pub registration_token_hash: Option<String>,
    pub created_at: i64,
    /// The secret itself, encrypted under the key-encryption key: only for
    /// `client_secret_jwt`, whose assertions are HMACs keyed with it.
    pub secret_ciphertext: Option<String>,
    /// `private_key_jwt`: the client's JWK Set, inline ...
    pub jwks: Option<serde_json::Value>,
    /// ... or by reference (fetched, cached, and fetched again on an unknown `kid`).
    pub jwks_uri: Option<String>,
    /// PKCE for the code flow; only a confidential client registered with an explicit
    /// opt-out skips it (public clients never may).
    pub pkce_required: bool,
    /// RFC 8707 resource indicators (absolute URIs) the client may ask tokens for.
    pub resources: Vec<String>,
    /// Registered by anyone through dynamic registration, not by an operator: nobody
    /// vouches for its name.
    pub registered_dynamically: bool,
    /// Marked first-party by the operator (never through dynamic registration): the
    /// user is taken to consent to what it asks and sees no consent page unless the
    /// request says `prompt=consent`.
    pub first_party: bool,
    /// Everyone who signs in to this client needs a second factor (set by the operator).
    pub require_mfa: bool,
    /// JWT or opaque reference access tokens (set by the operator, issue 26).
    pub access_token_format: crate::domain::AccessTokenFormat,
    /// OIDC Back-Channel Logout: where logout tokens are POSTed when a session ends.
    pub backchannel_logout: Option<LogoutUri>,
    /// OIDC Front-Channel Logout: the page the signed-out page loads in a hidden iframe.
    pub frontchannel_logout: Option<LogoutUri>,
}

/// A client's logout URI (back- or front-channel) and whether it needs the `sid`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogoutUri {
    pub uri: String,
    pub session_required: bool,
}

impl Client {
    pub fn is_public(&self) -> bool {
        self.auth_method == AuthMethod::None
    }

    pub fn may_use_grant(&self, grant_type: GrantType) -> bool {
        self.grant_types.contains(&grant_type)
    }

    pub fn requires_pkce(&self) -> bool {
        self.pkce_required || self.is_public()
    }

    /// The sector of a client registered for pairwise subject identifiers (OIDC Core
    /// §8.1): its users' `sub` is derived from it; `None` for public subjects.
    pub fn pairwise_sector(&self) -> Option<&str> {
        self.metadata.pairwise_sector()
    }
}

#[derive(Clone, Debug, Queryable, Selectable, Insertable)]
#[diesel(table_name = schema::authorization_codes)]
pub struct AuthorizationCode {
    pub code_hash: String,
    pub grant_id: String,
    pub client_id: String,
    pub user_id: String,
    pub redirect_uri: String,
    pub redirect_uri_sent: bool,
    pub scope: String,
    pub nonce: Option<String>,
    pub code_challenge: Option<String>,
    pub code_challenge_method: Option<String>,
    pub session_id: Option<String>,
    pub auth_time: i64,
    pub created_at: i64,
    pub expires_at: i64,
    pub consumed_at: Option<i64>,
    /// The authentication context reported (`acr`), when the request asked for one.
    pub acr: Option<String>,
    /// The `claims` request parameter, normalized JSON.
    pub claims: Option<String>,
    /// How the user signed in (the session's `amr`, space-separated): the grant made at
    /// redemption carries it. `None` on codes issued before it was recorded.
    pub amr: Option<String>,
    /// RFC 8707 resources the request named (space-separated): the grant's audience.
    pub resources: Option<String>,
    /// RFC 9449 §10: the thumbprint of the DPoP key the code is bound to (`dpop_jkt`).
    pub dpop_jkt: Option<String>,
}

/// The stored authorization of a user for a client: what the user granted and how they
/// authenticated. Every token issued for the user points at it (access tokens by `gid`,
/// refresh tokens by `grant_id`), so revoking it revokes them all.
#[derive(Clone, Debug, Queryable, Selectable, Insertable)]
#[diesel(table_name = schema::grants)]
pub struct Grant {
    pub id: String,
    pub client_id: String,
    pub user_id: String,
    pub scope: String,
    /// The SSO session's public `sid`: signing out there ends the grant.
    pub session_id: Option<String>,
    pub created_at: i64,
    pub revoked_at: Option<i64>,
    /// When the user entered credentials (OIDC `auth_time`, repeated on refresh).
    pub auth_time: i64,
    pub nonce: Option<String>,
    pub acr: Option<String>,
    /// Space-separated OIDC `amr` values.
    pub amr: Option<String>,
    /// Claims granted beyond the scopes (the OIDC `claims` parameter), as JSON.
    pub claims: Option<String>,
    /// The absolute end: no refresh token of the grant outlives it.
    pub expires_at: i64,
    /// RFC 8707 resources granted (space-separated): the audience of the grant's access
    /// tokens, which a token request may narrow. `None`: this provider.
    pub resources: Option<String>,
}

impl Grant {
    pub fn is_live(&self, now: UnixTime) -> bool {
        self.revoked_at.is_none() && self.expires_at > now
    }
}

/// One refresh token of a grant, stored as a hash. Rotation consumes it and records the
/// hash of its successor.
#[derive(Clone, Debug, PartialEq, Eq, Queryable, Selectable, Insertable)]
#[diesel(table_name = schema::refresh_tokens)]
pub struct RefreshToken {
    pub token_hash: String,
    pub grant_id: String,
    pub created_at: i64,
    pub expires_at: i64,
    pub consumed_at: Option<i64>,
    pub successor_hash: Option<String>,
}

/// An opaque access token (issue 26) as stored: the SHA-256 of the token, never the
/// token, and the claims a JWT would have carried, so that introspection and userinfo
/// answer the same for either format. A user's token names its grant (`gid`) and dies
/// with it; revocation denylists its `jti` as for a JWT.
#[derive(Clone, Debug, PartialEq, Eq, Queryable, Selectable, Insertable)]
#[diesel(table_name = schema::opaque_access_tokens)]
pub struct OpaqueAccessToken {
    pub token_hash: String,
    pub jti: String,
    pub client_id: String,
    pub grant_id: Option<String>,
    /// The `sub` as the client knows it (pairwise already applied).
    pub subject: String,
    pub scope: String,
    /// The `aud` as JSON: a string, or an array of RFC 8707 resources.
    pub audience: String,
    pub issued_at: i64,
    pub expires_at: i64,
    pub auth_time: Option<i64>,
    pub acr: Option<String>,
    /// Space-separated `amr` values.
    pub amr: Option<String>,
    /// The `groups` claim as a JSON array.
    pub groups: Option<String>,
    /// RFC 9449 `cnf.jkt` of a DPoP-bound token.
    pub jkt: Option<String>,
    /// RFC 8693 `act`, as JSON.
    pub act: Option<String>,
    /// The `jti`s of the tokens it was exchanged from, space-separated.
    pub exchanged_from: Option<String>,
}

/// A browser session as the user and the operator see it: listed by user, ended for
/// good (every instance and the CLI honour `ended_at`, whatever the session store holds).
#[derive(Clone, Debug, Queryable, Selectable, Insertable)]
#[diesel(table_name = schema::browser_sessions)]
pub struct BrowserSession {
    /// The public session id (`sid` in ID and logout tokens).
    pub sid: String,
    pub user_id: String,
    /// The session store's key of the record (a hash of the cookie, not the cookie).
    pub store_key: String,
    pub created_at: i64,
    pub expires_at: i64,
    pub ended_at: Option<i64>,
    pub user_agent: Option<String>,
    pub ip_address: Option<String>,
}

/// What ending a session (or several) did: the session-store records to delete, and the
/// clients that got tokens in them (the front-channel page loads their logout URIs).
#[derive(Clone, Debug, Default)]
pub struct EndedSessions {
    pub sessions: Vec<BrowserSession>,
    /// Per ended session (by `sid`), the clients that got tokens in it.
    pub clients: Vec<(String, Vec<String>)>,
    /// Back-channel logout tokens now waiting in the outbox.
    pub deliveries: usize,
}

/// One back-channel logout token to deliver (OIDC Back-Channel Logout §2.5): the outbox
/// row, written when the session ended, taken by whichever instance claims it first.
#[derive(Clone, Debug, Queryable, Selectable, Insertable)]
#[diesel(table_name = schema::logout_deliveries)]
pub struct LogoutDelivery {
    pub id: String,
    pub client_id: String,
    pub sid: String,
    /// The `sub` of the logout token.
    pub subject: String,
    pub created_at: i64,
    pub next_attempt_at: i64,
    /// Attempts begun so far (a claim counts as one).
    pub attempts: i32,
    pub delivered_at: Option<i64>,
    pub failed_at: Option<i64>,
    pub last_error: Option<String>,
}

#[derive(Clone, Debug, Queryable, Selectable, Insertable)]
#[diesel(table_name = schema::consents)]
pub struct Consent {
    pub user_id: String,
    pub client_id: String,
    pub scope: String,
    pub granted_at: i64,
    /// Claims allowed one by one (OIDC Core §5.5) beyond what `scope` releases,
    /// space-separated.
    pub claims: String,
}

impl Consent {
    /// The claims allowed one by one.
    pub fn claim_names(&self) -> std::collections::BTreeSet<&str> {
        self.claims.split_whitespace().collect()
    }
}

#[derive(Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = schema::signing_keys)]
pub struct StoredKey {
    pub kid: String,
    pub alg: String,
    pub generation: i32,
    pub private_key: Vec<u8>,
    pub created_at: i64,
    pub activates_at: i64,
    pub retired_at: Option<i64>,
}

impl std::fmt::Debug for StoredKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoredKey")
            .field("kid", &self.kid)
            .field("alg", &self.alg)
            .finish()
    }
}

/// One recorded administrative change (who, what, to what, when, from where). Never holds
/// a secret: `details` names what changed, not the values of credentials.
#[derive(Clone, Debug, Queryable, Selectable)]
#[diesel(table_name = schema::audit_events)]
pub struct AuditEvent {
    /// Increasing: newer events have larger ids (the listing's cursor).
    pub id: i64,
    pub at: i64,
    pub actor: String,
    pub action: String,
    pub target: Option<String>,
    pub address: Option<String>,
    /// A JSON object.
    pub details: Option<String>,
}

#[derive(Clone, Debug, Insertable)]
#[diesel(table_name = schema::audit_events)]
pub struct NewAuditEvent {
    pub at: i64,
    pub actor: String,
    pub action: String,
    pub target: Option<String>,
    pub address: Option<String>,
    pub details: Option<String>,
}

/// A change an administrator makes (or the user, to their own password), written
/// together with its audit event
/// (`AuditStore::apply_audited`). Those that end sessions end them in the same
/// transaction.
#[derive(Clone, Copy, Debug)]
pub enum AdminChange<'a> {
    CreateUser(&'a User),
    /// Profile claims, the admin role and the disabled mark. A disabled user's sessions
    /// end and grants are revoked with it (every time: a retry finishes what a failure
    /// left).
    UpdateUser(&'a User),
    /// Sets the password hash of the user (by id); the user's sessions and grants end,
    /// and the user's links of [`PASSWORD_LINKS`] stop working.
    SetPassword {
        user_id: &'a str,
        hash: &'a str,
    },
    /// Ends the user's sessions (their apps are told), then deletes the user.
    DeleteUser(&'a str),
    CreateClient(&'a Client),
    /// Replaces everything about the client but its id, its registration time and its
    /// registration access token hash (which stays as stored: RFC 7592 rotates it).
    UpdateClient(&'a Client),
    DeleteClient(&'a str),
    /// RFC 7592 §2.2 and §3: replaces the client (as `UpdateClient`) only if its
    /// registration access token hash is still `token_hash` (a compare-and-set: of two
    /// updates presenting the same token, one applies and the other finds it rotated).
    ///
    /// The operator's fields (`first_party`, `require_mfa`, `resources`, the token
    /// exchange policy, the profile) and, when `keeps_secret`, the secret columns are
    /// taken from the row as it is inside the transaction, not from `client`; a profile
    /// changed meanwhile refuses the update (see `update_registered_client_in`).
    UpdateRegisteredClient {
        client: &'a Client,
        token_hash: &'a str,
        keeps_secret: bool,
    },
    /// RFC 7592 §2.3: deletes the client (its grants, their refresh tokens and consents go
    /// with it) only if its registration access token hash is still `token_hash`.
    DeleteRegisteredClient {
        id: &'a str,
        token_hash: &'a str,
    },
    /// Ends one browser session (nothing if it had ended).
    EndSession(&'a str),
    /// Ends a session whose session-store record is gone (the store came back empty,
    /// `store_loss`), only if it is still live and still under `store_key`: a session
    /// renewed meanwhile under another record is not ended.
    EndLostSession {
        sid: &'a str,
        store_key: &'a str,
    },
    /// "Sign out everywhere": every session of the user, every grant.
    EndUserSessions(&'a str),
    WithdrawConsent {
        user_id: &'a str,
        client_id: &'a str,
    },
    /// Removes the user's second factors (one-time code authenticator, recovery codes,
    /// passkeys), then ends every session and grant of the user as "sign out everywhere"
    /// does: whoever signed in with a factor that is gone is out.
    ResetSecondFactors(&'a str),
    /// `Conflict` if a group of that name (in any case) exists.
    CreateGroup(&'a Group),
    /// Gives the group (by id) the record's name and `updated_at`; `Conflict` if another
    /// group has the name.
    RenameGroup(&'a Group),
    /// Deletes the group and its memberships.
    DeleteGroup(&'a str),
    /// `Conflict` if the user is a member already.
    AddGroupMember {
        group_id: &'a str,
        user_id: &'a str,
    },
    RemoveGroupMember {
        group_id: &'a str,
        user_id: &'a str,
    },
    /// A password reset by mail link, whole (issue 23 §3): uses the link of hash
    /// `link_hash` (a conditional UPDATE: of purpose `password_reset`, unused, unexpired,
    /// for `user_id`, whose address must still be the link's and who must be enabled),
    /// then does what `SetPassword` does, and queues `mail` (the user's notice, sealed).
    /// Not applied (`None`), and nothing written, if the link does not work.
    ResetPassword {
        link_hash: &'a str,
        user_id: &'a str,
        hash: &'a str,
        mail: Option<&'a QueuedMail>,
    },
    /// An invitation, whole: its link and the mail that carries it (sealed), with the
    /// event. No link without its mail or its audit line.
    Invite {
        link: &'a ActionLink,
        mail: &'a QueuedMail,
    },
}

/// The link purposes (`protocol::links::LinkPurpose::as_str`) a new password makes
/// pointless, and a risk if a mail leaks: a reset link, a pending change of address
/// (whoever asked for it may be the intruder the new password locks out).
pub const PASSWORD_LINKS: [&str; 2] = ["password_reset", "email_change"];

/// The link purposes a new address ends: every link sent to the old address, or to one
/// the user asked to change to.
pub const ADDRESS_LINKS: [&str; 3] = ["password_reset", "email_change", "email_verification"];

/// One page of users, ordered by username.
#[derive(Clone, Debug, Default)]
pub struct UserQuery<'a> {
    /// Users whose username, name or email contains this (case-insensitive).
    pub search: Option<&'a str>,
    /// Users after this username (the previous page's last).
    pub after: Option<&'a str>,
    pub limit: i64,
}

/// One user of an import (`AuditStore::import_users`), checked whole by the caller.
#[derive(Clone, Debug)]
pub struct ImportedUser {
    pub user: User,
    /// The groups the user belongs to, by name: a group of that name (in any case) is
    /// joined, and one that does not exist yet is created, in the import's transaction.
    pub groups: Vec<crate::domain::GroupName>,
}

/// Why an import stopped before its end: the source found a bad record (and knows which).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ImportAbandoned;

/// The users of an import, handed over one at a time, so that an import of any size
/// holds one user's record in memory (the source may keep less per user, as the admin
/// import keeps each username's key and `sub` to refuse repeats: memory grows with the
/// file by tens of bytes a user, not by records).
pub trait UserImport {
    /// The next user; `None` at the end; `Err` abandons the import (nothing is written).
    fn next_user(&mut self) -> Option<Result<ImportedUser, ImportAbandoned>>;
    /// The last user handed over joined the group `name` (as stored), which the import
    /// `created` or found: the event says which groups an import made and joined.
    fn joined_group(&mut self, name: &str, created: bool);
    /// The audit event of the whole import, asked for once every user is in.
    fn event(&self) -> NewAuditEvent;
}

pub trait AuditStore {
    /// Applies `change` and records `event` in one transaction: both or neither. `None`
    /// (and nothing written) if there was nothing to change (no such user, client,
    /// consent, live session, group or membership); otherwise the sessions it ended, for
    /// the session store and the outbox. `Conflict` if a new user's name, client's id or
    /// group's name is taken, or the user is a member of the group already.
    fn apply_audited(
        &self,
        change: AdminChange<'_>,
        event: &NewAuditEvent,
    ) -> StoreResult<Option<EndedSessions>>;
    /// Records an event of a change made by other means (ending sessions, rotating keys).
    fn record_audit_event(&self, event: &NewAuditEvent) -> StoreResult<()>;
    /// Deletes the events recorded before `before` (`audit_retention`); how many.
    fn purge_audit_events(&self, before: UnixTime) -> StoreResult<usize>;
    /// Events newest first, older than the event `before` (by id) when given.
    fn list_audit_events(&self, before: Option<i64>, limit: i64) -> StoreResult<Vec<AuditEvent>>;
    fn find_users(&self, query: &UserQuery<'_>) -> StoreResult<Vec<User>>;
    /// Creates every user `import` yields, then records its event, in one transaction:
    /// all or nothing. `Ok(false)` (nothing written) if the import abandoned itself;
    /// `Conflict` (nothing written) if a username (in any case) or `sub` is taken, by an
    /// existing user or an earlier one of the import: the last user yielded.
    fn import_users(&self, import: &mut dyn UserImport) -> StoreResult<bool>;
}

pub trait UserStore {
    fn create_user(&self, user: &User) -> StoreResult<()>;
    fn find_user(&self, id: &str) -> StoreResult<Option<User>>;
    fn find_user_by_username(&self, username: &str) -> StoreResult<Option<User>>;
    /// The users whose email is `email` (compared without case), by username; a few at
    /// most.
    fn find_users_by_email(&self, email: &str) -> StoreResult<Vec<User>>;
    /// The user of a grant, with the claims the grant's request asked for (userinfo's one
    /// lookup).
    fn find_grant_user(&self, grant_id: &str) -> StoreResult<Option<(User, Option<String>)>>;
    fn list_users(&self) -> StoreResult<Vec<User>>;
    /// Returns whether a user was removed.
    fn delete_user(&self, username: &str) -> StoreResult<bool>;
    /// Replaces the user's profile claims (everything but the id, username, password and
    /// times), and sets `updated_at`; `false` if there is no such user.
    fn update_user(&self, user: &User, now: UnixTime) -> StoreResult<bool>;
    /// Sets the password and ends the user's browser sessions (`credentials_changed_at`).
    fn set_password_hash(&self, username: &str, hash: &str, now: UnixTime) -> StoreResult<bool>;
    /// Replaces the user's password hash by `upgraded` (the same password, hashed our way)
    /// if it is still `verified`, the hash the password was just checked against: `false`,
    /// and nothing written, if it changed meanwhile (a new password, or another sign-in's
    /// upgrade). The password is the same, so sessions live on and nothing else changes.
    fn upgrade_password_hash(
        &self,
        user_id: &str,
        verified: &str,
        upgraded: &str,
    ) -> StoreResult<bool>;
}

pub trait ClientStore {
    fn create_client(&self, client: &Client) -> StoreResult<()>;
    fn find_client(&self, id: &str) -> StoreResult<Option<Client>>;
    /// Every client, oldest first (then by id).
    fn list_clients(&self) -> StoreResult<Vec<Client>>;
    /// A page of at most `limit` clients in `list_clients`'s order, after the client
    /// `after` (the previous page's last).
    fn find_clients(&self, after: Option<&str>, limit: i64) -> StoreResult<Vec<Client>>;
    fn delete_client(&self, id: &str) -> StoreResult<bool>;
}

pub trait GrantStore {
    fn insert_code(&self, code: &AuthorizationCode) -> StoreResult<()>;
    fn find_code(&self, code_hash: &str) -> StoreResult<Option<AuthorizationCode>>;
    /// Marks the code consumed and records `grant`, atomically: returns `false` (and
    /// writes nothing) if the code was already consumed, however close the race.
    /// With `refresh`, the grant's first refresh token is recorded in the same transaction,
    /// and with `access` its first opaque access token.
    fn redeem_code(
        &self,
        code_hash: &str,
        grant: &Grant,
        refresh: Option<&RefreshToken>,
        access: Option<&OpaqueAccessToken>,
        now: UnixTime,
    ) -> StoreResult<bool>;
    fn find_grant(&self, id: &str) -> StoreResult<Option<Grant>>;
    /// The newest grant (live or not) `user_id` gave `client_id` in the SSO session
    /// `sid` no later than `made_by`: the grant an ID token of that session issued at
    /// `made_by` stands for (RFC 8693 subject and actor tokens). The caller checks that
    /// it is live: a revoked grant is not replaced by an older one.
    fn find_session_grant(
        &self,
        client_id: &str,
        user_id: &str,
        sid: &str,
        made_by: UnixTime,
    ) -> StoreResult<Option<Grant>>;
    /// Records a grant made at the authorization endpoint itself (the implicit and hybrid
    /// flows' tokens): `false`, and nothing written, if its session has ended.
    fn create_grant(&self, grant: &Grant) -> StoreResult<bool>;
    /// Revokes the grant and so every token issued from it (the refresh token family and
    /// the access tokens that carry its id).
    fn revoke_grant(&self, id: &str, now: UnixTime) -> StoreResult<()>;
    /// Revokes every live grant made in the SSO session `sid`; returns how many.
    fn revoke_session_grants(&self, sid: &str, now: UnixTime) -> StoreResult<usize>;
    /// Deletes codes, refresh tokens, opaque access tokens, revocation records and mailed
    /// links that expired
    /// before `before`; returns how many rows went.
    fn purge_expired(&self, before: UnixTime) -> StoreResult<usize>;
}

/// Refresh tokens, opaque access tokens, the access-token denylist and single-use
/// assertion ids.
pub trait TokenStore {
    /// A refresh token with its grant.
    fn find_refresh_token(&self, token_hash: &str) -> StoreResult<Option<(RefreshToken, Grant)>>;
    /// Rotation, atomically: marks `presented_hash` consumed at `now` with `successor` as
    /// its successor and inserts `successor`. Returns `false` and writes nothing if the
    /// presented token was already consumed (a concurrent or repeated use), however close
    /// the race; `Gone` (and writes nothing) if the grant was revoked or ended meanwhile.
    /// With `access`, the opaque access token issued with the successor is recorded in the
    /// same transaction.
    fn rotate_refresh_token(
        &self,
        presented_hash: &str,
        successor: &RefreshToken,
        access: Option<&OpaqueAccessToken>,
        now: UnixTime,
    ) -> StoreResult<bool>;
    /// Denylists an access token until it would expire anyway.
    fn revoke_access_token(&self, jti: &str, expires_at: UnixTime) -> StoreResult<()>;
    /// Whether an access token is still good: not denylisted, and its grant (if it has
    /// one) neither revoked nor expired.
    fn access_token_live(
        &self,
        jti: &str,
        grant_id: Option<&str>,
        now: UnixTime,
    ) -> StoreResult<bool>;
    /// Records an opaque access token (one INSERT: its issuance signs nothing).
    fn insert_opaque_access_token(&self, token: &OpaqueAccessToken) -> StoreResult<()>;
    /// The opaque access token of this hash, expired or not (one primary-key lookup).
    fn find_opaque_access_token(&self, token_hash: &str) -> StoreResult<Option<OpaqueAccessToken>>;
    /// Records a client assertion's `jti` (hashed with the client id); `false` if it was
    /// seen before: a replay.
    fn use_assertion_id(&self, jti_hash: &str, expires_at: UnixTime) -> StoreResult<bool>;
}

/// Facts about the deployment kept in the database (e.g. the KEK's check value).
pub trait FactStore {
    /// Stores `value` under `name` unless a value is there; returns the stored value.
    fn remember_fact(&self, name: &str, value: &str) -> StoreResult<String>;
}

pub trait ConsentStore {
    fn find_consent(&self, user_id: &str, client_id: &str) -> StoreResult<Option<Consent>>;
    /// Adds `consent`'s scopes and claims to what this user already allowed this client,
    /// in one transaction (two consent pages submitted together both count); returns what
    /// is now allowed.
    fn add_consent(&self, consent: &Consent) -> StoreResult<Consent>;
    /// The user's consents, newest first.
    fn list_consents(&self, user_id: &str) -> StoreResult<Vec<Consent>>;
    /// Withdraws the consent and revokes every grant the user gave the client (its
    /// refresh and access tokens), in one transaction; `false` if there was no consent.
    fn withdraw_consent(&self, user_id: &str, client_id: &str, now: UnixTime) -> StoreResult<bool>;
}

/// Browser sessions and the back-channel logout outbox.
///
/// Ending a session is one transaction: the session is marked ended, the grants made in
/// it are revoked (their refresh and access tokens die), and one logout token per client
/// with a `backchannel_logout_uri` goes into the outbox. Of two instances ending the same
/// session, one does it all and the other nothing.
pub trait SessionRecordStore {
    /// Records a new session, or renews a live one of the same `sid` (the same user
    /// signing in again: new record key, expiry, browser and address). `false` if a
    /// session of that `sid` has ended: it cannot be renewed.
    fn record_session(&self, session: &BrowserSession) -> StoreResult<bool>;
    fn find_session(&self, sid: &str) -> StoreResult<Option<BrowserSession>>;
    /// The user's sessions neither ended nor expired at `now`, newest first.
    fn list_user_sessions(&self, user_id: &str, now: UnixTime) -> StoreResult<Vec<BrowserSession>>;
    /// Ends one session (see the trait); nothing if it had ended already.
    fn end_session(&self, sid: &str, now: UnixTime) -> StoreResult<EndedSessions>;
    /// Ends every live session of the user and revokes all the user's grants, offline
    /// ones and those from no session included ("sign out everywhere").
    fn end_user_sessions(&self, user_id: &str, now: UnixTime) -> StoreResult<EndedSessions>;
    /// Ends up to `limit` sessions whose time ran out before `now`, announced like the
    /// others; their `offline_access` grants live on (the user never signed out).
    fn end_expired_sessions(&self, now: UnixTime, limit: i64) -> StoreResult<EndedSessions>;
    /// Claims up to `limit` deliveries due at `now`: each is leased to the caller until
    /// `lease_until` (a claim that is never settled is retried then) and its attempt
    /// counted. Two claimants never get the same row.
    fn claim_logout_deliveries(
        &self,
        now: UnixTime,
        lease_until: UnixTime,
        limit: i64,
    ) -> StoreResult<Vec<LogoutDelivery>>;
    /// Settles a claimed delivery: delivered, retried at `retry_at`, or (with `None`)
    /// given up.
    fn settle_logout_delivery(
        &self,
        id: &str,
        outcome: DeliveryOutcome<'_>,
        now: UnixTime,
    ) -> StoreResult<()>;
    fn find_logout_deliveries(&self, sid: &str) -> StoreResult<Vec<LogoutDelivery>>;
    /// Up to `limit` sessions neither ended nor expired at `now`, of every user, in `sid`
    /// order after `after` (pages of a walk over them all).
    fn list_live_sessions(
        &self,
        after: Option<&str>,
        now: UnixTime,
        limit: i64,
    ) -> StoreResult<Vec<BrowserSession>>;
    /// Records a failed sign-in attempt under each of the throttle's `counter_keys`.
    fn record_login_failure(&self, counter_keys: &[String], at: UnixTime) -> StoreResult<()>;
    /// The failures recorded since `since` (exclusive), counted per counter key.
    fn login_failures_since(&self, since: UnixTime) -> StoreResult<Vec<FailureCount>>;
    /// Deletes the failures recorded before `before` (the throttle's window ago: no
    /// restore reads them again); returns how many rows went.
    fn purge_login_failures(&self, before: UnixTime) -> StoreResult<usize>;
}

/// The failures one throttle counter holds in a window (`login_failures`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FailureCount {
    pub counter_key: String,
    pub failures: i64,
    /// The first of them: the counter's window began then.
    pub first_at: UnixTime,
}

/// One mail in the outbox: written in the transaction of the change that sends it,
/// delivered by whichever instance claims it first. The message itself (recipient, kind,
/// links) is `sealed_message`, sealed under the key-encryption key by `mail`; it is
/// cleared once the mail is sent or given up.
#[derive(Clone, Debug, Queryable, Selectable, Insertable)]
#[diesel(table_name = schema::mail_outbox)]
pub struct QueuedMail {
    pub id: String,
    /// What kind of message (`password_reset`, ...): for logs and metrics.
    pub kind: String,
    /// The recipient's domain, the most of the address logs show.
    pub recipient_domain: String,
    pub sealed_message: Option<String>,
    pub created_at: i64,
    pub next_attempt_at: i64,
    /// Attempts begun so far (a claim counts as one).
    pub attempts: i32,
    pub sent_at: Option<i64>,
    pub failed_at: Option<i64>,
    pub last_error: Option<String>,
}

/// The mail outbox. Enqueueing is a plain insert, so a use-case may do it inside the
/// transaction of the change the mail tells about; delivery is the background task's
/// (`mail_delivery`), never the request's.
pub trait MailStore {
    /// Queues `mail` (due at its `next_attempt_at`).
    fn enqueue_mail(&self, mail: &QueuedMail) -> StoreResult<()>;
    /// Claims up to `limit` mails due at `now`, leased to the caller until `lease_until`
    /// (a claim never settled is retried then), each attempt counted. Two claimants,
    /// on any instances, never get the same row.
    fn claim_mail(
        &self,
        now: UnixTime,
        lease_until: UnixTime,
        limit: i64,
    ) -> StoreResult<Vec<QueuedMail>>;
    /// Settles the claim `attempt` of mail `id`: sent, retried at `retry_at`, or given up
    /// (`retry_at: None`). Sent and given-up mails lose their sealed message. `false`
    /// (nothing written) if the row is no longer that claim's: its lease ran out and
    /// another claim took it.
    fn settle_mail(
        &self,
        id: &str,
        attempt: i32,
        outcome: DeliveryOutcome<'_>,
        now: UnixTime,
    ) -> StoreResult<bool>;
    fn find_mail(&self, id: &str) -> StoreResult<Option<QueuedMail>>;
}

/// How a delivery attempt ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeliveryOutcome<'a> {
    Delivered,
    /// Failed with `error`; tried again at `retry_at`, or never again with `None`.
    Failed {
        error: &'a str,
        retry_at: Option<UnixTime>,
    },
}

pub trait KeyStore {
    /// Keys not retired at `now`, in generation order (the newest of an algorithm last).
    fn list_keys(&self, now: UnixTime) -> StoreResult<Vec<StoredKey>>;
    /// Adds `key` and schedules the retirement of the other keys of its algorithm at
    /// `retire_others_at`, in one transaction. `Conflict` if another rotation took the
    /// same generation first.
    fn rotate_key(&self, key: &StoredKey, retire_others_at: UnixTime) -> StoreResult<()>;
    /// The highest generation of `alg` ever created (retired keys included); 0 if none.
    fn max_key_generation(&self, alg: &str) -> StoreResult<i32>;
    /// `Conflict` if a key of the same algorithm and generation exists (another instance
    /// won the race to create it).
    fn insert_key(&self, key: &StoredKey) -> StoreResult<()>;
    /// Every key ever stored, retired ones included (to seal legacy plain keys).
    fn all_keys(&self) -> StoreResult<Vec<StoredKey>>;
    /// Replaces the stored private key material of `kid` (sealing a legacy plain key).
    fn replace_key_material(&self, kid: &str, private_key: &[u8]) -> StoreResult<()>;
}

/// A user's one-time code authenticator (RFC 6238). Never handed out unsealed: the secret
/// is sealed under the key-encryption key (`protocol::factors::totp`).
#[derive(Clone, Debug, PartialEq, Eq, Queryable, Selectable, Insertable)]
#[diesel(table_name = schema::totp_credentials)]
pub struct TotpCredential {
    pub user_id: String,
    pub sealed_secret: String,
    pub created_at: i64,
    /// When the first correct code confirmed the enrolment; until then it is no factor.
    pub confirmed_at: Option<i64>,
    /// The highest time step whose code was accepted (RFC 6238 §5.2: at most once).
    pub last_used_step: Option<i64>,
    pub last_used_at: Option<i64>,
}

impl TotpCredential {
    pub fn is_confirmed(&self) -> bool {
        self.confirmed_at.is_some()
    }
}

/// A registered WebAuthn credential. `passkey` is webauthn-rs's serialized `Passkey`
/// (public key, counter, backup state): public data, not a secret.
#[derive(Clone, Debug, PartialEq, Eq, Queryable, Selectable, Insertable)]
#[diesel(table_name = schema::passkeys)]
pub struct StoredPasskey {
    pub id: String,
    pub user_id: String,
    /// The credential id, base64url without padding; unique across users.
    pub credential_id: String,
    /// What the user calls it ("YubiKey", "Phone").
    pub name: String,
    pub passkey: String,
    pub created_at: i64,
    pub last_used_at: Option<i64>,
    /// The BE flag: the credential may be synced to other devices.
    pub backup_eligible: bool,
    /// The BS flag as last seen: the credential is synced.
    pub backed_up: bool,
    /// User verification happened at registration (the UV flag).
    pub user_verified: bool,
}

/// A user's one-time code authenticator as the account page and the operator see it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TotpSummary {
    pub created_at: i64,
    pub confirmed_at: i64,
    pub last_used_at: Option<i64>,
}

/// A passkey as the account page and the operator see it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PasskeySummary {
    pub id: String,
    pub name: String,
    pub created_at: i64,
    pub last_used_at: Option<i64>,
    pub backup_eligible: bool,
    pub backed_up: bool,
    pub user_verified: bool,
}

impl PasskeySummary {
    pub fn of(passkey: &StoredPasskey) -> Self {
        Self {
            id: passkey.id.clone(),
            name: passkey.name.clone(),
            created_at: passkey.created_at,
            last_used_at: passkey.last_used_at,
            backup_eligible: passkey.backup_eligible,
            backed_up: passkey.backed_up,
            user_verified: passkey.user_verified,
        }
    }
}

/// What second factors a user has: kinds, names and times, never a secret. An
/// enrolment of a one-time code authenticator not yet confirmed is none.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FactorSummary {
    pub totp: Option<TotpSummary>,
    /// Oldest first.
    pub passkeys: Vec<PasskeySummary>,
    /// Recovery codes not used yet.
    pub recovery_codes_left: i64,
}

impl FactorSummary {
    /// Whether the user has a factor beyond the password: a confirmed one-time code
    /// authenticator or a passkey (recovery codes stand in for those, they are not one).
    pub fn has_second_factor(&self) -> bool {
        self.totp.is_some() || !self.passkeys.is_empty()
    }
}

/// What `reset_second_factors` removed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RemovedFactors {
    /// A one-time code authenticator (confirmed or pending).
    pub totp: bool,
    /// Recovery codes, used ones included.
    pub recovery_codes: usize,
    pub passkeys: usize,
}

/// Second factors: the one-time code authenticator, recovery codes and passkeys. Every
/// check that can race (a code used twice at once, on two instances) is one conditional
/// UPDATE: of two callers exactly one sees `true`.
///
/// Factors do not decide whether a token is live, so no write here touches the liveness
/// cache; a reset by an administrator ends the user's sessions through
/// `AuditStore::apply_audited` (`AdminChange::ResetSecondFactors`), which does.
pub trait FactorStore {
    /// The user's authenticator, confirmed or pending.
    fn find_totp(&self, user_id: &str) -> StoreResult<Option<TotpCredential>>;
    /// Starts an enrolment with `sealed_secret`, replacing a pending one; `false` (and
    /// nothing written) if the user has a confirmed authenticator: it must be removed
    /// first. `Gone` if there is no such user.
    fn begin_totp(&self, user_id: &str, sealed_secret: &str, now: UnixTime) -> StoreResult<bool>;
    /// Confirms the pending enrolment of `sealed_secret` (the one the first code was
    /// checked against) and records `step` as used, atomically; `false` if there is no
    /// such pending enrolment (confirmed meanwhile, or replaced).
    fn confirm_totp(
        &self,
        user_id: &str,
        sealed_secret: &str,
        step: i64,
        now: UnixTime,
    ) -> StoreResult<bool>;
    /// Compare-and-set (RFC 6238 §5.2): records `step` as used if it is later than every
    /// step used before on the confirmed authenticator. `true` for exactly one of any
    /// callers presenting the same step, on any instance; `false` for a step already
    /// used, an older one, or no confirmed authenticator.
    fn use_totp_step(&self, user_id: &str, step: i64, now: UnixTime) -> StoreResult<bool>;
    /// Removes the authenticator (confirmed or pending); `false` if there was none.
    fn remove_totp(&self, user_id: &str) -> StoreResult<bool>;

    /// Replaces the user's recovery codes with `code_hashes`, in one transaction: the old
    /// set, used or not, stops working.
    fn replace_recovery_codes(
        &self,
        user_id: &str,
        code_hashes: &[String],
        now: UnixTime,
    ) -> StoreResult<()>;
    /// Uses the code: `true` for exactly one caller, the first; `false` for a used or
    /// unknown code.
    fn use_recovery_code(&self, user_id: &str, code_hash: &str, now: UnixTime)
    -> StoreResult<bool>;
    /// How many of the user's recovery codes are unused.
    fn count_recovery_codes(&self, user_id: &str) -> StoreResult<i64>;

    /// `Conflict` if the credential id is registered already (to anyone); `Gone` if there
    /// is no such user.
    fn insert_passkey(&self, passkey: &StoredPasskey) -> StoreResult<()>;
    /// The user's passkeys, oldest first.
    fn list_passkeys(&self, user_id: &str) -> StoreResult<Vec<StoredPasskey>>;
    fn find_passkey_by_credential_id(
        &self,
        credential_id: &str,
    ) -> StoreResult<Option<StoredPasskey>>;
    /// `false` if the user has no passkey `id`.
    fn rename_passkey(&self, user_id: &str, id: &str, name: &str) -> StoreResult<bool>;
    /// `false` if the user has no passkey `id`.
    fn remove_passkey(&self, user_id: &str, id: &str) -> StoreResult<bool>;
    /// After an assertion: the updated credential (counter, backup state) and the time,
    /// written only if the stored credential is still `verified_against`, the one the
    /// assertion was checked with (compare-and-set: of two assertions racing, one with
    /// an older counter cannot overwrite a newer one). `false` if the passkey was
    /// removed or changed meanwhile.
    fn record_passkey_use(
        &self,
        id: &str,
        verified_against: &str,
        passkey: &str,
        backed_up: bool,
        now: UnixTime,
    ) -> StoreResult<bool>;

    fn factor_summary(&self, user_id: &str) -> StoreResult<FactorSummary>;
    /// Removes the authenticator, the recovery codes and the passkeys, in one transaction.
    fn reset_second_factors(&self, user_id: &str) -> StoreResult<RemovedFactors>;
}

/// A named set of users. Its name is what the `groups` claim releases.
#[derive(Clone, Debug, PartialEq, Eq, Queryable, Selectable, Insertable)]
#[diesel(table_name = schema::groups)]
pub struct Group {
    pub id: String,
    /// As the administrator wrote it (a checked `GroupName`).
    pub name: String,
    /// `GroupName::key` of the name: unique.
    pub name_key: String,
    pub created_at: i64,
    pub updated_at: i64,
}

impl Group {
    pub fn new(id: String, name: &GroupName, now: UnixTime) -> Self {
        Self {
            id,
            name: name.as_str().to_owned(),
            name_key: name.key(),
            created_at: now,
            updated_at: now,
        }
    }

    /// The same group under `name`.
    pub fn renamed(&self, name: &GroupName, now: UnixTime) -> Self {
        Self {
            name: name.as_str().to_owned(),
            name_key: name.key(),
            updated_at: now,
            ..self.clone()
        }
    }
}

/// A group and how many members it has.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GroupSummary {
    pub group: Group,
    pub members: i64,
}

/// A member of a group as listed: the user and when they joined.
#[derive(Clone, Debug, PartialEq, Eq, Queryable)]
pub struct GroupMember {
    pub user_id: String,
    pub username: String,
    pub added_at: i64,
}

/// Groups and their members, as read. Every change goes through
/// `AuditStore::apply_audited` (`AdminChange::CreateGroup` ...), which writes its audit
/// event in the same transaction and clears the liveness cache, here and, announced, on
/// the other instances: a group's change reaches them as a user's does.
///
/// Listings are ordered by the names' keys (case-insensitively, the same on every backend:
/// sorted here, not by the database's collation).
pub trait GroupStore {
    fn find_group(&self, id: &str) -> StoreResult<Option<Group>>;
    /// The group whose name has the key of `name` (any case).
    fn find_group_by_name(&self, name: &str) -> StoreResult<Option<Group>>;
    /// Every group with its member count.
    fn list_groups(&self) -> StoreResult<Vec<GroupSummary>>;
    fn count_group_members(&self, group_id: &str) -> StoreResult<i64>;
    /// The group's members, by username (case-insensitively).
    fn list_group_members(&self, group_id: &str) -> StoreResult<Vec<GroupMember>>;
    /// The groups the user belongs to.
    fn list_user_groups(&self, user_id: &str) -> StoreResult<Vec<Group>>;
    /// The names of the groups of the grant's user, sorted: the `groups` claim. One
    /// indexed query (grant, then the user's memberships, then their groups), answered
    /// from the liveness cache for a grant seen live lately.
    fn grant_group_names(&self, grant_id: &str) -> StoreResult<Vec<String>>;
}

/// A link sent by mail (`protocol::links`): only the token's hash is kept.
#[derive(Clone, Debug, PartialEq, Eq, Queryable, Selectable, Insertable)]
#[diesel(table_name = schema::action_links)]
pub struct ActionLink {
    pub token_hash: String,
    /// What the link does (`protocol::links::LinkPurpose`'s names).
    pub purpose: String,
    /// The account it acts on; none for an invitation.
    pub user_id: Option<String>,
    /// The address it was sent to: the link speaks for that address only.
    pub email: String,
    pub created_at: i64,
    pub expires_at: i64,
    pub used_at: Option<i64>,
    /// Who sent it (an invitation's administrator, as the audit trail names them).
    pub created_by: Option<String>,
}

/// Links sent by mail. Using one is a single conditional UPDATE, decided by the database
/// between racing callers: a link works once.
pub trait LinkStore {
    fn insert_link(&self, link: &ActionLink) -> StoreResult<()>;
    /// The link, used or not, expired or not (the caller says which).
    fn find_link(&self, token_hash: &str) -> StoreResult<Option<ActionLink>>;
    /// Marks the link of `purpose` used if it is unused and unexpired at `now`, and
    /// returns it; `None` if it was not (unknown, another purpose, used, expired).
    fn use_link(
        &self,
        token_hash: &str,
        purpose: &str,
        now: UnixTime,
    ) -> StoreResult<Option<ActionLink>>;
    /// Marks every unused link of `purpose` for the user used (a newer one, or what it
    /// was for, made them pointless); returns how many.
    fn retire_links(&self, user_id: &str, purpose: &str, now: UnixTime) -> StoreResult<usize>;
    /// A verification or change of address by link, in one transaction: uses the link
    /// (of `purpose`, for `user_id`, unused, unexpired), then sets the user's `email` to
    /// the link's and `email_verified`, and nothing else of the row, only if the user is
    /// enabled and their address is still `expected` (the one read before: a change
    /// made since wins); retires the user's other links of [`ADDRESS_CONFIRMATIONS`] and
    /// writes `event`. `false`, and nothing written, if any of it does not hold.
    fn confirm_address(
        &self,
        token_hash: &str,
        purpose: &str,
        user_id: &str,
        expected: Option<&str>,
        event: &NewAuditEvent,
    ) -> StoreResult<bool>;
}

/// The link purposes a confirmed address settles: whatever else was pending for it.
pub const ADDRESS_CONFIRMATIONS: [&str; 2] = ["email_verification", "email_change"];

/// A sign-up waiting for its address to be verified (`protocol::signup`): the link's
/// token hash, and what the person chose (username, password hash), sealed.
#[derive(Clone, Debug, PartialEq, Eq, Queryable, Selectable, Insertable)]
#[diesel(table_name = schema::pending_signups)]
pub struct PendingSignup {
    pub token_hash: String,
    pub sealed_registration: String,
    pub created_at: i64,
}

/// How accepting a link that creates an account ended (`SignupStore::accept_link`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Accepted {
    /// The link is used, the account and its audit event written.
    Created,
    /// The link is unknown, of another purpose, used or expired: nothing written.
    LinkUnusable,
    /// The username is taken (in any case): nothing written, the link still works.
    UsernameTaken,
    /// The passkey's credential is another account's: nothing written, the link still
    /// works.
    PasskeyTaken,
}

/// Accounts made by invitation and by open sign-up (issue 23 §4).
pub trait SignupStore {
    /// In one transaction: uses the link of `purpose` (as `LinkStore::use_link`), creates
    /// `user` (with `passkey`, when the account signs in by one rather than a password),
    /// records `event` and forgets the link's pending sign-up. Of two requests racing with
    /// one link, one creates the account; the other creates nothing.
    fn accept_link(
        &self,
        token_hash: &str,
        purpose: &str,
        now: UnixTime,
        user: &User,
        passkey: Option<&StoredPasskey>,
        event: &NewAuditEvent,
    ) -> StoreResult<Accepted>;
    /// Stores a sign-up's link and its pending registration together.
    fn insert_pending_signup(&self, link: &ActionLink, pending: &PendingSignup) -> StoreResult<()>;
    fn find_pending_signup(&self, token_hash: &str) -> StoreResult<Option<PendingSignup>>;
    /// Whether an account has this address (any case).
    fn email_in_use(&self, email: &str) -> StoreResult<bool>;
    /// Whether an account has this username (any case: by its `UsernameKey`).
    fn username_in_use(&self, username: &str) -> StoreResult<bool>;
}

/// An identity at an upstream OpenID provider (issue 24), keyed by (issuer, subject),
/// and the local account it signs in to. See the migration `upstream_identities` for
/// what a row without `user_id` means.
#[derive(Clone, Debug, PartialEq, Eq, Queryable, Selectable, Insertable)]
#[diesel(table_name = schema::upstream_identities)]
pub struct UpstreamIdentity {
    pub issuer: String,
    pub subject: String,
    /// The `[[upstream]]` id it came through.
    pub provider: String,
    /// `None`: unlinked (`unlinked_at` set), or its account was removed (tombstone).
    pub user_id: Option<String>,
    /// The upstream's address, shown on the account page (never a key).
    pub email: Option<String>,
    pub created_at: i64,
    pub last_used_at: Option<i64>,
    /// When it was unlinked (while it is): link proofs issued before then are dead.
    pub unlinked_at: Option<i64>,
}

impl UpstreamIdentity {
    /// Its account was removed: the identity is refused, not given a new account.
    pub fn is_tombstone(&self) -> bool {
        self.user_id.is_none() && self.unlinked_at.is_none()
    }
}

/// What counts as a way to sign in for the last-way rule: passkeys only while they are
/// on, identities only of providers still configured (one removed cannot sign in).
#[derive(Clone, Copy, Debug)]
pub struct WaysIn<'a> {
    pub passkeys: bool,
    pub providers: &'a [String],
}

/// How an unlink ended (`UpstreamStore::unlink_upstream_identity`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unlinked {
    Done,
    /// Not an identity linked to this user: nothing changed.
    NotFound,
    /// The account has no password, no passkey and no other link: this is its last way
    /// to sign in, and it stays.
    LastWay,
}

/// Upstream identities and their links (issue 24).
pub trait UpstreamStore {
    fn find_upstream_identity(
        &self,
        issuer: &str,
        subject: &str,
    ) -> StoreResult<Option<UpstreamIdentity>>;
    /// The identities linked to `user_id`, oldest first.
    fn list_upstream_identities(&self, user_id: &str) -> StoreResult<Vec<UpstreamIdentity>>;
    /// Records a sign-in with the identity (its `last_used_at`, its current email).
    fn touch_upstream_identity(
        &self,
        issuer: &str,
        subject: &str,
        email: Option<&str>,
        now: UnixTime,
    ) -> StoreResult<()>;
    /// In one transaction: links the identity to `identity.user_id` (a new row, or one
    /// unlinked before) and records `event`. `false`, and nothing written, when the
    /// identity is linked already or is a removed account's tombstone.
    fn link_upstream_identity(
        &self,
        identity: &UpstreamIdentity,
        event: &NewAuditEvent,
    ) -> StoreResult<bool>;
    /// JIT, in one transaction: creates `user`, links the identity to it, records
    /// `event`. `Err(Conflict)` when the username is taken (nothing written); `Ok(false)`
    /// when the identity was linked meanwhile (nothing written).
    fn create_upstream_user(
        &self,
        user: &User,
        identity: &UpstreamIdentity,
        event: &NewAuditEvent,
    ) -> StoreResult<bool>;
    /// In one transaction: unlinks the identity from `user_id` unless it is the
    /// account's last way to sign in, and records `event`.
    fn unlink_upstream_identity(
        &self,
        user_id: &str,
        issuer: &str,
        subject: &str,
        now: UnixTime,
        ways: &WaysIn<'_>,
        event: &NewAuditEvent,
    ) -> StoreResult<Unlinked>;
}

/// Everything the provider stores.
pub trait Store:
    UserStore
    + ClientStore
    + GrantStore
    + TokenStore
    + ConsentStore
    + KeyStore
    + FactStore
    + SessionRecordStore
    + AuditStore
    + FactorStore
    + GroupStore
    + LinkStore
    + SignupStore
    + MailStore
    + UpstreamStore
    + Send
    + Sync
{
    /// Cheap liveness check for `/readyz`.
    fn ping(&self) -> StoreResult<()>;
}
