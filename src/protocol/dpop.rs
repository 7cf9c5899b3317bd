//! DPoP: demonstrating proof of possession (RFC 9449). A client proves, request by
//! request, that it holds a private key: the token endpoint binds the tokens it issues to
//! that key (`cnf.jkt`, §6.1), and the resources it is presented to (userinfo, the admin
//! API) accept such a token only with a fresh proof by the same key (§7).
//!
//! What is checked here, each rule once (the signature and the JWT claims through the one
//! verifier, `jwt`): `typ` `dpop+jwt`, an asymmetric `alg` of `DPOP_ALGS`, a public `jwk`
//! in the header, `htm` and `htu` (§4.3, normalised), `iat` within `PROOF_WINDOW` of now,
//! `jti` present (remembered by the caller, in the shared session store, for the window:
//! `VerifiedProof::recorded`), `ath` at resources (§4.3), and the server's nonce (§8, §9) when
//! one is required. Nonces are stateless: an HMAC of the time slot under a key derived
//! from the key-encryption key, so every instance issues and accepts the same ones.

use serde_json::Value;

use super::error::Challenge;
use super::jwt::{
    self, AudienceRule, IssuedAt, JtiRule, JwtRejection, Lifetime, Rules, SubjectRule,
    UnverifiedJwt, VerifyingKey,
};
use super::{ErrorCode, OAuthError};
use crate::crypto::kek::KeyEncryptionKey;
use crate::crypto::tokens::{constant_time_eq, pkce_s256, token_hash};
use crate::domain::UnixTime;

/// RFC 9449 §4.2: the `typ` of a proof.
pub const PROOF_TYP: &str = "dpop+jwt";
/// The algorithms proofs may be signed with: what the verifier accepts and what discovery
/// lists (`dpop_signing_alg_values_supported`, §5.1). Asymmetric only (§4.2).
pub const DPOP_ALGS: [&str; 4] = ["ES256", "PS256", "RS256", "EdDSA"];
/// The authorization scheme of a DPoP-bound token (§7.1) and the request header of a
/// proof (§4.1).
pub const SCHEME: &str = "DPoP";
/// Seconds a proof's `iat` may be from now, either way (§11.1): also how long its `jti`
/// is remembered.
pub const PROOF_WINDOW: i64 = 60;
/// Seconds a nonce slot lasts; the current and the previous slot's nonce are accepted, so
/// a nonce is good for one to two periods (§8.2: the server decides).
pub const NONCE_PERIOD: i64 = 300;
/// Between a refresh token and the thumbprint of the key it is bound to (§5). The token
/// is stored and looked up by the hash of the whole, so the part after it cannot be
/// changed; random tokens and derived successors are base64url, which has no `~`.
const REFRESH_BINDING: char = '~';

/// The most bytes a `DPoP` header may have: refused before any parsing (a proof is a
/// compact JWS with one public key in its header; an RSA-4096 proof is under 2 KiB).
pub const MAX_PROOF_BYTES: usize = 8 * 1024;

/// A request's one `DPoP` header value (§4.3 step 1: "not more than one"), at most
/// `MAX_PROOF_BYTES`, visible ASCII: typed once read, so nothing else reads the header.
#[derive(Clone, PartialEq, Eq)]
pub struct ProofHeader(String);

impl ProofHeader {
    /// The proof among a request's `DPoP` header values, if any.
    pub fn from_values(values: &[&[u8]]) -> Result<Option<Self>, OAuthError> {
        let one = match values {
            [] => return Ok(None),
            [one] => *one,
            _ => return Err(invalid("more than one DPoP header")),
        };
        if one.len() > MAX_PROOF_BYTES {
            return Err(invalid("the DPoP header is too large"));
        }
        let text = std::str::from_utf8(one)
            .ok()
            .filter(|t| !t.is_empty() && t.bytes().all(|b| b.is_ascii_graphic()))
            .ok_or_else(|| invalid("the DPoP header is not a JWT"))?;
        Ok(Some(Self(text.to_owned())))
    }
}

impl std::fmt::Debug for ProofHeader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ProofHeader(<redacted>)")
    }
}

/// What the request the proof came with was. Built only by the constructors below, so a
/// resource cannot leave out the access token `ath` must hash. Its `Debug` leaves the
/// access token out.
#[derive(Clone, Copy)]
pub struct ProofTarget<'a> {
    /// The HTTP method (`htm`).
    method: &'a str,
    /// The URL of the endpoint as this server knows it (below its issuer): the proof's
    /// `htu` must be it, both normalised (§4.3).
    url: &'a str,
    /// At a resource, the access token the proof must hash (`ath`, §4.3, §7.1).
    access_token: Option<&'a str>,
    /// Whether the server requires its nonce of every proof (`dpop_nonce = true`).
    nonce_required: bool,
}

