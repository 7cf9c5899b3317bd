//! The network side of upstream identity providers (issue 24): Portcullis as the relying
//! party of another OpenID provider, with the `openidconnect` crate. Discovery is fetched
//! when first needed (never at start: an upstream that is down stops nothing but its own
//! button), cached, and its JWK Set fetched again on an unknown `kid` at most once per
//! [`JWKS_REFETCH_FLOOR`]. The ID token is verified fully: signature, `iss`, `aud`, `exp`,
//! `iat`, `nonce`, and `azp` when there are several audiences (OIDC Core §3.1.3.7).
//!
//! The rules of what a verified identity leads to are `protocol::upstream`'s; this module
//! only talks to the upstream. Upstream tokens are never stored.

mod assertion;
mod github;
mod net;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use openidconnect::core::{
    CoreAuthDisplay, CoreClaimName, CoreClaimType, CoreClient, CoreClientAuthMethod, CoreGrantType,
    CoreJsonWebKey, CoreJsonWebKeySet, CoreJweContentEncryptionAlgorithm,
    CoreJweKeyManagementAlgorithm, CoreJwsSigningAlgorithm, CoreResponseMode, CoreResponseType,
    CoreSubjectIdentifierType,
};
use openidconnect::{
    AdditionalProviderMetadata, AuthType, AuthenticationFlow, AuthorizationCode, ClientId,
    ClientSecret, CsrfToken, IssuerUrl, Nonce, OAuth2TokenResponse, PkceCodeChallenge,
    PkceCodeVerifier, ProviderMetadata, RedirectUrl, Scope, TokenResponse,
};
use serde::{Deserialize, Serialize};

use crate::config::upstream::{UpstreamAuthMethod, UpstreamKind, UpstreamResponseMode};
use crate::config::{Settings, UpstreamProvider};
use crate::crypto::tokens::random_token;
use crate::domain::{Clock, UnixTime};
use crate::keyring::KeyRing;
use net::{capped_call, check_endpoints, error_chain, http_client, json_of, private_allowed};

/// An unknown `kid` fetches the JWK Set again at most this often per provider.
pub const JWKS_REFETCH_FLOOR: i64 = 30;
/// Discovery is read again after this long (keys rotate, endpoints move).
const DISCOVERY_TTL: i64 = 3600;
/// A failed discovery is not tried again for this long (a down upstream is not hammered).
const RETRY_AFTER_FAILURE: i64 = 5;
/// How far an ID token's `iat` may be in the future (clock skew) or in the past.
const IAT_SKEW: i64 = 60;
const IAT_MAX_AGE: i64 = 600;

/// What the upstream's discovery says beyond the core fields.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
pub struct ExtraMetadata {
    /// RFC 9207 §3: the upstream sends `iss` in its authorization responses.
    #[serde(default)]
    pub authorization_response_iss_parameter_supported: bool,
    /// OIDC RP-Initiated Logout §2.1.
    #[serde(default)]
    pub end_session_endpoint: Option<String>,
}

impl AdditionalProviderMetadata for ExtraMetadata {}

type Metadata = ProviderMetadata<
    ExtraMetadata,
    CoreAuthDisplay,
    CoreClientAuthMethod,
    CoreClaimName,
    CoreClaimType,
    CoreGrantType,
    CoreJweContentEncryptionAlgorithm,
    CoreJweKeyManagementAlgorithm,
    CoreJsonWebKey,
    CoreResponseMode,
    CoreResponseType,
    CoreSubjectIdentifierType,
>;

/// Why the upstream part of a sign-in failed.
#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    /// Its discovery document or keys could not be fetched: "NAME is not reachable".
    #[error("unreachable: {0}")]
    Unreachable(String),
    /// Its answer is refused; `reason` is a short word for the audit trail.
    #[error("{reason}: {detail}")]
    Refused {
        reason: &'static str,
        detail: String,
    },
}

fn refused(reason: &'static str, detail: impl std::fmt::Display) -> UpstreamError {
    UpstreamError::Refused {
        reason,
        detail: detail.to_string(),
    }
}

/// What one provider's discovery left in memory.
#[derive(Default)]
struct Cache {
    metadata: Option<Metadata>,
    discovered_at: Option<UnixTime>,
    jwks_fetched_at: Option<UnixTime>,
    last_attempt: Option<UnixTime>,
    last_error: Option<String>,
}

/// A provider's health, for the admin view.
#[derive(Clone, Debug, Serialize)]
pub struct Health {
    pub id: String,
    pub name: String,
    pub issuer: String,
    pub discovered: bool,
    pub discovered_at: Option<UnixTime>,
    pub jwks_fetched_at: Option<UnixTime>,
    pub last_error: Option<String>,
}

