//! Client registration: RFC 7591 (dynamic), RFC 7592 (read, update, delete), OIDC Registration 1.0,
//! and the same rules for clients added from the CLI.

mod checks;
mod exchange;
mod logout;
mod management;
mod metadata;
mod pairwise;

pub use checks::{check_redirect_uri, local_development};
pub use management::{delete_registration, read_registration, update_registration};
pub use metadata::{draft_from_json, operator_draft_from_json};

use checks::{MAX_URI, MAX_URIS, check_client_name, check_distinct, check_fetch_uri, check_jwks};

use serde_json::{Value, json};

use super::authorize::ResponseType;
use super::authorize::request_object::REQUEST_OBJECT_ALGS;
use super::profile::ClientProfile;
use super::resource_indicators::check_resource;
use super::{Context, ErrorCode, OAuthError};
use crate::crypto::KeyAlgorithm;
use crate::crypto::kek::KeyEncryptionKey;
use crate::crypto::tokens::{random_token, token_hash};
use crate::domain::{
    AccessTokenFormat, ApplicationType, ClientDisplay, ClientMetadata, GrantType, Profile, Scopes,
    SubjectType, UnixTime,
};
use crate::store::{AuthMethod, Client, StoreError};

pub const SUPPORTED_RESPONSE_TYPES: [&str; 6] = ResponseType::SUPPORTED;

/// What a new client is made of, however it is registered.
#[derive(Debug, Default)]
pub struct ClientDraft {
    pub name: Option<String>,
    pub redirect_uris: Vec<String>,
    pub post_logout_redirect_uris: Vec<String>,
    pub auth_method: Option<String>,
    pub grant_types: Vec<String>,
    pub response_types: Vec<String>,
    pub scope: Option<String>,
    pub application_type: Option<String>,
    pub id_token_signed_response_alg: Option<String>,
    pub access_token_signed_response_alg: Option<String>,
    /// OIDC Registration §2: userinfo as a JWT signed with this algorithm.
    pub userinfo_signed_response_alg: Option<String>,
    /// RFC 9701 §6: JWT introspection responses signed with this.
    pub introspection_signed_response_alg: Option<String>,
    /// `private_key_jwt`: the client's JWK Set, inline, or its URL.
    pub jwks: Option<Value>,
    pub jwks_uri: Option<String>,
    /// `Some(false)` is the explicit PKCE opt-out of an old confidential client.
    pub require_pkce: Option<bool>,
    /// RFC 8707 resources the client may ask tokens for (set by operators only).
    pub resources: Vec<String>,
    /// Display metadata kept as given (client_uri, logo_uri, contacts, ...).
    pub display: ClientDisplay,
    pub backchannel_logout_uri: Option<String>,
    pub backchannel_logout_session_required: Option<bool>,
    pub frontchannel_logout_uri: Option<String>,
    pub frontchannel_logout_session_required: Option<bool>,
    /// RFC 9101 §10.1: the one algorithm its request objects are signed with (`none`
    /// allows unsigned ones).
    pub request_object_signing_alg: Option<String>,
    /// OIDC Registration §2: the `request_uri` values it may send (fetched by us).
    pub request_uris: Vec<String>,
    /// RFC 9126 §6: this client's authorization requests must be pushed first.
    pub require_pushed_authorization_requests: Option<bool>,
    /// RFC 9449 §5.2: every token request carries a DPoP proof; its tokens are bound.
    pub dpop_bound_access_tokens: Option<bool>,
    /// RFC 9449 §8: its proofs must carry the server's nonce.
    pub require_dpop_nonce: Option<bool>,
    /// OIDC Core §8: `public` (the default) or `pairwise`.
    pub subject_type: Option<String>,
    pub sector_identifier_uri: Option<String>,
    /// The URIs the sector identifier document lists, fetched by the caller.
    pub sector_redirect_uris: Option<Vec<String>>,
    /// The operator vouches for the client: its users are not asked to consent. Set by
    /// operators only (CLI, admin API); `draft_from_json` never reads it.
    pub first_party: bool,
    /// Everyone who signs in to the client needs a second factor. Set by operators only,
    /// like `first_party`.
    pub require_mfa: bool,
    /// RFC 8693: the audiences the client may ask exchanged tokens for. Set by operators
    /// only (`--exchange-audience`); a policy needs the token-exchange grant type.
    pub exchange_audiences: Vec<String>,
    /// RFC 8693: whether the client may exchange without an actor token (impersonate);
    /// otherwise it may only delegate. Operators only (`--exchange-impersonation`).
    pub exchange_impersonation: bool,
    /// The security profile the client is held to (`protocol::profile`). Set by
    /// operators only (`--profile`, the admin API's `profile`).
    pub profile: Option<Profile>,
    /// JWT (the default) or opaque reference access tokens (issue 26). Set by operators
    /// only (`--access-token-format`, the admin API's `access_token_format`).
    pub access_token_format: AccessTokenFormat,
}

