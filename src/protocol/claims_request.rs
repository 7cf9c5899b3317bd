//! The `claims` request parameter (OIDC Core §5.5) and the authentication context
//! (`acr_values`, §3.1.2.1; `acr`, §2): individual claims asked for the ID token and for
//! userinfo, beyond what the scopes release.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::{ErrorCode, OAuthError};
use crate::domain::{AcrAsked, Level, MfaPolicy};

pub use crate::domain::{ACR_MFA, ACR_PASSWORD};

/// §5.5.1: one requested claim; `null` asks for it voluntarily with no conditions.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ClaimRequest {
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub essential: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub values: Option<Vec<Value>>,
}

impl ClaimRequest {
    /// Whether `candidate` meets the request's `value` / `values` (none: any value).
    pub fn accepts(&self, candidate: &Value) -> bool {
        self.value.as_ref().is_none_or(|v| v == candidate)
            && self.values.as_ref().is_none_or(|vs| vs.contains(candidate))
    }
}

/// §5.5: the members for the ID token and for userinfo (others are ignored, §5.5 "Other
/// members MAY be present ... MUST be ignored").
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ClaimsRequest {
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub userinfo: BTreeMap<String, ClaimRequest>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub id_token: BTreeMap<String, ClaimRequest>,
}

/// The parameter as the wire has it: each requested claim `null` or an object.
#[derive(Deserialize)]
struct Wire {
    #[serde(default)]
    userinfo: Option<BTreeMap<String, Value>>,
    #[serde(default)]
    id_token: Option<BTreeMap<String, Value>>,
}

const MAX_CLAIMS_PARAMETER: usize = 4096;

impl ClaimsRequest {
    /// Parses the parameter; a value that is not such a JSON object is `invalid_request`.
    pub fn parse(text: &str) -> Result<Self, OAuthError> {
        let invalid = || {
            OAuthError::invalid_request("claims must be a JSON object as OIDC Core §5.5 describes")
        };
        if text.len() > MAX_CLAIMS_PARAMETER {
            return Err(OAuthError::invalid_request("claims is too long"));
        }
        // An object: serde would also take a struct from an array.
        let value: Value = serde_json::from_str(text).map_err(|_| invalid())?;
        if !value.is_object() {
            return Err(invalid());
        }
        let wire: Wire = serde_json::from_value(value).map_err(|_| invalid())?;
        let members = |m: Option<BTreeMap<String, Value>>| {
            m.unwrap_or_default()
                .into_iter()
                .map(|(name, request)| match request {
                    Value::Null => Ok((name, ClaimRequest::default())),
                    Value::Object(_) => serde_json::from_value(request)
                        .map(|r| (name, r))
                        .map_err(|_| invalid()),
                    _ => Err(invalid()),
                })
                .collect::<Result<BTreeMap<_, _>, _>>()
        };
        Ok(Self {
            userinfo: members(wire.userinfo)?,
            id_token: members(wire.id_token)?,
        })
    }

    /// As stored with the grant.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    /// A stored request (`None`: none, or unreadable).
    pub fn from_stored(text: Option<&str>) -> Option<Self> {
        text.and_then(|t| serde_json::from_str(t).ok())
    }

