//! Security profiles an operator puts a client under (issue 25): today the FAPI 2.0
//! Security Profile (final). This is the one place that says what a profile demands of a
//! client; registration and the endpoints ask it rather than knowing the profile.
//!
//! FAPI 2.0 Security Profile §5.3.2 (authorization server), as built here for a `fapi2`
//! client:
//! - "shall support ... pushed authorization requests" and "shall reject authorization
//!   requests sent without" them (§5.3.2.2): `requires_par`;
//! - "shall require ... PKCE with S256 as the code challenge method": `requires_pkce`;
//! - "shall only issue authorization codes ... valid for at most 60 seconds":
//!   `code_ttl`;
//! - "shall reject ... the implicit grant ... or the hybrid flow": `allows_response_type`,
//!   `allows_response_mode`, and no `implicit` grant at registration;
//! - "shall require the redirect_uri parameter in pushed authorization requests":
//!   `requires_redirect_uri_in_par`;
//! - client authentication by `private_key_jwt` (or mTLS, not built here) only, and the
//!   assertion's `aud` is the issuer and nothing else: `allows_auth_method`,
//!   `assertion_audience_is_issuer_only`;
//! - §5.4 cryptography: "PS256, ES256, EdDSA (using the Ed25519 variant)" only:
//!   `allows_jws_alg` (what the client signs) and `shape_registration` (what we sign);
//! - sender-constrained access tokens (DPoP): `requires_dpop`, which the token endpoint's
//!   DPoP check consults.
//!
//! RFC 9207 `iss` is in every authorization response already, and a pushed request's
//! `request_uri` is used once and lives 60 s (RFC 9126 §2.2, "less than 600 seconds").

use super::{ErrorCode, OAuthError};
use crate::domain::{GrantType, KeyAlgorithm, Profile, ResponseMode, ResponseType};
use crate::store::{AuthMethod, Client};

/// §5.3.2.2: the longest an authorization code of a profiled client lives.
pub const FAPI2_MAX_CODE_TTL: i64 = 60;

/// §5.4.1: the JWS algorithms a FAPI 2.0 client and server may use.
pub const FAPI2_JWS_ALGS: [&str; 3] = ["PS256", "ES256", "EdDSA"];

/// What we sign with for a FAPI 2.0 client that named no algorithm (RS256 otherwise).
const FAPI2_DEFAULT_ALG: KeyAlgorithm = KeyAlgorithm::Ps256;

/// The profile a client is held to (`None`: only the provider's own rules).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ClientProfile(Option<Profile>);

fn metadata_error(description: impl Into<std::borrow::Cow<'static, str>>) -> OAuthError {
    OAuthError::new(ErrorCode::InvalidClientMetadata, description)
}

impl ClientProfile {
    pub fn of(client: &Client) -> Self {
        Self(client.metadata.profile)
    }

    pub fn new(profile: Option<Profile>) -> Self {
        Self(profile)
    }

    fn fapi2(self) -> bool {
        self.0 == Some(Profile::Fapi2)
    }

    /// RFC 9126 §5: every authorization request must be pushed first.
    pub fn requires_par(self) -> bool {
        self.fapi2()
    }

    /// PKCE is required whatever the client's registration says (and S256 is the only
    /// method this provider takes at all).
    pub fn requires_pkce(self) -> bool {
        self.fapi2()
    }

    /// §5.3.2.2: a pushed request must name its redirect URI, even with one registered.
    pub fn requires_redirect_uri_in_par(self) -> bool {
        self.fapi2()
    }

    /// Client authentication: `private_key_jwt` only (mTLS is not built).
    pub fn allows_auth_method(self, method: AuthMethod) -> bool {
        !self.fapi2() || method == AuthMethod::PrivateKeyJwt
    }

    /// A JWS algorithm the client signs with (client assertions, request objects); `none`
    /// is no signature, so it is refused too.
    pub fn allows_jws_alg(self, alg: &str) -> bool {
        !self.fapi2() || FAPI2_JWS_ALGS.contains(&alg)
    }

    /// An algorithm we sign with for the client (ID tokens, access tokens, userinfo,
    /// introspection).
    pub fn allows_signing_alg(self, alg: KeyAlgorithm) -> bool {
        self.allows_jws_alg(alg.as_str())
    }

    /// §5.3.2.1: client assertions name the issuer as their audience, as a string, and
    /// nothing else (no token endpoint URL: the audience confusion the profile closes).
    pub fn assertion_audience_is_issuer_only(self) -> bool {
        self.fapi2()
    }

