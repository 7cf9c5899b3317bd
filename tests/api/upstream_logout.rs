//! Upstream logout (issue 24, `end_session = true`, off by default): RP-initiated logout
//! here ends our session, then goes on to the upstream's `end_session_endpoint` with the
//! sign-in's ID token as `id_token_hint` and comes back to
//! `/upstream/{id}/logged-out`, which continues to the application. Against a second
//! Portcullis (its own `/logout`).

use portcullis::domain::Clock as _;
use portcullis::protocol::registration::ClientDraft;
use reqwest::StatusCode;
use url::Url;

use crate::helpers::{Options, TestApp, free_port, jwt_part, query, spawn_app_with};
use crate::upstream::{ID, Pair, browser, press_button, sign_in_through, upstream_table};
use crate::upstream_peers::form_action;

/// As `upstream::pair`, the upstream's client for us allowed our logged-out callback as
/// its `post_logout_redirect_uri`, and ours one of its own.
async fn logout_pair(extra: &str) -> Pair {
    let up = spawn_app_with(Options {
        issuer_host: Some("localhost"),
        ..Options::default()
    })
    .await;
    let port = free_port();
    let ours = format!("http://127.0.0.1:{port}");
    let up_client = up.add_client_with(ClientDraft {
        redirect_uris: vec![format!("{ours}/upstream/{ID}/callback")],
        post_logout_redirect_uris: vec![format!("{ours}/upstream/{ID}/logged-out")],
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
        post_logout_redirect_uris: vec!["http://127.0.0.1:1/bye".into()],
        ..ClientDraft::default()
    });
    Pair { up, down, client }
}

#[tokio::test]
async fn with_end_session_signing_out_here_signs_out_at_the_upstream_and_comes_back_to_the_app() {
    let pair = logout_pair("jit = true\nend_session = true").await;
    pair.up.add_user("pia").await;
    let browser = browser();
    sign_in_through(&pair, &browser, "pia").await.left();

    // RP-initiated logout here, for our client, with its post-logout redirect.
    let mut logout = Url::parse(&pair.down.url("/logout")).unwrap();
    logout
        .query_pairs_mut()
        .append_pair("client_id", &pair.client.id)
        .append_pair("post_logout_redirect_uri", "http://127.0.0.1:1/bye")
        .append_pair("state", "app-state");
    let (url, _, html) = browser.open(logout.as_str()).await.page();
    let confirm = browser
        .http
        .post(url.join(&form_action(&html).unwrap()).unwrap())
        .form(&{
            let mut form = crate::helpers::hidden_inputs(&html);
            form.push(("decision".into(), "logout".into()));
            form
        })
        .send()
        .await
        .unwrap();
    // Our session ended, and the browser goes to the upstream's logout.
    assert_eq!(confirm.status(), StatusCode::SEE_OTHER);
    let to_upstream = Url::parse(confirm.headers()["location"].to_str().unwrap()).unwrap();
    assert!(
        to_upstream.as_str().starts_with(&pair.up.url("/logout")),
        "{to_upstream}"
    );
    let hint = query(&to_upstream, "id_token_hint").unwrap();
    assert_eq!(jwt_part(&hint, 1)["iss"], pair.up.issuer.as_str());
    assert_eq!(
        query(&to_upstream, "post_logout_redirect_uri").unwrap(),
        pair.down.url(&format!("/upstream/{ID}/logged-out"))
    );
    let upstream_state = query(&to_upstream, "state").unwrap();

    // The upstream's own confirmation, then back to us, then on to the application.
    let (up_url, status, up_html) = browser.open(to_upstream.as_str()).await.page();
    assert_eq!(status, StatusCode::OK, "{up_html}");
    let back = browser
        .http
        .post(up_url.join(&form_action(&up_html).unwrap()).unwrap())
        .form(&{
            let mut form = crate::helpers::hidden_inputs(&up_html);
            form.push(("decision".into(), "logout".into()));
            form
        })
        .send()
        .await
        .unwrap();
    let back = Url::parse(back.headers()["location"].to_str().unwrap()).unwrap();
    assert!(
        back.as_str()
            .starts_with(&pair.down.url(&format!("/upstream/{ID}/logged-out"))),
        "{back}"
    );
    assert_eq!(
        query(&back, "state").as_deref(),
        Some(upstream_state.as_str())
    );
    let last = browser.http.get(back.clone()).send().await.unwrap();
    assert_eq!(last.status(), StatusCode::SEE_OTHER);
    let app = Url::parse(last.headers()["location"].to_str().unwrap()).unwrap();
    assert_eq!(app.port(), Some(1), "{app}");
    assert_eq!(app.path(), "/bye");
    assert_eq!(query(&app, "state").as_deref(), Some("app-state"));

    // The way back is single use: again, our signed-out page.
    let again = browser.http.get(back).send().await.unwrap();
    assert_eq!(again.status(), StatusCode::OK);

    // At the upstream: signed out too (its next authorization asks to sign in).
    let start = press_button(&pair, &browser, &[]).await;
    let location = start.headers()["location"].to_str().unwrap().to_owned();
    let (at, _, html) = browser.open(&location).await.page();
    assert!(at.as_str().starts_with(&pair.up.issuer), "{at}");
    assert!(
        html.contains("password"),
        "the upstream's login page: {html}"
    );
}

