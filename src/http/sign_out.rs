//! Ending browser sessions from a page (logout, the account page, a sign-in that
//! replaces another user's session): the adapter of `protocol::sign_out`, which decides
//! what ends and whom to tell. Here are its ports: the store on the blocking pool, the
//! session store, and this instance's outbox.

use crate::http::state::{State, blocking};
use crate::protocol::OAuthError;
pub use crate::protocol::sign_out::Ending;
use crate::protocol::sign_out::{self, SignOutPorts};
use crate::store::{Client, EndedSessions};

struct StatePorts<'a>(&'a State);

impl SignOutPorts for StatePorts<'_> {
    async fn end_in_store(&self, ending: Ending) -> Result<EndedSessions, OAuthError> {
        blocking(self.0, move |ctx| {
            Ok(sign_out::end_in_store(ctx.store, &ending, ctx.now)?)
        })
        .await
    }

    async fn forget_record(&self, store_key: &str) -> Result<(), OAuthError> {
        Ok(self.0.sessions.delete_sso_record(store_key).await?)
    }

    fn wake_outbox(&self) {
        self.0.outbox.wake();
    }

    async fn clients(&self, ids: Vec<String>) -> Result<Vec<Client>, OAuthError> {
        blocking(self.0, move |ctx| {
            let mut clients = Vec::new();
            for id in &ids {
                clients.extend(ctx.store.find_client(id)?);
            }
            Ok(clients)
        })
        .await
    }
}

/// Ends what `ending` names, forgets the ended sessions' records, and audits.
pub async fn end(state: &State, ending: Ending) -> Result<EndedSessions, OAuthError> {
    sign_out::sign_out(&StatePorts(state), ending).await
}

/// What follows ending sessions in the database, wherever they were ended (the admin
/// API, the console): see `protocol::sign_out::forget`.
pub async fn forget(state: &State, ended: &EndedSessions) -> Result<(), OAuthError> {
    sign_out::forget(&StatePorts(state), ended).await
}

/// The front-channel logout URIs (with `iss` and `sid`) of the clients that got tokens
/// in the ended session `sid`: what this browser's signed-out page loads.
pub async fn frontchannel_uris(
    state: &State,
    ended: &EndedSessions,
    sid: &str,
) -> Result<Vec<String>, OAuthError> {
    sign_out::frontchannel_uris(&StatePorts(state), ended, sid, &state.settings.issuer).await
}
