//! The authorization endpoint (RFC 6749 §4.1.1, OIDC Core §3.1.2): validating the request,
//! deciding whether the user must log in or consent, issuing the code.

use serde::{Deserialize, Serialize};

use super::{Context, ErrorCode, OAuthError, Params, SUPPORTED_SCOPES};
use crate::crypto::keys::JwtExpectations;
use crate::crypto::tokens::{random_token, token_hash};
use crate::domain::{Scopes, UnixTime};
use crate::sessions::SsoSession;
use crate::store::{AuthorizationCode, Client, Consent};

/// A validated authorization request, kept while the user logs in and consents.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct AuthorizationRequest {
    pub client_id: String,
    pub redirect_uri: String,
    /// Whether the request named `redirect_uri` (then the token request must repeat it).
    pub redirect_uri_sent: bool,
    pub scope: String,
    pub state: Option<String>,
    pub nonce: Option<String>,
    pub code_challenge: Option<String>,
    pub code_challenge_method: Option<String>,
    pub prompt: Vec<String>,
    pub max_age: Option<i64>,
    /// `sub` of a verified `id_token_hint`.
    pub hinted_sub: Option<String>,
    pub login_hint: Option<String>,
}

impl AuthorizationRequest {
    pub fn scopes(&self) -> Scopes {
        Scopes::parse(&self.scope).unwrap_or_default()
    }

    fn prompts(&self, value: &str) -> bool {
        self.prompt.iter().any(|p| p == value)
    }
}

/// Why a request failed, and so where the error goes.
#[derive(Debug)]
pub enum AuthorizeError {
    /// The client or redirect URI cannot be trusted: show an error page, never redirect
    /// (RFC 6749 §4.1.2.1, §10.15).
    Page(OAuthError),
    /// Everything else goes back to the client's registered redirect URI.
    Redirect {
        redirect_uri: String,
        state: Option<String>,
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
    ctx: &Context<'_>,
) -> Result<AuthorizationRequest, AuthorizeError> {
    // A repeated `state` cannot be echoed; report the repetition without one.
    let state = match params.single("state") {
        Ok(s) => s.map(str::to_owned),
        Err(error) => {
            return Err(AuthorizeError::Redirect {
                redirect_uri: redirect.uri,
                state: None,
                error,
            });
        }
    };
    check(params, client, &redirect, state.clone(), ctx).map_err(|error| AuthorizeError::Redirect {
        redirect_uri: redirect.uri,
        state,
        error,
    })
}

/// Upper bounds on values we keep while the user logs in: generous for real clients, small
/// enough that an anonymous flood of requests cannot grow the session store much.
const MAX_STATE: usize = 2048;
const MAX_NONCE: usize = 512;
const MAX_LOGIN_HINT: usize = 256;

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
    ctx: &Context<'_>,
) -> Result<AuthorizationRequest, OAuthError> {
    if state.as_ref().is_some_and(|s| s.len() > MAX_STATE) {
        return Err(OAuthError::invalid_request("state is too long"));
    }
    // OIDC Core §6.1 / §6.2: we support neither request objects nor request_uri.
    if params.single("request")?.is_some() {
        return Err(OAuthError::new(
            ErrorCode::RequestNotSupported,
            "request objects are not supported",
        ));
    }
    if params.single("request_uri")?.is_some() {
        return Err(OAuthError::new(
            ErrorCode::RequestUriNotSupported,
            "request_uri is not supported",
        ));
    }
    match params.required("response_type")? {
        "code" => {}
        _ => {
            return Err(OAuthError::new(
                ErrorCode::UnsupportedResponseType,
                "only response_type=code is supported",
            ));
        }
    }
    if !client.response_types.iter().any(|r| r == "code")
        || !client.grant_types.iter().any(|g| g == "authorization_code")
    {
        return Err(OAuthError::new(
            ErrorCode::UnauthorizedClient,
            "client may not use the code flow",
        ));
    }
    if let Some(mode) = params.single("response_mode")?
        && mode != "query"
    {
        return Err(OAuthError::invalid_request(
            "only response_mode=query is supported",
        ));
    }

    let requested = Scopes::parse(params.single("scope")?.unwrap_or(""))
        .ok_or_else(|| OAuthError::new(ErrorCode::InvalidScope, "malformed scope"))?;
    let allowed = client.scope.as_deref().and_then(Scopes::parse);
    let mut scopes = requested;
    scopes.retain(|s| {
        SUPPORTED_SCOPES.contains(&s) && allowed.as_ref().is_none_or(|a| a.contains(s))
    });
    if scopes.is_empty() {
        return Err(OAuthError::new(
            ErrorCode::InvalidScope,
            "no supported scope was requested",
        ));
    }

    let (code_challenge, code_challenge_method) = pkce(params, client)?;
    let prompt = prompt(params)?;
    let max_age = match params.single("max_age")? {
        None => None,
        Some(v) => Some(v.parse::<i64>().ok().filter(|n| *n >= 0).ok_or_else(|| {
            OAuthError::invalid_request("max_age must be a non-negative integer")
        })?),
    };
    let hinted_sub = match params.single("id_token_hint")? {
        None => None,
        Some(hint) => Some(verify_id_token_hint(hint, &client.id, ctx)?),
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
        prompt,
        max_age,
        hinted_sub,
        login_hint: bounded(params, "login_hint", MAX_LOGIN_HINT)?.map(str::to_owned),
    })
}