/// A freshly registered client with the secrets to show once.
#[derive(Debug)]
pub struct Registered {
    pub client: Client,
    pub client_secret: Option<String>,
}

fn metadata_error(description: impl Into<std::borrow::Cow<'static, str>>) -> OAuthError {
    OAuthError::new(ErrorCode::InvalidClientMetadata, description)
}

fn redirect_error(description: impl Into<std::borrow::Cow<'static, str>>) -> OAuthError {
    OAuthError::new(ErrorCode::InvalidRedirectUri, description)
}

pub fn register(
    draft: ClientDraft,
    issuer: &str,
    kek: &KeyEncryptionKey,
    now: UnixTime,
) -> Result<Registered, OAuthError> {
    let application_type = match draft.application_type.as_deref() {
        None => ApplicationType::default(),
        Some(value) => ApplicationType::parse(value)
            .ok_or_else(|| metadata_error("application_type must be web or native"))?,
    };
    // Response types in their canonical spelling ("token id_token" is "id_token token").
    let requested_types: Vec<String> = draft
        .response_types
        .iter()
        .map(|r| ResponseType::parse(r).map_or_else(|| r.clone(), |t| t.as_str().to_owned()))
        .collect();
    // OIDC Registration §2: without grant_types, those the response types need.
    let grants = if !draft.grant_types.is_empty() {
        let mut grants = Vec::with_capacity(draft.grant_types.len());
        for g in &draft.grant_types {
            grants.push(
                GrantType::parse(g)
                    .ok_or_else(|| metadata_error(format!("grant_type {g} is not supported")))?,
            );
        }
        grants
    } else {
        let parsed: Vec<ResponseType> = requested_types
            .iter()
            .filter_map(|r| ResponseType::parse(r))
            .collect();
        let mut implied = Vec::new();
        if parsed.is_empty() || parsed.iter().any(|t| t.code) {
            implied.push(GrantType::AuthorizationCode);
        }
        if parsed.iter().any(|t| t.returns_tokens()) {
            implied.push(GrantType::Implicit);
        }
        implied
    };
    // A client that never sends a user to the authorization endpoint (client_credentials
    // only) has no redirect URI and no response type.
    let uses_browser = grants.iter().any(|g| g.uses_browser());
    if uses_browser && draft.redirect_uris.is_empty() {
        return Err(redirect_error("at least one redirect_uri is required"));
    }
    check_distinct(&draft.redirect_uris, "redirect_uris")?;
    check_distinct(
        &draft.post_logout_redirect_uris,
        "post_logout_redirect_uris",
    )?;
    for uri in draft
        .redirect_uris
        .iter()
        .chain(&draft.post_logout_redirect_uris)
    {
        check_redirect_uri(uri, application_type)?;
    }
    if let Some(name) = &draft.name {
        check_client_name(name)?;
    }
    let auth_method = match draft.auth_method.as_deref() {
        None => AuthMethod::ClientSecretBasic,
        Some(m) => AuthMethod::parse(m).ok_or_else(|| {
            metadata_error(format!("token_endpoint_auth_method {m} is not supported"))
        })?,
    };
    if auth_method == AuthMethod::None && grants.contains(&GrantType::ClientCredentials) {
        return Err(metadata_error(
            "client_credentials is only for confidential clients",
        ));
    }
    let token_exchange = exchange::policy(
        &grants,
        auth_method,
        draft.exchange_audiences,
        draft.exchange_impersonation,
    )?;
    // RFC 7591 §2: jwks and jwks_uri "MUST NOT both be present".
    match (&draft.jwks, &draft.jwks_uri) {
        (Some(_), Some(_)) => {
            return Err(metadata_error("give jwks or jwks_uri, not both"));
        }
        (None, None) if auth_method == AuthMethod::PrivateKeyJwt => {
            return Err(metadata_error("private_key_jwt needs jwks or jwks_uri"));
        }
        (Some(jwks), None) => check_jwks(jwks)?,
        (None, Some(uri)) => check_fetch_uri("jwks_uri", uri, issuer)?,
        (None, None) => {}
    }
    let require_pkce = draft.require_pkce.unwrap_or(true);
    if !require_pkce && auth_method == AuthMethod::None {
        return Err(metadata_error("public clients cannot opt out of PKCE"));
    }
    let has_grant = |g: GrantType| grants.contains(&g);
    let requested_types = if !uses_browser {
        Vec::new()
    } else if requested_types.is_empty() {
        vec![
            if has_grant(GrantType::AuthorizationCode) {
                "code"
            } else {
                "id_token"
            }
            .to_owned(),
        ]
    } else {
        requested_types
    };
    let mut response_types = Vec::with_capacity(requested_types.len());
    for r in &requested_types {
        let Some(t) = ResponseType::parse(r) else {
            return Err(metadata_error(format!(
                "response_type {r} is not supported"
            )));
        };
        // §2: each response type needs its grant types (code: authorization_code;
        // tokens from the authorization endpoint: implicit).
        if (t.code && !has_grant(GrantType::AuthorizationCode))
            || (t.returns_tokens() && !has_grant(GrantType::Implicit))
        {
            return Err(metadata_error(format!(
                "response_type {r} needs the grant_types it implies (authorization_code, implicit)"
            )));
        }
        // RFC 9449 §5.2: an access token from the authorization endpoint cannot be bound,
        // so a client whose tokens must all be DPoP-bound does not take one there.
        if t.token && draft.dpop_bound_access_tokens == Some(true) {
            return Err(metadata_error(format!(
                "response_type {r} issues an access token that cannot be DPoP-bound \
                 (dpop_bound_access_tokens)"
            )));
        }
        response_types.push(t);
    }
    // Any well-formed scope: besides the OpenID ones, operators register API scopes
    // (dynamic registration keeps only the supported ones, see `draft_from_json`).
    let scope = match draft.scope {
        None => None,
        Some(s) => Some(
            Scopes::parse(&s)
                .filter(|s| !s.is_empty())
                .ok_or_else(|| metadata_error("malformed scope"))?,
        ),
    };
    for resource in &draft.resources {
        check_resource(resource).map_err(|_| {
            metadata_error(format!(
                "resource {resource} must be an absolute URI without a fragment"
            ))
        })?;
    }
    let backchannel_logout = logout::backchannel(
        draft.backchannel_logout_uri,
        draft.backchannel_logout_session_required,
        issuer,
    )?;
    let frontchannel_logout = logout::frontchannel(
        draft.frontchannel_logout_uri,
        draft.frontchannel_logout_session_required,
        &draft.redirect_uris,
        application_type,
    )?;
    let profile = ClientProfile::new(draft.profile);
    let mut metadata = ClientMetadata {
        display: draft.display,
        token_exchange,
        profile: draft.profile,
        require_pushed_authorization_requests: draft.require_pushed_authorization_requests
            == Some(true),
        dpop_bound_access_tokens: draft.dpop_bound_access_tokens == Some(true),
        require_dpop_nonce: draft.require_dpop_nonce == Some(true),
        ..Default::default()
    };
    if let Some(alg) = draft.request_object_signing_alg {
        if alg != "none" && !REQUEST_OBJECT_ALGS.contains(&alg.as_str()) {
            return Err(metadata_error(format!(
                "request_object_signing_alg {alg} is not supported"
            )));
        }
        metadata.request_object_signing_alg = Some(alg);
    }
    if draft.request_uris.len() > MAX_URIS {
        return Err(metadata_error("too many request_uris"));
    }
    for uri in &draft.request_uris {
        check_fetch_uri("request_uris", uri, issuer)?;
    }
    metadata.request_uris = draft.request_uris;
    let subject_type = match draft.subject_type.as_deref() {
        None => SubjectType::Public,
        Some(value) => SubjectType::parse(value).ok_or_else(|| {
            metadata_error(format!(
                "subject_type {value} is not supported (public, pairwise)"
            ))
        })?,
    };
    if subject_type == SubjectType::Pairwise {
        metadata.subject_type = subject_type;
        metadata.sector_identifier = Some(pairwise::sector(
            &draft.redirect_uris,
            draft.sector_identifier_uri.as_deref(),
            draft.sector_redirect_uris.as_deref(),
            issuer,
        )?);
        metadata.sector_identifier_uri = draft.sector_identifier_uri;
    }
    let signing_alg = |name: &str, alg: Option<String>| match alg {
        None => Ok(None),
        Some(alg) => KeyAlgorithm::parse(&alg)
            .map(Some)
            .ok_or_else(|| metadata_error(format!("{name} {alg} is not supported"))),
    };
    metadata.id_token_signed_response_alg = signing_alg(
        "id_token_signed_response_alg",
        draft.id_token_signed_response_alg,
    )?;
    metadata.access_token_signed_response_alg = signing_alg(
        "access_token_signed_response_alg",
        draft.access_token_signed_response_alg,
    )?;
    metadata.userinfo_signed_response_alg = signing_alg(
        "userinfo_signed_response_alg",
        draft.userinfo_signed_response_alg,
    )?;
    metadata.introspection_signed_response_alg = signing_alg(
        "introspection_signed_response_alg",
        draft.introspection_signed_response_alg,
    )?;
    // An id that begins with '-' would read as an option on a command line.
    let client_id = std::iter::repeat_with(|| random_token(18))
        .find(|id| id.starts_with(|c: char| c.is_ascii_alphanumeric()))
        .unwrap_or_default();
    let client = Client {
        name: draft
            .name
            .filter(|n| !n.trim().is_empty())
            .unwrap_or_else(|| client_id.clone()),
        secret_hash: None,
        secret_ciphertext: None,
        id: client_id,
        auth_method,
        application_type,
        grant_types: grants,
        response_types,
        scope,
        redirect_uris: draft.redirect_uris,
        post_logout_redirect_uris: draft.post_logout_redirect_uris,
        metadata,
        // Set only by dynamic registration, which hands out a registration access token.
        registration_token_hash: None,
        created_at: now,
        jwks: draft.jwks,
        jwks_uri: draft.jwks_uri,
        pkce_required: require_pkce,
        resources: draft.resources,
        registered_dynamically: false,
        first_party: draft.first_party,
        require_mfa: draft.require_mfa,
        access_token_format: draft.access_token_format,
        backchannel_logout,
        frontchannel_logout,
    };
    let mut client = client;
    profile.shape_registration(&mut client)?;
    let client_secret = issue_secret(&mut client, kek)?;
    Ok(Registered {
        client,
        client_secret,
    })
}