impl<'a> ProofTarget<'a> {
    /// A request to the authorization server (the token endpoint), which carries no
    /// access token.
    pub fn authorization_server(method: &'a str, url: &'a str, nonce_required: bool) -> Self {
        Self {
            method,
            url,
            access_token: None,
            nonce_required,
        }
    }

    /// A request to a resource with `access_token` (§7.1): the proof must hash it.
    pub fn resource(
        method: &'a str,
        url: &'a str,
        access_token: &'a str,
        nonce_required: bool,
    ) -> Self {
        Self {
            method,
            url,
            access_token: Some(access_token),
            nonce_required,
        }
    }
}

impl std::fmt::Debug for ProofTarget<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProofTarget")
            .field("method", &self.method)
            .field("url", &self.url)
            .field("access_token", &self.access_token.map(|_| "<redacted>"))
            .field("nonce_required", &self.nonce_required)
            .finish()
    }
}

/// A proof that passed every check and whose `jti` was used for the first time: what a
/// grant or a resource takes. Made only by `VerifiedProof::recorded`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Proof {
    /// RFC 7638 SHA-256 thumbprint of the proof's key, base64url (`cnf.jkt`, §6.1).
    jkt: String,
    /// Whether the proof carried a nonce of ours that is still current.
    nonce_fresh: bool,
}

impl Proof {
    /// RFC 7638 SHA-256 thumbprint of the proof's key, base64url (`cnf.jkt`, §6.1).
    pub fn jkt(&self) -> &str {
        &self.jkt
    }
}

/// A proof that passed every check but whose `jti` is not yet recorded (§11.1): the
/// caller records it once it knows who the request is from, then gets the `Proof`.
#[derive(Debug, PartialEq, Eq)]
#[must_use = "a verified proof counts only once its jti is recorded"]
pub struct VerifiedProof {
    proof: Proof,
    replay_key: String,
}

impl VerifiedProof {
    /// The key under which the caller records the proof's `jti` for `PROOF_WINDOW`
    /// seconds (on every instance): the hash of the key's thumbprint and the `jti`, so
    /// one client cannot use up another's `jti` and the store holds no value a client
    /// chose.
    pub fn replay_key(&self) -> &str {
        &self.replay_key
    }

    /// The proof, once recording its `jti` told whether this was its first use (§11.1:
    /// a replay is refused).
    pub fn recorded(self, first_use: bool) -> Result<Proof, OAuthError> {
        if first_use {
            Ok(self.proof)
        } else {
            Err(replayed())
        }
    }
}

fn invalid(description: impl Into<std::borrow::Cow<'static, str>>) -> OAuthError {
    OAuthError::new(ErrorCode::InvalidDpopProof, description)
}

fn rejected(why: JwtRejection) -> OAuthError {
    invalid(format!("invalid DPoP proof: {why}"))
}

/// Verifies `proof` for a request to `target` at `now` (§4.3): every check but the
/// `jti`'s first use, which the caller records (`VerifiedProof::recorded`).
pub(crate) fn verify_proof(
    proof: &ProofHeader,
    target: &ProofTarget<'_>,
    kek: &KeyEncryptionKey,
    now: UnixTime,
) -> Result<VerifiedProof, OAuthError> {
    let token = UnverifiedJwt::parse(&proof.0).map_err(rejected)?;
    check_key_type(token.jwk(), token.alg())?;
    let rules = Rules {
        issuer: None,
        subject: SubjectRule::Any,
        audience: AudienceRule::Unchecked,
        lifetime: Lifetime::CheckedWhenPresent,
        issued_at: IssuedAt::Within {
            window: PROOF_WINDOW,
        },
        leeway: 0,
        jti: JtiRule::Present,
    };
    let key = VerifyingKey::HeaderJwk {
        typ: PROOF_TYP,
        algs: &DPOP_ALGS,
    };
    let claims = jwt::verify(&token, key, &rules, now).map_err(rejected)?;
    if claims["htm"].as_str() != Some(target.method) {
        return Err(invalid("htm is not the method of the request"));
    }
    let htu = claims["htu"]
        .as_str()
        .and_then(normalised_url)
        .ok_or_else(|| invalid("htu is missing or not a URL"))?;
    if Some(htu) != normalised_url(target.url) {
        return Err(invalid("htu is not the URL of the request"));
    }
    if let Some(access_token) = target.access_token
        && claims["ath"].as_str() != Some(access_token_hash(access_token).as_str())
    {
        return Err(invalid("ath is not the hash of the access token"));
    }
    let jkt = thumbprint(token.jwk()).ok_or_else(|| rejected(JwtRejection::BadHeaderKey))?;
    let nonce_fresh = claims["nonce"]
        .as_str()
        .is_some_and(|nonce| nonce_is_current(kek, nonce, now));
    if target.nonce_required && !nonce_fresh {
        return Err(nonce_needed());
    }
    let jti = claims["jti"].as_str().unwrap_or_default();
    let replay_key = token_hash(&format!("dpop\n{jkt}\n{jti}"));
    Ok(VerifiedProof {
        proof: Proof { jkt, nonce_fresh },
        replay_key,
    })
}