struct Provider {
    settings: UpstreamProvider,
    /// Its HTTP client: public addresses only, unless [`private_allowed`].
    http: reqwest::Client,
    redirect_uri: String,
    cache: Mutex<Cache>,
}

/// The secrets a started sign-in keeps server-side until its callback.
#[derive(Clone, Debug)]
pub struct Begun {
    /// Where the browser goes: the upstream's authorization endpoint.
    pub url: String,
    pub state: String,
    pub nonce: String,
    pub pkce_verifier: String,
}

/// A forced authentication asked of us (OIDC Core §3.1.2.1 `prompt=login`, `max_age`),
/// passed on to the upstream: a silent upstream SSO must not pass for a fresh sign-in.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ForceAuth {
    pub login: bool,
    pub max_age: Option<i64>,
}

/// The upstream identity an ID token proved: its issuer and subject, and its claims.
#[derive(Clone, Debug)]
pub struct VerifiedToken {
    pub issuer: String,
    pub subject: String,
    /// When the person authenticated at the upstream (`auth_time`), if it says.
    pub auth_time: Option<UnixTime>,
    /// Every claim of the verified ID token (for the claim mapping).
    pub claims: serde_json::Map<String, serde_json::Value>,
    /// The provider could not say which address is its user's (GitHub's
    /// `/user/emails` failed): no `email` claim, though there may be one.
    pub email_unavailable: bool,
    /// The ID token itself, for a provider with `end_session` only (its logout's
    /// `id_token_hint`); otherwise not kept.
    pub id_token: Option<String>,
}

/// Every configured upstream, each with its HTTP client.
pub struct Upstreams {
    providers: Vec<Arc<Provider>>,
    clock: Arc<dyn Clock>,
    /// Our signing keys: `private_key_jwt` client assertions are signed with them.
    keys: Arc<KeyRing>,
}

/// Where upstream `id` sends the browser after its logout (`end_session`):
/// `{issuer}/upstream/{id}/logged-out`, to register there as a `post_logout_redirect_uri`.
pub fn logged_out_url(issuer: &str, id: &str) -> String {
    format!("{issuer}/upstream/{id}/logged-out")
}

/// Where upstream `id` sends the browser back: `{issuer}/upstream/{id}/callback`
/// (CONTRACT.md).
pub fn callback_url(issuer: &str, id: &str) -> String {
    format!("{issuer}/upstream/{id}/callback")
}

impl Upstreams {
    pub fn new(
        settings: &Settings,
        clock: Arc<dyn Clock>,
        keys: Arc<KeyRing>,
    ) -> anyhow::Result<Self> {
        // A client assertion no key of ours can sign would only show at the first
        // sign-in, as the upstream's fault (review L5): a configuration error here.
        for p in &settings.upstreams {
            if let UpstreamAuthMethod::PrivateKeyJwt(alg) = p.auth_method
                && keys.current().signing_key(alg, clock.now()).is_none()
            {
                anyhow::bail!(
                    "upstream {}: token_endpoint_auth_signing_alg = {:?}, but we have no active {} signing key",
                    p.id,
                    alg.as_str(),
                    alg.as_str()
                );
            }
        }
        let public = http_client(true)?;
        let private = http_client(false)?;
        let providers = settings
            .upstreams
            .iter()
            .map(|p| {
                Arc::new(Provider {
                    http: if private_allowed(p) {
                        private.clone()
                    } else {
                        public.clone()
                    },
                    settings: p.clone(),
                    redirect_uri: callback_url(&settings.issuer, &p.id),
                    cache: Mutex::new(Cache::default()),
                })
            })
            .collect();
        Ok(Self {
            providers,
            clock,
            keys,
        })
    }

    /// The configured providers, in configuration order.
    pub fn list(&self) -> impl Iterator<Item = &UpstreamProvider> {
        self.providers.iter().map(|p| &p.settings)
    }

    pub fn find(&self, id: &str) -> Option<&UpstreamProvider> {
        self.provider(id).map(|p| &p.settings)
    }

    fn provider(&self, id: &str) -> Option<&Arc<Provider>> {
        self.providers.iter().find(|p| p.settings.id == id)
    }

    pub fn health(&self) -> Vec<Health> {
        self.providers
            .iter()
            .map(|p| {
                let cache = p.cache.lock().unwrap_or_else(|e| e.into_inner());
                Health {
                    id: p.settings.id.clone(),
                    name: p.settings.name.clone(),
                    issuer: p.settings.issuer.clone(),
                    discovered: cache.metadata.is_some(),
                    discovered_at: cache.discovered_at,
                    jwks_fetched_at: cache.jwks_fetched_at,
                    last_error: cache.last_error.clone(),
                }
            })
            .collect()
    }

