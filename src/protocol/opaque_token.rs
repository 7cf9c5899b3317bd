//! Opaque access tokens (issue 26): 256 random bits, base64url, with no structure a
//! resource server could read. What the token says is stored under its SHA-256 (never
//! the token itself, as for refresh tokens and codes) and given back as the same
//! [`AccessTokenClaims`] a JWT carries, so introspection (RFC 7662 §2.2), userinfo,
//! revocation and token exchange treat both formats alike. Issuing one is one INSERT
//! and no signature; resolving it is one primary-key lookup.

use serde_json::Value;

use super::OAuthError;
use super::access_claims::AccessTokenClaims;
use crate::crypto::tokens::{random_token, token_hash};
use crate::store::OpaqueAccessToken;

/// 256 bits of randomness.
const RANDOM_BYTES: usize = 32;
/// Their base64url length without padding.
const LENGTH: usize = 43;

/// A new opaque access token.
pub fn mint() -> String {
    random_token(RANDOM_BYTES)
}

/// Whether `token` has the shape of an opaque token: 43 base64url characters. A JWT
/// (with its dots) never does, so a JWT costs no lookup and an opaque token no signature
/// check.
pub fn looks_opaque(token: &str) -> bool {
    token.len() == LENGTH
        && token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// The stored hash of `token`.
pub fn hash(token: &str) -> String {
    token_hash(token)
}

fn words(list: &[String]) -> Option<String> {
    (!list.is_empty()).then(|| list.join(" "))
}

/// The row that stands for `token` with `claims` (the `iss` is ours: not stored).
pub fn record(token: &str, claims: &AccessTokenClaims) -> OpaqueAccessToken {
    OpaqueAccessToken {
        token_hash: hash(token),
        jti: claims.jti.clone(),
        client_id: claims.client_id.clone(),
        grant_id: claims.gid.clone(),
        subject: claims.sub.clone(),
        scope: claims.scope.clone(),
        audience: claims.aud.to_string(),
        issued_at: claims.iat,
        expires_at: claims.exp,
        auth_time: claims.auth_time,
        acr: claims.acr.clone(),
        amr: claims.amr.as_deref().and_then(words),
        groups: claims
            .groups
            .as_ref()
            .map(|g| Value::from(g.clone()).to_string()),
        jkt: claims.dpop_jkt().map(str::to_owned),
        act: claims.act.as_ref().map(Value::to_string),
        exchanged_from: words(&claims.exchanged_from),
    }
}

fn json_column(name: &str, text: &str) -> Result<Value, OAuthError> {
    serde_json::from_str(text)
        .map_err(|e| OAuthError::server(format!("opaque access token has unreadable {name}: {e}")))
}

/// What the stored token says, as the JWT of the same claims would (`iss` is `issuer`).
pub fn claims(row: OpaqueAccessToken, issuer: &str) -> Result<AccessTokenClaims, OAuthError> {
    let split = |text: Option<String>| -> Vec<String> {
        text.map(|t| t.split(' ').map(str::to_owned).collect())
            .unwrap_or_default()
    };
    let groups = match row.groups.as_deref() {
        None => None,
        Some(text) => Some(
            serde_json::from_value(json_column("groups", text)?)
                .map_err(|e| OAuthError::server(format!("opaque access token groups: {e}")))?,
        ),
    };
    Ok(AccessTokenClaims {
        iss: issuer.to_owned(),
        aud: json_column("audience", &row.audience)?,
        act: row
            .act
            .as_deref()
            .map(|a| json_column("act", a))
            .transpose()?,
        cnf: row.jkt.as_deref().map(super::dpop::confirmation),
        amr: row.amr.map(|a| split(Some(a))),
        exchanged_from: split(row.exchanged_from),
        groups,
        sub: row.subject,
        client_id: row.client_id,
        scope: row.scope,
        jti: row.jti,
        exp: row.expires_at,
        iat: row.issued_at,
        auth_time: row.auth_time,
        acr: row.acr,
        gid: row.grant_id,
    })
}

/// Whether a token for `aud` may be used at `audience` (`None`: anywhere).
pub fn is_for(aud: &Value, audience: Option<&str>) -> bool {
    let Some(audience) = audience else {
        return true;
    };
    match aud {
        Value::String(one) => one == audience,
        Value::Array(many) => many.iter().any(|a| a.as_str() == Some(audience)),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn claims_of_everything() -> AccessTokenClaims {
        AccessTokenClaims {
            iss: "https://op.example".into(),
            sub: "pairwise-sub".into(),
            aud: json!(["https://api.a", "https://api.b"]),
            client_id: "rp".into(),
            scope: "openid groups".into(),
            jti: "jti-1".into(),
            exp: 2000,
            iat: 1000,
            auth_time: Some(900),
            acr: Some("urn:acr:mfa".into()),
            amr: Some(vec!["pwd".into(), "otp".into()]),
            groups: Some(vec!["ops team".into()]),
            gid: Some("grant-1".into()),
            act: Some(json!({"sub": "svc", "act": {"sub": "older"}})),
            exchanged_from: vec!["jti-0".into(), "jti-00".into()],
            cnf: Some(json!({"jkt": "thumb"})),
        }
    }

    #[test]
    fn a_minted_token_is_256_random_bits_in_base64url_with_no_structure() {
        let token = mint();
        assert!(looks_opaque(&token));
        assert!(!token.contains('.'), "not a JWT");
        assert_ne!(token, mint());
    }

    #[test]
    fn a_jwt_never_looks_opaque() {
        assert!(!looks_opaque("eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln"));
        assert!(!looks_opaque(&"a".repeat(42)));
        assert!(!looks_opaque(&format!("{}+", "a".repeat(42))));
    }

    #[test]
    fn the_record_holds_the_hash_never_the_token() {
        let token = mint();
        let row = record(&token, &claims_of_everything());
        assert_eq!(row.token_hash, token_hash(&token));
        assert!(!format!("{row:?}").contains(&token));
    }

    #[test]
    fn the_stored_claims_read_back_as_the_jwt_would_say_them() {
        let issued = claims_of_everything();
        let back = claims(record(&mint(), &issued), "https://op.example").unwrap();
        assert_eq!(
            serde_json::to_value(&back).unwrap(),
            serde_json::to_value(&issued).unwrap()
        );
        assert_eq!(back.dpop_jkt(), Some("thumb"));
    }

    #[test]
    fn a_client_token_without_extras_reads_back_without_them() {
        let issued = AccessTokenClaims {
            aud: json!("https://op.example"),
            auth_time: None,
            acr: None,
            amr: None,
            groups: None,
            gid: None,
            act: None,
            exchanged_from: Vec::new(),
            cnf: None,
            sub: "rp".into(),
            ..claims_of_everything()
        };
        let back = claims(record(&mint(), &issued), "https://op.example").unwrap();
        assert_eq!(
            serde_json::to_value(&back).unwrap(),
            serde_json::to_value(&issued).unwrap()
        );
    }

    #[test]
    fn the_audience_rule_is_the_jwts() {
        let many = json!(["https://api.a", "https://api.b"]);
        assert!(is_for(&many, Some("https://api.b")));
        assert!(!is_for(&many, Some("https://op.example")));
        assert!(is_for(
            &json!("https://op.example"),
            Some("https://op.example")
        ));
        assert!(is_for(&json!("x"), None));
    }
}
