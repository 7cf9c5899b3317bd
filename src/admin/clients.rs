//! Clients: register, read, list, change (redirect URIs, grant types, scopes, auth
//! method, any RFC 7591 metadata), rotate the secret, delete. Every change goes through
//! the same validation as a new registration.

use serde_json::{Value, json};

use super::{Admin, AdminError, AdminResult, ClientPage};
use crate::protocol::registration::{
    ClientDraft, client_information, issue_secret, operator_draft_from_json, register,
};
use crate::store::{AdminChange, Client, StoreError};

/// The client id of the admin console (registered by every instance at start).
pub const CONSOLE_CLIENT_ID: &str = "portcullis-console";

/// A client as registered or changed: its metadata, and a new secret to show this once.
#[derive(Debug)]
pub struct RegisteredClient {
    pub client_id: String,
    /// The client's metadata (RFC 7591 names), with `client_secret` if one was issued.
    pub metadata: Value,
    pub client_secret: Option<String>,
}

/// What a change may not touch: the identity of the client and its credentials, which
/// have operations of their own.
const FIXED: [&str; 6] = [
    "client_id",
    "client_secret",
    "client_id_issued_at",
    "client_secret_expires_at",
    "registration_access_token",
    "registration_client_uri",
];

/// A change to a client: metadata members to set, `null` to remove one.
pub type ClientChange = serde_json::Map<String, Value>;

/// A client's metadata as the admin API shows it.
pub fn describe(client: &Client) -> Value {
    let mut out = client_information(client, None, None, "");
    if let Value::Object(map) = &mut out {
        map.remove("registration_client_uri");
        if !client.resources.is_empty() {
            map.insert("resources".into(), json!(client.resources));
        }
        map.insert(
            "registered_dynamically".into(),
            json!(client.registered_dynamically),
        );
        // Ours, not RFC 7591: a PATCH carries it over like the metadata (see `change_draft`).
        map.insert("first_party".into(), json!(client.first_party));
        map.insert("require_mfa".into(), json!(client.require_mfa));
        map.insert(
            "access_token_format".into(),
            json!(client.access_token_format.as_str()),
        );
        // RFC 8693 policy, under the names the admin API and the CLI set it by.
        if let Some(policy) = &client.metadata.token_exchange {
            map.insert("exchange_audiences".into(), json!(policy.audiences));
            map.insert("exchange_impersonation".into(), json!(policy.impersonation));
        }
    }
    out
}

/// The console's own client is the provider's: every instance sets it up at start. An
/// administrator changing its redirect URIs could send other administrators' codes away.
fn refuse_console(id: &str, what: &str) -> AdminResult<()> {
    if id == CONSOLE_CLIENT_ID {
        return Err(AdminError::invalid(format!(
            "the admin console's own client cannot be {what}"
        )));
    }
    Ok(())
}

fn with_secret(client: &Client, secret: Option<String>) -> RegisteredClient {
    let mut metadata = describe(client);
    if let Some(secret) = &secret {
        metadata["client_secret"] = json!(secret);
    }
    RegisteredClient {
        client_id: client.id.clone(),
        metadata,
        client_secret: secret,
    }
}

