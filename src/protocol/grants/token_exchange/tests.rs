//! Token exchange without HTTP: an in-memory world, a code redeemed for the subject
//! token, the exchanging service client with its policy.

use super::*;
use crate::crypto::{KeyAlgorithm, SigningKey};
use crate::domain::{ClientMetadata, Clock, GrantType};
use crate::protocol::grants::{TokenRequest, exchange as token_request};
use crate::protocol::testing::{REDIRECT_URI, TestWorld, VERIFIER};
use crate::protocol::tokens::decode_access_token;
use crate::store::AuthMethod;

const API: &str = "https://api.example";
/// The exchanging service's own resource: subject tokens are addressed to it.
const SVC: &str = "https://svc.example";

fn params(pairs: &[(&str, &str)]) -> Params {
    Params::new(
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect(),
    )
}

/// Alice's tokens from the relying party `rp` (code flow, `openid profile`), the access
/// token addressed to the service (`resource=SVC`).
fn alice_tokens(world: &TestWorld) -> TokenResponse {
    let alice = world.add_user("alice");
    let (rp, _) = world.add_client("rp", AuthMethod::ClientSecretBasic);
    let code = world.issue_code_for(&rp, &alice, "openid profile", &[SVC]);
    redeem(world, &rp, &code)
}

/// The tokens for a code, redeemed by `client`.
fn redeem(world: &TestWorld, client: &Client, code: &str) -> TokenResponse {
    let request = TokenRequest::parse(&params(&[
        ("grant_type", "authorization_code"),
        ("code", code),
        ("redirect_uri", REDIRECT_URI),
        ("code_verifier", VERIFIER),
    ]))
    .unwrap();
    token_request(request, client, None, &world.ctx()).unwrap()
}

/// The exchanging service: the grant, and a policy for `API` (or none).
fn service(world: &TestWorld, policy: Option<ExchangePolicy>) -> Client {
    // A fresh id each time: a test may have several.
    let id = format!("svc-{}", crate::crypto::tokens::random_token(6));
    let (mut svc, _) = world.add_client(&id, AuthMethod::ClientSecretBasic);
    svc.grant_types = vec![
        GrantType::TokenExchange,
        GrantType::ClientCredentials,
        GrantType::AuthorizationCode,
    ];
    svc.resources = vec![SVC.into()];
    svc.metadata = ClientMetadata {
        token_exchange: policy,
        ..svc.metadata
    };
    // Stored as used: the tokens it is issued live only while it exists.
    world.store.delete_client(&id).unwrap();
    world.store.create_client(&svc).unwrap();
    svc
}

/// The client's own `client_credentials` token: an actor token for its exchanges.
fn own_token(world: &TestWorld, client: &Client) -> String {
    let request = TokenRequest::parse(&params(&[("grant_type", "client_credentials")])).unwrap();
    token_request(request, client, None, &world.ctx())
        .unwrap()
        .access_token
}

fn policy(impersonation: bool) -> Option<ExchangePolicy> {
    Some(ExchangePolicy {
        audiences: vec![API.into(), "billing".into()],
        impersonation,
    })
}

fn exchange_with(
    world: &TestWorld,
    client: &Client,
    pairs: &[(&str, &str)],
) -> Result<TokenResponse, OAuthError> {
    let mut all = vec![("grant_type", GrantType::TokenExchange.as_str())];
    all.extend_from_slice(pairs);
    let request = TokenRequest::parse(&params(&all))?;
    token_request(request, client, None, &world.ctx())
}

fn code_of(result: Result<TokenResponse, OAuthError>) -> ErrorCode {
    result.map(|_| ()).unwrap_err().code
}

#[test]
fn an_impersonating_exchange_gives_a_narrower_token_for_the_audience() {
    let world = TestWorld::default();
    let subject = alice_tokens(&world).access_token;
    let svc = service(&world, policy(true));
    let issued = exchange_with(
        &world,
        &svc,
        &[
            ("subject_token", &subject),
            ("subject_token_type", ACCESS_TOKEN_TYPE),
            ("audience", "billing"),
            ("scope", "profile"),
            ("requested_token_type", ACCESS_TOKEN_TYPE),
        ],
    )
    .unwrap();
    assert_eq!(issued.issued_token_type, Some(ACCESS_TOKEN_TYPE));
    assert_eq!(issued.token_type, "Bearer");
    assert_eq!(issued.scope, "profile");
    assert!(issued.refresh_token.is_none() && issued.id_token.is_none());
    let claims = decode_access_token(&issued.access_token, &world.ctx(), None).unwrap();
    assert_eq!(claims.aud, json!("billing"));
    assert_eq!(claims.client_id, svc.id);
    assert_eq!(claims.sub, "alice-id");
    assert!(claims.act.is_none());
    let subject_claims = decode_access_token(&subject, &world.ctx(), None).unwrap();
    assert_eq!(claims.gid, subject_claims.gid, "the subject's grant");
    assert!(claims.exp <= subject_claims.exp);
    let events = world.store.list_audit_events(None, 5).unwrap();
    let event = events
        .iter()
        .find(|e| e.action == "token.exchanged")
        .unwrap();
    assert_eq!(event.actor, format!("client:{}", svc.id));
    let details: Value = serde_json::from_str(event.details.as_deref().unwrap()).unwrap();
    assert_eq!(details["subject"], "alice-id");
    assert_eq!(details["audience"], json!(["billing"]));
}

