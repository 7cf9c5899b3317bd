//! Registration requests as JSON: the members of RFC 7591 §2 (and OIDC Registration §2,
//! the logout specifications, RFC 9101, RFC 9126, RFC 9701) read by one derived struct,
//! then held to the rules of a dynamic registrant or of an operator.

use serde::Deserialize;
use serde_json::Value;

use super::{ClientDraft, MAX_URI, SUPPORTED_RESPONSE_TYPES, metadata_error};
use crate::domain::{AccessTokenFormat, ClientDisplay, GrantType, Profile, ResponseType, Scopes};
use crate::protocol::resource_indicators::check_resource;
use crate::protocol::{OAuthError, SUPPORTED_SCOPES};

/// The metadata members we read. Every member may be absent or `null`; members we do not
/// know are ignored (RFC 7591 §2: "The authorization server MUST ignore any client
/// metadata sent by the client that it does not understand").
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Metadata {
    client_name: Option<String>,
    redirect_uris: Option<Vec<String>>,
    post_logout_redirect_uris: Option<Vec<String>>,
    token_endpoint_auth_method: Option<String>,
    grant_types: Option<Vec<String>>,
    response_types: Option<Vec<String>>,
    scope: Option<String>,
    application_type: Option<String>,
    id_token_signed_response_alg: Option<String>,
    access_token_signed_response_alg: Option<String>,
    userinfo_signed_response_alg: Option<String>,
    introspection_signed_response_alg: Option<String>,
    jwks: Option<Value>,
    jwks_uri: Option<String>,
    require_pkce: Option<bool>,
    client_uri: Option<String>,
    logo_uri: Option<String>,
    policy_uri: Option<String>,
    tos_uri: Option<String>,
    contacts: Option<Vec<String>>,
    backchannel_logout_uri: Option<String>,
    backchannel_logout_session_required: Option<bool>,
    frontchannel_logout_uri: Option<String>,
    frontchannel_logout_session_required: Option<bool>,
    require_pushed_authorization_requests: Option<bool>,
    /// RFC 9449 §5.2.
    dpop_bound_access_tokens: Option<bool>,
    require_dpop_nonce: Option<bool>,
    request_object_signing_alg: Option<String>,
    request_uris: Option<Vec<String>>,
    subject_type: Option<String>,
    sector_identifier_uri: Option<String>,
    /// Encryption is not supported: a request asking for it is refused rather than
    /// answered in plain text.
    id_token_encrypted_response_alg: Option<String>,
    userinfo_encrypted_response_alg: Option<String>,
    request_object_encryption_alg: Option<String>,
}

/// What only an operator may set (admin API, console): RFC 8707 `resources`,
/// `first_party` (no consent page), `require_mfa` (a second factor for everyone who
/// signs in to it) and `access_token_format`. A registrant's are never read.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct OperatorMetadata {
    resources: Option<Vec<String>>,
    first_party: Option<bool>,
    require_mfa: Option<bool>,
    /// RFC 8693 policy (`token_exchange` as stored): the audiences, and impersonation.
    exchange_audiences: Option<Vec<String>>,
    exchange_impersonation: Option<bool>,
    /// The security profile (`fapi2`), or none.
    profile: Option<String>,
    /// `jwt` (the default) or `opaque` (issue 26).
    access_token_format: Option<String>,
}

/// The one mapping of a malformed body to RFC 7591 §3.2.2 `invalid_client_metadata`:
/// the member that is wrong and what it should be (never its value, which may be long).
fn members<T: serde::de::DeserializeOwned>(body: &Value) -> Result<T, OAuthError> {
    // A derived struct also reads a JSON array (as its fields in order): refuse it first.
    if !body.is_object() {
        return Err(metadata_error("the body must be a JSON object"));
    }
    serde_path_to_error::deserialize(body).map_err(|e| {
        let inner = e.inner().to_string();
        // serde says "invalid type: <what was found>, expected <what it should be>".
        match inner.rsplit_once(", expected ") {
            Some((_, expected)) => {
                // In JSON's words rather than serde's.
                let expected = match expected {
                    "a sequence" => "an array",
                    "a map" => "a JSON object",
                    other => other,
                };
                metadata_error(format!("{} must be {expected}", e.path()))
            }
            None => metadata_error(format!("{} is malformed", e.path())),
        }
    })
}

/// A display URL (`client_uri`, `logo_uri`, ...): http(s), bounded.
fn display_url(field: &str, value: Option<String>) -> Result<Option<String>, OAuthError> {
    let Some(value) = value else {
        return Ok(None);
    };
    if value.len() > MAX_URI {
        return Err(metadata_error(format!("{field} is too long")));
    }
    let ok = url::Url::parse(&value).is_ok_and(|u| matches!(u.scheme(), "https" | "http"));
    if !ok {
        return Err(metadata_error(format!("{field} must be an http(s) URL")));
    }
    Ok(Some(value))
}

