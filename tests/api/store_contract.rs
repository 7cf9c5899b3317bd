//! One storage contract, run against every backend: SQLite and PostgreSQL.

use std::sync::Arc;

use diesel::Connection;
use diesel::connection::SimpleConnection;
use diesel_migrations::{EmbeddedMigrations, MigrationHarness};
use portcullis::domain::now;
use portcullis::protocol::registration::ClientDraft;
use portcullis::store::sql::SqlStore;
use portcullis::store::{
    AdminChange, AuthorizationCode, Consent, Grant, NewAuditEvent, RefreshToken, Store, StoreError,
    StoredKey, User, UserQuery,
};

use crate::backends::TempDatabase;

fn user(name: &str) -> User {
    User::new(
        portcullis::crypto::tokens::random_uuid(),
        name.into(),
        "$argon2id$x".into(),
        now(),
    )
}

fn code(hash: &str, client: &str, user: &str, grant: &str) -> AuthorizationCode {
    AuthorizationCode {
        code_hash: hash.into(),
        grant_id: grant.into(),
        client_id: client.into(),
        user_id: user.into(),
        redirect_uri: "https://rp.example/cb".into(),
        redirect_uri_sent: true,
        scope: "openid".into(),
        nonce: Some("n".into()),
        code_challenge: None,
        code_challenge_method: None,
        session_id: Some("sid".into()),
        auth_time: 1,
        created_at: 1,
        expires_at: now() + 60,
        consumed_at: None,
        acr: None,
        claims: None,
        amr: Some("pwd".into()),
        resources: Some("https://api.example/ urn:example:b".into()),
        dpop_jkt: Some("0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I".into()),
    }
}

fn grant(id: &str, client: &str, user: &str) -> Grant {
    Grant {
        id: id.into(),
        client_id: client.into(),
        user_id: user.into(),
        scope: "openid".into(),
        session_id: Some("sid-1".into()),
        created_at: 1,
        revoked_at: None,
        auth_time: 1,
        nonce: Some("n".into()),
        acr: None,
        amr: Some("pwd".into()),
        claims: None,
        expires_at: now() + 3600,
        resources: Some("https://api.example/".into()),
    }
}