/// Gives `client` a new secret if its auth method uses one (replacing any it had) and
/// returns it, to be shown this once; a client without one gets `None` and keeps none.
pub fn issue_secret(
    client: &mut Client,
    kek: &KeyEncryptionKey,
) -> Result<Option<String>, OAuthError> {
    let secret = client.auth_method.has_secret().then(|| random_token(32));
    client.secret_hash = secret.as_deref().map(token_hash);
    // Only client_secret_jwt needs the secret back (its assertions are HMACs): encrypted
    // under the KEK, bound to the client id. Every other client's secret is kept as a
    // hash alone.
    client.secret_ciphertext = match (&secret, client.auth_method) {
        (Some(secret), AuthMethod::ClientSecretJwt) => Some(
            kek.encrypt(secret.as_bytes(), &client.id)
                .map_err(OAuthError::server)?,
        ),
        _ => None,
    };
    Ok(secret)
}

/// The URIs a sector identifier document lists (OIDC Core §8.1: a JSON array of
/// redirect URIs); `None` if it cannot be fetched or is no such array (`register` says so).
pub fn sector_document(uri: &str, ctx: &Context<'_>) -> Option<Vec<String>> {
    // Only a URL that passes the registration rules is fetched at all.
    check_fetch_uri("sector_identifier_uri", uri, &ctx.config.issuer).ok()?;
    parse_sector_document(&ctx.client_keys.document(uri).ok()?)
}

