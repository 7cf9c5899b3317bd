//! ID tokens (OIDC Core §2) and access tokens (RFC 9068 JWTs, or opaque references a
//! client's operator chose: `opaque_token`): built, signed or stored, and returned as
//! values. What goes on the wire is each grant's business (`grants`).

use serde::Deserialize;
use serde_json::{Value, json};

pub use super::access_claims::{ACCESS_TOKEN_TYP, AccessToken, AccessTokenClaims, Subject};
use super::jwt::{
    self, AudienceRule, IssuedAt, JtiRule, Lifetime, Rules, SubjectRule, UnverifiedJwt,
    VerifyingKey,
};
use super::opaque_token;
use super::profile::ClientProfile;
use super::{Context, OAuthError};
use crate::crypto::kek::KeyEncryptionKey;
use crate::crypto::keys::JwtExpectations;
use crate::crypto::tokens::{left_half_sha256, left_half_sha512, random_token};
use crate::crypto::{KeyAlgorithm, KeySet};
use crate::domain::{AccessTokenFormat, UnixTime};
use crate::store::{Client, Grant, OpaqueAccessToken};

/// The `sub` a client knows a user by (OIDC Core §8): the user's id, or for a client of a
/// pairwise sector an HMAC (under a key derived from the key-encryption key) of the sector
/// and the id, the same for every client of that sector and unrelated across sectors.
pub fn subject_for(client: &Client, user_id: &str, kek: &KeyEncryptionKey) -> String {
    match client.pairwise_sector() {
        Some(sector) => kek.derive("pairwise-sub", &format!("{sector}\n{user_id}")),
        None => user_id.to_owned(),
    }
}

/// What an access token is issued for.
pub struct AccessTokenRequest<'a> {
    pub subject: &'a Subject,
    pub client: &'a Client,
    pub scope: &'a str,
    /// RFC 8707 resources; empty means this provider (its userinfo endpoint).
    pub audience: &'a [String],
    pub auth_time: Option<i64>,
    /// The user's sign-in: its `acr` and `amr` (as stored: space-separated).
    pub acr: Option<&'a str>,
    pub amr: Option<&'a str>,
    /// The user's group names, for a token with the `groups` scope.
    pub groups: Option<&'a [String]>,
}

pub(crate) fn signing_key(
    keys: &KeySet,
    alg: KeyAlgorithm,
    now: i64,
) -> Result<&crate::crypto::SigningKey, OAuthError> {
    keys.signing_key(alg, now)
        .ok_or_else(|| OAuthError::server(format!("no {} signing key", alg.as_str())))
}

/// The algorithm a client asked for its ID tokens (OIDC Registration §2), its profile's
/// default otherwise (RS256, or PS256 under fapi2).
pub fn id_token_alg(client: &Client) -> KeyAlgorithm {
    client
        .metadata
        .id_token_signed_response_alg
        .unwrap_or_else(|| ClientProfile::of(client).default_signing_alg())
}

/// The algorithm of a client's access tokens (`access_token_signed_response_alg`
/// metadata, as with ID tokens), the profile's default otherwise: ES256 signs ten times
/// faster.
pub fn access_token_alg(client: &Client) -> KeyAlgorithm {
    client
        .metadata
        .access_token_signed_response_alg
        .unwrap_or_else(|| ClientProfile::of(client).default_signing_alg())
}

pub fn issue_access_token(
    request: &AccessTokenRequest<'_>,
    ctx: &Context<'_>,
) -> Result<AccessToken, OAuthError> {
    mint_access_token(access_token_claims(request, ctx), request.client, ctx)
}

