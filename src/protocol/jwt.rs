//! One verifier for JWTs that come from outside: client assertions (RFC 7523), request
//! objects (RFC 9101), `id_token_hint` (OIDC Core §3.1.2.1), DPoP proofs (RFC 9449), and
//! later upstream ID tokens. The caller reads the header, picks the key, and states its
//! `Rules`; the `iss`, `sub`, `aud`, `exp`, `nbf`, `iat` and `jti` checks live here once,
//! against the injected clock. A refusal is a typed `JwtRejection`, which each caller
//! turns into its own OAuth error (`invalid_client`, `invalid_request_object`,
//! `invalid_request`).

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::Value;

use crate::crypto::KeySet;
use crate::crypto::keys::audience_contains;
use crate::crypto::tokens::token_hash;
use crate::domain::UnixTime;
use crate::store::{Store, StoreError};

/// Why a JWT was refused: which rule failed, for the caller's error description.
#[derive(Debug, thiserror::Error)]
pub enum JwtRejection {
    #[error("not a compact JWS (three dot-separated parts)")]
    NotCompact,
    #[error("a part is not base64url-encoded JSON")]
    Malformed,
    #[error("an unsigned token must name alg none and have an empty signature")]
    NotUnsigned,
    #[error("the signature does not verify")]
    BadSignature,
    #[error("the payload is not a JSON object")]
    NotAnObject,
    #[error("iss is not the expected issuer")]
    WrongIssuer,
    #[error("sub is missing or not the expected subject")]
    WrongSubject,
    #[error("aud does not name this server")]
    WrongAudience,
    #[error("exp is missing or not an integer")]
    MissingExpiry,
    #[error("the token has expired")]
    Expired,
    #[error("exp is further away than allowed")]
    LivesTooLong,
    #[error("the token is not valid yet (nbf)")]
    NotYetValid,
    #[error("iat is missing or not an integer")]
    MissingIssuedAt,
    #[error("the token was issued in the future (iat)")]
    IssuedInFuture,
    #[error("jti is missing or empty")]
    MissingJti,
    #[error("the token was used before (jti)")]
    Replayed,
    #[error("iat is too far in the past")]
    IssuedTooLongAgo,
    #[error("typ is not the one required")]
    WrongType,
    #[error("alg is not one accepted here")]
    UnsupportedAlgorithm,
    #[error("the header's jwk is missing, not a public key, or not usable with alg")]
    BadHeaderKey,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A compact JWS as received (RFC 7515 §7.1), its header decoded so that the caller can
/// choose the key. Nothing in it is trusted yet.
pub struct UnverifiedJwt<'t> {
    token: &'t str,
    header: Value,
    payload: &'t str,
    signature: &'t str,
}

impl<'t> UnverifiedJwt<'t> {
    pub fn parse(token: &'t str) -> Result<Self, JwtRejection> {
        let mut parts = token.split('.');
        let (Some(header), Some(payload), Some(signature), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            // Five parts would be an encrypted JWT (JWE, RFC 7516): not accepted here.
            return Err(JwtRejection::NotCompact);
        };
        Ok(Self {
            token,
            header: decode_json(header)?,
            payload,
            signature,
        })
    }

    /// The header's `alg`, as sent.
    pub fn alg(&self) -> Option<&str> {
        self.header["alg"].as_str()
    }

    /// The header's `kid`, as sent.
    pub fn kid(&self) -> Option<&str> {
        self.header["kid"].as_str()
    }

    /// The header's `jwk` (RFC 7515 §4.1.3), as sent.
    pub fn jwk(&self) -> &Value {
        &self.header["jwk"]
    }
}

fn decode_json(part: &str) -> Result<Value, JwtRejection> {
    let bytes = URL_SAFE_NO_PAD
        .decode(part)
        .map_err(|_| JwtRejection::Malformed)?;
    serde_json::from_slice(&bytes).map_err(|_| JwtRejection::Malformed)
}

