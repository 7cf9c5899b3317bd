//! A world for unit tests of protocol code: an in-memory SQLite store with the real
//! migrations, a clock that moves only when told, one generated signing key, no network,
//! and a configuration the test states rather than reads. Tests call protocol functions
//! with `world.ctx()`, as the HTTP layer does with the application state.

use super::{Context, NoClientKeys, ProtocolConfig};
use crate::crypto::kek::KeyEncryptionKey;
use crate::crypto::tokens::{pkce_s256, random_token, token_hash};
use crate::crypto::{KeyAlgorithm, KeySet, SigningKey};
use crate::domain::{
    ApplicationType, ClientMetadata, Clock, GrantType, ManualClock, RegistrationMode, ResponseType,
    Seconds, UnixTime,
};
use crate::store::sql::SqlStore;
use crate::store::{AuthMethod, AuthorizationCode, Client, Store, User};

/// Where every world's clock starts.
pub const START: UnixTime = 1_800_000_000;
pub const ISSUER: &str = "https://op.example";
/// The one redirect URI of every client here.
pub const REDIRECT_URI: &str = "https://rp.example/cb";
/// The verifier of every code here (RFC 7636 Appendix B): 43 unreserved characters.
pub const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";

fn seconds(n: i64) -> Seconds {
    Seconds::new(n).unwrap()
}

/// The configuration with the defaults an operator gets (README, the configuration
/// table), under `ISSUER`.
pub fn config() -> ProtocolConfig {
    ProtocolConfig {
        issuer: ISSUER.to_owned(),
        authorization_code_ttl: seconds(60),
        access_token_ttl: seconds(3600),
        id_token_ttl: seconds(3600),
        refresh_token_ttl: seconds(2_592_000),
        refresh_token_absolute_ttl: seconds(7_776_000),
        refresh_token_grace_period: seconds(5),
        session_ttl: seconds(86_400),
        require_pushed_authorization_requests: false,
        dpop_nonce: false,
        registration: RegistrationMode::Token,
        registration_token_set: false,
        mfa: crate::domain::MfaPolicy::Optional,
        passkeys: true,
    }
}

/// A public web client named `id` with nothing registered: tests set what they need.
pub fn client(id: &str) -> Client {
    Client {
        id: id.to_owned(),
        name: id.to_owned(),
        secret_hash: None,
        auth_method: AuthMethod::None,
        application_type: ApplicationType::Web,
        grant_types: vec![],
        response_types: vec![],
        scope: None,
        redirect_uris: vec![],
        post_logout_redirect_uris: vec![],
        metadata: ClientMetadata::default(),
        registration_token_hash: None,
        created_at: 0,
        secret_ciphertext: None,
        jwks: None,
        jwks_uri: None,
        pkce_required: true,
        resources: vec![],
        registered_dynamically: false,
        first_party: false,
        require_mfa: false,
        access_token_format: crate::domain::AccessTokenFormat::Jwt,
        backchannel_logout: None,
        frontchannel_logout: None,
    }
}

pub struct TestWorld {
    pub store: Box<dyn Store>,
    pub clock: ManualClock,
    pub keys: KeySet,
    pub kek: KeyEncryptionKey,
    pub config: ProtocolConfig,
}

impl Default for TestWorld {
    fn default() -> Self {
        Self::with_config(config())
    }
}

impl TestWorld {
    /// A world under `config`. Its one key is ES256 (generated in microseconds, where
    /// RSA takes a good part of a second); the clients here ask for ES256 tokens.
    pub fn with_config(config: ProtocolConfig) -> Self {
        let (key, _) = SigningKey::generate(KeyAlgorithm::Es256).unwrap();
        Self {
            store: Box::new(SqlStore::open("sqlite://:memory:").unwrap()),
            clock: ManualClock::new(START),
            keys: KeySet::new(vec![key]),
            kek: KeyEncryptionKey::from_bytes(&[7; 32]).unwrap(),
            config,
        }
    }