fn contract(store: Arc<dyn Store>) {
    store.ping().unwrap();

    // One account per name in any case (`UsernameKey`, what the login throttle counts
    // by); the name keeps the case it was given.
    let capital = user("Alice");
    store.create_user(&capital).unwrap();
    for clash in ["alice", "ALICE", " aLiCe "] {
        assert!(
            matches!(store.create_user(&user(clash)), Err(StoreError::Conflict)),
            "{clash}"
        );
    }
    let found = store.find_user_by_username("ALICE").unwrap().unwrap();
    assert_eq!(found.id, capital.id);
    assert_eq!(found.username, "Alice");
    let accented = user("Émile");
    store.create_user(&accented).unwrap();
    assert!(matches!(
        store.create_user(&user("émile")),
        Err(StoreError::Conflict)
    ));
    assert_eq!(
        store.find_user_by_username("ÉMILE").unwrap().unwrap().id,
        accented.id
    );
    assert!(store.delete_user("aLICE").unwrap());
    assert!(store.delete_user("émile").unwrap());

    // Users
    let alice = user("alice");
    store.create_user(&alice).unwrap();
    assert!(matches!(
        store.create_user(&user("alice")),
        Err(StoreError::Conflict)
    ));
    assert_eq!(
        store.find_user(&alice.id).unwrap().unwrap().username,
        "alice"
    );
    assert_eq!(
        store.find_user_by_username("alice").unwrap().unwrap().id,
        alice.id
    );
    assert!(store.find_user_by_username("nobody").unwrap().is_none());
    assert!(store.set_password_hash("alice", "$argon2id$y", 5).unwrap());
    assert_eq!(
        store.find_user(&alice.id).unwrap().unwrap().password_hash,
        "$argon2id$y"
    );
    assert!(!store.set_password_hash("nobody", "h", 5).unwrap());
    // An upgrade replaces only the hash that verified (compare-and-set), and nothing else.
    let before = store.find_user(&alice.id).unwrap().unwrap();
    assert!(
        !store
            .upgrade_password_hash(&alice.id, "$stale", "$new")
            .unwrap()
    );
    assert!(
        store
            .upgrade_password_hash(&alice.id, "$argon2id$y", "$new")
            .unwrap()
    );
    assert!(
        !store
            .upgrade_password_hash(&alice.id, "$argon2id$y", "$newer")
            .unwrap()
    );
    let after = store.find_user(&alice.id).unwrap().unwrap();
    assert_eq!(after.password_hash, "$new");
    assert_eq!(
        (after.updated_at, after.credentials_changed_at),
        (before.updated_at, before.credentials_changed_at)
    );

    // Clients keep their redirect URIs in order, and their first-party mark.
    let registered = crate::helpers::register_client(ClientDraft {
        name: Some("RP".into()),
        redirect_uris: vec!["https://rp.example/b".into(), "https://rp.example/a".into()],
        post_logout_redirect_uris: vec!["https://rp.example/bye".into()],
        first_party: true,
        ..Default::default()
    });
    let client = registered.client;
    store.create_client(&client).unwrap();
    let found = store.find_client(&client.id).unwrap().unwrap();
    assert_eq!(found.redirect_uris, client.redirect_uris);
    assert_eq!(
        found.post_logout_redirect_uris,
        client.post_logout_redirect_uris
    );
    assert_eq!(found.secret_hash, client.secret_hash);
    assert!(found.first_party);
    assert_eq!(store.list_clients().unwrap().len(), 1);

    // Codes redeem once, even under concurrency, and record their grant atomically.
    store
        .insert_code(&code("h1", &client.id, &alice.id, "g1"))
        .unwrap();
    let stored = store.find_code("h1").unwrap().unwrap();
    assert_eq!(stored.nonce.as_deref(), Some("n"));
    assert_eq!(
        stored.resources.as_deref(),
        Some("https://api.example/ urn:example:b")
    );
    assert_eq!(
        stored.dpop_jkt.as_deref(),
        Some("0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I")
    );
    let winners: usize = std::thread::scope(|s| {
        let handles: Vec<_> = (0..8)
            .map(|_| {
                let store = store.clone();
                let g = grant("g1", &client.id, &alice.id);
                s.spawn(move || store.redeem_code("h1", &g, None, None, now()).unwrap() as usize)
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).sum()
    });
    assert_eq!(winners, 1);
    assert!(
        store
            .find_code("h1")
            .unwrap()
            .unwrap()
            .consumed_at
            .is_some()
    );
    assert!(
        store
            .find_grant("g1")
            .unwrap()
            .unwrap()
            .revoked_at
            .is_none()
    );
    assert_eq!(
        store
            .find_grant("g1")
            .unwrap()
            .unwrap()
            .resources
            .as_deref(),
        Some("https://api.example/")
    );
    store.revoke_grant("g1", 9).unwrap();
    assert_eq!(store.find_grant("g1").unwrap().unwrap().revoked_at, Some(9));

    // Long-expired codes are purged, others kept.
    assert_eq!(store.purge_expired(now() - 3600).unwrap(), 0);
    // The code and the grant g1 (whose absolute end is an hour away) go.
    assert_eq!(store.purge_expired(now() + 3601).unwrap(), 2);
    assert!(store.find_code("h1").unwrap().is_none());

    // Consents add up, and are not duplicated.
    let consent = |scope: &str, claims: &str| Consent {
        user_id: alice.id.clone(),
        client_id: client.id.clone(),
        scope: scope.into(),
        granted_at: 1,
        claims: claims.into(),
    };
    store.add_consent(&consent("openid", "")).unwrap();
    store
        .add_consent(&consent("openid profile", "phone_number"))
        .unwrap();
    let merged = store
        .add_consent(&consent("email openid", "email"))
        .unwrap();
    let found = store.find_consent(&alice.id, &client.id).unwrap().unwrap();
    assert_eq!(
        (found.scope.as_str(), found.claims.as_str()),
        ("email openid profile", "email phone_number")
    );
    assert_eq!((merged.scope, merged.claims), (found.scope, found.claims));

    // Keys: one per algorithm and generation; rotation retires the others later.
    let key = |kid: &str, generation| StoredKey {
        kid: kid.into(),
        alg: "ES256".into(),
        generation,
        private_key: vec![1, 2, 3],
        created_at: 1,
        activates_at: 1,
        retired_at: None,
    };
    let kids = |at: i64| -> Vec<String> {
        store
            .list_keys(at)
            .unwrap()
            .into_iter()
            .map(|k| k.kid)
            .collect()
    };
    store.insert_key(&key("k1", 1)).unwrap();
    assert!(matches!(
        store.insert_key(&key("k2", 1)),
        Err(StoreError::Conflict)
    ));
    assert_eq!(store.max_key_generation("ES256").unwrap(), 1);
    assert_eq!(store.max_key_generation("RS256").unwrap(), 0);
    store.rotate_key(&key("k3", 2), 100).unwrap();
    assert!(matches!(
        store.rotate_key(&key("k4", 2), 100),
        Err(StoreError::Conflict)
    ));
    assert_eq!(
        kids(99),
        ["k1", "k3"],
        "the old key stays published until it retires"
    );
    assert_eq!(kids(100), ["k3"]);
    assert_eq!(store.max_key_generation("ES256").unwrap(), 2);

    token_contract(&store, &client.id, &alice.id);
    audit_contract(&store, &client);
    import_contract(&store);
    link_contract(&store);

    // Removing a user removes what hangs off it; removing a client forgets it at once.
    assert!(store.delete_user("alice").unwrap());
    assert!(store.find_consent(&alice.id, &client.id).unwrap().is_none());
    assert!(store.find_code("h1").unwrap().is_none());
    assert!(store.delete_client(&client.id).unwrap());
    assert!(store.find_client(&client.id).unwrap().is_none());
    assert!(!store.delete_client(&client.id).unwrap());
}

/// Users to import, then (optionally) a refusal of the import.
struct Importing {
    users: std::vec::IntoIter<User>,
    abandon: bool,
}

impl portcullis::store::UserImport for Importing {
    fn next_user(
        &mut self,
    ) -> Option<Result<portcullis::store::ImportedUser, portcullis::store::ImportAbandoned>> {
        match self.users.next() {
            Some(user) => Some(Ok(portcullis::store::ImportedUser {
                user,
                groups: vec![portcullis::domain::GroupName::parse("Staff").unwrap()],
            })),
            None if self.abandon => {
                self.abandon = false;
                Some(Err(portcullis::store::ImportAbandoned))
            }
            None => None,
        }
    }

    fn joined_group(&mut self, _: &str, _: bool) {}

    fn event(&self) -> NewAuditEvent {
        event("users.imported", "file")
    }
}

/// An import is written whole with its event, or not at all.
fn import_contract(store: &Arc<dyn Store>) {
    let importing = |names: &[&str], abandon: bool| {
        store.import_users(&mut Importing {
            users: names
                .iter()
                .map(|n| user(n))
                .collect::<Vec<_>>()
                .into_iter(),
            abandon,
        })
    };
    let imported = |name: &str| store.find_user_by_username(name).unwrap().is_some();
    let before = store.list_audit_events(None, 1).unwrap();
    assert!(!importing(&["imp1", "imp2"], true).unwrap());
    assert!(!imported("imp1") && !imported("imp2"));
    // A taken name (in another case) rolls back those before it.
    store.create_user(&user("Taken")).unwrap();
    assert!(matches!(
        importing(&["imp1", "TAKEN", "imp2"], false),
        Err(StoreError::Conflict)
    ));
    assert!(!imported("imp1") && !imported("imp2"));
    assert!(
        store.find_group_by_name("staff").unwrap().is_none(),
        "nor the group the users were to join"
    );
    assert_eq!(
        format!("{:?}", store.list_audit_events(None, 1).unwrap()),
        format!("{before:?}"),
        "no event either"
    );
    assert!(importing(&["imp1", "imp2"], false).unwrap());
    assert!(imported("imp1") && imported("imp2"));
    assert_eq!(
        store.list_audit_events(None, 1).unwrap()[0].action,
        "users.imported"
    );
    // The group was made once, by the first user that names it, and both joined it.
    let staff = store.find_group_by_name("STAFF").unwrap().unwrap();
    assert_eq!(staff.name, "Staff");
    let members: Vec<String> = store
        .list_group_members(&staff.id)
        .unwrap()
        .into_iter()
        .map(|m| m.username)
        .collect();
    assert_eq!(members, ["imp1", "imp2"]);
    store
        .apply_audited(
            portcullis::store::AdminChange::DeleteGroup(&staff.id),
            &event("group.deleted", &staff.id),
        )
        .unwrap();
    for name in ["imp1", "imp2", "taken"] {
        assert!(store.delete_user(name).unwrap());
    }
}

/// A mailed link is used once, however many use it at once; its user's going takes it.
fn link_contract(store: &Arc<dyn Store>) {
    let owner = user("link-owner");
    store.create_user(&owner).unwrap();
    let link = portcullis::store::ActionLink {
        token_hash: "link-hash-1".into(),
        purpose: "password_reset".into(),
        user_id: Some(owner.id.clone()),
        email: "owner@example.com".into(),
        created_at: 100,
        expires_at: 200,
        used_at: None,
        created_by: None,
    };
    store.insert_link(&link).unwrap();
    assert_eq!(
        store.find_link("link-hash-1").unwrap().as_ref(),
        Some(&link)
    );
    assert!(
        store
            .use_link("link-hash-1", "invitation", 150)
            .unwrap()
            .is_none()
    );
    assert!(
        store
            .use_link("link-hash-1", "password_reset", 200)
            .unwrap()
            .is_none(),
        "expired"
    );
    // Eight threads race: one wins.
    let winners: usize = std::thread::scope(|scope| {
        let racers: Vec<_> = (0..8)
            .map(|_| scope.spawn(|| store.use_link("link-hash-1", "password_reset", 150)))
            .collect();
        racers
            .into_iter()
            .map(|r| usize::from(r.join().unwrap().unwrap().is_some()))
            .sum()
    });
    assert_eq!(winners, 1);
    assert_eq!(
        store.find_link("link-hash-1").unwrap().unwrap().used_at,
        Some(150)
    );

    let second = portcullis::store::ActionLink {
        token_hash: "link-hash-2".into(),
        ..link.clone()
    };
    store.insert_link(&second).unwrap();
    assert_eq!(
        store
            .retire_links(&owner.id, "password_reset", 160)
            .unwrap(),
        1
    );
    assert!(
        store
            .use_link("link-hash-2", "password_reset", 170)
            .unwrap()
            .is_none()
    );
    let third = portcullis::store::ActionLink {
        token_hash: "link-hash-3".into(),
        ..link
    };
    store.insert_link(&third).unwrap();
    assert!(store.delete_user("link-owner").unwrap());
    assert!(
        store.find_link("link-hash-3").unwrap().is_none(),
        "gone with its user"
    );

    // An invitation is its link, its mail and its event, or none of them.
    let invitation = portcullis::store::ActionLink {
        token_hash: "invite-hash-1".into(),
        purpose: "invitation".into(),
        user_id: None,
        email: "new@example.org".into(),
        created_at: 100,
        expires_at: 200,
        used_at: None,
        created_by: Some("cli".into()),
    };
    let mail = portcullis::store::QueuedMail {
        id: "invite-mail-1".into(),
        kind: "invitation".into(),
        recipient_domain: "example.org".into(),
        sealed_message: Some("sealed".into()),
        created_at: 100,
        next_attempt_at: 100,
        attempts: 0,
        sent_at: None,
        failed_at: None,
        last_error: None,
    };
    store.enqueue_mail(&mail).unwrap();
    let before = store.list_audit_events(None, 1).unwrap();
    let clash = portcullis::store::AdminChange::Invite {
        link: &invitation,
        mail: &mail,
    };
    assert!(
        store
            .apply_audited(clash, &event("user.invited", "new@example.org"))
            .is_err()
    );
    assert!(
        store.find_link("invite-hash-1").unwrap().is_none(),
        "no link without its mail"
    );
    assert_eq!(
        format!("{:?}", store.list_audit_events(None, 1).unwrap()),
        format!("{before:?}")
    );
    let mail_2 = portcullis::store::QueuedMail {
        id: "invite-mail-2".into(),
        ..mail
    };
    let invite = portcullis::store::AdminChange::Invite {
        link: &invitation,
        mail: &mail_2,
    };
    assert!(
        store
            .apply_audited(invite, &event("user.invited", "new@example.org"))
            .unwrap()
            .is_some()
    );
    assert!(store.find_link("invite-hash-1").unwrap().is_some());
    assert!(store.find_mail("invite-mail-2").unwrap().is_some());
    assert_eq!(
        store.list_audit_events(None, 1).unwrap()[0].action,
        "user.invited"
    );
}

fn refresh(hash: &str, grant: &str, expires_at: i64) -> RefreshToken {
    RefreshToken {
        token_hash: hash.into(),
        grant_id: grant.into(),
        created_at: 1,
        expires_at,
        consumed_at: None,
        successor_hash: None,
    }
}

/// Refresh rotation, family revocation, the access-token denylist and assertion ids.
fn token_contract(store: &Arc<dyn Store>, client_id: &str, user_id: &str) {
    // A code redeemed with a first refresh token records both in one step.
    store
        .insert_code(&code("h2", client_id, user_id, "g2"))
        .unwrap();
    let first = refresh("r1", "g2", now() + 600);
    assert!(
        store
            .redeem_code(
                "h2",
                &grant("g2", client_id, user_id),
                Some(&first),
                None,
                now()
            )
            .unwrap()
    );
    let (found, grant_of) = store.find_refresh_token("r1").unwrap().unwrap();
    assert_eq!(found, first);
    assert_eq!(grant_of.id, "g2");
    assert_eq!(grant_of.nonce.as_deref(), Some("n"));
    assert_eq!(grant_of.auth_time, 1);
    assert!(store.find_refresh_token("nope").unwrap().is_none());

    // Of concurrent rotations exactly one wins; it records its successor.
    let winners: usize = std::thread::scope(|s| {
        let handles: Vec<_> = (0..8)
            .map(|i| {
                let store = store.clone();
                s.spawn(move || {
                    let successor = refresh(&format!("r2-{i}"), "g2", now() + 600);
                    store
                        .rotate_refresh_token("r1", &successor, None, 50)
                        .unwrap() as usize
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).sum()
    });
    assert_eq!(winners, 1);
    let (used, _) = store.find_refresh_token("r1").unwrap().unwrap();
    assert_eq!(used.consumed_at, Some(50));
    let successor = used.successor_hash.unwrap();
    assert!(store.find_refresh_token(&successor).unwrap().is_some());
    let others = (0..8)
        .map(|i| format!("r2-{i}"))
        .filter(|h| *h != successor)
        .filter(|h| store.find_refresh_token(h).unwrap().is_some())
        .count();
    assert_eq!(others, 0, "losers write nothing");

    // Access tokens: live while their grant is; denylisted ones never again.
    assert!(store.access_token_live("jti-1", Some("g2"), now()).unwrap());
    assert!(store.access_token_live("jti-1", None, now()).unwrap());
    store.revoke_access_token("jti-1", now() + 60).unwrap();
    store.revoke_access_token("jti-1", now() + 60).unwrap();
    assert!(!store.access_token_live("jti-1", None, now()).unwrap());
    assert!(
        !store
            .access_token_live("jti-2", Some("no-such-grant"), now())
            .unwrap()
    );
    assert!(
        !store
            .access_token_live("jti-2", Some("g2"), now() + 3600)
            .unwrap(),
        "a grant past its absolute end backs nothing"
    );

    // Ending the session's grants ends the family.
    assert_eq!(store.revoke_session_grants("sid-1", 70).unwrap(), 1);
    assert_eq!(store.revoke_session_grants("sid-1", 71).unwrap(), 0);
    let (_, revoked) = store.find_refresh_token(&successor).unwrap().unwrap();
    assert_eq!(revoked.revoked_at, Some(70));
    assert!(!store.access_token_live("jti-3", Some("g2"), now()).unwrap());
    store
        .insert_code(&code("h3", client_id, user_id, "g3"))
        .unwrap();
    assert!(
        store
            .redeem_code("h3", &grant("g3", client_id, user_id), None, None, now())
            .unwrap()
    );
    // Ending everything of the user ends its grants, those of unrecorded sessions too.
    store.end_user_sessions(user_id, 80).unwrap();
    assert_eq!(
        store.find_grant("g3").unwrap().unwrap().revoked_at,
        Some(80)
    );

    // Assertion ids are single use.
    assert!(store.use_assertion_id("a1", now() + 60).unwrap());
    assert!(!store.use_assertion_id("a1", now() + 60).unwrap());
    assert!(store.use_assertion_id("a2", now() + 60).unwrap());

    // Facts keep their first value.
    assert_eq!(store.remember_fact("f", "one").unwrap(), "one");
    assert_eq!(store.remember_fact("f", "two").unwrap(), "one");

    // Expired denylist entries, assertion ids and refresh tokens are purged.
    assert!(store.purge_expired(now() + 4000).unwrap() >= 4);
    assert!(store.use_assertion_id("a1", now() + 60).unwrap());
    assert!(store.access_token_live("jti-1", None, now()).unwrap());
}

/// Whether an audited change applied (`None`: nothing to change).
fn applied(store: &Arc<dyn Store>, change: AdminChange<'_>, event: NewAuditEvent) -> bool {
    store.apply_audited(change, &event).unwrap().is_some()
}

fn event(action: &str, target: &str) -> NewAuditEvent {
    NewAuditEvent {
        at: now(),
        actor: "cli".into(),
        action: action.into(),
        target: Some(target.into()),
        address: None,
        details: Some("{}".into()),
    }
}

/// Administrative changes and their audit events: both or neither; users paged and
/// searched with LIKE's wildcards taken literally.
fn audit_contract(store: &Arc<dyn Store>, client: &portcullis::store::Client) {
    let actions = || -> Vec<String> {
        store
            .list_audit_events(None, 100)
            .unwrap()
            .into_iter()
            .map(|e| e.action)
            .collect()
    };
    let mut bob = user("bob_100%");
    bob.email = Some("Bob@Example.com".into());
    assert!(applied(
        store,
        AdminChange::CreateUser(&bob),
        event("user.created", &bob.id)
    ));
    // A conflicting insert writes neither the user nor the event.
    let clash = user("bob_100%");
    assert!(matches!(
        store.apply_audited(
            AdminChange::CreateUser(&clash),
            &event("user.created", &clash.id)
        ),
        Err(StoreError::Conflict)
    ));
    // So does one that differs only in case (the admin API's and the console's way in).
    let shouted = user("BOB_100%");
    assert!(matches!(
        store.apply_audited(
            AdminChange::CreateUser(&shouted),
            &event("user.created", &shouted.id)
        ),
        Err(StoreError::Conflict)
    ));
    assert_eq!(actions(), ["user.created"]);
    // A change to nothing is no change and no event.
    let ghost = user("ghost");
    assert!(!applied(
        store,
        AdminChange::UpdateUser(&ghost),
        event("user.updated", "ghost")
    ));
    assert!(!applied(
        store,
        AdminChange::DeleteClient("nope"),
        event("client.deleted", "nope")
    ));
    assert_eq!(actions(), ["user.created"]);

    bob.is_admin = true;
    bob.disabled_at = Some(5);
    assert!(applied(
        store,
        AdminChange::UpdateUser(&bob),
        event("user.updated", &bob.id)
    ));
    let stored = store.find_user(&bob.id).unwrap().unwrap();
    assert!(stored.is_admin);
    assert_eq!(stored.disabled_at, Some(5));

    let find = |search: Option<&str>, after: Option<&str>| -> Vec<String> {
        store
            .find_users(&UserQuery {
                search,
                after,
                limit: 10,
            })
            .unwrap()
            .into_iter()
            .map(|u| u.username)
            .collect()
    };
    assert_eq!(find(Some("example.COM"), None), ["bob_100%"]);
    assert_eq!(find(Some("b_1"), None), ["bob_100%"]);
    assert_eq!(find(Some("0%"), None), ["bob_100%"]);
    assert!(find(Some("b%1"), None).is_empty(), "% is literal");
    assert!(find(Some("bo_"), None).is_empty(), "_ is literal");
    assert_eq!(find(None, Some("alice")), ["bob_100%"]);

    let mut changed = client.clone();
    changed.name = "Renamed".into();
    changed.redirect_uris = vec!["https://rp.example/other".into()];
    assert!(applied(
        store,
        AdminChange::UpdateClient(&changed),
        event("client.updated", &client.id)
    ));
    let read = store.find_client(&client.id).unwrap().unwrap();
    assert_eq!(read.name, "Renamed");
    assert_eq!(read.redirect_uris, ["https://rp.example/other"]);
    assert!(applied(
        store,
        AdminChange::DeleteUser(&bob.id),
        event("user.deleted", &bob.id)
    ));
    assert!(store.find_user(&bob.id).unwrap().is_none());

    // Newest first, paged by id.
    let all = store.list_audit_events(None, 100).unwrap();
    assert_eq!(all.len(), 4);
    assert!(all.windows(2).all(|w| w[0].id > w[1].id));
    let older = store.list_audit_events(Some(all[1].id), 1).unwrap();
    assert_eq!(older[0].id, all[2].id);
    store
        .record_audit_event(&event("key.rotated", "k9"))
        .unwrap();
    assert_eq!(actions()[0], "key.rotated");

    // `audit_retention`: events recorded before the cut go, the rest stay.
    let old = NewAuditEvent {
        at: now() - 100 * 86_400,
        ..event("key.rotated", "k-old")
    };
    store.record_audit_event(&old).unwrap();
    let before = store.list_audit_events(None, 100).unwrap().len();
    assert_eq!(store.purge_audit_events(now() - 90 * 86_400).unwrap(), 1);
    let after = store.list_audit_events(None, 100).unwrap();
    assert_eq!(after.len(), before - 1);
    assert!(after.iter().all(|e| e.target.as_deref() != Some("k-old")));
    assert_eq!(store.purge_audit_events(now() - 90 * 86_400).unwrap(), 0);
}

#[test]
fn sqlite_store_meets_the_storage_contract() {
    let dir = tempfile::TempDir::new().unwrap();
    let store = SqlStore::open(&format!("sqlite://{}/contract.db", dir.path().display())).unwrap();
    contract(Arc::new(store));
}

#[test]
fn postgres_store_meets_the_storage_contract() {
    let Some(db) = TempDatabase::create() else {
        return;
    };
    let store = SqlStore::open(&db.url).unwrap();
    contract(Arc::new(store));
}

#[test]
fn migrations_are_idempotent_on_both_backends() {
    let dir = tempfile::TempDir::new().unwrap();
    let sqlite = SqlStore::open(&format!("sqlite://{}/m.db", dir.path().display())).unwrap();
    assert!(sqlite.migrate().unwrap().is_empty());
    if let Some(db) = TempDatabase::create() {
        let pg = SqlStore::open(&db.url).unwrap();
        assert!(pg.migrate().unwrap().is_empty());
    }
}

/// Users of a database from before usernames were keyed: names that fold alike, the
/// newer of a pair inserted first, and one name alone.
const USERS_BEFORE_USERNAME_KEYS: &str = "
    INSERT INTO users (id, username, password_hash, created_at, updated_at) VALUES
        ('u-alice-2', 'alice', 'h1', 200, 200),
        ('u-alice-1', 'Alice', 'h2', 100, 100),
        ('u-alice-3', 'ALICE', 'h3', 300, 300),
        ('u-emile-2', 'ÉMILE', 'h4', 200, 200),
        ('u-emile-1', 'Émile', 'h5', 100, 100),
        ('u-bob', 'bob', 'h6', 100, 100);
";

/// Applies the migrations that come before `username_key`, and adds
/// `USERS_BEFORE_USERNAME_KEYS`.
fn users_before_username_keys<DB, C>(conn: &mut C, migrations: EmbeddedMigrations)
where
    DB: diesel::backend::Backend,
    C: MigrationHarness<DB> + SimpleConnection,
{
    for migration in conn.pending_migrations(migrations).unwrap() {
        if migration.name().to_string().ends_with("_username_key") {
            break;
        }
        conn.run_migration(&*migration).unwrap();
    }
    conn.batch_execute(USERS_BEFORE_USERNAME_KEYS).unwrap();
}

/// After the migration: nothing lost, the oldest of each clash keeps the name, the others
/// are reached by their id (README, "Usernames").
fn check_username_keys(store: &Arc<dyn Store>) {
    let by_name = |name: &str| store.find_user_by_username(name).unwrap().map(|u| u.id);
    assert_eq!(by_name("alice").as_deref(), Some("u-alice-1"));
    assert_eq!(by_name("ALICE").as_deref(), Some("u-alice-1"));
    assert_eq!(by_name("u-alice-2").as_deref(), Some("u-alice-2"));
    assert_eq!(by_name("u-alice-3").as_deref(), Some("u-alice-3"));
    assert_eq!(by_name("émile").as_deref(), Some("u-emile-1"));
    assert_eq!(by_name("Émile").as_deref(), Some("u-emile-1"));
    assert_eq!(by_name("u-emile-2").as_deref(), Some("u-emile-2"));
    assert_eq!(by_name("Bob").as_deref(), Some("u-bob"));
    let mut rows: Vec<(String, String, String)> = store
        .list_users()
        .unwrap()
        .into_iter()
        .map(|u| (u.id, u.username, u.password_hash))
        .collect();
    rows.sort();
    let expected = [
        ("u-alice-1", "Alice", "h2"),
        ("u-alice-2", "alice", "h1"),
        ("u-alice-3", "ALICE", "h3"),
        ("u-bob", "bob", "h6"),
        ("u-emile-1", "Émile", "h5"),
        ("u-emile-2", "ÉMILE", "h4"),
    ]
    .map(|(id, name, hash)| (id.to_owned(), name.to_owned(), hash.to_owned()));
    assert_eq!(rows, expected);
    assert!(matches!(
        store.create_user(&user("BOB")),
        Err(StoreError::Conflict)
    ));
    store.create_user(&user("carol")).unwrap();
}

#[test]
fn usernames_that_fold_alike_migrate_without_failing_or_losing_an_account() {
    let dir = tempfile::TempDir::new().unwrap();
    let path = format!("{}/before.db", dir.path().display());
    {
        let mut conn = diesel::SqliteConnection::establish(&path).unwrap();
        users_before_username_keys::<diesel::sqlite::Sqlite, _>(
            &mut conn,
            portcullis::store::sql::SQLITE_MIGRATIONS,
        );
    }
    let sqlite = SqlStore::open(&format!("sqlite://{path}")).unwrap();
    assert!(sqlite.migrate().unwrap().is_empty());
    check_username_keys(&(Arc::new(sqlite) as Arc<dyn Store>));

    let Some(db) = TempDatabase::create() else {
        return;
    };
    {
        let mut conn = diesel::PgConnection::establish(&db.url).unwrap();
        users_before_username_keys::<diesel::pg::Pg, _>(
            &mut conn,
            portcullis::store::sql::POSTGRES_MIGRATIONS,
        );
    }
    let pg = SqlStore::open(&db.url).unwrap();
    check_username_keys(&(Arc::new(pg) as Arc<dyn Store>));
}
