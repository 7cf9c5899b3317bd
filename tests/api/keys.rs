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
        .env("PORTCULLIS_KEY_ENCRYPTION_KEY", crate::helpers::TEST_KEK)
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

#[tokio::test]
async fn keys_rotate_on_schedule_without_an_operator() {
    let app = spawn_app_with(Options {
        env: vec![
            ("KEY_REFRESH_INTERVAL", "1".into()),
            ("KEY_ROTATION_INTERVAL", "86400".into()),
        ],
        ..Default::default()
    })
    .await;
    let before = rs256_kids(&app.get_json("/jwks").await);
    assert_eq!(before.len(), 1);
    app.clock.advance(86_400);
    let deadline = Instant::now() + Duration::from_secs(10);
    let after = loop {
        let kids = rs256_kids(&app.get_json("/jwks").await);
        if kids.len() == 2 {
            break kids;
        }
        assert!(Instant::now() < deadline, "no scheduled rotation: {kids:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(
        after.contains(&before[0]),
        "the old key stays published for its tokens"
    );
    // Published now, signing after the activation delay.
    use portcullis::domain::Clock;
    let keys = app.store.list_keys(app.clock.now()).unwrap();
    let new = keys
        .iter()
        .find(|k| k.alg == "RS256" && k.kid != before[0])
        .unwrap();
    assert_eq!(
        new.activates_at,
        new.created_at + portcullis::keyring::DEFAULT_ACTIVATION_DELAY
    );
    let old = keys.iter().find(|k| k.kid == before[0]).unwrap();
    assert!(old.retired_at.is_some_and(|t| t > new.activates_at));
}

#[tokio::test]
async fn signing_keys_are_stored_sealed_and_a_key_stored_in_the_clear_is_sealed_at_start() {
    let app = spawn_app_with(Options::default()).await;
    use portcullis::domain::Clock;
    let keys = app.store.list_keys(app.clock.now()).unwrap();
    assert!(!keys.is_empty());
    for key in &keys {
        assert!(
            portcullis::crypto::keys::is_sealed(&key.private_key),
            "{}",
            key.kid
        );
        // PKCS#8 DER starts with a SEQUENCE; the sealed form is text.
        assert_ne!(key.private_key[0], 0x30);
        assert!(
            portcullis::crypto::keys::open_private_key(
                &portcullis::crypto::kek::KeyEncryptionKey::from_bytes(&[9; 32]).unwrap(),
                &key.kid,
                &key.private_key
            )
            .is_err(),
            "another key-encryption key opens nothing"
        );
    }

    // A database from before sealing: its keys are in the clear until the next start.
    let (dir, port) = (app.dir.clone(), app.port);
    let kek = crate::helpers::test_kek();
    for key in &keys {
        let der =
            portcullis::crypto::keys::open_private_key(&kek, &key.kid, &key.private_key).unwrap();
        app.store.replace_key_material(&key.kid, &der).unwrap();
    }
    let jwks_before = app.get_json("/jwks").await;
    app.stop().await;
    let app = spawn_app_with(Options {
        dir: Some(dir),
        port: Some(port),
        ..Default::default()
    })
    .await;
    assert_eq!(app.get_json("/jwks").await, jwks_before, "the same keys");
    for key in app.store.all_keys().unwrap() {
        assert!(
            portcullis::crypto::keys::is_sealed(&key.private_key),
            "{}",
            key.kid
        );
    }
}
