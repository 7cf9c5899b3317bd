//! node-oidc-provider (oidc-provider 9, OpenID Certified) as an upstream OpenID provider:
//! `server.mjs` of `../shared/peers/node-oidc-provider`, run by Node.js on a free port of
//! 127.0.0.3 with one confidential client whose redirect URI the test gives.
//!
//! `scripts/test` installs it once per machine into `target/peers/node-oidc-provider`
//! (`npm ci` again when its package-lock changes); `PORTCULLIS_NODE_OIDC_PROVIDER_DIR`
//! points elsewhere. Each instance runs a copy of `server.mjs` in a temporary folder of
//! its own (its `data/`: signing and cookie keys), with `node_modules` linked from the
//! installation. Without Node.js or the installation the tests say so and pass, unless
//! `PORTCULLIS_TEST_REQUIRE_PEERS=1` (CI).
//!
//! What server.mjs offers (read from it, not changed): one account, `sub`
//! `user-alice-0001`, with `name` "Alice Bench", `email` `alice@example.test` and
//! `email_verified: true` (scopes `profile`, `email`); login and consent pages of its own
//! at `/interaction/{uid}`; RS256 (first, the ID tokens' default), ES256 and EdDSA keys;
//! PKCE S256 (not required); the RFC 9207 `iss` in the authorization response;
//! `client_secret_basic` only. oidc-provider puts the scope claims in the ID token only
//! when no access token is issued (`conformIdTokenClaims`): in the code flow the ID token
//! has `sub` and the protocol claims, and `email`/`name` come from userinfo. Its storage
//! is in memory: a restart forgets sessions, codes and tokens, not keys.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use reqwest::StatusCode;
use tempfile::TempDir;
use url::Url;

use super::{form_action, free_port_on, location, origin, unavailable, wait_for_200};

/// The loopback address node-oidc-provider listens on (see the module's parent on why
/// not 127.0.0.1).
pub const HOST: &str = "127.0.0.3";
/// The account of server.mjs: its `sub` and claims are fixed there.
pub const SUB: &str = "user-alice-0001";
pub const EMAIL: &str = "alice@example.test";
pub const NAME: &str = "Alice Bench";

const MANIFEST: &str = env!("CARGO_MANIFEST_DIR");

/// One node-oidc-provider process, killed (and its folder removed) on drop.
pub struct NodeOidc {
    /// `http://127.0.0.3:PORT`: the exact `iss`; discovery below it.
    pub issuer: String,
    pub port: u16,
    pub client_id: String,
    pub client_secret: String,
    /// The only redirect URI of the client (server.mjs takes one).
    pub redirect_uri: String,
    pub username: String,
    pub password: String,
    dir: TempDir,
    child: Option<Child>,
}

