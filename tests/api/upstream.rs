//! "Sign in with NAME" (issue 24) against a real OpenID provider over real HTTP: a second
//! Portcullis, started in this process on its own database and port (at `localhost`, so
//! that its cookies and ours, at `127.0.0.1`, stay apart in one cookie jar).

use portcullis::domain::Clock;
use portcullis::protocol::factors::totp;
use portcullis::protocol::registration::ClientDraft;
use reqwest::StatusCode;
use url::Url;

use crate::helpers::{
    Browser, Options, Outcome, PASSWORD, TestApp, TestClient, free_port, hidden_inputs,
    http_builder, jwt_part, query, spawn_app_with, test_kek,
};

/// The "Sign in with NAME" form's hidden inputs (named apart from the login form's).
pub(crate) fn first_inputs(html: &str) -> Vec<(String, String)> {
    let mut form: Vec<(String, String)> = Vec::new();
    for (name, value) in hidden_inputs(html) {
        if (name == "interaction" || name == "token") && !form.iter().any(|(n, _)| *n == name) {
            form.push((name, value));
        }
    }
    assert_eq!(form.len(), 2, "{html}");
    form
}

/// The upstream, its client for us, and us.
pub(crate) struct Pair {
    pub(crate) up: TestApp,
    pub(crate) down: TestApp,
    pub(crate) client: TestClient,
}

pub(crate) const ID: &str = "up";
pub(crate) const NAME: &str = "Upstream Co";

pub(crate) fn upstream_table(issuer: &str, client: &TestClient, extra: &str) -> String {
    format!(
        "[[upstream]]\nid = \"{ID}\"\nname = \"{NAME}\"\nissuer = \"{issuer}\"\nclient_id = \"{}\"\nclient_secret = \"{}\"\n{extra}\n",
        client.id,
        client.secret.as_deref().unwrap()
    )
}

pub(crate) async fn pair(extra: &str) -> Pair {
    let up = spawn_app_with(Options {
        issuer_host: Some("localhost"),
        ..Options::default()
    })
    .await;
    let port = free_port();
    let callback = format!("http://127.0.0.1:{port}/upstream/{ID}/callback");
    let up_client = up.add_client_with(ClientDraft {
        redirect_uris: vec![callback],
        first_party: true,
        ..ClientDraft::default()
    });
    let down = spawn_app_with(Options {
        port: Some(port),
        config: Some(upstream_table(&up.issuer, &up_client, extra)),
        ..Options::default()
    })
    .await;
    let client = down.add_client_with(ClientDraft {
        first_party: true,
        ..ClientDraft::default()
    });
    Pair { up, down, client }
}

/// A browser that follows redirects across both providers (it stops at the client's
/// redirect URI, on port 1).
pub(crate) fn browser() -> Browser {
    Browser::new(
        http_builder()
            .cookie_store(true)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap(),
        "http://",
    )
}

/// Opens the authorization request at `down` and presses "Sign in with Upstream Co":
/// the raw answer of the start (a redirect to the upstream, or a page).
pub(crate) async fn press_button(
    pair: &Pair,
    browser: &Browser,
    extra: &[(&str, &str)],
) -> reqwest::Response {
    let (url, _) = pair.down.authorize_url(&pair.client, extra);
    let (login, status, html) = browser.open(&url).await.page();
    assert_eq!(status, StatusCode::OK);
    assert!(login.path().ends_with("/login"), "{login}");
    assert!(html.contains(&format!("Sign in with {NAME}")), "{html}");
    let form = first_inputs(&html);
    browser
        .http
        .post(pair.down.url(&format!("/upstream/{ID}/start")))
        .form(&form)
        .send()
        .await
        .unwrap()
}

/// Follows `response` through the upstream's login (as `username`) up to the redirect
/// back to our callback, which is returned unopened.
pub(crate) async fn through_upstream(
    pair: &Pair,
    browser: &Browser,
    response: reqwest::Response,
    username: &str,
) -> Url {
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let location = response.headers()["location"].to_str().unwrap().to_owned();
    assert!(location.starts_with(&pair.up.issuer), "{location}");
    let login = browser.open(&location).await;
    let (url, _, html) = login.page();
    let mut form = hidden_inputs(&html);
    form.push(("username".into(), username.into()));
    form.push(("password".into(), PASSWORD.into()));
    let mut response = browser
        .http
        .post(url.join("/login").unwrap())
        .form(&form)
        .send()
        .await
        .unwrap();
    loop {
        assert!(
            response.status().is_redirection(),
            "{}: {}",
            response.status(),
            response.url()
        );
        let next = response
            .url()
            .join(response.headers()["location"].to_str().unwrap())
            .unwrap();
        if next.as_str().starts_with(&pair.down.issuer) {
            return next;
        }
        response = browser.http.get(next).send().await.unwrap();
    }
}

pub(crate) async fn users(app: &TestApp) -> Vec<portcullis::store::User> {
    let store = app.store.clone();
    tokio::task::spawn_blocking(move || store.list_users().unwrap())
        .await
        .unwrap()
}

pub(crate) async fn audit_actions(app: &TestApp) -> Vec<(String, Option<String>)> {
    let store = app.store.clone();
    tokio::task::spawn_blocking(move || {
        store
            .list_audit_events(None, 100)
            .unwrap()
            .into_iter()
            .map(|e| (e.action, e.details))
            .collect()
    })
    .await
    .unwrap()
}

pub(crate) async fn refusals(app: &TestApp, reason: &str) -> usize {
    audit_actions(app)
        .await
        .iter()
        .filter(|(action, details)| {
            action == "upstream.refused" && details.as_deref().is_some_and(|d| d.contains(reason))
        })
        .count()
}

