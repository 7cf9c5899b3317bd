//! The pages in a real browser: headless Chromium driven over WebDriver (chromedriver),
//! clicking and typing as a person does. Every page visited is checked the same way
//! (`Chrome::check`): a screenshot saved as a test artefact (`target/browser-screenshots`),
//! axe-core's accessibility rules with no serious or critical violation, no console
//! error (a CSP violation is one), and no horizontal scroll at the window's width.
//!
//! Chromium, chromedriver (Debian `chromium`, `chromium-driver`) and axe-core (npm, put
//! in `target/axe` by `scripts/test`) must be there; where one is missing the tests say
//! so and pass, unless `PORTCULLIS_TEST_REQUIRE_BROWSER=1` (CI), which fails them.
//! `PORTCULLIS_UPDATE_SCREENSHOTS=1` also writes the README's screenshots to `docs/`.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::error::CmdError;
use fantoccini::wd::WebDriverCompatibleCommand;
use fantoccini::{Client, ClientBuilder, Locator};
use portcullis::protocol::registration::ClientDraft;
use serde_json::{Value, json};

use crate::helpers::{PASSWORD, TestApp, spawn_app};
use crate::logout_receiver::Receiver;
use crate::virtual_authenticator::{
    add_virtual_authenticator, remove_all_virtual_credentials, remove_virtual_authenticator,
    set_virtual_user_verified, virtual_credentials,
};

const MANIFEST: &str = env!("CARGO_MANIFEST_DIR");

fn found(path: &str) -> Option<PathBuf> {
    let p = Path::new(path);
    if p.is_absolute() {
        return p.exists().then(|| p.to_owned());
    }
    std::env::var_os("PATH")?
        .to_str()?
        .split(':')
        .map(|dir| Path::new(dir).join(path))
        .find(|p| p.exists())
}

/// The chromedriver `/se/log` command: the browser console's entries since last asked.
#[derive(Debug)]
struct BrowserLog;

impl WebDriverCompatibleCommand for BrowserLog {
    fn endpoint(
        &self,
        base: &url::Url,
        session: Option<&str>,
    ) -> Result<url::Url, url::ParseError> {
        base.join(&format!("session/{}/se/log", session.unwrap_or_default()))
    }

    fn method_and_body(&self, _: &url::Url) -> (http::Method, Option<String>) {
        (
            http::Method::POST,
            Some(json!({ "type": "browser" }).to_string()),
        )
    }
}

pub(crate) struct Chrome {
    pub(crate) client: Client,
    driver: Child,
    axe: String,
    test: &'static str,
}

impl Chrome {
    /// A fresh headless Chromium (a new profile: no cookies), or `None` where the tools
    /// are missing.
    pub(crate) async fn start(test: &'static str) -> Option<Self> {
        let driver =
            found(&std::env::var("PORTCULLIS_CHROMEDRIVER").unwrap_or("chromedriver".into()));
        let chromium = found(&std::env::var("PORTCULLIS_CHROMIUM").unwrap_or("chromium".into()));
        let axe_path = std::env::var("PORTCULLIS_AXE_JS").unwrap_or(format!(
            "{MANIFEST}/target/axe/node_modules/axe-core/axe.min.js"
        ));
        let axe = std::fs::read_to_string(&axe_path).ok();
        let (Some(driver), Some(chromium), Some(axe)) = (driver, chromium, axe) else {
            let message = format!(
                "browser test {test} skipped: it needs chromium and chromedriver (Debian packages \
                 chromium, chromium-driver) and axe-core at {axe_path} (scripts/test installs it)"
            );
            assert!(
                std::env::var("PORTCULLIS_TEST_REQUIRE_BROWSER").as_deref() != Ok("1"),
                "{message}"
            );
            eprintln!("{message}");
            return None;
        };
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let driver = Command::new(driver)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver starts");
        let base = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(30);
        while crate::helpers::http()
            .get(format!("{base}/status"))
            .send()
            .await
            .is_err()
        {
            assert!(Instant::now() < deadline, "chromedriver did not answer");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let caps = json!({
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": chromium,
                "args": ["--headless=new", "--no-sandbox", "--disable-dev-shm-usage",
                         "--disable-gpu", "--window-size=1280,900", "--lang=en-US",
                         "--no-first-run", "--disable-extensions"],
            },
            "goog:loggingPrefs": { "browser": "ALL" },
        });
        let Value::Object(caps) = caps else {
            unreachable!()
        };
        let client = ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
            .capabilities(caps)
            .connect(&base)
            .await
            .expect("a WebDriver session");
        Some(Self {
            client,
            driver,
            axe,
            test,
        })
    }

