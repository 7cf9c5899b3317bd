//! The token endpoint's grants (RFC 6749 §4, §5): one module per grant behind one enum.
//! Each grant decides what it issues and shapes its response; `tokens` only builds and
//! signs.

pub mod authorization_code;
pub mod client_credentials;
pub mod device_code;
pub mod refresh_token;
pub mod token_exchange;

use serde::Serialize;

use super::claims::all_claims;
use super::claims_request::{ClaimsRequest, add_requested};
use super::groups;
use super::profile::ClientProfile;
pub use super::stored_amr::{amr_of_code, amr_text, amr_text_with, amr_words, idp_of};
use super::tokens::{
    AccessTokenRequest, IdTokenExtras, IdTokenOccasion, PreparedAccessToken, Subject,
    access_token_claims, issue_id_token, prepare_access_token,
};
use super::{Context, ErrorCode, OAuthError, Params, dpop, resource_indicators};
use crate::domain::{GrantType, Scopes, UnixTime};
use crate::sessions::SsoSession;
use crate::store::{Client, Grant, OpaqueAccessToken};

#[derive(Debug)]
pub enum TokenRequest {
    AuthorizationCode(authorization_code::CodeRequest),
    RefreshToken(refresh_token::RefreshRequest),
    ClientCredentials(client_credentials::ClientCredentialsRequest),
    TokenExchange(token_exchange::ExchangeRequest),
    /// Redeemed only after the HTTP side's poll (`device_code::poll`) found it approved.
    DeviceCode(device_code::DeviceCodeRequest),
}

impl TokenRequest {
    /// The caller's address, for the audit events of the grants that write one (token
    /// exchange: `token.exchanged`).
    pub fn with_address(self, address: String) -> Self {
        match self {
            Self::TokenExchange(r) => Self::TokenExchange(r.with_address(address)),
            other => other,
        }
    }

    pub fn parse(params: &Params) -> Result<Self, OAuthError> {
        let unsupported =
            || OAuthError::new(ErrorCode::UnsupportedGrantType, "unsupported grant_type");
        match GrantType::parse(params.required("grant_type")?).ok_or_else(unsupported)? {
            GrantType::AuthorizationCode => {
                authorization_code::CodeRequest::parse(params).map(Self::AuthorizationCode)
            }
            GrantType::RefreshToken => {
                refresh_token::RefreshRequest::parse(params).map(Self::RefreshToken)
            }
            GrantType::ClientCredentials => {
                client_credentials::ClientCredentialsRequest::parse(params)
                    .map(Self::ClientCredentials)
            }
            GrantType::TokenExchange => {
                token_exchange::ExchangeRequest::parse(params).map(Self::TokenExchange)
            }
            GrantType::DeviceCode => {
                device_code::DeviceCodeRequest::parse(params).map(Self::DeviceCode)
            }
            // The authorization endpoint's grant: no token request carries it.
            GrantType::Implicit => Err(unsupported()),
        }
    }

    pub fn grant_type(&self) -> GrantType {
        match self {
            Self::AuthorizationCode(_) => GrantType::AuthorizationCode,
            Self::RefreshToken(_) => GrantType::RefreshToken,
            Self::ClientCredentials(_) => GrantType::ClientCredentials,
            Self::TokenExchange(_) => GrantType::TokenExchange,
            Self::DeviceCode(_) => GrantType::DeviceCode,
        }
    }
}

/// RFC 6749 §5.1.
#[derive(Serialize)]
pub struct TokenResponse {
    pub access_token: String,
    pub token_type: &'static str,
    pub expires_in: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id_token: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
    pub scope: String,
    /// RFC 8693 §2.2.1: the type of the token a token exchange issued.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub issued_token_type: Option<&'static str>,
}

/// Every token in it is a credential: never in a log line.
impl std::fmt::Debug for TokenResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let redacted = |token: &Option<String>| token.as_ref().map(|_| "[redacted]");
        f.debug_struct("TokenResponse")
            .field("access_token", &"[redacted]")
            .field("token_type", &self.token_type)
            .field("expires_in", &self.expires_in)
            .field("id_token", &redacted(&self.id_token))
            .field("refresh_token", &redacted(&self.refresh_token))
            .field("scope", &self.scope)
            .field("issued_token_type", &self.issued_token_type)
            .finish()
    }
}