/// The key types a proof may be signed with, each with its algorithms (RFC 7518 §3.4,
/// §6.2.1.1: ES256 is P-256; RFC 8037 §3.1: EdDSA here is Ed25519): anything else is
/// refused before its signature is looked at, and so is a key whose type does not fit
/// `alg`. Private members are refused by the verifier (`VerifyingKey::HeaderJwk`).
fn check_key_type(jwk: &Value, alg: Option<&str>) -> Result<(), OAuthError> {
    let fits = matches!(
        (jwk["kty"].as_str(), jwk["crv"].as_str(), alg),
        (Some("EC"), Some("P-256"), Some("ES256"))
            | (Some("RSA"), None, Some("RS256" | "PS256"))
            | (Some("OKP"), Some("Ed25519"), Some("EdDSA"))
    );
    if fits {
        Ok(())
    } else {
        Err(invalid(
            "the DPoP proof's jwk is not a supported key (EC P-256, RSA, OKP Ed25519) for its alg",
        ))
    }
}

/// §8, §9: the proof must carry the nonce the response's `DPoP-Nonce` header gives.
pub fn nonce_needed() -> OAuthError {
    OAuthError::new(
        ErrorCode::UseDpopNonce,
        "the DPoP proof must carry the server's nonce (DPoP-Nonce)",
    )
}

/// A proof whose `jti` was seen before within the window (§11.1).
pub fn replayed() -> OAuthError {
    invalid("the DPoP proof was used before (jti)")
}

/// §4.3: "ignoring any query and fragment parts", compared after RFC 3986 §6.2.2/§6.2.3
/// normalisation: scheme and host in lower case, the default port left out, an empty path
/// as `/`.
pub fn normalised_url(text: &str) -> Option<String> {
    let mut url = url::Url::parse(text).ok()?;
    if url.cannot_be_a_base() || !matches!(url.scheme(), "https" | "http") {
        return None;
    }
    url.set_query(None);
    url.set_fragment(None);
    Some(url.to_string())
}

/// `ath` (§4.3): the base64url SHA-256 of the access token's ASCII.
pub fn access_token_hash(access_token: &str) -> String {
    pkce_s256(access_token)
}

/// RFC 7638 §3: the SHA-256 thumbprint of a public JWK, base64url, over its required
/// members in lexicographic order without whitespace (RFC 7638 §3.2: EC `crv kty x y`,
/// RSA `e kty n`, RFC 8037 §2 OKP `crv kty x`). `None` for another or incomplete key.
pub fn thumbprint(jwk: &Value) -> Option<String> {
    let members: &[&str] = match jwk["kty"].as_str()? {
        "EC" => &["crv", "kty", "x", "y"],
        "RSA" => &["e", "kty", "n"],
        "OKP" => &["crv", "kty", "x"],
        _ => return None,
    };
    let mut canonical = String::from("{");
    for (i, name) in members.iter().enumerate() {
        let value = jwk[*name].as_str()?;
        if i > 0 {
            canonical.push(',');
        }
        canonical.push_str(&format!("\"{name}\":{}", Value::from(value)));
    }
    canonical.push('}');
    Some(pkce_s256(&canonical))
}

fn slot_of(now: UnixTime) -> i64 {
    now.div_euclid(NONCE_PERIOD)
}

fn nonce_of_slot(kek: &KeyEncryptionKey, slot: i64) -> String {
    kek.derive("dpop-nonce", &slot.to_string())
}

/// The nonce the server hands out now (`DPoP-Nonce`, §8.1): the same on every instance.
pub fn current_nonce(kek: &KeyEncryptionKey, now: UnixTime) -> String {
    nonce_of_slot(kek, slot_of(now))
}

