//! The authorization endpoint (RFC 6749 §4.1.1, OIDC Core §3.1.2): validating the request,
//! deciding whether the user must log in or consent, issuing the code.

mod decision;
mod pkce;
mod prompt;
pub mod pushed;
pub mod request_object;
mod response;
mod response_type;

pub use crate::domain::ResponseType;
pub use decision::{
    Authentication, Next, claims_beyond_scopes, drop_unconsented_offline_access, next_step,
};
pub use pkce::{PkceMethod, is_pkce_string};
pub use prompt::Prompt;
pub use response::{AuthorizationResponse, ResponseMode, issue_device_code, issue_response};

use serde::{Deserialize, Serialize};

use super::claims_request::{ClaimsRequest, acr_asked};
use super::profile::ClientProfile;
use super::{
    Context, ErrorCode, OAuthError, Params, SUPPORTED_SCOPES, dpop, resource_indicators, tokens,
};
use crate::domain::{AcrAsked, GrantType, Level, Scopes};
use crate::store::Client;

/// A validated authorization request, kept while the user logs in and consents.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct AuthorizationRequest {
    pub client_id: String,
    pub redirect_uri: String,
    /// Whether the request named `redirect_uri` (then the token request must repeat it).
    pub redirect_uri_sent: bool,
    pub scope: String,
    pub state: Option<String>,
    pub nonce: Option<String>,
    pub code_challenge: Option<String>,
    pub code_challenge_method: Option<PkceMethod>,
    /// RFC 9449 §10: the thumbprint of the DPoP key the code is bound to (`dpop_jkt`, or
    /// the key of a proof at the PAR endpoint, §10.1); the token request must prove it.
    #[serde(default)]
    pub dpop_jkt: Option<String>,
    pub prompt: Vec<Prompt>,
    pub max_age: Option<i64>,
    /// `sub` of a verified `id_token_hint`.
    pub hinted_sub: Option<String>,
    pub login_hint: Option<String>,
    /// `idp_hint` (issue 24, as Keycloak's `kc_idp_hint`): the upstream provider to sign
    /// in with, skipping the login page.
    #[serde(default)]
    pub idp_hint: Option<String>,
    /// How the response is delivered (an older stored request has none: query).
    #[serde(default)]
    pub response_mode: ResponseMode,
    /// What the response carries (an older stored request has none: a code).
    #[serde(default)]
    pub response_type: ResponseType,
    /// The `claims` parameter (OIDC Core §5.5), normalized JSON.
    #[serde(default)]
    pub claims: Option<String>,
    /// What the request asked of the authentication context (`acr_values`, an `acr`
    /// claims request): the level the sign-in must reach, and the `acr` reported.
    #[serde(default)]
    pub acr_asked: Option<AcrAsked>,
    /// The RFC 8707 resources the access tokens are for, each one the client is
    /// registered for (an older stored request has none: this provider).
    #[serde(default)]
    pub resources: Vec<String>,
}

impl AuthorizationRequest {
    pub fn scopes(&self) -> Scopes {
        Scopes::parse(&self.scope).unwrap_or_default()
    }

    pub(crate) fn prompts(&self, prompt: Prompt) -> bool {
        self.prompt.contains(&prompt)
    }

    /// The level the request asks the sign-in to reach (before the client's and the
    /// server's policies).
    pub fn asked_level(&self) -> Level {
        self.acr_asked
            .as_ref()
            .map(AcrAsked::required)
            .unwrap_or_default()
    }

    /// The `acr` to report for a session that reached `achieved`, when the request asked
    /// for one.
    pub fn reported_acr(&self, achieved: Level) -> Option<String> {
        self.acr_asked
            .as_ref()
            .map(|asked| asked.reported(achieved).to_owned())
    }
}

/// Why a request failed, and so where the error goes.
#[derive(Debug)]
pub enum AuthorizeError {
    /// The client or redirect URI cannot be trusted: show an error page, never redirect
    /// (RFC 6749 §4.1.2.1, §10.15).
    Page(OAuthError),
    /// Everything else goes back to the client's registered redirect URI, in the
    /// response mode it asked for (`error` is what the response says).
    Redirect {
        response: AuthorizationResponse,
        error: OAuthError,
    },
}

/// The redirect URI a request resolved to, and whether the request named it (then the
/// token request must repeat it, RFC 6749 §4.1.3).
#[derive(Clone, Debug)]
pub struct ResolvedRedirect {
    pub uri: String,
    pub sent: bool,
}