    /// The provider's discovery (with its keys), fetched now if not cached or stale.
    async fn metadata(&self, provider: &Provider) -> Result<Metadata, UpstreamError> {
        let now = self.clock.now();
        {
            let cache = provider.cache.lock().unwrap_or_else(|e| e.into_inner());
            if let (Some(m), Some(at)) = (&cache.metadata, cache.discovered_at)
                && now - at < DISCOVERY_TTL
            {
                return Ok(m.clone());
            }
            // A failure is not retried at once (a down upstream is not asked again on
            // every request): the stale copy stands in meanwhile, if there is one.
            if cache.last_error.is_some()
                && cache
                    .last_attempt
                    .is_some_and(|at| now - at < RETRY_AFTER_FAILURE)
            {
                return match &cache.metadata {
                    Some(m) => Ok(m.clone()),
                    None => Err(UpstreamError::Unreachable(
                        cache.last_error.clone().unwrap_or_default(),
                    )),
                };
            }
        }
        let found = match &provider.settings.kind {
            UpstreamKind::Microsoft { discovery, .. } => {
                Self::discover_template(&provider.http, discovery).await
            }
            _ => {
                let issuer = IssuerUrl::new(provider.settings.issuer.clone())
                    .map_err(|e| UpstreamError::Unreachable(e.to_string()))?;
                let http = &provider.http;
                Metadata::discover_async(issuer, &|r| capped_call(http, r))
                    .await
                    .map_err(|e| error_chain(&e))
            }
        };
        let found = found.and_then(|m| check_endpoints(&provider.settings, &m).map(|()| m));
        let mut cache = provider.cache.lock().unwrap_or_else(|e| e.into_inner());
        cache.last_attempt = Some(now);
        match found {
            Ok(metadata) => {
                cache.metadata = Some(metadata.clone());
                cache.discovered_at = Some(now);
                cache.jwks_fetched_at = Some(now);
                cache.last_error = None;
                Ok(metadata)
            }
            Err(message) => {
                tracing::warn!(upstream = %provider.settings.id, error = %message, "upstream discovery failed");
                cache.last_error = Some(message.clone());
                // A cached document stands in while the upstream is briefly down.
                match &cache.metadata {
                    Some(m) => Ok(m.clone()),
                    None => Err(UpstreamError::Unreachable(message)),
                }
            }
        }
    }

    /// A discovery document whose `issuer` is a template (Entra ID's `{tenantid}`): read
    /// without the crate's check that it names the URL it was read from, which it cannot;
    /// each token's issuer is checked against the template instead. Its keys with it.
    async fn discover_template(
        http: &reqwest::Client,
        discovery: &str,
    ) -> Result<Metadata, String> {
        let response = http
            .get(format!("{discovery}/.well-known/openid-configuration"))
            .header(reqwest::header::ACCEPT, "application/json")
            .send()
            .await
            .map_err(|e| error_chain(&e))?;
        if !response.status().is_success() {
            return Err(format!("discovery answered {}", response.status()));
        }
        let metadata: Metadata = json_of(response).await?;
        let jwks = CoreJsonWebKeySet::fetch_async(metadata.jwks_uri(), &|r| capped_call(http, r))
            .await
            .map_err(|e| error_chain(&e))?;
        Ok(metadata.set_jwks(jwks))
    }

    /// Fetches the JWK Set again after an unknown `kid`, unless it was fetched less than
    /// [`JWKS_REFETCH_FLOOR`] ago. `None`: not refetched.
    async fn refetch_jwks(
        &self,
        provider: &Provider,
        mut metadata: Metadata,
    ) -> Result<Option<Metadata>, UpstreamError> {
        let now = self.clock.now();
        {
            let mut cache = provider.cache.lock().unwrap_or_else(|e| e.into_inner());
            if cache
                .jwks_fetched_at
                .is_some_and(|at| now - at < JWKS_REFETCH_FLOOR)
            {
                return Ok(None);
            }
            // Claimed before the fetch: concurrent callbacks fetch once.
            cache.jwks_fetched_at = Some(now);
        }
        let http = &provider.http;
        let jwks =
            match CoreJsonWebKeySet::fetch_async(metadata.jwks_uri(), &|r| capped_call(http, r))
                .await
            {
                Ok(jwks) => jwks,
                Err(e) => {
                    // Shown by the admin health view, as a failed discovery is.
                    let message = error_chain(&e);
                    let mut cache = provider.cache.lock().unwrap_or_else(|e| e.into_inner());
                    cache.last_error = Some(message.clone());
                    return Err(UpstreamError::Unreachable(message));
                }
            };
        metadata = metadata.set_jwks(jwks);
        let mut cache = provider.cache.lock().unwrap_or_else(|e| e.into_inner());
        cache.metadata = Some(metadata.clone());
        Ok(Some(metadata))
    }

