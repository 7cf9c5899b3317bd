use diesel::prelude::*;

use super::SqlStore;
use crate::domain::UnixTime;
use crate::store::schema::{grants, users};
use crate::store::{StoreResult, User, UserStore};

impl UserStore for SqlStore {
    fn create_user(&self, user: &User) -> StoreResult<()> {
        diesel::insert_into(users::table)
            .values(user)
            .execute(&mut self.conn()?)?;
        Ok(())
    }

    fn find_user(&self, id: &str) -> StoreResult<Option<User>> {
        Ok(users::table
            .find(id)
            .select(User::as_select())
            .first(&mut self.conn()?)
            .optional()?)
    }

    fn find_user_by_username(&self, username: &str) -> StoreResult<Option<User>> {
        Ok(users::table
            .filter(users::username.eq(username))
            .select(User::as_select())
            .first(&mut self.conn()?)
            .optional()?)
    }

    fn find_grant_user(&self, grant_id: &str) -> StoreResult<Option<(User, Option<String>)>> {
        Ok(grants::table
            .find(grant_id)
            .inner_join(users::table)
            .select((User::as_select(), grants::claims))
            .first(&mut self.conn()?)
            .optional()?)
    }

    fn list_users(&self) -> StoreResult<Vec<User>> {
        Ok(users::table
            .order(users::username)
            .select(User::as_select())
            .load(&mut self.conn()?)?)
    }

    fn delete_user(&self, username: &str) -> StoreResult<bool> {
        let n = diesel::delete(users::table.filter(users::username.eq(username)))
            .execute(&mut self.conn()?)?;
        Ok(n > 0)
    }

    fn update_user(&self, user: &User, now: UnixTime) -> StoreResult<bool> {
        let n = diesel::update(users::table.find(&user.id))
            .set((
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
                users::zoneinfo.eq(&user.zoneinfo),
                users::locale.eq(&user.locale),
                users::phone_number.eq(&user.phone_number),
                users::phone_number_verified.eq(user.phone_number_verified),
                users::address.eq(&user.address),
                users::updated_at.eq(now),
            ))
            .execute(&mut self.conn()?)?;
        Ok(n > 0)
    }

    fn set_password_hash(&self, username: &str, hash: &str, now: UnixTime) -> StoreResult<bool> {
        let n = diesel::update(users::table.filter(users::username.eq(username)))
            .set((
                users::password_hash.eq(hash),
                users::updated_at.eq(now),
                users::credentials_changed_at.eq(now),
            ))
            .execute(&mut self.conn()?)?;
        Ok(n > 0)
    }
}