    pub(crate) async fn done(mut self) {
        let _ = self.client.close().await;
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }

    /// Opens `url`. What the console said before (on pages of other sites, such as the
    /// test's app, which has no favicon) is dropped: `check` judges our pages.
    pub(crate) async fn goto(&self, url: &str) {
        self.client.issue_cmd(BrowserLog).await.unwrap();
        self.client.goto(url).await.unwrap();
    }

    pub(crate) async fn find(&self, css: &str) -> fantoccini::elements::Element {
        let found = self
            .client
            .wait()
            .at_most(Duration::from_secs(10))
            .for_element(Locator::Css(css))
            .await;
        match found {
            Ok(element) => element,
            Err(e) => panic!(
                "{}: no {css} at {}: {e}\n{}",
                self.test,
                self.url().await,
                self.client.source().await.unwrap_or_default()
            ),
        }
    }

    pub(crate) async fn click(&self, css: &str) {
        self.find(css).await.click().await.unwrap();
    }

    pub(crate) async fn type_into(&self, css: &str, text: &str) {
        let field = self.find(css).await;
        field.click().await.unwrap();
        field.send_keys(text).await.unwrap();
    }

    /// Types `keys` where the focus is, as a keyboard does.
    pub(crate) async fn press(&self, keys: &str) {
        let focused = self.client.active_element().await.unwrap();
        focused.send_keys(keys).await.unwrap();
    }

    pub(crate) async fn url(&self) -> url::Url {
        self.client.current_url().await.unwrap()
    }

