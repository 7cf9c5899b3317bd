//! Request objects (RFC 9101, OIDC Core §6): the authorization request as a JWT signed
//! by the client, by value (`request`) or by reference (`request_uri`, one the client
//! registered).

use serde_json::Value;

use crate::protocol::client_auth::client_public_key;
use crate::protocol::jwt::{
    AudienceRule, IssuedAt, JtiRule, JwtRejection, Lifetime, Rules, SubjectRule, UnverifiedJwt,
    VerifyingKey, verify as verify_jwt,
};
use crate::protocol::profile::ClientProfile;
use crate::protocol::{Context, ErrorCode, OAuthError, Params};
use crate::store::Client;

/// Algorithms a request object may be signed with; `none` is also taken from a client that
/// registered no algorithm, or registered `none` (OIDC Dynamic Registration §2).
pub const REQUEST_OBJECT_ALGS: [&str; 4] = ["RS256", "PS256", "ES256", "EdDSA"];

const MAX_REQUEST_OBJECT: usize = 64 * 1024;

fn invalid(description: &'static str) -> OAuthError {
    OAuthError::new(ErrorCode::InvalidRequestObject, description)
}

/// JWT claims that are about the object, not parameters of the request.
const ENVELOPE: [&str; 6] = ["iss", "aud", "exp", "iat", "nbf", "jti"];

/// The client's registered `request_object_signing_alg`.
fn registered_alg(client: &Client) -> Option<&str> {
    client.metadata.request_object_signing_alg.as_deref()
}

/// What the shared verifier found wrong, said as this endpoint has always said it.
fn rejected(rejection: JwtRejection) -> OAuthError {
    match rejection {
        // Five parts would be encrypted (JWE): not supported.
        JwtRejection::NotCompact => invalid("the request object must be a signed JWT"),
        JwtRejection::Malformed => invalid("the request object is not a JWT"),
        JwtRejection::NotUnsigned => {
            invalid("an unsigned request object must have an empty signature")
        }
        JwtRejection::BadSignature => invalid("the request object's signature does not verify"),
        JwtRejection::NotAnObject => invalid("the request object's payload is not a JSON object"),
        JwtRejection::WrongIssuer => invalid("the request object's iss must be the client"),
        JwtRejection::WrongAudience => invalid("the request object's aud must be this issuer"),
        JwtRejection::Expired
        | JwtRejection::NotYetValid
        | JwtRejection::MissingExpiry
        | JwtRejection::LivesTooLong
        | JwtRejection::MissingIssuedAt
        | JwtRejection::IssuedInFuture => {
            invalid("the request object has expired or is not valid yet")
        }
        // Not among the rules a request object is held to (`verify` below).
        JwtRejection::WrongSubject
        | JwtRejection::MissingJti
        | JwtRejection::Replayed
        | JwtRejection::IssuedTooLongAgo
        | JwtRejection::WrongType
        | JwtRejection::UnsupportedAlgorithm
        | JwtRejection::BadHeaderKey => invalid("the request object is not valid"),
        JwtRejection::Store(e) => e.into(),
    }
}

