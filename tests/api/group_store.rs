//! The groups storage contract (`GroupStore` and the group changes of `apply_audited`),
//! run against every backend: names unique in any case, memberships gone with their
//! group or their user, every change with its audit event or neither, and the `groups`
//! claim's lookup seeing a change at once even where it was cached.

use std::sync::Arc;

use portcullis::domain::{GroupName, now};
use portcullis::protocol::registration::ClientDraft;
use portcullis::store::sql::SqlStore;
use portcullis::store::{AdminChange, Grant, Group, NewAuditEvent, Store, StoreError, User};

use crate::backends::TempDatabase;

fn user(store: &dyn Store, name: &str) -> User {
    let user = User::new(
        portcullis::crypto::tokens::random_uuid(),
        name.into(),
        "$argon2id$x".into(),
        now(),
    );
    store.create_user(&user).unwrap();
    user
}

fn group(name: &str, at: i64) -> Group {
    Group::new(
        portcullis::crypto::tokens::random_uuid(),
        &GroupName::parse(name).unwrap(),
        at,
    )
}

fn event(action: &str) -> NewAuditEvent {
    NewAuditEvent {
        at: 1_000,
        actor: "cli".into(),
        action: action.into(),
        target: None,
        address: None,
        details: None,
    }
}

/// `Ok(true)`: applied and recorded; `Ok(false)`: nothing to change.
fn apply(store: &dyn Store, change: AdminChange<'_>, action: &str) -> Result<bool, StoreError> {
    store
        .apply_audited(change, &event(action))
        .map(|ended| ended.is_some())
}

fn recorded(store: &dyn Store) -> Vec<String> {
    let mut actions: Vec<String> = store
        .list_audit_events(None, 200)
        .unwrap()
        .into_iter()
        .map(|e| e.action)
        .collect();
    actions.reverse();
    actions
}

fn member(store: &dyn Store, group: &Group, user: &User) -> Result<bool, StoreError> {
    let change = AdminChange::AddGroupMember {
        group_id: &group.id,
        user_id: &user.id,
    };
    apply(store, change, "group.member_added")
}

fn names(listed: Vec<Group>) -> Vec<String> {
    listed.into_iter().map(|g| g.name).collect()
}

/// A live grant of `user`, seen live by the liveness cache (as userinfo sees it) so that
/// its groups are cached once read.
fn live_grant(store: &dyn Store, user: &User) -> String {
    let client = crate::helpers::register_client(ClientDraft {
        redirect_uris: vec!["https://rp.example/cb".into()],
        ..ClientDraft::default()
    })
    .client;
    store.create_client(&client).unwrap();
    let id = portcullis::crypto::tokens::random_token(16);
    let grant = Grant {
        id: id.clone(),
        client_id: client.id,
        user_id: user.id.clone(),
        scope: "openid groups".into(),
        session_id: None,
        created_at: now(),
        revoked_at: None,
        auth_time: now(),
        nonce: None,
        acr: None,
        amr: None,
        claims: None,
        expires_at: now() + 3600,
        resources: None,
    };
    assert!(store.create_grant(&grant).unwrap());
    assert!(store.access_token_live("jti-g", Some(&id), now()).unwrap());
    id
}

