//! The audit trail's writes, inside a caller's transaction: every audited change (`audit`,
//! `links`, `signups`) writes its event with itself.

use diesel::prelude::*;

use super::AnyConnection;
use crate::store::schema::audit_events;
use crate::store::{NewAuditEvent, StoreResult};

pub(super) fn insert_event(conn: &mut AnyConnection, event: &NewAuditEvent) -> StoreResult<()> {
    diesel::insert_into(audit_events::table)
        .values(event)
        .execute(conn)?;
    Ok(())
}