/// Runs the grant of `request` for `client`; `proof` is the request's verified DPoP proof
/// (RFC 9449 §5), if it came with one.
pub fn exchange(
    request: TokenRequest,
    client: &Client,
    proof: Option<&dpop::Proof>,
    ctx: &Context<'_>,
) -> Result<TokenResponse, OAuthError> {
    if !client.may_use_grant(request.grant_type()) {
        return Err(OAuthError::new(
            ErrorCode::UnauthorizedClient,
            "client may not use this grant_type",
        ));
    }
    // RFC 9449 §5: whatever the grant, a proof binds what it issues, and the client's
    // registration may require one (and the server's nonce in it) before anything is
    // used up.
    let binding = dpop::token_request_binding(
        proof,
        client.is_public(),
        // FAPI 2.0 §5.3.2.2: a profiled client's tokens are sender-constrained.
        client.metadata.dpop_bound_access_tokens || ClientProfile::of(client).requires_dpop(),
        client.metadata.require_dpop_nonce,
    )?;
    let ctx = &ctx.with_dpop(binding.as_ref());
    let mut response = match request {
        TokenRequest::AuthorizationCode(r) => authorization_code::exchange(r, client, ctx),
        TokenRequest::RefreshToken(r) => refresh_token::exchange(r, client, ctx),
        TokenRequest::ClientCredentials(r) => client_credentials::exchange(r, client, ctx),
        TokenRequest::TokenExchange(r) => token_exchange::exchange(r, client, ctx),
        TokenRequest::DeviceCode(r) => device_code::exchange(r, client, ctx),
    }?;
    if binding.is_some() {
        // §5.1: the token type of a bound access token.
        response.token_type = dpop::SCHEME;
    }
    Ok(response)
}

/// How the user signed in, as their browser session recorded it: what every grant made
/// in that session carries into its tokens (`sid`, `auth_time`, `amr`; OIDC Core §2).
/// Read from the session itself, or from the code that carried it to the token endpoint.
#[derive(Clone, Copy, Debug)]
pub struct SessionFacts<'a> {
    pub user_id: &'a str,
    /// The session's public `sid`.
    pub sid: Option<&'a str>,
    pub auth_time: UnixTime,
    /// Authentication method references (RFC 8176 §2).
    pub amr: &'a [String],
    /// The upstream provider the session signed in through (issue 24).
    pub idp: Option<&'a str>,
}

impl<'a> From<&'a SsoSession> for SessionFacts<'a> {
    fn from(session: &'a SsoSession) -> Self {
        Self {
            user_id: &session.user_id,
            sid: Some(&session.sid),
            auth_time: session.auth_time,
            amr: &session.amr,
            idp: session.idp.as_deref(),
        }
    }
}

/// What the user allowed the client, from the authorization request (or its code).
#[derive(Clone, Copy, Debug)]
pub struct Allowed<'a> {
    pub client_id: &'a str,
    pub scope: &'a str,
    pub nonce: Option<&'a str>,
    pub acr: Option<&'a str>,
    /// The `claims` request parameter, normalized JSON.
    pub claims: Option<&'a str>,
    /// The RFC 8707 resources the request named (checked against the client's): the
    /// audience of the grant's access tokens. None: this provider.
    pub resources: &'a [String],
}

/// The grant of a user's authorization, made now: one constructor for the code, implicit
/// and hybrid paths, so each carries what the session recorded rather than a copy of it.
pub fn user_grant(
    id: String,
    session: SessionFacts<'_>,
    allowed: Allowed<'_>,
    now: UnixTime,
    expires_at: UnixTime,
) -> Grant {
    Grant {
        id,
        client_id: allowed.client_id.to_owned(),
        user_id: session.user_id.to_owned(),
        scope: allowed.scope.to_owned(),
        session_id: session.sid.map(str::to_owned),
        created_at: now,
        revoked_at: None,
        auth_time: session.auth_time,
        nonce: allowed.nonce.map(str::to_owned),
        acr: allowed.acr.map(str::to_owned),
        amr: amr_text_with(session.amr, session.idp),
        claims: allowed.claims.map(str::to_owned),
        expires_at,
        resources: resource_indicators::stored(allowed.resources),
    }
}

/// The optional `scope` of a token request (RFC 6749 §3.3): malformed is `invalid_scope`.
fn requested_scope(params: &Params) -> Result<Option<Scopes>, OAuthError> {
    params
        .single("scope")?
        .map(|s| {
            Scopes::parse(s)
                .filter(|s| !s.is_empty())
                .ok_or_else(|| OAuthError::new(ErrorCode::InvalidScope, "malformed scope"))
        })
        .transpose()
}

/// The audience of an access token of `grant` for a token request that named
/// `requested` resources (RFC 8707 §2.2): the grant's, or fewer of them.
fn granted_audience(grant: &Grant, requested: Vec<String>) -> Result<Vec<String>, OAuthError> {
    resource_indicators::narrowed(
        &resource_indicators::from_stored(grant.resources.as_deref()),
        requested,
    )
}

