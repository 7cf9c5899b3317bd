//! Registration's unit tests.

use super::*;

fn kek() -> KeyEncryptionKey {
    KeyEncryptionKey::from_bytes(&[9; 32]).unwrap()
}

fn draft(body: Value) -> Result<Registered, OAuthError> {
    register(draft_from_json(&body)?, "https://op.example", &kek(), 0)
}

#[test]
fn web_clients_need_https_or_loopback_and_no_fragment() {
    assert!(draft(json!({"redirect_uris": ["https://rp.example/cb"]})).is_ok());
    assert!(draft(json!({"redirect_uris": ["http://127.0.0.1:9/cb"]})).is_ok());
    for bad in [
        "http://rp.example/cb",
        "https://rp.example/cb#x",
        "not a url",
        "/relative",
    ] {
        let err = draft(json!({"redirect_uris": [bad]})).unwrap_err();
        assert_eq!(err.code, ErrorCode::InvalidRedirectUri, "{bad}");
    }
    assert_eq!(
        draft(json!({})).unwrap_err().code,
        ErrorCode::InvalidRedirectUri
    );
}

#[test]
fn native_clients_may_use_private_schemes() {
    assert!(
        draft(json!({"application_type": "native", "redirect_uris": ["com.example.app:/cb"]}))
            .is_ok()
    );
    assert!(draft(json!({"redirect_uris": ["com.example.app:/cb"]})).is_err());
}

#[test]
fn unsupported_values_are_invalid_client_metadata() {
    for body in [
        json!({"redirect_uris": ["https://a/cb"], "grant_types": ["password"]}),
        json!({"redirect_uris": ["https://a/cb"], "response_types": ["token"]}),
        json!({"redirect_uris": ["https://a/cb"], "token_endpoint_auth_method": "private_key_jwt"}),
        json!({"redirect_uris": ["https://a/cb"], "token_endpoint_auth_method": "private_key_jwt", "jwks_uri": "http://rp.example/jwks"}),
        json!({"redirect_uris": ["https://a/cb"], "token_endpoint_auth_method": "private_key_jwt", "jwks": {"keys": []}}),
        json!({"redirect_uris": ["https://a/cb"], "jwks": {"keys": [{"kty": "oct", "k": "c2VjcmV0"}]}}),
        json!({"redirect_uris": ["https://a/cb"], "jwks_uri": "https://a/jwks", "jwks": {"keys": []}}),
        json!({"redirect_uris": ["https://a/cb"], "token_endpoint_auth_method": "none", "require_pkce": false}),
        json!({"grant_types": ["client_credentials"], "token_endpoint_auth_method": "none"}),
        json!({"redirect_uris": ["https://a/cb"], "scope": "api:admin"}),
        json!({"redirect_uris": ["https://a/cb"], "id_token_signed_response_alg": "none"}),
        json!({"redirect_uris": ["https://a/cb"], "logo_uri": "javascript:alert(1)"}),
        json!({"redirect_uris": "https://a/cb"}),
    ] {
        assert_eq!(
            draft(body.clone()).unwrap_err().code,
            ErrorCode::InvalidClientMetadata,
            "{body}"
        );
    }
}

#[test]
fn unsupported_values_next_to_supported_ones_are_left_out() {
    let r = draft(json!({
        "redirect_uris": ["https://a/cb"],
        "grant_types": ["authorization_code", "refresh_token", "password"],
        "response_types": ["code", "token"],
        "scope": "openid offline_access email api:admin",
    }))
    .unwrap();
    assert_eq!(
        r.client.grant_types,
        [GrantType::AuthorizationCode, GrantType::RefreshToken]
    );
    assert_eq!(r.client.response_types, [ResponseType::CODE]);
    assert_eq!(
        r.client.scope.map(|s| s.to_string()).as_deref(),
        Some("email offline_access openid")
    );
}

#[test]
fn the_information_response_names_the_typed_values_as_before() {
    let r = draft(json!({
        "application_type": "native",
        "redirect_uris": ["com.example.app:/cb"],
        "response_types": ["token id_token", "code"],
        "scope": "profile openid",
    }))
    .unwrap();
    assert_eq!(r.client.application_type, ApplicationType::Native);
    let info = client_information(&r.client, None, None, "");
    assert_eq!(info["application_type"], "native");
    assert_eq!(info["response_types"], json!(["id_token token", "code"]));
    assert_eq!(
        info["grant_types"],
        json!(["authorization_code", "implicit"])
    );
    assert_eq!(info["scope"], "openid profile");
    assert_eq!(
        draft(json!({"application_type": "browser", "redirect_uris": ["https://a/cb"]}))
            .unwrap_err()
            .code,
        ErrorCode::InvalidClientMetadata
    );
}

#[test]
fn a_client_credentials_client_needs_no_redirect_uri_or_response_type() {
    let r = draft(json!({"redirect_uris": [], "grant_types": ["client_credentials"]})).unwrap();
    assert!(r.client.redirect_uris.is_empty() && r.client.response_types.is_empty());
    assert!(r.client_secret.is_some());
    assert_eq!(
        draft(json!({"redirect_uris": [], "grant_types": ["authorization_code"]}))
            .unwrap_err()
            .code,
        ErrorCode::InvalidRedirectUri
    );
}