/// Whether `nonce` is this slot's or the previous one's.
pub fn nonce_is_current(kek: &KeyEncryptionKey, nonce: &str, now: UnixTime) -> bool {
    let slot = slot_of(now);
    [slot, slot - 1]
        .into_iter()
        .any(|s| constant_time_eq(nonce_of_slot(kek, s).as_bytes(), nonce.as_bytes()))
}

/// What a token request proved, and what the client's registration makes of it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Binding {
    /// The key's thumbprint: the issued access token's `cnf.jkt`.
    pub jkt: String,
    /// §5: a public client's refresh tokens are bound too; a confidential client's are
    /// not (it authenticates when it refreshes).
    pub refresh_bound: bool,
}

/// What the client's DPoP settings require of its token request (§5.2
/// `dpop_bound_access_tokens`, §8 nonces), and the binding of what is issued.
pub fn token_request_binding(
    proof: Option<&Proof>,
    client_is_public: bool,
    bound_tokens_required: bool,
    nonce_required: bool,
) -> Result<Option<Binding>, OAuthError> {
    let Some(proof) = proof else {
        if bound_tokens_required {
            return Err(OAuthError::invalid_request(
                "this client's tokens are DPoP-bound: send a DPoP proof",
            ));
        }
        return Ok(None);
    };
    if nonce_required && !proof.nonce_fresh {
        return Err(nonce_needed());
    }
    Ok(Some(Binding {
        jkt: proof.jkt.clone(),
        refresh_bound: client_is_public,
    }))
}

/// A refresh token as issued under `binding`: bound to its key when refresh tokens are.
pub fn bind_refresh_token(token: String, binding: Option<&Binding>) -> String {
    match binding {
        Some(b) if b.refresh_bound => format!("{token}{REFRESH_BINDING}{}", b.jkt),
        _ => token,
    }
}

/// The thumbprint a refresh token is bound to, if any.
pub fn refresh_token_jkt(token: &str) -> Option<&str> {
    token.split_once(REFRESH_BINDING).map(|(_, jkt)| jkt)
}

/// The successor of a refresh token keeps its binding (§5: the key stays the same for the
/// token's whole family). An unbound one refreshed by a public client with a proof is
/// bound from then on to the proof's key (§5: a refresh token issued to a public client
/// that presents a valid proof "MUST be bound to the respective public key"). A pure
/// function of the presented token and the proof's key, so a retry within the grace
/// window derives the same successor.
pub fn successor_with_binding(
    successor: String,
    presented: &str,
    binding: Option<&Binding>,
) -> String {
    match refresh_token_jkt(presented) {
        Some(jkt) => format!("{successor}{REFRESH_BINDING}{jkt}"),
        None => bind_refresh_token(successor, binding),
    }
}

/// §5: a bound refresh token is used only with a proof by its key.
pub fn check_refresh_binding(token: &str, binding: Option<&Binding>) -> Result<(), OAuthError> {
    match refresh_token_jkt(token) {
        None => Ok(()),
        Some(jkt) if binding.is_some_and(|b| b.jkt == jkt) => Ok(()),
        Some(_) => Err(OAuthError::invalid_grant(
            "the refresh token is bound to another DPoP key",
        )),
    }
}

/// RFC 9449 §10: the `dpop_jkt` authorization request parameter, "the JWK SHA-256
/// Thumbprint [RFC7638] of the proof-of-possession public key", as `cnf.jkt` (§6.1) is:
/// base64url without padding of 32 bytes, so 43 characters. Anything else is refused,
/// so that no code is bound to a key that can never match.
pub fn parse_dpop_jkt(value: &str) -> Result<String, OAuthError> {
    use base64::Engine;
    // 43 characters that decode (canonically: the 2 bits left over must be zero) are
    // exactly 32 bytes.
    let thumbprint = value.len() == THUMBPRINT_CHARS
        && base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(value)
            .is_ok();
    if !thumbprint {
        return Err(OAuthError::invalid_request(
            "dpop_jkt must be a base64url SHA-256 JWK thumbprint (RFC 9449 §10)",
        ));
    }
    Ok(value.to_owned())
}

/// The length of a base64url SHA-256 thumbprint without padding.
const THUMBPRINT_CHARS: usize = 43;

