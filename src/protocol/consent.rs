//! The consent decision as a use-case, beside the sign-in (`sign_in`): the user's answer
//! on the consent page is either recorded (OIDC Core §3.1.2.4: the user allows what the
//! client will receive) or becomes `access_denied` for the client (§3.1.2.6).
//!
//! Plain Rust: HTTP parses the form's `decision` once into a [`Decision`], verifies the
//! form and loads the session, calls [`deny`] or [`record_consent`], and maps the
//! [`Outcome`] to its responses. The store is reached through [`ConsentRecords`], which
//! every [`Store`] provides and the tests fake.

use super::OAuthError;
use super::authorize::{AuthorizationRequest, claims_beyond_scopes};
use super::logout::session_user;
use crate::domain::UnixTime;
use crate::sessions::SsoSession;
use crate::store::{Consent, ConsentStore, Store, StoreResult};

/// The user's answer on the consent page.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    Allow,
    Deny,
}

impl Decision {
    /// The consent form's `decision`: `allow` or `deny`, nothing else.
    pub fn parse(value: &str) -> Option<Self> {
        match value {
            "allow" => Some(Self::Allow),
            "deny" => Some(Self::Deny),
            _ => None,
        }
    }
}

/// What became of the user's answer.
#[derive(Debug)]
pub enum Outcome {
    /// Recorded: what the user has now allowed the client, this consent and every
    /// earlier one together.
    Recorded(Consent),
    /// The user said no: the client gets `access_denied` (OIDC Core §3.1.2.6).
    Denied,
    /// The session no longer speaks for its user (ended elsewhere, or begun before a
    /// password change): nothing was recorded, and the user signs in again.
    SessionGone,
}

/// What recording a consent needs from the store.
pub trait ConsentRecords {
    /// Whether `session` still speaks for its user (see `logout::session_user`).
    fn speaks_for_its_user(&self, session: &SsoSession) -> StoreResult<bool>;
    /// Adds `consent` to what the user allowed the client before, in one transaction;
    /// returns what is now allowed (`ConsentStore::add_consent`).
    fn add_consent(&self, consent: &Consent) -> StoreResult<Consent>;
}

impl ConsentRecords for dyn Store + '_ {
    fn speaks_for_its_user(&self, session: &SsoSession) -> StoreResult<bool> {
        Ok(session_user(self, session)?.is_some())
    }

    fn add_consent(&self, consent: &Consent) -> StoreResult<Consent> {
        ConsentStore::add_consent(self, consent)
    }
}

/// The consent `request` asks of the user `user_id`: its scopes, and the claims it asks
/// for one by one beyond them (OIDC Core §5.5), which the user allows by name.
pub fn consent_to(request: &AuthorizationRequest, user_id: &str, now: UnixTime) -> Consent {
    Consent {
        user_id: user_id.to_owned(),
        client_id: request.client_id.clone(),
        scope: request.scopes().to_string(),
        granted_at: now,
        claims: claims_beyond_scopes(request)
            .into_iter()
            .collect::<Vec<_>>()
            .join(" "),
    }
}

/// The user refused: nothing is recorded (an earlier consent stays as it was), and the
/// refusal is audited.
pub fn deny(request: &AuthorizationRequest, session: &SsoSession) -> Outcome {
    crate::audit::consent_denied(&session.user_id, &request.client_id);
    Outcome::Denied
}

/// The user allowed `request`: recorded for the session's user, unless the session no
/// longer speaks for them.
pub fn record_consent<R: ConsentRecords + ?Sized>(
    records: &R,
    request: &AuthorizationRequest,
    session: &SsoSession,
    now: UnixTime,
) -> Result<Outcome, OAuthError> {
    // A session ended elsewhere, or from before a password change, consents to nothing.
    if !records.speaks_for_its_user(session)? {
        return Ok(Outcome::SessionGone);
    }
    // Added to what was allowed before, so a later request for the same or less needs
    // no new consent.
    let allowed = records.add_consent(&consent_to(request, &session.user_id, now))?;
    crate::audit::consent_given(&allowed.user_id, &allowed.client_id, &allowed.scope);
    Ok(Outcome::Recorded(allowed))
}

/// The whole decision: [`deny`] or [`record_consent`].
pub fn decide_consent<R: ConsentRecords + ?Sized>(
    records: &R,
    request: &AuthorizationRequest,
    session: &SsoSession,
    decision: Decision,
    now: UnixTime,
) -> Result<Outcome, OAuthError> {
    match decision {
        Decision::Deny => Ok(deny(request, session)),
        Decision::Allow => record_consent(records, request, session, now),
    }
}

#[cfg(test)]
mod tests {
    use std::cell::RefCell;
    use std::collections::BTreeSet;