    fn client(provider: &Provider, metadata: Metadata) -> Result<CoreClientFor, UpstreamError> {
        let settings = &provider.settings;
        let secret = settings
            .client_secret
            .as_ref()
            .map(|s| ClientSecret::new(s.expose().clone()));
        let redirect = RedirectUrl::new(provider.redirect_uri.clone())
            .map_err(|e| UpstreamError::Unreachable(e.to_string()))?;
        let client = CoreClient::from_provider_metadata(
            metadata,
            ClientId::new(settings.client_id.clone()),
            secret,
        )
        .set_redirect_uri(redirect)
        .set_auth_type(match settings.auth_method {
            UpstreamAuthMethod::ClientSecretBasic => AuthType::BasicAuth,
            // No secret: the crate puts `client_id` in the body, the assertion goes
            // with it (`finish`).
            UpstreamAuthMethod::ClientSecretPost | UpstreamAuthMethod::PrivateKeyJwt(_) => {
                AuthType::RequestBody
            }
        });
        Ok(client)
    }

    /// Where "Sign in with NAME" may lead the login form (its CSP `form-action`): each
    /// issuer, and each authorization endpoint discovered so far.
    pub fn authorization_targets(&self) -> Vec<String> {
        let mut targets = Vec::new();
        for p in &self.providers {
            targets.push(p.settings.issuer.clone());
            let cache = p.cache.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(m) = &cache.metadata {
                targets.push(m.authorization_endpoint().to_string());
            }
        }
        targets
    }

    /// The provider's `end_session_endpoint`, its metadata fetched if this instance has
    /// none yet (after a restart, or on another instance than the sign-in's): for the
    /// logout page's CSP, which must let its form lead there (review M1), and to decide
    /// whether a sign-in's ID token is worth keeping. `None`: GitHub, no such endpoint,
    /// or the provider cannot be reached.
    pub async fn end_session_endpoint(&self, id: &str) -> Option<String> {
        let provider = self.provider(id)?;
        if matches!(provider.settings.kind, UpstreamKind::Github { .. }) {
            return None;
        }
        let metadata = self.metadata(provider).await.ok()?;
        metadata.additional_metadata().end_session_endpoint.clone()
    }

    /// OIDC RP-Initiated Logout §2 at provider `id`: its `end_session_endpoint` with
    /// `id_token_hint`, `post_logout_redirect_uri` ([`logged_out_url`]), `client_id` and
    /// `state`. `None`: its discovery names no such endpoint.
    pub async fn end_session_url(
        &self,
        id: &str,
        id_token_hint: &str,
        state: &str,
        issuer: &str,
    ) -> Result<Option<String>, UpstreamError> {
        let provider = self
            .provider(id)
            .ok_or_else(|| refused("unknown_provider", id))?;
        if matches!(provider.settings.kind, UpstreamKind::Github { .. }) {
            return Ok(None);
        }
        let metadata = self.metadata(provider).await?;
        let Some(endpoint) = &metadata.additional_metadata().end_session_endpoint else {
            return Ok(None);
        };
        let mut url = url::Url::parse(endpoint).map_err(|e| refused("end_session_endpoint", e))?;
        url.query_pairs_mut()
            .append_pair("id_token_hint", id_token_hint)
            .append_pair("post_logout_redirect_uri", &logged_out_url(issuer, id))
            .append_pair("client_id", &provider.settings.client_id)
            .append_pair("state", state);
        Ok(Some(url.to_string()))
    }

    /// Whether `iss` of an authorization response (RFC 9207) is the provider's: its
    /// issuer, or for a multi-tenant template, the template with a tenant id.
    pub fn iss_matches(&self, id: &str, iss: &str) -> bool {
        let Some(p) = self.find(id) else {
            return false;
        };
        // RFC 9207 §2.4: simple string comparison (RFC 3986 §6.2.1), nothing trimmed.
        match &p.kind {
            UpstreamKind::Microsoft { .. } => {
                let Some((before, after)) = p.issuer.split_once("{tenantid}") else {
                    return false;
                };
                iss.strip_prefix(before)
                    .and_then(|rest| rest.strip_suffix(after))
                    .and_then(|tid| crate::config::upstream::issuer_for_tenant(&p.issuer, tid))
                    .is_some_and(|expected| expected == iss)
            }
            _ => iss == p.issuer,
        }
    }