#[test]
fn the_issued_token_never_outlives_the_subject_token() {
    let world = TestWorld::default();
    let subject = alice_tokens(&world).access_token;
    world.clock.advance(3000);
    let svc = service(&world, policy(true));
    let issued = exchange_with(
        &world,
        &svc,
        &[
            ("subject_token", &subject),
            ("subject_token_type", ACCESS_TOKEN_TYPE),
            ("resource", API),
        ],
    )
    .unwrap();
    assert_eq!(issued.expires_in, 600);
    let claims = decode_access_token(&issued.access_token, &world.ctx(), None).unwrap();
    assert_eq!(claims.aud, json!(API));
}

#[test]
fn delegation_names_the_actor_and_nests_the_earlier_ones() {
    let world = TestWorld::default();
    let tokens = alice_tokens(&world);
    // Two services: the first exchanges Alice's token for the second (an audience of
    // its policy: the second's client id), acting itself; the second goes on to the API.
    let second = service(&world, policy(false));
    let first = service(
        &world,
        Some(ExchangePolicy {
            audiences: vec![second.id.clone()],
            impersonation: false,
        }),
    );
    let delegate = |client: &Client, subject: &str, target: &str| {
        exchange_with(
            &world,
            client,
            &[
                ("subject_token", subject),
                ("subject_token_type", ACCESS_TOKEN_TYPE),
                ("actor_token", &own_token(&world, client)),
                ("actor_token_type", ACCESS_TOKEN_TYPE),
                ("audience", target),
            ],
        )
        .unwrap()
        .access_token
    };
    let once = delegate(&first, &tokens.access_token, &second.id);
    let claims = decode_access_token(&once, &world.ctx(), None).unwrap();
    assert_eq!(claims.act, Some(json!({"sub": first.id})));
    assert_eq!(claims.sub, "alice-id");
    let twice = delegate(&second, &once, API);
    let claims = decode_access_token(&twice, &world.ctx(), None).unwrap();
    assert_eq!(
        claims.act,
        Some(json!({"sub": second.id, "act": {"sub": first.id}}))
    );
    // An ID token as the subject works the same way, and as the actor.
    let by_id_token = exchange_with(
        &world,
        &second,
        &[
            ("subject_token", tokens.id_token.as_deref().unwrap()),
            ("subject_token_type", ID_TOKEN_TYPE),
            ("actor_token", tokens.id_token.as_deref().unwrap()),
            ("actor_token_type", ID_TOKEN_TYPE),
            ("resource", API),
        ],
    );
    // Refused: the ID token was issued to `rp`, not to the service (and the code here was
    // issued outside any browser session: no `sid`, no grant to tie the token to).
    assert_eq!(code_of(by_id_token), ErrorCode::InvalidRequest);
}

