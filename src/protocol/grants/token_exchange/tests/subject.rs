//! The subject token's edges, rule by rule: ID tokens (their audience, session and
//! subject), access tokens addressed to several audiences, the depth of a delegation
//! chain, and what the audit event records. Each test here answers a mutant that the
//! flows above let through.

use super::*;
use crate::protocol::testing::START;
use crate::protocol::tokens::mint_access_token;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

const SID: &str = "sid-of-alice";

/// Alice's ID token, issued to `svc` in the browser session `SID`, which ends at
/// `session_end`.
fn id_token_in_session(world: &TestWorld, svc: &Client, session_end: i64) -> String {
    let alice = world.add_user("alice");
    let code = world.issue_code_in_session(svc, &alice, "openid profile", SID, session_end);
    redeem(world, svc, &code).id_token.unwrap()
}

/// `token`'s claims changed by `change`, signed again with our key (`typ: JWT`).
fn resigned(world: &TestWorld, token: &str, change: impl FnOnce(&mut Value)) -> String {
    let payload = token.split('.').nth(1).unwrap();
    let mut claims: Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap();
    change(&mut claims);
    let key = world
        .keys
        .signing_key(KeyAlgorithm::Es256, world.clock.now())
        .unwrap();
    key.sign_jwt("JWT", &claims).unwrap()
}

fn exchange_id_token(
    world: &TestWorld,
    svc: &Client,
    id_token: &str,
) -> Result<TokenResponse, OAuthError> {
    exchange_with(
        world,
        svc,
        &[
            ("subject_token", id_token),
            ("subject_token_type", ID_TOKEN_TYPE),
            ("audience", "billing"),
        ],
    )
}

fn description(result: Result<TokenResponse, OAuthError>) -> String {
    result
        .map(|_| ())
        .unwrap_err()
        .description
        .unwrap_or_default()
        .to_string()
}

#[test]
fn the_clients_own_id_token_from_a_live_session_is_a_subject_whatever_form_its_aud_takes() {
    let world = TestWorld::default();
    let svc = service(&world, policy(true));
    let id_token = id_token_in_session(&world, &svc, START + 600);
    let issued = exchange_id_token(&world, &svc, &id_token).unwrap();
    let claims = decode_access_token(&issued.access_token, &world.ctx(), None).unwrap();
    assert_eq!(claims.sub, "alice-id");
    assert_eq!(claims.aud, json!("billing"));
    // `aud` as a string, and as an array of the client alone.
    let as_string = resigned(&world, &id_token, |c| c["aud"] = json!(svc.id));
    assert!(exchange_id_token(&world, &svc, &as_string).is_ok());
    let as_array = resigned(&world, &id_token, |c| c["aud"] = json!([svc.id]));
    assert!(exchange_id_token(&world, &svc, &as_array).is_ok());
}

#[test]
fn an_id_token_for_several_audiences_another_client_or_another_subject_is_refused() {
    let world = TestWorld::default();
    let svc = service(&world, policy(true));
    let id_token = id_token_in_session(&world, &svc, START + 600);
    for aud in [
        json!([svc.id, "another-client"]),
        json!(["another-client"]),
        json!("another-client"),
        json!(42),
    ] {
        let token = resigned(&world, &id_token, |c| c["aud"] = aud.clone());
        let refused = exchange_id_token(&world, &svc, &token);
        assert_eq!(code_of(refused), ErrorCode::InvalidRequest, "aud {aud}");
    }
    let other_subject = resigned(&world, &id_token, |c| c["sub"] = json!("mallory-id"));
    let refused = exchange_id_token(&world, &svc, &other_subject);
    assert_eq!(code_of(refused), ErrorCode::InvalidRequest);
}

#[test]
fn an_id_token_dies_with_its_session_at_the_second_it_ends() {
    let world = TestWorld::default();
    let svc = service(&world, policy(true));
    let id_token = id_token_in_session(&world, &svc, START + 100);
    world.clock.set(START + 99);
    assert!(exchange_id_token(&world, &svc, &id_token).is_ok());
    world.clock.set(START + 100);
    let refused = exchange_id_token(&world, &svc, &id_token);
    assert!(description(refused).contains("session has ended"));
}

