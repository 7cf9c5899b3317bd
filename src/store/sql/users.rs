use diesel::prelude::*;

use super::{AnyConnection, SqlStore};
use crate::domain::{UnixTime, UsernameKey};
use crate::store::schema::{grants, users};
use crate::store::{StoreResult, User, UserQuery, UserStore};

/// `Conflict` when the username is taken in any case: `username_key` is unique.
pub(super) fn insert_user(conn: &mut AnyConnection, user: &User) -> StoreResult<()> {
    let key = UsernameKey::new(&user.username);
    diesel::insert_into(users::table)
        .values((user, users::username_key.eq(key.as_str())))
        .execute(conn)?;
    Ok(())
}

/// What the migration `username_key` left as a row's key when SQL could not compute it
/// (and what the trigger of `username_key_trigger` gives a user an instance from before
/// it adds with such a name): the row's id and this suffix. No key has it (keys are lower case), so nobody signs in
/// by it before `settle_username_keys` has run.
const UNSETTLED: &str = "#UNSETTLED";

/// Gives the usernames the migration could not key their `UsernameKey`. SQL's `lower`
/// folds case as Rust does for ASCII letters only (SQLite's leaves other letters alone,
/// PostgreSQL's depends on the database's locale), so the migration keyed ASCII names
/// itself and marked the others (`UNSETTLED`). This runs after the migrations at every
/// start, and finds nothing once they are settled. Oldest first, as in the migration: a
/// name whose key another account already has gets its own id as its key (README,
/// "Usernames").
pub(super) fn settle_username_keys(conn: &mut AnyConnection) -> StoreResult<()> {
    use diesel::result::{DatabaseErrorKind, Error};
    // The literal LIKE is the predicate of the partial index `users_unsettled_key`
    // (migration `scale_indexes`): it makes this, which runs at the start of every
    // command, a look at an empty index instead of a scan of every user. A bound
    // parameter would not do: neither backend proves the index applies to one.
    let unsettled: Vec<(String, String)> = users::table
        .filter(diesel::dsl::sql::<diesel::sql_types::Bool>(
            "users.username_key LIKE '%#UNSETTLED'",
        ))
        .filter(users::username_key.eq(users::id.concat(UNSETTLED)))
        .order((users::created_at, users::id))
        .select((users::id, users::username))
        .load(conn)?;
    for (id, username) in unsettled {
        let key = UsernameKey::new(&username);
        let keyed = diesel::update(users::table.find(&id))
            .set(users::username_key.eq(key.as_str()))
            .execute(conn);
        match keyed {
            Ok(_) => {}
            Err(Error::DatabaseError(DatabaseErrorKind::UniqueViolation, _)) => {
                diesel::update(users::table.find(&id))
                    .set(users::username_key.eq(&id))
                    .execute(conn)?;
            }
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

/// Everything but the id, username, password and creation time (the admin's `mfa_required`
/// included).
pub(super) fn update_user_in(
    conn: &mut AnyConnection,
    user: &User,
    now: UnixTime,
) -> StoreResult<bool> {
    let n = diesel::update(users::table.find(&user.id))
        .set((
            (
                users::name.eq(&user.name),
                users::given_name.eq(&user.given_name),
                users::family_name.eq(&user.family_name),
                users::middle_name.eq(&user.middle_name),
                users::nickname.eq(&user.nickname),
                users::profile.eq(&user.profile),
                users::picture.eq(&user.picture),
                users::website.eq(&user.website),
                users::email.eq(&user.email),
                users::email_verified.eq(user.email_verified),
                users::gender.eq(&user.gender),
                users::birthdate.eq(&user.birthdate),
            ),
            (
                users::zoneinfo.eq(&user.zoneinfo),
                users::locale.eq(&user.locale),
                users::phone_number.eq(&user.phone_number),
                users::phone_number_verified.eq(user.phone_number_verified),
                users::address.eq(&user.address),
                users::is_admin.eq(user.is_admin),
                users::disabled_at.eq(user.disabled_at),
                users::mfa_required.eq(user.mfa_required),
                users::updated_at.eq(now),
            ),
        ))
        .execute(conn)?;
    Ok(n > 0)
}

/// Sets the password of the user `id`; sessions signed in before `now` no longer count.
pub(super) fn set_password_in(
    conn: &mut AnyConnection,
    id: &str,
    hash: &str,
    now: UnixTime,
) -> StoreResult<bool> {
    let n = diesel::update(users::table.find(id))
        .set((
            users::password_hash.eq(hash),
            users::updated_at.eq(now),
            users::credentials_changed_at.eq(now),
        ))
        .execute(conn)?;
    Ok(n > 0)
}

pub(super) fn delete_user_in(conn: &mut AnyConnection, id: &str) -> StoreResult<bool> {
    Ok(diesel::delete(users::table.find(id)).execute(conn)? > 0)
}

/// A page of users (`UserQuery`). The search is a plain substring, escaped for LIKE.
pub(super) fn find_users_in(
    conn: &mut AnyConnection,
    query: &UserQuery<'_>,
) -> StoreResult<Vec<User>> {
    let mut select = users::table.select(User::as_select()).into_boxed();
    if let Some(after) = query.after {
        select = select.filter(users::username.gt(after.to_owned()));
    }
    if let Some(term) = query.search.filter(|t| !t.is_empty()) {
        let escaped: String = term
            .to_lowercase()
            .chars()
            .flat_map(|c| match c {
                '%' | '_' | '\\' => vec!['\\', c],
                c => vec![c],
            })
            .collect();
        let pattern = format!("%{escaped}%");
        select = select.filter(
            lower(users::username)
                .like(pattern.clone())
                .escape('\\')
                .or(lower(users::name.assume_not_null())
                    .like(pattern.clone())
                    .escape('\\'))
                .or(lower(users::email.assume_not_null())
                    .like(pattern)
                    .escape('\\')),
        );
    }
    Ok(select
        .order(users::username)
        .limit(query.limit)
        .load(conn)?)
}

/// The most accounts one address's reset request reaches (several accounts may share
/// an address; a bound keeps one request's work small).
const MAX_SHARING_AN_ADDRESS: i64 = 10;

diesel::define_sql_function!(fn lower(x: diesel::sql_types::Text) -> diesel::sql_types::Text);

impl UserStore for SqlStore {
    fn create_user(&self, user: &User) -> StoreResult<()> {
        insert_user(&mut *self.conn()?, user)
    }

    fn find_user(&self, id: &str) -> StoreResult<Option<User>> {
        Ok(users::table
            .find(id)
            .select(User::as_select())
            .get_result(&mut *self.conn()?)
            .optional()?)
    }

    fn find_user_by_username(&self, username: &str) -> StoreResult<Option<User>> {
        Ok(users::table
            .filter(users::username_key.eq(UsernameKey::new(username).as_str()))
            .select(User::as_select())
            .get_result(&mut *self.conn()?)
            .optional()?)
    }

    fn find_users_by_email(&self, email: &str) -> StoreResult<Vec<User>> {
        Ok(users::table
            .filter(lower(users::email.assume_not_null()).eq(email.trim().to_lowercase()))
            .select(User::as_select())
            .order(users::username)
            .limit(MAX_SHARING_AN_ADDRESS)
            .load(&mut *self.conn()?)?)
    }

    fn find_grant_user(&self, grant_id: &str) -> StoreResult<Option<(User, Option<String>)>> {
        if let Some(found) = self.liveness.grant_user(grant_id) {
            return Ok(Some(found));
        }
        let seen = self.liveness.generation();
        let read_at = std::time::Instant::now();
        let found = grants::table
            .find(grant_id)
            .inner_join(users::table)
            .select((User::as_select(), grants::claims))
            .get_result(&mut *self.conn()?)
            .optional()?;
        if let Some(found) = &found {
            self.liveness
                .remember_grant_user(seen, grant_id, found, read_at);
        }
        Ok(found)
    }

    fn list_users(&self) -> StoreResult<Vec<User>> {
        Ok(users::table
            .order(users::username)
            .select(User::as_select())
            .load(&mut *self.conn()?)?)
    }

    fn delete_user(&self, username: &str) -> StoreResult<bool> {
        let key = UsernameKey::new(username);
        let n = diesel::delete(users::table.filter(users::username_key.eq(key.as_str())))
            .execute(&mut *self.conn()?)?;
        self.liveness_changed();
        Ok(n > 0)
    }

    fn update_user(&self, user: &User, now: UnixTime) -> StoreResult<bool> {
        let updated = update_user_in(&mut *self.conn()?, user, now);
        self.liveness_changed();
        updated
    }

    fn set_password_hash(&self, username: &str, hash: &str, now: UnixTime) -> StoreResult<bool> {
        let key = UsernameKey::new(username);
        let n = diesel::update(users::table.filter(users::username_key.eq(key.as_str())))
            .set((
                users::password_hash.eq(hash),
                users::updated_at.eq(now),
                users::credentials_changed_at.eq(now),
            ))
            .execute(&mut *self.conn()?)?;
        self.liveness_changed();
        Ok(n > 0)
    }

    fn upgrade_password_hash(
        &self,
        user_id: &str,
        verified: &str,
        upgraded: &str,
    ) -> StoreResult<bool> {
        // Compare-and-set in one statement: of two sign-ins upgrading at once, one writes.
        // Neither `updated_at` (the profile did not change) nor `credentials_changed_at`
        // (the password did not: the session being signed in must live).
        let n = diesel::update(
            users::table
                .find(user_id)
                .filter(users::password_hash.eq(verified)),
        )
        .set(users::password_hash.eq(upgraded))
        .execute(&mut *self.conn()?)?;
        Ok(n > 0)
    }
}