/// Opens an upstream's redirect back to us, and goes on from the page our callback
/// answers with when it continues elsewhere (its `<meta http-equiv="refresh">`).
pub(crate) async fn open_callback(browser: &Browser, url: &Url) -> Outcome {
    let outcome = browser.open(url.as_str()).await;
    let Outcome::Page { url: at, html, .. } = &outcome else {
        return outcome;
    };
    let marker = "http-equiv=\"refresh\" content=\"0;url=";
    let Some(start) = html.find(marker).map(|i| i + marker.len()) else {
        return outcome;
    };
    let end = start + html[start..].find('"').unwrap();
    let target = html[start..end]
        .replace("&amp;", "&")
        .replace("&#38;", "&")
        .replace("&#x2f;", "/")
        .replace("&#47;", "/");
    let next = at.join(&target).unwrap();
    if next.port() == Some(1) {
        // The client's redirect URI (nothing listens there).
        return Outcome::Left(next);
    }
    browser.open(next.as_str()).await
}

/// A whole sign-in through the upstream, ending at the client: its callback URL.
pub(crate) async fn sign_in_through(pair: &Pair, browser: &Browser, username: &str) -> Outcome {
    let start = press_button(pair, browser, &[]).await;
    let callback = through_upstream(pair, browser, start, username).await;
    open_callback(browser, &callback).await
}