    /// Whether the provider's metadata says it sends RFC 9207's `iss`: read (fetched if
    /// this instance has not yet, or has a stale copy) before the answer, so that a
    /// callback reaching a fresh instance is held to the same rule.
    pub async fn sends_iss(&self, id: &str) -> Result<bool, UpstreamError> {
        let Some(p) = self.provider(id) else {
            return Ok(false);
        };
        if matches!(p.settings.kind, UpstreamKind::Github { .. }) {
            return Ok(false);
        }
        let metadata = self.metadata(p).await?;
        Ok(metadata
            .additional_metadata()
            .authorization_response_iss_parameter_supported)
    }

    /// Starts a sign-in with provider `id`: new state, nonce and PKCE verifier (S256),
    /// and the authorization URL they go in.
    pub async fn begin(&self, id: &str, force: ForceAuth) -> Result<Begun, UpstreamError> {
        let provider = self
            .provider(id)
            .ok_or_else(|| refused("unknown_provider", id))?;
        if let UpstreamKind::Github { web, .. } = &provider.settings.kind {
            return github::github_begin(provider, web);
        }
        let metadata = self.metadata(provider).await?;
        let client = Self::client(provider, metadata)?;
        let state = random_token(32);
        let nonce = random_token(32);
        let verifier = PkceCodeVerifier::new(random_token(48));
        let challenge = PkceCodeChallenge::from_code_verifier_sha256(&verifier);
        let mut request = client
            .authorize_url(
                AuthenticationFlow::<CoreResponseType>::AuthorizationCode,
                {
                    let state = state.clone();
                    move || CsrfToken::new(state)
                },
                {
                    let nonce = nonce.clone();
                    move || Nonce::new(nonce)
                },
            )
            .set_pkce_challenge(challenge);
        for scope in provider.settings.scopes.iter().filter(|s| *s != "openid") {
            request = request.add_scope(Scope::new(scope.clone()));
        }
        if provider.settings.response_mode == UpstreamResponseMode::FormPost {
            request = request.add_extra_param("response_mode", "form_post");
        }
        if force.login {
            request = request.add_prompt(openidconnect::core::CoreAuthPrompt::Login);
        }
        if let Some(max_age) = force.max_age {
            request = request.set_max_age(Duration::from_secs(max_age.max(0) as u64));
        }
        let (url, _, _) = request.url();
        Ok(Begun {
            url: url.to_string(),
            state,
            nonce,
            pkce_verifier: verifier.secret().clone(),
        })
    }