/// Review finding 4: the actor is bound to the requesting client, and is not the subject.
#[test]
fn the_actor_is_the_client_or_a_user_signed_in_to_it_never_the_subject() {
    let world = TestWorld::default();
    let tokens = alice_tokens(&world);
    let svc = service(&world, policy(false));
    let with_actor = |subject: &str, actor: &str| {
        code_of(exchange_with(
            &world,
            &svc,
            &[
                ("subject_token", subject),
                ("subject_token_type", ACCESS_TOKEN_TYPE),
                ("actor_token", actor),
                ("actor_token_type", ACCESS_TOKEN_TYPE),
                ("resource", API),
            ],
        ))
    };
    // Another client's token (a service's own, a user's at the relying party).
    let other = service(&world, policy(false));
    assert_eq!(
        with_actor(&tokens.access_token, &own_token(&world, &other)),
        ErrorCode::InvalidRequest
    );
    let bob = world.add_user("bob");
    let rp = world.store.find_client("rp").unwrap().unwrap();
    let bob_at_rp = redeem(&world, &rp, &world.issue_code(&rp, &bob, "openid")).access_token;
    assert_eq!(
        with_actor(&tokens.access_token, &bob_at_rp),
        ErrorCode::InvalidRequest
    );
    // The subject token itself, or another token of the same user.
    let alice = world.store.find_user("alice-id").unwrap().unwrap();
    let alice_at_svc = redeem(
        &world,
        &svc,
        &world.issue_code(&svc, &alice, "openid profile"),
    )
    .access_token;
    assert_eq!(
        with_actor(&alice_at_svc, &alice_at_svc),
        ErrorCode::InvalidRequest
    );
    assert_eq!(
        with_actor(&tokens.access_token, &alice_at_svc),
        ErrorCode::InvalidRequest
    );
    // Bob signed in to the service acts for Alice: `act.sub` is our id for him.
    let bob_at_svc = redeem(&world, &svc, &world.issue_code(&svc, &bob, "openid")).access_token;
    let issued = exchange_with(
        &world,
        &svc,
        &[
            ("subject_token", &tokens.access_token),
            ("subject_token_type", ACCESS_TOKEN_TYPE),
            ("actor_token", &bob_at_svc),
            ("actor_token_type", ACCESS_TOKEN_TYPE),
            ("resource", API),
        ],
    )
    .unwrap();
    let claims = decode_access_token(&issued.access_token, &world.ctx(), None).unwrap();
    assert_eq!(claims.act, Some(json!({"sub": "bob-id"})));
}

/// Review finding 3: only tokens meant for the exchanging client, and no more scope than
/// the client's own.
#[test]
fn a_subject_token_must_be_meant_for_the_client() {
    let world = TestWorld::default();
    alice_tokens(&world);
    let svc = service(&world, policy(true));
    let exchange = |client: &Client, subject: &str| {
        exchange_with(
            &world,
            client,
            &[
                ("subject_token", subject),
                ("subject_token_type", ACCESS_TOKEN_TYPE),
                ("resource", API),
            ],
        )
    };
    let alice = world.store.find_user("alice-id").unwrap().unwrap();
    let rp = world.store.find_client("rp").unwrap().unwrap();
    // A token of the relying party's for itself (our userinfo): not the service's.
    let for_rp = redeem(
        &world,
        &rp,
        &world.issue_code(&rp, &alice, "openid profile"),
    );
    assert_eq!(
        code_of(exchange(&svc, &for_rp.access_token)),
        ErrorCode::InvalidRequest
    );
    // Addressed to another resource.
    let elsewhere = world.issue_code_for(&rp, &alice, "openid profile", &[API]);
    let elsewhere = redeem(&world, &rp, &elsewhere).access_token;
    assert_eq!(
        code_of(exchange(&svc, &elsewhere)),
        ErrorCode::InvalidRequest
    );
    // Issued to the service itself: its own.
    let own = redeem(
        &world,
        &svc,
        &world.issue_code(&svc, &alice, "openid profile"),
    );
    assert!(exchange(&svc, &own.access_token).is_ok());
    // The client's registered scope bounds the result.
    let mut narrow = service(&world, policy(true));
    narrow.scope = Scopes::parse("profile");
    let subject = alice_tokens_again(&world);
    let issued = exchange(&narrow, &subject).unwrap();
    assert_eq!(issued.scope, "profile");
    let wider = exchange_with(
        &world,
        &narrow,
        &[
            ("subject_token", &subject),
            ("subject_token_type", ACCESS_TOKEN_TYPE),
            ("resource", API),
            ("scope", "openid profile"),
        ],
    );
    assert_eq!(code_of(wider), ErrorCode::InvalidScope);
}

/// Another token of Alice's at `rp`, addressed to the service.
fn alice_tokens_again(world: &TestWorld) -> String {
    let alice = world.store.find_user("alice-id").unwrap().unwrap();
    let rp = world.store.find_client("rp").unwrap().unwrap();
    let code = world.issue_code_for(&rp, &alice, "openid profile", &[SVC]);
    redeem(world, &rp, &code).access_token
}

/// Review finding 1: whatever is stored, a public client does not exchange.
#[test]
fn a_public_client_with_a_policy_is_refused() {
    let world = TestWorld::default();
    let subject = alice_tokens(&world).access_token;
    let mut public = service(&world, policy(true));
    public.auth_method = AuthMethod::None;
    public.secret_hash = None;
    let result = exchange_with(
        &world,
        &public,
        &[
            ("subject_token", &subject),
            ("subject_token_type", ACCESS_TOKEN_TYPE),
            ("resource", API),
        ],
    );
    assert_eq!(code_of(result), ErrorCode::UnauthorizedClient);
}