#[tokio::test]
async fn a_first_sign_in_with_jit_makes_a_local_account_and_tokens_say_fed_and_idp() {
    let pair = pair("jit = true\ntrusted_email_domains = [\"example.com\"]").await;
    let up_sub = pair.up.add_user("alice").await;
    let callback = sign_in_through(&pair, &browser(), "alice").await.left();
    assert_eq!(callback.port(), Some(1), "{callback}");
    let made = users(&pair.down).await;
    assert_eq!(made.len(), 1);
    let local = &made[0];
    assert_eq!(local.username, "alice");
    assert_eq!(local.email.as_deref(), Some("alice@example.com"));
    assert!(
        local.email_verified,
        "the upstream said verified, for a domain it is trusted for"
    );
    assert!(local.password_hash.is_empty(), "no password of its own");
    assert_ne!(local.id, up_sub, "our own sub");
    let links = pair.down.store.list_upstream_identities(&local.id).unwrap();
    assert_eq!(links.len(), 1);
    assert_eq!(links[0].issuer, pair.up.issuer);
    assert_eq!(links[0].provider, ID);
    assert!(
        audit_actions(&pair.down)
            .await
            .iter()
            .any(|(a, _)| a == "upstream.jit_created")
    );

    // Signed in again (a fresh request, a fresh upstream round: the identity is known
    // now), the tokens carry our sub, `fed` and the provider.
    let browser = self::browser();
    let (url, pkce) = pair.down.authorize_url(&pair.client, &[]);
    let (_, _, html) = browser.open(&url).await.page();
    let form = first_inputs(&html);
    let start = browser
        .http
        .post(pair.down.url(&format!("/upstream/{ID}/start")))
        .form(&form)
        .send()
        .await
        .unwrap();
    let back = through_upstream(&pair, &browser, start, "alice").await;
    let callback = open_callback(&browser, &back).await.left();
    let tokens = pair.down.exchange(&pair.client, &callback, &pkce).await;
    let id_token = jwt_part(tokens["id_token"].as_str().unwrap(), 1);
    assert_eq!(id_token["sub"], local.id.as_str());
    assert_eq!(id_token["idp"], ID);
    let amr: Vec<&str> = id_token["amr"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(amr, ["fed"]);
    assert_eq!(users(&pair.down).await.len(), 1, "no second account");
}

#[tokio::test]
async fn without_jit_an_unknown_identity_gets_a_page_and_no_account() {
    let pair = pair("").await;
    pair.up.add_user("bob").await;
    let browser = browser();
    let (_, status, html) = sign_in_through(&pair, &browser, "bob").await.page();
    assert_eq!(status, StatusCode::OK);
    assert!(
        html.contains(&format!("No account here for this {NAME} identity")),
        "{html}"
    );
    assert!(
        html.contains("Sign in to link it to your account"),
        "{html}"
    );
    assert!(users(&pair.down).await.is_empty());
}

#[tokio::test]
async fn a_disabled_local_account_is_refused_its_upstream_sign_in() {
    let pair = pair("jit = true").await;
    pair.up.add_user("carol").await;
    sign_in_through(&pair, &browser(), "carol").await.left();
    let store = pair.down.store.clone();
    tokio::task::spawn_blocking(move || {
        let mut user = store.find_user_by_username("carol").unwrap().unwrap();
        user.disabled_at = Some(1);
        store.update_user(&user, 1).unwrap();
    })
    .await
    .unwrap();
    let (_, status, html) = sign_in_through(&pair, &browser(), "carol").await.page();
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(html.contains("This account is disabled"), "{html}");
    assert_eq!(refusals(&pair.down, "account_disabled").await, 1);
}

/// A callback URL the upstream really sent (state and code), in a browser that started
/// the sign-in; nothing opened yet.
async fn real_callback(pair: &Pair, username: &str) -> (Browser, Url) {
    let browser = browser();
    let start = press_button(pair, &browser, &[]).await;
    let back = through_upstream(pair, &browser, start, username).await;
    (browser, back)
}

/// The page a refused callback shows: 400, the clear message, nothing made.
async fn assert_refused(pair: &Pair, outcome: Outcome, reason: &str) {
    let (_, status, html) = outcome.page();
    assert_eq!(status, StatusCode::BAD_REQUEST, "{html}");
    assert!(html.contains("Sign-in refused"), "{html}");
    assert!(users(&pair.down).await.is_empty(), "no account made");
    assert!(refusals(&pair.down, reason).await >= 1, "audited {reason}");
}

/// A callback refused before its state and cookie matched: the page, and no audit row
/// (anyone can send one: the audit trail is not theirs to fill).
async fn assert_refused_unaudited(pair: &Pair, outcome: Outcome, reason: &str) {
    let (_, status, html) = outcome.page();
    assert_eq!(status, StatusCode::BAD_REQUEST, "{html}");
    assert!(html.contains("Sign-in refused"), "{html}");
    assert!(users(&pair.down).await.is_empty(), "no account made");
    assert_eq!(
        refusals(&pair.down, reason).await,
        0,
        "not audited: {reason}"
    );
}

#[tokio::test]
async fn bad_callbacks_get_a_clear_page_and_make_nothing() {
    let pair = pair("jit = true").await;
    pair.up.add_user("dave").await;

    // An error response from the upstream.
    let browser = self::browser();
    let start = press_button(&pair, &browser, &[]).await;
    let location = Url::parse(start.headers()["location"].to_str().unwrap()).unwrap();
    let state = query(&location, "state").unwrap();
    // Portcullis says it sends RFC 9207's `iss`: without it the answer is refused.
    let error = pair.down.url(&format!(
        "/upstream/{ID}/callback?state={state}&error=access_denied&error_description=nope"
    ));
    // (The same answer without `iss` first: refused for it, and the state is spent.)
    assert_refused(&pair, browser.open(&error).await, "iss_missing").await;
    let start = press_button(&pair, &browser, &[]).await;
    let location = Url::parse(start.headers()["location"].to_str().unwrap()).unwrap();
    let state = query(&location, "state").unwrap();
    let mut with_iss = Url::parse(&pair.down.url(&format!(
        "/upstream/{ID}/callback?state={state}&error=access_denied&error_description=nope"
    )))
    .unwrap();
    with_iss
        .query_pairs_mut()
        .append_pair("iss", &pair.up.issuer);
    let outcome = browser.open(with_iss.as_str()).await;
    let (_, _, html) = outcome.page();
    assert!(
        html.contains(&format!("{NAME} did not sign you in: nope")),
        "{html}"
    );
    assert!(users(&pair.down).await.is_empty());
    assert_eq!(refusals(&pair.down, "upstream_error").await, 1);

    // A state we never issued.
    let outcome = browser
        .open(
            &pair
                .down
                .url(&format!("/upstream/{ID}/callback?state=forged&code=x")),
        )
        .await;
    assert_refused_unaudited(&pair, outcome, "state_unknown").await;

    // A real callback, replayed: the first use is refused for its iss (RFC 9207), the
    // second finds the state taken.
    let (browser, back) = real_callback(&pair, "dave").await;
    let mut wrong_iss = back.clone();
    let pairs: Vec<(String, String)> = back
        .query_pairs()
        .into_owned()
        .filter(|(k, _)| k != "iss")
        .chain([("iss".to_owned(), "http://evil.example".to_owned())])
        .collect();
    wrong_iss.query_pairs_mut().clear().extend_pairs(pairs);
    assert_refused(
        &pair,
        open_callback(&browser, &wrong_iss).await,
        "iss_mismatch",
    )
    .await;
    assert_refused_unaudited(&pair, open_callback(&browser, &back).await, "state_unknown").await;

    // A real callback in another browser (without our one-time cookie).
    let (_, back) = real_callback(&pair, "dave").await;
    assert_refused_unaudited(
        &pair,
        open_callback(&self::browser(), &back).await,
        "browser_mismatch",
    )
    .await;

    // A bad nonce: the one kept for the callback is not the one the ID token carries.
    let (browser, back) = real_callback(&pair, "dave").await;
    let state = query(&back, "state").unwrap();
    let mut waiting: serde_json::Value = pair
        .down
        .sessions
        .take_upstream_state(&state)
        .await
        .unwrap()
        .unwrap();
    waiting["nonce"] = "another-nonce".into();
    pair.down
        .sessions
        .save_upstream_state(&state, &waiting, std::time::Duration::from_secs(60))
        .await
        .unwrap();
    assert_refused(
        &pair,
        open_callback(&browser, &back).await,
        "id_token_nonce",
    )
    .await;

    // A duplicated parameter: the page, not a bare 400.
    let outcome = browser
        .open(
            &pair
                .down
                .url(&format!("/upstream/{ID}/callback?state=a&state=b&code=x")),
        )
        .await;
    assert_refused_unaudited(&pair, outcome, "bad_request").await;

    // A provider that is not (or no longer) configured.
    let outcome = browser
        .open(&pair.down.url("/upstream/gone/callback?state=x&code=y"))
        .await;
    let (_, status, html) = outcome.page();
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(html.contains("not configured here"), "{html}");
    assert_eq!(
        refusals(&pair.down, "unknown_provider").await,
        0,
        "a log line only"
    );
    assert!(users(&pair.down).await.is_empty());
}

#[tokio::test]
async fn an_upstream_that_is_down_gets_its_own_page_and_passwords_still_work() {
    let nobody = free_port();
    let table = format!(
        "[[upstream]]\nid = \"{ID}\"\nname = \"{NAME}\"\nissuer = \"http://localhost:{nobody}\"\nclient_id = \"c\"\nclient_secret = \"s\"\n"
    );
    let down = spawn_app_with(Options {
        config: Some(table),
        ..Options::default()
    })
    .await;
    let client = down.add_client_with(ClientDraft {
        first_party: true,
        ..ClientDraft::default()
    });
    down.add_user("erin").await;
    let browser = down.browser();
    let (url, _) = down.authorize_url(&client, &[]);
    let login = browser.open(&url).await;
    let (_, _, html) = login.page();
    let form = first_inputs(&html);
    let response = browser
        .http
        .post(down.url(&format!("/upstream/{ID}/start")))
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    let html = response.text().await.unwrap();
    assert!(
        html.contains(&format!("{NAME} is not reachable right now")),
        "{html}"
    );
    // The password sign-in of the same request still works.
    let callback = browser.sign_in(&url, "erin").await;
    assert!(query(&callback, "code").is_some(), "{callback}");
    // The admin API shows the provider and why it is not usable.
    let (_, token) = crate::admin_api::automation(&down).await;
    let (status, body) = crate::admin_api::call(
        &down,
        Some(&token),
        reqwest::Method::GET,
        "/upstreams",
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["upstreams"][0]["id"], ID);
    assert_eq!(body["upstreams"][0]["discovered"], false);
    assert!(body["upstreams"][0]["last_error"].is_string(), "{body}");
    let (status, _) =
        crate::admin_api::call(&down, None, reqwest::Method::GET, "/upstreams", None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    // And so does the console.
    down.add_admin("root").await;
    let (admin, _, _) = crate::console::console_as(&down, "root").await;
    let (_, status, html) = admin.open(&down.url("/admin/upstreams")).await.page();
    assert_eq!(status, StatusCode::OK, "{html}");
    assert!(html.contains(NAME) && html.contains("not yet"), "{html}");
}

#[tokio::test]
async fn idp_hint_goes_straight_to_the_upstream() {
    let pair = pair("jit = true").await;
    let browser = browser();
    let (url, _) = pair.down.authorize_url(&pair.client, &[("idp_hint", ID)]);
    let response = browser.http.get(&url).send().await.unwrap();
    // /authorize → /login → the upstream.
    let login = response.headers()["location"].to_str().unwrap().to_owned();
    let response = browser
        .http
        .get(pair.down.url(&login))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let location = response.headers()["location"].to_str().unwrap();
    assert!(
        location.starts_with(&format!("{}/authorize", pair.up.issuer)),
        "{location}"
    );
    let target = Url::parse(location).unwrap();
    assert_eq!(
        query(&target, "code_challenge_method").as_deref(),
        Some("S256")
    );
    assert!(query(&target, "nonce").is_some());
}

#[tokio::test]
async fn a_bad_upstream_table_stops_the_start_naming_it() {
    let error = portcullis::config::Settings::from_sources(
        Some("[[upstream]]\nid = \"x\"\nname = \"X\"\nissuer = \"https://x.example\"\nclient_id = \"c\"\nclient_secret = \"s\"\nlink = \"verified_email\"\n"),
        |_| None,
    )
    .unwrap_err();
    assert!(
        error
            .to_string()
            .starts_with("configuration: upstream[0] (x): "),
        "{error}"
    );
}

// ---- Linking (stage 2) ----

/// Gives `user_id` a confirmed TOTP credential, as an enrolment would.
fn enrol_totp(app: &TestApp, user_id: &str) -> totp::TotpSecret {
    let secret = totp::TotpSecret::generate();
    let sealed = secret.seal(&test_kek(), user_id).unwrap();
    let now = app.clock.now();
    assert!(app.store.begin_totp(user_id, &sealed, now).unwrap());
    assert!(app.store.confirm_totp(user_id, &sealed, 1, now).unwrap());
    secret
}

fn code_now(app: &TestApp, secret: &totp::TotpSecret) -> String {
    totp::code_at(secret, app.clock.now(), totp::DIGITS).unwrap()
}

/// The "No account here" page of an upstream sign-in as `username`.
async fn no_account_page(pair: &Pair, browser: &Browser, username: &str) -> (Url, String) {
    let (url, status, html) = sign_in_through(pair, browser, username).await.page();
    assert_eq!(status, StatusCode::OK, "{html}");
    assert!(
        html.contains("Sign in to link it to your account"),
        "{html}"
    );
    (url, html)
}

/// From the "No account here" page: the local sign-in (password, then the TOTP code when
/// `totp` is given) up to the link's confirmation page.
async fn sign_in_to_link(
    pair: &Pair,
    browser: &Browser,
    page: (Url, String),
    username: &str,
    totp: Option<&totp::TotpSecret>,
) -> (Url, StatusCode, String) {
    let login = browser.submit(&page.0, &page.1, &[]).await;
    let mut outcome = browser.login(login, username).await;
    if let Some(secret) = totp {
        let (url, _, html) = outcome.page();
        assert!(url.path().ends_with("/login/factor"), "{url}");
        outcome = browser
            .submit(&url, &html, &[("code", &code_now(&pair.down, secret))])
            .await;
    }
    outcome.page()
}

async fn links_of(app: &TestApp, username: &str) -> Vec<portcullis::store::UpstreamIdentity> {
    let store = app.store.clone();
    let username = username.to_owned();
    tokio::task::spawn_blocking(move || {
        let user = store.find_user_by_username(&username).unwrap().unwrap();
        store.list_upstream_identities(&user.id).unwrap()
    })
    .await
    .unwrap()
}

pub(crate) async fn count(app: &TestApp, action: &str) -> usize {
    audit_actions(app)
        .await
        .iter()
        .filter(|(a, _)| a == action)
        .count()
}

#[tokio::test]
async fn an_identity_is_linked_after_a_local_sign_in_with_its_second_factor_and_then_asks_it() {
    let pair = pair("").await;
    pair.up.add_user("frank").await;
    let local = pair.down.add_user("frank").await;
    let secret = enrol_totp(&pair.down, &local);
    let browser = browser();
    let page = no_account_page(&pair, &browser, "frank").await;
    let (url, status, html) = sign_in_to_link(&pair, &browser, page, "frank", Some(&secret)).await;
    assert_eq!(status, StatusCode::OK, "{html}");
    assert!(url.path().ends_with("/upstream/link"), "{url}");
    assert!(
        html.contains(&format!(
            "Link your {NAME} account frank@example.com to frank?"
        )),
        "{html}"
    );
    assert!(
        links_of(&pair.down, "frank").await.is_empty(),
        "not before the confirmation"
    );
    // Confirmed: linked, and the authorization the upstream sign-in came from goes on.
    let done = browser.submit(&url, &html, &[]).await;
    assert!(query(&done.left(), "code").is_some());
    assert_eq!(links_of(&pair.down, "frank").await.len(), 1);
    assert_eq!(count(&pair.down, "upstream.linked").await, 1);
    // The confirmation again (its proof was taken): refused, nothing more.
    let (_, status, again) = browser.submit(&url, &html, &[]).await.page();
    assert_eq!(status, StatusCode::BAD_REQUEST, "{again}");
    assert_eq!(count(&pair.down, "upstream.linked").await, 1);

    // Signing in with the identity now: the account's second factor is still asked.
    pair.down.clock.advance(30);
    let browser = self::browser();
    let (url, _, html) = sign_in_through(&pair, &browser, "frank").await.page();
    assert!(url.path().ends_with("/login/factor"), "{url}: {html}");
    let done = browser
        .submit(&url, &html, &[("code", &code_now(&pair.down, &secret))])
        .await;
    assert!(query(&done.left(), "code").is_some());
}

#[tokio::test]
async fn a_link_proof_is_worth_nothing_in_another_browser() {
    let pair = pair("").await;
    pair.up.add_user("gus").await;
    pair.down.add_user("gus").await;
    let victim = browser();
    let (_, html) = no_account_page(&pair, &victim, "gus").await;
    let proof = hidden_inputs(&html)
        .into_iter()
        .find(|(n, _)| n == "proof")
        .unwrap()
        .1;
    // Another browser, signed in to an account of its own, opens the confirmation with
    // the proof (or posts the link form with it).
    let other = browser();
    let (url, _) = pair.down.authorize_url(&pair.client, &[]);
    other.sign_in(&url, "gus").await;
    let (_, status, page) = other
        .open(&pair.down.url(&format!("/upstream/link?proof={proof}")))
        .await
        .page();
    assert_eq!(status, StatusCode::BAD_REQUEST, "{page}");
    assert!(page.contains("Nothing was linked"), "{page}");
    assert_eq!(refusals(&pair.down, "proof_other_browser").await, 1);
    let response = other
        .http
        .post(pair.down.url("/upstream/link"))
        .form(&[("proof", proof.as_str()), ("csrf", "forged")])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert!(links_of(&pair.down, "gus").await.is_empty());
    assert_eq!(count(&pair.down, "upstream.linked").await, 0);
}

/// The account page's unlink form of the (one) linked identity, posted.
async fn unlink(pair: &Pair, browser: &Browser) -> (StatusCode, String) {
    let (url, _, html) = browser.open(&pair.down.url("/account")).await.page();
    assert!(html.contains(NAME), "{html}");
    let inputs = hidden_inputs(&html);
    let field = |name: &str| {
        inputs
            .iter()
            .find(|(n, _)| n == name)
            .unwrap_or_else(|| panic!("no {name}: {html}"))
            .1
            .clone()
    };
    let form = [
        ("csrf", field("csrf")),
        ("issuer", field("issuer")),
        ("subject", field("subject")),
    ];
    let response = browser
        .http
        .post(url.join("/account/upstream/unlink").unwrap())
        .form(&form)
        .send()
        .await
        .unwrap();
    let status = response.status();
    (status, response.text().await.unwrap())
}

#[tokio::test]
async fn a_proof_issued_before_an_unlink_is_dead_and_the_last_way_in_stays() {
    let pair = pair("").await;
    pair.up.add_user("hal").await;
    pair.down.add_user("hal").await;
    // A proof left waiting in one browser...
    let waiting = browser();
    let early = no_account_page(&pair, &waiting, "hal").await;
    // ...while the identity is linked in another, then unlinked there.
    pair.down.clock.advance(5);
    let linker = browser();
    let page = no_account_page(&pair, &linker, "hal").await;
    let (url, _, html) = sign_in_to_link(&pair, &linker, page, "hal", None).await;
    browser_confirms(&linker, &url, &html).await;
    assert_eq!(links_of(&pair.down, "hal").await.len(), 1);
    // A session signed in through the identity, in a third browser.
    let federated = browser();
    let done = sign_in_through(&pair, &federated, "hal").await.left();
    assert!(query(&done, "code").is_some(), "{done}");
    let live = |app: &TestApp| {
        let store = app.store.clone();
        let now = app.clock.now();
        async move {
            tokio::task::spawn_blocking(move || {
                let hal = store.find_user_by_username("hal").unwrap().unwrap();
                store.list_user_sessions(&hal.id, now).unwrap().len()
            })
            .await
            .unwrap()
        }
    };
    let before = live(&pair.down).await;
    let (status, html) = unlink(&pair, &linker).await;
    assert_eq!(status, StatusCode::OK, "{html}");
    // The federated session ended with the unlink; the linker's own session stays.
    assert_eq!(live(&pair.down).await, before - 1);
    let (_, status, _) = linker.open(&pair.down.url("/account")).await.page();
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("The identity was unlinked."), "{html}");
    assert!(links_of(&pair.down, "hal").await.is_empty());
    assert_eq!(count(&pair.down, "upstream.unlinked").await, 1);
    // The early proof: refused although the identity is free again.
    let (_, status, html) = sign_in_to_link(&pair, &waiting, early, "hal", None).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{html}");
    assert!(refusals(&pair.down, "proof_identity_changed").await >= 1);
    assert!(links_of(&pair.down, "hal").await.is_empty());

    // A JIT account with no password and no passkey: its one link stays.
    let jit = self::pair("jit = true").await;
    jit.up.add_user("ivy").await;
    let browser = browser();
    sign_in_through(&jit, &browser, "ivy").await.left();
    let (status, html) = unlink(&jit, &browser).await;
    assert_eq!(status, StatusCode::CONFLICT, "{html}");
    assert!(html.contains("last way to sign in"), "{html}");
    assert_eq!(links_of(&jit.down, "ivy").await.len(), 1);
}

async fn browser_confirms(browser: &Browser, url: &Url, html: &str) {
    let done = browser.submit(url, html, &[]).await;
    assert!(query(&done.left(), "code").is_some());
}

#[tokio::test]
async fn a_verified_address_links_only_for_a_trusted_domain() {
    let trusted =
        pair("link = \"verified_email\"\ntrusted_email_domains = [\"example.com\"]").await;
    trusted.up.add_user("jo").await;
    trusted.down.add_user("jo").await;
    let callback = sign_in_through(&trusted, &browser(), "jo").await.left();
    assert!(query(&callback, "code").is_some());
    assert_eq!(links_of(&trusted.down, "jo").await.len(), 1);
    let linked = audit_actions(&trusted.down).await;
    assert!(
        linked.iter().any(|(a, d)| a == "upstream.linked"
            && d.as_deref().is_some_and(|d| d.contains("verified_email"))),
        "{linked:?}"
    );

    let untrusted =
        pair("link = \"verified_email\"\ntrusted_email_domains = [\"corp.example\"]").await;
    untrusted.up.add_user("kim").await;
    untrusted.down.add_user("kim").await;
    no_account_page(&untrusted, &browser(), "kim").await;
    assert!(links_of(&untrusted.down, "kim").await.is_empty());
    assert_eq!(refusals(&untrusted.down, "email_domain_untrusted").await, 1);

    // An account with a second factor is not linked by its address on the upstream's
    // word alone: nothing is written, and the person is offered the two-sided link.
    trusted.up.add_user("lea").await;
    let lea = trusted.down.add_user("lea").await;
    enrol_totp(&trusted.down, &lea);
    let (_, status, html) = sign_in_through(&trusted, &browser(), "lea").await.page();
    assert_eq!(status, StatusCode::OK, "{html}");
    assert!(html.contains("sign in to it to link"), "{html}");
    assert!(links_of(&trusted.down, "lea").await.is_empty());
}

#[tokio::test]
async fn prompt_login_and_max_age_reach_the_upstream_and_its_auth_time_is_checked() {
    let pair = pair("jit = true").await;
    pair.up.add_user("uma").await;
    let browser = self::browser();
    let start = press_button(&pair, &browser, &[("prompt", "login"), ("max_age", "300")]).await;
    let location = Url::parse(start.headers()["location"].to_str().unwrap()).unwrap();
    assert_eq!(query(&location, "prompt").as_deref(), Some("login"));
    assert_eq!(query(&location, "max_age").as_deref(), Some("300"));
    let back = through_upstream(&pair, &browser, start, "uma").await;
    let done = open_callback(&browser, &back).await.left();
    assert!(query(&done, "code").is_some(), "{done}");

    // An upstream sign-in older than the forced authentication asked: refused.
    let (browser, back) = real_callback(&pair, "uma").await;
    let state = query(&back, "state").unwrap();
    let mut waiting: serde_json::Value = pair
        .down
        .sessions
        .take_upstream_state(&state)
        .await
        .unwrap()
        .unwrap();
    waiting["force"] = serde_json::json!({"login": true, "max_age": null});
    waiting["started_at"] = (pair.down.clock.now() + 3_600).into();
    pair.down
        .sessions
        .save_upstream_state(&state, &waiting, std::time::Duration::from_secs(60))
        .await
        .unwrap();
    let (_, status, html) = open_callback(&browser, &back).await.page();
    assert_eq!(status, StatusCode::BAD_REQUEST, "{html}");
    assert_eq!(refusals(&pair.down, "upstream_auth_stale").await, 1);

    // A callback opened in another browser (someone who learned the `state`) is refused
    // and does not spend it: the browser that started the sign-in still finishes it.
    let (owner, back) = real_callback(&pair, "uma").await;
    let (_, status, html) = open_callback(&self::browser(), &back).await.page();
    assert_eq!(status, StatusCode::BAD_REQUEST, "{html}");
    let done = open_callback(&owner, &back).await.left();
    assert!(query(&done, "code").is_some(), "{done}");
}

#[tokio::test]
async fn jit_never_takes_an_address_the_provider_is_not_trusted_for() {
    // Trusted for other domains: a verified claim for example.com is refused, nothing made.
    let corp = pair("jit = true\ntrusted_email_domains = [\"corp.example\"]").await;
    corp.up.add_user("mia").await;
    let (_, status, html) = sign_in_through(&corp, &browser(), "mia").await.page();
    assert_eq!(status, StatusCode::FORBIDDEN, "{html}");
    assert!(html.contains("not trusted for that domain"), "{html}");
    assert!(users(&corp.down).await.is_empty());
    assert_eq!(refusals(&corp.down, "email_domain_untrusted").await, 1);

    // Trusted for none: the account is made without the address (never verified, and
    // never squatting it), and a local account with that address is not revealed.
    let none = pair("jit = true").await;
    none.up.add_user("nat").await;
    none.down.add_user("nat-local").await;
    let before = users(&none.down).await.len();
    let store = none.down.store.clone();
    tokio::task::spawn_blocking(move || {
        let mut local = store.find_user_by_username("nat-local").unwrap().unwrap();
        local.email = Some("nat@example.com".into());
        local.email_verified = true;
        store.update_user(&local, 1).unwrap();
    })
    .await
    .unwrap();
    let callback = sign_in_through(&none, &browser(), "nat").await.left();
    assert!(query(&callback, "code").is_some(), "{callback}");
    let made = users(&none.down).await;
    assert_eq!(made.len(), before + 1);
    let nat = made.iter().find(|u| u.username == "nat").unwrap();
    assert_eq!(nat.email, None);
    assert!(!nat.email_verified);
}

// ---- A provider nobody here wrote (node-oidc-provider) ----

#[tokio::test]
async fn node_oidc_provider_signs_in_with_jit_and_survives_a_key_rotation_mid_run() {
    use crate::upstream_peers::node_oidc::{self, NodeOidc};
    let port = free_port();
    let callback = format!("http://127.0.0.1:{port}/upstream/node/callback");
    let Some(mut node) = NodeOidc::start(&callback).await else {
        return;
    };
    let table = format!(
        "[[upstream]]\nid = \"node\"\nname = \"Node\"\nissuer = \"{}\"\nclient_id = \"{}\"\nclient_secret = \"{}\"\njit = true\ntrusted_email_domains = [\"example.test\"]\n",
        node.issuer, node.client_id, node.client_secret
    );
    let down = spawn_app_with(Options {
        port: Some(port),
        config: Some(table),
        ..Options::default()
    })
    .await;
    let client = down.add_client_with(ClientDraft {
        first_party: true,
        ..ClientDraft::default()
    });
    let sign_in = |down: &TestApp, client: &TestClient| {
        let (url, pkce) = down.authorize_url(client, &[]);
        (url, pkce)
    };
    // One sign-in: through node-oidc-provider's own login and consent pages.
    let once = async |down: &TestApp, node: &NodeOidc| {
        let browser = browser();
        let (url, pkce) = sign_in(down, &client);
        let (_, _, html) = browser.open(&url).await.page();
        let start = browser
            .http
            .post(down.url("/upstream/node/start"))
            .form(&first_inputs(&html))
            .send()
            .await
            .unwrap();
        assert_eq!(start.status(), StatusCode::SEE_OTHER);
        let to_node = start.headers()["location"].to_str().unwrap().to_owned();
        let back = node.login(&browser.http, &to_node).await;
        assert!(back.as_str().starts_with(&down.issuer), "{back}");
        let callback = open_callback(&browser, &back).await.left();
        let tokens = down.exchange(&client, &callback, &pkce).await;
        jwt_part(tokens["id_token"].as_str().unwrap(), 1)
    };
    let first = once(&down, &node).await;
    assert_eq!(first["idp"], "node");
    let made = users(&down).await;
    assert_eq!(made.len(), 1);
    assert_eq!(made[0].email.as_deref(), Some(node_oidc::EMAIL));
    assert_eq!(made[0].name.as_deref(), Some(node_oidc::NAME));
    let links = down.store.list_upstream_identities(&made[0].id).unwrap();
    assert_eq!(links[0].subject, node_oidc::SUB);

    // New signing keys at the upstream: its next ID token has a `kid` we have not seen,
    // and the JWK Set is fetched again (past the refetch floor).
    node.rotate_keys().await;
    down.clock.advance(31);
    let second = once(&down, &node).await;
    assert_eq!(second["sub"], first["sub"], "the same local account");
    assert_eq!(users(&down).await.len(), 1);
}

// ---- Across instances ----

#[tokio::test]
async fn the_callback_may_land_on_another_instance_sharing_redis_and_the_database() {
    use crate::backends::{TempDatabase, TempRedis};
    let (Some(db), Some(redis)) = (TempDatabase::create(), TempRedis::create()) else {
        return;
    };
    let up = spawn_app_with(Options {
        issuer_host: Some("localhost"),
        ..Options::default()
    })
    .await;
    up.add_user("lou").await;
    let (port_a, port_b) = (free_port(), free_port());
    // One issuer for both (behind one name, as behind a load balancer).
    let issuer = format!("http://127.0.0.1:{port_a}");
    let up_client = up.add_client_with(ClientDraft {
        redirect_uris: vec![format!("{issuer}/upstream/{ID}/callback")],
        first_party: true,
        ..ClientDraft::default()
    });
    let instance = |port: u16| Options {
        port: Some(port),
        database_url: Some(db.url.clone()),
        config: Some(upstream_table(&up.issuer, &up_client, "jit = true")),
        env: vec![
            ("ISSUER", issuer.clone()),
            ("REDIS_URL", redis.url.clone()),
            ("REDIS_PREFIX", redis.prefix.clone()),
        ],
        ..Options::default()
    };
    let a = spawn_app_with(instance(port_a)).await;
    let b = spawn_app_with(instance(port_b)).await;
    let client = a.add_client_with(ClientDraft {
        first_party: true,
        ..ClientDraft::default()
    });
    let pair = Pair {
        up,
        down: a,
        client,
    };
    // The sign-in starts at instance A...
    let browser = browser();
    let start = press_button(&pair, &browser, &[]).await;
    let back = through_upstream(&pair, &browser, start, "lou").await;
    // ...and the upstream's answer reaches instance B (cookies are per host, not port).
    let mut at_b = back.clone();
    at_b.set_port(Some(port_b)).unwrap();
    let left = open_callback(&browser, &at_b).await.left();
    assert!(query(&left, "code").is_some(), "{left}");
    let made = users(&b).await;
    assert_eq!(made.len(), 1);
    assert_eq!(made[0].username, "lou");
}

// ---- In a real browser ----

#[tokio::test]
async fn in_chromium_the_button_goes_through_the_upstream_and_back_and_every_page_is_axe_clean() {
    let Some(chrome) = crate::browser::Chrome::start("upstream").await else {
        return;
    };
    let pair = pair("").await;
    pair.up.add_user("nia").await;
    pair.down.add_user("nia").await;
    let (authorize, _) = pair.down.authorize_url(&pair.client, &[]);
    chrome.goto(&authorize).await;
    chrome.find("form.upstream button").await;
    chrome.check("upstream-login").await;
    chrome.click("form.upstream button").await;
    // The upstream's own login page.
    chrome
        .wait_for_url("the upstream", |u| u.host_str() == Some("localhost"))
        .await;
    chrome.type_into("#username", "nia").await;
    chrome.type_into("#password", PASSWORD).await;
    chrome.click("button[type=submit]").await;
    // Back here: no account for this identity yet; sign in to link it.
    let link_form = "form[action$='/upstream/link/sign-in'] button";
    chrome.find(link_form).await;
    chrome.check("upstream-no-account").await;
    chrome.click(link_form).await;
    chrome
        .wait_for_url("our login page", |u| {
            u.host_str() == Some("127.0.0.1") && u.path().ends_with("/login")
        })
        .await;
    chrome.type_into("#username", "nia").await;
    chrome.type_into("#password", PASSWORD).await;
    chrome.click("button[type=submit]").await;
    let confirm = "form[action$='/upstream/link'] button";
    chrome.find(confirm).await;
    chrome.check("upstream-link").await;
    chrome.click(confirm).await;
    chrome
        .wait_for_url("the app", |u| u.port() == Some(1))
        .await;
    // Linked: the next sign-in, asked afresh (`prompt=login`), goes through the upstream,
    // which is asked afresh too (the prompt is passed on, so its session alone does not
    // do), and straight back to the app.
    let (again, _) = pair
        .down
        .authorize_url(&pair.client, &[("prompt", "login")]);
    chrome.goto(&again).await;
    chrome.click("form.upstream button").await;
    chrome
        .wait_for_url("the upstream, asked afresh", |u| {
            u.host_str() == Some("localhost") && u.path().ends_with("/login")
        })
        .await;
    chrome.type_into("#username", "nia").await;
    chrome.type_into("#password", PASSWORD).await;
    chrome.click("button[type=submit]").await;
    let back = chrome
        .wait_for_url("the app again", |u| u.port() == Some(1))
        .await;
    chrome.done().await;
    assert!(query(&back, "code").is_some(), "{back}");
    assert_eq!(links_of(&pair.down, "nia").await.len(), 1);
}

#[tokio::test]
async fn in_chromium_a_jit_sign_in_goes_from_the_upstreams_form_to_the_app() {
    let Some(chrome) = crate::browser::Chrome::start("upstream-jit").await else {
        return;
    };
    let pair = pair("jit = true").await;
    pair.up.add_user("ola").await;
    let (authorize, _) = pair.down.authorize_url(&pair.client, &[]);
    chrome.goto(&authorize).await;
    chrome.click("form.upstream button").await;
    chrome
        .wait_for_url("the upstream", |u| u.host_str() == Some("localhost"))
        .await;
    chrome.type_into("#username", "ola").await;
    chrome.type_into("#password", PASSWORD).await;
    // The upstream's form leads, through its redirect and our callback, to the app: the
    // chain leaves the upstream page's `form-action` (see `http::pages::upstream`).
    chrome.click("button[type=submit]").await;
    let back = chrome
        .wait_for_url("the app", |u| u.port() == Some(1))
        .await;
    chrome.done().await;
    assert!(query(&back, "code").is_some(), "{back}");
    assert_eq!(users(&pair.down).await.len(), 1);
}

// ---- The github preset, against a fake GitHub ----

#[tokio::test]
async fn the_github_preset_signs_in_by_the_numeric_id_and_copies_no_address() {
    use crate::upstream_peers::fake_github::{FakeGithub, GithubUser};
    let port = free_port();
    let callback = format!("http://127.0.0.1:{port}/upstream/gh/callback");
    let github = FakeGithub::start(&callback).await;
    github.add_user(GithubUser::new(4242, "octo", "octo@example.com", true));
    github.approve_as("octo");
    let table = format!(
        "[[upstream]]\nid = \"gh\"\nname = \"GitHub\"\npreset = \"github\"\ngithub_url = \"{}\"\ngithub_api_url = \"{}\"\nclient_id = \"{}\"\nclient_secret = \"{}\"\njit = true\n",
        github.web_url, github.api_url, github.client_id, github.client_secret
    );
    let down = spawn_app_with(Options {
        port: Some(port),
        config: Some(table),
        ..Options::default()
    })
    .await;
    let client = down.add_client_with(ClientDraft {
        first_party: true,
        ..ClientDraft::default()
    });
    let browser = browser();
    let (url, pkce) = down.authorize_url(&client, &[]);
    let (_, _, html) = browser.open(&url).await.page();
    assert!(html.contains("Sign in with GitHub"), "{html}");
    let start = browser
        .http
        .post(down.url("/upstream/gh/start"))
        .form(&first_inputs(&html))
        .send()
        .await
        .unwrap();
    let to_github = Url::parse(start.headers()["location"].to_str().unwrap()).unwrap();
    assert!(
        to_github.as_str().starts_with(&github.web_url),
        "{to_github}"
    );
    assert_eq!(
        query(&to_github, "code_challenge_method").as_deref(),
        Some("S256")
    );
    let back = browser.http.get(to_github).send().await.unwrap();
    let back = Url::parse(back.headers()["location"].to_str().unwrap()).unwrap();
    let callback = open_callback(&browser, &back).await.left();
    let tokens = down.exchange(&client, &callback, &pkce).await;
    let id_token = jwt_part(tokens["id_token"].as_str().unwrap(), 1);
    assert_eq!(id_token["idp"], "gh");
    let made = users(&down).await;
    assert_eq!(made.len(), 1);
    assert_eq!(made[0].username, "octo");
    // GitHub's verified flag is never checked again: no address is copied (review M3).
    assert_eq!(made[0].email, None);
    assert!(!made[0].email_verified);
    let links = down.store.list_upstream_identities(&made[0].id).unwrap();
    assert_eq!(links[0].subject, "4242");
    assert_eq!(links[0].issuer, github.web_url);
    // The PKCE verifier went to GitHub's token endpoint.
    let exchanged = github.requests_to("/login/oauth/access_token");
    assert!(exchanged[0].param("code_verifier").is_some());
}

#[tokio::test]
async fn signing_out_here_ends_our_session_only() {
    let pair = pair("jit = true").await;
    pair.up.add_user("pat").await;
    let browser = browser();
    sign_in_through(&pair, &browser, "pat").await.left();
    // RP-initiated logout at us (CONTRACT: `/logout`), confirmed.
    let (url, _, html) = browser.open(&pair.down.url("/logout")).await.page();
    let (_, status, _) = browser
        .submit(&url, &html, &[("decision", "logout")])
        .await
        .page();
    assert_eq!(status, StatusCode::OK);
    // Here: signed out (the next request asks to sign in).
    let (here, _) = pair.down.authorize_url(&pair.client, &[]);
    let (login, _, _) = browser.open(&here).await.page();
    assert!(login.path().ends_with("/login"), "{login}");
    // At the upstream: still signed in (its next authorization needs no login).
    let start = press_button(&pair, &browser, &[]).await;
    let location = start.headers()["location"].to_str().unwrap().to_owned();
    let response = browser.http.get(&location).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let next = response.headers()["location"].to_str().unwrap().to_owned();
    assert!(
        next.starts_with(&pair.down.issuer),
        "straight back to us: {next}"
    );
}
