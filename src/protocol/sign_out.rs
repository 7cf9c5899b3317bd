//! Sign-out as a use-case, beside the sign-in and consent: which browser sessions end,
//! which grants end with them, and which clients are told (OIDC Back-Channel Logout 1.0
//! §2.5-§2.7, Front-Channel Logout 1.0 §3), and the checks of an RP-initiated logout
//! request (RP-Initiated Logout 1.0 §2-§3).
//!
//! The database ends the sessions, revokes their grants and queues one back-channel
//! logout token per listening client in one transaction (`SessionRecordStore`); then the
//! session store's records go (so every instance sees the end at once) and this
//! instance's delivery task is woken. The front-channel notices are the signed-out
//! page's: [`frontchannel_uris`] says which it loads. The I/O (the blocking store, the
//! session store, the outbox) is behind [`SignOutPorts`], which the HTTP adapter
//! implements and the tests fake.

use super::logout::frontchannel_uri;
use super::tokens::verify_id_token_hint;
use super::{OAuthError, Params};
use crate::crypto::KeySet;
use crate::domain::UnixTime;
use crate::store::{Client, EndedSessions, Store, StoreResult};

/// What to end.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Ending {
    /// One session, by its public `sid`; `reason` is the audit line's.
    Session { sid: String, reason: &'static str },
    /// Every session of the user, and every grant the user gave ("sign out everywhere"),
    /// offline ones and those made outside any session included.
    EveryUserSession { user_id: String },
}

/// What signing out needs from outside.
// Called with the adapter's own type on actix's single-threaded workers, as
// `sign_in::SignInPorts`: the futures need no `Send` bound.
#[allow(async_fn_in_trait)]
pub trait SignOutPorts {
    /// Runs [`end_in_store`] where it may block.
    async fn end_in_store(&self, ending: Ending) -> Result<EndedSessions, OAuthError>;
    /// Deletes an ended session's session-store record (`BrowserSession::store_key`).
    async fn forget_record(&self, store_key: &str) -> Result<(), OAuthError>;
    /// Wakes this instance's back-channel delivery now rather than at its next poll.
    fn wake_outbox(&self);
    /// The clients of `ids` that still exist, in that order.
    async fn clients(&self, ids: Vec<String>) -> Result<Vec<Client>, OAuthError>;
}

/// Ends what `ending` names in the database (see the module): the sessions, the grants
/// made in them and the back-channel logout tokens, each store call one transaction.
pub fn end_in_store(
    store: &dyn Store,
    ending: &Ending,
    now: UnixTime,
) -> StoreResult<EndedSessions> {
    match ending {
        Ending::Session { sid, .. } => {
            let ended = store.end_session(sid, now)?;
            if ended.sessions.is_empty() {
                // A session from before sessions were recorded: its grants still go.
                store.revoke_session_grants(sid, now)?;
            }
            Ok(ended)
        }
        Ending::EveryUserSession { user_id } => store.end_user_sessions(user_id, now),
    }
}

/// Signs out: ends what `ending` names, forgets the ended sessions' records, and audits.
pub async fn sign_out(
    ports: &impl SignOutPorts,
    ending: Ending,
) -> Result<EndedSessions, OAuthError> {
    let ended = ports.end_in_store(ending.clone()).await?;
    forget(ports, &ended).await?;
    audit(&ending, &ended);
    Ok(ended)
}

/// What follows ending sessions in the database, wherever they were ended: their
/// session-store records go and, when logout tokens were queued, the delivery is woken.
pub async fn forget(ports: &impl SignOutPorts, ended: &EndedSessions) -> Result<(), OAuthError> {
    for session in &ended.sessions {
        ports.forget_record(&session.store_key).await?;
    }
    if ended.deliveries > 0 {
        ports.wake_outbox();
    }
    Ok(())
}

/// One audit line for what ended (none when a single session had ended already).
fn audit(ending: &Ending, ended: &EndedSessions) {
    match (ending, ended.sessions.first()) {
        (Ending::Session { reason, .. }, Some(s)) => {
            crate::audit::sessions_ended(&s.user_id, ended.sessions.len(), reason)
        }
        (Ending::EveryUserSession { user_id }, _) => {
            crate::audit::sessions_ended(user_id, ended.sessions.len(), "signed_out_everywhere")
        }
        _ => {}
    }
}