    /// The user a request for `{"id_token":{"sub":{"value":...}}}` names. OIDC Core §5.5.1:
    /// the provider "MUST NOT reply with an ID Token or Access Token for a different user,
    /// even if they have an active session"; it is then handled like an `id_token_hint`.
    pub fn requested_sub(&self) -> Result<Option<String>, OAuthError> {
        match self.id_token.get("sub").and_then(|r| r.value.as_ref()) {
            None => Ok(None),
            Some(Value::String(sub)) => Ok(Some(sub.clone())),
            Some(_) => Err(OAuthError::invalid_request(
                "the value requested for sub must be a string",
            )),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.userinfo.is_empty() && self.id_token.is_empty()
    }

    /// The names asked for, in either place (for the consent page).
    pub fn names(&self) -> Vec<&str> {
        let mut names: Vec<&str> = self
            .userinfo
            .keys()
            .chain(self.id_token.keys())
            .map(String::as_str)
            .collect();
        names.sort_unstable();
        names.dedup();
        names
    }
}

/// What the request asks of the authentication context, if anything (`acr_values`, or
/// `acr` in the claims parameter), in the levels this provider reaches under `policy`.
/// An essential `acr` whose values name none of them cannot be met: §5.5.1.1 makes that
/// "a failed authentication attempt". `acr_values` is a voluntary request (§3.1.2.1):
/// values of others are ignored.
pub fn acr_asked(
    acr_values: Option<&str>,
    claims: &ClaimsRequest,
    policy: MfaPolicy,
) -> Result<Option<AcrAsked>, OAuthError> {
    let reachable = policy.levels();
    if let Some(request) = claims.id_token.get("acr") {
        let levels: Vec<Level> = reachable
            .iter()
            .copied()
            .filter(|l| request.accepts(&Value::String(l.acr().to_owned())))
            .collect();
        if request.essential && levels.is_empty() {
            return Err(OAuthError::new(
                ErrorCode::AccessDenied,
                "the requested authentication context cannot be met",
            ));
        }
        return Ok(Some(AcrAsked {
            levels,
            essential: request.essential,
        }));
    }
    Ok(acr_values.map(|values| {
        let mut levels: Vec<Level> = values
            .split(' ')
            .filter_map(Level::from_acr)
            .filter(|l| reachable.contains(l))
            .collect();
        levels.sort_unstable();
        levels.dedup();
        AcrAsked {
            levels,
            essential: false,
        }
    }))
}

/// Adds to `out` the user's claims (from `available`, all the user has) that `requested`
/// names, beyond those already there.
pub fn add_requested(
    out: &mut Map<String, Value>,
    available: &Map<String, Value>,
    requested: &BTreeMap<String, ClaimRequest>,
) {
    for name in requested.keys() {
        if let Some(value) = available.get(name)
            && !out.contains_key(name)
        {
            out.insert(name.clone(), value.clone());
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn the_parameter_parses_nulls_objects_and_ignores_other_members() {
        let parsed = ClaimsRequest::parse(
            r#"{"userinfo":{"given_name":{"essential":true},"email":null},"id_token":{"acr":{"values":["a","b"]}},"other":{}}"#,
        )
        .unwrap();
        assert!(parsed.userinfo["given_name"].essential);
        assert_eq!(parsed.userinfo["email"], ClaimRequest::default());
        assert_eq!(
            parsed.id_token["acr"].values,
            Some(vec![json!("a"), json!("b")])
        );
        assert_eq!(parsed.names(), ["acr", "email", "given_name"]);
        assert_eq!(
            ClaimsRequest::from_stored(Some(&parsed.to_json())),
            Some(parsed)
        );
        for bad in [
            "[]",
            "nope",
            r#"{"userinfo":[]}"#,
            r#"{"id_token":{"acr":{"essential":"yes"}}}"#,
        ] {
            assert!(ClaimsRequest::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn acr_is_asked_by_name_and_an_unmeetable_essential_one_fails() {
        use MfaPolicy::*;
        let none = ClaimsRequest::default();
        assert_eq!(acr_asked(None, &none, Optional).unwrap(), None);
        let levels = |values: &str, policy| {
            acr_asked(Some(values), &none, policy)
                .unwrap()
                .unwrap()
                .levels
        };
        assert_eq!(levels("urn:x", Optional), []);
        assert_eq!(
            levels(
                &format!("{ACR_MFA} urn:x {ACR_PASSWORD} {ACR_MFA}"),
                Optional
            ),
            [Level::SingleFactor, Level::MultiFactor],
            "ours only, weakest first, once each"
        );
        assert_eq!(levels(ACR_MFA, Off), [], "not reachable with mfa = off");
        let voluntary =
            ClaimsRequest::parse(r#"{"id_token":{"acr":{"values":["urn:x"]}}}"#).unwrap();
        let asked = acr_asked(None, &voluntary, Optional).unwrap().unwrap();
        assert!(asked.levels.is_empty() && !asked.essential);
        let any = ClaimsRequest::parse(r#"{"id_token":{"acr":null}}"#).unwrap();
        assert_eq!(
            acr_asked(None, &any, Optional).unwrap().unwrap().levels,
            Level::ALL
        );
        let essential =
            ClaimsRequest::parse(r#"{"id_token":{"acr":{"essential":true,"values":["urn:x"]}}}"#)
                .unwrap();
        assert!(acr_asked(None, &essential, Optional).is_err());
        let essential_mfa = ClaimsRequest::parse(&format!(
            r#"{{"id_token":{{"acr":{{"essential":true,"value":"{ACR_MFA}"}}}}}}"#
        ))
        .unwrap();
        let asked = acr_asked(None, &essential_mfa, Optional).unwrap().unwrap();
        assert_eq!(asked.levels, [Level::MultiFactor]);
        assert!(asked.essential);
        assert!(
            acr_asked(None, &essential_mfa, Off).is_err(),
            "two factors are not reachable with mfa = off"
        );
    }

    #[test]
    fn a_requested_sub_value_names_a_user_and_must_be_a_string() {
        let named = ClaimsRequest::parse(r#"{"id_token":{"sub":{"value":"u-1"}}}"#).unwrap();
        assert_eq!(named.requested_sub().unwrap().as_deref(), Some("u-1"));
        let any = ClaimsRequest::parse(r#"{"id_token":{"sub":null}}"#).unwrap();
        assert_eq!(any.requested_sub().unwrap(), None);
        let userinfo = ClaimsRequest::parse(r#"{"userinfo":{"sub":{"value":"u-1"}}}"#).unwrap();
        assert_eq!(userinfo.requested_sub().unwrap(), None);
        let number = ClaimsRequest::parse(r#"{"id_token":{"sub":{"value":7}}}"#).unwrap();
        assert!(number.requested_sub().is_err());
    }

    #[test]
    fn requested_claims_are_added_from_what_the_user_has() {
        let available = json!({"sub": "s", "email": "a@x", "name": "A"});
        let mut out = Map::new();
        out.insert("sub".into(), json!("s"));
        let requested =
            ClaimsRequest::parse(r#"{"userinfo":{"email":null,"shoe_size":null}}"#).unwrap();
        add_requested(
            &mut out,
            available.as_object().unwrap(),
            &requested.userinfo,
        );
        assert_eq!(Value::Object(out), json!({"sub": "s", "email": "a@x"}));
    }
}
