//! The refresh token grant (RFC 6749 §6, OIDC Core §12) with rotation (RFC 9700 §4.14.2).
//!
//! # Rotation with a grace window
//!
//! Every refresh token `T` is single use; using it yields a successor `S`. Replaying a
//! used `T` is evidence that it leaked, and revokes the whole family (the grant, every
//! refresh token of it and every access token issued from it). But two tabs, a phone
//! waking up or a retried request also use `T` twice, within moments, and must not lose
//! the user's session. So:
//!
//! 1. `T` is looked up by its hash, with its grant. Unknown, expired, or belonging to a
//!    revoked or ended grant: `invalid_grant`. A `T` of another client is refused and
//!    revokes nothing: only the owner's replay is evidence of theft.
//! 2. The successor is *derived*, not drawn: `S = HMAC(KEK, "refresh-successor", T)`.
//!    Every use of `T` computes the same `S`; nobody without the key-encryption key can.
//! 3. If `T` is unconsumed, one atomic step marks it consumed (recording `hash(S)`) and
//!    inserts `S`. Of concurrent uses exactly one wins that step.
//! 4. Every other use finds `T` consumed. Within `refresh_token_grace_period` seconds of
//!    the consumption (0 turns the window off) it is a retry, not theft: it is answered
//!    with the same `S` (the family keeps a single live head) and a fresh access token,
//!    as long as `S` is unused; once `S` was used too, the retry is refused and nothing is
//!    revoked. Later it is a replay: the grant is revoked and the request refused with
//!    `invalid_grant`, whatever else the request says (a bad `scope` does not dodge it).
//!
//! A client under the fapi2 profile is not rotated (FAPI 2.0 §5.3.2.1 allows rotation
//! only if a retry with the previous token succeeds, which a grace window bounds): a
//! refresh answers with the presented token, unconsumed, and reuse is no evidence of
//! anything. Its token then dies `refresh_token_ttl` after its issue, not after its use.
//!
//! A successor lives `refresh_token_ttl` from its issue (so an unused token dies), and
//! never beyond the grant's absolute end (`refresh_token_absolute_ttl` from sign-in).
//! The refreshed ID token repeats `iss`, `sub`, `aud`, `auth_time` and `sid` of the grant
//! and leaves out `nonce` (OIDC Core §12.2).

use super::{
    GroupsOf, TokenResponse, UserAccess, granted_audience, requested_scope, user_access,
    user_token_response,
};
use crate::crypto::tokens::{random_token, token_hash};
use crate::domain::Scopes;
use crate::protocol::profile::ClientProfile;
use crate::protocol::tokens::IdTokenOccasion;
use crate::protocol::{Context, ErrorCode, OAuthError, Params};
use crate::protocol::{dpop, resource_indicators};
use crate::store::{Client, Grant, RefreshToken};

pub struct RefreshRequest {
    refresh_token: String,
    scope: Option<Scopes>,
    /// RFC 8707 §2.2: the resources the access token is for, among those granted.
    resources: Vec<String>,
}

/// The refresh token is a credential: never in a log line.
impl std::fmt::Debug for RefreshRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RefreshRequest")
            .field("refresh_token", &"[redacted]")
            .field("scope", &self.scope)
            .field("resources", &self.resources)
            .finish()
    }
}

impl RefreshRequest {
    pub fn parse(params: &Params) -> Result<Self, OAuthError> {
        Ok(Self {
            refresh_token: params.required("refresh_token")?.to_owned(),
            scope: requested_scope(params)?,
            resources: resource_indicators::requested(params)?,
        })
    }
}

const SUCCESSOR: &str = "refresh-successor";

fn record(token: &str, grant: &Grant, ctx: &Context<'_>) -> RefreshToken {
    RefreshToken {
        token_hash: token_hash(token),
        grant_id: grant.id.clone(),
        created_at: ctx.now,
        expires_at: (ctx.now + ctx.config.refresh_token_ttl).min(grant.expires_at),
        consumed_at: None,
        successor_hash: None,
    }
}