/// Which tokens of a response for `scope` release the user's groups: the access token
/// (by its scope), the ID token (by the scope or the claims parameter).
struct GroupsReleased {
    in_access: bool,
    in_id: bool,
}

fn groups_released(grant: &Grant, scope: &Scopes) -> (GroupsReleased, Option<ClaimsRequest>) {
    let requested = ClaimsRequest::from_stored(grant.claims.as_deref());
    let released = GroupsReleased {
        in_access: scope.contains(groups::GROUPS),
        in_id: scope.contains("openid")
            && groups::released(scope, requested.as_ref().map(|r| &r.id_token)),
    };
    (released, requested)
}

/// Where `user_access` looks up the user's groups, when the response releases them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum GroupsOf {
    /// By the grant, stored already (a refresh): answered from the liveness cache for a
    /// grant seen lately.
    StoredGrant,
    /// By the grant's user: the grant is stored by the transaction that is to record the
    /// token (a code's redemption), so the token is made before it.
    User,
}

/// The access token of a user's grant (code, refresh) for `scope` (the grant's or a
/// narrower one) and `audience` (RFC 8707 resources, the grant's or fewer; none: this
/// provider), prepared before the grant's own writes so that an opaque one is recorded
/// in their transaction; with the user's groups when the response releases them.
pub(super) struct UserAccess {
    prepared: PreparedAccessToken,
    group_names: Option<Vec<String>>,
}

impl UserAccess {
    pub(super) fn pending(&self) -> Option<&OpaqueAccessToken> {
        self.prepared.pending()
    }

    /// The grant's transaction recorded `pending`.
    pub(super) fn recorded(self) -> Self {
        Self {
            prepared: self.prepared.recorded(),
            ..self
        }
    }
}

pub(super) fn user_access(
    grant: &Grant,
    client: &Client,
    scope: &Scopes,
    audience: &[String],
    groups_of: GroupsOf,
    ctx: &Context<'_>,
) -> Result<UserAccess, OAuthError> {
    let scope_text = scope.to_string();
    let (released, _) = groups_released(grant, scope);
    // The groups, looked up once if either token releases them.
    let group_names = (released.in_access || released.in_id)
        .then(|| match groups_of {
            GroupsOf::StoredGrant => groups::claim(&grant.id, ctx),
            GroupsOf::User => groups::claim_of_user(&grant.user_id, ctx),
        })
        .transpose()?;
    let request = AccessTokenRequest {
        subject: &Subject::User {
            user_id: grant.user_id.clone(),
            grant_id: grant.id.clone(),
        },
        client,
        scope: &scope_text,
        audience,
        auth_time: Some(grant.auth_time),
        acr: grant.acr.as_deref(),
        amr: grant.amr.as_deref(),
        groups: group_names.as_deref().filter(|_| released.in_access),
    };
    let prepared = prepare_access_token(access_token_claims(&request, ctx), client, ctx)?;
    Ok(UserAccess {
        prepared,
        group_names,
    })
}

