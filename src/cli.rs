//! The command line (CONTRACT.md): `serve` (default), `migrate`, `users ...`, `groups ...`
//! (in `groups`), `clients ...`, `keys list`. Every command reads the same configuration
//! as `serve`.

mod groups;

pub use groups::GroupsCommand;

use std::io::BufRead;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use serde_json::json;

use crate::admin::{Actor, Admin, AdminError, AdminResult};
use crate::config::Settings;
use crate::crypto::password::hash_password;
use crate::crypto::tokens::random_uuid;
use crate::domain::{Secret, now};
use crate::keyring;
use crate::protocol::claims;
use crate::protocol::registration::ClientDraft;
use crate::sessions::{RedisSessionStore, Sessions};
use crate::startup::{check_kek, load_kek};
use crate::store::sql::SqlStore;
use crate::store::{ClientStore, EndedSessions, KeyStore, SessionRecordStore, User, UserStore};

mod transfer;

#[derive(Parser, Debug)]
#[command(
    name = "portcullis",
    version,
    about = "OpenID Connect provider and OAuth 2.0 authorization server"
)]
pub struct Cli {
    /// TOML configuration file (also PORTCULLIS_CONFIG).
    #[arg(long, global = true, env = "PORTCULLIS_CONFIG")]
    pub config: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Option<Command>,
}

// `Clients` carries every registration flag; the value is parsed once per process.
#[allow(clippy::large_enum_variant)]
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Apply migrations, load or create signing keys, serve HTTP (the default).
    Serve,
    /// Apply pending migrations and exit.
    Migrate,
    /// Manage users.
    #[command(subcommand)]
    Users(UsersCommand),
    /// Manage client applications.
    #[command(subcommand)]
    Clients(ClientsCommand),
    /// Inspect signing keys.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// See and end users' browser sessions.
    #[command(subcommand)]
    Sessions(SessionsCommand),
    /// Manage groups and their members (the `groups` claim).
    #[command(subcommand)]
    Groups(GroupsCommand),
    /// Check that mail leaves (a test message).
    #[command(subcommand)]
    Mail(MailCommand),
}

#[derive(Subcommand, Debug)]
pub enum MailCommand {
    /// Queue a test message to ADDRESS; prints its id. A running `portcullis serve` sends
    /// it (to smtp_url, or as a file in the data directory's outbox/ without one): its log
    /// says whether it went, was retried or was given up.
    Test {
        address: String,
        /// The message's language.
        #[arg(long, default_value = "en", value_parser = ["en", "fr"])]
        locale: String,
    },
}

#[derive(Subcommand, Debug)]
pub enum SessionsCommand {
    /// List a user's live sessions: sid, signed in, expires, address, browser.
    List {
        /// The user's username.
        #[arg(long)]
        user: String,
    },
    /// End a session (by its sid): its tokens are revoked and every app that got tokens
    /// in it is told by back-channel logout.
    End {
        #[arg(allow_hyphen_values = true)]
        sid: String,
    },
}