fn contract(store: Arc<dyn Store>) {
    let store = &*store;
    let alice = user(store, "alice");
    let bob = user(store, "Bob");
    let carol = user(store, "carol");
    let ops = group("Ops", 10);
    let admins = group("admins", 11);
    assert!(apply(store, AdminChange::CreateGroup(&ops), "group.created").unwrap());
    assert!(apply(store, AdminChange::CreateGroup(&admins), "group.created").unwrap());
    // One group per name, whatever its case or surrounding space.
    for clash in ["ADMINS", " ops "] {
        assert!(matches!(
            apply(
                store,
                AdminChange::CreateGroup(&group(clash, 12)),
                "group.created"
            ),
            Err(StoreError::Conflict)
        ));
    }
    assert_eq!(store.find_group(&ops.id).unwrap(), Some(ops.clone()));
    assert_eq!(store.find_group_by_name("OPS").unwrap(), Some(ops.clone()));
    assert_eq!(store.find_group_by_name("nobody").unwrap(), None);

    // Members: each once; a user or group that is not there is nothing to change.
    assert!(member(store, &ops, &alice).unwrap());
    assert!(member(store, &ops, &bob).unwrap());
    assert!(member(store, &admins, &alice).unwrap());
    assert!(matches!(
        member(store, &admins, &alice),
        Err(StoreError::Conflict)
    ));
    let ghost = User::new("ghost".into(), "ghost".into(), String::new(), 1);
    assert!(!member(store, &admins, &ghost).unwrap());
    assert!(!member(store, &group("nowhere", 1), &alice).unwrap());

    let listed: Vec<(String, i64)> = store
        .list_groups()
        .unwrap()
        .into_iter()
        .map(|s| (s.group.name, s.members))
        .collect();
    assert_eq!(
        listed,
        [("admins".to_owned(), 1), ("Ops".to_owned(), 2)],
        "by name in any case, with member counts"
    );
    assert_eq!(store.count_group_members(&ops.id).unwrap(), 2);
    let members: Vec<(String, String)> = store
        .list_group_members(&ops.id)
        .unwrap()
        .into_iter()
        .map(|m| (m.username, m.user_id))
        .collect();
    assert_eq!(
        members,
        [
            ("alice".to_owned(), alice.id.clone()),
            ("Bob".to_owned(), bob.id.clone())
        ]
    );
    assert_eq!(
        names(store.list_user_groups(&alice.id).unwrap()),
        ["admins", "Ops"]
    );
    assert!(store.list_user_groups(&carol.id).unwrap().is_empty());

    // The claim: read once, cached with the grant, and seen changed at once.
    let grant = live_grant(store, &alice);
    assert_eq!(store.grant_group_names(&grant).unwrap(), ["admins", "Ops"]);
    assert_eq!(store.grant_group_names(&grant).unwrap(), ["admins", "Ops"]);
    assert!(store.grant_group_names("no-such-grant").unwrap().is_empty());

    // Renamed: the case alone, or another name; never one another group has.
    let operations = ops.renamed(&GroupName::parse("Operations").unwrap(), 20);
    assert!(
        apply(
            store,
            AdminChange::RenameGroup(&operations),
            "group.renamed"
        )
        .unwrap()
    );
    assert_eq!(
        store.grant_group_names(&grant).unwrap(),
        ["admins", "Operations"]
    );
    let shouted = admins.renamed(&GroupName::parse("ADMINS").unwrap(), 21);
    assert!(apply(store, AdminChange::RenameGroup(&shouted), "group.renamed").unwrap());
    let taken = shouted.renamed(&GroupName::parse("operations").unwrap(), 22);
    assert!(matches!(
        apply(store, AdminChange::RenameGroup(&taken), "group.renamed"),
        Err(StoreError::Conflict)
    ));
    let found = store.find_group(&admins.id).unwrap().unwrap();
    assert_eq!((found.name.as_str(), found.updated_at), ("ADMINS", 21));
    assert!(
        !apply(
            store,
            AdminChange::RenameGroup(&group("nowhere", 1)),
            "group.renamed"
        )
        .unwrap()
    );

    // Removed: once.
    let remove = |g: &Group, u: &User| {
        apply(
            store,
            AdminChange::RemoveGroupMember {
                group_id: &g.id,
                user_id: &u.id,
            },
            "group.member_removed",
        )
        .unwrap()
    };
    assert!(remove(&admins, &alice));
    assert!(!remove(&admins, &alice));
    assert_eq!(store.grant_group_names(&grant).unwrap(), ["Operations"]);

    // A user's memberships go with the user, a group's with the group.
    assert!(member(store, &admins, &carol).unwrap());
    assert!(store.delete_user("Bob").unwrap());
    assert_eq!(store.count_group_members(&ops.id).unwrap(), 1);
    assert!(apply(store, AdminChange::DeleteGroup(&admins.id), "group.deleted").unwrap());
    assert!(!apply(store, AdminChange::DeleteGroup(&admins.id), "group.deleted").unwrap());
    assert!(store.list_user_groups(&carol.id).unwrap().is_empty());
    assert!(store.find_group(&admins.id).unwrap().is_none());
    // And a deleted group frees its name.
    assert!(
        apply(
            store,
            AdminChange::CreateGroup(&group("Admins", 30)),
            "group.created"
        )
        .unwrap()
    );

    // Every change that happened was recorded with it, and none that did not.
    assert_eq!(
        recorded(store),
        [
            "group.created",
            "group.created",
            "group.member_added",
            "group.member_added",
            "group.member_added",
            "group.renamed",
            "group.renamed",
            "group.member_removed",
            "group.member_added",
            "group.deleted",
            "group.created",
        ]
    );
}

#[test]
fn sqlite_store_meets_the_group_contract() {
    let dir = tempfile::TempDir::new().unwrap();
    let store = SqlStore::open(&format!("sqlite://{}/groups.db", dir.path().display())).unwrap();
    contract(Arc::new(store));
}

#[test]
fn postgres_store_meets_the_group_contract() {
    let Some(db) = TempDatabase::create() else {
        return;
    };
    contract(Arc::new(SqlStore::open(&db.url).unwrap()));
}
