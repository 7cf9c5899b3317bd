//! Invitations (issue 23 §4): an administrator asks someone, by address, to make an
//! account. The mail's link (`protocol::signup`) lets them choose a username and a
//! password; until then nothing but the link exists. Audited as `user.invited`, with the
//! address and when the link expires, never the link.

use serde::{Deserialize, Serialize};
use serde_json::json;

use super::{Actor, Admin, AdminError, AdminResult};
use crate::mail::{EmailAddress, Link, Locale, MailKind, Outgoing};
use crate::protocol::links::{self, LinkPurpose};

/// An invitation, as the admin API takes it.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewInvitation {
    pub email: String,
    /// The mail's language (`en`, `fr`); English when left out.
    #[serde(default)]
    pub locale: Option<String>,
}

/// What was sent.
#[derive(Debug, Serialize)]
pub struct InvitationView {
    pub email: String,
    pub expires_at: i64,
    /// The outbox row of its mail (`portcullis` delivers it in the background).
    pub mail_id: String,
}

impl Admin<'_> {
    /// Invites `invitation.email`: a link (7 days) in a mail. `link_for` makes the page's
    /// URL of a token. Refused while `signup = off`, and for an address an account has.
    pub fn invite(
        &self,
        invitation: &NewInvitation,
        link_for: &dyn Fn(&str) -> String,
    ) -> AdminResult<InvitationView> {
        if !self.settings.signup.invitations() {
            return Err(AdminError::invalid(
                "invitations are off (signup = off): set signup to invite or open",
            ));
        }
        let to = EmailAddress::parse(&invitation.email)
            .map_err(|_| AdminError::invalid("email must be an email address"))?;
        let locale = match invitation.locale.as_deref() {
            None | Some("") => Locale::default(),
            Some(tag) => Locale::from_tag(tag)
                .ok_or_else(|| AdminError::invalid("locale must be en or fr"))?,
        };
        if self.store.email_in_use(to.as_str())? {
            return Err(AdminError::Conflict(format!(
                "an account has the address {} already",
                to.as_str()
            )));
        }
        let actor = self.actor.label();
        let new = links::make(
            LinkPurpose::Invitation,
            None,
            to.as_str(),
            Some(&actor),
            self.now,
        );
        let link = Link::new(link_for(new.token.expose()))
            .map_err(|e| AdminError::Internal(e.to_string()))?;
        let outgoing = Outgoing {
            to: to.clone(),
            locale,
            kind: MailKind::Invitation {
                link,
                valid_minutes: (LinkPurpose::Invitation.lifetime() / 60) as u32,
                invited_by: self.inviter(),
            },
        };
        let mail = outgoing
            .queue(self.kek()?, self.now)
            .map_err(|e| AdminError::Internal(e.to_string()))?;
        let event = self.event(
            "user.invited",
            to.as_str(),
            Some(json!({ "expires_at": new.link.expires_at })),
        );
        // The link, its mail and the audit line in one transaction: never a working
        // link that nobody was sent or nobody can account for.
        let change = crate::store::AdminChange::Invite {
            link: &new.link,
            mail: &mail,
        };
        self.audited(change, &event, "invitation")?;
        let mail_id = mail.id.clone();
        Ok(InvitationView {
            email: to.as_str().to_owned(),
            expires_at: new.link.expires_at,
            mail_id,
        })
    }

    /// Who the mail says invites: the administrator by username, else the service.
    fn inviter(&self) -> String {
        match self.actor {
            Actor::User { username, .. } => username.clone(),
            Actor::Client { .. } | Actor::Operator => self.settings.brand.name.clone(),
        }
    }
}
