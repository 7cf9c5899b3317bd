//! The authorization code grant (RFC 6749 §4.1.3, OIDC Core §3.1.3, RFC 7636 §4.6).

use super::refresh_token::first_refresh_token;
use super::{
    Allowed, GroupsOf, SessionFacts, TokenResponse, amr_of_code, granted_audience, user_access,
    user_grant, user_token_response,
};
use crate::crypto::tokens::{constant_time_eq, pkce_s256, token_hash};
use crate::domain::{GrantType, Scopes, is_pkce_string};
use crate::protocol::profile::ClientProfile;
use crate::protocol::resource_indicators::{self, from_stored};
use crate::protocol::tokens::IdTokenOccasion;
use crate::protocol::{Context, OAuthError, Params, dpop};
use crate::store::Client;

pub struct CodeRequest {
    code: String,
    redirect_uri: Option<String>,
    code_verifier: Option<String>,
    /// RFC 8707 §2.2: the resources the access token is for, among those granted.
    resources: Vec<String>,
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
            .field("resources", &self.resources)
            .finish()
    }
}

impl CodeRequest {
    /// The code a device approval recorded (RFC 8628): no redirect URI, no PKCE.
    pub(super) fn of_device(code: String) -> Self {
        Self {
            code,
            redirect_uri: None,
            code_verifier: None,
            resources: Vec::new(),
        }
    }