/// The first refresh token of a new grant: the token and its stored record.
/// Bound to the key of the request's DPoP proof when the client is public (RFC 9449 §5).
pub fn first_refresh_token(grant: &Grant, ctx: &Context<'_>) -> (String, RefreshToken) {
    let token = dpop::bind_refresh_token(random_token(32), ctx.dpop);
    let stored = record(&token, grant, ctx);
    (token, stored)
}

fn refused() -> OAuthError {
    OAuthError::invalid_grant("the refresh token is invalid, expired or revoked")
}

pub fn exchange(
    request: RefreshRequest,
    client: &Client,
    ctx: &Context<'_>,
) -> Result<TokenResponse, OAuthError> {
    let presented_hash = token_hash(&request.refresh_token);
    let (token, grant) = ctx
        .store
        .find_refresh_token(&presented_hash)?
        .ok_or_else(refused)?;
    if grant.client_id != client.id {
        return Err(refused());
    }
    if !grant.is_live(ctx.now) || token.expires_at <= ctx.now {
        return Err(refused());
    }
    // RFC 9449 §5: a bound token only with a proof by its key; checked before anything is
    // rotated or revoked, so that a stolen token without the key changes nothing.
    dpop::check_refresh_binding(&request.refresh_token, ctx.dpop)?;
    // RFC 6749 §6: the requested scope "MUST NOT include any scope not originally granted".
    // Decided now, enforced below: before a rotation (so a refused request uses nothing
    // up), but after the reuse check (so a replay cannot dodge it with a bad scope).
    let granted = Scopes::parse(&grant.scope).unwrap_or_default();
    let scope = match &request.scope {
        Some(s) if !s.is_subset(&granted) => None,
        Some(s) => Some(s.clone()),
        None => Some(granted),
    };
    let widened = || {
        OAuthError::new(
            ErrorCode::InvalidScope,
            "the requested scope exceeds the scope originally granted",
        )
    };
    // RFC 8707 §2.2: the grant's resources, or fewer; decided and enforced as the scope.
    let audience = granted_audience(&grant, request.resources);

    // FAPI 2.0 §5.3.2.1: no rotation for a profiled client. Its unconsumed token is
    // answered with itself and stays usable, so a retry after a lost response succeeds
    // (a token consumed before the client was profiled goes through the rules below).
    let keeps_token =
        !ClientProfile::of(client).rotates_refresh_tokens() && token.consumed_at.is_none();
    let successor = dpop::successor_with_binding(
        ctx.kek.derive(SUCCESSOR, &request.refresh_token),
        &request.refresh_token,
        ctx.dpop,
    );
    let successor_record = record(&successor, &grant, ctx);
    // The access token, if made before a rotation (still to be recorded if it lost).
    let mut early = None;
    // The token as it was when found consumed: before this request, or by a concurrent
    // one that won the rotation.
    let used = match token.consumed_at {
        None => {
            if scope.is_none() {
                return Err(widened());
            }
            if let Err(error) = audience {
                return Err(error);
            }
            if keeps_token {
                return finish(
                    &grant,
                    client,
                    scope,
                    audience,
                    request.refresh_token,
                    None,
                    ctx,
                );
            }
            // Made before the rotation, so that an opaque one is recorded in its
            // transaction (one INSERT more, no round trip of its own).
            early = match (&scope, &audience) {
                (Some(scope), Ok(audience)) => Some(user_access(
                    &grant,
                    client,
                    scope,
                    audience,
                    GroupsOf::StoredGrant,
                    ctx,
                )?),
                _ => None,
            };
            let rotated = match ctx.store.rotate_refresh_token(
                &presented_hash,
                &successor_record,
                early.as_ref().and_then(UserAccess::pending),
                ctx.now,
            ) {
                // Revoked (a sign-out) between the lookup and the rotation.
                Err(crate::store::StoreError::Gone) => return Err(refused()),
                other => other?,
            };
            if rotated {
                early = early.map(UserAccess::recorded);
                None
            } else {
                Some(
                    ctx.store
                        .find_refresh_token(&presented_hash)?
                        .map(|(t, _)| t)
                        .ok_or_else(refused)?,
                )
            }
        }
        Some(_) => Some(token),
    };
    if let Some(used) = used {
        let grace = ctx.config.refresh_token_grace_period.as_secs();
        let within_grace = grace > 0 && used.consumed_at.is_some_and(|at| ctx.now - at <= grace);
        let same_successor = used.successor_hash.as_deref() == Some(&successor_record.token_hash);
        if !(within_grace && same_successor) {
            // RFC 9700 §4.14.2: a rotated token used again ends the whole family.
            ctx.store.revoke_grant(&grant.id, ctx.now)?;
            crate::audit::refresh_token_reused(&client.id, &grant.id);
            return Err(refused());
        }
        // A retry gets the successor only while that is still the family's live head:
        // once the successor itself was used, handing it out would let whoever holds the
        // old token follow the user one step behind. Refused, but nothing is revoked: a
        // slow tab of the user's own is the likelier sender.
        let head = ctx.store.find_refresh_token(&successor_record.token_hash)?;
        if !head.is_some_and(|(t, _)| t.consumed_at.is_none() && t.expires_at > ctx.now) {
            return Err(refused());
        }
    }
    finish(&grant, client, scope, audience, successor, early, ctx)
}