/// The response of a grant that speaks for a user (code, refresh): the access token of
/// `user_access` (recorded now if still pending), an ID token when `openid` is among the
/// scope, and the refresh token the grant decided on.
fn user_token_response(
    grant: &Grant,
    client: &Client,
    scope: &Scopes,
    access: UserAccess,
    occasion: IdTokenOccasion,
    refresh_token: Option<String>,
    ctx: &Context<'_>,
) -> Result<TokenResponse, OAuthError> {
    let scope_text = scope.to_string();
    let (released, requested) = groups_released(grant, scope);
    let group_names = access.group_names;
    let access = access.prepared.record(ctx)?;
    let id_token = scope
        .contains("openid")
        .then(|| {
            // OIDC Core §5.5: claims the request asked the ID token for (a user lookup
            // only then: the common path needs none).
            let mut claims = match &requested {
                Some(requested) if !requested.id_token.is_empty() => {
                    ctx.store.find_user(&grant.user_id)?.map(|user| {
                        let mut claims = serde_json::Map::new();
                        add_requested(&mut claims, &all_claims(&user), &requested.id_token);
                        claims
                    })
                }
                _ => None,
            };
            if let Some(names) = group_names.as_deref().filter(|_| released.in_id) {
                claims
                    .get_or_insert_with(serde_json::Map::new)
                    .insert(groups::GROUPS.into(), groups::value(names));
            }
            let extras = IdTokenExtras {
                access_token: Some(&access.token),
                claims,
                ..IdTokenExtras::default()
            };
            issue_id_token(grant, client, extras, occasion, ctx)
        })
        .transpose()?;
    Ok(TokenResponse {
        access_token: access.token,
        token_type: "Bearer",
        expires_in: ctx.config.access_token_ttl.as_secs(),
        id_token,
        refresh_token,
        scope: scope_text,
        issued_token_type: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_response_prints_no_token() {
        let response = TokenResponse {
            access_token: "access-secret".into(),
            token_type: "Bearer",
            expires_in: 300,
            id_token: Some("id-secret".into()),
            refresh_token: Some("refresh-secret".into()),
            scope: "openid".into(),
            issued_token_type: None,
        };
        let printed = format!("{response:?}");
        for secret in ["access-secret", "id-secret", "refresh-secret"] {
            assert!(!printed.contains(secret), "{printed}");
        }
        assert!(
            printed.contains("refresh_token: Some(\"[redacted]\")"),
            "{printed}"
        );
        assert!(printed.contains("expires_in: 300"), "{printed}");
        let token: crate::protocol::tokens::AccessToken = serde_json::from_value::<
            crate::protocol::tokens::AccessTokenClaims,
        >(serde_json::json!({
            "iss": "https://op", "sub": "s", "aud": "a", "client_id": "c", "scope": "openid",
            "jti": "j", "exp": 2, "iat": 1
        }))
        .map(|claims| crate::protocol::tokens::AccessToken {
            token: "opaque-secret".into(),
            claims,
        })
        .unwrap();
        let printed = format!("{token:?}");
        assert!(!printed.contains("opaque-secret"), "{printed}");
        assert!(printed.contains("client_id: \"c\""), "{printed}");
    }

    fn session(amr: &[&str]) -> SsoSession {
        SsoSession {
            id: "cookie".into(),
            sid: "sid-1".into(),
            user_id: "alice-id".into(),
            auth_time: 100,
            amr: amr.iter().map(|s| (*s).to_owned()).collect(),
            level: Default::default(),
            methods: Vec::new(),
            expires_at: 1000,
            idp: None,
            upstream_id_token: None,
        }
    }

    fn allowed() -> Allowed<'static> {
        Allowed {
            client_id: "c",
            scope: "openid profile",
            nonce: Some("n"),
            acr: None,
            claims: None,
            resources: &[],
        }
    }

    #[test]
    fn a_grant_carries_the_methods_the_session_signed_in_with() {
        let signed_in = session(&["pwd", "otp"]);
        let grant = user_grant("g".into(), (&signed_in).into(), allowed(), 200, 300);
        assert_eq!(grant.amr.as_deref(), Some("pwd otp"));
        assert_eq!(grant.auth_time, 100);
        assert_eq!(grant.session_id.as_deref(), Some("sid-1"));
        assert_eq!(grant.user_id, "alice-id");
        assert_eq!((grant.created_at, grant.expires_at), (200, 300));
        assert_eq!(grant.revoked_at, None);
        assert_eq!(grant.nonce.as_deref(), Some("n"));
    }

    #[test]
    fn a_grant_carries_the_resources_the_request_named_and_none_when_it_named_none() {
        let signed_in = session(&["pwd"]);
        let named = ["https://api.example".to_owned(), "urn:b".to_owned()];
        let for_apis = Allowed {
            resources: &named,
            ..allowed()
        };
        let grant = user_grant("g".into(), (&signed_in).into(), for_apis, 200, 300);
        assert_eq!(
            grant.resources.as_deref(),
            Some("https://api.example urn:b")
        );
        assert_eq!(
            granted_audience(&grant, vec![]).unwrap(),
            ["https://api.example", "urn:b"]
        );
        assert_eq!(
            granted_audience(&grant, vec!["urn:b".into()]).unwrap(),
            ["urn:b"]
        );
        let plain = user_grant("g".into(), (&signed_in).into(), allowed(), 200, 300);
        assert_eq!(plain.resources, None);
        assert!(granted_audience(&plain, vec![]).unwrap().is_empty());
    }

    #[test]
    fn a_code_carries_the_sessions_amr_to_its_grant() {
        let signed_in = session(&["pwd"]);
        let stored = amr_text(&signed_in.amr);
        assert_eq!(stored.as_deref(), Some("pwd"));
        let amr = amr_of_code(stored.as_deref());
        let facts = SessionFacts {
            amr: &amr,
            ..SessionFacts::from(&signed_in)
        };
        let grant = user_grant("g".into(), facts, allowed(), 200, 300);
        assert_eq!(grant.amr.as_deref(), Some("pwd"));
        assert_eq!(amr_of_code(Some("pwd otp")), ["pwd", "otp"]);
    }

    #[test]
    fn a_code_issued_before_codes_recorded_amr_was_a_password_sign_in() {
        assert_eq!(amr_of_code(None), ["pwd"]);
    }
}