    /// Redeems `code` with its PKCE verifier and verifies the ID token it brings.
    pub async fn finish(
        &self,
        id: &str,
        code: &str,
        nonce: &str,
        pkce_verifier: &str,
    ) -> Result<VerifiedToken, UpstreamError> {
        let provider = self
            .provider(id)
            .ok_or_else(|| refused("unknown_provider", id))?;
        if let UpstreamKind::Github { web, api } = &provider.settings.kind {
            return self
                .github_finish(provider, web, api, code, pkce_verifier)
                .await;
        }
        let metadata = self.metadata(provider).await?;
        let client = Self::client(provider, metadata.clone())?;
        let exchange_client = client.clone();
        let mut exchange = exchange_client
            .exchange_code(AuthorizationCode::new(code.to_owned()))
            .map_err(|e| refused("token_request", e))?
            .set_pkce_verifier(PkceCodeVerifier::new(pkce_verifier.to_owned()));
        if let UpstreamAuthMethod::PrivateKeyJwt(alg) = provider.settings.auth_method {
            let endpoint = metadata
                .token_endpoint()
                .map(|e| e.to_string())
                .ok_or_else(|| refused("token_request", "no token endpoint"))?;
            let jwt = assertion::client_assertion(
                &self.keys.current(),
                alg,
                &provider.settings.client_id,
                &endpoint,
                self.clock.now(),
            )?;
            exchange = exchange
                .add_extra_param("client_assertion_type", assertion::JWT_BEARER)
                .add_extra_param("client_assertion", jwt);
        }
        let response = exchange
            .request_async(&|r| capped_call(&provider.http, r))
            .await
            .map_err(|e| match e {
                // The token endpoint could not be reached: "NAME is not reachable" (503),
                // not a refusal.
                openidconnect::RequestTokenError::Request(inner) => {
                    UpstreamError::Unreachable(error_chain(&inner))
                }
                other => refused("token_request", error_chain(&other)),
            })?;
        let id_token = response
            .id_token()
            .ok_or_else(|| refused("no_id_token", "the token response has no id_token"))?
            .clone();
        let nonce = Nonce::new(nonce.to_owned());
        let now = self.clock.now();
        // The algorithms the upstream says it signs ID tokens with, asymmetric ones only:
        // never `none`, never HS* (whose key would be our client secret).
        let algs: Vec<CoreJwsSigningAlgorithm> = metadata
            .id_token_signing_alg_values_supported()
            .iter()
            .filter(|a| asymmetric(a))
            .cloned()
            .collect();
        if algs.is_empty() {
            return Err(refused(
                "id_token_alg",
                "the upstream names no asymmetric ID token algorithm",
            ));
        }
        let verify = |client: &CoreClientFor| {
            let verifier = client
                .id_token_verifier()
                .set_allowed_algs(algs.clone())
                .set_time_fn(move || chrono_time(now))
                .set_issue_time_verifier_fn(move |iat| {
                    let iat = iat.timestamp();
                    if iat > now + IAT_SKEW {
                        Err("issued in the future".to_owned())
                    } else if now - iat > IAT_MAX_AGE {
                        Err("issued too long ago".to_owned())
                    } else {
                        Ok(())
                    }
                });
            id_token
                .claims(&verifier, &nonce)
                .map(|c| (c.issuer().to_string(), c.subject().to_string()))
        };
        // Entra ID (multi-tenant): the issuer expected of this token is the template with
        // its `tid`, computed before the crate's issuer check, which stays on.
        let for_token = |metadata: Metadata| -> Result<CoreClientFor, UpstreamError> {
            match &provider.settings.kind {
                UpstreamKind::Microsoft { .. } => {
                    let tid = payload(&id_token.to_string())
                        .and_then(|c| c.get("tid").and_then(|t| t.as_str()).map(str::to_owned))
                        .ok_or_else(|| refused("id_token_issuer", "no tid"))?;
                    // Checked again after the signature (below): here it only picks the
                    // issuer the token must have.
                    let expected =
                        crate::config::upstream::issuer_for_tenant(&provider.settings.issuer, &tid)
                            .ok_or_else(|| refused("id_token_issuer", "not a tenant id"))?;
                    let issuer =
                        IssuerUrl::new(expected).map_err(|e| refused("id_token_issuer", e))?;
                    Self::client(provider, metadata.set_issuer(issuer))
                }
                _ => Self::client(provider, metadata),
            }
        };
        let client = for_token(metadata.clone())?;
        let verified = match verify(&client) {
            Err(openidconnect::ClaimsVerificationError::SignatureVerification(
                openidconnect::SignatureVerificationError::NoMatchingKey,
            )) => match self.refetch_jwks(provider, metadata.clone()).await? {
                Some(fresh) => verify(&for_token(fresh)?),
                None => Err(
                    openidconnect::ClaimsVerificationError::SignatureVerification(
                        openidconnect::SignatureVerificationError::NoMatchingKey,
                    ),
                ),
            },
            other => other,
        };
        let (issuer, subject) = verified.map_err(|e| refused(claims_reason(&e), e))?;
        check_subject(&subject)?;
        // Entra ID: the verified token's tenant must be one the operator accepts.
        if let UpstreamKind::Microsoft { tenants, .. } = &provider.settings.kind {
            let tid = payload(&id_token.to_string())
                .and_then(|c| {
                    c.get("tid")
                        .and_then(|t| t.as_str())
                        .map(str::to_ascii_lowercase)
                })
                .unwrap_or_default();
            if !tenant_allowed(tenants, &tid) {
                return Err(refused("tenant_not_allowed", "tenant not in tenants"));
            }
        }
        // The verified token's claims, as sent (the crate's typed claims drop the ones
        // it does not know, which the claim mapping may name).
        let mut claims = payload(&id_token.to_string())
            .ok_or_else(|| refused("id_token_invalid", "unreadable payload"))?;
        check_azp(&claims, &provider.settings.client_id)?;
        // OIDC Core §5.4: with the code flow, the profile claims (email, name, ...) come
        // from the UserInfo endpoint. Its `sub` must be the ID token's (§5.3.4); what the
        // ID token says wins. The access token is used for this call and forgotten.
        if let Some(endpoint) = metadata.userinfo_endpoint() {
            let info = provider
                .http
                .get(endpoint.url().as_str())
                .bearer_auth(response.access_token().secret())
                .header(reqwest::header::ACCEPT, "application/json")
                .send()
                .await
                .map_err(|e| UpstreamError::Unreachable(error_chain(&e)))?;
            if info.status().is_success() {
                let info: serde_json::Map<String, serde_json::Value> = json_of(info)
                    .await
                    .map_err(|e| refused("userinfo_invalid", e))?;
                let mut info = info;
                if info.get("sub").and_then(|s| s.as_str()) != Some(subject.as_str()) {
                    return Err(refused("userinfo_subject", "userinfo is another subject's"));
                }
                // `email_verified` says something of one `email` only: both come from
                // the same answer, the ID token's if it has an address, else UserInfo's.
                if claims.contains_key("email") {
                    info.remove("email");
                    info.remove("email_verified");
                } else {
                    claims.remove("email_verified");
                }
                for (name, value) in info {
                    claims.entry(name).or_insert(value);
                }
            } else {
                tracing::warn!(upstream = %id, status = %info.status(), "upstream userinfo refused; the ID token's claims only");
            }
        }
        let auth_time = claims.get("auth_time").and_then(|t| t.as_i64());
        Ok(VerifiedToken {
            issuer,
            subject,
            auth_time,
            claims,
            email_unavailable: false,
            id_token: provider.settings.end_session.then(|| id_token.to_string()),
        })
    }
}