/// Where `scripts/test` installed server.mjs and its node_modules.
fn installation() -> PathBuf {
    std::env::var_os("PORTCULLIS_NODE_OIDC_PROVIDER_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(MANIFEST).join("target/peers/node-oidc-provider"))
}

impl NodeOidc {
    /// Starts node-oidc-provider with one client (`client_secret_basic`) allowed to
    /// redirect to `redirect_uri` only; returns once its discovery document answers.
    /// `None` (after saying why) where Node.js or the installation is missing and the
    /// peers are not required.
    pub async fn start(redirect_uri: &str) -> Option<Self> {
        let installed = installation();
        if !installed.join("node_modules/oidc-provider").is_dir()
            || !installed.join("server.mjs").is_file()
        {
            unavailable(
                "node-oidc-provider",
                &format!(
                    "not installed at {} (scripts/test installs it with npm from \
                     ../shared/peers/node-oidc-provider)",
                    installed.display()
                ),
            );
            return None;
        }
        if Command::new("node")
            .arg("--version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_err()
        {
            unavailable("node-oidc-provider", "no `node` on PATH");
            return None;
        }
        let dir = TempDir::new().unwrap();
        for file in ["server.mjs", "package.json"] {
            std::fs::copy(installed.join(file), dir.path().join(file)).unwrap();
        }
        // Linked, not copied: resolving `oidc-provider` from the copy finds it, and the
        // copy's `data/` (keys) stays its own.
        std::os::unix::fs::symlink(
            installed.join("node_modules").canonicalize().unwrap(),
            dir.path().join("node_modules"),
        )
        .unwrap();
        let port = free_port_on(HOST);
        let mut peer = Self {
            issuer: format!("http://{HOST}:{port}"),
            port,
            client_id: "portcullis-rp".to_owned(),
            client_secret: portcullis::crypto::tokens::random_token(32),
            redirect_uri: redirect_uri.to_owned(),
            username: "alice".to_owned(),
            password: "alice-password-123".to_owned(),
            dir,
            child: None,
        };
        peer.spawn().await;
        Some(peer)
    }

    async fn spawn(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join("server.log"))
            .unwrap();
        let child = Command::new("node")
            .arg("server.mjs")
            .current_dir(self.dir.path())
            .env("NODE_ENV", "production")
            .env("HOST", HOST)
            .env("PORT", self.port.to_string())
            .env("ISSUER", &self.issuer)
            .env("CLIENT_ID", &self.client_id)
            .env("CLIENT_SECRET", &self.client_secret)
            .env("REDIRECT_URI", &self.redirect_uri)
            .env("TEST_USER", &self.username)
            .env("TEST_PASSWORD", &self.password)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        self.child = Some(child);
        // Key generation and two argon2id hashes happen before it listens (under a second).
        if !wait_for_200(
            &self.url("/.well-known/openid-configuration"),
            Duration::from_secs(30),
        )
        .await
        {
            let log = std::fs::read_to_string(self.dir.path().join("server.log")).unwrap();
            panic!(
                "node-oidc-provider did not start on {}:\n{log}",
                self.issuer
            );
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.issuer)
    }

    /// Kills the process (the provider is down until [`Self::restart`]).
    pub async fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        super::wait_until_down(&self.url("/.well-known/openid-configuration")).await;
    }

    /// Starts it again on the same port with the same keys (sessions, codes and tokens,
    /// kept in memory, are gone).
    pub async fn restart(&mut self) {
        self.stop().await;
        self.spawn().await;
    }

    /// Restarts it on the same port with new signing keys (server.mjs makes new ones when
    /// `data/jwks.json` is missing); the old keys are no longer published. Returns the new
    /// RS256 `kid` (the ID tokens' key).
    pub async fn rotate_keys(&mut self) -> String {
        let old = self.rs256_kid();
        self.stop().await;
        std::fs::remove_file(self.dir.path().join("data/jwks.json")).unwrap();
        self.spawn().await;
        let new = self.rs256_kid();
        assert_ne!(old, new);
        new
    }

    /// The `kid` of the RS256 key it signs ID tokens with now.
    pub fn rs256_kid(&self) -> String {
        let text = std::fs::read_to_string(self.dir.path().join("data/jwks.json")).unwrap();
        let jwks: serde_json::Value = serde_json::from_str(&text).unwrap();
        jwks["keys"]
            .as_array()
            .unwrap()
            .iter()
            .find(|k| k["alg"] == "RS256")
            .and_then(|k| k["kid"].as_str())
            .unwrap()
            .to_owned()
    }

    /// Signs in as its account from `authorize_url` (an authorization request to this
    /// provider, as a relying party redirects a browser to it): follows the provider's
    /// redirects, fills in its login form, allows its consent form when asked, and returns
    /// the redirect that leaves the provider (to the relying party's redirect URI, with
    /// `code`, `state` and `iss`, or an error). `http` is the browser: a cookie store and
    /// no redirect following ([`super::browser_http`]); a form the provider does not
    /// show (a browser already signed in there) is not filled in.
    pub async fn login(&self, http: &reqwest::Client, authorize_url: &str) -> Url {
        self.login_with(http, authorize_url, &self.password)
            .await
            .unwrap_or_else(|(status, html)| panic!("node-oidc-provider refused: {status} {html}"))
    }

    /// As [`Self::login`] with another password: a page the provider stops at (its
    /// status and body) instead of a redirect out.
    pub async fn login_with(
        &self,
        http: &reqwest::Client,
        authorize_url: &str,
        password: &str,
    ) -> Result<Url, (StatusCode, String)> {
        let own = origin(&Url::parse(&self.issuer).unwrap());
        let mut response = http.get(authorize_url).send().await.unwrap();
        for _ in 0..20 {
            if let Some(next) = location(&response) {
                if origin(&next) != own {
                    return Ok(next);
                }
                response = http.get(next).send().await.unwrap();
                continue;
            }
            let (status, page_url) = (response.status(), response.url().clone());
            let html = response.text().await.unwrap();
            let action = match form_action(&html) {
                Some(action) if status == StatusCode::OK => page_url.join(&action).unwrap(),
                _ => return Err((status, html)),
            };
            let form: Vec<(&str, &str)> = if action.path().ends_with("/login") {
                vec![("username", self.username.as_str()), ("password", password)]
            } else if action.path().ends_with("/confirm") {
                vec![]
            } else {
                return Err((status, html));
            };
            response = http.post(action).form(&form).send().await.unwrap();
        }
        panic!("node-oidc-provider: too many steps from {authorize_url}");
    }
}

