//! `private_key_jwt` to an upstream (issue 24): Portcullis authenticates to the upstream's
//! token endpoint with a client assertion signed by one of its own keys, which the
//! upstream reads from our `/jwks`. Against a second Portcullis (in this process) that
//! registered us as a `private_key_jwt` client.

use portcullis::protocol::registration::ClientDraft;
use reqwest::StatusCode;

use crate::helpers::{Options, free_port, jwt_part, spawn_app_with};
use crate::upstream::{
    ID, NAME, Pair, browser, open_callback, press_button, refusals, through_upstream, users,
};

/// The upstream, with a `private_key_jwt` client for us whose keys are at our own
/// `/jwks` (`other_keys`: at the upstream's own, where ours are not), and us, configured
/// with `extra`.
async fn pair_with_key(other_keys: bool, extra: &str) -> Pair {
    let up = spawn_app_with(Options {
        issuer_host: Some("localhost"),
        ..Options::default()
    })
    .await;
    let port = free_port();
    let ours = format!("http://127.0.0.1:{port}");
    let up_client = up.add_client_with(ClientDraft {
        redirect_uris: vec![format!("{ours}/upstream/{ID}/callback")],
        first_party: true,
        auth_method: Some("private_key_jwt".into()),
        jwks_uri: Some(if other_keys {
            format!("{}/jwks", up.issuer)
        } else {
            format!("{ours}/jwks")
        }),
        ..ClientDraft::default()
    });
    assert!(up_client.secret.is_none(), "no secret for private_key_jwt");
    let table = format!(
        "[[upstream]]\nid = \"{ID}\"\nname = \"{NAME}\"\nissuer = \"{}\"\nclient_id = \"{}\"\ntoken_endpoint_auth_method = \"private_key_jwt\"\n{extra}\n",
        up.issuer, up_client.id
    );
    let down = spawn_app_with(Options {
        port: Some(port),
        config: Some(table),
        ..Options::default()
    })
    .await;
    assert_eq!(down.issuer, ours);
    let client = down.add_client_with(ClientDraft {
        first_party: true,
        ..ClientDraft::default()
    });
    Pair { up, down, client }
}

#[tokio::test]
async fn with_private_key_jwt_the_upstream_takes_our_signed_assertion_and_the_sign_in_goes_through()
{
    for alg in ["RS256", "ES256"] {
        let extra = format!("jit = true\ntoken_endpoint_auth_signing_alg = \"{alg}\"");
        let pair = pair_with_key(false, &extra).await;
        pair.up.add_user("kim").await;
        let browser = browser();
        let (url, pkce) = pair.down.authorize_url(&pair.client, &[]);
        let (_, _, html) = browser.open(&url).await.page();
        let start = browser
            .http
            .post(pair.down.url(&format!("/upstream/{ID}/start")))
            .form(&crate::upstream::first_inputs(&html))
            .send()
            .await
            .unwrap();
        let back = through_upstream(&pair, &browser, start, "kim").await;
        let callback = open_callback(&browser, &back).await.left();
        assert_eq!(callback.port(), Some(1), "{alg}: {callback}");
        let tokens = pair.down.exchange(&pair.client, &callback, &pkce).await;
        assert_eq!(
            jwt_part(tokens["id_token"].as_str().unwrap(), 1)["idp"],
            ID,
            "{alg}"
        );
        assert_eq!(users(&pair.down).await.len(), 1, "{alg}: the JIT account");
    }
}

#[tokio::test]
async fn an_upstream_that_does_not_know_our_key_refuses_the_assertion_and_nothing_is_made() {
    // The upstream's client for us names another key set (the upstream's own): our
    // assertion's key is not in it.
    let pair = pair_with_key(true, "jit = true").await;
    pair.up.add_user("lou").await;
    let browser = browser();
    let start = press_button(&pair, &browser, &[]).await;
    let back = through_upstream(&pair, &browser, start, "lou").await;
    let (_, status, html) = open_callback(&browser, &back).await.page();
    assert_eq!(status, StatusCode::BAD_REQUEST, "{html}");
    assert!(html.contains("Sign-in refused"), "{html}");
    assert!(users(&pair.down).await.is_empty());
    assert_eq!(refusals(&pair.down, "token_request").await, 1);
}
