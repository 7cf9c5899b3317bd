//! A second Portcullis as the upstream OpenID provider: the `portcullis` binary serving
//! on a free port of 127.0.0.2, over its own SQLite file, with its own configuration file,
//! in a temporary folder; set up with its own command line (`users add`, `clients add`,
//! `keys rotate`), as an operator would. No `PORTCULLIS_*` variable of the test's
//! environment reaches it.

use std::io::Write;
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use tempfile::TempDir;
use url::Url;

use super::{free_port_on, wait_for_200};
use crate::helpers::Browser;

/// The loopback address the peer listens on (see the module's parent on why not
/// 127.0.0.1).
pub const HOST: &str = "127.0.0.2";
/// The user made at start.
pub const USERNAME: &str = "ursula";
pub const PASSWORD: &str = "upstream passphrase 4 ursula";
pub const EMAIL: &str = "ursula@upstream.example";

/// One `portcullis serve` process, killed (and its folder removed) on drop.
pub struct PortcullisPeer {
    /// `http://127.0.0.2:PORT`: the exact `iss`.
    pub issuer: String,
    /// The confidential client (`client_secret_basic`) registered at start.
    pub client_id: String,
    pub client_secret: String,
    pub redirect_uri: String,
    /// The `sub` of [`USERNAME`] at this provider.
    pub sub: String,
    dir: TempDir,
    child: Option<Child>,
}

impl PortcullisPeer {
    /// Starts the peer with one confidential client allowed to redirect to
    /// `redirect_uri`, and one user, [`USERNAME`] / [`PASSWORD`], with the email [`EMAIL`]
    /// (verified) and the name "Ursula Upstream"; returns once it is ready.
    pub async fn start(redirect_uri: &str) -> Self {
        let dir = TempDir::new().unwrap();
        let port = free_port_on(HOST);
        let issuer = format!("http://{HOST}:{port}");
        let config = format!(
            "# The upstream provider of the tests of issue 24.\n\
             issuer = \"{issuer}\"\n\
             bind = \"{HOST}:{port}\"\n\
             database_url = \"sqlite://{db}\"\n\
             key_encryption_key = \"{kek}\"\n\
             # Not 127.0.0.1, so not taken for local: plain-HTTP cookies said explicitly.\n\
             cookie_secure = false\n\
             metrics_bind = \"off\"\n\
             registration = \"off\"\n\
             # A rotation (`keys rotate`) is picked up within a second.\n\
             key_refresh_interval = 1\n",
            db = dir.path().join("upstream.db").display(),
            kek = crate::helpers::TEST_KEK,
        );
        std::fs::write(dir.path().join("portcullis.toml"), config).unwrap();
        let mut peer = Self {
            issuer,
            client_id: String::new(),
            client_secret: String::new(),
            redirect_uri: redirect_uri.to_owned(),
            sub: String::new(),
            dir,
            child: None,
        };
        peer.cli_ok(&["migrate"], None);
        peer.sub = peer.add_user(USERNAME, PASSWORD, EMAIL);
        (peer.client_id, peer.client_secret) = peer.add_client(redirect_uri);
        peer.spawn().await;
        peer
    }

    fn config_path(&self) -> PathBuf {
        self.dir.path().join("portcullis.toml")
    }