/// The token response of a refresh that was allowed: a fresh access (and ID) token (the
/// one made before the rotation, if any), and `refresh_token` (the successor, or the
/// presented token itself when not rotated).
fn finish(
    grant: &Grant,
    client: &Client,
    scope: Option<Scopes>,
    audience: Result<Vec<String>, OAuthError>,
    refresh_token: String,
    early: Option<UserAccess>,
    ctx: &Context<'_>,
) -> Result<TokenResponse, OAuthError> {
    let scope = scope.ok_or_else(|| {
        OAuthError::new(
            ErrorCode::InvalidScope,
            "the requested scope exceeds the scope originally granted",
        )
    })?;
    let audience = audience?;
    let access = match early {
        Some(access) => access,
        None => user_access(grant, client, &scope, &audience, GroupsOf::StoredGrant, ctx)?,
    };
    user_token_response(
        grant,
        client,
        &scope,
        access,
        IdTokenOccasion::Refresh,
        Some(refresh_token),
        ctx,
    )
}

#[cfg(test)]
mod tests {
    use super::{RefreshRequest, TokenResponse, exchange};
    use crate::crypto::tokens::token_hash;
    use crate::domain::Seconds;
    use crate::protocol::grants::authorization_code::{self, CodeRequest};
    use crate::protocol::testing::{self, ISSUER, REDIRECT_URI, TestWorld, VERIFIER};
    use crate::protocol::tokens::verify_access_token;
    use crate::protocol::{ErrorCode, OAuthError, Params, ProtocolConfig};
    use crate::store::{AuthMethod, Client};
    use serde_json::json;

    /// A client of Alice's that redeemed a code with `offline_access`, and the refresh
    /// token it got.
    fn signed_in(world: &TestWorld) -> (Client, String) {
        let alice = world.add_user("alice");
        let (client, _) = world.add_client("rp", AuthMethod::ClientSecretBasic);
        let code = world.issue_code(&client, &alice, "openid offline_access");
        let params = Params::new(vec![
            ("code".to_owned(), code),
            ("redirect_uri".to_owned(), REDIRECT_URI.to_owned()),
            ("code_verifier".to_owned(), VERIFIER.to_owned()),
        ]);
        let request = CodeRequest::parse(&params).unwrap();
        let tokens = authorization_code::exchange(request, &client, &world.ctx()).unwrap();
        (client, tokens.refresh_token.unwrap())
    }