    /// Waits (polling, with a deadline) until the page's `h1` reads `expected`: after a
    /// click the old page may still be there for a moment.
    pub(crate) async fn wait_for_heading(&self, expected: &str) {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let heading = self.find("h1").await.text().await.unwrap_or_default();
            if heading == expected {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{}: the heading stayed {heading:?}, not {expected:?}, at {}",
                self.test,
                self.url().await
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits (polling, with a deadline) until the browser is at a URL `at` accepts.
    pub(crate) async fn wait_for_url(
        &self,
        what: &str,
        at: impl Fn(&url::Url) -> bool,
    ) -> url::Url {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let url = self.url().await;
            if at(&url) {
                return url;
            }
            assert!(
                Instant::now() < deadline,
                "{}: never reached {what}; at {url}",
                self.test
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub(crate) async fn script(&self, js: &str) -> Result<Value, CmdError> {
        self.client.execute(js, vec![]).await
    }

    /// Takes the console's entries so far, where the page's script met a refusal it shows
    /// the person: a 4xx answer of `path` (below the page's origin), which Chromium logs
    /// as a resource that failed to load. Those are expected (and counted); any other
    /// error fails.
    pub(crate) async fn refused_by(&self, path: &str) -> usize {
        let log = self.client.issue_cmd(BrowserLog).await.unwrap();
        let refusal = format!(
            "{}{path} - Failed to load resource: the server responded with a status of 4",
            self.url().await.origin().ascii_serialization()
        );
        let severe: Vec<&Value> = log
            .as_array()
            .map(|entries| entries.iter().filter(|e| e["level"] == "SEVERE").collect())
            .unwrap_or_default();
        let (refusals, unexpected): (Vec<&Value>, Vec<&Value>) =
            severe.into_iter().partition(|e| {
                e["source"] == "network"
                    && e["message"]
                        .as_str()
                        .unwrap_or_default()
                        .starts_with(&refusal)
            });
        assert!(
            unexpected.is_empty(),
            "{}: console errors besides the refusal: {unexpected:?}",
            self.test
        );
        refusals.len()
    }

    /// The checks of every page: screenshot, accessibility, console, width.
    pub(crate) async fn check(&self, name: &str) {
        let png = self.client.screenshot().await.unwrap();
        let dir = format!("{MANIFEST}/target/browser-screenshots");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(format!("{dir}/{}-{name}.png", self.test), &png).unwrap();
        if std::env::var("PORTCULLIS_UPDATE_SCREENSHOTS").as_deref() == Ok("1")
            && ["login", "console"].contains(&name)
        {
            std::fs::create_dir_all(format!("{MANIFEST}/docs")).unwrap();
            std::fs::write(format!("{MANIFEST}/docs/{name}.png"), &png).unwrap();
        }

        // axe-core, injected by WebDriver (not by the page: the CSP stays as it is).
        self.script(&self.axe).await.unwrap();
        let violations = self
            .client
            .execute_async(
                "const done = arguments[arguments.length - 1];
                 axe.run(document, { resultTypes: ['violations'] }).then(r => done(
                   r.violations.filter(v => v.impact === 'serious' || v.impact === 'critical')
                     .map(v => v.id + ': ' + v.help + ' at ' + v.nodes.map(n => n.target.join(' ')).join(', '))));",
                vec![],
            )
            .await
            .unwrap();
        assert_eq!(
            violations,
            json!([]),
            "{}: accessibility of {name}",
            self.test
        );

        // Every error of ours counts but the status of the page itself, which the server
        // chose (401 for a wrong password, say): Chromium logs that too. Another site's
        // (the test's app, which has no favicon) is not ours to judge.
        let log = self.client.issue_cmd(BrowserLog).await.unwrap();
        let url = self.url().await;
        let page = url.to_string();
        let origin = url.origin().ascii_serialization();
        let errors: Vec<&Value> = log
            .as_array()
            .map(|entries| {
                entries
                    .iter()
                    .filter(|e| e["level"] == "SEVERE")
                    .filter(|e| {
                        let message = e["message"].as_str().unwrap_or_default();
                        e["source"] != "network"
                            || (message.starts_with(&origin)
                                && !message.starts_with(&format!("{page} ")))
                    })
                    .collect()
            })
            .unwrap_or_default();
        assert!(
            errors.is_empty(),
            "{}: console errors on {name}: {errors:?}",
            self.test
        );

        let overflow = self
            .script("return document.documentElement.scrollWidth - document.documentElement.clientWidth;")
            .await
            .unwrap();
        assert_eq!(overflow, json!(0), "{}: {name} scrolls sideways", self.test);
    }
}

/// An app for the browser to come back to: the receiver serves its callback.
async fn app_with_client(
    app: &TestApp,
    receiver: &Receiver,
    frontchannel: bool,
) -> crate::helpers::TestClient {
    receiver.serve("/app/callback", json!({ "app": "signed in" }));
    receiver.serve("/app/signed-out", json!({ "app": "signed out" }));
    receiver.serve("/app/frontchannel", json!({ "app": "forgot the session" }));
    app.add_client_with(ClientDraft {
        name: Some("Travel Planner".into()),
        redirect_uris: vec![format!("{}/app/callback", receiver.base)],
        post_logout_redirect_uris: vec![format!("{}/app/signed-out", receiver.base)],
        frontchannel_logout_uri: frontchannel
            .then(|| format!("{}/app/frontchannel", receiver.base)),
        ..ClientDraft::default()
    })
}

#[tokio::test]
async fn a_person_signs_in_consents_reaches_the_app_and_signs_out_by_clicking() {
    let Some(chrome) = Chrome::start("sign-in").await else {
        return;
    };
    let app = spawn_app().await;
    let receiver = Receiver::start().await;
    let client = app_with_client(&app, &receiver, true).await;
    app.add_user("alice").await;
    let (authorize, _) = app.authorize_url(&client, &[]);

    chrome.goto(&authorize).await;
    chrome.find("#username").await;
    chrome.check("login").await;
    // A wrong password is announced (role=alert) and the form comes back.
    chrome.type_into("#username", "alice").await;
    chrome.type_into("#password", "not the password").await;
    chrome.click("button[type=submit]").await;
    let alert = chrome.find("[role=alert]").await;
    assert!(alert.text().await.unwrap().contains("Incorrect"));
    chrome.check("login-error").await;
    chrome.type_into("#password", PASSWORD).await;
    chrome.click("button[type=submit]").await;

    chrome.find("button[value=allow]").await;
    chrome.check("consent").await;
    chrome.click("button[value=allow]").await;
    let back = chrome
        .wait_for_url("the app", |u| {
            u.as_str()
                .starts_with(&format!("{}/app/callback", receiver.base))
        })
        .await;
    assert_eq!(
        crate::helpers::query(&back, "state").as_deref(),
        Some("st-123")
    );
    assert!(crate::helpers::query(&back, "code").is_some());

    // Sign out: confirm, the front-channel frame loads under the CSP, on to the app.
    let mut logout = url::Url::parse(&app.url("/logout")).unwrap();
    logout
        .query_pairs_mut()
        .append_pair("client_id", &client.id)
        .append_pair(
            "post_logout_redirect_uri",
            &format!("{}/app/signed-out", receiver.base),
        );
    chrome.goto(logout.as_str()).await;
    chrome.find("button[value=logout]").await;
    chrome.check("logout").await;
    chrome.click("button[value=logout]").await;
    chrome
        .wait_for_url("the app after signing out", |u| {
            u.path() == "/app/signed-out"
        })
        .await;
    // Signed out for real: the app's next sign-in asks for the password again.
    chrome.goto(&authorize).await;
    chrome.find("#password").await;
    chrome.done().await;
}

#[tokio::test]
async fn sign_in_works_with_the_keyboard_alone_in_french() {
    let Some(chrome) = Chrome::start("keyboard").await else {
        return;
    };
    let app = spawn_app().await;
    let receiver = Receiver::start().await;
    let client = app_with_client(&app, &receiver, false).await;
    app.add_user("bob").await;
    // In French (ui_locales): the page says so in its `lang`, which axe checks.
    let (authorize, _) = app.authorize_url(&client, &[("ui_locales", "fr")]);
    chrome.goto(&authorize).await;
    chrome.find("#username").await;
    assert_eq!(chrome.find("h1").await.text().await.unwrap(), "Connexion");
    chrome.check("login-fr").await;

    let tab = fantoccini::key::Key::Tab.to_string();
    let enter = fantoccini::key::Key::Enter.to_string();
    let focused = || async {
        let el = chrome.client.active_element().await.unwrap();
        (
            el.attr("id").await.unwrap(),
            el.attr("type").await.unwrap(),
            el.attr("value").await.unwrap(),
        )
    };
    // The username field has the focus when the page opens; Tab goes on in reading order.
    assert_eq!(focused().await.0.as_deref(), Some("username"));
    chrome.press(&format!("bob{tab}")).await;
    assert_eq!(focused().await.0.as_deref(), Some("password"));
    chrome.press(&format!("{PASSWORD}{tab}")).await;
    assert_eq!(focused().await.1.as_deref(), Some("submit"));
    chrome.press(&enter).await;

    // Consent: Tab reaches Deny, then Allow.
    chrome.find("button[value=allow]").await;
    let mut presses = 0;
    while focused().await.2.as_deref() != Some("allow") {
        presses += 1;
        assert!(presses < 10, "Allow is never focused");
        chrome.press(&tab).await;
    }
    chrome.press(&enter).await;
    chrome
        .wait_for_url("the app", |u| u.path() == "/app/callback")
        .await;
    chrome.done().await;
}

#[tokio::test]
async fn an_administrator_registers_an_app_in_the_console_on_a_phone() {
    let Some(chrome) = Chrome::start("console").await else {
        return;
    };
    // A 375 px phone: no page may scroll sideways (checked on every page).
    chrome.client.set_window_size(375, 812).await.unwrap();
    let app = spawn_app().await;
    app.add_admin("root").await;

    chrome.goto(&app.url("/admin")).await;
    chrome.find("#username").await;
    chrome.check("console-login").await;
    chrome.type_into("#username", "root").await;
    chrome.type_into("#password", PASSWORD).await;
    // The console is first-party: from the sign-in straight to its first page.
    chrome.click("button[type=submit]").await;
    chrome.find("#new-username").await;
    chrome.check("console-users").await;

    // Register an app: the secret and the discovery URL are shown once.
    chrome.click("nav a[href$='/admin/clients']").await;
    chrome.type_into("#client-name", "Payroll").await;
    chrome
        .type_into("#redirect-uri", "https://payroll.example/callback")
        .await;
    chrome.click("form.panel button[type=submit]").await;
    let shown = chrome.find("[role=status]").await.text().await.unwrap();
    assert!(shown.contains("Payroll is registered"), "{shown}");
    assert!(
        shown.contains("/.well-known/openid-configuration"),
        "{shown}"
    );
    chrome.check("console-registered").await;

    // Deleting asks first.
    chrome.goto(&app.url("/admin/clients")).await;
    chrome.click("td.row-actions button.danger").await;
    chrome.find("input[name=confirm]").await;
    chrome.check("console-confirm").await;
    chrome.click("button.danger").await;
    chrome.find("table").await;
    let source = chrome.client.source().await.unwrap();
    assert!(!source.contains("Payroll"), "deleted");

    // A user's second factors, and the question before resetting them.
    let pat = app.add_user("pat").await;
    crate::cli_factors::enrol(&app, &pat);
    chrome.goto(&app.url(&format!("/admin/users/{pat}"))).await;
    let reset = "form[action$='/reset_factors'] button";
    chrome.find(reset).await;
    chrome.check("console-user").await;
    chrome.click(reset).await;
    chrome.find("input[name=confirm]").await;
    chrome.click("button.danger").await;
    let shown = chrome.find("[role=status]").await.text().await.unwrap();
    assert!(shown.contains("second factors were removed"), "{shown}");

    // The wide console too, for the README.
    chrome.client.set_window_size(1280, 900).await.unwrap();
    chrome.goto(&app.url("/admin/users")).await;
    chrome.find("#new-username").await;
    chrome.check("console").await;
    chrome.done().await;
}

/// `url` of the test server at `localhost` instead of `127.0.0.1`. The test issuer is
/// `http://127.0.0.1:PORT`: a secure context, but an IP address, which cannot be a WebAuthn
/// RP ID, so a page there can use no passkey. `localhost` is the same server (it listens on
/// 127.0.0.1) and both a secure context and a valid RP ID.
fn at_localhost(url: &str) -> String {
    let mut url = url::Url::parse(url).unwrap();
    url.set_host(Some("localhost")).unwrap();
    url.into()
}

#[tokio::test]
async fn a_virtual_authenticator_makes_a_discoverable_passkey_on_localhost() {
    let Some(chrome) = Chrome::start("virtual-authenticator").await else {
        return;
    };
    let app = spawn_app().await;
    // Any page of ours that stays at localhost (no redirect to the issuer's host).
    chrome.goto(&at_localhost(&app.url("/login"))).await;
    let authenticator = add_virtual_authenticator(&chrome.client).await.unwrap();
    assert!(!authenticator.is_empty());

    // A registration as a Relying Party at "localhost" asks for it, made-up challenge and
    // all: the authenticator makes a discoverable credential after verifying the user.
    let created = chrome
        .script(
            "return (async () => {
               const credential = await navigator.credentials.create({ publicKey: {
                 rp: { id: 'localhost', name: 'Portcullis tests' },
                 user: { id: new Uint8Array([1, 2, 3, 4]), name: 'alice', displayName: 'Alice' },
                 challenge: crypto.getRandomValues(new Uint8Array(32)),
                 pubKeyCredParams: [{ type: 'public-key', alg: -7 }],
                 authenticatorSelection: { residentKey: 'required', requireResidentKey: true,
                                           userVerification: 'required' },
                 extensions: { credProps: true },
               } });
               return { secure: window.isSecureContext, type: credential.type, id: credential.id,
                        rk: credential.getClientExtensionResults().credProps.rk,
                        json: typeof credential.toJSON === 'function' };
             })()",
        )
        .await
        .unwrap();
    assert_eq!(created["secure"], true);
    assert_eq!(created["type"], "public-key");
    assert_eq!(created["rk"], true, "{created}");
    let credential_id = created["id"].as_str().unwrap().to_owned();

    let stored = virtual_credentials(&chrome.client, &authenticator)
        .await
        .unwrap();
    assert_eq!(stored.len(), 1, "{stored:?}");
    assert_eq!(stored[0]["isResidentCredential"], true);
    assert_eq!(stored[0]["rpId"], "localhost");
    assert_eq!(
        stored[0]["credentialId"].as_str(),
        Some(credential_id.as_str())
    );

    // Found again with no allowCredentials (no username), with its user handle.
    let found = chrome
        .script(
            "return (async () => {
               const credential = await navigator.credentials.get({ publicKey: {
                 rpId: 'localhost', challenge: crypto.getRandomValues(new Uint8Array(32)),
                 userVerification: 'required',
               } });
               return { id: credential.id,
                        user: Array.from(new Uint8Array(credential.response.userHandle)) };
             })()",
        )
        .await
        .unwrap();
    assert_eq!(found["id"].as_str(), Some(credential_id.as_str()));
    assert_eq!(found["user"], json!([1, 2, 3, 4]));