/// Our RP-initiated logout for `client`, confirmed in `browser`: the confirmation's
/// response (not followed).
async fn confirm_logout(
    pair: &Pair,
    browser: &crate::helpers::Browser,
    state: &str,
) -> reqwest::Response {
    let mut logout = Url::parse(&pair.down.url("/logout")).unwrap();
    logout
        .query_pairs_mut()
        .append_pair("client_id", &pair.client.id)
        .append_pair("post_logout_redirect_uri", "http://127.0.0.1:1/bye")
        .append_pair("state", state);
    let (url, _, html) = browser.open(logout.as_str()).await.page();
    browser
        .http
        .post(url.join(&form_action(&html).unwrap()).unwrap())
        .form(&{
            let mut form = crate::helpers::hidden_inputs(&html);
            form.push(("decision".into(), "logout".into()));
            form
        })
        .send()
        .await
        .unwrap()
}

/// Every record of `app`'s session store that holds an upstream ID token (the old
/// per-browser `end-session.*` records had `sealed_id_token`).
async fn kept_id_tokens(app: &TestApp) -> usize {
    app.sessions
        .values()
        .await
        .unwrap()
        .iter()
        .filter(|v| v.contains("upstream_id_token") || v.contains("sealed_id_token"))
        .count()
}

#[tokio::test]
async fn the_upstream_id_token_lives_in_the_session_and_goes_when_another_sign_in_replaces_it() {
    let pair = logout_pair("jit = true\nend_session = true").await;
    pair.up.add_user("pia").await;
    pair.down.add_user("bob").await;
    let browser = browser();
    sign_in_through(&pair, &browser, "pia").await.left();
    assert_eq!(kept_id_tokens(&pair.down).await, 1, "in pia's session");

    // Bob signs in with his password in the same browser: pia's session is replaced,
    // and her upstream ID token goes with it.
    let (url, _) = pair
        .down
        .authorize_url(&pair.client, &[("prompt", "login")]);
    let back = browser.sign_in(&url, "bob").await;
    assert!(query(&back, "code").is_some(), "{back}");
    assert_eq!(kept_id_tokens(&pair.down).await, 0);

    // Bob's logout does not go to the upstream with pia's ID token.
    let confirm = confirm_logout(&pair, &browser, "s").await;
    let location = confirm
        .headers()
        .get("location")
        .map(|l| l.to_str().unwrap().to_owned())
        .unwrap_or_default();
    assert!(!location.contains("id_token_hint"), "{location}");
}

#[tokio::test]
async fn the_logout_page_lets_its_form_reach_the_upstream_on_an_instance_that_never_asked_it() {
    let pair = logout_pair("jit = true\nend_session = true").await;
    // A session that signed in through the upstream on another instance (shared
    // store): this one has never read the upstream's metadata.
    let session = portcullis::sessions::SsoSession {
        id: "a-session-made-elsewhere".into(),
        sid: "sid-1".into(),
        user_id: "someone".into(),
        auth_time: pair.down.clock.now(),
        amr: vec!["fed".into()],
        level: Default::default(),
        methods: Vec::new(),
        expires_at: pair.down.clock.now() + 3600,
        idp: Some(ID.into()),
        upstream_id_token: Some("sealed".into()),
    };
    pair.down
        .sessions
        .save_sso(&session, pair.down.clock.now())
        .await
        .unwrap();
    let page = reqwest::Client::new()
        .get(pair.down.url("/logout"))
        .header("cookie", "portcullis_session=a-session-made-elsewhere")
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    let csp = page.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    let form_action = csp
        .split(';')
        .map(str::trim)
        .find(|d| d.starts_with("form-action"))
        .unwrap_or_default();
    let upstream = Url::parse(&pair.up.issuer)
        .unwrap()
        .origin()
        .ascii_serialization();
    assert!(
        form_action.split(' ').any(|s| s == upstream),
        "{csp} should allow {upstream}"
    );
}

#[tokio::test]
async fn the_way_back_from_the_upstreams_logout_is_the_browsers_that_began_it() {
    let pair = logout_pair("jit = true\nend_session = true").await;
    pair.up.add_user("pia").await;
    let browser = browser();
    sign_in_through(&pair, &browser, "pia").await.left();
    let confirm = confirm_logout(&pair, &browser, "app-state").await;
    assert_eq!(confirm.status(), StatusCode::SEE_OTHER);
    let to_upstream = Url::parse(confirm.headers()["location"].to_str().unwrap()).unwrap();
    let upstream_state = query(&to_upstream, "state").unwrap();
    let mut back = Url::parse(&pair.down.url(&format!("/upstream/{ID}/logged-out"))).unwrap();
    back.query_pairs_mut().append_pair("state", &upstream_state);

    // Another browser with the `state`: our signed-out page, not the application.
    let other = crate::upstream::browser();
    other.open(&pair.down.url("/logout")).await;
    let elsewhere = other.http.get(back.clone()).send().await.unwrap();
    assert_eq!(elsewhere.status(), StatusCode::OK);

    // The browser that began it still goes on to the application.
    let here = browser.http.get(back).send().await.unwrap();
    assert_eq!(here.status(), StatusCode::SEE_OTHER);
    let app = Url::parse(here.headers()["location"].to_str().unwrap()).unwrap();
    assert_eq!(app.path(), "/bye");
}

#[tokio::test]
async fn end_session_is_refused_for_github_and_off_by_default() {
    let table = "[[upstream]]\nid = \"gh\"\nname = \"GitHub\"\npreset = \"github\"\nclient_id = \"c\"\nclient_secret = \"s\"\nend_session = true\n";
    let error = portcullis::config::upstream::read(Some(table)).unwrap_err();
    assert!(error.message.contains("end_session"), "{}", error.message);
    let table = "[[upstream]]\nid = \"a\"\nname = \"A\"\nissuer = \"https://a.example\"\nclient_id = \"c\"\nclient_secret = \"s\"\n";
    assert!(!portcullis::config::upstream::read(Some(table)).unwrap()[0].end_session);
}