    fn refresh(
        world: &TestWorld,
        client: &Client,
        token: &str,
    ) -> Result<TokenResponse, OAuthError> {
        let request = RefreshRequest {
            refresh_token: token.to_owned(),
            scope: None,
            resources: Vec::new(),
        };
        exchange(request, client, &world.ctx())
    }

    /// The successor a refresh answered with.
    fn successor(answer: Result<TokenResponse, OAuthError>) -> String {
        answer.unwrap().refresh_token.unwrap()
    }

    fn refused(answer: Result<TokenResponse, OAuthError>) -> ErrorCode {
        answer.unwrap_err().code
    }

    /// Whether the grant behind `token` (used or not) was revoked.
    fn family_revoked(world: &TestWorld, token: &str) -> bool {
        let (_, grant) = world
            .store
            .find_refresh_token(&token_hash(token))
            .unwrap()
            .unwrap();
        grant.revoked_at.is_some()
    }

    #[test]
    fn a_refresh_issues_a_successor_and_records_the_old_token_as_used_by_it() {
        let world = TestWorld::default();
        let (client, first) = signed_in(&world);
        world.clock.advance(10);
        let second = successor(refresh(&world, &client, &first));
        assert_ne!(second, first);
        let (used, _) = world
            .store
            .find_refresh_token(&token_hash(&first))
            .unwrap()
            .unwrap();
        assert_eq!(used.consumed_at, Some(world.ctx().now));
        assert_eq!(used.successor_hash, Some(token_hash(&second)));
        successor(refresh(&world, &client, &second));
    }

    #[test]
    fn once_its_successor_was_used_the_old_token_gets_nothing_and_revokes_nothing() {
        let world = TestWorld::default();
        let (client, first) = signed_in(&world);
        let second = successor(refresh(&world, &client, &first));
        let third = successor(refresh(&world, &client, &second));
        assert_eq!(
            refused(refresh(&world, &client, &first)),
            ErrorCode::InvalidGrant
        );
        assert!(
            !family_revoked(&world, &first),
            "a slow tab, likelier than a thief"
        );
        successor(refresh(&world, &client, &third));
    }

    #[test]
    fn a_retry_within_the_grace_period_gets_the_same_successor_and_a_new_access_token() {
        let world = TestWorld::default();
        let (client, first) = signed_in(&world);
        let answer = refresh(&world, &client, &first).unwrap();
        world
            .clock
            .advance(world.config.refresh_token_grace_period.as_secs());
        let retry = refresh(&world, &client, &first).unwrap();
        assert_eq!(retry.refresh_token, answer.refresh_token, "one live head");
        assert_ne!(retry.access_token, answer.access_token);
        assert!(!family_revoked(&world, &first));
        successor(refresh(&world, &client, &answer.refresh_token.unwrap()));
    }

    #[test]
    fn a_used_token_presented_after_the_grace_period_revokes_the_family() {
        let world = TestWorld::default();
        let (client, first) = signed_in(&world);
        let second = successor(refresh(&world, &client, &first));
        world
            .clock
            .advance(world.config.refresh_token_grace_period.as_secs() + 1);
        assert_eq!(
            refused(refresh(&world, &client, &first)),
            ErrorCode::InvalidGrant
        );
        assert!(family_revoked(&world, &first), "RFC 9700 §4.14.2");
        assert_eq!(
            refused(refresh(&world, &client, &second)),
            ErrorCode::InvalidGrant,
            "the family is dead"
        );
    }

    #[test]
    fn with_no_grace_period_even_a_retry_in_the_same_second_revokes_the_family() {
        let world = TestWorld::with_config(ProtocolConfig {
            refresh_token_grace_period: Seconds::ZERO,
            ..testing::config()
        });
        let (client, first) = signed_in(&world);
        successor(refresh(&world, &client, &first));
        assert_eq!(
            refused(refresh(&world, &client, &first)),
            ErrorCode::InvalidGrant
        );
        assert!(family_revoked(&world, &first));
    }