    // A failed PIN or fingerprint: the browser refuses a request that requires it.
    set_virtual_user_verified(&chrome.client, &authenticator, false)
        .await
        .unwrap();
    let refused = chrome
        .script(
            "return navigator.credentials.get({ publicKey: {
               rpId: 'localhost', challenge: crypto.getRandomValues(new Uint8Array(32)),
               userVerification: 'required',
             } }).then(() => 'signed', e => e.name);",
        )
        .await
        .unwrap();
    assert_eq!(refused, "NotAllowedError");

    remove_all_virtual_credentials(&chrome.client, &authenticator)
        .await
        .unwrap();
    assert_eq!(
        virtual_credentials(&chrome.client, &authenticator)
            .await
            .unwrap(),
        Vec::<Value>::new()
    );
    remove_virtual_authenticator(&chrome.client, &authenticator)
        .await
        .unwrap();
    chrome.done().await;
}

/// Runs `ceremony` (a JS function body's async part, given `options`) in the page and
/// returns what it returns: the WebDriver script awaits the promise.
async fn in_page(chrome: &Chrome, ceremony: &str, options: &Value) -> Value {
    chrome
        .client
        .execute(
            &format!("const options = arguments[0]; return (async () => {{ {ceremony} }})();"),
            vec![options.clone()],
        )
        .await
        .unwrap()
}