/// The clients that got tokens in the ended session `sid`: those this browser's
/// signed-out page may tell. Other sessions ended with it are other browsers'.
pub fn clients_in_session(ended: &EndedSessions, sid: &str) -> Vec<String> {
    ended
        .clients
        .iter()
        .filter(|(s, _)| s == sid)
        .flat_map(|(_, ids)| ids.clone())
        .collect()
}

/// The front-channel logout URIs (with `iss` and `sid`) of those of `clients` that
/// registered one. Clients listening on the back channel only are told by the outbox.
pub fn frontchannel_notices(clients: &[Client], issuer: &str, sid: &str) -> Vec<String> {
    clients
        .iter()
        .filter_map(|c| frontchannel_uri(c, issuer, sid))
        .collect()
}

/// The front-channel logout URIs of the clients that got tokens in the ended session
/// `sid`: what this browser's signed-out page loads.
pub async fn frontchannel_uris(
    ports: &impl SignOutPorts,
    ended: &EndedSessions,
    sid: &str,
    issuer: &str,
) -> Result<Vec<String>, OAuthError> {
    let client_ids = clients_in_session(ended, sid);
    if client_ids.is_empty() {
        return Ok(Vec::new());
    }
    let clients = ports.clients(client_ids).await?;
    Ok(frontchannel_notices(&clients, issuer, sid))
}

/// Who asks for an RP-initiated logout, and where the browser returns.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LogoutRequest {
    pub client_id: Option<String>,
    pub post_logout_redirect_uri: Option<String>,
}

/// The client named by `client_id` or by the `id_token_hint`'s `aud`, and the
/// `post_logout_redirect_uri` (RP-Initiated Logout §2; whether it is registered is
/// [`check_post_logout_redirect`]'s).
pub fn logout_request(
    params: &Params,
    keys: &KeySet,
    issuer: &str,
    now: UnixTime,
) -> Result<LogoutRequest, OAuthError> {
    let mut client_id = params.single("client_id")?.map(str::to_owned);
    if let Some(hint) = params.single("id_token_hint")? {
        let hint = verify_id_token_hint(hint, keys, issuer, now)?;
        match (&client_id, hint.audience().as_slice()) {
            (Some(id), _) if !hint.is_for(id) => {
                return Err(OAuthError::invalid_request(
                    "client_id does not match id_token_hint",
                ));
            }
            (Some(_), _) => {}
            (None, [only]) => client_id = Some((*only).to_owned()),
            // An audience of several clients does not say which one asks.
            (None, _) => {
                return Err(OAuthError::invalid_request(
                    "client_id is required with this id_token_hint",
                ));
            }
        }
    }
    let uri = params
        .single("post_logout_redirect_uri")?
        .map(str::to_owned);
    if uri.is_some() && client_id.is_none() {
        return Err(OAuthError::invalid_request(
            "post_logout_redirect_uri needs client_id or id_token_hint",
        ));
    }
    Ok(LogoutRequest {
        client_id,
        post_logout_redirect_uri: uri,
    })
}

/// RP-Initiated Logout §3: a `post_logout_redirect_uri` must be one the client
/// registered.
pub fn check_post_logout_redirect(
    client: Option<&Client>,
    uri: Option<&str>,
) -> Result<(), OAuthError> {
    match (client, uri) {
        (_, None) => Ok(()),
        (Some(c), Some(u)) if c.post_logout_redirect_uris.iter().any(|r| r == u) => Ok(()),
        _ => Err(OAuthError::invalid_request(
            "post_logout_redirect_uri is not registered for this client",
        )),
    }
}

/// Where the browser returns: the registered `uri` with the client's `state`, if it sent
/// one (RP-Initiated Logout §3).
pub fn post_logout_target(uri: &str, state: Option<&str>) -> Result<String, OAuthError> {
    let mut url = url::Url::parse(uri).map_err(|_| OAuthError::invalid_request("bad redirect"))?;
    if let Some(s) = state.filter(|s| !s.is_empty()) {
        url.query_pairs_mut().append_pair("state", s);
    }
    Ok(String::from(url))
}

