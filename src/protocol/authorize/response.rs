//! The authorization response (RFC 6749 §4.1.2, RFC 9207 `iss`) and error redirects.

use super::AuthorizationRequest;
use crate::crypto::tokens::{random_token, token_hash};
use crate::domain::Scopes;
use crate::protocol::claims::{all_claims, claims_for};
use crate::protocol::claims_request::{ClaimsRequest, add_requested};
use crate::protocol::grants::{Allowed, amr_text_with, user_grant};
use crate::protocol::groups;
use crate::protocol::profile::ClientProfile;
use crate::protocol::resource_indicators;
use crate::protocol::tokens::{
    AccessTokenRequest, IdTokenExtras, IdTokenOccasion, Subject, issue_access_token, issue_id_token,
};
use crate::protocol::{ADMIN_SCOPE, Context, ErrorCode, OAuthError};
use crate::sessions::SsoSession;
use crate::store::{AuthorizationCode, Client, User};

pub use crate::domain::ResponseMode;

/// An authorization response, success or error, and how it is delivered: the one value
/// every path through the endpoint ends in, rendered in one place (`http`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuthorizationResponse {
    pub redirect_uri: String,
    pub mode: ResponseMode,
    /// In order; absent values are left out.
    pub params: Vec<(&'static str, String)>,
}

