//! Client authentication (RFC 6749 §2.3, OIDC Core §9, RFC 7523 §2.2): one enum of the
//! credentials a request presents, one verifier per kind. Every failure is the same
//! `invalid_client` ("client authentication failed"), so that the answer tells nobody
//! which client ids exist or how they authenticate; only a request that uses two methods
//! at once is `invalid_request` (RFC 6749 §2.3).

use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey};

use super::jwt::{
    self, AudienceRule, IssuedAt, JtiRule, JwtRejection, Lifetime, Rules, SubjectRule,
    UnverifiedJwt, VerifyingKey,
};
use super::profile::ClientProfile;
use super::{Context, OAuthError, Params};
use crate::crypto::tokens::{constant_time_eq, token_hash};
use crate::domain::Secret;
use crate::store::{AuthMethod, Client};

/// RFC 7523 §2.2.
pub const JWT_BEARER_ASSERTION: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// The longest an assertion may live (`exp - now`): it is a one-time credential, and its
/// `jti` is remembered until it expires.
pub const MAX_ASSERTION_LIFETIME: i64 = 3600;

/// Credentials as presented, decoded from the `Authorization` header and the body.
#[derive(Debug)]
pub enum PresentedCredentials {
    /// `client_secret_basic`: RFC 6749 §2.3.1, form-urlencoded before base64.
    Basic {
        client_id: String,
        secret: Secret<String>,
    },
    /// `client_secret_post`.
    Post {
        client_id: String,
        secret: Secret<String>,
    },
    /// `client_secret_jwt` or `private_key_jwt`, told apart by the client's registration.
    Assertion {
        /// The body's `client_id`, optional (RFC 7521 §4.2): it must name the issuer.
        client_id: Option<String>,
        assertion: Secret<String>,
    },
    /// A public client names itself and proves nothing (`none`).
    ClientId(String),
    Nothing,
}

fn failed() -> OAuthError {
    OAuthError::invalid_client("client authentication failed")
}

impl PresentedCredentials {
    pub fn from_request(
        basic: Option<(String, Secret<String>)>,
        body: &Params,
    ) -> Result<Self, OAuthError> {
        let client_id = body.single("client_id")?.map(str::to_owned);
        let secret = body.single("client_secret")?;
        let assertion_type = body.single("client_assertion_type")?;
        let assertion = body.single("client_assertion")?;
        let methods = [basic.is_some(), secret.is_some(), assertion.is_some()];
        if methods.iter().filter(|m| **m).count() > 1 {
            return Err(OAuthError::invalid_request(
                "use only one client authentication method",
            ));
        }
        if let Some((id, secret)) = basic {
            if client_id.as_deref().is_some_and(|p| p != id) {
                return Err(OAuthError::invalid_request(
                    "client_id differs from the authenticated client",
                ));
            }
            return Ok(Self::Basic {
                client_id: id,
                secret,
            });
        }
        if let Some(secret) = secret {
            let client_id = client_id.ok_or_else(failed)?;
            return Ok(Self::Post {
                client_id,
                secret: Secret::new(secret.to_owned()),
            });
        }
        if let Some(assertion) = assertion {
            if assertion_type != Some(JWT_BEARER_ASSERTION) {
                return Err(failed());
            }
            return Ok(Self::Assertion {
                client_id,
                assertion: Secret::new(assertion.to_owned()),
            });
        }
        Ok(match client_id {
            Some(id) => Self::ClientId(id),
            None => Self::Nothing,
        })
    }

    /// The client id the credentials claim, before any verification.
    fn claimed_client_id(&self) -> Option<String> {
        match self {
            Self::Basic { client_id, .. }
            | Self::Post { client_id, .. }
            | Self::ClientId(client_id) => Some(client_id.clone()),
            Self::Assertion { assertion, .. } => unverified_issuer(assertion.expose()),
            Self::Nothing => None,
        }
    }
}