#[tokio::test]
async fn the_passkey_glue_accepts_real_chromium_ceremonies() {
    use portcullis::protocol::passkeys::{PasskeySettings, Passkeys, StoredPasskey};
    let Some(chrome) = Chrome::start("passkey-glue").await else {
        return;
    };
    let app = spawn_app().await;
    let page = at_localhost(&app.url("/login"));
    let origin = url::Url::parse(&page)
        .unwrap()
        .origin()
        .ascii_serialization();
    let settings = PasskeySettings::from_issuer(&origin, None, &[])
        .unwrap()
        .unwrap();
    let passkeys = Passkeys::new(&settings).unwrap();
    chrome.goto(&page).await;
    let authenticator = add_virtual_authenticator(&chrome.client).await.unwrap();
    let now = portcullis::domain::now();

    // Registration: the options as JSON, parsed by the browser (WebAuthn L3), the
    // credential back in its toJSON() form.
    let (options, ceremony) = passkeys
        .start_registration("user-1", "alice", "Alice", &[], now)
        .unwrap();
    let created = in_page(
        &chrome,
        "const publicKey = PublicKeyCredential.parseCreationOptionsFromJSON(options);
         return (await navigator.credentials.create({ publicKey })).toJSON();",
        &options,
    )
    .await;
    let new = passkeys
        .finish_registration(&created.to_string(), ceremony, "user-1", now)
        .unwrap();
    assert!(new.user_verified);
    let stored = virtual_credentials(&chrome.client, &authenticator)
        .await
        .unwrap();
    assert_eq!(stored[0]["isResidentCredential"], true, "discoverable");

    // Sign-in without a username: the browser finds the credential by itself.
    let lookup = |id: &str| {
        Ok::<_, portcullis::protocol::passkeys::PasskeyError>((id == new.credential_id).then(
            || StoredPasskey {
                user_id: new.user_id.clone(),
                passkey_json: new.passkey_json.clone(),
            },
        ))
    };
    let (options, ceremony) = passkeys.start_sign_in(now).unwrap();
    let asserted = in_page(
        &chrome,
        "const publicKey = PublicKeyCredential.parseRequestOptionsFromJSON(options);
         return (await navigator.credentials.get({ publicKey })).toJSON();",
        &options,
    )
    .await;
    let verified = passkeys
        .finish_sign_in(&asserted.to_string(), ceremony, now, lookup)
        .unwrap();
    assert_eq!(verified.user_id, "user-1");
    assert_eq!(verified.credential_id, new.credential_id);

    // As a second factor; an answer replayed to a new ceremony is refused.
    let (options, ceremony) = passkeys
        .start_second_factor("user-1", [&new.passkey_json], now)
        .unwrap();
    let asserted = in_page(
        &chrome,
        "const publicKey = PublicKeyCredential.parseRequestOptionsFromJSON(options);
         return (await navigator.credentials.get({ publicKey })).toJSON();",
        &options,
    )
    .await;
    let verified = passkeys
        .finish_second_factor(&asserted.to_string(), ceremony, "user-1", now, lookup)
        .unwrap();
    assert!(verified.user_verified);
    let (_, again) = passkeys
        .start_second_factor("user-1", [&new.passkey_json], now)
        .unwrap();
    assert!(
        passkeys
            .finish_second_factor(&asserted.to_string(), again, "user-1", now, lookup)
            .is_err()
    );
    chrome.done().await;
}
