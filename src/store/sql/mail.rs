//! The mail outbox (`MailStore`): queued, claimed under a lease, settled.

use diesel::prelude::*;

use super::{AnyConnection, SqlStore};
use crate::domain::UnixTime;
use crate::store::schema::mail_outbox;
use crate::store::{DeliveryOutcome, MailStore, QueuedMail, StoreResult};

/// Queues `mail` inside the caller's transaction: the store calls of later features
/// (a reset link, an invitation) write their record and its mail together.
pub(super) fn enqueue_mail_in(conn: &mut AnyConnection, mail: &QueuedMail) -> StoreResult<()> {
    diesel::insert_into(mail_outbox::table)
        .values(mail)
        .execute(conn)?;
    Ok(())
}

impl MailStore for SqlStore {
    fn enqueue_mail(&self, mail: &QueuedMail) -> StoreResult<()> {
        enqueue_mail_in(&mut *self.conn()?, mail)
    }

    fn claim_mail(
        &self,
        now: UnixTime,
        lease_until: UnixTime,
        limit: i64,
    ) -> StoreResult<Vec<QueuedMail>> {
        let mut conn = self.conn()?;
        let due = mail_outbox::table
            .filter(mail_outbox::sent_at.is_null())
            .filter(mail_outbox::failed_at.is_null())
            .filter(mail_outbox::next_attempt_at.le(now))
            .order((mail_outbox::next_attempt_at, mail_outbox::created_at))
            .limit(limit)
            .select(QueuedMail::as_select())
            .load(&mut *conn)?;
        let mut claimed = Vec::with_capacity(due.len());
        for mut mail in due {
            // Optimistic, as the logout outbox: the row is ours only if nobody claimed or
            // settled it since we read it (its attempt count is the claim's mark).
            let won = diesel::update(
                mail_outbox::table
                    .find(&mail.id)
                    .filter(mail_outbox::attempts.eq(mail.attempts))
                    .filter(mail_outbox::next_attempt_at.le(now))
                    .filter(mail_outbox::sent_at.is_null())
                    .filter(mail_outbox::failed_at.is_null()),
            )
            .set((
                mail_outbox::next_attempt_at.eq(lease_until),
                mail_outbox::attempts.eq(mail.attempts + 1),
            ))
            .execute(&mut *conn)?;
            if won == 1 {
                mail.attempts += 1;
                mail.next_attempt_at = lease_until;
                claimed.push(mail);
            }
        }
        Ok(claimed)
    }

    fn settle_mail(
        &self,
        id: &str,
        attempt: i32,
        outcome: DeliveryOutcome<'_>,
        now: UnixTime,
    ) -> StoreResult<bool> {
        let row = mail_outbox::table
            .find(id)
            .filter(mail_outbox::attempts.eq(attempt))
            .filter(mail_outbox::sent_at.is_null())
            .filter(mail_outbox::failed_at.is_null());
        let mut conn = self.conn()?;
        let settled = match outcome {
            DeliveryOutcome::Delivered => diesel::update(row)
                .set((
                    mail_outbox::sent_at.eq(now),
                    mail_outbox::sealed_message.eq(None::<String>),
                    mail_outbox::last_error.eq(None::<String>),
                ))
                .execute(&mut *conn)?,
            DeliveryOutcome::Failed {
                error,
                retry_at: Some(at),
            } => diesel::update(row)
                .set((
                    mail_outbox::next_attempt_at.eq(at),
                    mail_outbox::last_error.eq(error),
                ))
                .execute(&mut *conn)?,
            DeliveryOutcome::Failed {
                error,
                retry_at: None,
            } => diesel::update(row)
                .set((
                    mail_outbox::failed_at.eq(now),
                    mail_outbox::sealed_message.eq(None::<String>),
                    mail_outbox::last_error.eq(error),
                ))
                .execute(&mut *conn)?,
        };
        Ok(settled == 1)
    }

    fn find_mail(&self, id: &str) -> StoreResult<Option<QueuedMail>> {
        Ok(mail_outbox::table
            .find(id)
            .select(QueuedMail::as_select())
            .get_result(&mut *self.conn()?)
            .optional()?)
    }
}