#[derive(Subcommand, Debug)]
pub enum UsersCommand {
    /// Create a user; the password is read from standard input. Prints the user's `sub`.
    Add {
        #[arg(long)]
        username: String,
        #[arg(long)]
        email: Option<String>,
        /// Mark the email address as verified.
        #[arg(long)]
        email_verified: bool,
        #[arg(long)]
        name: Option<String>,
        #[arg(long)]
        given_name: Option<String>,
        #[arg(long)]
        family_name: Option<String>,
        /// Any OIDC Core §5.1 standard claim, NAME=VALUE (`phone_number=+1 555 0100`,
        /// `birthdate=1990-01-31`, `phone_number_verified=true`, `address.locality=Paris`).
        #[arg(long = "claim")]
        claims: Vec<String>,
        /// Give the user the admin role (the admin console and API).
        #[arg(long)]
        admin: bool,
        /// Require a second factor of the user (whatever the server-wide `mfa` says).
        #[arg(long)]
        require_mfa: bool,
        #[arg(long, required = true)]
        password_stdin: bool,
    },
    /// Change a user's claims, admin role or disabled state.
    Update {
        username: String,
        #[arg(long)]
        email: Option<String>,
        #[arg(long)]
        name: Option<String>,
        /// NAME=VALUE, as for `users add`.
        #[arg(long = "claim")]
        claims: Vec<String>,
        /// Remove a claim (or one address member, `address.locality`).
        #[arg(long = "unset-claim")]
        unset_claims: Vec<String>,
        /// Give the user the admin role.
        #[arg(long, conflicts_with = "no_admin")]
        admin: bool,
        /// Take the admin role away.
        #[arg(long)]
        no_admin: bool,
        /// Disable the account: it cannot sign in, and its sessions and tokens end.
        #[arg(long, conflicts_with = "enable")]
        disable: bool,
        /// Enable a disabled account.
        #[arg(long)]
        enable: bool,
        /// Require a second factor of the user.
        #[arg(long, conflicts_with = "no_require_mfa")]
        require_mfa: bool,
        /// Stop requiring a second factor of the user (the server-wide `mfa` and the
        /// client's `require_mfa` still apply).
        #[arg(long)]
        no_require_mfa: bool,
    },
    /// List users.
    List,
    /// Remove a user (the user's sessions end first, and their apps are told).
    Remove { username: String },
    /// End every session of the user and revoke every grant the user gave (offline
    /// access included); apps are told by back-channel logout.
    SignOutEverywhere { username: String },
    /// See or reset a user's second factors (one-time codes, passkeys, recovery codes).
    #[command(subcommand)]
    Mfa(MfaCommand),
    /// Set a user's password from standard input. The user's browser sessions and every
    /// grant the user gave (refresh and access tokens) end, so a reset after a compromise
    /// locks the intruder out.
    SetPassword {
        username: String,
        #[arg(long, required = true)]
        password_stdin: bool,
    },
    /// Create users from a file of JSON lines, one user each, with their password hashes
    /// as they are (argon2, bcrypt, PBKDF2, scrypt; each becomes our argon2id at the
    /// user's first sign-in). All of them or, if a line is bad, none: the error names the
    /// line. FILE `-` is standard input.
    Import {
        file: PathBuf,
        /// Check everything (the database included) and say what would be created; write
        /// nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// Write every user to standard output as JSON lines, in the format `import` reads,
    /// with their password hashes.
    Export,
    /// Invite EMAIL to make an account (needs `signup = invite` or `open`): a mail with a
    /// link, valid 7 days, where they choose a username and a password. The mail is
    /// queued; a running server sends it.
    Invite {
        email: String,
        /// The mail's language: en or fr.
        #[arg(long, default_value = "en")]
        locale: String,
    },
}

#[derive(Subcommand, Debug)]
pub enum MfaCommand {
    /// List the user's second factors, tab-separated: kind, name, created, last used;
    /// then how many recovery codes are left. Never a secret.
    List { username: String },
    /// Remove the user's second factors and end every session and grant of the user (as
    /// sign-out-everywhere does; apps are told by back-channel logout). The user enrols
    /// again at the next sign-in.
    Reset { username: String },
}

// `Add` carries every registration flag; the value is parsed once per process.
#[allow(clippy::large_enum_variant)]
#[derive(Subcommand, Debug)]
pub enum ClientsCommand {
    /// Register a client; prints its client_id (and client_secret, shown only once).
    Add {
        #[arg(long)]
        name: String,
        /// Required unless the client only uses client_credentials.
        #[arg(long = "redirect-uri")]
        redirect_uris: Vec<String>,
        /// A public client (no secret; PKCE required).
        #[arg(long)]
        public: bool,
        /// Native application (private-use URI schemes allowed).
        #[arg(long)]
        native: bool,
        /// authorization_code (the default), implicit, refresh_token, client_credentials.
        #[arg(long = "grant-type", value_parser = clap::builder::PossibleValuesParser::new(crate::domain::GrantType::SUPPORTED))]
        grant_types: Vec<String>,
        /// A response type the client may use: code (the default), id_token,
        /// "id_token token", "code id_token", "code token", "code id_token token".
        #[arg(long = "response-type")]
        response_types: Vec<String>,
        /// Scopes the client may request (default: all OpenID scopes). API scopes for
        /// client_credentials are registered here too.
        #[arg(long = "scope")]
        scopes: Vec<String>,
        #[arg(long = "post-logout-redirect-uri")]
        post_logout_redirect_uris: Vec<String>,
        /// Client authentication at the token endpoint for confidential clients.
        #[arg(long, value_parser = ["client_secret_basic", "client_secret_post", "client_secret_jwt", "private_key_jwt"])]
        auth_method: Option<String>,
        /// private_key_jwt: URL of the client's JWK Set.
        #[arg(long)]
        jwks_uri: Option<String>,
        /// private_key_jwt: the client's JWK Set itself, as JSON.
        #[arg(long)]
        jwks: Option<String>,
        /// Let this confidential client skip PKCE (only for old apps that cannot send it).
        #[arg(long)]
        pkce_optional: bool,
        /// Algorithm of the client's access tokens (default RS256).
        #[arg(long, value_parser = ["RS256", "PS256", "ES256", "EdDSA"])]
        access_token_alg: Option<String>,
        /// Algorithm of the client's ID tokens (default RS256).
        #[arg(long, value_parser = ["RS256", "PS256", "ES256", "EdDSA"])]
        id_token_alg: Option<String>,
        /// Userinfo answers this client with a JWT signed with this algorithm.
        #[arg(long, value_parser = ["RS256", "PS256", "ES256", "EdDSA"])]
        userinfo_alg: Option<String>,
        /// RFC 9126: this client must push its authorization requests (PAR) first.
        #[arg(long)]
        require_par: bool,
        /// RFC 9449 §5.2: every token request of this client carries a DPoP proof, and
        /// its access tokens are DPoP-bound.
        #[arg(long)]
        dpop_bound_access_tokens: bool,
        /// RFC 9449 §8: this client's DPoP proofs must carry the server's nonce.
        #[arg(long)]
        require_dpop_nonce: bool,
        /// OIDC Core §8: `pairwise` gives this client's users a `sub` of its own sector.
        #[arg(long, value_parser = ["public", "pairwise"])]
        subject_type: Option<String>,
        /// The sector: a JSON array of the redirect URIs of every client in it (fetched).
        #[arg(long)]
        sector_identifier_uri: Option<String>,
        /// RFC 8707 resource (absolute URI) the client may ask tokens for.
        #[arg(long = "resource")]
        resources: Vec<String>,
        /// OIDC Back-Channel Logout: where logout tokens are POSTed.
        #[arg(long)]
        backchannel_logout_uri: Option<String>,
        /// The client needs `sid` in logout tokens (we always send it).
        #[arg(long)]
        backchannel_logout_session_required: bool,
        /// OIDC Front-Channel Logout: the page loaded in an iframe on sign-out.
        #[arg(long)]
        frontchannel_logout_uri: Option<String>,
        /// The client needs `iss` and `sid` on its front-channel URI (we always send them).
        #[arg(long)]
        frontchannel_logout_session_required: bool,
        /// The operator's own app: its users see no consent page (unless it sends
        /// prompt=consent).
        #[arg(long)]
        first_party: bool,
        /// Everyone who signs in to this client needs a second factor.
        #[arg(long)]
        require_mfa: bool,
        /// RFC 8693: an audience (URI or name) the client may exchange tokens for
        /// (repeatable; needs --grant-type urn:ietf:params:oauth:grant-type:token-exchange).
        #[arg(long = "exchange-audience", num_args = 1..)]
        exchange_audiences: Vec<String>,
        /// RFC 8693: the client may exchange without an actor token (impersonate the
        /// subject); without this flag it may only delegate.
        #[arg(long)]
        exchange_impersonation: bool,
        /// A security profile the client is held to: `fapi2` (FAPI 2.0 Security Profile:
        /// PAR, PKCE S256, private_key_jwt, PS256/ES256/EdDSA, 60 s codes).
        #[arg(long, value_parser = crate::domain::Profile::SUPPORTED)]
        profile: Option<String>,
        /// `jwt` (the default): RFC 9068 JWT access tokens; `opaque`: random reference
        /// tokens that resource servers resolve by introspection.
        #[arg(long, value_parser = crate::domain::AccessTokenFormat::SUPPORTED)]
        access_token_format: Option<String>,
    },
    /// List clients.
    List,
    /// Remove a client.
    Remove {
        /// Client ids may begin with '-'.
        #[arg(allow_hyphen_values = true)]
        client_id: String,
    },
}

#[derive(Subcommand, Debug)]
pub enum KeysCommand {
    /// List published signing keys: kid, algorithm, created, signs from, retires at.
    List,
    /// Add a new signing key (for ALG, or for every algorithm). It is published at once
    /// and signs after --activate-in seconds; the keys it replaces stay published until
    /// the tokens they signed have expired.
    Rotate {
        #[arg(long, value_parser = ["RS256", "PS256", "ES256", "EdDSA"])]
        alg: Option<String>,
        /// Seconds between publishing the new key and signing with it.
        #[arg(long, default_value_t = keyring::DEFAULT_ACTIVATION_DELAY)]
        activate_in: i64,
    },
}

pub fn run_cli(cli: Cli) -> anyhow::Result<()> {
    let settings = Settings::load(cli.config.as_deref())?;
    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => serve(settings),
        Command::Migrate => {
            let store = SqlStore::open_for_command(&settings.database_url)?;
            let applied = store.migrate()?;
            println!(
                "database is up to date ({} migrations applied now)",
                applied.len()
            );
            Ok(())
        }
        Command::Users(cmd) => announcing_changes(&settings, |store| users(cmd, &settings, store)),
        Command::Sessions(cmd) => {
            announcing_changes(&settings, |store| sessions(cmd, &settings, store))
        }
        Command::Clients(cmd) => {
            announcing_changes(&settings, |store| clients(cmd, &settings, store))
        }
        Command::Groups(cmd) => {
            announcing_changes(&settings, |store| groups::groups(cmd, &settings, store))
        }
        Command::Mail(MailCommand::Test { address, locale }) => {
            let store = SqlStore::open_for_command(&settings.database_url)?;
            let kek = load_kek(&settings)?;
            check_kek(&store, &kek)?;
            let id = mail_test(&store, &kek, &address, &locale)?;
            println!("{id}");
            eprintln!(
                "queued: a running portcullis serve sends it ({})",
                match &settings.smtp {
                    Some(server) => format!("to {}:{}", server.host, server.port),
                    None => format!(
                        "no smtp_url: written to {}",
                        settings.mail_outbox_dir.join(format!("{id}.eml")).display()
                    ),
                }
            );
            Ok(())
        }
        Command::Keys(cmd) => keys(
            cmd,
            &settings,
            &SqlStore::open_for_command(&settings.database_url)?,
        ),
    }
}

