//! The browser session a sign-in leads to, and the defence against session fixation.

use super::{Authenticated, Factor, Proof, level_of};
use crate::crypto::tokens::random_token;
use crate::domain::{Level, UnixTime};
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
            level: signed_in.level,
            methods: signed_in.method_uses(),
            expires_at: now + session_ttl,
            idp: signed_in.idp.clone(),
            upstream_id_token: signed_in.upstream_id_token.clone(),
        },
        replaced,
    }
}

/// Whether `session`'s user proved, in the last `within` seconds before `now`, methods
/// that reach `level` together: what changing a factor or the password asks for (a
/// sign-in of an hour ago, or by a weaker method than the account has, is not enough).
pub fn recent_enough(session: &SsoSession, level: Level, now: UnixTime, within: i64) -> bool {
    let methods = session.method_uses();
    let recent: Vec<Proof> = methods
        .iter()
        .filter(|m| now - m.at <= within && m.at <= now)
        .filter_map(|m| Factor::of_amr(&m.amr).map(|factor| Proof::of(factor, m.at)))
        .collect();
    // Every method is recent: the session's own level counts (a verifying passkey's).
    let reached = if !recent.is_empty() && recent.len() == methods.len() {
        session.level.max(level_of(&recent))
    } else {
        level_of(&recent)
    };
    !recent.is_empty() && reached >= level
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
            level: Level::SingleFactor,
            methods: Vec::new(),
            expires_at: 10,
            idp: None,
            upstream_id_token: None,
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
    fn a_change_needs_methods_of_the_accounts_level_proved_recently() {
        let mut session = session_of("alice-id", "sid-a");
        session.methods = vec![
            crate::domain::MethodUse {
                amr: "pwd".into(),
                at: 1_000,
            },
            crate::domain::MethodUse {
                amr: "otp".into(),
                at: 1_100,
            },
        ];
        session.level = Level::MultiFactor;
        assert!(recent_enough(&session, Level::MultiFactor, 1_200, 300));
        assert!(
            recent_enough(&session, Level::SingleFactor, 1_350, 300),
            "the code alone"
        );
        assert!(
            !recent_enough(&session, Level::MultiFactor, 1_350, 300),
            "the password is too old"
        );
        assert!(!recent_enough(&session, Level::SingleFactor, 1_500, 300));
        // A verifying passkey reached two factors by itself: its session level counts.
        session.methods = vec![crate::domain::MethodUse {
            amr: "hwk".into(),
            at: 1_000,
        }];
        assert!(recent_enough(&session, Level::MultiFactor, 1_100, 300));
        assert!(!recent_enough(&session, Level::MultiFactor, 1_400, 300));
        // A session from before methods were recorded: its amr at its auth_time.
        let old = session_of("alice-id", "sid-a");
        assert!(recent_enough(&old, Level::SingleFactor, 5, 300));
        assert!(!recent_enough(&old, Level::MultiFactor, 5, 300));
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