#[cfg(test)]
mod tests {
    use std::cell::RefCell;

    use super::*;
    use crate::store::{BrowserSession, LogoutUri};

    const ISSUER: &str = "https://op";

    fn client(id: &str, front: Option<LogoutUri>, back: Option<LogoutUri>) -> Client {
        Client {
            post_logout_redirect_uris: vec!["https://rp.example/bye".into()],
            backchannel_logout: back,
            frontchannel_logout: front,
            ..crate::protocol::testing::client(id)
        }
    }

    fn logout_uri(uri: &str, session_required: bool) -> Option<LogoutUri> {
        Some(LogoutUri {
            uri: uri.into(),
            session_required,
        })
    }

    fn browser_session(sid: &str) -> BrowserSession {
        BrowserSession {
            sid: sid.into(),
            user_id: "alice".into(),
            store_key: format!("key-{sid}"),
            created_at: 0,
            expires_at: 100,
            ended_at: Some(50),
            user_agent: None,
            ip_address: None,
        }
    }

    /// `s1` ended with `front` and `back` in it, `s2` (another browser's) with `other`.
    fn two_sessions_ended(deliveries: usize) -> EndedSessions {
        EndedSessions {
            sessions: vec![browser_session("s1"), browser_session("s2")],
            clients: vec![
                ("s1".into(), vec!["front".into(), "back".into()]),
                ("s2".into(), vec!["other".into()]),
            ],
            deliveries,
        }
    }

    /// The outside world of a sign-out, recording what was asked of it.
    struct World {
        ended: EndedSessions,
        clients: Vec<Client>,
        calls: RefCell<Vec<String>>,
    }

    impl World {
        fn new(ended: EndedSessions) -> Self {
            Self {
                ended,
                clients: vec![
                    client("front", logout_uri("https://front/fc", false), None),
                    client("back", None, logout_uri("https://back/bc", true)),
                    client("other", logout_uri("https://other/fc", true), None),
                ],
                calls: RefCell::new(Vec::new()),
            }
        }

        fn calls(&self) -> Vec<String> {
            self.calls.borrow().clone()
        }
    }

    impl SignOutPorts for World {
        async fn end_in_store(&self, ending: Ending) -> Result<EndedSessions, OAuthError> {
            self.calls.borrow_mut().push(format!("end {ending:?}"));
            Ok(self.ended.clone())
        }

        async fn forget_record(&self, store_key: &str) -> Result<(), OAuthError> {
            self.calls.borrow_mut().push(format!("forget {store_key}"));
            Ok(())
        }

        fn wake_outbox(&self) {
            self.calls.borrow_mut().push("wake".into());
        }

        async fn clients(&self, ids: Vec<String>) -> Result<Vec<Client>, OAuthError> {
            self.calls.borrow_mut().push(format!("clients {ids:?}"));
            Ok(self
                .clients
                .iter()
                .filter(|c| ids.contains(&c.id))
                .cloned()
                .collect())
        }
    }

    #[tokio::test]
    async fn signing_out_ends_in_the_database_then_forgets_every_ended_record_and_wakes_the_outbox()
    {
        let world = World::new(two_sessions_ended(1));
        let ending = Ending::EveryUserSession {
            user_id: "alice".into(),
        };
        let ended = sign_out(&world, ending).await.unwrap();
        assert_eq!(ended.sessions.len(), 2);
        assert_eq!(
            world.calls(),
            [
                r#"end EveryUserSession { user_id: "alice" }"#,
                "forget key-s1",
                "forget key-s2",
                "wake",
            ]
        );
    }

    #[tokio::test]
    async fn the_outbox_is_not_woken_when_no_client_listens_on_the_back_channel() {
        let world = World::new(two_sessions_ended(0));
        let ending = Ending::Session {
            sid: "s1".into(),
            reason: "signed_out",
        };
        sign_out(&world, ending).await.unwrap();
        assert!(!world.calls().contains(&"wake".to_owned()));
        // A session that had ended already: nothing to forget, nothing to wake.
        let world = World::new(EndedSessions::default());
        let ending = Ending::Session {
            sid: "s1".into(),
            reason: "signed_out",
        };
        sign_out(&world, ending).await.unwrap();
        assert_eq!(world.calls().len(), 1, "{:?}", world.calls());
    }