/// Verifies `jwt` as `client`'s request object and returns its claims: signed with a
/// key of the client (`jwks` / `jwks_uri`) in an algorithm it may use, `iss` the client,
/// `aud` this issuer (RFC 9101 §6.3, §10.2), within its lifetime.
pub fn verify(jwt: &str, client: &Client, ctx: &Context<'_>) -> Result<Value, OAuthError> {
    if jwt.len() > MAX_REQUEST_OBJECT {
        return Err(invalid("the request object is too large"));
    }
    let token = UnverifiedJwt::parse(jwt).map_err(rejected)?;
    let alg = token.alg().unwrap_or_default();
    // A profile may narrow the algorithms (FAPI 2.0 §5.4: PS256, ES256, EdDSA; no `none`).
    if !ClientProfile::of(client).allows_jws_alg(alg) {
        return Err(invalid(
            "the request object's algorithm is not allowed for this client",
        ));
    }
    if let Some(registered) = registered_alg(client)
        && registered != alg
    {
        return Err(invalid(
            "the request object is not signed with the registered algorithm",
        ));
    }
    let key = if alg == "none" {
        // OIDC Dynamic Registration §2: with no registered request_object_signing_alg,
        // any algorithm the OP supports may be used, and discovery lists `none`. An
        // unsigned object is trusted no more than the query parameters it stands for; a
        // client that registered a signing algorithm was refused above.
        VerifyingKey::Unsigned
    } else {
        if !REQUEST_OBJECT_ALGS.contains(&alg) {
            return Err(invalid("the request object's algorithm is not supported"));
        }
        let algorithm: jsonwebtoken::Algorithm = alg
            .parse()
            .map_err(|_| invalid("the request object's algorithm is not supported"))?;
        let key = client_public_key(client, token.kid(), algorithm, ctx)
            .map_err(|_| invalid("no key of the client verifies the request object"))?;
        VerifyingKey::Jose(key, algorithm)
    };
    // RFC 9101 §6.3, §10.2: `iss` the client, `aud` this issuer; `exp` and `nbf` are
    // optional and checked when present.
    let us = [ctx.config.issuer.as_str()];
    let rules = Rules {
        issuer: Some(&client.id),
        subject: SubjectRule::Any,
        audience: AudienceRule::Includes(&us),
        lifetime: Lifetime::CheckedWhenPresent,
        issued_at: IssuedAt::Unchecked,
        leeway: 0,
        jti: JtiRule::Unchecked,
    };
    let claims = verify_jwt(&token, key, &rules, ctx.now).map_err(rejected)?;
    if claims
        .get("client_id")
        .is_some_and(|c| c.as_str() != Some(client.id.as_str()))
    {
        return Err(invalid("the request object's client_id is another client"));
    }
    if claims.get("request").is_some() || claims.get("request_uri").is_some() {
        return Err(invalid("a request object cannot name another"));
    }
    Ok(claims)
}

/// The request's parameters with those of its request object, which take precedence
/// (OIDC Core §6.1: "the values ... inside the Request Object take precedence"); the
/// object comes by value (`request`) or from a `request_uri` the client registered, fetched
/// with a timeout and a size limit.
pub fn expand(params: Params, client: &Client, ctx: &Context<'_>) -> Result<Params, OAuthError> {
    let jwt = match (params.single("request")?, params.single("request_uri")?) {
        (None, None) => return Ok(params),
        (Some(_), Some(_)) => {
            return Err(OAuthError::invalid_request(
                "request and request_uri cannot both be sent",
            ));
        }
        (Some(jwt), None) => jwt.to_owned(),
        (None, Some(uri)) => {
            let registered = client.metadata.request_uris.iter().any(|u| u == uri);
            if !registered {
                return Err(OAuthError::new(
                    ErrorCode::InvalidRequestUri,
                    "request_uri is not registered for this client",
                ));
            }
            ctx.client_keys.text(uri).map_err(|_| {
                OAuthError::new(
                    ErrorCode::InvalidRequestUri,
                    "request_uri could not be fetched",
                )
            })?
        }
    };
    let claims = verify(jwt.trim(), client, ctx)?;
    let mut merged: Vec<(String, String)> = Vec::new();
    if let Value::Object(members) = &claims {
        for (name, value) in members {
            if ENVELOPE.contains(&name.as_str()) {
                continue;
            }
            let text = match value {
                Value::String(s) => s.clone(),
                Value::Null => continue,
                // RFC 8707 §2: `resource` may repeat; in a JSON object, as an array.
                Value::Array(items) if name == "resource" => {
                    for item in items {
                        let text = item
                            .as_str()
                            .map_or_else(|| item.to_string(), str::to_owned);
                        merged.push((name.clone(), text));
                    }
                    continue;
                }
                // `max_age` as a number, `claims` as an object: their text form.
                other => other.to_string(),
            };
            merged.push((name.clone(), text));
        }
    }
    for (name, value) in params.pairs() {
        if name != "request" && name != "request_uri" && !merged.iter().any(|(n, _)| n == name) {
            merged.push((name.clone(), value.clone()));
        }
    }
    Ok(Params::new(merged))
}