    #[test]
    fn another_clients_refresh_token_is_refused_and_revokes_nothing() {
        let world = TestWorld::default();
        let (_, token) = signed_in(&world);
        let (other, _) = world.add_client("other", AuthMethod::ClientSecretBasic);
        assert_eq!(
            refused(refresh(&world, &other, &token)),
            ErrorCode::InvalidGrant
        );
        assert!(!family_revoked(&world, &token));
    }

    /// A refresh token of a grant whose authorization request named two resources.
    fn signed_in_for_apis(world: &TestWorld) -> (Client, String) {
        let alice = world.add_user("alice");
        let (client, _) = world.add_client("rp", AuthMethod::ClientSecretBasic);
        let code = world.issue_code_for(
            &client,
            &alice,
            "openid offline_access",
            &["https://a.example", "urn:b"],
        );
        let params = Params::new(vec![
            ("code".to_owned(), code),
            ("redirect_uri".to_owned(), REDIRECT_URI.to_owned()),
            ("code_verifier".to_owned(), VERIFIER.to_owned()),
        ]);
        let request = CodeRequest::parse(&params).unwrap();
        let tokens = authorization_code::exchange(request, &client, &world.ctx()).unwrap();
        (client, tokens.refresh_token.unwrap())
    }

    fn refresh_for(
        world: &TestWorld,
        client: &Client,
        token: &str,
        resources: &[&str],
    ) -> Result<TokenResponse, OAuthError> {
        let request = RefreshRequest {
            refresh_token: token.to_owned(),
            scope: None,
            resources: resources.iter().map(|r| (*r).to_owned()).collect(),
        };
        exchange(request, client, &world.ctx())
    }

    fn audience(world: &TestWorld, tokens: &TokenResponse) -> serde_json::Value {
        verify_access_token(&tokens.access_token, None, &world.ctx())
            .unwrap()
            .aud
    }

    #[test]
    fn a_refresh_keeps_the_grants_resources_or_narrows_them_as_asked() {
        let world = TestWorld::default();
        let (client, first) = signed_in_for_apis(&world);
        let kept = refresh(&world, &client, &first).unwrap();
        assert_eq!(
            audience(&world, &kept),
            json!(["https://a.example", "urn:b"])
        );
        let narrowed = refresh_for(&world, &client, &kept.refresh_token.unwrap(), &["urn:b"]);
        let narrowed = narrowed.unwrap();
        assert_eq!(audience(&world, &narrowed), json!("urn:b"));
        // Narrowing one token does not narrow the grant.
        let again = refresh(&world, &client, &narrowed.refresh_token.unwrap()).unwrap();
        assert_eq!(
            audience(&world, &again),
            json!(["https://a.example", "urn:b"])
        );
    }

    #[test]
    fn a_refresh_for_a_resource_not_granted_is_refused_and_uses_nothing_up() {
        let world = TestWorld::default();
        let (client, first) = signed_in_for_apis(&world);
        assert_eq!(
            refused(refresh_for(&world, &client, &first, &["https://c.example"])),
            ErrorCode::InvalidTarget
        );
        successor(refresh(&world, &client, &first));
        let plain_world = TestWorld::default();
        let (plain, token) = signed_in(&plain_world);
        assert_eq!(
            refused(refresh_for(
                &plain_world,
                &plain,
                &token,
                &["https://a.example"]
            )),
            ErrorCode::InvalidTarget,
            "a grant without resources has none to narrow to"
        );
        let kept = refresh(&plain_world, &plain, &token).unwrap();
        assert_eq!(audience(&plain_world, &kept), json!(ISSUER));
    }

    #[test]
    fn debug_output_never_contains_the_refresh_token() {
        let params = Params::from_urlencoded("refresh_token=the-token-itself").unwrap();
        let shown = format!("{:?}", RefreshRequest::parse(&params).unwrap());
        assert!(!shown.contains("the-token-itself"), "{shown}");
        assert!(shown.contains("[redacted]"), "{shown}");
    }
}