impl Metadata {
    /// The draft these members describe, with the checks that need no other member. The
    /// scope is left as sent: registrants and operators are held to different rules.
    fn into_draft(self) -> Result<ClientDraft, OAuthError> {
        for (name, value) in [
            (
                "id_token_encrypted_response_alg",
                &self.id_token_encrypted_response_alg,
            ),
            (
                "userinfo_encrypted_response_alg",
                &self.userinfo_encrypted_response_alg,
            ),
            (
                "request_object_encryption_alg",
                &self.request_object_encryption_alg,
            ),
        ] {
            if value.is_some() {
                return Err(metadata_error(format!("{name} is not supported")));
            }
        }
        let contacts = self.contacts.unwrap_or_default();
        if contacts.len() > 10 || contacts.iter().any(|c| c.len() > 254) {
            return Err(metadata_error(
                "at most 10 contacts of at most 254 characters",
            ));
        }
        let display = ClientDisplay {
            client_uri: display_url("client_uri", self.client_uri)?,
            logo_uri: display_url("logo_uri", self.logo_uri)?,
            policy_uri: display_url("policy_uri", self.policy_uri)?,
            tos_uri: display_url("tos_uri", self.tos_uri)?,
            contacts,
        };
        let jwks = match self.jwks {
            None => None,
            Some(v) if v.to_string().len() > 16 * 1024 => {
                return Err(metadata_error("jwks is larger than 16 KiB"));
            }
            Some(v @ Value::Object(_)) => Some(v),
            Some(_) => return Err(metadata_error("jwks must be a JWK Set object")),
        };
        Ok(ClientDraft {
            name: self.client_name,
            redirect_uris: self.redirect_uris.unwrap_or_default(),
            post_logout_redirect_uris: self.post_logout_redirect_uris.unwrap_or_default(),
            auth_method: self.token_endpoint_auth_method,
            grant_types: supported_subset(
                self.grant_types.unwrap_or_default(),
                &GrantType::SUPPORTED,
            ),
            response_types: supported_subset(
                self.response_types
                    .unwrap_or_default()
                    .into_iter()
                    // In their canonical spelling ("token id_token" is "id_token token").
                    .map(|r| ResponseType::parse(&r).map_or(r, |t| t.as_str().to_owned()))
                    .collect(),
                &SUPPORTED_RESPONSE_TYPES,
            ),
            scope: self.scope,
            application_type: self.application_type,
            id_token_signed_response_alg: self.id_token_signed_response_alg,
            access_token_signed_response_alg: self.access_token_signed_response_alg,
            userinfo_signed_response_alg: self.userinfo_signed_response_alg,
            introspection_signed_response_alg: self.introspection_signed_response_alg,
            jwks,
            jwks_uri: self.jwks_uri,
            require_pkce: self.require_pkce,
            resources: Vec::new(),
            display,
            backchannel_logout_uri: self.backchannel_logout_uri,
            backchannel_logout_session_required: self.backchannel_logout_session_required,
            frontchannel_logout_uri: self.frontchannel_logout_uri,
            frontchannel_logout_session_required: self.frontchannel_logout_session_required,
            require_pushed_authorization_requests: self.require_pushed_authorization_requests,
            dpop_bound_access_tokens: self.dpop_bound_access_tokens,
            require_dpop_nonce: self.require_dpop_nonce,
            request_object_signing_alg: self.request_object_signing_alg,
            request_uris: self.request_uris.unwrap_or_default(),
            subject_type: self.subject_type,
            sector_identifier_uri: self.sector_identifier_uri,
            sector_redirect_uris: None,
            // Never from the metadata itself: only an operator vouches for a client, or
            // sets its policy.
            first_party: false,
            require_mfa: false,
            exchange_audiences: Vec::new(),
            exchange_impersonation: false,
            profile: None,
            access_token_format: AccessTokenFormat::default(),
        })
    }
}

/// Parses an RFC 7591 registration request body. Unknown fields are ignored (§2), and so
/// is `first_party`: only an operator can make a client first-party.
/// Requested grant types, response types and scopes we do not support are left out, as
/// §3.2.1 allows ("MAY ... substitute them with suitable values"; the response tells the
/// client what it got); only a request with nothing usable left is refused.
pub fn draft_from_json(body: &Value) -> Result<ClientDraft, OAuthError> {
    let mut draft = members::<Metadata>(body)?.into_draft()?;
    draft.scope = match draft.scope {
        Some(s) if s.len() > 1000 => return Err(metadata_error("scope is too long")),
        None => None,
        Some(s) => Some(
            supported_scopes(&s)
                .ok_or_else(|| metadata_error("none of the requested scopes is supported"))?,
        ),
    };
    Ok(draft)
}