/// Runs a command that may revoke or change what running instances have cached, and
/// then tells them over Redis (when `redis_url` is set), as a running instance would.
fn announcing_changes(
    settings: &Settings,
    command: impl FnOnce(&SqlStore) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    let store = SqlStore::open_for_command(&settings.database_url)?;
    let changed = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flag = changed.clone();
    store
        .liveness_cache()
        .set_on_change(move || flag.store(true, std::sync::atomic::Ordering::Relaxed));
    let result = command(&store);
    if changed.load(std::sync::atomic::Ordering::Relaxed) {
        let channel = crate::liveness_sync::channel(&settings.redis_prefix);
        let told = match &settings.redis_url {
            Some(url) => crate::liveness_sync::announce_once(
                url,
                settings.redis_ca_file.as_deref(),
                &channel,
            )
            .map_err(|e| format!("over Redis ({e})")),
            // Without Redis, instances on PostgreSQL listen there (NOTIFY).
            None if crate::liveness_sync::is_postgres(&settings.database_url) => {
                crate::liveness_sync::announce_once_postgres(&settings.database_url, &channel)
                    .map_err(|e| format!("over PostgreSQL ({e})"))
            }
            None => Ok(()),
        };
        if let Err(e) = told {
            eprintln!(
                "warning: could not tell the running instances {e}; \
                 they see the change within a second"
            );
        }
    }
    result
}