pub fn parse_sector_document(document: &Value) -> Option<Vec<String>> {
    document
        .as_array()?
        .iter()
        .map(|v| v.as_str().map(str::to_owned))
        .collect()
}

fn registration_uri(ctx: &Context<'_>, client_id: &str) -> String {
    // RFC 7592 §3: the client configuration endpoint, below the registration endpoint.
    let path = crate::protocol::features::CLIENT_CONFIGURATION.replace("{client_id}", client_id);
    ctx.config.endpoint(&path)
}

/// Dynamic registration (RFC 7591 §3): creates the client and returns the client
/// information response, with the secrets shown this once.
pub fn register_dynamic(mut draft: ClientDraft, ctx: &Context<'_>) -> Result<Value, OAuthError> {
    if let Some(uri) = &draft.sector_identifier_uri {
        draft.sector_redirect_uris = sector_document(uri, ctx);
    }
    let mut registered = register(draft, &ctx.config.issuer, ctx.kek, ctx.now)?;
    // RFC 7592 §3: the registration access token reads the client back. Its presence also
    // marks the client as self-registered (shown as unverified on the consent page).
    let registration_access_token = random_token(32);
    registered.client.registration_token_hash = Some(token_hash(&registration_access_token));
    registered.client.registered_dynamically = true;
    // Whoever registers a client here vouches for nothing: a `first_party` member in the
    // request is replaced by the default, as RFC 7591 §2 lets a server do with any
    // requested value (rather than refused, like the API scopes registrants may not have).
    registered.client.first_party = false;
    registered.client.require_mfa = false;
    registered.client.access_token_format = AccessTokenFormat::default();
    match ctx.store.create_client(&registered.client) {
        Ok(()) => {}
        // 144 random bits: a collision means a broken RNG, not a client mistake.
        Err(StoreError::Conflict) => return Err(OAuthError::server("client id collision")),
        Err(e) => return Err(e.into()),
    }
    Ok(client_information(
        &registered.client,
        registered.client_secret.as_deref(),
        Some(&registration_access_token),
        &registration_uri(ctx, &registered.client.id),
    ))
}