/// The claims of an access token for `request`, not yet signed: a grant that needs more
/// (token exchange: `act`, a shorter life) changes them before `prepare_access_token`.
pub fn access_token_claims(
    request: &AccessTokenRequest<'_>,
    ctx: &Context<'_>,
) -> AccessTokenClaims {
    let config = ctx.config;
    let (sub, gid) = match request.subject {
        Subject::User { user_id, grant_id } => (
            subject_for(request.client, user_id, ctx.kek),
            Some(grant_id.clone()),
        ),
        Subject::Client { client_id } => (client_id.clone(), None),
    };
    let aud = match request.audience {
        [] => json!(config.issuer),
        [one] => json!(one),
        many => json!(many),
    };
    AccessTokenClaims {
        iss: config.issuer.clone(),
        sub,
        aud,
        client_id: request.client.id.clone(),
        scope: request.scope.to_owned(),
        jti: random_token(16),
        exp: ctx.now + config.access_token_ttl,
        iat: ctx.now,
        auth_time: request.auth_time,
        acr: request.acr.map(str::to_owned),
        amr: request.amr.map(|text| {
            super::stored_amr::amr_words(text)
                .into_iter()
                .map(str::to_owned)
                .collect()
        }),
        groups: request.groups.map(<[String]>::to_vec),
        gid,
        act: None,
        exchanged_from: Vec::new(),
        // Every grant's access tokens are built here: a proof at the token endpoint binds
        // them all (RFC 9449 §5).
        cnf: ctx
            .dpop
            .map(|binding| super::dpop::confirmation(&binding.jkt)),
    }
}

/// The access token of `claims` in `client`'s format, recorded if it is opaque.
pub fn mint_access_token(
    claims: AccessTokenClaims,
    client: &Client,
    ctx: &Context<'_>,
) -> Result<AccessToken, OAuthError> {
    prepare_access_token(claims, client, ctx)?.record(ctx)
}

/// An access token made but, if opaque, not yet recorded: a grant with a transaction of
/// its own (code redemption, refresh rotation) records `pending` in it, and calls
/// `recorded`; anything still pending is recorded by `record`.
#[derive(Debug)]
pub struct PreparedAccessToken {
    pub token: AccessToken,
    pending: Option<OpaqueAccessToken>,
}

impl PreparedAccessToken {
    /// The row to record with the caller's own writes, if any is still to be recorded.
    pub fn pending(&self) -> Option<&OpaqueAccessToken> {
        self.pending.as_ref()
    }

    /// The caller's transaction recorded `pending`.
    pub fn recorded(mut self) -> Self {
        self.pending = None;
        self
    }

    /// The token, once recorded (one INSERT for an opaque one still pending).
    pub fn record(self, ctx: &Context<'_>) -> Result<AccessToken, OAuthError> {
        if let Some(row) = &self.pending {
            ctx.store.insert_opaque_access_token(row)?;
        }
        Ok(self.token)
    }
}

/// The access token of `claims` in `client`'s format: signed with the algorithm of its
/// access tokens (RFC 9068), or an opaque reference (`opaque_token`) whose claims are to
/// be stored: no signature, one INSERT.
pub fn prepare_access_token(
    claims: AccessTokenClaims,
    client: &Client,
    ctx: &Context<'_>,
) -> Result<PreparedAccessToken, OAuthError> {
    match client.access_token_format {
        AccessTokenFormat::Jwt => {
            let payload = serde_json::to_value(&claims).map_err(OAuthError::server)?;
            let token = signing_key(ctx.keys, access_token_alg(client), ctx.now)?
                .sign_jwt(ACCESS_TOKEN_TYP, &payload)
                .map_err(OAuthError::server)?;
            Ok(PreparedAccessToken {
                token: AccessToken { token, claims },
                pending: None,
            })
        }
        AccessTokenFormat::Opaque => {
            let token = opaque_token::mint();
            let row = opaque_token::record(&token, &claims);
            Ok(PreparedAccessToken {
                token: AccessToken { token, claims },
                pending: Some(row),
            })
        }
    }
}

/// Why an ID token is issued: OIDC Core §12.2 treats the refreshed one differently.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IdTokenOccasion {
    Authentication,
    Refresh,
}

