//! Every rule of `dpop`, one test each. Proofs are built here by hand (aws-lc-rs signs
//! the bytes; header, JWK and thumbprint are written out), not by the code under test.

use aws_lc_rs::digest;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, Ed25519KeyPair, KeyPair,
};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};

use super::*;
use crate::protocol::ErrorCode;

const NOW: UnixTime = 1_800_000_000;
const URL: &str = "https://op.example/token";

fn b64(bytes: impl AsRef<[u8]>) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

fn kek() -> KeyEncryptionKey {
    KeyEncryptionKey::from_bytes(&[7; 32]).unwrap()
}

/// A client's key pair.
enum Holder {
    Ec(EcdsaKeyPair),
    Ed(Ed25519KeyPair),
}

impl Holder {
    fn ec() -> Self {
        Self::Ec(EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING).unwrap())
    }

    fn ed() -> Self {
        Self::Ed(Ed25519KeyPair::generate().unwrap())
    }

    fn alg(&self) -> &'static str {
        match self {
            Self::Ec(_) => "ES256",
            Self::Ed(_) => "EdDSA",
        }
    }

    fn jwk(&self) -> Value {
        match self {
            Self::Ec(pair) => {
                let point = pair.public_key().as_ref();
                json!({"kty": "EC", "crv": "P-256", "x": b64(&point[1..33]), "y": b64(&point[33..65])})
            }
            Self::Ed(pair) => {
                json!({"kty": "OKP", "crv": "Ed25519", "x": b64(pair.public_key().as_ref())})
            }
        }
    }

    /// RFC 7638 written out for this key.
    fn expected_jkt(&self) -> String {
        let jwk = self.jwk();
        let canonical = match self {
            Self::Ec(_) => format!(
                r#"{{"crv":"P-256","kty":"EC","x":"{}","y":"{}"}}"#,
                jwk["x"].as_str().unwrap(),
                jwk["y"].as_str().unwrap()
            ),
            Self::Ed(_) => format!(
                r#"{{"crv":"Ed25519","kty":"OKP","x":"{}"}}"#,
                jwk["x"].as_str().unwrap()
            ),
        };
        b64(digest::digest(&digest::SHA256, canonical.as_bytes()))
    }

    fn sign(&self, header: &Value, claims: &Value) -> String {
        let input = format!("{}.{}", b64(header.to_string()), b64(claims.to_string()));
        let signature = match self {
            Self::Ec(pair) => b64(pair.sign(&SystemRandom::new(), input.as_bytes()).unwrap()),
            Self::Ed(pair) => b64(pair.sign(input.as_bytes())),
        };
        format!("{input}.{signature}")
    }

    fn header(&self) -> Value {
        json!({"typ": "dpop+jwt", "alg": self.alg(), "jwk": self.jwk()})
    }

    /// A good proof for `URL`, with `changes` to its claims.
    fn proof(&self, changes: Value) -> String {
        self.sign(&self.header(), &claims(changes))
    }

    /// A proof with `changes` to its header.
    fn proof_with_header(&self, changes: Value) -> String {
        self.sign(&with(self.header(), changes), &claims(json!({})))
    }
}

/// `base` with `changes` applied; a `null` change removes the member.
fn with(mut base: Value, changes: Value) -> Value {
    for (name, value) in changes.as_object().unwrap() {
        if value.is_null() {
            base.as_object_mut().unwrap().remove(name);
        } else {
            base[name] = value.clone();
        }
    }
    base
}

fn claims(changes: Value) -> Value {
    with(
        json!({"htm": "POST", "htu": URL, "iat": NOW, "jti": "j1"}),
        changes,
    )
}

fn target() -> ProofTarget<'static> {
    ProofTarget {
        method: "POST",
        url: URL,
        access_token: None,
        nonce_required: false,
    }
}

fn header(proof: &str) -> ProofHeader {
    ProofHeader::from_values(&[proof.as_bytes()])
        .unwrap()
        .unwrap()
}

fn check(proof: &str, target: &ProofTarget<'_>) -> Result<VerifiedProof, OAuthError> {
    verify_proof(&header(proof), target, &kek(), NOW)
}