/// `endpoint` is the URL the credentials were sent to; assertions may name it, the token
/// endpoint or the issuer as their audience (RFC 7523 §3, OIDC Core §9).
pub fn authenticate(
    creds: &PresentedCredentials,
    endpoint: &str,
    ctx: &Context<'_>,
) -> Result<Client, OAuthError> {
    let client_id = creds.claimed_client_id().ok_or_else(failed)?;
    let client = ctx.store.find_client(&client_id)?.ok_or_else(failed)?;
    // A profile may narrow the methods (FAPI 2.0: private_key_jwt only), whatever the
    // client's registration says.
    if !ClientProfile::of(&client).allows_auth_method(client.auth_method) {
        return Err(failed());
    }
    match (creds, client.auth_method) {
        // A client with a secret may present it either way: RFC 6749 §2.3.1 says the
        // server MUST support HTTP Basic for clients issued a password, and relying
        // parties switch between the two freely.
        (
            PresentedCredentials::Basic { secret, .. } | PresentedCredentials::Post { secret, .. },
            AuthMethod::ClientSecretBasic | AuthMethod::ClientSecretPost,
        ) => verify_secret(&client, secret)?,
        (
            PresentedCredentials::Assertion {
                client_id,
                assertion,
            },
            AuthMethod::ClientSecretJwt | AuthMethod::PrivateKeyJwt,
        ) => {
            if client_id.as_deref().is_some_and(|id| id != client.id) {
                return Err(failed());
            }
            verify_assertion(&client, assertion.expose(), endpoint, ctx)?
        }
        (PresentedCredentials::ClientId(_), AuthMethod::None) => {}
        _ => return Err(failed()),
    }
    Ok(client)
}

fn verify_secret(client: &Client, secret: &Secret<String>) -> Result<(), OAuthError> {
    let stored = client.secret_hash.as_deref().unwrap_or("");
    // SHA-256 suffices for 256-bit random secrets (see `token_hash`); compared in
    // constant time.
    if constant_time_eq(token_hash(secret.expose()).as_bytes(), stored.as_bytes()) {
        Ok(())
    } else {
        Err(failed())
    }
}

/// The `iss` of an assertion, unverified: only used to find the client whose key then
/// verifies it.
fn unverified_issuer(assertion: &str) -> Option<String> {
    use base64::Engine;
    let payload = assertion.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .ok()?;
    let value: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    value["iss"].as_str().map(str::to_owned)
}

/// HS256 only: RFC 7518 §3.2 requires a key at least as long as the hash, and client
/// secrets are 256-bit values.
const HMAC_ALGS: [Algorithm; 1] = [Algorithm::HS256];
/// Every algorithm a client assertion may use (RFC 7523), as discovery lists them:
/// HMAC for client_secret_jwt, signatures for private_key_jwt.
pub const ASSERTION_ALGS: [Algorithm; 10] = [
    HMAC_ALGS[0],
    SIGNATURE_ALGS[0],
    SIGNATURE_ALGS[1],
    SIGNATURE_ALGS[2],
    SIGNATURE_ALGS[3],
    SIGNATURE_ALGS[4],
    SIGNATURE_ALGS[5],
    SIGNATURE_ALGS[6],
    SIGNATURE_ALGS[7],
    SIGNATURE_ALGS[8],
];
/// EdDSA is Ed25519 (an OKP JWK, RFC 8037), as FAPI 2.0 §5.4.1 names it.
const SIGNATURE_ALGS: [Algorithm; 9] = [
    Algorithm::RS256,
    Algorithm::RS384,
    Algorithm::RS512,
    Algorithm::PS256,
    Algorithm::PS384,
    Algorithm::PS512,
    Algorithm::ES256,
    Algorithm::ES384,
    Algorithm::EdDSA,
];