impl Drop for NodeOidc {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::helpers::{Pkce, jwt_part, query};

    /// Discovery, a code flow with PKCE by plain reqwest through its login and consent
    /// pages, an RS256 ID token from its issuer, userinfo with the verified email; then a
    /// key rotation, after which a new sign-in's ID token is signed by the new key only.
    #[tokio::test]
    async fn node_oidc_provider_signs_a_relying_party_in_and_rotates_its_keys() {
        let redirect_uri = "http://127.0.0.1:1/upstream/node/callback";
        let Some(mut peer) = NodeOidc::start(redirect_uri).await else {
            return;
        };
        let discovery: serde_json::Value =
            crate::helpers::get(peer.url("/.well-known/openid-configuration"))
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
        assert_eq!(discovery["issuer"], peer.issuer.as_str());
        assert_eq!(
            discovery["authorization_response_iss_parameter_supported"],
            true
        );

        let id_token = code_flow(&peer, &discovery).await;
        let header = jwt_part(&id_token, 0);
        assert_eq!(header["alg"], "RS256");
        assert_eq!(header["kid"], peer.rs256_kid().as_str());
        let old_kid = peer.rs256_kid();

        let new_kid = peer.rotate_keys().await;
        let jwks: serde_json::Value = crate::helpers::get(discovery["jwks_uri"].as_str().unwrap())
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let kids: Vec<&str> = jwks["keys"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|k| k["kid"].as_str())
            .collect();
        assert!(kids.contains(&new_kid.as_str()) && !kids.contains(&old_kid.as_str()));
        let id_token = code_flow(&peer, &discovery).await;
        assert_eq!(jwt_part(&id_token, 0)["kid"], new_kid.as_str());
        assert_eq!(jwt_part(&id_token, 1)["iss"], peer.issuer.as_str());

        // Down, then back with the same keys.
        peer.stop().await;
        assert!(crate::helpers::get(peer.url("/jwks")).await.is_err());
        peer.restart().await;
        assert_eq!(peer.rs256_kid(), new_kid);
    }

    /// One sign-in in a fresh browser; checks the callback and the tokens, returns the ID
    /// token.
    async fn code_flow(peer: &NodeOidc, discovery: &serde_json::Value) -> String {
        let pkce = Pkce::new();
        let mut authorize =
            Url::parse(discovery["authorization_endpoint"].as_str().unwrap()).unwrap();
        authorize
            .query_pairs_mut()
            .append_pair("response_type", "code")
            .append_pair("client_id", &peer.client_id)
            .append_pair("redirect_uri", &peer.redirect_uri)
            .append_pair("scope", "openid profile email")
            .append_pair("state", "state-1")
            .append_pair("nonce", "nonce-1")
            .append_pair("code_challenge", &pkce.challenge)
            .append_pair("code_challenge_method", "S256");
        let http = super::super::browser_http();
        let callback = peer.login(&http, authorize.as_str()).await;
        assert!(
            callback.as_str().starts_with(&peer.redirect_uri),
            "{callback}"
        );
        assert_eq!(query(&callback, "state").as_deref(), Some("state-1"));
        assert_eq!(
            query(&callback, "iss").as_deref(),
            Some(peer.issuer.as_str())
        );
        let code = query(&callback, "code").unwrap();

        // A wrong password stops at the login page.
        let refused = peer
            .login_with(&super::super::browser_http(), authorize.as_str(), "wrong")
            .await;
        assert_eq!(refused.unwrap_err().0, StatusCode::UNAUTHORIZED);

        let response = crate::helpers::http()
            .post(discovery["token_endpoint"].as_str().unwrap())
            .basic_auth(&peer.client_id, Some(&peer.client_secret))
            .form(&[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", &peer.redirect_uri),
                ("code_verifier", &pkce.verifier),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        let tokens: serde_json::Value = response.json().await.unwrap();
        let id_token = tokens["id_token"].as_str().unwrap().to_owned();
        let claims = jwt_part(&id_token, 1);
        assert_eq!(claims["iss"], peer.issuer.as_str());
        assert_eq!(claims["aud"], peer.client_id.as_str());
        assert_eq!(claims["sub"], SUB);
        assert_eq!(claims["nonce"], "nonce-1");

        let userinfo: serde_json::Value = crate::helpers::http()
            .get(discovery["userinfo_endpoint"].as_str().unwrap())
            .bearer_auth(tokens["access_token"].as_str().unwrap())
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(userinfo["sub"], SUB);
        assert_eq!(userinfo["email"], EMAIL);
        assert_eq!(userinfo["email_verified"], true);
        assert_eq!(userinfo["name"], NAME);
        id_token
    }
}