/// Asserts that `result` is refused with `code`, the description mentioning `about`.
#[track_caller]
pub(super) fn assert_refused<T: std::fmt::Debug>(
    result: Result<T, OAuthError>,
    code: ErrorCode,
    about: &str,
) {
    let error = result.expect_err("refused");
    assert_eq!(error.code, code, "{error}");
    let description = error.description.as_deref().unwrap_or_default();
    assert!(
        description.contains(about),
        "{description:?} lacks {about:?}"
    );
}

#[test]
fn a_good_proof_passes_with_the_thumbprint_of_its_key() {
    for holder in [Holder::ec(), Holder::ed()] {
        let proof = check(&holder.proof(json!({})), &target()).unwrap();
        assert_eq!(proof.proof.jkt(), holder.expected_jkt());
        assert!(!proof.proof.nonce_fresh);
    }
}

#[test]
fn the_type_must_be_dpop_jwt() {
    let holder = Holder::ec();
    for typ in [json!("JWT"), json!(null), json!("at+jwt")] {
        let proof = holder.proof_with_header(json!({ "typ": typ }));
        assert_refused(check(&proof, &target()), ErrorCode::InvalidDpopProof, "typ");
    }
    let upper = holder.proof_with_header(json!({"typ": "DPoP+JWT"}));
    assert!(check(&upper, &target()).is_ok());
}

#[test]
fn only_the_listed_asymmetric_algorithms_are_accepted() {
    let holder = Holder::ec();
    for alg in ["HS256", "none", "ES384", "RS512"] {
        let proof = holder.proof_with_header(json!({ "alg": alg }));
        assert_refused(check(&proof, &target()), ErrorCode::InvalidDpopProof, "alg");
    }
    // An unsigned token is no proof either.
    let header = json!({"typ": "dpop+jwt", "alg": "none", "jwk": holder.jwk()});
    let unsigned = format!(
        "{}.{}.",
        b64(header.to_string()),
        b64(claims(json!({})).to_string())
    );
    assert_refused(
        check(&unsigned, &target()),
        ErrorCode::InvalidDpopProof,
        "alg",
    );
    assert_eq!(DPOP_ALGS, ["ES256", "PS256", "RS256", "EdDSA"]);
}

#[test]
fn the_key_must_be_a_public_jwk_in_the_header_that_signed_the_proof() {
    let holder = Holder::ec();
    for private in ["d", "p", "q", "dp", "dq", "qi", "oth", "k"] {
        let mut jwk = holder.jwk();
        jwk[private] = json!("AAAA");
        let proof = holder.proof_with_header(json!({ "jwk": jwk }));
        assert_refused(check(&proof, &target()), ErrorCode::InvalidDpopProof, "jwk");
    }
    for jwk in [json!(null), json!("key"), json!({"kty": "EC"})] {
        let proof = holder.proof_with_header(json!({ "jwk": jwk }));
        assert_refused(check(&proof, &target()), ErrorCode::InvalidDpopProof, "jwk");
    }
    let other = Holder::ec();
    let forged = holder.proof_with_header(json!({"jwk": other.jwk()}));
    assert_refused(
        check(&forged, &target()),
        ErrorCode::InvalidDpopProof,
        "signature",
    );
    // An Ed25519 key named with ES256 is not used with it.
    let mismatched = Holder::ed().proof_with_header(json!({"alg": "ES256"}));
    assert!(check(&mismatched, &target()).is_err());
}

#[test]
fn htm_must_be_the_method_of_the_request() {
    let holder = Holder::ec();
    for htm in [json!("GET"), json!("post"), json!(null)] {
        let proof = holder.proof(json!({ "htm": htm }));
        assert_refused(check(&proof, &target()), ErrorCode::InvalidDpopProof, "htm");
    }
}