/// RFC 9449 §10.1: the key a pushed authorization request binds its code to. A proof at
/// the PAR endpoint (verified as at the token endpoint, `nonce_required` being the
/// client's nonce rule) counts as if its key's thumbprint were sent as `dpop_jkt`; "If
/// both mechanisms are used at the same time, the authorization server MUST reject the
/// request if the JWK Thumbprint in dpop_jkt does not match the public key in the DPoP
/// header" (`invalid_request`: the request's parameters disagree).
pub fn pushed_request_jkt(
    dpop_jkt: Option<&str>,
    proof: Option<&Proof>,
    nonce_required: bool,
) -> Result<Option<String>, OAuthError> {
    let Some(proof) = proof else {
        return Ok(dpop_jkt.map(str::to_owned));
    };
    if nonce_required && !proof.nonce_fresh {
        return Err(nonce_needed());
    }
    match dpop_jkt {
        Some(jkt) if jkt != proof.jkt => Err(OAuthError::invalid_request(
            "dpop_jkt is not the thumbprint of the DPoP proof's key (RFC 9449 §10.1)",
        )),
        _ => Ok(Some(proof.jkt.clone())),
    }
}

/// RFC 9449 §10: a code bound to a key (`dpop_jkt`) is redeemed only by a token request
/// whose proof is by that key: "If they do not match, it MUST reject the request"
/// (`invalid_grant`: the code is not the client's to redeem this way).
pub fn check_code_binding(
    code_jkt: Option<&str>,
    binding: Option<&Binding>,
) -> Result<(), OAuthError> {
    match (code_jkt, binding) {
        (None, _) => Ok(()),
        (Some(jkt), Some(b)) if constant_time_eq(b.jkt.as_bytes(), jkt.as_bytes()) => Ok(()),
        (Some(_), Some(_)) => Err(OAuthError::invalid_grant(
            "the authorization code is bound to another DPoP key (dpop_jkt)",
        )),
        (Some(_), None) => Err(OAuthError::invalid_grant(
            "the authorization code is bound to a DPoP key (dpop_jkt): send a DPoP proof by it",
        )),
    }
}

/// How an access token came to a resource.
#[derive(Clone, Copy, Debug)]
pub enum Presented<'a> {
    /// `Authorization: Bearer` (or the form body, RFC 6750 §2.2).
    Bearer,
    /// `Authorization: DPoP` with this verified proof (§7.1).
    Dpop(&'a Proof),
}

/// §7.1: a bound token only with a proof by its key, an unbound one only as Bearer.
pub fn check_presentation(
    token_jkt: Option<&str>,
    presented: Presented<'_>,
) -> Result<(), OAuthError> {
    match (token_jkt, presented) {
        (None, Presented::Bearer) => Ok(()),
        (Some(_), Presented::Bearer) => Err(OAuthError::invalid_token(
            "the access token is DPoP-bound: use the DPoP scheme",
        )
        .with_challenge(Challenge::Dpop)),
        (None, Presented::Dpop(_)) => Err(OAuthError::invalid_token(
            "the access token is not DPoP-bound: use the Bearer scheme",
        )),
        (Some(jkt), Presented::Dpop(proof)) if proof.jkt == jkt => Ok(()),
        (Some(_), Presented::Dpop(_)) => Err(invalid(
            "the DPoP proof's key is not the one the access token is bound to",
        )),
    }
}

/// §9: at a resource, a proof for a token whose client requires nonces must carry a fresh
/// one (the server-wide requirement is checked with the proof itself).
pub fn check_client_nonce(
    presented: Presented<'_>,
    nonce_required: bool,
) -> Result<(), OAuthError> {
    match presented {
        Presented::Dpop(proof) if nonce_required && !proof.nonce_fresh => Err(nonce_needed()),
        _ => Ok(()),
    }
}

/// Whether a resource's refusal is answered with a `DPoP` challenge (§7.1) though the
/// request used `Bearer`: the token was DPoP-bound.
pub fn wants_dpop_challenge(error: &OAuthError) -> bool {
    matches!(
        error.code,
        ErrorCode::InvalidDpopProof | ErrorCode::UseDpopNonce
    ) || error.challenge == Some(Challenge::Dpop)
}

/// `cnf` of a bound access token (RFC 7800 §3.1, RFC 9449 §6.1).
pub fn confirmation(jkt: &str) -> Value {
    serde_json::json!({ "jkt": jkt })
}

/// The thumbprint in an access token's `cnf`, if it is bound.
pub fn bound_jkt(cnf: Option<&Value>) -> Option<&str> {
    cnf.and_then(|c| c["jkt"].as_str())
}

#[cfg(test)]
#[path = "dpop_tests.rs"]
mod tests;

#[cfg(test)]
#[path = "dpop_binding_tests.rs"]
mod binding_tests;