/// What checks the signature.
pub enum VerifyingKey<'k> {
    /// A key the caller chose for the header's `alg` and `kid` (a client's public key, or
    /// its secret for HMAC), and the one algorithm it is accepted with.
    Jose(DecodingKey, Algorithm),
    /// Our own keys, for a token we issued that comes back (an `id_token_hint`), with the
    /// `typ` it must carry so that one kind of our tokens does not pass for another.
    Ours { keys: &'k KeySet, typ: &'k str },
    /// No signature (`alg: none`): only for a caller that has decided to accept one.
    Unsigned,
    /// The public key in the header's `jwk` (a DPoP proof, RFC 9449 §4.2): the header's
    /// `typ` must be `typ`, its `alg` one of `algs` (asymmetric only), and the `jwk` a
    /// public key, no private member in it.
    HeaderJwk { typ: &'k str, algs: &'k [&'k str] },
}

/// RFC 7517 §6.2.2, §6.3.2, RFC 8037 §2, RFC 7518 §6.4: members only a private (or
/// symmetric) key has.
const PRIVATE_JWK_MEMBERS: [&str; 8] = ["d", "p", "q", "dp", "dq", "qi", "oth", "k"];

/// Who the token must be about.
pub enum SubjectRule<'a> {
    Any,
    /// A `sub` string must be there.
    Present,
    /// `sub` must be exactly this (RFC 7523 §3: the client itself).
    Is(&'a str),
}

/// Whom the token must be for.
pub enum AudienceRule<'a> {
    Unchecked,
    /// RFC 7519 §4.1.3: `aud` is a string, or an array, naming one of these.
    Includes(&'a [&'a str]),
    /// `aud` names one audience, and it is one of these: a string, or an array of one.
    /// An array that names other servers too is the audience injection that
    /// draft-ietf-oauth-rfc7523bis describes.
    OnlyOneOf(&'a [&'a str]),
    /// `aud` is this string, and not an array (FAPI 2.0 §5.3.2.1: the issuer "as a
    /// string" in client assertions).
    ExactString(&'a str),
}

/// How `exp` and `nbf` (RFC 7519 §4.1.4, §4.1.5) are held against the clock.
#[derive(Clone, Copy, Debug)]
pub enum Lifetime {
    /// `exp` must be there but may have passed, and `nbf` is not looked at: an
    /// `id_token_hint` may be an expired ID token (OIDC Core §3.1.2.1).
    MayHaveExpired,
    /// `exp` and `nbf` are checked when they are integers and otherwise ignored: RFC 9101
    /// requires neither in a request object.
    CheckedWhenPresent,
    /// `exp` is required, in the future and at most `max` seconds away; `nbf`, when
    /// present, must be an integer not in the future. For one-time credentials whose
    /// `jti` is remembered until `exp` (RFC 7523 §3).
    AtMost { max: i64 },
}

/// How `iat` (RFC 7519 §4.1.6) is held against the clock.
#[derive(Clone, Copy, Debug)]
pub enum IssuedAt {
    /// Not looked at: RFC 7523 and RFC 9101 leave `iat` optional.
    Unchecked,
    /// Required, and not after now (beyond the leeway).
    NotInFuture,
    /// Required, and within `window` seconds of now either way: DPoP proofs are judged
    /// by their `iat` (RFC 9449 §4.3, §11.1), having no `exp`.
    Within { window: i64 },
}

/// Where a `jti` is remembered so that it is taken once.
pub trait ReplayCache {
    /// Records `key` until `until`; `false` when it was recorded before: a replay.
    fn first_use(&self, key: &str, until: UnixTime) -> Result<bool, StoreError>;
}

/// The store, as a `Context` holds it: shared by every instance, so that a token replayed
/// to another instance is caught too.
impl<'s> ReplayCache for &'s (dyn Store + 's) {
    fn first_use(&self, key: &str, until: UnixTime) -> Result<bool, StoreError> {
        self.use_assertion_id(key, until)
    }
}

/// Whether a `jti` must be new.
pub enum JtiRule<'a> {
    Unchecked,
    /// Required, non-empty, and taken once per issuer (RFC 7523 §3), remembered until the
    /// token's `exp`.
    Once(&'a dyn ReplayCache),
    /// Required and non-empty, remembered by the caller (a DPoP proof's, RFC 9449 §11.1:
    /// in the shared session store, which is asynchronous, keyed by the proof's key).
    Present,
}

