//! A rolling upgrade on PostgreSQL: instances of the previous version keep writing beside
//! new ones until the last of them stops. What they write must still work.

use diesel::result::{DatabaseErrorKind, Error};
use diesel::{Connection, PgConnection, RunQueryDsl};
use portcullis::store::UserStore;
use portcullis::store::sql::SqlStore;

use crate::backends::TempDatabase;

/// A user as instances from before `2026-12-05-000009_username_key` inserted one: every
/// column they knew, and no `username_key`.
fn insert_as_an_older_instance(
    conn: &mut PgConnection,
    id: &str,
    username: &str,
) -> Result<usize, Error> {
    diesel::sql_query(
        "INSERT INTO users (id, username, password_hash, email, email_verified, created_at, \
         updated_at, credentials_changed_at, is_admin, disabled_at) \
         VALUES ($1, $2, '$argon2id$x', NULL, FALSE, 100, 100, 0, FALSE, NULL)",
    )
    .bind::<diesel::sql_types::Text, _>(id)
    .bind::<diesel::sql_types::Text, _>(username)
    .execute(conn)
}

#[test]
fn a_user_an_older_instance_creates_is_found_by_its_name_in_any_case() {
    let Some(db) = TempDatabase::create() else {
        return;
    };
    let store = SqlStore::open(&db.url).unwrap();
    let mut older = PgConnection::establish(&db.url).unwrap();
    let found = |name: &str| store.find_user_by_username(name).unwrap().map(|u| u.id);

    insert_as_an_older_instance(&mut older, "u-alice", "Alice").unwrap();
    assert_eq!(found("alice").as_deref(), Some("u-alice"));
    assert_eq!(found("ALICE").as_deref(), Some("u-alice"));

    // Uniqueness without regard to case holds for older instances too: they are refused
    // as for a name taken, which they know how to answer.
    let clash = insert_as_an_older_instance(&mut older, "u-alice-2", "aLICE");
    assert!(
        matches!(
            clash,
            Err(Error::DatabaseError(DatabaseErrorKind::UniqueViolation, _))
        ),
        "{clash:?}"
    );

    // A name SQL cannot fold as Rust does waits, unreachable by any name, for the next
    // start of an instance to key it.
    insert_as_an_older_instance(&mut older, "u-emile", "Émile").unwrap();
    assert_eq!(found("Émile"), None);
    assert_eq!(found("u-emile#UNSETTLED"), None, "nor by its mark");
    let restarted = SqlStore::open(&db.url).unwrap();
    let user = restarted.find_user_by_username("ÉMILE").unwrap().unwrap();
    assert_eq!(
        (user.id.as_str(), user.username.as_str()),
        ("u-emile", "Émile")
    );
}