/// What an ID token is issued with: the values it must hash (OIDC Core §3.1.3.6 `at_hash`
/// for the access token issued with it, §3.3.2.11 `c_hash` for the code), and the user's
/// claims when no access token reaches the client to fetch them with (§5.4).
#[derive(Default)]
pub struct IdTokenExtras<'a> {
    pub access_token: Option<&'a str>,
    pub code: Option<&'a str>,
    pub claims: Option<serde_json::Map<String, Value>>,
}

/// `at_hash` / `c_hash` (OIDC Core §3.1.3.6): the left half of the hash the signing
/// algorithm uses, base64url: SHA-256 for RS256, PS256 and ES256; SHA-512 for EdDSA with
/// Ed25519 (whose signature hashes with SHA-512, as the OpenID Foundation's errata and
/// every certified implementation read it).
pub fn half_hash(alg: KeyAlgorithm, value: &str) -> String {
    match alg {
        KeyAlgorithm::Rs256 | KeyAlgorithm::Ps256 | KeyAlgorithm::Es256 => left_half_sha256(value),
        KeyAlgorithm::EdDsa => left_half_sha512(value),
    }
}

/// An ID token for the user of `grant`. On refresh the grant supplies the original
/// `auth_time` and `sid`, and the nonce is left out (§12.2: it "SHOULD NOT have a nonce
/// Claim").
pub fn issue_id_token(
    grant: &Grant,
    client: &Client,
    extras: IdTokenExtras<'_>,
    occasion: IdTokenOccasion,
    ctx: &Context<'_>,
) -> Result<String, OAuthError> {
    let alg = id_token_alg(client);
    let key = signing_key(ctx.keys, alg, ctx.now)?;
    let mut id = json!({
        "iss": ctx.config.issuer,
        "sub": subject_for(client, &grant.user_id, ctx.kek),
        "aud": client.id,
        "exp": ctx.now + ctx.config.id_token_ttl,
        "iat": ctx.now,
        "auth_time": grant.auth_time,
    });
    if let Some(claims) = extras.claims {
        for (name, value) in claims {
            // The protocol claims above are not the user's to override.
            if id.get(&name).is_none() {
                id[name] = value;
            }
        }
    }
    if let Some(token) = extras.access_token {
        id["at_hash"] = json!(half_hash(alg, token));
    }
    if let Some(code) = extras.code {
        id["c_hash"] = json!(half_hash(alg, code));
    }
    if let (Some(nonce), IdTokenOccasion::Authentication) = (&grant.nonce, occasion) {
        id["nonce"] = json!(nonce);
    }
    if let Some(sid) = &grant.session_id {
        id["sid"] = json!(sid);
    }
    if let Some(acr) = &grant.acr {
        id["acr"] = json!(acr);
    }
    if let Some(amr) = &grant.amr {
        id["amr"] = json!(super::stored_amr::amr_words(amr));
    }
    // Issue 24: which upstream provider the session signed in through (our `sub` stays
    // ours; the upstream's is never sent).
    if let Some(idp) = super::stored_amr::idp_of(grant.amr.as_deref()) {
        id["idp"] = json!(idp);
    }
    key.sign_jwt("JWT", &id).map_err(OAuthError::server)
}

/// What a verified `id_token_hint` says.
#[derive(Debug, Deserialize)]
pub struct IdTokenHint {
    pub sub: String,
    #[serde(default)]
    aud: Value,
}

impl IdTokenHint {
    /// The hint's audience: one client id, or several.
    pub fn audience(&self) -> Vec<&str> {
        match &self.aud {
            Value::String(aud) => vec![aud.as_str()],
            Value::Array(auds) => auds.iter().filter_map(Value::as_str).collect(),
            _ => Vec::new(),
        }
    }

    pub fn is_for(&self, client_id: &str) -> bool {
        self.audience().contains(&client_id)
    }
}