/// What a caller requires of a token beyond its signature.
pub struct Rules<'a> {
    /// `iss` must be exactly this; `None`: the token names no issuer (a DPoP proof, whose
    /// key is all that identifies its sender).
    pub issuer: Option<&'a str>,
    pub subject: SubjectRule<'a>,
    pub audience: AudienceRule<'a>,
    pub lifetime: Lifetime,
    pub issued_at: IssuedAt,
    /// Seconds of clock difference forgiven on `exp`, `nbf` and `iat` (RFC 7519 §4.1.4 "some
    /// small leeway"). Every caller uses 0 today.
    pub leeway: i64,
    pub jti: JtiRule<'a>,
}

/// Verifies `token` with `key` and holds its claims to `rules` at `now`; returns the
/// claims, a JSON object. The `jti` is recorded last, so a token refused for another
/// reason does not use it up.
pub fn verify(
    token: &UnverifiedJwt<'_>,
    key: VerifyingKey<'_>,
    rules: &Rules<'_>,
    now: UnixTime,
) -> Result<Value, JwtRejection> {
    let claims = signed_claims(token, key)?;
    if !claims.is_object() {
        return Err(JwtRejection::NotAnObject);
    }
    if let Some(issuer) = rules.issuer
        && claims["iss"].as_str() != Some(issuer)
    {
        return Err(JwtRejection::WrongIssuer);
    }
    let subject_fits = match rules.subject {
        SubjectRule::Any => true,
        SubjectRule::Present => claims["sub"].is_string(),
        SubjectRule::Is(expected) => claims["sub"].as_str() == Some(expected),
    };
    if !subject_fits {
        return Err(JwtRejection::WrongSubject);
    }
    if !audience_fits(&claims["aud"], &rules.audience) {
        return Err(JwtRejection::WrongAudience);
    }
    let exp = check_lifetime(&claims, rules.lifetime, rules.leeway, now)?;
    let window = match rules.issued_at {
        IssuedAt::Unchecked => None,
        IssuedAt::NotInFuture => Some(None),
        IssuedAt::Within { window } => Some(Some(window)),
    };
    if let Some(window) = window {
        let iat = claims["iat"]
            .as_i64()
            .ok_or(JwtRejection::MissingIssuedAt)?;
        let ahead = rules.leeway.saturating_add(window.unwrap_or(0));
        if iat.saturating_sub(ahead) > now {
            return Err(JwtRejection::IssuedInFuture);
        }
        if let Some(window) = window
            && iat.saturating_add(window) < now
        {
            return Err(JwtRejection::IssuedTooLongAgo);
        }
    }
    let jti = match &rules.jti {
        JtiRule::Unchecked => None,
        JtiRule::Once(_) | JtiRule::Present => Some(
            claims["jti"]
                .as_str()
                .filter(|jti| !jti.is_empty())
                .ok_or(JwtRejection::MissingJti)?,
        ),
    };
    if let (JtiRule::Once(cache), Some(jti)) = (&rules.jti, jti) {
        let issuer = rules.issuer.unwrap_or_default();
        // Kept until the token would be refused as expired anyway.
        let until = exp.ok_or(JwtRejection::MissingExpiry)?;
        // Scoped to the issuer, so that one client cannot use up another's `jti` by
        // sending it first; hashed, so the store holds no value a client chose.
        let key = token_hash(&format!("{issuer}\n{jti}"));
        if !cache.first_use(&key, until)? {
            return Err(JwtRejection::Replayed);
        }
    }
    Ok(claims)
}

/// The payload, once the signature verifies.
fn signed_claims(token: &UnverifiedJwt<'_>, key: VerifyingKey<'_>) -> Result<Value, JwtRejection> {
    match key {
        VerifyingKey::Jose(key, alg) => {
            let mut validation = Validation::new(alg);
            // The signature only: the claims are held to `Rules`, against our clock.
            validation.validate_aud = false;
            validation.validate_exp = false;
            validation.validate_nbf = false;
            validation.required_spec_claims.clear();
            jsonwebtoken::decode::<Value>(token.token, &key, &validation)
                .map(|data| data.claims)
                .map_err(|_| JwtRejection::BadSignature)
        }
        VerifyingKey::Ours { keys, typ } => keys
            .verify_signature(token.token, Some(typ))
            .map_err(|_| JwtRejection::BadSignature),
        VerifyingKey::Unsigned => {
            if token.alg() != Some("none") || !token.signature.is_empty() {
                return Err(JwtRejection::NotUnsigned);
            }
            decode_json(token.payload)
        }
        VerifyingKey::HeaderJwk { typ, algs } => {
            let (key, alg) = header_key(token, typ, algs)?;
            signed_claims(token, VerifyingKey::Jose(key, alg))
        }
    }
}