#[test]
fn htu_is_compared_normalised_without_query_or_fragment() {
    let holder = Holder::ec();
    for same in [
        "https://op.example/token",
        "HTTPS://OP.EXAMPLE/token",
        "https://op.example:443/token",
        "https://op.example/token?x=1#part",
    ] {
        assert!(
            check(&holder.proof(json!({ "htu": same })), &target()).is_ok(),
            "{same}"
        );
    }
    for other in [
        "https://op.example/Token",
        "https://op.example/token/",
        "http://op.example/token",
        "https://op.example:8443/token",
        "https://rs.example/token",
    ] {
        let proof = holder.proof(json!({ "htu": other }));
        assert_refused(
            check(&proof, &target()),
            ErrorCode::InvalidDpopProof,
            "htu is not",
        );
    }
    for bad in [
        json!(null),
        json!("/token"),
        json!("mailto:a@op.example"),
        json!(7),
    ] {
        let proof = holder.proof(json!({ "htu": bad }));
        assert_refused(
            check(&proof, &target()),
            ErrorCode::InvalidDpopProof,
            "htu is missing",
        );
    }
}

#[test]
fn normalised_urls_lose_case_default_port_query_and_fragment() {
    assert_eq!(
        normalised_url("HTTP://Op.Example:80?q#f").as_deref(),
        Some("http://op.example/")
    );
    assert_eq!(normalised_url("ftp://op.example/x"), None);
    assert_eq!(normalised_url("data:text/plain,x"), None);
}

#[test]
fn iat_must_be_within_the_window_either_way() {
    let holder = Holder::ec();
    for iat in [NOW - PROOF_WINDOW, NOW + PROOF_WINDOW, NOW] {
        let proof = holder.proof(json!({ "iat": iat }));
        assert!(check(&proof, &target()).is_ok(), "{iat}");
    }
    let old = holder.proof(json!({"iat": NOW - PROOF_WINDOW - 1}));
    assert_refused(check(&old, &target()), ErrorCode::InvalidDpopProof, "past");
    let future = holder.proof(json!({"iat": NOW + PROOF_WINDOW + 1}));
    assert_refused(
        check(&future, &target()),
        ErrorCode::InvalidDpopProof,
        "future",
    );
    for iat in [json!(null), json!("now")] {
        let proof = holder.proof(json!({ "iat": iat }));
        assert_refused(check(&proof, &target()), ErrorCode::InvalidDpopProof, "iat");
    }
}

#[test]
fn a_proof_needs_a_jti_and_its_replay_key_is_per_key_and_jti() {
    let holder = Holder::ec();
    for jti in [json!(null), json!(""), json!(3)] {
        let proof = holder.proof(json!({ "jti": jti }));
        assert_refused(check(&proof, &target()), ErrorCode::InvalidDpopProof, "jti");
    }
    let key = |holder: &Holder, jti: &str| {
        let proof = check(&holder.proof(json!({ "jti": jti })), &target()).unwrap();
        proof.replay_key().to_owned()
    };
    assert_eq!(key(&holder, "a"), key(&holder, "a"));
    assert_ne!(key(&holder, "a"), key(&holder, "b"));
    assert_ne!(key(&holder, "a"), key(&Holder::ec(), "a"));
    assert_refused(
        Err::<(), _>(replayed()),
        ErrorCode::InvalidDpopProof,
        "used before",
    );
}

#[test]
fn at_a_resource_ath_must_hash_the_access_token() {
    let holder = Holder::ec();
    let token = "an.access.token";
    let ath = b64(digest::digest(&digest::SHA256, token.as_bytes()));
    assert_eq!(access_token_hash(token), ath);
    let at_resource = ProofTarget {
        access_token: Some(token),
        ..target()
    };
    assert!(check(&holder.proof(json!({ "ath": ath })), &at_resource).is_ok());
    for wrong in [json!(null), json!(access_token_hash("another")), json!(1)] {
        let proof = holder.proof(json!({ "ath": wrong }));
        assert_refused(
            check(&proof, &at_resource),
            ErrorCode::InvalidDpopProof,
            "ath",
        );
    }
    // The token endpoint has no token to hash: `ath` is not looked at there.
    assert!(check(&holder.proof(json!({"ath": "x"})), &target()).is_ok());
}

#[test]
fn an_expired_proof_is_refused_when_it_names_exp() {
    let holder = Holder::ec();
    let proof = holder.proof(json!({"exp": NOW - 1}));
    assert_refused(
        check(&proof, &target()),
        ErrorCode::InvalidDpopProof,
        "expired",
    );
}