/// The client information response (RFC 7591 §3.2.1, RFC 7592 §3).
pub fn client_information(
    client: &Client,
    secret: Option<&str>,
    registration_token: Option<&str>,
    registration_uri: &str,
) -> Value {
    let mut out = json!({
        "client_id": client.id,
        "client_id_issued_at": client.created_at,
        "client_name": client.name,
        "redirect_uris": client.redirect_uris,
        "token_endpoint_auth_method": client.auth_method.as_str(),
        "grant_types": client.grant_types.iter().map(|g| g.as_str()).collect::<Vec<_>>(),
        "response_types": client.response_types.iter().map(|r| r.as_str()).collect::<Vec<_>>(),
        "application_type": client.application_type.as_str(),
        "id_token_signed_response_alg": super::tokens::id_token_alg(client).as_str(),
        "registration_client_uri": registration_uri,
    });
    if !client.post_logout_redirect_uris.is_empty() {
        out["post_logout_redirect_uris"] = json!(client.post_logout_redirect_uris);
    }
    if let Some(scope) = &client.scope {
        out["scope"] = json!(scope.to_string());
    }
    if let Some(jwks) = &client.jwks {
        out["jwks"] = jwks.clone();
    }
    if let Some(uri) = &client.jwks_uri {
        out["jwks_uri"] = json!(uri);
    }
    if !client.pkce_required {
        out["require_pkce"] = json!(false);
    }
    for (name, logout) in [
        ("backchannel", &client.backchannel_logout),
        ("frontchannel", &client.frontchannel_logout),
    ] {
        if let Some(l) = logout {
            out[format!("{name}_logout_uri")] = json!(l.uri);
            out[format!("{name}_logout_session_required")] = json!(l.session_required);
        }
    }
    if let Some(secret) = secret {
        out["client_secret"] = json!(secret);
    }
    if client.auth_method.has_secret() {
        out["client_secret_expires_at"] = json!(0);
    }
    if let Some(token) = registration_token {
        out["registration_access_token"] = json!(token);
    }
    if let Ok(Value::Object(extra)) = serde_json::to_value(&client.metadata) {
        // `sector_identifier` (derived) and `token_exchange` (the operator's policy) are
        // ours, not registration metadata.
        for (k, v) in extra
            .into_iter()
            .filter(|(k, _)| k != "sector_identifier" && k != "token_exchange")
        {
            out[k] = v;
        }
    }
    out
}

#[cfg(test)]
mod tests;