/// RFC 7636 §4.3/§4.4.1: S256 only (plain offers no protection against a leaked request),
/// required for public clients (RFC 9700 §2.1.1).
fn pkce(params: &Params, client: &Client) -> Result<(Option<String>, Option<String>), OAuthError> {
    let challenge = params.single("code_challenge")?;
    let method = params.single("code_challenge_method")?;
    match (challenge, method) {
        (None, None) if client.is_public() => Err(OAuthError::invalid_request(
            "PKCE (code_challenge with S256) is required for public clients",
        )),
        (None, None) => Ok((None, None)),
        (None, Some(_)) => Err(OAuthError::invalid_request(
            "code_challenge_method without code_challenge",
        )),
        (Some(_), None | Some("plain")) => Err(OAuthError::invalid_request(
            "code_challenge_method must be S256",
        )),
        (Some(c), Some("S256")) => {
            // §4.2: 43 to 128 characters of [A-Z] / [a-z] / [0-9] / "-" / "." / "_" / "~".
            let ok = (43..=128).contains(&c.len())
                && c.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b));
            if !ok {
                return Err(OAuthError::invalid_request("malformed code_challenge"));
            }
            Ok((Some(c.to_owned()), Some("S256".to_owned())))
        }
        (Some(_), Some(_)) => Err(OAuthError::invalid_request(
            "code_challenge_method must be S256",
        )),
    }
}

/// OIDC Core §3.1.2.1: `none` must stand alone.
fn prompt(params: &Params) -> Result<Vec<String>, OAuthError> {
    let values: Vec<String> = params
        .single("prompt")?
        .unwrap_or("")
        .split(' ')
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect();
    if values
        .iter()
        .any(|v| !["none", "login", "consent", "select_account"].contains(&v.as_str()))
    {
        return Err(OAuthError::invalid_request("unsupported prompt value"));
    }
    if values.len() > 1 && values.iter().any(|v| v == "none") {
        return Err(OAuthError::invalid_request(
            "prompt=none cannot be combined with other values",
        ));
    }
    Ok(values)
}

#[derive(Deserialize)]
struct HintClaims {
    sub: String,
    #[serde(default)]
    aud: serde_json::Value,
}

/// An ID token we issued to this client (our signature, issuer, `typ: JWT` so an access
/// token does not pass, and `aud`); it may have expired (OIDC Core §3.1.2.1).
fn verify_id_token_hint(
    hint: &str,
    client_id: &str,
    ctx: &Context<'_>,
) -> Result<String, OAuthError> {
    let expect = JwtExpectations {
        issuer: &ctx.settings.issuer,
        typ: Some("JWT"),
        check_expiry: false,
    };
    let invalid = || {
        OAuthError::invalid_request(
            "id_token_hint is not a valid ID token from this provider for this client",
        )
    };
    let claims = ctx
        .keys
        .verify::<HintClaims>(hint, &expect)
        .map_err(|_| invalid())?;
    let for_client = match &claims.aud {
        serde_json::Value::String(aud) => aud == client_id,
        serde_json::Value::Array(auds) => auds.iter().any(|a| a.as_str() == Some(client_id)),
        _ => false,
    };
    if !for_client {
        return Err(invalid());
    }
    Ok(claims.sub)
}