/// The key in the header of `token`, checked as `VerifyingKey::HeaderJwk` says.
fn header_key(
    token: &UnverifiedJwt<'_>,
    typ: &str,
    algs: &[&str],
) -> Result<(DecodingKey, Algorithm), JwtRejection> {
    // RFC 9449 §4.3: "typ" is "dpop+jwt" (media types compare case-insensitively).
    let typ_fits = token.header["typ"]
        .as_str()
        .is_some_and(|t| t.eq_ignore_ascii_case(typ));
    if !typ_fits {
        return Err(JwtRejection::WrongType);
    }
    let alg = token
        .alg()
        .filter(|alg| algs.contains(alg))
        .ok_or(JwtRejection::UnsupportedAlgorithm)?;
    let alg: Algorithm = alg
        .parse()
        .map_err(|_| JwtRejection::UnsupportedAlgorithm)?;
    // Never a symmetric algorithm, whatever `algs` says: the key is public.
    if matches!(alg, Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512) {
        return Err(JwtRejection::UnsupportedAlgorithm);
    }
    let jwk = token.jwk();
    let Some(members) = jwk.as_object() else {
        return Err(JwtRejection::BadHeaderKey);
    };
    if PRIVATE_JWK_MEMBERS.iter().any(|m| members.contains_key(*m)) {
        return Err(JwtRejection::BadHeaderKey);
    }
    let jwk: jsonwebtoken::jwk::Jwk =
        serde_json::from_value(jwk.clone()).map_err(|_| JwtRejection::BadHeaderKey)?;
    let key = DecodingKey::from_jwk(&jwk).map_err(|_| JwtRejection::BadHeaderKey)?;
    Ok((key, alg))
}

fn audience_fits(aud: &Value, rule: &AudienceRule<'_>) -> bool {
    match rule {
        AudienceRule::Unchecked => true,
        AudienceRule::Includes(accepted) => accepted.iter().any(|a| audience_contains(aud, a)),
        AudienceRule::OnlyOneOf(accepted) => {
            let single = match aud {
                Value::String(a) => Some(a.as_str()),
                Value::Array(items) => match items.as_slice() {
                    [one] => one.as_str(),
                    _ => None,
                },
                _ => None,
            };
            single.is_some_and(|a| accepted.contains(&a))
        }
        AudienceRule::ExactString(expected) => aud.as_str() == Some(*expected),
    }
}

/// `exp` and `nbf` against `now`; returns `exp` when it is an integer.
fn check_lifetime(
    claims: &Value,
    lifetime: Lifetime,
    leeway: i64,
    now: UnixTime,
) -> Result<Option<i64>, JwtRejection> {
    let exp = claims["exp"].as_i64();
    let nbf = &claims["nbf"];
    let expired = |at: i64| at.saturating_add(leeway) <= now;
    let early = |at: i64| at.saturating_sub(leeway) > now;
    match lifetime {
        Lifetime::MayHaveExpired => {
            exp.ok_or(JwtRejection::MissingExpiry)?;
        }
        Lifetime::CheckedWhenPresent => {
            if exp.is_some_and(expired) {
                return Err(JwtRejection::Expired);
            }
            if nbf.as_i64().is_some_and(early) {
                return Err(JwtRejection::NotYetValid);
            }
        }
        Lifetime::AtMost { max } => {
            let exp = exp.ok_or(JwtRejection::MissingExpiry)?;
            if expired(exp) {
                return Err(JwtRejection::Expired);
            }
            if exp.saturating_sub(now) > max {
                return Err(JwtRejection::LivesTooLong);
            }
            // `null` counts as absent, as it always has for assertions.
            if !nbf.is_null() && nbf.as_i64().is_none_or(early) {
                return Err(JwtRejection::NotYetValid);
            }
        }
    }
    Ok(exp)
}