#[test]
fn an_id_token_of_a_session_signed_out_of_is_refused_for_its_session() {
    let world = TestWorld::default();
    let svc = service(&world, policy(true));
    let id_token = id_token_in_session(&world, &svc, START + 600);
    world.store.end_session(SID, START + 1).unwrap();
    world.clock.set(START + 2);
    let refused = exchange_id_token(&world, &svc, &id_token);
    // The session is judged first (its grants died with it too).
    assert!(description(refused).contains("session has ended"));
}

#[test]
fn an_access_token_addressed_to_several_audiences_including_the_service_is_a_subject() {
    let world = TestWorld::default();
    let alice = world.add_user("alice");
    let (rp, _) = world.add_client("rp", AuthMethod::ClientSecretBasic);
    let code = world.issue_code_for(
        &rp,
        &alice,
        "openid profile",
        &[SVC, "https://other.example"],
    );
    let subject = redeem(&world, &rp, &code).access_token;
    let svc = service(&world, policy(true));
    let issued = exchange_with(
        &world,
        &svc,
        &[
            ("subject_token", &subject),
            ("subject_token_type", ACCESS_TOKEN_TYPE),
            ("audience", "billing"),
        ],
    );
    assert!(issued.is_ok());
}

/// An `act` nested `depth` deep: `{"sub": "actor-1", "act": {"sub": "actor-2", ...}}`.
fn nested_act(depth: usize) -> Value {
    (1..=depth).rev().fold(Value::Null, |inner, level| {
        let mut act = json!({ "sub": format!("actor-{level}") });
        if !inner.is_null() {
            act["act"] = inner;
        }
        act
    })
}

#[test]
fn a_subject_whose_act_nests_as_deep_as_the_cap_is_refused_one_less_is_not() {
    let world = TestWorld::default();
    let alice = world.add_user("alice");
    let (rp, _) = world.add_client("rp", AuthMethod::ClientSecretBasic);
    let code = world.issue_code_for(&rp, &alice, "openid profile", &[SVC]);
    let subject = redeem(&world, &rp, &code).access_token;
    let svc = service(&world, policy(true));
    let with_act = |depth: usize| {
        let mut claims = decode_access_token(&subject, &world.ctx(), None).unwrap();
        claims.act = Some(nested_act(depth));
        let token = mint_access_token(claims, &rp, &world.ctx()).unwrap().token;
        exchange_with(
            &world,
            &svc,
            &[
                ("subject_token", &token),
                ("subject_token_type", ACCESS_TOKEN_TYPE),
                ("audience", "billing"),
            ],
        )
    };
    let below = with_act(MAX_CHAIN - 1).unwrap();
    let claims = decode_access_token(&below.access_token, &world.ctx(), None).unwrap();
    assert_eq!(claims.act, Some(nested_act(MAX_CHAIN - 1)));
    assert_eq!(code_of(with_act(MAX_CHAIN)), ErrorCode::InvalidRequest);
    assert_eq!(code_of(with_act(2 * MAX_CHAIN)), ErrorCode::InvalidRequest);
}

#[test]
fn the_audit_event_records_the_callers_address() {
    let world = TestWorld::default();
    let subject = alice_tokens(&world).access_token;
    let svc = service(&world, policy(true));
    let request = TokenRequest::parse(&params(&[
        ("grant_type", GrantType::TokenExchange.as_str()),
        ("subject_token", &subject),
        ("subject_token_type", ACCESS_TOKEN_TYPE),
        ("audience", "billing"),
    ]))
    .unwrap()
    .with_address("198.51.100.7".to_owned());
    token_request(request, &svc, None, &world.ctx()).unwrap();
    let events = world.store.list_audit_events(None, 5).unwrap();
    let event = events
        .iter()
        .find(|e| e.action == "token.exchanged")
        .unwrap();
    assert_eq!(event.address.as_deref(), Some("198.51.100.7"));
}
