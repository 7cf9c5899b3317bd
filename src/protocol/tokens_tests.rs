//! Access tokens of either format through the grants that issue them and the checks that
//! take them: an opaque one resolves to the claims a JWT would carry, and dies as a JWT
//! does.

use super::{resolve_access_token, verify_access_token};
use crate::crypto::tokens::token_hash;
use crate::domain::AccessTokenFormat;
use crate::protocol::grants::authorization_code::{self, CodeRequest};
use crate::protocol::grants::refresh_token::{self, RefreshRequest};
use crate::protocol::testing::{ISSUER, REDIRECT_URI, TestWorld, VERIFIER};
use crate::protocol::{ErrorCode, Params, opaque_token, revocation};
use crate::store::{AuthMethod, Client};

/// Alice's tokens from a client of `format` (code flow with offline_access).
fn signed_in(world: &TestWorld, format: AccessTokenFormat) -> (Client, String, String) {
    let alice = world.add_user("alice");
    let (client, _) = world.add_client_of_format("rp", AuthMethod::ClientSecretBasic, format);
    let code = world.issue_code(&client, &alice, "openid offline_access");
    let params = Params::new(vec![
        ("code".to_owned(), code),
        ("redirect_uri".to_owned(), REDIRECT_URI.to_owned()),
        ("code_verifier".to_owned(), VERIFIER.to_owned()),
    ]);
    let request = CodeRequest::parse(&params).unwrap();
    let tokens = authorization_code::exchange(request, &client, &world.ctx()).unwrap();
    (client, tokens.access_token, tokens.refresh_token.unwrap())
}

fn refresh(world: &TestWorld, client: &Client, token: &str) -> (String, String) {
    let params = Params::new(vec![("refresh_token".to_owned(), token.to_owned())]);
    let request = RefreshRequest::parse(&params).unwrap();
    let tokens = refresh_token::exchange(request, client, &world.ctx()).unwrap();
    (tokens.access_token, tokens.refresh_token.unwrap())
}

fn live(world: &TestWorld, token: &str) -> bool {
    match verify_access_token(token, None, &world.ctx()) {
        Ok(_) => true,
        Err(e) if e.code == ErrorCode::InvalidToken => false,
        Err(e) => panic!("{e:?}"),
    }
}

#[test]
fn an_opaque_clients_token_is_a_stored_reference_that_resolves_to_the_jwts_claims() {
    let world = TestWorld::default();
    let (_, access, _) = signed_in(&world, AccessTokenFormat::Opaque);
    assert!(opaque_token::looks_opaque(&access), "{access}");
    let row = world
        .store
        .find_opaque_access_token(&token_hash(&access))
        .unwrap()
        .expect("recorded with the redemption");
    assert!(row.grant_id.is_some());
    let claims = verify_access_token(&access, Some(ISSUER), &world.ctx()).unwrap();
    assert_eq!(claims.iss, ISSUER);
    assert_eq!(claims.sub, "alice-id");
    assert_eq!(claims.client_id, "rp");
    assert_eq!(claims.aud, serde_json::json!(ISSUER));
    assert_eq!(claims.scope, "offline_access openid");
    assert_eq!(claims.exp - claims.iat, 3600);
    assert_eq!(claims.gid, row.grant_id);
}

#[test]
fn a_jwt_clients_token_is_still_a_jwt_and_stores_nothing() {
    let world = TestWorld::default();
    let (_, access, _) = signed_in(&world, AccessTokenFormat::Jwt);
    assert_eq!(access.matches('.').count(), 2);
    assert!(
        world
            .store
            .find_opaque_access_token(&token_hash(&access))
            .unwrap()
            .is_none()
    );
    assert!(live(&world, &access));
}

#[test]
fn a_refresh_issues_an_opaque_token_recorded_with_the_rotation() {
    let world = TestWorld::default();
    let (client, first, refresh_token) = signed_in(&world, AccessTokenFormat::Opaque);
    world.clock.advance(10);
    let (second, _) = refresh(&world, &client, &refresh_token);
    assert_ne!(first, second);
    assert!(opaque_token::looks_opaque(&second));
    assert!(live(&world, &first) && live(&world, &second));
}

#[test]
fn an_opaque_token_expires_and_is_for_its_audience_only() {
    let world = TestWorld::default();
    let (_, access, _) = signed_in(&world, AccessTokenFormat::Opaque);
    let ctx = world.ctx();
    assert!(
        resolve_access_token(&access, &ctx, Some("https://other.example"))
            .unwrap()
            .is_none()
    );
    world.clock.advance(3599);
    assert!(live(&world, &access));
    world.clock.advance(1);
    assert!(!live(&world, &access), "expired at exp");
}

#[test]
fn an_opaque_token_dies_when_revoked_or_with_its_grant() {
    let world = TestWorld::default();
    let (client, access, refresh_token) = signed_in(&world, AccessTokenFormat::Opaque);
    revocation::revoke(&access, &client, &world.ctx()).unwrap();
    assert!(!live(&world, &access), "revoked (RFC 7009)");

    let (second, _) = refresh(&world, &client, &refresh_token);
    assert!(live(&world, &second));
    revocation::revoke(&refresh_token, &client, &world.ctx()).unwrap();
    assert!(
        !live(&world, &second),
        "the grant went with its refresh token"
    );
}

#[test]
fn a_reused_refresh_token_kills_the_opaque_tokens_of_its_family() {
    let world = TestWorld::default();
    let (client, _, first) = signed_in(&world, AccessTokenFormat::Opaque);
    let (access, _) = refresh(&world, &client, &first);
    world.clock.advance(60);
    let params = Params::new(vec![("refresh_token".to_owned(), first)]);
    let request = RefreshRequest::parse(&params).unwrap();
    assert!(refresh_token::exchange(request, &client, &world.ctx()).is_err());
    assert!(!live(&world, &access));
}

#[test]
fn unknown_references_resolve_to_nothing() {
    let world = TestWorld::default();
    let ctx = world.ctx();
    assert!(
        resolve_access_token(&opaque_token::mint(), &ctx, None)
            .unwrap()
            .is_none()
    );
    assert!(resolve_access_token("a.b.c", &ctx, None).unwrap().is_none());
}