impl AuthorizationResponse {
    fn new(redirect_uri: &str, mode: ResponseMode, pairs: &[(&'static str, Option<&str>)]) -> Self {
        Self {
            redirect_uri: redirect_uri.to_owned(),
            mode,
            params: pairs
                .iter()
                .filter_map(|(k, v)| v.map(|v| (*k, v.to_owned())))
                .collect(),
        }
    }

    /// An error response (RFC 6749 §4.1.2.1) with RFC 9207 `iss`.
    pub fn error(
        redirect_uri: &str,
        mode: ResponseMode,
        state: Option<&str>,
        error: &OAuthError,
        issuer: &str,
    ) -> Self {
        let description = error.wire_description();
        Self::new(
            redirect_uri,
            mode,
            &[
                ("error", Some(error.code.as_str())),
                ("error_description", description.as_deref()),
                ("state", state),
                ("iss", Some(issuer)),
            ],
        )
    }

    /// An error for `request`, in the mode it asked for.
    pub fn error_for(request: &AuthorizationRequest, error: &OAuthError, issuer: &str) -> Self {
        Self::error(
            &request.redirect_uri,
            request.response_mode,
            request.state.as_deref(),
            error,
            issuer,
        )
    }

    /// The URL the browser is sent to, for the query and fragment modes: the parameters
    /// appended to any query the registered URI already has (RFC 6749 §3.1.2), or as the
    /// fragment (registered URIs have none). `None` for form_post.
    pub fn redirect_url(&self) -> Option<String> {
        let mut url = url::Url::parse(&self.redirect_uri).ok()?;
        match self.mode {
            ResponseMode::Query => {
                let mut query = url.query_pairs_mut();
                for (k, v) in &self.params {
                    query.append_pair(k, v);
                }
            }
            ResponseMode::Fragment => {
                let fragment = url::form_urlencoded::Serializer::new(String::new())
                    .extend_pairs(self.params.iter().map(|(k, v)| (*k, v.as_str())))
                    .finish();
                url.set_fragment(Some(&fragment));
            }
            ResponseMode::FormPost => return None,
        }
        Some(url.into())
    }
}

/// The response to a request the user authorized: a code, an ID token and an access
/// token as its response type asks (OIDC Core §3.1.2.5, §3.2.2.5, §3.3.2.5).
///
/// Tokens handed out here belong to a grant of their own, made now in the user's
/// session: a code's grant is made when the code is redeemed (and a reused code revokes
/// that one alone). Signing out ends both, being of the same session.
pub fn issue_response(
    request: &AuthorizationRequest,
    session: &SsoSession,
    ctx: &Context<'_>,
) -> Result<AuthorizationResponse, OAuthError> {
    let response_type = request.response_type;
    let user = ctx
        .store
        .find_user(&session.user_id)?
        .ok_or_else(|| OAuthError::new(ErrorCode::LoginRequired, "the session has ended"))?;
    let granted = scopes_held_by(request.scopes(), &user);
    let client = ctx
        .store
        .find_client(&request.client_id)?
        .ok_or_else(|| OAuthError::invalid_request("unknown client_id"))?;
    let code = response_type
        .code
        .then(|| issue_code(request, &client, &granted, session, ctx))
        .transpose()?;
    let mut pairs: Vec<(&'static str, Option<String>)> = vec![("code", code.clone())];
    if response_type.returns_tokens() {
        // No refresh token from the front channel (OIDC Core §11 needs the code flow).
        let mut scopes = granted;
        scopes.retain(|s| s != crate::protocol::OFFLINE_ACCESS);
        let scope = scopes.to_string();
        let acr = request.reported_acr(session.level);
        let grant = user_grant(
            random_token(16),
            session.into(),
            Allowed {
                client_id: &client.id,
                scope: &scope,
                nonce: request.nonce.as_deref(),
                acr: acr.as_deref(),
                claims: request.claims.as_deref(),
                resources: &request.resources,
            },
            ctx.now,
            ctx.now + ctx.config.access_token_ttl.max(ctx.config.id_token_ttl),
        );
        if !ctx.store.create_grant(&grant)? {
            return Err(OAuthError::new(
                ErrorCode::LoginRequired,
                "the session has ended",
            ));
        }
        // Looked up once, and only if a token here releases them.
        let requested = ClaimsRequest::from_stored(request.claims.as_deref())
            .filter(|r| !r.id_token.is_empty());
        let groups_in_access = response_type.token && scopes.contains(groups::GROUPS);
        let groups_in_id = response_type.id_token
            && groups::released(&scopes, requested.as_ref().map(|r| &r.id_token));
        let group_names = (groups_in_access || groups_in_id)
            .then(|| groups::claim(&grant.id, ctx))
            .transpose()?;
        let access = response_type
            .token
            .then(|| {
                issue_access_token(
                    &AccessTokenRequest {
                        subject: &Subject::User {
                            user_id: grant.user_id.clone(),
                            grant_id: grant.id.clone(),
                        },
                        client: &client,
                        scope: &scope,
                        // RFC 8707 §2: the token is for the resources the request named.
                        audience: &request.resources,
                        auth_time: Some(grant.auth_time),
                        acr: grant.acr.as_deref(),
                        amr: grant.amr.as_deref(),
                        groups: group_names.as_deref().filter(|_| groups_in_access),
                    },
                    ctx,
                )
            })
            .transpose()?;
        if response_type.id_token {
            // §5.4: without an access token the client cannot ask userinfo, so the
            // claims its scopes release travel in the ID token.
            let groups_claim = group_names.as_deref().filter(|_| groups_in_id);
            let claims =
                (access.is_none() || requested.is_some() || groups_claim.is_some()).then(|| {
                    let mut claims = match access {
                        Some(_) => serde_json::Map::new(),
                        None => claims_for(&user, &scopes),
                    };
                    if let Some(requested) = &requested {
                        add_requested(&mut claims, &all_claims(&user), &requested.id_token);
                    }
                    if let Some(names) = groups_claim {
                        claims.insert(groups::GROUPS.into(), groups::value(names));
                    }
                    claims
                });
            let extras = IdTokenExtras {
                access_token: access.as_ref().map(|a| a.token.as_str()),
                code: code.as_deref(),
                claims,
            };
            let id_token = issue_id_token(
                &grant,
                &client,
                extras,
                IdTokenOccasion::Authentication,
                ctx,
            )?;
            pairs.push(("id_token", Some(id_token)));
        }
        if let Some(access) = access {
            pairs.push(("access_token", Some(access.token)));
            pairs.push(("token_type", Some("Bearer".to_owned())));
            pairs.push(("expires_in", Some(ctx.config.access_token_ttl.to_string())));
            pairs.push(("scope", Some(scope)));
        }
    }
    pairs.push(("state", request.state.clone()));
    pairs.push(("iss", Some(ctx.config.issuer.clone())));
    let pairs: Vec<(&'static str, Option<&str>)> =
        pairs.iter().map(|(k, v)| (*k, v.as_deref())).collect();
    Ok(AuthorizationResponse::new(
        &request.redirect_uri,
        request.response_mode,
        &pairs,
    ))
}

/// The requested scopes less those that speak for a role `user` does not hold: `admin`
/// only for an administrator. The admin API checks the role again, but a resource server
/// that reads the token's `scope` (RFC 9068 §2.2.3) must not be misled.
fn scopes_held_by(mut scopes: Scopes, user: &User) -> Scopes {
    if !user.is_admin {
        scopes.retain(|s| s != ADMIN_SCOPE);
    }
    scopes
}

/// Creates a code for the signed-in user with the scopes `granted`; returns it.
fn issue_code(
    request: &AuthorizationRequest,
    client: &Client,
    granted: &Scopes,
    session: &SsoSession,
    ctx: &Context<'_>,
) -> Result<String, OAuthError> {
    let code = random_token(32);
    // A profile may shorten it (FAPI 2.0 §5.3.2.2: 60 s at most).
    let expires_at =
        ctx.now + ClientProfile::of(client).code_ttl(ctx.config.authorization_code_ttl.as_secs());
    insert_code(
        request,
        granted,
        session,
        token_hash(&code),
        expires_at,
        ctx,
    )?;
    Ok(code)
}

/// The approval of a device authorization (RFC 8628 §3.3): the code its poll redeems,
/// under `code_hash` (the device's own code is derived from the device code, which this
/// side never sees), until `expires_at`. The code grant's row, so its redemption issues
/// the same tokens (`sid`, `auth_time`, `amr`, `acr`, claims) as the code flow's.
pub fn issue_device_code(
    request: &AuthorizationRequest,
    session: &SsoSession,
    code_hash: &str,
    expires_at: crate::domain::UnixTime,
    ctx: &Context<'_>,
) -> Result<(), OAuthError> {
    let user = ctx
        .store
        .find_user(&session.user_id)?
        .ok_or_else(|| OAuthError::new(ErrorCode::LoginRequired, "the session has ended"))?;
    let granted = scopes_held_by(request.scopes(), &user);
    insert_code(
        request,
        &granted,
        session,
        code_hash.to_owned(),
        expires_at,
        ctx,
    )
}

fn insert_code(
    request: &AuthorizationRequest,
    granted: &Scopes,
    session: &SsoSession,
    code_hash: String,
    expires_at: crate::domain::UnixTime,
    ctx: &Context<'_>,
) -> Result<(), OAuthError> {
    ctx.store.insert_code(&AuthorizationCode {
        code_hash,
        grant_id: random_token(16),
        client_id: request.client_id.clone(),
        user_id: session.user_id.clone(),
        redirect_uri: request.redirect_uri.clone(),
        redirect_uri_sent: request.redirect_uri_sent,
        scope: granted.to_string(),
        nonce: request.nonce.clone(),
        code_challenge: request.code_challenge.clone(),
        // The code row keeps the column's text form.
        code_challenge_method: request.code_challenge_method.map(|m| m.as_str().to_owned()),
        dpop_jkt: request.dpop_jkt.clone(),
        session_id: Some(session.sid.clone()),
        auth_time: session.auth_time,
        created_at: ctx.now,
        expires_at,
        consumed_at: None,
        acr: request.reported_acr(session.level),
        claims: request.claims.clone(),
        amr: amr_text_with(&session.amr, session.idp.as_deref()),
        resources: resource_indicators::stored(&request.resources),
    })?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn response(mode: ResponseMode) -> AuthorizationResponse {
        AuthorizationResponse::new(
            "https://rp/cb?x=1",
            mode,
            &[
                ("state", Some("a b&c")),
                ("code", None),
                ("iss", Some("https://op")),
            ],
        )
    }

    #[test]
    fn query_responses_keep_the_registered_query_and_encode_values() {
        assert_eq!(
            response(ResponseMode::Query).redirect_url().unwrap(),
            "https://rp/cb?x=1&state=a+b%26c&iss=https%3A%2F%2Fop"
        );
    }

    #[test]
    fn fragment_responses_put_the_parameters_after_the_hash() {
        assert_eq!(
            response(ResponseMode::Fragment).redirect_url().unwrap(),
            "https://rp/cb?x=1#state=a+b%26c&iss=https%3A%2F%2Fop"
        );
    }

    #[test]
    fn form_post_responses_are_not_urls_and_keep_their_parameters() {
        let r = response(ResponseMode::FormPost);
        assert_eq!(r.redirect_url(), None);
        assert_eq!(
            r.params,
            vec![
                ("state", "a b&c".to_owned()),
                ("iss", "https://op".to_owned())
            ]
        );
    }

    #[test]
    fn response_modes_parse_exactly() {
        for (text, mode) in [
            ("query", ResponseMode::Query),
            ("fragment", ResponseMode::Fragment),
            ("form_post", ResponseMode::FormPost),
        ] {
            assert_eq!(ResponseMode::parse(text), Some(mode));
        }
        assert_eq!(ResponseMode::parse("Query"), None);
        assert_eq!(ResponseMode::parse("web_message"), None);
    }
}