    #[test]
    fn the_clients_told_on_this_browser_are_those_of_its_own_session() {
        let ended = two_sessions_ended(1);
        assert_eq!(clients_in_session(&ended, "s1"), ["front", "back"]);
        assert_eq!(clients_in_session(&ended, "s2"), ["other"]);
        assert!(clients_in_session(&ended, "s3").is_empty());
    }

    #[tokio::test]
    async fn the_signed_out_page_loads_the_front_channel_uris_of_its_sessions_clients_only() {
        let world = World::new(two_sessions_ended(1));
        let uris = frontchannel_uris(&world, &world.ended, "s1", ISSUER)
            .await
            .unwrap();
        // `back` listens on the back channel only: the outbox tells it, not the page;
        // `other` got tokens in another browser's session.
        assert_eq!(uris, ["https://front/fc?iss=https%3A%2F%2Fop&sid=s1"]);
        assert_eq!(world.calls(), [r#"clients ["front", "back"]"#]);
    }

    #[tokio::test]
    async fn a_session_no_client_got_tokens_in_looks_no_client_up() {
        let world = World::new(two_sessions_ended(0));
        let uris = frontchannel_uris(&world, &world.ended, "s3", ISSUER)
            .await
            .unwrap();
        assert!(uris.is_empty());
        assert!(world.calls().is_empty());
    }

    #[test]
    fn iss_and_sid_go_to_every_front_channel_client_whether_it_requires_them_or_not() {
        let clients = [
            client("required", logout_uri("https://a/fc", true), None),
            client("optional", logout_uri("https://b/fc?x=1", false), None),
            client(
                "both",
                logout_uri("https://c/fc", false),
                logout_uri("https://c/bc", true),
            ),
        ];
        assert_eq!(
            frontchannel_notices(&clients, ISSUER, "s 1"),
            [
                "https://a/fc?iss=https%3A%2F%2Fop&sid=s+1",
                "https://b/fc?x=1&iss=https%3A%2F%2Fop&sid=s+1",
                "https://c/fc?iss=https%3A%2F%2Fop&sid=s+1",
            ]
        );
    }

    fn params(pairs: &[(&str, &str)]) -> Params {
        Params::new(
            pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        )
    }

    #[test]
    fn a_post_logout_redirect_uri_needs_a_client_that_registered_it() {
        fn asked(pairs: &[(&str, &str)]) -> Result<LogoutRequest, OAuthError> {
            logout_request(&params(pairs), &KeySet::new(vec![]), ISSUER, 0)
        }
        assert_eq!(asked(&[]).unwrap(), LogoutRequest::default());
        assert!(asked(&[("post_logout_redirect_uri", "https://rp.example/bye")]).is_err());
        let request = asked(&[
            ("client_id", "rp"),
            ("post_logout_redirect_uri", "https://rp.example/bye"),
        ])
        .unwrap();
        assert_eq!(request.client_id.as_deref(), Some("rp"));
        let rp = client("rp", None, None);
        let uri = request.post_logout_redirect_uri.as_deref();
        assert!(check_post_logout_redirect(Some(&rp), uri).is_ok());
        assert!(check_post_logout_redirect(Some(&rp), Some("https://evil/")).is_err());
        assert!(check_post_logout_redirect(None, uri).is_err());
        assert!(check_post_logout_redirect(None, None).is_ok());
    }

    #[test]
    fn the_browser_returns_with_the_clients_state_if_it_sent_one() {
        let uri = "https://rp.example/bye?a=1";
        assert_eq!(
            post_logout_target(uri, Some("x y")).unwrap(),
            "https://rp.example/bye?a=1&state=x+y"
        );
        assert_eq!(post_logout_target(uri, Some("")).unwrap(), uri);
        assert_eq!(post_logout_target(uri, None).unwrap(), uri);
    }
}
