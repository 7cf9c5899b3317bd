//! The browser session a sign-in leads to, and the defence against session fixation.

use super::Authenticated;
use crate::crypto::tokens::random_token;
use crate::domain::UnixTime;
use crate::sessions::SsoSession;

/// The browser session a sign-in leads to.
#[derive(Debug)]
pub struct NewSession {
    pub session: SsoSession,
    /// The `sid` of another user's session this browser had: it ends here.
    pub replaced: Option<String>,
}

/// The session `signed_in` gets, `previous` being the session the browser had (if any).
///
/// Always a new cookie (`id`): a session id someone planted before the sign-in is worth
/// nothing after it (session fixation; OWASP Session Management Cheat Sheet, "Renew the
/// Session ID After Any Privilege Level Change"). The same user signing in again
/// (`prompt=login`, `max_age`) goes on in the same `sid`, so that signing out later reaches
/// the apps of both sign-ins; another user's session ends.
pub fn session_after(
    signed_in: &Authenticated,
    previous: Option<&SsoSession>,
    now: UnixTime,
    session_ttl: i64,
) -> NewSession {
    let (sid, replaced) = match previous {
        Some(p) if p.user_id == signed_in.user_id => (p.sid.clone(), None),
        Some(p) => (new_sid(), Some(p.sid.clone())),
        None => (new_sid(), None),
    };
    NewSession {
        session: SsoSession {
            id: random_token(32),
            sid,
            user_id: signed_in.user_id.clone(),
            auth_time: signed_in.auth_time,
            amr: signed_in.amr.clone(),
            expires_at: now + session_ttl,
        },
        replaced,
    }
}

/// A new public session id (`sid`).
pub fn new_sid() -> String {
    random_token(16)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::sign_in::tests::{NOW, authenticated};

    fn session_of(user: &str, sid: &str) -> SsoSession {
        SsoSession {
            id: "old-cookie".into(),
            sid: sid.into(),
            user_id: user.into(),
            auth_time: 1,
            amr: vec!["pwd".into()],
            expires_at: 10,
        }
    }

    #[test]
    fn a_sign_in_records_its_methods_and_time_in_a_session_under_a_new_cookie() {
        let signed_in = authenticated("alice-id", &["pwd"], NOW - 2);
        let new = session_after(&signed_in, None, NOW, 3600);
        assert_eq!(new.session.user_id, "alice-id");
        assert_eq!(new.session.amr, ["pwd"]);
        assert_eq!(new.session.auth_time, NOW - 2);
        assert_eq!(new.session.expires_at, NOW + 3600);
        assert_eq!(new.replaced, None);
        assert_ne!(new.session.id, "");
        let other = session_after(&signed_in, None, NOW, 3600);
        assert_ne!(new.session.sid, other.session.sid, "a new sid each time");
    }

    #[test]
    fn the_same_user_signing_in_again_keeps_the_sid_under_a_new_cookie() {
        let signed_in = authenticated("alice-id", &["pwd"], NOW);
        let previous = session_of("alice-id", "sid-a");
        let new = session_after(&signed_in, Some(&previous), NOW, 3600);
        assert_eq!(new.session.sid, "sid-a");
        assert_ne!(new.session.id, previous.id, "no session fixation");
        assert_eq!(new.replaced, None);
    }

    #[test]
    fn another_user_signing_in_ends_the_session_the_browser_had() {
        let signed_in = authenticated("alice-id", &["pwd"], NOW);
        let previous = session_of("bob-id", "sid-b");
        let new = session_after(&signed_in, Some(&previous), NOW, 3600);
        assert_eq!(new.replaced.as_deref(), Some("sid-b"));
        assert_ne!(new.session.sid, "sid-b");
        assert_ne!(new.session.id, previous.id);
    }
}