    use super::*;
    use crate::protocol::claims_request::ClaimsRequest;

    const NOW: UnixTime = 1_000;

    /// The store as consent sees it, recording what was added.
    struct Records {
        session_open: bool,
        previous: Option<Consent>,
        added: RefCell<Vec<Consent>>,
    }

    impl Records {
        fn new() -> Self {
            Self {
                session_open: true,
                previous: None,
                added: RefCell::new(Vec::new()),
            }
        }
    }

    fn union(a: &str, b: &str) -> String {
        let words: BTreeSet<&str> = a.split_whitespace().chain(b.split_whitespace()).collect();
        words.into_iter().collect::<Vec<_>>().join(" ")
    }

    impl ConsentRecords for Records {
        fn speaks_for_its_user(&self, _session: &SsoSession) -> StoreResult<bool> {
            Ok(self.session_open)
        }

        /// As the SQL store merges (`union_of_words`): both sets of words, once each.
        fn add_consent(&self, consent: &Consent) -> StoreResult<Consent> {
            self.added.borrow_mut().push(consent.clone());
            Ok(match &self.previous {
                Some(previous) => Consent {
                    scope: union(&previous.scope, &consent.scope),
                    claims: union(&previous.claims, &consent.claims),
                    ..consent.clone()
                },
                None => consent.clone(),
            })
        }
    }

    fn session() -> SsoSession {
        SsoSession {
            id: "cookie".into(),
            sid: "s".into(),
            user_id: "alice".into(),
            auth_time: NOW - 10,
            amr: vec!["pwd".into()],
            level: Default::default(),
            methods: Vec::new(),
            expires_at: NOW + 1000,
            idp: None,
            upstream_id_token: None,
        }
    }

    /// A request for `openid email` that also asks for `phone_number` by name.
    fn request() -> AuthorizationRequest {
        AuthorizationRequest {
            client_id: "rp".into(),
            redirect_uri: "https://rp/cb".into(),
            scope: "openid email".into(),
            claims: Some(
                ClaimsRequest::parse(r#"{"userinfo":{"email":null,"phone_number":null}}"#)
                    .unwrap()
                    .to_json(),
            ),
            ..Default::default()
        }
    }

    fn decide(records: &Records, decision: Decision) -> Outcome {
        decide_consent(records, &request(), &session(), decision, NOW).unwrap()
    }

    #[test]
    fn the_form_says_allow_or_deny_and_nothing_else() {
        assert_eq!(Decision::parse("allow"), Some(Decision::Allow));
        assert_eq!(Decision::parse("deny"), Some(Decision::Deny));
        assert_eq!(Decision::parse("Allow"), None);
        assert_eq!(Decision::parse(""), None);
    }

    #[test]
    fn allowing_records_the_scopes_and_the_claims_asked_for_beyond_them() {
        let records = Records::new();
        let Outcome::Recorded(allowed) = decide(&records, Decision::Allow) else {
            panic!("not recorded");
        };
        let added = records.added.borrow();
        assert_eq!(added.len(), 1);
        assert_eq!(added[0].user_id, "alice");
        assert_eq!(added[0].client_id, "rp");
        assert_eq!(added[0].scope, "email openid");
        // `email` comes with its scope; `phone_number` is allowed by name.
        assert_eq!(added[0].claims, "phone_number");
        assert_eq!(added[0].granted_at, NOW);
        assert_eq!(allowed.scope, "email openid");
    }

    #[test]
    fn allowing_adds_to_what_was_allowed_before_and_says_what_is_now_allowed() {
        let records = Records {
            previous: Some(Consent {
                user_id: "alice".into(),
                client_id: "rp".into(),
                scope: "openid profile".into(),
                granted_at: 1,
                claims: "address".into(),
            }),
            ..Records::new()
        };
        let Outcome::Recorded(allowed) = decide(&records, Decision::Allow) else {
            panic!("not recorded");
        };
        assert_eq!(
            records.added.borrow()[0].scope,
            "email openid",
            "only this request's scopes are sent: the store merges, in its transaction"
        );
        assert_eq!(allowed.scope, "email openid profile");
        assert_eq!(allowed.claims, "address phone_number");
        assert_eq!(allowed.granted_at, NOW);
    }

    #[test]
    fn denying_records_nothing() {
        let records = Records::new();
        assert!(matches!(decide(&records, Decision::Deny), Outcome::Denied));
        assert!(records.added.borrow().is_empty());
    }

    #[test]
    fn a_session_that_no_longer_speaks_for_its_user_records_nothing() {
        let records = Records {
            session_open: false,
            ..Records::new()
        };
        assert!(matches!(
            decide(&records, Decision::Allow),
            Outcome::SessionGone
        ));
        assert!(records.added.borrow().is_empty());
    }
}