/// RFC 7523 §3: `iss` and `sub` are the client, `aud` names this server, `exp` is
/// required (and here at most an hour away), `jti` is used once.
fn verify_assertion(
    client: &Client,
    assertion: &str,
    endpoint: &str,
    ctx: &Context<'_>,
) -> Result<(), OAuthError> {
    let token = UnverifiedJwt::parse(assertion).map_err(|_| failed())?;
    let alg = token
        .alg()
        .and_then(|alg| alg.parse::<Algorithm>().ok())
        .ok_or_else(failed)?;
    let profile = ClientProfile::of(client);
    if !profile.allows_jws_alg(token.alg().unwrap_or_default()) {
        return Err(failed());
    }
    let key = match client.auth_method {
        AuthMethod::ClientSecretJwt if HMAC_ALGS.contains(&alg) => {
            let sealed = client.secret_ciphertext.as_deref().ok_or_else(failed)?;
            let secret = ctx
                .kek
                .decrypt(sealed, &client.id)
                .map_err(|e| OAuthError::server(format!("client {}: {e}", client.id)))?;
            DecodingKey::from_secret(&secret).map_err(|_| failed())?
        }
        AuthMethod::PrivateKeyJwt if SIGNATURE_ALGS.contains(&alg) => {
            client_public_key(client, token.kid(), alg, ctx)?
        }
        _ => return Err(failed()),
    };
    // One audience, and it is us: the issuer (draft-ietf-oauth-rfc7523bis), the token
    // endpoint (OIDC Core §9) or the endpoint called (what authlib sends).
    let token_endpoint = ctx.config.endpoint(super::features::TOKEN.path);
    let ours = [
        ctx.config.issuer.as_str(),
        token_endpoint.as_str(),
        endpoint,
    ];
    // FAPI 2.0 §5.3.2.1: the issuer alone, "as a string" (what the other two would let
    // through is the audience confusion the profile closes).
    let audience = if profile.assertion_audience_is_issuer_only() {
        AudienceRule::ExactString(ours[0])
    } else {
        AudienceRule::OnlyOneOf(&ours)
    };
    let rules = Rules {
        issuer: Some(&client.id),
        subject: SubjectRule::Is(&client.id),
        audience,
        lifetime: Lifetime::AtMost {
            max: MAX_ASSERTION_LIFETIME,
        },
        issued_at: IssuedAt::Unchecked,
        leeway: 0,
        jti: JtiRule::Once(&ctx.store),
    };
    match jwt::verify(&token, VerifyingKey::Jose(key, alg), &rules, ctx.now) {
        Ok(_) => Ok(()),
        Err(JwtRejection::Store(e)) => Err(e.into()),
        Err(_) => Err(failed()),
    }
}

/// The client's key for `kid` (or its only key of a fitting type when the assertion
/// names none): from the registered JWK Set, or from `jwks_uri`, fetched again once when
/// the `kid` is unknown (the client rotated its keys).
pub(crate) fn client_public_key(
    client: &Client,
    kid: Option<&str>,
    alg: Algorithm,
    ctx: &Context<'_>,
) -> Result<DecodingKey, OAuthError> {
    let pick = |set: &serde_json::Value| -> Option<DecodingKey> {
        let set: JwkSet = serde_json::from_value(set.clone()).ok()?;
        let candidates: Vec<_> = set
            .keys
            .iter()
            .filter(|k| match kid {
                Some(kid) => k.common.key_id.as_deref() == Some(kid),
                None => true,
            })
            .filter_map(|k| DecodingKey::from_jwk(k).ok().map(|d| (k, d)))
            .filter(|(k, _)| key_fits(k, alg))
            .collect();
        match candidates.as_slice() {
            [(_, key)] => Some(key.clone()),
            _ => None,
        }
    };
    if let Some(set) = &client.jwks {
        return pick(set).ok_or_else(failed);
    }
    let uri = client.jwks_uri.as_deref().ok_or_else(failed)?;
    if let Some(key) = pick(&ctx.client_keys.jwk_set(uri, false)?) {
        return Ok(key);
    }
    pick(&ctx.client_keys.jwk_set(uri, true)?).ok_or_else(failed)
}