    /// No implicit or hybrid flow: a code, and nothing else, from the authorization
    /// endpoint.
    pub fn allows_response_type(self, response_type: ResponseType) -> bool {
        !self.fapi2() || response_type == ResponseType::CODE
    }

    /// The code comes back in the query, with `iss` (RFC 9207), as the profile's flow
    /// has it; JARM (FAPI 2.0 Message Signing) is not built, so no other mode.
    pub fn allows_response_mode(self, mode: ResponseMode) -> bool {
        !self.fapi2() || mode == ResponseMode::Query
    }

    /// A grant type the client may register.
    pub fn allows_grant(self, grant: GrantType) -> bool {
        !self.fapi2() || grant != GrantType::Implicit
    }

    /// The lifetime of the client's authorization codes: the configured one, capped.
    pub fn code_ttl(self, configured: i64) -> i64 {
        if self.fapi2() {
            configured.min(FAPI2_MAX_CODE_TTL)
        } else {
            configured
        }
    }

    /// What we sign with for the client when its metadata names no algorithm: PS256 under
    /// fapi2 (registration writes it in, but a client stored another way must not fall
    /// back to RS256, §5.4.1), RS256 otherwise.
    pub fn default_signing_alg(self) -> KeyAlgorithm {
        if self.fapi2() {
            FAPI2_DEFAULT_ALG
        } else {
            KeyAlgorithm::Rs256
        }
    }

    /// §5.3.2.1: "shall not use refresh token rotation unless ... retrying the request
    /// (with the previous refresh token) will succeed". A fapi2 client's refresh token is
    /// not rotated: a refresh answers with the same token, which stays usable.
    pub fn rotates_refresh_tokens(self) -> bool {
        !self.fapi2()
    }

    /// Sender-constrained access tokens: the token endpoint requires a DPoP proof (RFC
    /// 9449) of this client, and binds its tokens to the proof's key.
    pub fn requires_dpop(self) -> bool {
        self.fapi2()
    }

    /// Registration (CLI, admin API, RFC 7592 update of a profiled client): refuses what
    /// the profile forbids (`invalid_client_metadata`, `invalid_redirect_uri`), requires
    /// pushed requests, and picks PS256 where the client named no algorithm and we would
    /// otherwise sign with RS256.
    pub fn shape_registration(self, client: &mut Client) -> Result<(), OAuthError> {
        if !self.fapi2() {
            return Ok(());
        }
        if !self.allows_auth_method(client.auth_method) {
            return Err(metadata_error(
                "the fapi2 profile needs token_endpoint_auth_method private_key_jwt \
                 (with jwks or jwks_uri)",
            ));
        }
        if let Some(grant) = client.grant_types.iter().find(|g| !self.allows_grant(**g)) {
            return Err(metadata_error(format!(
                "the fapi2 profile does not allow grant_type {}",
                grant.as_str()
            )));
        }
        if let Some(t) = client
            .response_types
            .iter()
            .find(|t| !self.allows_response_type(**t))
        {
            return Err(metadata_error(format!(
                "the fapi2 profile allows response_type code only, not {}",
                t.as_str()
            )));
        }
        if !client.pkce_required {
            return Err(metadata_error("the fapi2 profile requires PKCE"));
        }
        if let Some(uri) = client
            .redirect_uris
            .iter()
            .find(|u| !u.starts_with("https://"))
        {
            return Err(OAuthError::new(
                ErrorCode::InvalidRedirectUri,
                format!("the fapi2 profile needs https redirect URIs, not {uri}"),
            ));
        }
        let metadata = &mut client.metadata;
        for (name, alg) in [
            (
                "id_token_signed_response_alg",
                &mut metadata.id_token_signed_response_alg,
            ),
            (
                "access_token_signed_response_alg",
                &mut metadata.access_token_signed_response_alg,
            ),
            (
                "introspection_signed_response_alg",
                &mut metadata.introspection_signed_response_alg,
            ),
        ] {
            match alg {
                Some(a) if !self.allows_signing_alg(*a) => {
                    return Err(refused_alg(name, a.as_str()));
                }
                Some(_) => {}
                None => *alg = Some(self.default_signing_alg()),
            }
        }
        if let Some(a) = metadata.userinfo_signed_response_alg
            && !self.allows_signing_alg(a)
        {
            return Err(refused_alg("userinfo_signed_response_alg", a.as_str()));
        }
        if let Some(a) = &metadata.request_object_signing_alg
            && !self.allows_jws_alg(a)
        {
            return Err(refused_alg("request_object_signing_alg", a));
        }
        metadata.require_pushed_authorization_requests = true;
        Ok(())
    }
}