/// Queues the test message (`mail test`); returns the outbox row's id.
fn mail_test(
    store: &SqlStore,
    kek: &crate::crypto::kek::KeyEncryptionKey,
    address: &str,
    locale: &str,
) -> anyhow::Result<String> {
    use crate::mail::{EmailAddress, Locale, MailKind, Outgoing};
    let to = EmailAddress::parse(address)
        .map_err(|_| anyhow::anyhow!("not an email address: {address:?}"))?;
    let outgoing = Outgoing {
        to,
        locale: Locale::from_tag(locale).unwrap_or_default(),
        kind: MailKind::Test,
    };
    Ok(outgoing.send_later(store, kek, now())?)
}

fn serve(settings: Settings) -> anyhow::Result<()> {
    crate::telemetry::init(settings.log_format);
    crate::startup::serve(settings)
}

fn keys(cmd: KeysCommand, settings: &Settings, store: &SqlStore) -> anyhow::Result<()> {
    let now = now();
    match cmd {
        KeysCommand::List => {
            for key in store.list_keys(now)? {
                let retires = key
                    .retired_at
                    .map(|t| t.to_string())
                    .unwrap_or_else(|| "-".into());
                println!(
                    "{}\t{}\t{}\t{}\t{}",
                    key.kid, key.alg, key.created_at, key.activates_at, retires
                );
            }
        }
        KeysCommand::Rotate { alg, activate_in } => {
            for key in as_operator_with_kek(settings, store, |a| {
                a.rotate_keys(alg.as_deref(), activate_in)
            })? {
                println!("{}\t{}\tsigns from {}", key.kid, key.alg, key.activates_at);
            }
        }
    }
    Ok(())
}

