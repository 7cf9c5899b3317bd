//! Client authentication at the token endpoint (RFC 6749 §2.3, OIDC Core §9):
//! `client_secret_basic`, `client_secret_post`, and `none` for public clients.

use super::{Context, OAuthError, Params};
use crate::crypto::tokens::{constant_time_eq, token_hash};
use crate::domain::Secret;
use crate::store::{AuthMethod, Client};

/// Credentials as presented, already decoded from the `Authorization` header and the body.
#[derive(Debug, Default)]
pub struct PresentedCredentials {
    /// From `Authorization: Basic` (RFC 6749 §2.3.1, form-urlencoded before base64).
    pub basic: Option<(String, Secret<String>)>,
    pub post_id: Option<String>,
    pub post_secret: Option<Secret<String>>,
}

impl PresentedCredentials {
    pub fn from_body(
        basic: Option<(String, Secret<String>)>,
        body: &Params,
    ) -> Result<Self, OAuthError> {
        Ok(Self {
            basic,
            post_id: body.single("client_id")?.map(str::to_owned),
            post_secret: body
                .single("client_secret")?
                .map(|s| Secret::new(s.to_owned())),
        })
    }
}

/// Finds and authenticates the client. Every failure is `invalid_client` except a request
/// that uses two methods at once (`invalid_request`, RFC 6749 §2.3).
pub fn authenticate(creds: &PresentedCredentials, ctx: &Context<'_>) -> Result<Client, OAuthError> {
    if creds.basic.is_some() && creds.post_secret.is_some() {
        return Err(OAuthError::invalid_request(
            "use only one client authentication method",
        ));
    }
    let (client_id, secret, method) = match (&creds.basic, &creds.post_secret) {
        (Some((id, secret)), _) => {
            if creds.post_id.as_deref().is_some_and(|p| p != id) {
                return Err(OAuthError::invalid_request(
                    "client_id differs from the authenticated client",
                ));
            }
            (id.as_str(), Some(secret), AuthMethod::ClientSecretBasic)
        }
        (None, Some(secret)) => {
            let id = creds
                .post_id
                .as_deref()
                .ok_or_else(|| OAuthError::invalid_client("client_id is missing"))?;
            (id, Some(secret), AuthMethod::ClientSecretPost)
        }
        (None, None) => {
            let id = creds
                .post_id
                .as_deref()
                .ok_or_else(|| OAuthError::invalid_client("client authentication is missing"))?;
            (id, None, AuthMethod::None)
        }
    };
    let client = ctx
        .store
        .find_client(client_id)?
        .ok_or_else(|| OAuthError::invalid_client("client authentication failed"))?;
    // A client with a secret may present it either way: RFC 6749 §2.3.1 says the server
    // MUST support HTTP Basic for clients issued a password, and relying parties switch
    // between the two freely. A public client must not present a secret, and a
    // confidential client must present one.
    let secret_based = |m: AuthMethod| m != AuthMethod::None;
    if secret_based(client.auth_method) != secret_based(method) {
        return Err(OAuthError::invalid_client(format!(
            "client is registered for {}",
            client.auth_method.as_str()
        )));
    }
    if let Some(secret) = secret {
        let stored = client.secret_hash.as_deref().unwrap_or("");
        if !constant_time_eq(token_hash(secret.expose()).as_bytes(), stored.as_bytes()) {
            return Err(OAuthError::invalid_client("client authentication failed"));
        }
    }
    Ok(client)
}
