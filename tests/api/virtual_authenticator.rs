//! WebDriver's virtual authenticators (W3C WebAuthn Level 3 §11, "WebDriver Extension"):
//! software passkeys chromedriver puts in the browser, so the browser tests run real
//! WebAuthn ceremonies with no device and no dialog. fantoccini has no commands for them,
//! so each is a `WebDriverCompatibleCommand` sent with `Client::issue_cmd`. Chromium needs
//! no flag for them over chromedriver.

use fantoccini::Client;
use fantoccini::error::CmdError;
use fantoccini::wd::WebDriverCompatibleCommand;
use serde_json::{Value, json};

/// The §11 extension commands used by the tests.
#[derive(Debug)]
enum Command {
    /// §11.3 Add Virtual Authenticator: POST /session/{id}/webauthn/authenticator.
    Add(Value),
    /// §11.4 Remove Virtual Authenticator: DELETE .../authenticator/{authenticatorId}.
    Remove(String),
    /// §11.6 Get Credentials: GET .../authenticator/{authenticatorId}/credentials.
    Credentials(String),
    /// §11.8 Remove All Credentials: DELETE .../authenticator/{authenticatorId}/credentials.
    RemoveAllCredentials(String),
    /// §11.9 Set User Verified: POST .../authenticator/{authenticatorId}/uv.
    SetUserVerified(String, bool),
}

impl WebDriverCompatibleCommand for Command {
    fn endpoint(
        &self,
        base: &url::Url,
        session: Option<&str>,
    ) -> Result<url::Url, url::ParseError> {
        let authenticators = format!(
            "session/{}/webauthn/authenticator",
            session.unwrap_or_default()
        );
        base.join(&match self {
            Self::Add(_) => authenticators,
            Self::Remove(id) => format!("{authenticators}/{id}"),
            Self::Credentials(id) | Self::RemoveAllCredentials(id) => {
                format!("{authenticators}/{id}/credentials")
            }
            Self::SetUserVerified(id, _) => format!("{authenticators}/{id}/uv"),
        })
    }

    fn method_and_body(&self, _: &url::Url) -> (http::Method, Option<String>) {
        match self {
            Self::Add(parameters) => (http::Method::POST, Some(parameters.to_string())),
            Self::Remove(_) | Self::RemoveAllCredentials(_) => (http::Method::DELETE, None),
            Self::Credentials(_) => (http::Method::GET, None),
            Self::SetUserVerified(_, verified) => (
                http::Method::POST,
                Some(json!({ "isUserVerified": verified }).to_string()),
            ),
        }
    }
}

/// A passkey provider inside the browser: CTAP2 over the "internal" transport (a platform
/// authenticator, as a phone or laptop has), storing discoverable (resident) credentials,
/// verifying the user (as a PIN or fingerprint would) and consenting to every request.
/// Until removed it answers every `navigator.credentials` call of the session.
pub async fn add_virtual_authenticator(client: &Client) -> Result<String, CmdError> {
    let parameters = json!({
        "protocol": "ctap2",
        "transport": "internal",
        "hasResidentKey": true,
        "hasUserVerification": true,
        "isUserConsenting": true,
        "isUserVerified": true,
    });
    let id = client.issue_cmd(Command::Add(parameters)).await?;
    Ok(id.as_str().unwrap_or_default().to_owned())
}

/// Removes the authenticator `id` and the credentials it holds.
pub async fn remove_virtual_authenticator(client: &Client, id: &str) -> Result<(), CmdError> {
    client.issue_cmd(Command::Remove(id.to_owned())).await?;
    Ok(())
}

/// The credentials authenticator `id` holds (§11.6: `credentialId` in base64url,
/// `isResidentCredential`, `rpId`, `userHandle` in base64url, `signCount`, ...).
pub async fn virtual_credentials(client: &Client, id: &str) -> Result<Vec<Value>, CmdError> {
    let credentials = client
        .issue_cmd(Command::Credentials(id.to_owned()))
        .await?;
    Ok(credentials.as_array().cloned().unwrap_or_default())
}

/// Forgets every credential of authenticator `id` (a device reset).
pub async fn remove_all_virtual_credentials(client: &Client, id: &str) -> Result<(), CmdError> {
    client
        .issue_cmd(Command::RemoveAllCredentials(id.to_owned()))
        .await?;
    Ok(())
}

/// Whether authenticator `id` reports the user verified from now on (false: as if the
/// PIN or fingerprint failed).
pub async fn set_virtual_user_verified(
    client: &Client,
    id: &str,
    verified: bool,
) -> Result<(), CmdError> {
    client
        .issue_cmd(Command::SetUserVerified(id.to_owned(), verified))
        .await?;
    Ok(())
}

/// chromedriver's `goog/cdp/execute`: one Chrome DevTools Protocol command.
#[derive(Debug)]
struct DevTools(&'static str, Value);

impl WebDriverCompatibleCommand for DevTools {
    fn endpoint(
        &self,
        base: &url::Url,
        session: Option<&str>,
    ) -> Result<url::Url, url::ParseError> {
        base.join(&format!(
            "session/{}/goog/cdp/execute",
            session.unwrap_or_default()
        ))
    }

    fn method_and_body(&self, _: &url::Url) -> (http::Method, Option<String>) {
        let body = json!({ "cmd": self.0, "params": self.1 });
        (http::Method::POST, Some(body.to_string()))
    }
}

/// From the next page on, the browser offers no passkeys in the username field's
/// autofill (`isConditionalMediationAvailable()` says no, as in a browser without
/// conditional mediation), so that the page's button is what asks. A virtual
/// authenticator answers an autofill request at once, by itself, where a person would
/// have to pick the passkey. Returns what [`with_passkey_autofill`] takes.
pub async fn without_passkey_autofill(client: &Client) -> Result<String, CmdError> {
    let source = "PublicKeyCredential.isConditionalMediationAvailable = \
                  () => Promise.resolve(false);";
    let added = client
        .issue_cmd(DevTools(
            "Page.addScriptToEvaluateOnNewDocument",
            json!({ "source": source }),
        ))
        .await?;
    Ok(added["identifier"].as_str().unwrap_or_default().to_owned())
}

/// Undoes [`without_passkey_autofill`] (from the next page on).
pub async fn with_passkey_autofill(client: &Client, identifier: &str) -> Result<(), CmdError> {
    client
        .issue_cmd(DevTools(
            "Page.removeScriptToEvaluateOnNewDocument",
            json!({ "identifier": identifier }),
        ))
        .await?;
    Ok(())
}