    pub fn parse(params: &Params) -> Result<Self, OAuthError> {
        Ok(Self {
            code: params.required("code")?.to_owned(),
            redirect_uri: params.single("redirect_uri")?.map(str::to_owned),
            code_verifier: params.single("code_verifier")?.map(str::to_owned),
            resources: resource_indicators::requested(params)?,
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
    // The client's profile as it is now, not as it was at issue: a code issued before an
    // operator put the client under fapi2 is held to the profile's 60 s and PKCE too.
    let profile = ClientProfile::of(client);
    if code.created_at + profile.code_ttl(code.expires_at - code.created_at) <= ctx.now {
        return Err(OAuthError::invalid_grant("authorization code has expired"));
    }
    if profile.requires_pkce() && code.code_challenge.is_none() {
        return Err(OAuthError::invalid_grant(
            "the client's profile requires PKCE, and the code was issued without it",
        ));
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
    // RFC 9449 §10: a code bound to a DPoP key (`dpop_jkt`) only with a proof by that key;
    // refused before the code is used up, as a wrong verifier is.
    dpop::check_code_binding(code.dpop_jkt.as_deref(), ctx.dpop)?;

    // The code row references its user with ON DELETE CASCADE: a code that still exists
    // belongs to a user who still exists, so the hot path needs no user lookup.
    // The code carried the session's sign-in (`auth_time`, `amr`) to here.
    let amr = amr_of_code(code.amr.as_deref());
    let session = SessionFacts {
        user_id: &code.user_id,
        sid: code.session_id.as_deref(),
        auth_time: code.auth_time,
        amr: &amr,
        idp: super::idp_of(code.amr.as_deref()),
    };
    let resources = from_stored(code.resources.as_deref());
    let allowed = Allowed {
        client_id: &client.id,
        scope: &code.scope,
        nonce: code.nonce.as_deref(),
        acr: code.acr.as_deref(),
        claims: code.claims.as_deref(),
        resources: &resources,
    };
    let grant = user_grant(
        code.grant_id.clone(),
        session,
        allowed,
        ctx.now,
        ctx.now + ctx.config.refresh_token_absolute_ttl,
    );
    // Refused before the code is used up: the client may ask again for what was granted.
    let audience = granted_audience(&grant, request.resources)?;
    let scopes = Scopes::parse(&grant.scope).unwrap_or_default();
    // OIDC Core §11: a refresh token only for offline_access (which the authorization
    // endpoint keeps only when consented to and the client may refresh).
    let refresh = (scopes.contains(crate::protocol::OFFLINE_ACCESS)
        && client.may_use_grant(GrantType::RefreshToken))
    .then(|| first_refresh_token(&grant, ctx));
    // The access token is made first, so that an opaque one is recorded in the
    // redemption's transaction: a failed INSERT leaves the code unused, never used up
    // with its tokens lost. The user's groups are looked up by the user, as the grant
    // is stored by that transaction.
    let access = user_access(&grant, client, &scopes, &audience, GroupsOf::User, ctx)?;
    if !ctx.store.redeem_code(
        &code_hash,
        &grant,
        refresh.as_ref().map(|(_, r)| r),
        access.pending(),
        ctx.now,
    )? {
        // Lost a race with a concurrent redemption of the same code: same rule as reuse.
        ctx.store.revoke_grant(&code.grant_id, ctx.now)?;
        return Err(OAuthError::invalid_grant(
            "authorization code was already used",
        ));
    }
    let access = access.recorded();
    user_token_response(
        &grant,
        client,
        &scopes,
        access,
        IdTokenOccasion::Authentication,
        refresh.map(|(plain, _)| plain),
        ctx,
    )
}

#[cfg(test)]
mod tests {
    use super::{CodeRequest, TokenResponse, exchange};
    use crate::crypto::tokens::token_hash;
    use crate::domain::GrantType;
    use serde_json::json;

    use crate::protocol::testing::{REDIRECT_URI, TestWorld, VERIFIER};
    use crate::protocol::tokens::verify_access_token;
    use crate::protocol::{ErrorCode, OAuthError, Params};
    use crate::store::{AuthMethod, Client};

    /// The request of the client the code was issued to, as its authorization request
    /// was made.
    fn rightful(code: &str) -> CodeRequest {
        CodeRequest {
            code: code.to_owned(),
            redirect_uri: Some(REDIRECT_URI.to_owned()),
            code_verifier: Some(VERIFIER.to_owned()),
            resources: Vec::new(),
        }
    }

    fn redeem(
        world: &TestWorld,
        client: &Client,
        request: CodeRequest,
    ) -> Result<TokenResponse, OAuthError> {
        exchange(request, client, &world.ctx())
    }

    fn refused(answer: Result<TokenResponse, OAuthError>) -> ErrorCode {
        answer.unwrap_err().code
    }

    /// A confidential client, and a code issued to it for Alice with a refresh token
    /// to come (by which the tests find the grant the code makes).
    fn world_with_code() -> (TestWorld, Client, String) {
        let world = TestWorld::default();
        let alice = world.add_user("alice");
        let (client, _) = world.add_client("rp", AuthMethod::ClientSecretBasic);
        let code = world.issue_code(&client, &alice, "openid offline_access");
        (world, client, code)
    }

    /// Whether the grant behind `refresh_token` was revoked.
    fn grant_revoked(world: &TestWorld, refresh_token: &str) -> bool {
        let hash = token_hash(refresh_token);
        let (_, grant) = world.store.find_refresh_token(&hash).unwrap().unwrap();
        grant.revoked_at.is_some()
    }

    #[test]
    fn a_code_redeems_for_the_tokens_of_what_was_granted() {
        let (world, client, code) = world_with_code();
        let tokens = redeem(&world, &client, rightful(&code)).unwrap();
        assert_eq!(tokens.token_type, "Bearer");
        assert_eq!(tokens.expires_in, 3600);
        assert_eq!(tokens.scope, "offline_access openid");
        assert!(tokens.id_token.is_some(), "openid was granted");
        assert!(tokens.refresh_token.is_some(), "offline_access was granted");
    }

    #[test]
    fn a_reused_code_is_refused_and_revokes_the_grant_it_made() {
        let (world, client, code) = world_with_code();
        let first = redeem(&world, &client, rightful(&code)).unwrap();
        let refresh_token = first.refresh_token.unwrap();
        assert!(!grant_revoked(&world, &refresh_token));
        world.clock.advance(1);
        let again = redeem(&world, &client, rightful(&code));
        assert_eq!(refused(again), ErrorCode::InvalidGrant);
        assert!(grant_revoked(&world, &refresh_token), "RFC 6749 §4.1.2");
    }

    #[test]
    fn another_client_presenting_a_used_code_is_refused_and_revokes_nothing() {
        let (world, client, code) = world_with_code();
        let (other, _) = world.add_client("other", AuthMethod::ClientSecretBasic);
        let first = redeem(&world, &client, rightful(&code)).unwrap();
        let stolen = redeem(&world, &other, rightful(&code));
        assert_eq!(refused(stolen), ErrorCode::InvalidGrant);
        assert!(!grant_revoked(&world, &first.refresh_token.unwrap()));
    }

    #[test]
    fn a_wrong_or_missing_pkce_verifier_is_refused() {
        let (world, client, code) = world_with_code();
        let wrong = CodeRequest {
            code_verifier: Some("a-verifier-of-the-right-form-but-not-the-challenged-one".into()),
            ..rightful(&code)
        };
        assert_eq!(
            refused(redeem(&world, &client, wrong)),
            ErrorCode::InvalidGrant
        );
        let missing = CodeRequest {
            code_verifier: None,
            ..rightful(&code)
        };
        assert_eq!(
            refused(redeem(&world, &client, missing)),
            ErrorCode::InvalidGrant
        );
    }

    #[test]
    fn another_redirect_uri_or_none_when_the_request_sent_one_is_refused() {
        let (world, client, code) = world_with_code();
        let moved = CodeRequest {
            redirect_uri: Some("https://rp.example/other".into()),
            ..rightful(&code)
        };
        assert_eq!(
            refused(redeem(&world, &client, moved)),
            ErrorCode::InvalidGrant
        );
        let left_out = CodeRequest {
            redirect_uri: None,
            ..rightful(&code)
        };
        assert_eq!(
            refused(redeem(&world, &client, left_out)),
            ErrorCode::InvalidGrant
        );
    }

    #[test]
    fn a_code_whose_request_named_no_redirect_uri_redeems_without_one() {
        let world = TestWorld::default();
        let alice = world.add_user("alice");
        let (client, _) = world.add_client("rp", AuthMethod::ClientSecretBasic);
        let code = world.issue_code_as(&client, &alice, "openid", false);
        let bare = CodeRequest {
            redirect_uri: None,
            ..rightful(&code)
        };
        assert!(redeem(&world, &client, bare).is_ok());
    }

    #[test]
    fn a_refresh_token_comes_only_with_offline_access_to_a_client_that_may_refresh() {
        let world = TestWorld::default();
        let alice = world.add_user("alice");
        let (refreshing, _) = world.add_client("rp", AuthMethod::ClientSecretBasic);
        let online = world.issue_code(&refreshing, &alice, "openid");
        let tokens = redeem(&world, &refreshing, rightful(&online)).unwrap();
        assert!(tokens.refresh_token.is_none(), "no offline_access");
        let (mut plain, _) = world.add_client("plain", AuthMethod::ClientSecretBasic);
        plain.grant_types = vec![GrantType::AuthorizationCode];
        let offline = world.issue_code(&plain, &alice, "openid offline_access");
        let tokens = redeem(&world, &plain, rightful(&offline)).unwrap();
        assert!(
            tokens.refresh_token.is_none(),
            "a client without the refresh_token grant"
        );
    }

    #[test]
    fn a_code_redeems_until_its_lifetime_is_over_and_not_after() {
        let world = TestWorld::default();
        let alice = world.add_user("alice");
        let (client, _) = world.add_client("rp", AuthMethod::ClientSecretBasic);
        let in_time = world.issue_code(&client, &alice, "openid");
        let late = world.issue_code(&client, &alice, "openid");
        let lifetime = world.config.authorization_code_ttl.as_secs();
        world.clock.advance(lifetime - 1);
        redeem(&world, &client, rightful(&in_time)).unwrap();
        world.clock.advance(1);
        let expired = redeem(&world, &client, rightful(&late));
        assert_eq!(refused(expired), ErrorCode::InvalidGrant);
    }

    /// The `aud` of an access token of `tokens`.
    fn audience(world: &TestWorld, tokens: &TokenResponse) -> serde_json::Value {
        verify_access_token(&tokens.access_token, None, &world.ctx())
            .unwrap()
            .aud
    }

    fn resources(names: &[&str]) -> Vec<String> {
        names.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn the_access_token_is_for_the_resources_the_authorization_request_named() {
        let world = TestWorld::default();
        let alice = world.add_user("alice");
        let (client, _) = world.add_client("rp", AuthMethod::ClientSecretBasic);
        let one = world.issue_code_for(&client, &alice, "openid", &["https://api.example"]);
        let tokens = redeem(&world, &client, rightful(&one)).unwrap();
        assert_eq!(audience(&world, &tokens), json!("https://api.example"));
        let two = world.issue_code_for(&client, &alice, "openid", &["https://a.example", "urn:b"]);
        let tokens = redeem(&world, &client, rightful(&two)).unwrap();
        assert_eq!(
            audience(&world, &tokens),
            json!(["https://a.example", "urn:b"])
        );
        let none = world.issue_code(&client, &alice, "openid");
        let tokens = redeem(&world, &client, rightful(&none)).unwrap();
        assert_eq!(audience(&world, &tokens), json!(world.config.issuer));
    }

    #[test]
    fn a_token_request_may_narrow_the_resources_but_not_widen_them() {
        let world = TestWorld::default();
        let alice = world.add_user("alice");
        let (client, _) = world.add_client("rp", AuthMethod::ClientSecretBasic);
        let code = world.issue_code_for(&client, &alice, "openid", &["https://a.example", "urn:b"]);
        let wider = CodeRequest {
            resources: resources(&["https://a.example", "https://c.example"]),
            ..rightful(&code)
        };
        assert_eq!(
            refused(redeem(&world, &client, wider)),
            ErrorCode::InvalidTarget
        );
        // The refusal did not use the code up.
        let narrower = CodeRequest {
            resources: resources(&["urn:b"]),
            ..rightful(&code)
        };
        let tokens = redeem(&world, &client, narrower).unwrap();
        assert_eq!(audience(&world, &tokens), json!("urn:b"));
        let ungranted = world.issue_code(&client, &alice, "openid");
        let asked = CodeRequest {
            resources: resources(&["https://a.example"]),
            ..rightful(&ungranted)
        };
        assert_eq!(
            refused(redeem(&world, &client, asked)),
            ErrorCode::InvalidTarget
        );
    }

    #[test]
    fn a_code_bound_to_a_dpop_key_redeems_only_with_a_proof_by_that_key() {
        let (world, client, code) = world_with_code();
        let jkt = "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I";
        let issued = world.store.find_code(&token_hash(&code)).unwrap().unwrap();
        world
            .store
            .insert_code(&crate::store::AuthorizationCode {
                code_hash: token_hash("bound-code"),
                grant_id: "bound-grant".into(),
                dpop_jkt: Some(jkt.into()),
                ..issued
            })
            .unwrap();
        let with = |key: &str| crate::protocol::dpop::Binding {
            jkt: key.to_owned(),
            refresh_bound: false,
        };
        let ctx = world.ctx();
        let unproved = exchange(rightful("bound-code"), &client, &ctx);
        assert_eq!(refused(unproved), ErrorCode::InvalidGrant);
        let other = with("NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs");
        let by_other = exchange(
            rightful("bound-code"),
            &client,
            &ctx.with_dpop(Some(&other)),
        );
        assert_eq!(refused(by_other), ErrorCode::InvalidGrant);
        // The refusals did not use the code up.
        let right = with(jkt);
        assert!(
            exchange(
                rightful("bound-code"),
                &client,
                &ctx.with_dpop(Some(&right))
            )
            .is_ok()
        );
    }

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
