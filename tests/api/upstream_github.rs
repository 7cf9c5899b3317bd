//! The `github` preset when GitHub does not list the user's addresses (`GET /user/emails`
//! failing, issue 24): an unknown identity gets no JIT account (one here may have its
//! address, and would get a second account), a clear page instead; a linked identity
//! still signs in, and keeps the address recorded before.

use portcullis::protocol::registration::ClientDraft;
use reqwest::StatusCode;
use url::Url;

use crate::helpers::{Options, Outcome, TestApp, TestClient, free_port, spawn_app_with};
use crate::upstream::{browser, first_inputs, open_callback, refusals, users};
use crate::upstream_peers::fake_github::{FakeGithub, GithubUser};

async fn github_sign_in(down: &TestApp, client: &TestClient) -> Outcome {
    let browser = browser();
    let (url, _) = down.authorize_url(client, &[]);
    let (_, _, html) = browser.open(&url).await.page();
    let start = browser
        .http
        .post(down.url("/upstream/gh/start"))
        .form(&first_inputs(&html))
        .send()
        .await
        .unwrap();
    let to_github = Url::parse(start.headers()["location"].to_str().unwrap()).unwrap();
    let back = browser.http.get(to_github).send().await.unwrap();
    let back = Url::parse(back.headers()["location"].to_str().unwrap()).unwrap();
    open_callback(&browser, &back).await
}

#[tokio::test]
async fn when_github_lists_no_address_no_account_is_made_but_a_linked_identity_still_signs_in() {
    let port = free_port();
    let github = FakeGithub::start(&format!("http://127.0.0.1:{port}/upstream/gh/callback")).await;
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

    // Unknown identity, no address list: a page that says so, nothing made.
    github.fail_emails(Some(500));
    let (_, status, html) = github_sign_in(&down, &client).await.page();
    assert_eq!(status, StatusCode::BAD_GATEWAY, "{html}");
    assert!(
        html.contains("GitHub did not tell us your email address"),
        "{html}"
    );
    assert!(users(&down).await.is_empty());
    assert_eq!(refusals(&down, "email_unavailable").await, 1);

    // GitHub answers again: the JIT account, without the address (GitHub's "verified"
    // is never checked again, so no trusted domain vouches for it: review M3).
    github.fail_emails(None);
    assert_eq!(github_sign_in(&down, &client).await.left().port(), Some(1));
    let made = users(&down).await;
    assert_eq!(made.len(), 1);
    assert_eq!(made[0].email, None);
    assert!(!made[0].email_verified);

    // Failing again: the linked identity signs in (the address is not needed), and its
    // recorded address is not taken for "none".
    github.fail_emails(Some(503));
    assert_eq!(github_sign_in(&down, &client).await.left().port(), Some(1));
    assert_eq!(users(&down).await.len(), 1);
    let links = down.store.list_upstream_identities(&made[0].id).unwrap();
    assert_eq!(links[0].email.as_deref(), Some("octo@example.com"));
    assert_eq!(refusals(&down, "email_unavailable").await, 1);
}