/// Whether the upstream's `auth_time` meets a forced authentication started at
/// `started_at`: with `prompt=login`, after it; with `max_age`, within it (each with
/// [`IAT_SKEW`] of clock skew). Without either, anything goes.
pub fn fresh_enough(
    force: ForceAuth,
    auth_time: Option<UnixTime>,
    started_at: UnixTime,
    now: UnixTime,
) -> bool {
    if !force.login && force.max_age.is_none() {
        return true;
    }
    let Some(at) = auth_time else {
        return false;
    };
    (!force.login || at >= started_at - IAT_SKEW)
        && force.max_age.is_none_or(|max| now - at <= max + IAT_SKEW)
}

type CoreClientFor = CoreClient<
    openidconnect::EndpointSet,
    openidconnect::EndpointNotSet,
    openidconnect::EndpointNotSet,
    openidconnect::EndpointNotSet,
    openidconnect::EndpointMaybeSet,
    openidconnect::EndpointMaybeSet,
>;

fn chrono_time(now: UnixTime) -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::from_timestamp(now, 0).unwrap_or_default()
}

/// The ID token algorithms accepted: asymmetric signatures only.
fn asymmetric(alg: &CoreJwsSigningAlgorithm) -> bool {
    use CoreJwsSigningAlgorithm as A;
    matches!(
        alg,
        A::RsaSsaPkcs1V15Sha256
            | A::RsaSsaPkcs1V15Sha384
            | A::RsaSsaPkcs1V15Sha512
            | A::RsaSsaPssSha256
            | A::RsaSsaPssSha384
            | A::RsaSsaPssSha512
            | A::EcdsaP256Sha256
            | A::EcdsaP384Sha384
            | A::EcdsaP521Sha512
            | A::EdDsa
    )
}

/// Whether Entra ID tenant `tid` is accepted by `tenants` (empty or `*`: any).
fn tenant_allowed(tenants: &[String], tid: &str) -> bool {
    tenants.is_empty()
        || tenants
            .iter()
            .any(|t| t == "*" || t.eq_ignore_ascii_case(tid))
}

/// OIDC Core §2: `sub` is at most 255 ASCII characters, and never empty.
fn check_subject(subject: &str) -> Result<(), UpstreamError> {
    if subject.is_empty() || subject.len() > 255 {
        return Err(refused("id_token_subject", "sub empty or over 255 bytes"));
    }
    Ok(())
}

/// OIDC Core §3.1.3.7 steps 4-5: an `azp` must be our client id; with several audiences
/// there must be one (the crate leaves this to us: its check is commented out). The
/// crate already refused audiences other than ours.
fn check_azp(
    claims: &serde_json::Map<String, serde_json::Value>,
    client_id: &str,
) -> Result<(), UpstreamError> {
    let several = claims
        .get("aud")
        .and_then(|a| a.as_array())
        .is_some_and(|a| a.len() > 1);
    match claims.get("azp") {
        Some(serde_json::Value::String(azp)) if azp == client_id => Ok(()),
        Some(_) => Err(refused("id_token_azp", "azp is another client")),
        None if several => Err(refused("id_token_azp", "several audiences and no azp")),
        None => Ok(()),
    }
}

/// The audit reason of a refused ID token.
fn claims_reason(error: &openidconnect::ClaimsVerificationError) -> &'static str {
    use openidconnect::ClaimsVerificationError as E;
    match error {
        E::Expired(_) => "id_token_expired",
        E::InvalidAudience(_) => "id_token_audience",
        E::InvalidIssuer(_) => "id_token_issuer",
        E::InvalidNonce(_) => "id_token_nonce",
        E::SignatureVerification(_) => "id_token_signature",
        _ => "id_token_invalid",
    }
}