impl Admin<'_> {
    fn client(&self, id: &str) -> AdminResult<Client> {
        self.store
            .find_client(id)?
            .ok_or(AdminError::NotFound("client"))
    }

    pub fn get_client(&self, id: &str) -> AdminResult<Value> {
        Ok(describe(&self.client(id)?))
    }

    /// Every client, oldest first: one read of the whole table, so for callers that
    /// asked for no page (the admin API before paging, the CLI's own listing).
    pub fn list_clients(&self) -> AdminResult<Vec<Value>> {
        Ok(self.store.list_clients()?.iter().map(describe).collect())
    }

    /// A page of clients, oldest first, after the client `after`.
    pub fn list_clients_page(
        &self,
        after: Option<&str>,
        limit: Option<i64>,
    ) -> AdminResult<ClientPage> {
        let limit = super::page_limit(limit)?;
        // One more than asked tells whether there is a next page.
        let mut clients = self.store.find_clients(after, limit + 1)?;
        let more = clients.len() as i64 > limit;
        clients.truncate(limit as usize);
        Ok(ClientPage {
            next_after: more.then(|| clients.last().map(|c| c.id.clone())).flatten(),
            clients: clients.iter().map(describe).collect(),
        })
    }

    /// Registers a client from RFC 7591 metadata (`operator_draft_from_json`); the
    /// sector identifier document, if any, was fetched into the draft by the caller.
    pub fn register_client(&self, draft: ClientDraft) -> AdminResult<RegisteredClient> {
        let registered = register(draft, &self.settings.issuer, self.kek()?, self.now)?;
        let client = registered.client;
        let event = self.event(
            "client.registered",
            &client.id,
            Some(json!({ "client_name": client.name })),
        );
        match self
            .store
            .apply_audited(AdminChange::CreateClient(&client), &event)
        {
            Ok(_) => {}
            Err(StoreError::Conflict) => {
                return Err(AdminError::Internal("client id collision".into()));
            }
            Err(e) => return Err(e.into()),
        }
        self.logged(&event);
        Ok(with_secret(&client, registered.client_secret))
    }

    /// The draft of `id` changed by `change`: its current metadata with the change laid
    /// over it, parsed as a registration would be.
    pub fn change_draft(
        &self,
        id: &str,
        change: &ClientChange,
    ) -> AdminResult<(Client, ClientDraft)> {
        refuse_console(id, "changed")?;
        let current = self.client(id)?;
        if let Some(fixed) = change.keys().find(|k| FIXED.contains(&k.as_str())) {
            return Err(AdminError::invalid(format!("{fixed} cannot be changed")));
        }
        let mut metadata = describe(&current);
        for (name, value) in change {
            if value.is_null() {
                metadata.as_object_mut().map(|m| m.remove(name));
            } else {
                metadata[name] = value.clone();
            }
        }
        let draft = operator_draft_from_json(&metadata)?;
        Ok((current, draft))
    }

    /// Stores the changed client. Its secret stays unless the new auth method needs one
    /// it cannot have (a first secret, or `client_secret_jwt`, whose secret must be kept
    /// encrypted rather than hashed): then a new one is issued and returned.
    pub fn update_client(
        &self,
        current: Client,
        draft: ClientDraft,
        changed: &[&str],
    ) -> AdminResult<RegisteredClient> {
        let mut client = register(draft, &self.settings.issuer, self.kek()?, self.now)?.client;
        // OIDC Core §8.1: the pairwise `sub` derives from the sector; another sector would
        // give every user of the app a new identity.
        if current.pairwise_sector().is_some()
            && client.pairwise_sector() != current.pairwise_sector()
        {
            return Err(AdminError::Invalid {
                code: "invalid_client_metadata",
                description: "this change would move the client to another sector and change \
                              every user's sub"
                    .into(),
            });
        }
        client.id = current.id.clone();
        client.created_at = current.created_at;
        client.registration_token_hash = current.registration_token_hash.clone();
        client.registered_dynamically = current.registered_dynamically;
        let keeps_secret = client.auth_method.has_secret()
            && current.secret_hash.is_some()
            && (client.auth_method != crate::store::AuthMethod::ClientSecretJwt
                || current.secret_ciphertext.is_some());
        let secret = if keeps_secret {
            client.secret_hash = current.secret_hash.clone();
            client.secret_ciphertext = current.secret_ciphertext.clone();
            None
        } else {
            issue_secret(&mut client, self.kek()?)?
        };
        let event = self.event(
            "client.updated",
            &client.id,
            Some(json!({ "changed": changed, "new_secret": secret.is_some() })),
        );
        self.audited(AdminChange::UpdateClient(&client), &event, "client")?;
        Ok(with_secret(&client, secret))
    }

    /// Requires a second factor of everyone who signs in to the client (or stops
    /// requiring it): one flag of ours, not RFC 7591 metadata, so the rest of the
    /// registration is left as it is rather than checked again.
    pub fn set_client_require_mfa(&self, id: &str, required: bool) -> AdminResult<Value> {
        refuse_console(id, "changed")?;
        let mut client = self.client(id)?;
        client.require_mfa = required;
        let event = self.event(
            "client.updated",
            id,
            Some(json!({ "changed": ["require_mfa"], "new_secret": false })),
        );
        self.audited(AdminChange::UpdateClient(&client), &event, "client")?;
        Ok(describe(&client))
    }

    /// Replaces the client's secret; the old one stops working at once.
    pub fn rotate_secret(&self, id: &str) -> AdminResult<RegisteredClient> {
        refuse_console(id, "given a secret")?;
        let mut client = self.client(id)?;
        if !client.auth_method.has_secret() {
            return Err(AdminError::invalid(format!(
                "the client authenticates with {}: it has no secret",
                client.auth_method.as_str()
            )));
        }
        let secret = issue_secret(&mut client, self.kek()?)?;
        let event = self.event("client.secret_rotated", id, None);
        self.audited(AdminChange::UpdateClient(&client), &event, "client")?;
        Ok(with_secret(&client, secret))
    }

    pub fn delete_client(&self, id: &str) -> AdminResult<()> {
        refuse_console(id, "deleted")?;
        let client = self.client(id)?;
        let event = self.event(
            "client.deleted",
            id,
            Some(json!({ "client_name": client.name })),
        );
        self.audited(AdminChange::DeleteClient(id), &event, "client")?;
        crate::audit::client_removed(id);
        Ok(())
    }
}