/// Step 1: the client and the redirect URI. Errors here must never redirect.
pub fn resolve_redirect_uri(
    params: &Params,
    client: &Client,
) -> Result<ResolvedRedirect, OAuthError> {
    match params.single("redirect_uri")? {
        // Exact string comparison (RFC 6749 §3.1.2.3, OIDC Core §3.1.2.1).
        Some(uri) if client.redirect_uris.iter().any(|r| r == uri) => Ok(ResolvedRedirect {
            uri: uri.to_owned(),
            sent: true,
        }),
        Some(_) => Err(OAuthError::invalid_request(
            "redirect_uri is not registered for this client",
        )),
        // OIDC Core §3.1.2.1 makes redirect_uri REQUIRED in OpenID requests; plain OAuth
        // (RFC 6749 §3.1.2.3) may omit it when exactly one is registered.
        None if is_openid_request(params) => {
            Err(OAuthError::invalid_request("redirect_uri is required"))
        }
        None => match client.redirect_uris.as_slice() {
            [only] => Ok(ResolvedRedirect {
                uri: only.clone(),
                sent: false,
            }),
            _ => Err(OAuthError::invalid_request("redirect_uri is required")),
        },
    }
}

fn is_openid_request(params: &Params) -> bool {
    params
        .single("scope")
        .ok()
        .flatten()
        .is_some_and(|s| s.split(' ').any(|t| t == "openid"))
}

/// Step 2: everything else, with errors redirected to `redirect_uri`.
pub fn validate(
    params: &Params,
    client: &Client,
    redirect: ResolvedRedirect,
    pushed: bool,
    ctx: &Context<'_>,
) -> Result<AuthorizationRequest, AuthorizeError> {
    let issuer = &ctx.config.issuer;
    let fail = |mode, state: Option<&str>, error: OAuthError| AuthorizeError::Redirect {
        response: AuthorizationResponse::error(&redirect.uri, mode, state, &error, issuer),
        error,
    };
    // The mode first: every later error travels in it (Form Post Response Mode §2). An
    // unusable one is reported in the default mode of the response type.
    let default_mode = params
        .single("response_type")
        .ok()
        .flatten()
        .and_then(ResponseType::parse)
        .map_or(ResponseMode::Query, response_type::default_mode);
    let (mode, mode_error) = match params.single("response_mode") {
        Ok(None) => (default_mode, None),
        Ok(Some(m)) => match ResponseMode::parse(m) {
            Some(mode) => (mode, None),
            None => (
                default_mode,
                Some(OAuthError::invalid_request("unsupported response_mode")),
            ),
        },
        Err(error) => (default_mode, Some(error)),
    };
    // A repeated `state` cannot be echoed; report the repetition without one.
    let state = match params.single("state") {
        // Too long to echo: a redirect would carry it back in full (and it may be an
        // attempt to make our Location header overflow a proxy's limit).
        Ok(Some(s)) if s.len() > MAX_STATE => {
            return Err(fail(
                mode,
                None,
                OAuthError::invalid_request("state is too long"),
            ));
        }
        Ok(s) => s.map(str::to_owned),
        Err(error) => return Err(fail(mode, None, error)),
    };
    if let Some(error) = mode_error {
        return Err(fail(mode, state.as_deref(), error));
    }
    // RFC 9126 §5: a client (or a server) that requires pushed requests takes no other.
    if !pushed && requires_pushed_requests(client, ctx) {
        let error = OAuthError::invalid_request(
            "this client must push its authorization requests first (RFC 9126)",
        );
        return Err(fail(mode, state.as_deref(), error));
    }
    let profile = ClientProfile::of(client);
    // FAPI 2.0 §5.3.2.2: "shall require the redirect_uri parameter in pushed
    // authorization requests" (the pushed request is what arrives here).
    if pushed && !redirect.sent && profile.requires_redirect_uri_in_par() {
        let error =
            OAuthError::invalid_request("this client's pushed requests must name redirect_uri");
        return Err(fail(mode, state.as_deref(), error));
    }
    check(params, client, &redirect, state.clone(), mode, ctx)
        .map_err(|error| fail(mode, state.as_deref(), error))
}

/// RFC 9126 §5, §6: per client (`require_pushed_authorization_requests` metadata) or for
/// the whole server.
pub fn requires_pushed_requests(client: &Client, ctx: &Context<'_>) -> bool {
    ctx.config.require_pushed_authorization_requests
        || client.metadata.require_pushed_authorization_requests
        || ClientProfile::of(client).requires_par()
}