/// The JSON object of a compact JWT's payload (already verified by the caller).
fn payload(jwt: &str) -> Option<serde_json::Map<String, serde_json::Value>> {
    use base64::Engine;
    let part = jwt.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(part)
        .ok()?;
    serde_json::from_slice(&bytes).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use net::endpoint_allowed;

    fn settings(issuer: &str, allow_private_network: bool) -> UpstreamProvider {
        let table = format!(
            "[[upstream]]\nid = \"a\"\nname = \"A\"\nissuer = \"{issuer}\"\nclient_id = \"c\"\nclient_secret = \"s\"\nallow_private_network = {allow_private_network}\n"
        );
        crate::config::upstream::read(Some(&table))
            .unwrap()
            .remove(0)
    }

    #[test]
    fn discovered_endpoints_are_https_and_public_unless_the_issuer_is_local() {
        let public = settings("https://id.example", false);
        assert!(endpoint_allowed(&public, "https://id.example/token").is_ok());
        assert!(endpoint_allowed(&public, "http://id.example/token").is_err());
        assert!(endpoint_allowed(&public, "http://127.0.0.1:9/token").is_err());
        assert!(endpoint_allowed(&public, "https://10.0.0.5/token").is_err());
        assert!(endpoint_allowed(&public, "https://169.254.169.254/latest").is_err());
        assert!(!private_allowed(&public));
        let intranet = settings("https://id.example", true);
        assert!(endpoint_allowed(&intranet, "https://10.0.0.5/token").is_ok());
        assert!(endpoint_allowed(&intranet, "http://10.0.0.5/token").is_err());
        let local = settings("http://127.0.0.1:8080", false);
        assert!(private_allowed(&local));
        assert!(endpoint_allowed(&local, "http://127.0.0.1:8080/token").is_ok());
        assert!(endpoint_allowed(&local, "http://localhost:8080/token").is_ok());
        assert!(endpoint_allowed(&local, "http://id.example/token").is_err());
    }

    #[test]
    fn azp_is_ours_and_required_with_several_audiences() {
        let claims = |v: serde_json::Value| v.as_object().unwrap().clone();
        assert!(check_azp(&claims(serde_json::json!({"aud": "c"})), "c").is_ok());
        assert!(check_azp(&claims(serde_json::json!({"aud": "c", "azp": "c"})), "c").is_ok());
        assert!(check_azp(&claims(serde_json::json!({"aud": "c", "azp": "x"})), "c").is_err());
        assert!(check_azp(&claims(serde_json::json!({"aud": ["c", "x"]})), "c").is_err());
        assert!(
            check_azp(
                &claims(serde_json::json!({"aud": ["c", "x"], "azp": "c"})),
                "c"
            )
            .is_ok()
        );
    }

    #[test]
    fn a_forced_authentication_needs_a_fresh_upstream_auth_time() {
        let none = ForceAuth::default();
        assert!(fresh_enough(none, None, 1_000, 1_100));
        let login = ForceAuth {
            login: true,
            max_age: None,
        };
        assert!(!fresh_enough(login, None, 1_000, 1_100), "no auth_time");
        assert!(!fresh_enough(login, Some(500), 1_000, 1_100), "an old SSO");
        assert!(fresh_enough(login, Some(1_050), 1_000, 1_100));
        let max_age = ForceAuth {
            login: false,
            max_age: Some(300),
        };
        assert!(fresh_enough(max_age, Some(900), 1_000, 1_100));
        assert!(!fresh_enough(max_age, Some(600), 1_000, 1_100));
    }

    #[test]
    fn only_listed_tenants_are_accepted() {
        let corp = "9188040d-6c67-4c5b-b112-36a304b66dad".to_owned();
        assert!(tenant_allowed(&[], "anything"));
        assert!(tenant_allowed(&["*".into()], "anything"));
        assert!(tenant_allowed(std::slice::from_ref(&corp), &corp));
        assert!(!tenant_allowed(
            std::slice::from_ref(&corp),
            "00000000-0000-0000-0000-000000000000"
        ));
        let jit = crate::config::upstream::read(Some(
            "[[upstream]]\nid = \"ms\"\nname = \"M\"\npreset = \"microsoft\"\nclient_id = \"c\"\nclient_secret = \"s\"\njit = true\n",
        ));
        assert!(jit.is_err(), "jit needs tenants");
    }

    #[test]
    fn only_asymmetric_algorithms_and_a_sane_subject() {
        assert!(asymmetric(&CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256));
        assert!(asymmetric(&CoreJwsSigningAlgorithm::EdDsa));
        assert!(!asymmetric(&CoreJwsSigningAlgorithm::HmacSha256));
        assert!(!asymmetric(&CoreJwsSigningAlgorithm::None));
        assert!(check_subject("").is_err());
        assert!(check_subject(&"x".repeat(256)).is_err());
        assert!(check_subject(&"x".repeat(255)).is_ok());
    }
}