/// A registration by an operator (admin API, console): the RFC 7591 metadata of
/// `draft_from_json`, and also what only operators may grant: API scopes (such as
/// `admin`), RFC 8707 `resources`, and `first_party` (no consent page).
pub fn operator_draft_from_json(body: &Value) -> Result<ClientDraft, OAuthError> {
    let mut draft = members::<Metadata>(body)?.into_draft()?;
    let operator = members::<OperatorMetadata>(body)?;
    draft.scope = match draft.scope {
        None => None,
        Some(s) => Some(
            Scopes::parse(&s)
                .filter(|s| !s.is_empty())
                .ok_or_else(|| metadata_error("scope must be a list of scope tokens"))?
                .to_string(),
        ),
    };
    draft.resources = operator.resources.unwrap_or_default();
    if draft.resources.iter().any(|r| check_resource(r).is_err()) {
        return Err(metadata_error(
            "resources must be absolute URIs without a fragment",
        ));
    }
    draft.first_party = operator.first_party.unwrap_or(false);
    draft.require_mfa = operator.require_mfa.unwrap_or(false);
    draft.exchange_audiences = operator.exchange_audiences.unwrap_or_default();
    draft.exchange_impersonation = operator.exchange_impersonation.unwrap_or(false);
    draft.access_token_format = match operator.access_token_format.as_deref() {
        None => AccessTokenFormat::default(),
        Some(name) => AccessTokenFormat::parse(name)
            .ok_or_else(|| metadata_error("access_token_format must be jwt or opaque"))?,
    };
    draft.profile =
        match operator.profile.as_deref() {
            None => None,
            Some(name) => Some(Profile::parse(name).ok_or_else(|| {
                metadata_error(format!("profile {name} is not supported (fapi2)"))
            })?),
        };
    Ok(draft)
}

/// The supported values of `requested`; all of them when none is supported, so that
/// `register` refuses the request with a precise error.
fn supported_subset(requested: Vec<String>, supported: &[&str]) -> Vec<String> {
    let kept: Vec<String> = requested
        .iter()
        .filter(|v| supported.contains(&v.as_str()))
        .cloned()
        .collect();
    if kept.is_empty() { requested } else { kept }
}

/// The supported scopes of a dynamic registration; `None` when none is. Self-registered
/// clients get no API scopes: those are granted by operators.
fn supported_scopes(requested: &str) -> Option<String> {
    let kept: Vec<&str> = requested
        .split(' ')
        .filter(|t| SUPPORTED_SCOPES.contains(t))
        .collect();
    (!kept.is_empty()).then(|| kept.join(" "))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::protocol::ErrorCode;

    fn description(body: Value) -> String {
        let error = draft_from_json(&body).unwrap_err();
        assert_eq!(error.code, ErrorCode::InvalidClientMetadata, "{body}");
        error.description.as_deref().unwrap_or_default().to_owned()
    }

    #[test]
    fn a_member_of_the_wrong_type_is_named_without_its_value() {
        assert_eq!(
            description(json!({"redirect_uris": "https://a/cb"})),
            "redirect_uris must be an array"
        );
        assert_eq!(
            description(json!({"redirect_uris": ["https://a/cb", 7]})),
            "redirect_uris[1] must be a string"
        );
        assert_eq!(
            description(json!({"require_pkce": "no"})),
            "require_pkce must be a boolean"
        );
        let long = "x".repeat(5000);
        assert!(!description(json!({"client_name": [long]})).contains("xxx"));
        for body in [json!(["not", "an", "object"]), json!([]), json!("x")] {
            assert_eq!(description(body), "the body must be a JSON object");
        }
    }

    #[test]
    fn null_members_are_absent_and_unknown_ones_ignored() {
        let draft = draft_from_json(&json!({
            "redirect_uris": null,
            "client_name": null,
            "jwks": null,
            "require_pkce": null,
            "software_statement_of_the_future": {"x": [1]},
            "client_name#ja-Jpan-JP": "クライアント名",
        }))
        .unwrap();
        assert!(draft.redirect_uris.is_empty());
        assert_eq!(
            (draft.name, draft.jwks, draft.require_pkce),
            (None, None, None)
        );
    }

    #[test]
    fn encryption_requests_are_refused_by_name() {
        assert_eq!(
            description(json!({"id_token_encrypted_response_alg": "RSA-OAEP"})),
            "id_token_encrypted_response_alg is not supported"
        );
    }

    #[test]
    fn only_an_operator_draft_reads_resources_and_first_party() {
        let body = json!({
            "grant_types": ["client_credentials"],
            "resources": ["https://api.example/"],
            "first_party": true,
            "scope": "api:read",
        });
        let registrant = draft_from_json(&body);
        assert!(registrant.is_err(), "no supported scope for a registrant");
        let operator = operator_draft_from_json(&body).unwrap();
        assert_eq!(operator.resources, ["https://api.example/"]);
        assert!(operator.first_party);
        assert_eq!(operator.scope.as_deref(), Some("api:read"));
        let bad = json!({"resources": ["relative"]});
        assert_eq!(
            operator_draft_from_json(&bad)
                .unwrap_err()
                .description
                .as_deref(),
            Some("resources must be absolute URIs without a fragment")
        );
    }
}