    /// What protocol code runs with, at the clock's current time. No client key is ever
    /// fetched: a `jwks_uri` is answered with `invalid_client`.
    pub fn ctx(&self) -> Context<'_> {
        Context {
            store: &*self.store,
            keys: &self.keys,
            config: &self.config,
            kek: &self.kek,
            client_keys: &NoClientKeys,
            now: self.clock.now(),
            dpop: None,
        }
    }

    /// A stored user (codes and grants refer to their user), with the id `<name>-id`.
    pub fn add_user(&self, username: &str) -> User {
        let user = User::new(
            format!("{username}-id"),
            username.to_owned(),
            String::new(),
            START,
        );
        self.store.create_user(&user).unwrap();
        user
    }

    /// A stored web client with the code and refresh grants, `REDIRECT_URI`, ES256
    /// tokens and `auth_method`; with its secret when the method has one.
    pub fn add_client(&self, id: &str, auth_method: AuthMethod) -> (Client, Option<String>) {
        self.add_client_of_format(id, auth_method, crate::domain::AccessTokenFormat::Jwt)
    }

    /// As `add_client`, with access tokens of `format`.
    pub fn add_client_of_format(
        &self,
        id: &str,
        auth_method: AuthMethod,
        access_token_format: crate::domain::AccessTokenFormat,
    ) -> (Client, Option<String>) {
        let secret = auth_method.has_secret().then(|| random_token(32));
        let client = Client {
            secret_hash: secret.as_deref().map(token_hash),
            auth_method,
            grant_types: vec![GrantType::AuthorizationCode, GrantType::RefreshToken],
            response_types: vec![ResponseType::CODE],
            redirect_uris: vec![REDIRECT_URI.to_owned()],
            metadata: ClientMetadata {
                id_token_signed_response_alg: Some(KeyAlgorithm::Es256),
                access_token_signed_response_alg: Some(KeyAlgorithm::Es256),
                ..ClientMetadata::default()
            },
            created_at: START,
            access_token_format,
            ..client(id)
        };
        self.store.create_client(&client).unwrap();
        (client, secret)
    }

    /// A code issued now, as the authorization endpoint issues one: to `client` for
    /// `user` and `scope`, for a request that sent `REDIRECT_URI` and the S256 challenge
    /// of `VERIFIER`, outside any browser session. Returns the code itself.
    pub fn issue_code(&self, client: &Client, user: &User, scope: &str) -> String {
        self.issue_code_as(client, user, scope, true)
    }

    /// As `issue_code`, saying whether the authorization request named `REDIRECT_URI`
    /// (RFC 6749 §4.1.3: then the token request must repeat it).
    pub fn issue_code_as(
        &self,
        client: &Client,
        user: &User,
        scope: &str,
        redirect_uri_sent: bool,
    ) -> String {
        self.insert_code(client, user, scope, redirect_uri_sent, &[], None)
    }

    /// As `issue_code`, for a request that named RFC 8707 `resources`.
    pub fn issue_code_for(
        &self,
        client: &Client,
        user: &User,
        scope: &str,
        resources: &[&str],
    ) -> String {
        self.insert_code(client, user, scope, true, resources, None)
    }

    /// As `issue_code`, in the browser session `sid` (a live one is recorded here, ending
    /// at `session_expires_at`): the ID token then carries the `sid`.
    pub fn issue_code_in_session(
        &self,
        client: &Client,
        user: &User,
        scope: &str,
        sid: &str,
        session_expires_at: UnixTime,
    ) -> String {
        let now = self.clock.now();
        self.store
            .record_session(&crate::store::BrowserSession {
                sid: sid.to_owned(),
                user_id: user.id.clone(),
                store_key: random_token(16),
                created_at: now,
                expires_at: session_expires_at,
                ended_at: None,
                user_agent: None,
                ip_address: None,
            })
            .unwrap();
        self.insert_code(client, user, scope, true, &[], Some(sid))
    }

    fn insert_code(
        &self,
        client: &Client,
        user: &User,
        scope: &str,
        redirect_uri_sent: bool,
        resources: &[&str],
        sid: Option<&str>,
    ) -> String {
        let code = random_token(32);
        let now = self.clock.now();
        self.store
            .insert_code(&AuthorizationCode {
                code_hash: token_hash(&code),
                grant_id: random_token(16),
                client_id: client.id.clone(),
                user_id: user.id.clone(),
                redirect_uri: REDIRECT_URI.to_owned(),
                redirect_uri_sent,
                scope: scope.to_owned(),
                nonce: None,
                code_challenge: Some(pkce_s256(VERIFIER)),
                code_challenge_method: Some("S256".to_owned()),
                session_id: sid.map(str::to_owned),
                auth_time: now,
                created_at: now,
                expires_at: now + self.config.authorization_code_ttl,
                consumed_at: None,
                acr: None,
                claims: None,
                amr: Some("pwd".to_owned()),
                resources: (!resources.is_empty()).then(|| resources.join(" ")),
                dpop_jkt: None,
            })
            .unwrap();
        code
    }
}
