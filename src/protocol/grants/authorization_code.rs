//! The authorization code grant (RFC 6749 §4.1.3, OIDC Core §3.1.3, RFC 7636 §4.6).

use super::refresh_token::first_refresh_token;
use super::{Allowed, SessionFacts, TokenResponse, amr_of_code, user_grant, user_token_response};
use crate::crypto::tokens::{constant_time_eq, pkce_s256, token_hash};
use crate::domain::{GrantType, Scopes, is_pkce_string};
use crate::protocol::tokens::IdTokenOccasion;
use crate::protocol::{Context, OAuthError, Params};
use crate::store::Client;

pub struct CodeRequest {
    code: String,
    redirect_uri: Option<String>,
    code_verifier: Option<String>,
}

/// The code and the verifier are credentials: never in a log line.
impl std::fmt::Debug for CodeRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CodeRequest")
            .field("code", &"[redacted]")
            .field("redirect_uri", &self.redirect_uri)
            .field(
                "code_verifier",
                &self.code_verifier.as_ref().map(|_| "[redacted]"),
            )
            .finish()
    }
}

impl CodeRequest {
    pub fn parse(params: &Params) -> Result<Self, OAuthError> {
        Ok(Self {
            code: params.required("code")?.to_owned(),
            redirect_uri: params.single("redirect_uri")?.map(str::to_owned),
            code_verifier: params.single("code_verifier")?.map(str::to_owned),
        })
    }
}

pub fn exchange(
    request: CodeRequest,
    client: &Client,
    ctx: &Context<'_>,
) -> Result<TokenResponse, OAuthError> {
    let code_hash = token_hash(&request.code);
    let code = ctx
        .store
        .find_code(&code_hash)?
        .ok_or_else(|| OAuthError::invalid_grant("unknown authorization code"))?;

    // Another client presenting the code proves nothing about its owner's tokens: refuse
    // it without revoking anything (or one client could revoke another's grants).
    if code.client_id != client.id {
        return Err(OAuthError::invalid_grant(
            "authorization code was issued to another client",
        ));
    }
    // RFC 6749 §4.1.2: "If an authorization code is used more than once, the authorization
    // server MUST deny the request and SHOULD revoke ... all tokens previously issued based
    // on that authorization code."
    if code.consumed_at.is_some() {
        ctx.store.revoke_grant(&code.grant_id, ctx.now)?;
        crate::audit::code_reused(&client.id, &code.grant_id);
        return Err(OAuthError::invalid_grant(
            "authorization code was already used",
        ));
    }
    if code.expires_at <= ctx.now {
        return Err(OAuthError::invalid_grant("authorization code has expired"));
    }
    // §4.1.3: "REQUIRED, if the redirect_uri parameter was included in the authorization
    // request ..., and their values MUST be identical."
    match request.redirect_uri.as_deref() {
        Some(uri) if uri == code.redirect_uri => {}
        Some(_) => {
            return Err(OAuthError::invalid_grant(
                "redirect_uri does not match the authorization request",
            ));
        }
        None if code.redirect_uri_sent => {
            return Err(OAuthError::invalid_grant("redirect_uri is required"));
        }
        None => {}
    }
    match (&code.code_challenge, &request.code_verifier) {
        (Some(challenge), Some(verifier)) => {
            if !is_pkce_string(verifier)
                || !constant_time_eq(pkce_s256(verifier).as_bytes(), challenge.as_bytes())
            {
                return Err(OAuthError::invalid_grant(
                    "code_verifier does not match the code_challenge",
                ));
            }
        }
        (Some(_), None) => return Err(OAuthError::invalid_grant("code_verifier is required")),
        // RFC 9700 §4.8.2: a verifier for a code issued without a challenge is a downgrade.
        (None, Some(_)) => {
            return Err(OAuthError::invalid_grant(
                "code_verifier sent for a code without PKCE",
            ));
        }
        (None, None) => {}
    }

    // The code row references its user with ON DELETE CASCADE: a code that still exists
    // belongs to a user who still exists, so the hot path needs no user lookup.
    // The code carried the session's sign-in (`auth_time`, `amr`) to here.
    let amr = amr_of_code(code.amr.as_deref());
    let session = SessionFacts {
        user_id: &code.user_id,
        sid: code.session_id.as_deref(),
        auth_time: code.auth_time,
        amr: &amr,
    };
    let allowed = Allowed {
        client_id: &client.id,
        scope: &code.scope,
        nonce: code.nonce.as_deref(),
        acr: code.acr.as_deref(),
        claims: code.claims.as_deref(),
    };
    let grant = user_grant(
        code.grant_id.clone(),
        session,
        allowed,
        ctx.now,
        ctx.now + ctx.settings.refresh_token_absolute_ttl,
    );
    let scopes = Scopes::parse(&grant.scope).unwrap_or_default();
    // OIDC Core §11: a refresh token only for offline_access (which the authorization
    // endpoint keeps only when consented to and the client may refresh).
    let refresh = (scopes.contains(crate::protocol::OFFLINE_ACCESS)
        && client.may_use_grant(GrantType::RefreshToken))
    .then(|| first_refresh_token(&grant, ctx));
    if !ctx.store.redeem_code(
        &code_hash,
        &grant,
        refresh.as_ref().map(|(_, r)| r),
        ctx.now,
    )? {
        // Lost a race with a concurrent redemption of the same code: same rule as reuse.
        ctx.store.revoke_grant(&code.grant_id, ctx.now)?;
        return Err(OAuthError::invalid_grant(
            "authorization code was already used",
        ));
    }
    user_token_response(
        &grant,
        client,
        &scopes,
        IdTokenOccasion::Authentication,
        refresh.map(|(plain, _)| plain),
        ctx,
    )
}

#[cfg(test)]
mod tests {
    use super::CodeRequest;
    use crate::protocol::Params;

    #[test]
    fn debug_output_never_contains_the_code_or_the_verifier() {
        let params = Params::from_urlencoded(
            "code=the-code-itself&redirect_uri=https%3A%2F%2Frp.example%2Fcb\
             &code_verifier=the-verifier-itself",
        )
        .unwrap();
        let shown = format!("{:?}", CodeRequest::parse(&params).unwrap());
        assert!(!shown.contains("the-code-itself"), "{shown}");
        assert!(!shown.contains("the-verifier-itself"), "{shown}");
        assert!(shown.contains("https://rp.example/cb"), "{shown}");
    }
}