/// Upper bounds on values we keep while the user logs in: generous for real clients, small
/// enough that an anonymous flood of requests cannot grow the session store much.
const MAX_STATE: usize = 2048;
const MAX_NONCE: usize = 512;
const MAX_LOGIN_HINT: usize = 256;
const MAX_HINT: usize = 512;
const MAX_CLAIMS: usize = 4096;

/// OIDC Core §3.1.2.1 `display`.
pub const DISPLAY_VALUES: [&str; 4] = ["page", "popup", "touch", "wap"];

fn bounded<'p>(params: &'p Params, name: &str, max: usize) -> Result<Option<&'p str>, OAuthError> {
    match params.single(name)? {
        Some(v) if v.len() > max => Err(OAuthError::invalid_request(format!("{name} is too long"))),
        other => Ok(other),
    }
}

fn check(
    params: &Params,
    client: &Client,
    redirect: &ResolvedRedirect,
    state: Option<String>,
    response_mode: ResponseMode,
    ctx: &Context<'_>,
) -> Result<AuthorizationRequest, OAuthError> {
    // Request objects were expanded before (`request_object::expand`): one that is still
    // here came where none is taken.
    if params.single("request")?.is_some() || params.single("request_uri")?.is_some() {
        return Err(OAuthError::invalid_request(
            "request and request_uri are not taken here",
        ));
    }
    let response_type =
        ResponseType::parse(params.required("response_type")?).ok_or_else(|| {
            OAuthError::new(
                ErrorCode::UnsupportedResponseType,
                "unsupported response_type",
            )
        })?;
    // OIDC Registration §2: a client uses the response types it registered, and the
    // grant types they imply (code: authorization_code; tokens: implicit).
    let registered = client.response_types.contains(&response_type)
        && ClientProfile::of(client).allows_response_type(response_type);
    if !registered
        || (response_type.code && !client.may_use_grant(GrantType::AuthorizationCode))
        || (response_type.returns_tokens() && !client.may_use_grant(GrantType::Implicit))
    {
        return Err(OAuthError::new(
            ErrorCode::UnauthorizedClient,
            "client may not use this response_type",
        ));
    }
    // RFC 9449 §5.2: a client whose access tokens are all DPoP-bound gets none from the
    // authorization endpoint, where no proof can bind it (registration refuses the
    // combination too; this holds for a client stored otherwise).
    if response_type.token && client.metadata.dpop_bound_access_tokens {
        return Err(OAuthError::new(
            ErrorCode::UnauthorizedClient,
            "this client's access tokens are DPoP-bound: none is issued here",
        ));
    }
    // Tokens in a query end up in server logs and Referer headers (RFC 9700 §2.1.2;
    // Multiple Response Types §2.1 gives them the fragment).
    if response_type.returns_tokens() && response_mode == ResponseMode::Query {
        return Err(OAuthError::invalid_request(
            "response_mode=query cannot carry tokens",
        ));
    }
    if !ClientProfile::of(client).allows_response_mode(response_mode) {
        return Err(OAuthError::invalid_request(
            "this client's responses come in the query only",
        ));
    }

    let scopes = client_scopes(params.single("scope")?, client)?;
    // RFC 8707 §2: malformed, or not one the client may ask for, is `invalid_target`,
    // redirected as any other error of the request (RFC 6749 §4.1.2.1).
    let resources = resource_indicators::requested(params)?;
    resource_indicators::registered_for(client, &resources)?;

    // OIDC Core §3.2.2.1, §3.3.2.11: an ID token from the authorization endpoint needs a
    // nonce (it is what binds that token to the browser's request), and `openid`.
    if response_type.id_token {
        if !scopes.contains("openid") {
            return Err(OAuthError::invalid_request(
                "response_type id_token needs the openid scope",
            ));
        }
        if params.single("nonce")?.is_none() {
            return Err(OAuthError::invalid_request(
                "nonce is required when an ID token comes from the authorization endpoint",
            ));
        }
    }
    // PKCE protects a code; a response without one has nothing to bind it to.
    let (code_challenge, code_challenge_method) = if response_type.code {
        pkce::challenge(params, client)?
    } else {
        (None, None)
    };
    // RFC 9449 §10: malformed is `invalid_request`, redirected as the other parameters'.
    let dpop_jkt = params
        .single("dpop_jkt")?
        .map(dpop::parse_dpop_jkt)
        .transpose()?;
    let prompt = Prompt::parse_list(params.single("prompt")?.unwrap_or(""))?;
    let max_age = match params.single("max_age")? {
        None => None,
        Some(v) => Some(v.parse::<i64>().ok().filter(|n| *n >= 0).ok_or_else(|| {
            OAuthError::invalid_request("max_age must be a non-negative integer")
        })?),
    };
    let claims = match bounded(params, "claims", MAX_CLAIMS)? {
        Some(text) => ClaimsRequest::parse(text)?,
        None => ClaimsRequest::default(),
    };
    let acr_asked = acr_asked(
        bounded(params, "acr_values", MAX_HINT)?,
        &claims,
        ctx.config.mfa,
    )?;
    // OIDC Core §3.1.2.1: `display` names how pages are shown; ours fit every device, so
    // each value gets the same page. `ui_locales` and `claims_locales` (§5.2) are
    // preferences: there is one language to choose from today.
    if let Some(display) = params.single("display")?
        && !DISPLAY_VALUES.contains(&display)
    {
        return Err(OAuthError::invalid_request("unsupported display value"));
    }
    bounded(params, "ui_locales", MAX_HINT)?;
    bounded(params, "claims_locales", MAX_HINT)?;
    let hinted_sub = match params.single("id_token_hint")? {
        None => None,
        Some(hint) => Some(verify_id_token_hint(hint, &client.id, ctx)?),
    };
    let hinted_sub = match (hinted_sub, claims.requested_sub()?) {
        (Some(hint), Some(sub)) if hint != sub => {
            return Err(OAuthError::invalid_request(
                "id_token_hint and the claims parameter name different users",
            ));
        }
        (hint, sub) => hint.or(sub),
    };

    Ok(AuthorizationRequest {
        client_id: client.id.clone(),
        redirect_uri: redirect.uri.clone(),
        redirect_uri_sent: redirect.sent,
        scope: scopes.to_string(),
        state,
        nonce: bounded(params, "nonce", MAX_NONCE)?.map(str::to_owned),
        code_challenge,
        code_challenge_method,
        dpop_jkt,
        prompt,
        max_age,
        hinted_sub,
        login_hint: bounded(params, "login_hint", MAX_LOGIN_HINT)?.map(str::to_owned),
        idp_hint: bounded(params, "idp_hint", 64)?.map(str::to_owned),
        response_mode,
        response_type,
        claims: (!claims.is_empty()).then(|| claims.to_json()),
        acr_asked,
        resources,
    })
}