#[cfg(test)]
mod tests {
    use std::cell::RefCell;
    use std::collections::HashSet;

    use serde_json::json;

    use super::*;
    use crate::crypto::keys::{KeyAlgorithm, SigningKey};

    const NOW: UnixTime = 1_700_000_000;
    const US: &str = "https://op.example";
    const CLIENT: &str = "client-1";

    /// Asserts that `result` is the rejection `why`.
    macro_rules! assert_refused {
        ($result:expr, $why:ident) => {{
            let result = $result;
            assert!(matches!(result, Err(JwtRejection::$why)), "{result:?}");
        }};
    }

    /// A replay cache in memory.
    #[derive(Default)]
    struct Seen(RefCell<HashSet<String>>);

    impl ReplayCache for Seen {
        fn first_use(&self, key: &str, _until: UnixTime) -> Result<bool, StoreError> {
            Ok(self.0.borrow_mut().insert(key.to_owned()))
        }
    }

    fn generated() -> SigningKey {
        SigningKey::generate(KeyAlgorithm::Es256).unwrap().0
    }

    /// `key`'s public half, as a client would register it.
    fn public(key: &SigningKey) -> VerifyingKey<'static> {
        let jwk: jsonwebtoken::jwk::Jwk = serde_json::from_value(key.public_jwk().clone()).unwrap();
        VerifyingKey::Jose(DecodingKey::from_jwk(&jwk).unwrap(), Algorithm::ES256)
    }

    /// A client assertion's rules (RFC 7523), as `client_auth` states them.
    fn assertion(seen: &Seen) -> Rules<'_> {
        Rules {
            issuer: Some(CLIENT),
            subject: SubjectRule::Is(CLIENT),
            audience: AudienceRule::OnlyOneOf(&[US]),
            lifetime: Lifetime::AtMost { max: 3600 },
            issued_at: IssuedAt::Unchecked,
            leeway: 0,
            jti: JtiRule::Once(seen),
        }
    }

    /// A request object's rules (RFC 9101), as `request_object` states them.
    fn request_object() -> Rules<'static> {
        Rules {
            issuer: Some(CLIENT),
            subject: SubjectRule::Any,
            audience: AudienceRule::Includes(&[US]),
            lifetime: Lifetime::CheckedWhenPresent,
            issued_at: IssuedAt::Unchecked,
            leeway: 0,
            jti: JtiRule::Unchecked,
        }
    }

    /// Good claims with `changes` applied; a `null` change removes the claim.
    fn claims(changes: Value) -> Value {
        let mut claims =
            json!({"iss": CLIENT, "sub": CLIENT, "aud": US, "exp": NOW + 60, "jti": "j1"});
        for (name, value) in changes.as_object().unwrap() {
            if value.is_null() {
                claims.as_object_mut().unwrap().remove(name);
            } else {
                claims[name] = value.clone();
            }
        }
        claims
    }

    fn run(token: &str, key: VerifyingKey<'_>, rules: &Rules<'_>) -> Result<Value, JwtRejection> {
        verify(&UnverifiedJwt::parse(token)?, key, rules, NOW)
    }

    /// `changes` to good claims, signed by `key`, held to `rules`.
    fn check(key: &SigningKey, changes: Value, rules: &Rules<'_>) -> Result<Value, JwtRejection> {
        let token = key.sign_jwt("JWT", &claims(changes)).unwrap();
        run(&token, public(key), rules)
    }

    #[test]
    fn aud_may_be_a_string_or_an_array_that_names_us() {
        let key = generated();
        for aud in [json!(US), json!([US]), json!(["https://rs.example", US])] {
            assert!(check(&key, json!({ "aud": aud }), &request_object()).is_ok());
        }
        let other = "https://other.example";
        for aud in [
            json!(other),
            json!([other]),
            json!([]),
            json!(null),
            json!(7),
        ] {
            assert_refused!(
                check(&key, json!({ "aud": aud }), &request_object()),
                WrongAudience
            );
        }
    }

    #[test]
    fn an_assertion_names_us_as_its_only_audience() {
        let key = generated();
        for aud in [json!(US), json!([US])] {
            assert!(check(&key, json!({ "aud": aud }), &assertion(&Seen::default())).is_ok());
        }
        for aud in [json!([US, "https://other.example"]), json!([]), json!("x")] {
            let refused = check(&key, json!({ "aud": aud }), &assertion(&Seen::default()));
            assert_refused!(refused, WrongAudience);
        }
    }

    #[test]
    fn iss_and_sub_must_be_the_ones_expected() {
        let key = generated();
        let seen = Seen::default();
        assert_refused!(
            check(&key, json!({"iss": "client-2"}), &assertion(&seen)),
            WrongIssuer
        );
        let wrong_sub = json!({"sub": "client-2"});
        assert_refused!(
            check(&key, wrong_sub.clone(), &assertion(&seen)),
            WrongSubject
        );
        assert!(check(&key, wrong_sub, &request_object()).is_ok());
    }

    #[test]
    fn expired_and_not_yet_valid_tokens_are_refused() {
        let key = generated();
        for rules in [assertion(&Seen::default()), request_object()] {
            assert_refused!(check(&key, json!({"exp": NOW}), &rules), Expired);
            assert_refused!(check(&key, json!({"exp": NOW - 1}), &rules), Expired);
            assert_refused!(check(&key, json!({"nbf": NOW + 1}), &rules), NotYetValid);
            assert!(check(&key, json!({"exp": NOW + 1, "nbf": NOW}), &rules).is_ok());
        }
    }

    #[test]
    fn the_leeway_forgives_a_small_clock_difference_and_no_more() {
        let key = generated();
        let rules = Rules {
            leeway: 30,
            ..request_object()
        };
        assert!(check(&key, json!({"exp": NOW - 10}), &rules).is_ok());
        assert!(check(&key, json!({"nbf": NOW + 10}), &rules).is_ok());
        assert_refused!(check(&key, json!({"exp": NOW - 30}), &rules), Expired);
        assert_refused!(check(&key, json!({"nbf": NOW + 31}), &rules), NotYetValid);
    }

    #[test]
    fn an_assertion_must_expire_and_within_its_longest_lifetime() {
        let key = generated();
        let seen = Seen::default();
        let fractional = (NOW + 60) as f64 + 0.5;
        for exp in [json!(null), json!("soon"), json!(fractional)] {
            assert_refused!(
                check(&key, json!({ "exp": exp }), &assertion(&seen)),
                MissingExpiry
            );
        }
        assert_refused!(
            check(&key, json!({"exp": NOW + 3601}), &assertion(&seen)),
            LivesTooLong
        );
        assert!(check(&key, json!({"exp": NOW + 3600}), &assertion(&seen)).is_ok());
        // A request object need not expire, and a malformed `nbf` is ignored there, as it
        // always has been; an assertion's is refused.
        let odd = json!({"exp": null, "nbf": "later"});
        assert!(check(&key, odd, &request_object()).is_ok());
        let odd = json!({"nbf": "later", "jti": "j2"});
        assert_refused!(check(&key, odd, &assertion(&seen)), NotYetValid);
    }

    #[test]
    fn iat_in_the_future_beyond_the_leeway_is_refused_when_checked() {
        let key = generated();
        let rules = Rules {
            issued_at: IssuedAt::NotInFuture,
            leeway: 5,
            ..request_object()
        };
        assert!(check(&key, json!({"iat": NOW + 5}), &rules).is_ok());
        assert_refused!(check(&key, json!({"iat": NOW + 6}), &rules), IssuedInFuture);
        assert_refused!(check(&key, json!({}), &rules), MissingIssuedAt);
        assert!(check(&key, json!({"iat": NOW + 1000}), &request_object()).is_ok());
    }

    #[test]
    fn a_jti_is_taken_once_per_issuer_and_only_by_a_token_that_passes() {
        let key = generated();
        let seen = Seen::default();
        let token = key.sign_jwt("JWT", &claims(json!({}))).unwrap();
        assert!(run(&token, public(&key), &assertion(&seen)).is_ok());
        assert_refused!(run(&token, public(&key), &assertion(&seen)), Replayed);
        // The same `jti` from another issuer is another token.
        let other = Rules {
            issuer: Some("client-2"),
            subject: SubjectRule::Is("client-2"),
            ..assertion(&seen)
        };
        assert!(check(&key, json!({"iss": "client-2", "sub": "client-2"}), &other).is_ok());
        // A token refused for its audience does not use its `jti` up.
        let misaddressed = json!({"jti": "j9", "aud": "https://other.example"});
        assert_refused!(check(&key, misaddressed, &assertion(&seen)), WrongAudience);
        assert!(check(&key, json!({"jti": "j9"}), &assertion(&seen)).is_ok());
        for jti in [json!(null), json!(""), json!(42)] {
            assert_refused!(
                check(&key, json!({ "jti": jti }), &assertion(&seen)),
                MissingJti
            );
        }
    }

    #[test]
    fn the_form_and_the_signature_are_checked_before_any_claim() {
        let key = generated();
        let good = key.sign_jwt("JWT", &claims(json!({}))).unwrap();
        let forged = generated().sign_jwt("JWT", &claims(json!({}))).unwrap();
        assert_refused!(run(&forged, public(&key), &request_object()), BadSignature);
        assert_refused!(run("a.b", public(&key), &request_object()), NotCompact);
        let five = format!("{good}.x.y");
        assert_refused!(run(&five, public(&key), &request_object()), NotCompact);
        assert_refused!(run("!!.b.c", public(&key), &request_object()), Malformed);
        // A signed token is not taken as an unsigned one by dropping its signature.
        let (signing_input, _) = good.rsplit_once('.').unwrap();
        let stripped = format!("{signing_input}.");
        assert_refused!(
            run(&stripped, VerifyingKey::Unsigned, &request_object()),
            NotUnsigned
        );
    }

    #[test]
    fn an_unsigned_token_passes_only_as_unsigned_with_an_empty_signature() {
        let encode = |v: &Value| URL_SAFE_NO_PAD.encode(v.to_string());
        let header = encode(&json!({"alg": "none"}));
        let payload = encode(&claims(json!({})));
        let token = format!("{header}.{payload}.");
        let claims = run(&token, VerifyingKey::Unsigned, &request_object()).unwrap();
        assert_eq!(claims["iss"], CLIENT);
        let signed = format!("{header}.{payload}.c2ln");
        assert_refused!(
            run(&signed, VerifyingKey::Unsigned, &request_object()),
            NotUnsigned
        );
        let array = format!("{header}.{}.", encode(&json!([1])));
        assert_refused!(
            run(&array, VerifyingKey::Unsigned, &request_object()),
            NotAnObject
        );
    }

    #[test]
    fn a_token_of_ours_comes_back_with_our_key_and_type_and_may_have_expired() {
        let keys = KeySet::new(vec![generated()]);
        let signer = keys.signing_key(KeyAlgorithm::Es256, 0).unwrap();
        let hint = Rules {
            issuer: Some(US),
            subject: SubjectRule::Present,
            audience: AudienceRule::Unchecked,
            lifetime: Lifetime::MayHaveExpired,
            issued_at: IssuedAt::Unchecked,
            leeway: 0,
            jti: JtiRule::Unchecked,
        };
        let ours = || VerifyingKey::Ours {
            keys: &keys,
            typ: "JWT",
        };
        let id_token = json!({"iss": US, "sub": "u1", "aud": CLIENT, "exp": NOW - 3600});
        let token = signer.sign_jwt("JWT", &id_token).unwrap();
        assert_eq!(run(&token, ours(), &hint).unwrap()["sub"], "u1");
        let access = signer.sign_jwt("at+jwt", &id_token).unwrap();
        assert_refused!(run(&access, ours(), &hint), BadSignature);
        let without = |name: &str| {
            let mut partial = id_token.clone();
            partial.as_object_mut().unwrap().remove(name);
            run(&signer.sign_jwt("JWT", &partial).unwrap(), ours(), &hint)
        };
        assert_refused!(without("sub"), WrongSubject);
        assert_refused!(without("exp"), MissingExpiry);
    }
}