/// Who is signed in for this request, if anyone.
pub struct Authentication<'a> {
    pub session: &'a SsoSession,
    /// True when the user entered credentials during this very request.
    pub fresh: bool,
}

#[derive(Debug, PartialEq, Eq)]
pub enum Next {
    Login,
    Consent,
    IssueCode,
    Fail(ErrorCode),
}

/// What happens next for `request`, given the browser's session and the stored consent.
pub fn next_step(
    request: &AuthorizationRequest,
    auth: Option<&Authentication<'_>>,
    consent: Option<&Consent>,
    now: UnixTime,
) -> Next {
    let none = request.prompts("none");
    let must_login = match auth {
        None => true,
        Some(a) => {
            !a.fresh
                && (request.prompts("login")
                    || request
                        .max_age
                        // OIDC Core §3.1.2.1 (errata): max_age=0 is prompt=login.
                        .is_some_and(|max| max == 0 || now - a.session.auth_time > max)
                    || request
                        .hinted_sub
                        .as_deref()
                        .is_some_and(|sub| sub != a.session.user_id))
        }
    };
    if must_login {
        return if none {
            Next::Fail(ErrorCode::LoginRequired)
        } else {
            Next::Login
        };
    }
    // A hint naming another user than the one who just logged in cannot be satisfied.
    if let (Some(sub), Some(a)) = (request.hinted_sub.as_deref(), auth)
        && sub != a.session.user_id
    {
        return Next::Fail(ErrorCode::LoginRequired);
    }
    let covered = consent.is_some_and(|c| {
        Scopes::parse(&c.scope).is_some_and(|granted| request.scopes().is_subset(&granted))
    });
    if !covered || request.prompts("consent") {
        return if none {
            Next::Fail(ErrorCode::ConsentRequired)
        } else {
            Next::Consent
        };
    }
    Next::IssueCode
}

/// Creates a code for the signed-in user and returns the redirect URL carrying it.
pub fn issue_code(
    request: &AuthorizationRequest,
    session: &SsoSession,
    ctx: &Context<'_>,
) -> Result<String, OAuthError> {
    let code = random_token(32);
    ctx.store.insert_code(&AuthorizationCode {
        code_hash: token_hash(&code),
        grant_id: random_token(16),
        client_id: request.client_id.clone(),
        user_id: session.user_id.clone(),
        redirect_uri: request.redirect_uri.clone(),
        redirect_uri_sent: request.redirect_uri_sent,
        scope: request.scope.clone(),
        nonce: request.nonce.clone(),
        code_challenge: request.code_challenge.clone(),
        code_challenge_method: request.code_challenge_method.clone(),
        session_id: Some(session.sid.clone()),
        auth_time: session.auth_time,
        created_at: ctx.now,
        expires_at: ctx.now + ctx.settings.authorization_code_ttl,
        consumed_at: None,
    })?;
    Ok(redirect_with(
        &request.redirect_uri,
        &[
            ("code", Some(&code)),
            ("state", request.state.as_deref()),
            ("iss", Some(&ctx.settings.issuer)),
        ],
    ))
}

/// The redirect for an error (RFC 6749 §4.1.2.1), with RFC 9207 `iss`.
pub fn error_redirect(
    redirect_uri: &str,
    state: Option<&str>,
    error: &OAuthError,
    issuer: &str,
) -> String {
    let description = error.wire_description();
    redirect_with(
        redirect_uri,
        &[
            ("error", Some(error.code.as_str())),
            ("error_description", description.as_deref()),
            ("state", state),
            ("iss", Some(issuer)),
        ],
    )
}

