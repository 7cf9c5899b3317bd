//! Storage: narrow traits over the records the protocol needs, implemented once with
//! diesel for SQLite and PostgreSQL (`sql`). Calls are blocking: from async code, run them
//! on a blocking thread (`web::block`).

pub mod schema;
pub mod sql;

use diesel::prelude::*;

use crate::domain::UnixTime;

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
}

impl User {
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
        }
    }
}

/// RFC 7591 §2 `token_endpoint_auth_method`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AuthMethod {
    ClientSecretBasic,
    ClientSecretPost,
    None,
}

impl AuthMethod {
    pub const SUPPORTED: [&'static str; 3] = ["client_secret_basic", "client_secret_post", "none"];

    pub fn parse(value: &str) -> Option<Self> {
        match value {
            "client_secret_basic" => Some(Self::ClientSecretBasic),
            "client_secret_post" => Some(Self::ClientSecretPost),
            "none" => Some(Self::None),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::ClientSecretBasic => "client_secret_basic",
            Self::ClientSecretPost => "client_secret_post",
            Self::None => "none",
        }
    }
}

#[derive(Clone, Debug)]
pub struct Client {
    pub id: String,
    pub name: String,
    pub secret_hash: Option<String>,
    pub auth_method: AuthMethod,
    /// `web` or `native` (OIDC Registration §2).
    pub application_type: String,
    pub grant_types: Vec<String>,
    pub response_types: Vec<String>,
    /// Scopes the client may request; `None` means every scope we support.
    pub scope: Option<String>,
    pub redirect_uris: Vec<String>,
    pub post_logout_redirect_uris: Vec<String>,
    pub metadata: serde_json::Value,
    pub registration_token_hash: Option<String>,
    pub created_at: i64,
}

impl Client {
    pub fn is_public(&self) -> bool {
        self.auth_method == AuthMethod::None
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
}

#[derive(Clone, Debug, Queryable, Selectable, Insertable)]
#[diesel(table_name = schema::grants)]
pub struct Grant {
    pub id: String,
    pub client_id: String,
    pub user_id: String,
    pub scope: String,
    pub session_id: Option<String>,
    pub created_at: i64,
    pub revoked_at: Option<i64>,
}

#[derive(Clone, Debug, Queryable, Selectable, Insertable)]
#[diesel(table_name = schema::consents)]
pub struct Consent {
    pub user_id: String,
    pub client_id: String,
    pub scope: String,
    pub granted_at: i64,
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

pub trait UserStore {
    fn create_user(&self, user: &User) -> StoreResult<()>;
    fn find_user(&self, id: &str) -> StoreResult<Option<User>>;
    fn find_user_by_username(&self, username: &str) -> StoreResult<Option<User>>;
    fn list_users(&self) -> StoreResult<Vec<User>>;
    /// Returns whether a user was removed.
    fn delete_user(&self, username: &str) -> StoreResult<bool>;
    fn set_password_hash(&self, username: &str, hash: &str, now: UnixTime) -> StoreResult<bool>;
}

pub trait ClientStore {
    fn create_client(&self, client: &Client) -> StoreResult<()>;
    fn find_client(&self, id: &str) -> StoreResult<Option<Client>>;
    fn list_clients(&self) -> StoreResult<Vec<Client>>;
    fn delete_client(&self, id: &str) -> StoreResult<bool>;
}

pub trait GrantStore {
    fn insert_code(&self, code: &AuthorizationCode) -> StoreResult<()>;
    fn find_code(&self, code_hash: &str) -> StoreResult<Option<AuthorizationCode>>;
    /// Marks the code consumed and records `grant`, atomically: returns `false` (and
    /// writes nothing) if the code was already consumed, however close the race.
    fn redeem_code(&self, code_hash: &str, grant: &Grant, now: UnixTime) -> StoreResult<bool>;
    fn find_grant(&self, id: &str) -> StoreResult<Option<Grant>>;
    fn revoke_grant(&self, id: &str, now: UnixTime) -> StoreResult<()>;
    /// Deletes codes that expired before `before`; returns how many.
    fn purge_codes(&self, before: UnixTime) -> StoreResult<usize>;
}

pub trait ConsentStore {
    fn find_consent(&self, user_id: &str, client_id: &str) -> StoreResult<Option<Consent>>;
    /// Creates or replaces the consent of this user for this client.
    fn save_consent(&self, consent: &Consent) -> StoreResult<()>;
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
}

/// Everything the provider stores.
pub trait Store:
    UserStore + ClientStore + GrantStore + ConsentStore + KeyStore + Send + Sync
{
    /// Cheap liveness check for `/readyz`.
    fn ping(&self) -> StoreResult<()>;
}