    /// The binary with this peer's configuration and nothing of the test's `PORTCULLIS_*`
    /// environment.
    fn command(&self) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_portcullis"));
        for (name, _) in std::env::vars_os() {
            if name.to_string_lossy().starts_with("PORTCULLIS_") {
                command.env_remove(name);
            }
        }
        command
            .arg("--config")
            .arg(self.config_path())
            .env("RUST_LOG", "warn");
        command
    }

    /// Runs a command of the CLI (`users ...`, `clients ...`, `keys ...`) on this peer's
    /// configuration, with `stdin` written to it.
    pub fn cli(&self, args: &[&str], stdin: Option<&str>) -> Output {
        let mut child = self
            .command()
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        if let Some(input) = stdin {
            child
                .stdin
                .take()
                .unwrap()
                .write_all(input.as_bytes())
                .unwrap();
        }
        drop(child.stdin.take());
        child.wait_with_output().unwrap()
    }

    /// As [`Self::cli`], which must succeed; its standard output.
    pub fn cli_ok(&self, args: &[&str], stdin: Option<&str>) -> String {
        let output = self.cli(args, stdin);
        assert!(
            output.status.success(),
            "portcullis {args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8(output.stdout).unwrap()
    }

    /// Adds a user with a verified email and a name (`users add`); returns its `sub`.
    pub fn add_user(&self, username: &str, password: &str, email: &str) -> String {
        let name = format!(
            "{}{} Upstream",
            username[..1].to_uppercase(),
            &username[1..]
        );
        self.cli_ok(
            &[
                "users",
                "add",
                "--username",
                username,
                "--email",
                email,
                "--email-verified",
                "--name",
                &name,
                "--password-stdin",
            ],
            Some(&format!("{password}\n")),
        )
        .trim()
        .to_owned()
    }

    /// Registers another confidential client (`clients add`); returns its id and secret.
    pub fn add_client(&self, redirect_uri: &str) -> (String, String) {
        let printed = self.cli_ok(
            &[
                "clients",
                "add",
                "--name",
                "Portcullis downstream",
                "--redirect-uri",
                redirect_uri,
            ],
            None,
        );
        let json: serde_json::Value = serde_json::from_str(&printed).unwrap();
        (
            json["client_id"].as_str().unwrap().to_owned(),
            json["client_secret"].as_str().unwrap().to_owned(),
        )
    }

    async fn spawn(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join("serve.log"))
            .unwrap();
        let child = self
            .command()
            .arg("serve")
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        self.child = Some(child);
        if !wait_for_200(&self.url("/readyz"), Duration::from_secs(30)).await {
            let log = std::fs::read_to_string(self.dir.path().join("serve.log")).unwrap();
            panic!(
                "the upstream portcullis did not start on {}:\n{log}",
                self.issuer
            );
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.issuer)
    }

    /// Kills the process: the provider is down until [`Self::restart`].
    pub async fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        super::wait_until_down(&self.url("/readyz")).await;
    }

    /// Starts it again on the same port and database (browser sessions, kept in
    /// process, are gone).
    pub async fn restart(&mut self) {
        self.stop().await;
        self.spawn().await;
    }

    /// The published RS256 `kid`s.
    pub async fn rs256_kids(&self) -> Vec<String> {
        let jwks: serde_json::Value = crate::helpers::get(self.url("/jwks"))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        jwks["keys"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|k| k["alg"] == "RS256")
            .filter_map(|k| k["kid"].as_str().map(str::to_owned))
            .collect()
    }

    /// Rotates the RS256 key of the running server (`keys rotate --alg RS256
    /// --activate-in 0`) and returns the new `kid` once the server publishes it; it signs
    /// from then on (the ID tokens' algorithm), the old key staying published for the
    /// tokens it signed. No restart.
    pub async fn rotate_keys(&self) -> String {
        let before = self.rs256_kids().await;
        self.cli_ok(
            &["keys", "rotate", "--alg", "RS256", "--activate-in", "0"],
            None,
        );
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(new) = self
                .rs256_kids()
                .await
                .into_iter()
                .find(|k| !before.contains(k))
            {
                return new;
            }
            assert!(
                Instant::now() < deadline,
                "the rotated key was not published"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Signs in from `authorize_url` (an authorization request to this peer, as a relying
    /// party redirects a browser to it) as `username` with `password`: its login page,
    /// then its consent page when asked; returns the redirect that leaves the peer (to the
    /// relying party's redirect URI, with `code` and `state`, or an error). `http` is the
    /// browser: a cookie store and no redirect following ([`super::browser_http`]); a
    /// browser already signed in here skips the login page. Panics on any other page (a
    /// wrong password, a second factor).
    pub async fn login(
        &self,
        http: &reqwest::Client,
        authorize_url: &str,
        username: &str,
        password: &str,
    ) -> Url {
        let browser = Browser::new(http.clone(), &format!("{}/", self.issuer));
        let mut outcome = browser.open(authorize_url).await;
        if outcome.is_page("/login") {
            let (url, status, html) = outcome.page();
            assert_eq!(status, StatusCode::OK, "{html}");
            outcome = browser
                .submit(
                    &url,
                    &html,
                    &[("username", username), ("password", password)],
                )
                .await;
        }
        browser.consent_if_asked(outcome).await.left()
    }
}

impl Drop for PortcullisPeer {
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

    async fn code_flow(peer: &PortcullisPeer, http: &reqwest::Client) -> serde_json::Value {
        let discovery: serde_json::Value =
            crate::helpers::get(peer.url("/.well-known/openid-configuration"))
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
        assert_eq!(discovery["issuer"], peer.issuer.as_str());
        let pkce = Pkce::new();
        let mut authorize =
            Url::parse(discovery["authorization_endpoint"].as_str().unwrap()).unwrap();
        authorize
            .query_pairs_mut()
            .append_pair("response_type", "code")
            .append_pair("client_id", &peer.client_id)
            .append_pair("redirect_uri", &peer.redirect_uri)
            .append_pair("scope", "openid profile email")
            .append_pair("state", "state-p")
            .append_pair("nonce", "nonce-p")
            .append_pair("code_challenge", &pkce.challenge)
            .append_pair("code_challenge_method", "S256");
        let callback = peer
            .login(http, authorize.as_str(), USERNAME, PASSWORD)
            .await;
        assert!(
            callback.as_str().starts_with(&peer.redirect_uri),
            "{callback}"
        );
        assert_eq!(query(&callback, "state").as_deref(), Some("state-p"));
        let response = crate::helpers::http()
            .post(discovery["token_endpoint"].as_str().unwrap())
            .basic_auth(&peer.client_id, Some(&peer.client_secret))
            .form(&[
                ("grant_type", "authorization_code"),
                ("code", &query(&callback, "code").unwrap()),
                ("redirect_uri", &peer.redirect_uri),
                ("code_verifier", &pkce.verifier),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        let tokens: serde_json::Value = response.json().await.unwrap();
        let claims = jwt_part(tokens["id_token"].as_str().unwrap(), 1);
        assert_eq!(claims["iss"], peer.issuer.as_str());
        assert_eq!(claims["aud"], peer.client_id.as_str());
        assert_eq!(claims["sub"], peer.sub.as_str());
        assert_eq!(claims["nonce"], "nonce-p");
        let userinfo: serde_json::Value = crate::helpers::http()
            .get(discovery["userinfo_endpoint"].as_str().unwrap())
            .bearer_auth(tokens["access_token"].as_str().unwrap())
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(userinfo["email"], EMAIL);
        assert_eq!(userinfo["email_verified"], true);
        tokens
    }

    /// A code flow with PKCE by plain reqwest through the peer's login and consent pages;
    /// then, in the same browser (signed in: no login page), after a key rotation of the
    /// running server, an ID token signed by the new key; then down and back.
    #[tokio::test]
    async fn a_second_portcullis_process_signs_a_relying_party_in_and_rotates_its_key() {
        let mut peer = PortcullisPeer::start("http://127.0.0.1:1/upstream/peer/callback").await;
        let http = super::super::browser_http();
        let first = code_flow(&peer, &http).await;
        let old_kid = jwt_part(first["id_token"].as_str().unwrap(), 0)["kid"]
            .as_str()
            .unwrap()
            .to_owned();

        let new_kid = peer.rotate_keys().await;
        assert_ne!(new_kid, old_kid);
        let second = code_flow(&peer, &http).await;
        assert_eq!(
            jwt_part(second["id_token"].as_str().unwrap(), 0)["kid"],
            new_kid.as_str()
        );
        assert!(peer.rs256_kids().await.contains(&old_kid));

        peer.stop().await;
        assert!(crate::helpers::get(peer.url("/jwks")).await.is_err());
        peer.restart().await;
        code_flow(&peer, &super::super::browser_http()).await;
    }
}