/// Appends query parameters, keeping any query the registered URI already has
/// (RFC 6749 §3.1.2).
fn redirect_with(base: &str, pairs: &[(&str, Option<&str>)]) -> String {
    match url::Url::parse(base) {
        Ok(mut url) => {
            {
                let mut query = url.query_pairs_mut();
                for (k, v) in pairs {
                    if let Some(v) = v {
                        query.append_pair(k, v);
                    }
                }
            }
            url.to_string()
        }
        // Registered URIs are validated as absolute URLs, so this is unreachable in practice.
        Err(_) => base.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(prompt: &[&str], max_age: Option<i64>) -> AuthorizationRequest {
        AuthorizationRequest {
            client_id: "c".into(),
            redirect_uri: "https://rp/cb".into(),
            redirect_uri_sent: true,
            scope: "openid profile".into(),
            state: None,
            nonce: None,
            code_challenge: None,
            code_challenge_method: None,
            prompt: prompt.iter().map(|s| s.to_string()).collect(),
            max_age,
            hinted_sub: None,
            login_hint: None,
        }
    }

    fn session(auth_time: i64) -> SsoSession {
        SsoSession {
            id: "s".into(),
            sid: "p".into(),
            user_id: "u".into(),
            auth_time,
            expires_at: auth_time + 1000,
        }
    }

    fn consent(scope: &str) -> Consent {
        Consent {
            user_id: "u".into(),
            client_id: "c".into(),
            scope: scope.into(),
            granted_at: 0,
        }
    }

    #[test]
    fn without_a_session_the_user_logs_in_unless_prompt_is_none() {
        assert_eq!(next_step(&request(&[], None), None, None, 100), Next::Login);
        assert_eq!(
            next_step(&request(&["none"], None), None, None, 100),
            Next::Fail(ErrorCode::LoginRequired)
        );
    }

    #[test]
    fn prompt_login_and_exceeded_max_age_force_a_new_login_once() {
        let s = session(100);
        let old = Authentication {
            session: &s,
            fresh: false,
        };
        let fresh = Authentication {
            session: &s,
            fresh: true,
        };
        let c = consent("openid profile");
        assert_eq!(
            next_step(&request(&["login"], None), Some(&old), Some(&c), 150),
            Next::Login
        );
        assert_eq!(
            next_step(&request(&["login"], None), Some(&fresh), Some(&c), 150),
            Next::IssueCode
        );
        assert_eq!(
            next_step(&request(&[], Some(10)), Some(&old), Some(&c), 150),
            Next::Login
        );
        assert_eq!(
            next_step(&request(&[], Some(100)), Some(&old), Some(&c), 150),
            Next::IssueCode
        );
        assert_eq!(
            next_step(&request(&[], Some(0)), Some(&old), Some(&c), 100),
            Next::Login
        );
        assert_eq!(
            next_step(&request(&[], Some(0)), Some(&fresh), Some(&c), 100),
            Next::IssueCode
        );
    }

    #[test]
    fn consent_must_cover_every_requested_scope() {
        let s = session(100);
        let a = Authentication {
            session: &s,
            fresh: false,
        };
        let narrow = consent("openid");
        let wide = consent("openid profile email");
        assert_eq!(
            next_step(&request(&[], None), Some(&a), Some(&narrow), 100),
            Next::Consent
        );
        assert_eq!(
            next_step(&request(&[], None), Some(&a), Some(&wide), 100),
            Next::IssueCode
        );
        assert_eq!(
            next_step(&request(&["none"], None), Some(&a), Some(&narrow), 100),
            Next::Fail(ErrorCode::ConsentRequired)
        );
        assert_eq!(
            next_step(&request(&["consent"], None), Some(&a), Some(&wide), 100),
            Next::Consent
        );
    }

    #[test]
    fn id_token_hint_for_another_user_requires_login() {
        let s = session(100);
        let a = Authentication {
            session: &s,
            fresh: false,
        };
        let mut r = request(&["none"], None);
        r.hinted_sub = Some("someone-else".into());
        assert_eq!(
            next_step(&r, Some(&a), None, 100),
            Next::Fail(ErrorCode::LoginRequired)
        );
    }

    #[test]
    fn redirects_keep_the_registered_query_and_encode_values() {
        let url = redirect_with(
            "https://rp/cb?x=1",
            &[("state", Some("a b&c")), ("code", None)],
        );
        assert_eq!(url, "https://rp/cb?x=1&state=a+b%26c");
    }
}
