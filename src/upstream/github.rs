//! GitHub (`preset = "github"`): plain OAuth 2.0 without ID tokens. Who signed in comes
//! from `GET {api}/user`, the address and whether GitHub verified it from
//! `GET {api}/user/emails`.

use openidconnect::{PkceCodeChallenge, PkceCodeVerifier};

use super::net::{error_chain, json_of};
use super::{Begun, Provider, UpstreamError, Upstreams, VerifiedToken, check_subject, refused};
use crate::crypto::tokens::random_token;

/// GitHub's authorization request (its "Authorizing OAuth apps" page): state and PKCE
/// (S256); no nonce, as there is no ID token.
pub(super) fn github_begin(provider: &Provider, web: &str) -> Result<Begun, UpstreamError> {
    let state = random_token(32);
    let verifier = PkceCodeVerifier::new(random_token(48));
    let challenge = PkceCodeChallenge::from_code_verifier_sha256(&verifier);
    let mut url = url::Url::parse(&format!("{web}/login/oauth/authorize"))
        .map_err(|e| UpstreamError::Unreachable(e.to_string()))?;
    url.query_pairs_mut()
        .append_pair("client_id", &provider.settings.client_id)
        .append_pair("redirect_uri", &provider.redirect_uri)
        .append_pair("scope", &provider.settings.scopes.join(" "))
        .append_pair("state", &state)
        .append_pair("code_challenge", challenge.as_str())
        .append_pair("code_challenge_method", "S256")
        .append_pair("allow_signup", "false");
    Ok(Begun {
        url: url.to_string(),
        state,
        nonce: String::new(),
        pkce_verifier: verifier.secret().clone(),
    })
}

impl Upstreams {
    /// GitHub's code exchange and its user: `POST {web}/login/oauth/access_token`
    /// (JSON; an error is a 200 with `error`), then `GET {api}/user` for the stable
    /// numeric `id` (the subject; logins can be renamed) and `GET {api}/user/emails` for
    /// the primary address and whether GitHub verified it.
    pub(super) async fn github_finish(
        &self,
        provider: &Provider,
        web: &str,
        api: &str,
        code: &str,
        pkce_verifier: &str,
    ) -> Result<VerifiedToken, UpstreamError> {
        let settings = &provider.settings;
        let secret = settings
            .client_secret
            .as_ref()
            .map(|s| s.expose().clone())
            .unwrap_or_default();
        let unreachable = |e: reqwest::Error| UpstreamError::Unreachable(error_chain(&e));
        let token = provider
            .http
            .post(format!("{web}/login/oauth/access_token"))
            .header(reqwest::header::ACCEPT, "application/json")
            .form(&[
                ("client_id", settings.client_id.as_str()),
                ("client_secret", secret.as_str()),
                ("code", code),
                ("redirect_uri", provider.redirect_uri.as_str()),
                ("code_verifier", pkce_verifier),
            ])
            .send()
            .await
            .map_err(unreachable)?;
        let token: serde_json::Value = json_of(token)
            .await
            .map_err(|e| refused("token_request", e))?;
        let Some(access_token) = token["access_token"].as_str() else {
            let error = token["error"].as_str().unwrap_or("no access_token");
            return Err(refused("token_request", error));
        };
        let get = |path: &str| {
            provider
                .http
                .get(format!("{api}{path}"))
                .bearer_auth(access_token)
                .header(reqwest::header::ACCEPT, "application/vnd.github+json")
                .header("X-GitHub-Api-Version", "2022-11-28")
                .send()
        };
        let user = get("/user").await.map_err(unreachable)?;
        if !user.status().is_success() {
            return Err(refused("github_user", user.status()));
        }
        let user: serde_json::Value = json_of(user).await.map_err(|e| refused("github_user", e))?;
        let subject = match &user["id"] {
            serde_json::Value::Number(n) => n.to_string(),
            _ => return Err(refused("github_user", "no numeric id")),
        };
        check_subject(&subject)?;
        let emails = get("/user/emails").await.map_err(unreachable)?;
        let email_unavailable = !emails.status().is_success();
        let emails: Vec<serde_json::Value> = if !email_unavailable {
            json_of(emails)
                .await
                .map_err(|e| refused("github_emails", e))?
        } else {
            // No address then (the scope was not granted, a GitHub App without the email
            // permission, GitHub briefly failing). Said in the log, and carried on: a
            // linked identity still signs in, but no account is made without knowing
            // whether one has its address (`protocol::upstream::resolve`).
            tracing::warn!(upstream = %settings.id, status = %emails.status(), reason = "github_emails_unavailable", "GitHub /user/emails refused: no address");
            Vec::new()
        };
        // The primary address, and GitHub's `verified` for it (never the profile's
        // public `email`, which says nothing of verification).
        let primary = emails.iter().find(|e| e["primary"] == true);
        let mut claims = serde_json::Map::new();
        claims.insert("sub".into(), subject.clone().into());
        if let Some(login) = user["login"].as_str() {
            claims.insert("preferred_username".into(), login.into());
        }
        if let Some(name) = user["name"].as_str() {
            claims.insert("name".into(), name.into());
        }
        if let Some(picture) = user["avatar_url"].as_str() {
            claims.insert("picture".into(), picture.into());
        }
        if let Some(primary) = primary
            && let Some(email) = primary["email"].as_str()
        {
            claims.insert("email".into(), email.into());
            claims.insert(
                "email_verified".into(),
                (primary["verified"] == true).into(),
            );
        }
        Ok(VerifiedToken {
            issuer: web.to_owned(),
            subject,
            // GitHub says nothing of when its user signed in.
            auth_time: None,
            claims,
            email_unavailable,
            id_token: None,
        })
    }
}
