//! Ending browser sessions from a page (logout, the account page): the database ends
//! them and queues the back-channel logouts in one transaction; then the session store's
//! records go (so every instance sees the end at once) and this instance's delivery task
//! is woken. The front-channel iframes are the signed-out page's business.

use crate::http::state::{State, blocking};
use crate::protocol::OAuthError;
use crate::protocol::logout::frontchannel_uri;
use crate::store::EndedSessions;

/// What to end.
#[derive(Clone, Debug)]
pub enum Ending {
    /// One session, by its public `sid`.
    Session { sid: String, reason: &'static str },
    /// Every session of the user, and every grant the user gave ("sign out everywhere").
    EveryUserSession { user_id: String },
}

pub async fn end(state: &State, ending: Ending) -> Result<EndedSessions, OAuthError> {
    let ended = blocking(state, {
        let ending = ending.clone();
        move |ctx| match &ending {
            Ending::Session { sid, .. } => {
                let ended = ctx.store.end_session(sid, ctx.now)?;
                if ended.sessions.is_empty() {
                    // A session from before sessions were recorded: its grants still go.
                    ctx.store.revoke_session_grants(sid, ctx.now)?;
                }
                Ok(ended)
            }
            Ending::EveryUserSession { user_id } => {
                Ok(ctx.store.end_user_sessions(user_id, ctx.now)?)
            }
        }
    })
    .await?;
    forget(state, &ended).await?;
    match (&ending, ended.sessions.first()) {
        (Ending::Session { reason, .. }, Some(s)) => {
            crate::audit::sessions_ended(&s.user_id, ended.sessions.len(), reason)
        }
        (Ending::EveryUserSession { user_id }, _) => {
            crate::audit::sessions_ended(user_id, ended.sessions.len(), "signed_out_everywhere")
        }
        _ => {}
    }
    Ok(ended)
}

/// What follows ending sessions in the database, wherever they were ended: their
/// session-store records go (every instance sees the end at once) and this instance's
/// back-channel delivery is woken.
pub async fn forget(state: &State, ended: &EndedSessions) -> Result<(), OAuthError> {
    for session in &ended.sessions {
        state
            .sessions
            .delete_sso_record(&session.store_key)
            .await
            .map_err(OAuthError::from)?;
    }
    if ended.deliveries > 0 {
        state.outbox.wake();
    }
    Ok(())
}

/// The front-channel logout URIs (with `iss` and `sid`) of the clients that got tokens
/// in the ended session `sid`: what this browser's signed-out page loads.
pub async fn frontchannel_uris(
    state: &State,
    ended: &EndedSessions,
    sid: &str,
) -> Result<Vec<String>, OAuthError> {
    let client_ids: Vec<String> = ended
        .clients
        .iter()
        .filter(|(s, _)| s == sid)
        .flat_map(|(_, ids)| ids.clone())
        .collect();
    if client_ids.is_empty() {
        return Ok(Vec::new());
    }
    let issuer = state.settings.issuer.clone();
    let sid = sid.to_owned();
    blocking(state, move |ctx| {
        let mut uris = Vec::new();
        for id in &client_ids {
            if let Some(uri) = ctx
                .store
                .find_client(id)?
                .and_then(|c| frontchannel_uri(&c, &issuer, &sid))
            {
                uris.push(uri);
            }
        }
        Ok(uris)
    })
    .await
}
