//! `response_mode = "form_post"` for an upstream (issue 24): the upstream answers with a
//! self-submitting form, a POST to our callback, which keeps the response with its
//! sign-in and sends the browser on to the callback's GET with the state only; the code
//! never goes in a URL of ours. Against a second Portcullis (which supports form_post).

use reqwest::StatusCode;
use url::Url;

use crate::helpers::{PASSWORD, hidden_inputs, query};
use crate::upstream::{ID, Pair, browser, open_callback, pair, press_button, refusals, users};
use crate::upstream_peers::form_action;

/// Presses the button and signs in at the upstream as `username`: the form its
/// form_post page would submit to us (action, fields), unsubmitted.
async fn form_post_answer(
    pair: &Pair,
    browser: &crate::helpers::Browser,
    username: &str,
) -> (String, Vec<(String, String)>) {
    let start = press_button(pair, browser, &[]).await;
    let location = start.headers()["location"].to_str().unwrap().to_owned();
    let to_upstream = Url::parse(&location).unwrap();
    assert_eq!(
        query(&to_upstream, "response_mode").as_deref(),
        Some("form_post")
    );
    let (url, _, html) = browser.open(&location).await.page();
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
    while response.status().is_redirection() {
        let next = response
            .url()
            .join(response.headers()["location"].to_str().unwrap())
            .unwrap();
        assert!(
            !next.as_str().starts_with(&pair.down.issuer),
            "a redirect to us: {next}"
        );
        response = browser.http.get(next).send().await.unwrap();
    }
    assert_eq!(response.status(), StatusCode::OK);
    let html = response.text().await.unwrap();
    let action = form_action(&html).unwrap();
    assert_eq!(action, pair.down.url(&format!("/upstream/{ID}/callback")));
    let fields = hidden_inputs(&html);
    assert!(fields.iter().any(|(n, _)| n == "code"), "{html}");
    (action, fields)
}

#[tokio::test]
async fn a_form_post_upstream_signs_in_by_post_and_its_code_never_reaches_a_url_of_ours() {
    let pair = pair("jit = true\nresponse_mode = \"form_post\"").await;
    pair.up.add_user("fay").await;
    let browser = browser();
    let (action, fields) = form_post_answer(&pair, &browser, "fay").await;
    let posted = browser
        .http
        .post(&action)
        .form(&fields)
        .send()
        .await
        .unwrap();
    assert_eq!(posted.status(), StatusCode::SEE_OTHER);
    let next = posted
        .url()
        .join(posted.headers()["location"].to_str().unwrap())
        .unwrap();
    assert_eq!(query(&next, "code"), None, "{next}");
    assert!(query(&next, "state").is_some(), "{next}");
    let outcome = open_callback(&browser, &next).await;
    assert_eq!(outcome.left().port(), Some(1));
    assert_eq!(users(&pair.down).await.len(), 1);

    // The same POST again: its sign-in is spent.
    let again = browser
        .http
        .post(&action)
        .form(&fields)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), StatusCode::BAD_REQUEST);
    assert!(again.text().await.unwrap().contains("Sign-in refused"));
}

#[tokio::test]
async fn a_form_post_upstreams_code_in_a_query_is_refused_and_nothing_is_made() {
    let pair = pair("jit = true\nresponse_mode = \"form_post\"").await;
    pair.up.add_user("gus").await;
    let browser = browser();
    let (action, fields) = form_post_answer(&pair, &browser, "gus").await;
    let mut url = Url::parse(&action).unwrap();
    for (name, value) in &fields {
        url.query_pairs_mut().append_pair(name, value);
    }
    let (_, status, html) = open_callback(&browser, &url).await.page();
    assert_eq!(status, StatusCode::BAD_REQUEST, "{html}");
    assert!(html.contains("Sign-in refused"), "{html}");
    assert!(users(&pair.down).await.is_empty());
    assert_eq!(refusals(&pair.down, "response_mode_mismatch").await, 1);
}

#[tokio::test]
async fn a_query_upstreams_callback_takes_no_post() {
    let pair = pair("jit = true").await;
    let response = browser()
        .http
        .post(pair.down.url(&format!("/upstream/{ID}/callback")))
        .form(&[("state", "x"), ("code", "y")])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert!(response.text().await.unwrap().contains("Sign-in refused"));
    assert!(users(&pair.down).await.is_empty());
}