#[test]
fn a_jwks_uri_may_not_name_an_internal_address() {
    for uri in [
        "https://10.0.0.5/jwks",
        "https://169.254.169.254/latest",
        "https://[::1]:8443/jwks",
        "https://127.0.0.1/jwks",
        "http://127.0.0.1:9/jwks",
    ] {
        let body = json!({"redirect_uris": ["https://a/cb"], "token_endpoint_auth_method": "private_key_jwt", "jwks_uri": uri});
        assert_eq!(
            draft(body).unwrap_err().code,
            ErrorCode::InvalidClientMetadata,
            "{uri}"
        );
    }
    let local = register(
        draft_from_json(&json!({"redirect_uris": ["http://127.0.0.1/cb"], "token_endpoint_auth_method": "private_key_jwt", "jwks_uri": "http://127.0.0.1:9/jwks"})).unwrap(),
        "http://127.0.0.1:8080",
        &kek(),
        0,
    );
    assert!(
        local.is_ok(),
        "a local development issuer may use loopback keys"
    );
}

#[test]
fn resources_must_be_absolute_uris_without_a_fragment() {
    let with = |resource: &str| {
        register(
            ClientDraft {
                grant_types: vec!["client_credentials".into()],
                resources: vec![resource.into()],
                ..ClientDraft::default()
            },
            "https://op.example",
            &kek(),
            0,
        )
    };
    assert!(with("https://api.example/v1").is_ok());
    for bad in [
        "https://api.example/#x",
        "relative/path",
        "https://api.example/#",
    ] {
        assert_eq!(
            with(bad).unwrap_err().code,
            ErrorCode::InvalidClientMetadata,
            "{bad}"
        );
    }
}

#[test]
fn only_an_operator_makes_a_client_first_party_or_requires_mfa_of_it() {
    let body = json!({"redirect_uris": ["https://a/cb"], "first_party": true, "require_mfa": true});
    let registrant = draft(body.clone()).unwrap().client;
    assert!(
        !registrant.first_party,
        "a registrant's first_party is ignored"
    );
    assert!(!registrant.require_mfa, "and so is its require_mfa");
    let by_operator = register(
        operator_draft_from_json(&body).unwrap(),
        "https://op.example",
        &kek(),
        0,
    )
    .unwrap();
    assert!(by_operator.client.first_party);
    assert!(by_operator.client.require_mfa);
    assert!(
        client_information(&by_operator.client, None, None, "")
            .get("first_party")
            .is_none(),
        "not RFC 7591 metadata: the registration response does not echo it"
    );
    let plain = operator_draft_from_json(&json!({"redirect_uris": ["https://a/cb"]})).unwrap();
    assert!(!plain.first_party);
    assert!(!plain.require_mfa);
    let malformed = json!({"redirect_uris": ["https://a/cb"], "first_party": "yes"});
    assert_eq!(
        operator_draft_from_json(&malformed).unwrap_err().code,
        ErrorCode::InvalidClientMetadata
    );
}

#[test]
fn pkce_is_required_unless_a_confidential_client_opts_out() {
    let default = draft(json!({"redirect_uris": ["https://a/cb"]})).unwrap();
    assert!(default.client.pkce_required);
    let opted_out =
        draft(json!({"redirect_uris": ["https://a/cb"], "require_pkce": false})).unwrap();
    assert!(!opted_out.client.requires_pkce());
}

#[test]
fn only_client_secret_jwt_secrets_are_kept_recoverable_and_only_encrypted() {
    let jwt = draft(json!({"redirect_uris": ["https://a/cb"], "token_endpoint_auth_method": "client_secret_jwt"})).unwrap();
    let secret = jwt.client_secret.clone().unwrap();
    let sealed = jwt.client.secret_ciphertext.clone().unwrap();
    assert!(!sealed.contains(&secret));
    assert_eq!(
        kek().decrypt(&sealed, &jwt.client.id).unwrap(),
        secret.as_bytes()
    );
    let basic = draft(json!({"redirect_uris": ["https://a/cb"]})).unwrap();
    assert!(basic.client.secret_ciphertext.is_none());
    let keyed = draft(json!({"redirect_uris": ["https://a/cb"], "token_endpoint_auth_method": "private_key_jwt", "jwks_uri": "https://a/jwks"})).unwrap();
    assert!(keyed.client_secret.is_none() && keyed.client.secret_hash.is_none());
}

#[test]
fn secrets_are_returned_once_and_stored_hashed() {
    let r = draft(json!({"redirect_uris": ["https://a/cb"], "unknown_field": 1})).unwrap();
    let secret = r.client_secret.unwrap();
    assert_eq!(
        r.client.secret_hash.as_deref(),
        Some(token_hash(&secret).as_str())
    );
    let public =
        draft(json!({"redirect_uris": ["https://a/cb"], "token_endpoint_auth_method": "none"}))
            .unwrap();
    assert!(public.client_secret.is_none() && public.client.secret_hash.is_none());
}

#[test]
fn a_client_with_dpop_bound_access_tokens_may_not_take_tokens_from_the_authorization_endpoint() {
    let with = |types: Value| {
        draft(json!({
            "redirect_uris": ["https://rp.example/cb"],
            "grant_types": ["authorization_code", "implicit"],
            "response_types": types,
            "dpop_bound_access_tokens": true,
        }))
    };
    for implicit in [
        json!(["token"]),
        json!(["id_token token"]),
        json!(["code token"]),
    ] {
        let err = with(implicit.clone()).unwrap_err();
        assert_eq!(err.code, ErrorCode::InvalidClientMetadata, "{implicit}");
    }
    let ok = with(json!(["code", "id_token", "code id_token"])).unwrap();
    assert!(ok.client.metadata.dpop_bound_access_tokens);
}
