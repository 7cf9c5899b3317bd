//! `dpop`'s rules for what a token request's proof binds (tokens, refresh tokens) and
//! for a bound token at a resource: plain values, no proofs to build.

use serde_json::json;

use super::tests::assert_refused;
use super::*;
use crate::protocol::ErrorCode;

fn proof_with(jkt: &str, nonce_fresh: bool) -> Proof {
    Proof {
        jkt: jkt.to_owned(),
        nonce_fresh,
    }
}

#[test]
fn a_client_with_bound_tokens_must_send_a_proof() {
    assert_eq!(
        token_request_binding(None, true, false, false).unwrap(),
        None
    );
    assert_eq!(
        token_request_binding(None, false, false, true).unwrap(),
        None
    );
    assert_refused(
        token_request_binding(None, false, true, false),
        ErrorCode::InvalidRequest,
        "DPoP",
    );
    let proof = proof_with("k1", false);
    let bound = token_request_binding(Some(&proof), false, true, false).unwrap();
    assert_eq!(
        bound,
        Some(Binding {
            jkt: "k1".into(),
            refresh_bound: false
        })
    );
}

#[test]
fn a_public_clients_refresh_tokens_are_bound_and_a_confidential_ones_are_not() {
    let proof = proof_with("k1", false);
    let public = token_request_binding(Some(&proof), true, false, false).unwrap();
    assert!(public.as_ref().unwrap().refresh_bound);
    let confidential = token_request_binding(Some(&proof), false, false, false).unwrap();
    assert!(!confidential.as_ref().unwrap().refresh_bound);
    assert_eq!(bind_refresh_token("rt".into(), public.as_ref()), "rt~k1");
    assert_eq!(bind_refresh_token("rt".into(), confidential.as_ref()), "rt");
    assert_eq!(bind_refresh_token("rt".into(), None), "rt");
}

#[test]
fn a_client_that_requires_nonces_needs_a_fresh_one_in_its_proof() {
    let stale = proof_with("k1", false);
    assert_refused(
        token_request_binding(Some(&stale), false, false, true),
        ErrorCode::UseDpopNonce,
        "nonce",
    );
    let fresh = proof_with("k1", true);
    assert!(token_request_binding(Some(&fresh), false, false, true).is_ok());
}

#[test]
fn a_bound_refresh_token_is_used_only_with_its_key_and_its_successor_stays_bound() {
    let key = |jkt: &str, refresh_bound| Binding {
        jkt: jkt.into(),
        refresh_bound,
    };
    assert_eq!(refresh_token_jkt("rt~k1"), Some("k1"));
    assert_eq!(refresh_token_jkt("rt"), None);
    assert!(check_refresh_binding("rt~k1", Some(&key("k1", true))).is_ok());
    assert!(check_refresh_binding("rt~k1", Some(&key("k1", false))).is_ok());
    for other in [Some(key("k2", true)), None] {
        assert_refused(
            check_refresh_binding("rt~k1", other.as_ref()),
            ErrorCode::InvalidGrant,
            "bound",
        );
    }
    assert!(check_refresh_binding("rt", None).is_ok());
    assert!(check_refresh_binding("rt", Some(&key("k2", true))).is_ok());
    assert_eq!(successor_with_binding("s".into(), "rt~k1", None), "s~k1");
    assert_eq!(successor_with_binding("s".into(), "rt", None), "s");
}

#[test]
fn an_unbound_refresh_token_refreshed_by_a_public_client_with_a_proof_gets_a_bound_successor() {
    let public = Binding {
        jkt: "k2".into(),
        refresh_bound: true,
    };
    let confidential = Binding {
        jkt: "k2".into(),
        refresh_bound: false,
    };
    assert_eq!(
        successor_with_binding("s".into(), "rt", Some(&public)),
        "s~k2"
    );
    assert_eq!(
        successor_with_binding("s".into(), "rt", Some(&confidential)),
        "s"
    );
    // A bound token's successor keeps the key of its family.
    assert_eq!(
        successor_with_binding("s".into(), "rt~k1", Some(&public)),
        "s~k1"
    );
}

#[test]
fn a_proof_targets_debug_does_not_show_the_access_token() {
    let at_resource = ProofTarget::resource(
        "GET",
        "https://op.example/userinfo",
        "secret-access-token",
        false,
    );
    let shown = format!("{at_resource:?}");
    assert!(!shown.contains("secret-access-token"), "{shown}");
    assert!(shown.contains("redacted"), "{shown}");
}

#[test]
fn a_bound_token_is_accepted_only_with_a_proof_by_its_key() {
    let mine = proof_with("k1", false);
    let other = proof_with("k2", false);
    assert!(check_presentation(None, Presented::Bearer).is_ok());
    assert!(check_presentation(Some("k1"), Presented::Dpop(&mine)).is_ok());
    let as_bearer = check_presentation(Some("k1"), Presented::Bearer).unwrap_err();
    assert_eq!(as_bearer.code, ErrorCode::InvalidToken);
    assert!(wants_dpop_challenge(&as_bearer));
    assert_refused(
        check_presentation(Some("k1"), Presented::Dpop(&other)),
        ErrorCode::InvalidDpopProof,
        "bound to",
    );
    assert_refused(
        check_presentation(None, Presented::Dpop(&mine)),
        ErrorCode::InvalidToken,
        "not DPoP-bound",
    );
}