#[test]
fn a_required_nonce_must_be_this_slots_or_the_previous_one() {
    let holder = Holder::ec();
    let kek = kek();
    let required = ProofTarget {
        nonce_required: true,
        ..target()
    };
    let missing = check(&holder.proof(json!({})), &required);
    assert_refused(missing, ErrorCode::UseDpopNonce, "nonce");
    let current = current_nonce(&kek, NOW);
    let previous = current_nonce(&kek, NOW - NONCE_PERIOD);
    let older = current_nonce(&kek, NOW - 2 * NONCE_PERIOD);
    assert_ne!(current, previous);
    for nonce in [&current, &previous] {
        let proof = check(&holder.proof(json!({ "nonce": nonce })), &required).unwrap();
        assert!(proof.proof.nonce_fresh);
    }
    for nonce in [older.as_str(), "made-up", ""] {
        let proof = holder.proof(json!({ "nonce": nonce }));
        assert_refused(check(&proof, &required), ErrorCode::UseDpopNonce, "nonce");
        // Not required: the proof passes, its nonce not fresh.
        assert!(!check(&proof, &target()).unwrap().proof.nonce_fresh);
    }
    // The same on every instance (one KEK), another under another KEK.
    assert_eq!(current_nonce(&kek, NOW), current);
    let other = KeyEncryptionKey::from_bytes(&[8; 32]).unwrap();
    assert!(!nonce_is_current(&other, &current, NOW));
    // A slot is NONCE_PERIOD long: its nonce stays current until the next slot is over.
    let slot_start = NOW - NOW.rem_euclid(NONCE_PERIOD);
    assert_eq!(current_nonce(&kek, slot_start), current);
    assert!(nonce_is_current(
        &kek,
        &current,
        slot_start + 2 * NONCE_PERIOD - 1
    ));
    assert!(!nonce_is_current(
        &kek,
        &current,
        slot_start + 2 * NONCE_PERIOD
    ));
    assert!(!nonce_is_current(&kek, &current, slot_start - 1));
}

#[test]
fn one_dpop_header_at_most_of_bounded_size() {
    assert_eq!(ProofHeader::from_values(&[]).unwrap(), None);
    assert_eq!(
        ProofHeader::from_values(&[b"a.b.c"]).unwrap(),
        Some(ProofHeader("a.b.c".into()))
    );
    assert_refused(
        ProofHeader::from_values(&[b"a", b"b"]),
        ErrorCode::InvalidDpopProof,
        "more than one",
    );
    // 8 KiB: room for an RSA-4096 proof (under 2 KiB) four times over.
    assert_eq!(MAX_PROOF_BYTES, 8192);
    let largest = vec![b'a'; MAX_PROOF_BYTES];
    assert!(ProofHeader::from_values(&[&largest]).unwrap().is_some());
    let too_large = vec![b'a'; MAX_PROOF_BYTES + 1];
    assert_refused(
        ProofHeader::from_values(&[&too_large]),
        ErrorCode::InvalidDpopProof,
        "too large",
    );
    for not_a_jwt in [&b"a b"[..], b"\xff.a.b", b"", b"a\tb"] {
        assert_refused(
            ProofHeader::from_values(&[not_a_jwt]),
            ErrorCode::InvalidDpopProof,
            "not a JWT",
        );
    }
    assert_eq!(
        format!("{:?}", header("secret.proof.here")),
        "ProofHeader(<redacted>)"
    );
}

#[test]
fn a_proofs_jti_counts_only_once_recorded_and_a_second_use_is_refused() {
    let holder = Holder::ec();
    let verified = check(&holder.proof(json!({})), &target()).unwrap();
    let expected = verified.proof.clone();
    assert_eq!(verified.recorded(true).unwrap(), expected);
    let again = check(&holder.proof(json!({})), &target()).unwrap();
    assert_refused(
        again.recorded(false),
        ErrorCode::InvalidDpopProof,
        "used before",
    );
}