/// An `id_token_hint` (OIDC Core §3.1.2.1, RP-Initiated Logout §2): an ID token we issued
/// (our signature and issuer, `typ: JWT` so that an access token does not pass), which may
/// have expired. The one check for every endpoint that takes a hint.
pub fn verify_id_token_hint(
    hint: &str,
    keys: &KeySet,
    issuer: &str,
    now: UnixTime,
) -> Result<IdTokenHint, OAuthError> {
    let invalid =
        || OAuthError::invalid_request("id_token_hint is not a valid ID token from this provider");
    let rules = Rules {
        issuer: Some(issuer),
        subject: SubjectRule::Present,
        // Whom the hint was for is each endpoint's question (`IdTokenHint::is_for`).
        audience: AudienceRule::Unchecked,
        lifetime: Lifetime::MayHaveExpired,
        issued_at: IssuedAt::Unchecked,
        leeway: 0,
        jti: JtiRule::Unchecked,
    };
    let token = UnverifiedJwt::parse(hint).map_err(|_| invalid())?;
    let ours = VerifyingKey::Ours { keys, typ: "JWT" };
    let claims = jwt::verify(&token, ours, &rules, now).map_err(|_| invalid())?;
    serde_json::from_value(claims).map_err(|_| invalid())
}

/// What a presented access token of ours says, whatever its format, if it has not
/// expired and is for `audience`: a JWT by its signature (no storage), an opaque token by
/// the one lookup of its hash. Whether it is still live is `verify_access_token`'s
/// question, the same for both.
pub fn resolve_access_token(
    token: &str,
    ctx: &Context<'_>,
    audience: Option<&str>,
) -> Result<Option<AccessTokenClaims>, OAuthError> {
    if !opaque_token::looks_opaque(token) {
        return Ok(decode_access_token(token, ctx, audience));
    }
    let Some(row) = ctx
        .store
        .find_opaque_access_token(&opaque_token::hash(token))?
    else {
        return Ok(None);
    };
    let claims = opaque_token::claims(row, &ctx.config.issuer)?;
    let usable = claims.exp > ctx.now && opaque_token::is_for(&claims.aud, audience);
    Ok(usable.then_some(claims))
}

/// Checks signature, issuer, type and lifetime of a JWT we issued: no storage involved.
pub fn decode_access_token(
    token: &str,
    ctx: &Context<'_>,
    audience: Option<&str>,
) -> Option<AccessTokenClaims> {
    let expect = JwtExpectations {
        issuer: &ctx.config.issuer,
        typ: Some(ACCESS_TOKEN_TYP),
        now: Some(ctx.now),
        audience,
    };
    ctx.keys.verify(token, &expect).ok()
}

/// Verifies an access token we issued for `audience` and that it is still live: not
/// revoked, and its grant (for a user's token) neither revoked nor expired.
pub fn verify_access_token(
    token: &str,
    audience: Option<&str>,
    ctx: &Context<'_>,
) -> Result<AccessTokenClaims, OAuthError> {
    let claims = resolve_access_token(token, ctx, audience)?
        .ok_or_else(|| OAuthError::invalid_token("the access token is invalid or has expired"))?;
    let subject = claims
        .subject()
        .ok_or_else(|| OAuthError::invalid_token("the access token is invalid or has expired"))?;
    let revoked = || OAuthError::invalid_token("the access token has been revoked");
    let grant_id = match &subject {
        Subject::User { grant_id, .. } => Some(grant_id.as_str()),
        Subject::Client { .. } => None,
    };
    // Every token dies with the client it was issued to: a client's own token has no
    // grant to revoke, and a user's token from an exchange belongs to another client's
    // grant (its subject's), which the deletion of the exchanging client leaves alone.
    // (Cached: client records are in the liveness cache.)
    if ctx.store.find_client(&claims.client_id)?.is_none() {
        return Err(revoked());
    }
    if !ctx
        .store
        .access_token_live(&claims.jti, grant_id, ctx.now)?
    {
        return Err(revoked());
    }
    // A token from an exchange dies with each token it was exchanged from (RFC 7009
    // revocation denylists only the `jti` it is given).
    for parent in &claims.exchanged_from {
        if !ctx.store.access_token_live(parent, None, ctx.now)? {
            return Err(revoked());
        }
    }
    Ok(claims)
}

#[cfg(test)]
#[path = "tokens_tests.rs"]
mod tests;
