//! Single sign-out across two `portcullis serve` processes sharing PostgreSQL and Redis:
//! a session ended on one is over on the other at once, and each app is told once.

use portcullis::protocol::registration::ClientDraft;
use portcullis::store::ClientStore;

use crate::cluster::{Cluster, Rp, authorize_url, code_of, redeem};
use crate::helpers::{Pkce, jwt_part, query};
use crate::logout_receiver::{Receiver, verify_logout_token};

#[tokio::test]
async fn a_session_ended_on_one_instance_is_over_on_the_other_at_once_and_announced_once() {
    let Some(cluster) = Cluster::start().await else {
        return;
    };
    let receiver = Receiver::start().await;
    let redirect_uri = "http://127.0.0.1:1/cb".to_owned();
    let registered = crate::helpers::register_client(ClientDraft {
        name: Some("RP".into()),
        redirect_uris: vec![redirect_uri.clone()],
        backchannel_logout_uri: Some(receiver.uri("rp")),
        ..Default::default()
    });
    cluster.store.create_client(&registered.client).unwrap();
    let rp = Rp {
        id: registered.client.id.clone(),
        secret: registered.client_secret.unwrap(),
        redirect_uri,
    };

    // Signed in through A; B knows the session (single sign-on).
    let browser = cluster.browser();
    let pkce = Pkce::new();
    let callback = browser
        .sign_in(&authorize_url(&cluster.a, &rp, &pkce, ""), "alice")
        .await;
    let tokens: serde_json::Value = redeem(&cluster.a, &rp, &code_of(&callback), &pkce)
        .await
        .json()
        .await
        .unwrap();
    let sid = jwt_part(tokens["id_token"].as_str().unwrap(), 1)["sid"]
        .as_str()
        .unwrap()
        .to_owned();
    let pkce = Pkce::new();
    let at_b = browser
        .open(&authorize_url(&cluster.b, &rp, &pkce, "&prompt=none"))
        .await
        .left();
    assert!(query(&at_b, "code").is_some(), "signed in at B too");

    // Signed out at B.
    let (page, _, html) = browser.open(&cluster.b.url("/logout")).await.page();
    browser
        .submit(&page, &html, &[("decision", "logout")])
        .await;

    // At A, with no wait: no session, and the tokens A issued are dead.
    let pkce = Pkce::new();
    let at_a = browser
        .open(&authorize_url(&cluster.a, &rp, &pkce, "&prompt=none"))
        .await
        .left();
    assert_eq!(query(&at_a, "error").as_deref(), Some("login_required"));
    let status = crate::helpers::http()
        .get(cluster.a.url("/userinfo"))
        .bearer_auth(tokens["access_token"].as_str().unwrap())
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, 401);

    // Both instances drain the outbox; the app is told once.
    let received = receiver.wait_for(1).await;
    let claims = verify_logout_token(
        received[0].token.as_deref().unwrap(),
        &cluster.issuer,
        &rp.id,
    )
    .await;
    assert_eq!(claims["sid"], sid.as_str());
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    use portcullis::store::SessionRecordStore;
    while cluster.store.find_logout_deliveries(&sid).unwrap()[0]
        .delivered_at
        .is_none()
    {
        assert!(std::time::Instant::now() < deadline);
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    // Claimed once, by one of the two instances (a claim is the only way to a POST),
    // and delivered: no other POST can follow.
    let row = &cluster.store.find_logout_deliveries(&sid).unwrap()[0];
    assert_eq!(row.attempts, 1, "{row:?}");
    assert_eq!(receiver.received().len(), 1, "one POST for the client");
    receiver.stop().await;
}