fn key_fits(jwk: &jsonwebtoken::jwk::Jwk, alg: Algorithm) -> bool {
    use jsonwebtoken::jwk::AlgorithmParameters as P;
    let family_fits = matches!(
        (&jwk.algorithm, alg),
        (
            P::RSA(_),
            Algorithm::RS256
                | Algorithm::RS384
                | Algorithm::RS512
                | Algorithm::PS256
                | Algorithm::PS384
                | Algorithm::PS512
        ) | (P::EllipticCurve(_), Algorithm::ES256 | Algorithm::ES384)
            | (P::OctetKeyPair(_), Algorithm::EdDSA)
    );
    let use_fits = !matches!(
        jwk.common.public_key_use,
        Some(jsonwebtoken::jwk::PublicKeyUse::Encryption)
    );
    family_fits && use_fits
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::ErrorCode;
    use crate::protocol::testing::TestWorld;

    fn basic(client_id: &str, secret: &str) -> PresentedCredentials {
        PresentedCredentials::Basic {
            client_id: client_id.to_owned(),
            secret: Secret::new(secret.to_owned()),
        }
    }

    fn post(client_id: &str, secret: &str) -> PresentedCredentials {
        PresentedCredentials::Post {
            client_id: client_id.to_owned(),
            secret: Secret::new(secret.to_owned()),
        }
    }

    /// The credentials as the token endpoint checks them.
    fn at_token_endpoint(
        world: &TestWorld,
        creds: &PresentedCredentials,
    ) -> Result<Client, OAuthError> {
        authenticate(
            creds,
            &world.config.endpoint(crate::protocol::features::TOKEN.path),
            &world.ctx(),
        )
    }

    /// Refused the one way every failure is refused, telling nothing more.
    fn assert_failed(answer: Result<Client, OAuthError>) {
        let error = answer.unwrap_err();
        assert_eq!(error.code, ErrorCode::InvalidClient);
        assert_eq!(
            error.description.as_deref(),
            Some("client authentication failed")
        );
    }

    #[test]
    fn a_secret_client_authenticates_with_its_secret_in_the_header_or_in_the_body() {
        let world = TestWorld::default();
        for method in [AuthMethod::ClientSecretBasic, AuthMethod::ClientSecretPost] {
            let id = method.as_str();
            let (_, secret) = world.add_client(id, method);
            let secret = secret.unwrap();
            for creds in [basic(id, &secret), post(id, &secret)] {
                let client = at_token_endpoint(&world, &creds).unwrap();
                assert_eq!(client.id, id, "{creds:?}");
            }
        }
    }

    #[test]
    fn a_wrong_secret_is_invalid_client_either_way() {
        let world = TestWorld::default();
        let (client, _) = world.add_client("rp", AuthMethod::ClientSecretBasic);
        assert_failed(at_token_endpoint(&world, &basic(&client.id, "wrong")));
        assert_failed(at_token_endpoint(&world, &post(&client.id, "wrong")));
        assert_failed(at_token_endpoint(&world, &basic(&client.id, "")));
    }

    #[test]
    fn a_public_client_names_itself_and_may_not_present_a_secret() {
        let world = TestWorld::default();
        let (client, secret) = world.add_client("spa", AuthMethod::None);
        assert_eq!(secret, None);
        let named = PresentedCredentials::ClientId(client.id.clone());
        assert_eq!(at_token_endpoint(&world, &named).unwrap().id, "spa");
        assert_failed(at_token_endpoint(&world, &post(&client.id, "made-up")));
        assert_failed(at_token_endpoint(&world, &basic(&client.id, "made-up")));
    }

    #[test]
    fn a_confidential_client_that_only_names_itself_is_invalid_client() {
        let world = TestWorld::default();
        let (client, _) = world.add_client("rp", AuthMethod::ClientSecretBasic);
        let named = PresentedCredentials::ClientId(client.id.clone());
        assert_failed(at_token_endpoint(&world, &named));
        assert_failed(at_token_endpoint(&world, &PresentedCredentials::Nothing));
    }

    #[test]
    fn an_unknown_client_is_invalid_client_whatever_it_presents() {
        let world = TestWorld::default();
        let unknown = "no-such-client";
        assert_failed(at_token_endpoint(&world, &basic(unknown, "x")));
        assert_failed(at_token_endpoint(&world, &post(unknown, "x")));
        let named = PresentedCredentials::ClientId(unknown.to_owned());
        assert_failed(at_token_endpoint(&world, &named));
    }

    #[test]
    fn a_private_key_jwt_client_whose_keys_cannot_be_fetched_is_invalid_client() {
        let world = TestWorld::default();
        let (mut client, _) = world.add_client("jwt", AuthMethod::PrivateKeyJwt);
        client.jwks_uri = Some("https://rp.example/jwks".to_owned());
        let key = client_public_key(&client, None, Algorithm::ES256, &world.ctx());
        assert_eq!(key.err().map(|e| e.code), Some(ErrorCode::InvalidClient));
    }

    #[test]
    fn two_methods_at_once_are_invalid_request_not_invalid_client() {
        let body = Params::new(vec![("client_secret".to_owned(), "s".to_owned())]);
        let header = Some(("rp".to_owned(), Secret::new("s".to_owned())));
        let error = PresentedCredentials::from_request(header, &body).unwrap_err();
        assert_eq!(error.code, ErrorCode::InvalidRequest);
    }
}