fn refused_alg(name: &str, alg: &str) -> OAuthError {
    metadata_error(format!(
        "the fapi2 profile allows {name} PS256, ES256 or EdDSA, not {alg}"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::testing::{REDIRECT_URI, client};

    const FAPI2: ClientProfile = ClientProfile(Some(Profile::Fapi2));
    const NONE: ClientProfile = ClientProfile(None);

    /// A client the fapi2 profile accepts as it is.
    fn fapi_client() -> Client {
        let mut c = client("fapi");
        c.auth_method = AuthMethod::PrivateKeyJwt;
        c.jwks = Some(serde_json::json!({ "keys": [] }));
        c.grant_types = vec![GrantType::AuthorizationCode, GrantType::RefreshToken];
        c.response_types = vec![ResponseType::CODE];
        c.redirect_uris = vec![REDIRECT_URI.to_owned()];
        c.pkce_required = true;
        c.metadata.profile = Some(Profile::Fapi2);
        c
    }

    fn code_of(shaped: Result<(), OAuthError>) -> ErrorCode {
        shaped.expect_err("refused").code
    }

    #[test]
    fn a_profile_is_read_from_the_clients_metadata() {
        assert_eq!(ClientProfile::of(&fapi_client()), FAPI2);
        assert_eq!(ClientProfile::of(&client("plain")), NONE);
    }

    #[test]
    fn a_fapi2_client_must_push_its_requests_and_name_the_redirect_uri() {
        assert!(FAPI2.requires_par() && FAPI2.requires_redirect_uri_in_par());
        assert!(!NONE.requires_par() && !NONE.requires_redirect_uri_in_par());
    }

    #[test]
    fn a_fapi2_client_must_use_pkce() {
        assert!(FAPI2.requires_pkce());
        assert!(!NONE.requires_pkce());
        let mut opted_out = fapi_client();
        opted_out.pkce_required = false;
        assert_eq!(
            code_of(FAPI2.shape_registration(&mut opted_out)),
            ErrorCode::InvalidClientMetadata
        );
    }

    #[test]
    fn a_fapi2_client_authenticates_with_private_key_jwt_only() {
        assert!(FAPI2.allows_auth_method(AuthMethod::PrivateKeyJwt));
        for refused in [
            AuthMethod::ClientSecretBasic,
            AuthMethod::ClientSecretPost,
            AuthMethod::ClientSecretJwt,
            AuthMethod::None,
        ] {
            assert!(!FAPI2.allows_auth_method(refused), "{refused:?}");
            assert!(NONE.allows_auth_method(refused));
            let mut c = fapi_client();
            c.auth_method = refused;
            assert_eq!(
                code_of(FAPI2.shape_registration(&mut c)),
                ErrorCode::InvalidClientMetadata
            );
        }
        assert!(FAPI2.assertion_audience_is_issuer_only());
        assert!(!NONE.assertion_audience_is_issuer_only());
    }

    #[test]
    fn a_fapi2_client_signs_with_ps256_es256_or_eddsa_only() {
        for alg in ["PS256", "ES256", "EdDSA"] {
            assert!(FAPI2.allows_jws_alg(alg));
        }
        for alg in ["RS256", "HS256", "none", "ES384", "PS384"] {
            assert!(!FAPI2.allows_jws_alg(alg), "{alg}");
            assert!(NONE.allows_jws_alg(alg));
        }
        assert!(!FAPI2.allows_signing_alg(KeyAlgorithm::Rs256));
        assert!(FAPI2.allows_signing_alg(KeyAlgorithm::EdDsa));
    }

    #[test]
    fn we_sign_with_ps256_for_a_fapi2_client_that_named_no_algorithm_and_refuse_rs256() {
        let mut c = fapi_client();
        c.metadata.access_token_signed_response_alg = Some(KeyAlgorithm::Es256);
        FAPI2.shape_registration(&mut c).unwrap();
        assert_eq!(
            c.metadata.id_token_signed_response_alg,
            Some(KeyAlgorithm::Ps256)
        );
        assert_eq!(
            c.metadata.access_token_signed_response_alg,
            Some(KeyAlgorithm::Es256)
        );
        assert_eq!(
            c.metadata.introspection_signed_response_alg,
            Some(KeyAlgorithm::Ps256)
        );
        assert_eq!(c.metadata.userinfo_signed_response_alg, None);
        assert!(c.metadata.require_pushed_authorization_requests);

        let set: [fn(&mut Client); 5] = [
            |c| c.metadata.id_token_signed_response_alg = Some(KeyAlgorithm::Rs256),
            |c| c.metadata.access_token_signed_response_alg = Some(KeyAlgorithm::Rs256),
            |c| c.metadata.userinfo_signed_response_alg = Some(KeyAlgorithm::Rs256),
            |c| c.metadata.introspection_signed_response_alg = Some(KeyAlgorithm::Rs256),
            |c| c.metadata.request_object_signing_alg = Some("none".into()),
        ];
        for rs256 in set {
            let mut c = fapi_client();
            rs256(&mut c);
            assert_eq!(
                code_of(FAPI2.shape_registration(&mut c)),
                ErrorCode::InvalidClientMetadata
            );
        }
    }

    #[test]
    fn a_fapi2_client_has_no_implicit_or_hybrid_flow() {
        assert!(FAPI2.allows_response_type(ResponseType::CODE));
        for refused in ["id_token", "id_token token", "code id_token", "code token"] {
            let t = ResponseType::parse(refused).unwrap();
            assert!(!FAPI2.allows_response_type(t), "{refused}");
            assert!(NONE.allows_response_type(t));
            let mut c = fapi_client();
            c.response_types.push(t);
            assert_eq!(
                code_of(FAPI2.shape_registration(&mut c)),
                ErrorCode::InvalidClientMetadata
            );
        }
        assert!(FAPI2.allows_response_mode(ResponseMode::Query));
        assert!(!FAPI2.allows_response_mode(ResponseMode::Fragment));
        assert!(!FAPI2.allows_response_mode(ResponseMode::FormPost));
        assert!(NONE.allows_response_mode(ResponseMode::Fragment));
        let mut implicit = fapi_client();
        implicit.grant_types.push(GrantType::Implicit);
        assert_eq!(
            code_of(FAPI2.shape_registration(&mut implicit)),
            ErrorCode::InvalidClientMetadata
        );
    }

    #[test]
    fn a_fapi2_clients_codes_live_sixty_seconds_at_most() {
        assert_eq!(FAPI2.code_ttl(600), 60);
        assert_eq!(FAPI2.code_ttl(30), 30);
        assert_eq!(NONE.code_ttl(600), 600);
    }

    #[test]
    fn a_fapi2_client_needs_https_redirect_uris() {
        let mut c = fapi_client();
        c.redirect_uris.push("http://127.0.0.1:8000/cb".into());
        assert_eq!(
            code_of(FAPI2.shape_registration(&mut c)),
            ErrorCode::InvalidRedirectUri
        );
    }

    #[test]
    fn a_fapi2_client_stored_without_algorithms_is_still_signed_for_with_ps256() {
        // Not shaped by registration (an import, a direct edit): the defaults still hold.
        let mut c = client("stored");
        c.metadata.profile = Some(Profile::Fapi2);
        assert_eq!(c.metadata.id_token_signed_response_alg, None);
        assert_eq!(
            crate::protocol::tokens::id_token_alg(&c),
            KeyAlgorithm::Ps256
        );
        assert_eq!(
            crate::protocol::tokens::access_token_alg(&c),
            KeyAlgorithm::Ps256
        );
        assert_eq!(
            crate::protocol::introspection::response_alg(&c),
            KeyAlgorithm::Ps256
        );
        let plain = client("plain");
        assert_eq!(
            crate::protocol::tokens::id_token_alg(&plain),
            KeyAlgorithm::Rs256
        );
        assert_eq!(
            crate::protocol::introspection::response_alg(&plain),
            KeyAlgorithm::Rs256
        );
    }

    #[test]
    fn a_fapi2_clients_refresh_tokens_are_not_rotated() {
        assert!(!FAPI2.rotates_refresh_tokens());
        assert!(NONE.rotates_refresh_tokens());
    }

    #[test]
    fn a_fapi2_clients_tokens_must_be_dpop_bound() {
        assert!(FAPI2.requires_dpop());
        assert!(!NONE.requires_dpop());
    }

    #[test]
    fn a_client_under_no_profile_is_registered_as_it_asked() {
        let mut c = client("plain");
        c.auth_method = AuthMethod::ClientSecretBasic;
        c.redirect_uris = vec!["http://127.0.0.1/cb".into()];
        let before = c.clone();
        NONE.shape_registration(&mut c).unwrap();
        assert_eq!(format!("{c:?}"), format!("{before:?}"));
    }
}