/// An ID token we issued to this client; it may have expired (OIDC Core §3.1.2.1).
fn verify_id_token_hint(
    hint: &str,
    client_id: &str,
    ctx: &Context<'_>,
) -> Result<String, OAuthError> {
    let invalid = || {
        OAuthError::invalid_request(
            "id_token_hint is not a valid ID token from this provider for this client",
        )
    };
    let hint = tokens::verify_id_token_hint(hint, ctx.keys, &ctx.config.issuer, ctx.now)
        .map_err(|_| invalid())?;
    if !hint.is_for(client_id) {
        return Err(invalid());
    }
    Ok(hint.sub)
}

/// The scopes of a request's `scope` parameter that `client` may be given: the OpenID
/// scopes (or the ones it was registered with) and API scopes it was registered with;
/// `offline_access` only for a client that may refresh. Malformed, or nothing left:
/// `invalid_scope`. The authorization endpoint's rule, and the device authorization
/// endpoint's (RFC 8628 §3.1).
pub fn client_scopes(scope: Option<&str>, client: &Client) -> Result<Scopes, OAuthError> {
    let requested = Scopes::parse(scope.unwrap_or(""))
        .ok_or_else(|| OAuthError::new(ErrorCode::InvalidScope, "malformed scope"))?;
    let allowed = client.scope.as_ref();
    let mut scopes = requested;
    // The OpenID scopes the client may use, and API scopes it was registered with.
    scopes.retain(|s| match &allowed {
        None => SUPPORTED_SCOPES.contains(&s),
        Some(a) => a.contains(s),
    });
    // OIDC Core §11: offline_access means a refresh token, which only a client that may
    // refresh can use; for any other it is ignored.
    if !client.may_use_grant(GrantType::RefreshToken) {
        scopes.retain(|s| s != crate::protocol::OFFLINE_ACCESS);
    }
    if scopes.is_empty() {
        return Err(OAuthError::new(
            ErrorCode::InvalidScope,
            "no supported scope was requested",
        ));
    }
    Ok(scopes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::tokens::pkce_s256;
    use crate::protocol::testing::{REDIRECT_URI, TestWorld, VERIFIER};
    use crate::store::AuthMethod;

    /// A code request of a client registered for `https://api.example`, with `extra`.
    fn validated(extra: &[(&str, &str)]) -> Result<AuthorizationRequest, AuthorizeError> {
        let world = TestWorld::default();
        let (mut client, _) = world.add_client("rp", AuthMethod::ClientSecretBasic);
        client.resources = vec!["https://api.example".into(), "urn:example:b".into()];
        let mut pairs: Vec<(String, String)> = [
            ("response_type", "code"),
            ("client_id", "rp"),
            ("redirect_uri", REDIRECT_URI),
            ("scope", "openid"),
            ("state", "st"),
            ("code_challenge", &pkce_s256(VERIFIER)),
            ("code_challenge_method", "S256"),
        ]
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
        pairs.extend(
            extra
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
        );
        let redirect = ResolvedRedirect {
            uri: REDIRECT_URI.to_owned(),
            sent: true,
        };
        validate(&Params::new(pairs), &client, redirect, false, &world.ctx())
    }

    /// The error a refused request sends to the client, and where it sends it.
    fn redirected(answer: Result<AuthorizationRequest, AuthorizeError>) -> (ErrorCode, String) {
        match answer {
            Err(AuthorizeError::Redirect { response, error }) => {
                let state = response.params.iter().find(|(k, _)| *k == "state");
                assert_eq!(state.map(|(_, v)| v.as_str()), Some("st"));
                (error.code, response.redirect_uri)
            }
            other => panic!("expected an error redirected to the client, got {other:?}"),
        }
    }

    #[test]
    fn a_request_keeps_the_resources_its_client_is_registered_for() {
        let one = validated(&[("resource", "https://api.example")]).unwrap();
        assert_eq!(one.resources, ["https://api.example"]);
        let both = validated(&[
            ("resource", "urn:example:b"),
            ("resource", "https://api.example"),
        ])
        .unwrap();
        assert_eq!(both.resources, ["urn:example:b", "https://api.example"]);
        assert!(validated(&[]).unwrap().resources.is_empty());
    }

    #[test]
    fn a_resource_the_client_is_not_registered_for_is_invalid_target_at_the_client() {
        let unregistered = validated(&[
            ("resource", "https://api.example"),
            ("resource", "https://other.example"),
        ]);
        assert_eq!(
            redirected(unregistered),
            (ErrorCode::InvalidTarget, REDIRECT_URI.to_owned())
        );
    }

    #[test]
    fn a_malformed_resource_is_invalid_target_at_the_client() {
        for malformed in ["/relative", "https://api.example#part"] {
            assert_eq!(
                redirected(validated(&[("resource", malformed)])),
                (ErrorCode::InvalidTarget, REDIRECT_URI.to_owned()),
                "{malformed}"
            );
        }
    }

    #[test]
    fn dpop_jkt_is_carried_when_a_thumbprint_and_redirected_as_invalid_request_otherwise() {
        let jkt = "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I";
        let request = validated(&[("dpop_jkt", jkt)]).unwrap();
        assert_eq!(request.dpop_jkt.as_deref(), Some(jkt));
        assert_eq!(validated(&[]).unwrap().dpop_jkt, None);
        for malformed in ["k1", &format!("{jkt}=")] {
            assert_eq!(
                redirected(validated(&[("dpop_jkt", malformed)])),
                (ErrorCode::InvalidRequest, REDIRECT_URI.to_owned()),
                "{malformed}"
            );
        }
        let twice = validated(&[("dpop_jkt", jkt), ("dpop_jkt", jkt)]);
        assert_eq!(redirected(twice).0, ErrorCode::InvalidRequest);
    }

    #[test]
    fn a_request_stored_before_resources_were_kept_reads_as_naming_none() {
        let stored = serde_json::json!({
            "client_id": "rp", "redirect_uri": REDIRECT_URI, "redirect_uri_sent": true,
            "scope": "openid", "state": null, "nonce": null, "code_challenge": null,
            "code_challenge_method": null, "prompt": [], "max_age": null,
            "hinted_sub": null, "login_hint": null,
        });
        let request: AuthorizationRequest = serde_json::from_value(stored).unwrap();
        assert!(request.resources.is_empty());
    }
}