/// Review finding 5: the issued token dies with its subject token, with every token of
/// its chain, and with the client it was issued to; and chains are bounded.
#[test]
fn the_issued_token_dies_with_its_chain_and_its_client() {
    let world = TestWorld::default();
    let subject = alice_tokens(&world).access_token;
    let single = Some(ExchangePolicy {
        audiences: vec![SVC.into()],
        impersonation: true,
    });
    // The service exchanges its own result again and again (each issued to it).
    let svc = service(&world, single);
    let step = |token: &str| {
        exchange_with(
            &world,
            &svc,
            &[
                ("subject_token", token),
                ("subject_token_type", ACCESS_TOKEN_TYPE),
            ],
        )
    };
    let mut chain = vec![subject.clone()];
    for _ in 0..MAX_CHAIN {
        let next = step(chain.last().unwrap()).unwrap().access_token;
        chain.push(next);
    }
    assert_eq!(
        code_of(step(chain.last().unwrap())),
        ErrorCode::InvalidRequest,
        "too long a chain"
    );
    let live = |token: &str| verify_access_token(token, None, &world.ctx()).is_ok();
    assert!(chain.iter().all(|t| live(t)));
    // The middle of the chain revoked (RFC 7009): it and what came from it die.
    let middle = decode_access_token(&chain[3], &world.ctx(), None).unwrap();
    world
        .store
        .revoke_access_token(&middle.jti, middle.exp)
        .unwrap();
    assert!(chain[..3].iter().all(|t| live(t)));
    assert!(chain[3..].iter().all(|t| !live(t)));
    // The exchanging client deleted: the tokens issued to it die, the subject lives.
    world.store.delete_client(&svc.id).unwrap();
    assert!(live(&chain[0]));
    assert!(!live(&chain[1]) && !live(&chain[2]));
}

#[test]
fn policy_target_and_scope_refusals_have_their_codes() {
    let world = TestWorld::default();
    let subject = alice_tokens(&world).access_token;
    let with_subject = |extra: &[(&'static str, &'static str)]| {
        let mut pairs: Vec<(&str, &str)> = vec![
            ("subject_token", subject.as_str()),
            ("subject_token_type", ACCESS_TOKEN_TYPE),
            ("resource", API),
        ];
        pairs.extend_from_slice(extra);
        pairs
    };
    let none = service(&world, None);
    assert_eq!(
        code_of(exchange_with(&world, &none, &with_subject(&[]))),
        ErrorCode::UnauthorizedClient
    );
    let mut no_grant = service(&world, policy(true));
    no_grant.grant_types = vec![GrantType::ClientCredentials];
    assert_eq!(
        code_of(exchange_with(&world, &no_grant, &with_subject(&[]))),
        ErrorCode::UnauthorizedClient
    );
    let delegating = service(&world, policy(false));
    assert_eq!(
        code_of(exchange_with(&world, &delegating, &with_subject(&[]))),
        ErrorCode::InvalidRequest,
        "impersonation is not in the policy"
    );
    let svc = service(&world, policy(true));
    for (extra, code) in [
        (("audience", "elsewhere"), ErrorCode::InvalidTarget),
        (
            ("resource", "https://other.example"),
            ErrorCode::InvalidTarget,
        ),
        (("scope", "openid email"), ErrorCode::InvalidScope),
        (
            ("requested_token_type", ID_TOKEN_TYPE),
            ErrorCode::InvalidRequest,
        ),
        (("actor_token", "x"), ErrorCode::InvalidRequest),
        (
            ("actor_token_type", ACCESS_TOKEN_TYPE),
            ErrorCode::InvalidRequest,
        ),
    ] {
        assert_eq!(
            code_of(exchange_with(&world, &svc, &with_subject(&[extra]))),
            code,
            "{extra:?}"
        );
    }
    let unsupported = exchange_with(
        &world,
        &svc,
        &[
            ("subject_token", &subject),
            (
                "subject_token_type",
                "urn:ietf:params:oauth:token-type:saml2",
            ),
        ],
    );
    assert_eq!(code_of(unsupported), ErrorCode::InvalidRequest);
    assert_eq!(
        code_of(exchange_with(
            &world,
            &svc,
            &[("subject_token_type", ACCESS_TOKEN_TYPE)]
        )),
        ErrorCode::InvalidRequest
    );
}