#[test]
fn refusals_of_proofs_and_of_bound_tokens_get_a_dpop_challenge_and_others_do_not() {
    assert!(wants_dpop_challenge(&invalid("x")));
    assert!(wants_dpop_challenge(&nonce_needed()));
    assert!(!wants_dpop_challenge(&OAuthError::invalid_token("expired")));
    // The flag, not the wording, asks for the DPoP challenge.
    assert!(!wants_dpop_challenge(&OAuthError::invalid_request(
        "the access token is DPoP-bound: use the DPoP scheme"
    )));
    assert!(wants_dpop_challenge(
        &OAuthError::invalid_token("any wording").with_challenge(Challenge::Dpop)
    ));
}

#[test]
fn cnf_carries_the_thumbprint() {
    let cnf = confirmation("k1");
    assert_eq!(cnf, json!({"jkt": "k1"}));
    assert_eq!(bound_jkt(Some(&cnf)), Some("k1"));
    assert_eq!(bound_jkt(None), None);
    assert_eq!(bound_jkt(Some(&json!({"x5t#S256": "t"}))), None);
}

#[test]
fn at_a_resource_a_client_that_requires_nonces_needs_a_fresh_one_in_its_proof() {
    let stale = proof_with("k1", false);
    let fresh = proof_with("k1", true);
    assert_refused(
        check_client_nonce(Presented::Dpop(&stale), true),
        ErrorCode::UseDpopNonce,
        "nonce",
    );
    assert!(check_client_nonce(Presented::Dpop(&fresh), true).is_ok());
    assert!(check_client_nonce(Presented::Dpop(&stale), false).is_ok());
    assert!(check_client_nonce(Presented::Bearer, true).is_ok());
}

/// A thumbprint of the right form (43 base64url characters of 32 bytes).
const JKT_A: &str = "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I";
const JKT_B: &str = "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs";

#[test]
fn dpop_jkt_must_be_a_sha256_thumbprint() {
    assert_eq!(parse_dpop_jkt(JKT_A).unwrap(), JKT_A);
    for malformed in [
        "",
        "k1",
        "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I=",
        "0ZcOCORZNYy+DWpqq30jZyJGHTN0d2HglBV3uiguA4I",
        "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4",
        // 43 characters whose last one leaves bits over: not a canonical encoding.
        "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4J",
        &"A".repeat(86),
    ] {
        assert_refused(
            parse_dpop_jkt(malformed),
            ErrorCode::InvalidRequest,
            "dpop_jkt",
        );
    }
}

#[test]
fn a_proof_at_par_binds_the_request_to_its_key_unless_dpop_jkt_names_another() {
    assert_eq!(pushed_request_jkt(None, None, true).unwrap(), None);
    assert_eq!(
        pushed_request_jkt(Some(JKT_A), None, false)
            .unwrap()
            .as_deref(),
        Some(JKT_A)
    );
    let proof = proof_with(JKT_A, false);
    assert_eq!(
        pushed_request_jkt(None, Some(&proof), false)
            .unwrap()
            .as_deref(),
        Some(JKT_A)
    );
    assert_eq!(
        pushed_request_jkt(Some(JKT_A), Some(&proof), false)
            .unwrap()
            .as_deref(),
        Some(JKT_A)
    );
    assert_refused(
        pushed_request_jkt(Some(JKT_B), Some(&proof), false),
        ErrorCode::InvalidRequest,
        "dpop_jkt",
    );
}

#[test]
fn a_proof_at_par_without_the_nonce_a_client_requires_is_refused() {
    assert_refused(
        pushed_request_jkt(None, Some(&proof_with(JKT_A, false)), true),
        ErrorCode::UseDpopNonce,
        "nonce",
    );
    let fresh = proof_with(JKT_A, true);
    assert_eq!(
        pushed_request_jkt(None, Some(&fresh), true)
            .unwrap()
            .as_deref(),
        Some(JKT_A)
    );
}

#[test]
fn a_bound_code_needs_a_proof_by_its_key_and_an_unbound_one_needs_none() {
    let by = |jkt: &str| Binding {
        jkt: jkt.to_owned(),
        refresh_bound: false,
    };
    assert!(check_code_binding(None, None).is_ok());
    assert!(check_code_binding(None, Some(&by(JKT_B))).is_ok());
    assert!(check_code_binding(Some(JKT_A), Some(&by(JKT_A))).is_ok());
    assert_refused(
        check_code_binding(Some(JKT_A), Some(&by(JKT_B))),
        ErrorCode::InvalidGrant,
        "another DPoP key",
    );
    assert_refused(
        check_code_binding(Some(JKT_A), None),
        ErrorCode::InvalidGrant,
        "send a DPoP proof",
    );
}