fn read_password() -> anyhow::Result<Secret<String>> {
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .context("cannot read the password from stdin")?;
    let password = line.trim_end_matches(['\n', '\r']).to_owned();
    if password.is_empty() {
        anyhow::bail!("the password on stdin is empty");
    }
    Ok(Secret::new(password))
}

/// The session-store side of ending sessions from the command line: with Redis, the
/// records go at once (every instance sees it); the in-process store belongs to the one
/// server, which honours the database's `ended_at` instead.
fn forget_sessions(settings: &Settings, ended: &EndedSessions) -> anyhow::Result<()> {
    let Some(url) = &settings.redis_url else {
        return Ok(());
    };
    if ended.sessions.is_empty() {
        return Ok(());
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        crate::client_keys::install_tls_provider();
        let store = RedisSessionStore::connect_with_ca(
            url,
            &settings.redis_prefix,
            settings.redis_ca_file.as_deref(),
        )
        .await
        .map_err(|e| anyhow::anyhow!("redis_url: {e}"))?;
        let sessions = Sessions::new(std::sync::Arc::new(store));
        for session in &ended.sessions {
            sessions
                .delete_sso_record(&session.store_key)
                .await
                .map_err(|e| anyhow::anyhow!("redis_url: {e}"))?;
        }
        Ok(())
    })
}

/// The sector identifier document at `uri`, fetched under the rules of every URL the
/// server fetches (`None` when it is no JSON array of URIs: registration says why).
fn fetch_sector_document(settings: &Settings, uri: &str) -> anyhow::Result<Option<Vec<String>>> {
    let fetcher = crate::client_keys::JwksFetcher::new(
        crate::protocol::registration::local_development(&settings.issuer),
    )?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    Ok(runtime
        .block_on(fetcher.fetch_json(uri))
        .ok()
        .as_ref()
        .and_then(crate::protocol::registration::parse_sector_document))
}

/// `--claim NAME=VALUE` and `--unset-claim NAME` (CONTRACT.md), checked as a whole
/// before anything is stored.
fn apply_claims(user: &mut User, set: &[String], unset: &[String]) -> anyhow::Result<()> {
    for assignment in set {
        let (name, value) = claims::parse_assignment(assignment)?;
        claims::set_claim(user, name, value).map_err(|e| anyhow::anyhow!("--claim {e}"))?;
    }
    for name in unset {
        claims::unset_claim(user, name).map_err(|e| anyhow::anyhow!("--unset-claim {e}"))?;
    }
    Ok(())
}

fn find_user(store: &SqlStore, username: &str) -> anyhow::Result<User> {
    store
        .find_user_by_username(username)?
        .ok_or_else(|| anyhow::anyhow!("no user {username}"))
}