#[test]
fn foreign_expired_and_revoked_subject_tokens_are_refused() {
    let world = TestWorld::default();
    let subject = alice_tokens(&world).access_token;
    let svc = service(&world, policy(true));
    let try_subject = |token: &str| {
        code_of(exchange_with(
            &world,
            &svc,
            &[
                ("subject_token", token),
                ("subject_token_type", ACCESS_TOKEN_TYPE),
                ("resource", API),
            ],
        ))
    };
    // The same claims, signed by a key that is not ours.
    let claims = decode_access_token(&subject, &world.ctx(), None).unwrap();
    let (foreign_key, _) = SigningKey::generate(KeyAlgorithm::Es256).unwrap();
    let foreign = foreign_key
        .sign_jwt("at+jwt", &serde_json::to_value(&claims).unwrap())
        .unwrap();
    assert_eq!(try_subject(&foreign), ErrorCode::InvalidRequest);
    assert_eq!(try_subject("not.a.jwt"), ErrorCode::InvalidRequest);
    // Revoked: its grant.
    let gid = claims.gid.clone().unwrap();
    world.store.revoke_grant(&gid, world.clock.now()).unwrap();
    assert_eq!(try_subject(&subject), ErrorCode::InvalidRequest);
    // Expired.
    let world = TestWorld::default();
    let subject = alice_tokens(&world).access_token;
    let svc = service(&world, policy(true));
    // A foreign actor token is refused like a foreign subject token, before any token
    // is issued.
    let foreign_actor = exchange_with(
        &world,
        &svc,
        &[
            ("subject_token", &subject),
            ("subject_token_type", ACCESS_TOKEN_TYPE),
            ("actor_token", &foreign),
            ("actor_token_type", ACCESS_TOKEN_TYPE),
            ("resource", API),
        ],
    );
    assert_eq!(code_of(foreign_actor), ErrorCode::InvalidRequest);
    world.clock.advance(3601);
    let expired = exchange_with(
        &world,
        &svc,
        &[
            ("subject_token", &subject),
            ("subject_token_type", ACCESS_TOKEN_TYPE),
            ("resource", API),
        ],
    );
    assert_eq!(code_of(expired), ErrorCode::InvalidRequest);
}

#[test]
fn a_requests_debug_shows_no_token() {
    let request = ExchangeRequest::parse(&params(&[
        ("subject_token", "the-subject-itself"),
        ("subject_token_type", ACCESS_TOKEN_TYPE),
        ("actor_token", "the-actor-itself"),
        ("actor_token_type", ID_TOKEN_TYPE),
    ]))
    .unwrap();
    let shown = format!("{request:?}");
    assert!(!shown.contains("the-subject-itself") && !shown.contains("the-actor-itself"));
}

#[test]
fn act_targets_and_scopes_compose_as_the_rfc_says() {
    assert_eq!(act_claim(None, None), None);
    assert_eq!(
        act_claim(None, Some(json!({"sub": "a"}))),
        Some(json!({"sub": "a"}))
    );
    assert_eq!(
        act_claim(Some("b"), Some(json!({"sub": "a"}))),
        Some(json!({"sub": "b", "act": {"sub": "a"}}))
    );
    let policy = policy(false).unwrap();
    // Several audiences and none named: which one? (Review finding 8.)
    assert_eq!(
        target_audience(&policy, vec![]).unwrap_err().code,
        ErrorCode::InvalidTarget
    );
    let one = ExchangePolicy {
        audiences: vec![API.into()],
        impersonation: false,
    };
    assert_eq!(target_audience(&one, vec![]).unwrap(), [API]);
    assert_eq!(
        target_audience(&policy, vec!["billing".into()]).unwrap(),
        ["billing"]
    );
    assert_eq!(
        target_audience(&policy, vec!["billing".into(), "x".into()])
            .unwrap_err()
            .code,
        ErrorCode::InvalidTarget
    );
    let held = Scopes::parse("openid profile").unwrap();
    assert_eq!(narrowed_scope(&held, None, None).unwrap(), held);
    let fewer = Scopes::parse("profile").unwrap();
    assert_eq!(
        narrowed_scope(&held, None, Some(fewer.clone())).unwrap(),
        fewer
    );
    let wider = Scopes::parse("profile email").unwrap();
    assert_eq!(
        narrowed_scope(&held, None, Some(wider)).unwrap_err().code,
        ErrorCode::InvalidScope
    );
    // Within the client's registered scope (review finding 3).
    let registered = Scopes::parse("profile email").unwrap();
    assert_eq!(
        narrowed_scope(&held, Some(&registered), None).unwrap(),
        fewer
    );
    assert_eq!(
        narrowed_scope(&held, Some(&registered), Some(held.clone()))
            .unwrap_err()
            .code,
        ErrorCode::InvalidScope
    );
}

mod subject;