#[test]
fn only_supported_key_types_and_curves_fitting_the_alg_are_accepted() {
    let ec = Holder::ec();
    let unsupported = [
        json!({"kty": "oct", "k": "AAAA"}),
        json!({"kty": "EC", "crv": "P-384", "x": "AAAA", "y": "AAAA"}),
        json!({"kty": "EC", "crv": "secp256k1", "x": "AAAA", "y": "AAAA"}),
        json!({"kty": "OKP", "crv": "X25519", "x": "AAAA"}),
        json!({"kty": "OKP", "crv": "Ed448", "x": "AAAA"}),
        json!({"kty": "RSA", "crv": "P-256", "n": "AAAA", "e": "AQAB"}),
        json!({"crv": "P-256", "x": "AAAA", "y": "AAAA"}),
    ];
    for jwk in unsupported {
        let proof = ec.proof_with_header(json!({ "jwk": jwk }));
        assert_refused(check(&proof, &target()), ErrorCode::InvalidDpopProof, "jwk");
    }
    // Each supported key type, under an algorithm of another.
    let rsa = json!({"kty": "RSA", "n": "AAAA", "e": "AQAB"});
    for (jwk, alg) in [
        (ec.jwk(), "EdDSA"),
        (ec.jwk(), "RS256"),
        (Holder::ed().jwk(), "ES256"),
        (Holder::ed().jwk(), "PS256"),
        (rsa.clone(), "ES256"),
        (rsa, "EdDSA"),
    ] {
        let proof = ec.proof_with_header(json!({ "jwk": jwk, "alg": alg }));
        assert_refused(check(&proof, &target()), ErrorCode::InvalidDpopProof, "jwk");
    }
}

#[test]
fn the_thumbprint_of_a_proofs_key_ignores_its_optional_members() {
    let holder = Holder::ec();
    let mut jwk = holder.jwk();
    jwk["kid"] = json!("mine");
    jwk["use"] = json!("sig");
    jwk["alg"] = json!("ES256");
    jwk["key_ops"] = json!(["verify"]);
    let proof = holder.proof_with_header(json!({ "jwk": jwk }));
    let verified = check(&proof, &target()).unwrap();
    assert_eq!(verified.proof.jkt(), holder.expected_jkt());
}

#[test]
fn targets_are_built_with_the_access_token_at_a_resource_and_without_elsewhere() {
    let server = ProofTarget::authorization_server("POST", URL, true);
    assert_eq!(
        (
            server.method,
            server.url,
            server.access_token,
            server.nonce_required
        ),
        ("POST", URL, None, true)
    );
    let resource = ProofTarget::resource("GET", URL, "tok", false);
    assert_eq!(
        (
            resource.method,
            resource.url,
            resource.access_token,
            resource.nonce_required
        ),
        ("GET", URL, Some("tok"), false)
    );
}

#[test]
fn thumbprints_use_the_required_members_in_order() {
    let ec = json!({"y": "Y", "x": "X", "kty": "EC", "crv": "P-256", "kid": "ignored"});
    let expected = b64(digest::digest(
        &digest::SHA256,
        br#"{"crv":"P-256","kty":"EC","x":"X","y":"Y"}"#,
    ));
    assert_eq!(thumbprint(&ec).unwrap(), expected);
    let rsa = json!({"n": "N", "e": "AQAB", "kty": "RSA", "alg": "RS256"});
    let expected = b64(digest::digest(
        &digest::SHA256,
        br#"{"e":"AQAB","kty":"RSA","n":"N"}"#,
    ));
    assert_eq!(thumbprint(&rsa).unwrap(), expected);
    let okp = json!({"x": "X", "kty": "OKP", "crv": "Ed25519"});
    let expected = b64(digest::digest(
        &digest::SHA256,
        br#"{"crv":"Ed25519","kty":"OKP","x":"X"}"#,
    ));
    assert_eq!(thumbprint(&okp).unwrap(), expected);
    assert_eq!(thumbprint(&json!({"kty": "oct", "k": "K"})), None);
    assert_eq!(
        thumbprint(&json!({"kty": "EC", "crv": "P-256", "x": "X"})),
        None
    );
    assert_eq!(
        thumbprint(&json!({"crv": "P-256", "x": "X", "y": "Y"})),
        None
    );
}
