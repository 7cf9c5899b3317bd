//! Key rotation (`portcullis keys rotate`) under a running provider: the new key is
//! published first, signs later, and the old key stays published for its tokens.

use std::time::{Duration, Instant};

use crate::helpers::{Options, jwt_part, spawn_app_with};

fn rs256_kids(jwks: &serde_json::Value) -> Vec<String> {
    jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|k| k["alg"] == "RS256")
        .map(|k| k["kid"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn a_rotated_key_is_published_before_it_signs_and_old_tokens_keep_working() {
    let app = spawn_app_with(Options {
        env: vec![("KEY_REFRESH_INTERVAL", "1".into())],
        ..Default::default()
    })
    .await;
    app.add_user("alice").await;
    let client = app.add_client(false);
    let before = app.tokens_for(&client, "alice").await;
    let old_kid = jwt_part(before["access_token"].as_str().unwrap(), 0)["kid"]
        .as_str()
        .unwrap()
        .to_owned();

    let output = std::process::Command::new(env!("CARGO_BIN_EXE_portcullis"))
        .args(["keys", "rotate", "--alg", "RS256", "--activate-in", "4"])
        .env(
            "PORTCULLIS_DATABASE_URL",
            format!("sqlite://{}/portcullis.db", app.dir.path().display()),
        )
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );

    // Published within a refresh interval, while the old key still signs.
    let deadline = Instant::now() + Duration::from_secs(3);
    let new_kid = loop {
        let jwks: serde_json::Value = app.get_json("/jwks").await;
        let kids = rs256_kids(&jwks);
        if kids.len() == 2 {
            break kids.into_iter().find(|k| *k != old_kid).unwrap();
        }
        assert!(Instant::now() < deadline, "the new key was not published");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let during = app.tokens_for(&client, "alice").await;
    assert_eq!(
        jwt_part(during["access_token"].as_str().unwrap(), 0)["kid"],
        old_kid.as_str()
    );

    // After activation the new key signs; the old one is still published.
    app.clock.set(portcullis::domain::now() + 10);
    let after = app.tokens_for(&client, "alice").await;
    assert_eq!(
        jwt_part(after["access_token"].as_str().unwrap(), 0)["kid"],
        new_kid.as_str()
    );
    assert_eq!(
        jwt_part(after["id_token"].as_str().unwrap(), 0)["kid"],
        new_kid.as_str()
    );
    let jwks: serde_json::Value = app.get_json("/jwks").await;
    assert!(rs256_kids(&jwks).contains(&old_kid));
    let status = crate::helpers::http()
        .get(app.url("/userinfo"))
        .bearer_auth(before["access_token"].as_str().unwrap())
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, 200, "tokens signed by the old key still verify");
}