fn sessions(cmd: SessionsCommand, settings: &Settings, store: &SqlStore) -> anyhow::Result<()> {
    match cmd {
        SessionsCommand::List { user } => {
            let user = find_user(store, &user)?;
            for s in store.list_user_sessions(&user.id, now())? {
                println!(
                    "{}\t{}\t{}\t{}\t{}",
                    s.sid,
                    s.created_at,
                    s.expires_at,
                    s.ip_address.unwrap_or_default(),
                    crate::http::pages::account::describe_user_agent(
                        s.user_agent.as_deref().unwrap_or("")
                    ),
                );
            }
        }
        SessionsCommand::End { sid } => {
            let ended = as_operator(settings, store, |a| a.end_session(&sid))
                .map_err(|e| not_found_as(e, format!("no live session {sid}")))?;
            let Some(session) = ended.sessions.first() else {
                anyhow::bail!("no live session {sid}");
            };
            forget_sessions(settings, &ended)?;
            crate::audit::sessions_ended(&session.user_id, 1, "ended_by_operator");
            println!(
                "ended session {sid}; {} back-channel logouts queued",
                ended.deliveries
            );
        }
    }
    Ok(())
}

/// Runs `op` as the operator at the command line: the change and its audit event are
/// written together, like the admin API's.
fn as_operator<T>(
    settings: &Settings,
    store: &SqlStore,
    op: impl FnOnce(&Admin<'_>) -> AdminResult<T>,
) -> anyhow::Result<T> {
    operator(settings, store, None, op)
}

/// `as_operator` for changes that seal secrets or keys: with the key-encryption key.
fn as_operator_with_kek<T>(
    settings: &Settings,
    store: &SqlStore,
    op: impl FnOnce(&Admin<'_>) -> AdminResult<T>,
) -> anyhow::Result<T> {
    let kek = load_kek(settings)?;
    check_kek(store, &kek)?;
    operator(settings, store, Some(&kek), op)
}

fn operator<T>(
    settings: &Settings,
    store: &SqlStore,
    kek: Option<&crate::crypto::kek::KeyEncryptionKey>,
    op: impl FnOnce(&Admin<'_>) -> AdminResult<T>,
) -> anyhow::Result<T> {
    let admin = Admin {
        store,
        kek,
        settings,
        now: now(),
        actor: &Actor::Operator,
        address: None,
    };
    op(&admin).map_err(anyhow::Error::from)
}

/// `no WHAT NAME` for a thing that is not there, the error itself otherwise.
fn not_found_as(e: anyhow::Error, message: String) -> anyhow::Error {
    match e.downcast_ref::<AdminError>() {
        Some(AdminError::NotFound(_)) => anyhow::anyhow!(message),
        _ => e,
    }
}

fn users(cmd: UsersCommand, settings: &Settings, store: &SqlStore) -> anyhow::Result<()> {
    match cmd {
        UsersCommand::Add {
            username,
            email,
            email_verified,
            name,
            given_name,
            family_name,
            claims,
            admin,
            require_mfa,
            password_stdin: _,
        } => {
            let username = username.trim().to_owned();
            if username.is_empty() || username.len() > 255 {
                anyhow::bail!("--username must be 1 to 255 characters");
            }
            let password = read_password()?;
            let mut user = User::new(random_uuid(), username, String::new(), now());
            user.email = email;
            user.email_verified = email_verified;
            user.name = name;
            user.given_name = given_name;
            user.family_name = family_name;
            user.is_admin = admin;
            user.mfa_required = require_mfa;
            apply_claims(&mut user, &claims, &[])?;
            user.password_hash = hash_password(&password)?;
            let user = as_operator(settings, store, |a| a.add_user(user))?;
            println!("{}", user.id);
        }
        UsersCommand::Update {
            username,
            email,
            name,
            claims,
            unset_claims,
            admin,
            no_admin,
            disable,
            enable,
            require_mfa,
            no_require_mfa,
        } => {
            let before = find_user(store, &username)?;
            let mut user = before.clone();
            let mut assignments = claims;
            assignments.extend(email.map(|e| format!("email={e}")));
            assignments.extend(name.map(|n| format!("name={n}")));
            apply_claims(&mut user, &assignments, &unset_claims)?;
            let mut changed: Vec<&str> = Vec::new();
            if admin || no_admin {
                user.is_admin = admin;
                changed.push("admin");
            }
            if disable || enable {
                user.disabled_at = disable.then(|| before.disabled_at.unwrap_or_else(now));
                changed.push("disabled");
            }
            if require_mfa || no_require_mfa {
                user.mfa_required = require_mfa;
                changed.push("mfa_required");
            }
            if !assignments.is_empty() || !unset_claims.is_empty() {
                changed.push("claims");
            }
            // The operator's explicit word on a new address (`--claim email_verified=..`).
            if assignments.iter().any(|a| a.starts_with("email_verified=")) {
                changed.push("email_verified");
            }
            let (_, ended) =
                as_operator(settings, store, |a| a.save_user(&before, user, &changed))?;
            forget_sessions(settings, &ended)?;
        }
        UsersCommand::Invite { email, locale } => {
            let issuer = settings.issuer.clone();
            let link_for = move |token: &str| {
                crate::http::paths::signup::link(
                    &issuer,
                    crate::http::paths::signup::INVITATION,
                    token,
                )
            };
            let invitation = crate::admin::NewInvitation {
                email,
                locale: Some(locale),
            };
            let sent = as_operator_with_kek(settings, store, |a| a.invite(&invitation, &link_for))?;
            println!(
                "invited {}: the mail is queued (outbox {}); the link works until {}",
                sent.email,
                sent.mail_id,
                crate::domain::format_utc(sent.expires_at)
            );
        }
        UsersCommand::List => {
            for user in store.list_users()? {
                let mut flags = Vec::new();
                if user.is_admin {
                    flags.push("admin");
                }
                if user.disabled_at.is_some() {
                    flags.push("disabled");
                }
                if user.mfa_required {
                    flags.push("mfa-required");
                }
                println!(
                    "{}\t{}\t{}\t{}",
                    user.id,
                    user.username,
                    user.email.unwrap_or_default(),
                    flags.join(",")
                );
            }
        }
        UsersCommand::Remove { username } => {
            let user = find_user(store, &username)?;
            let ended = as_operator(settings, store, |a| a.delete_user(&user.id))?;
            forget_sessions(settings, &ended)?;
            crate::audit::sessions_ended(&user.id, ended.sessions.len(), "user_removed");
        }
        UsersCommand::SignOutEverywhere { username } => {
            let user = find_user(store, &username)?;
            let ended = as_operator(settings, store, |a| a.end_user_sessions(&user.id))?;
            forget_sessions(settings, &ended)?;
            crate::audit::sessions_ended(&user.id, ended.sessions.len(), "signed_out_everywhere");
            println!("ended {} sessions of {username}", ended.sessions.len());
        }
        UsersCommand::Mfa(cmd) => mfa(cmd, settings, store)?,
        UsersCommand::SetPassword {
            username,
            password_stdin: _,
        } => {
            let hash = hash_password(&read_password()?)?;
            let user = find_user(store, &username)?;
            let ended = as_operator(settings, store, |a| a.set_password_hash(&user.id, &hash))?;
            forget_sessions(settings, &ended)?;
            crate::audit::sessions_ended(&user.id, ended.sessions.len(), "password_changed");
        }
        UsersCommand::Import { file, dry_run } => {
            transfer::import(settings, store, &file, dry_run)?;
        }
        UsersCommand::Export => transfer::export(settings, store)?,
    }
    Ok(())
}

/// `-` for a time that never was.
fn time_or_dash(time: Option<i64>) -> String {
    time.map_or_else(|| "-".to_owned(), |t| t.to_string())
}

fn mfa(cmd: MfaCommand, settings: &Settings, store: &SqlStore) -> anyhow::Result<()> {
    match cmd {
        MfaCommand::List { username } => {
            let user = find_user(store, &username)?;
            let factors = as_operator(settings, store, |a| a.second_factors(&user.id))?;
            if let Some(totp) = &factors.totp {
                println!(
                    "totp\tauthenticator app\t{}\t{}",
                    totp.confirmed_at,
                    time_or_dash(totp.last_used_at)
                );
            }
            for passkey in &factors.passkeys {
                // A tab or line break in a name would break the columns.
                let name: String = passkey
                    .name
                    .chars()
                    .map(|c| if c.is_control() { ' ' } else { c })
                    .collect();
                println!(
                    "passkey\t{name}\t{}\t{}",
                    passkey.created_at,
                    time_or_dash(passkey.last_used_at)
                );
            }
            println!("recovery codes: {} left", factors.recovery_codes_left);
        }
        MfaCommand::Reset { username } => {
            let user = find_user(store, &username)?;
            let ended = as_operator(settings, store, |a| a.reset_second_factors(&user.id))?;
            forget_sessions(settings, &ended)?;
            crate::audit::sessions_ended(&user.id, ended.sessions.len(), "second_factors_reset");
            println!(
                "removed the second factors of {username}; ended {} sessions",
                ended.sessions.len()
            );
        }
    }
    Ok(())
}

fn clients(cmd: ClientsCommand, settings: &Settings, store: &SqlStore) -> anyhow::Result<()> {
    match cmd {
        ClientsCommand::Add {
            name,
            redirect_uris,
            public,
            native,
            grant_types,
            response_types,
            scopes,
            post_logout_redirect_uris,
            auth_method,
            jwks_uri,
            jwks,
            pkce_optional,
            access_token_alg,
            id_token_alg,
            userinfo_alg,
            require_par,
            dpop_bound_access_tokens,
            require_dpop_nonce,
            subject_type,
            sector_identifier_uri,
            resources,
            backchannel_logout_uri,
            backchannel_logout_session_required,
            frontchannel_logout_uri,
            frontchannel_logout_session_required,
            first_party,
            require_mfa,
            exchange_audiences,
            exchange_impersonation,
            profile,
            access_token_format,
        } => {
            if public && auth_method.is_some() {
                anyhow::bail!("--public clients have no secret; drop --auth-method");
            }
            let jwks = jwks
                .map(|text| serde_json::from_str::<serde_json::Value>(&text))
                .transpose()
                .context("--jwks must be a JWK Set in JSON")?;
            let draft = ClientDraft {
                name: Some(name),
                redirect_uris,
                post_logout_redirect_uris,
                auth_method: if public {
                    Some("none".to_owned())
                } else {
                    auth_method
                },
                grant_types,
                response_types,
                scope: (!scopes.is_empty()).then(|| scopes.join(" ")),
                application_type: native.then(|| "native".to_owned()),
                jwks,
                jwks_uri,
                require_pkce: pkce_optional.then_some(false),
                access_token_signed_response_alg: access_token_alg,
                id_token_signed_response_alg: id_token_alg,
                userinfo_signed_response_alg: userinfo_alg,
                sector_redirect_uris: match &sector_identifier_uri {
                    Some(uri) => fetch_sector_document(settings, uri)?,
                    None => None,
                },
                require_pushed_authorization_requests: Some(require_par),
                dpop_bound_access_tokens: Some(dpop_bound_access_tokens),
                require_dpop_nonce: Some(require_dpop_nonce),
                subject_type,
                sector_identifier_uri,
                resources,
                backchannel_logout_uri,
                backchannel_logout_session_required: Some(backchannel_logout_session_required),
                frontchannel_logout_uri,
                frontchannel_logout_session_required: Some(frontchannel_logout_session_required),
                first_party,
                require_mfa,
                exchange_audiences,
                exchange_impersonation,
                profile: profile.as_deref().and_then(crate::domain::Profile::parse),
                access_token_format: access_token_format
                    .as_deref()
                    .and_then(crate::domain::AccessTokenFormat::parse)
                    .unwrap_or_default(),
                ..ClientDraft::default()
            };
            let registered = as_operator_with_kek(settings, store, |a| a.register_client(draft))?;
            crate::audit::client_registered(&registered.client_id, "cli");
            let mut out = json!({
                "client_id": registered.client_id,
                "client_name": registered.metadata["client_name"],
            });
            if let Some(secret) = registered.client_secret {
                out["client_secret"] = json!(secret);
            }
            println!("{out}");
        }
        ClientsCommand::List => {
            for client in store.list_clients()? {
                println!(
                    "{}\t{}\t{}\t{}",
                    client.id,
                    client.name,
                    client.auth_method.as_str(),
                    client.redirect_uris.join(" ")
                );
            }
        }
        ClientsCommand::Remove { client_id } => {
            as_operator(settings, store, |a| a.delete_client(&client_id))
                .map_err(|e| not_found_as(e, format!("no client {client_id}")))?;
        }
    }
    Ok(())
}
