//! The client configuration endpoint (RFC 7592): a dynamically registered client reads
//! (§2.1), replaces (§2.2) and deletes (§2.3) its own registration with its registration
//! access token, which every update rotates (§3).

use serde_json::{Value, json};

use super::{
    Client, ClientDraft, Registered, client_information, draft_from_json, issue_secret,
    metadata_error, register, registration_uri, sector_document,
};
use crate::crypto::tokens::{constant_time_eq, random_token, token_hash};
use crate::protocol::{Context, OAuthError};
use crate::store::{AdminChange, AuthMethod, NewAuditEvent};

/// Members of the client information response that a client may not set (RFC 7592 §2.2:
/// "The client MUST NOT include the registration_access_token, registration_client_uri,
/// client_secret_expires_at, or client_id_issued_at fields"). The server is free to ignore
/// them, and does: a client that sends back what it read is not refused for it.
const SERVER_MEMBERS: [&str; 4] = [
    "registration_access_token",
    "registration_client_uri",
    "client_secret_expires_at",
    "client_id_issued_at",
];

/// RFC 7592 §2 and RFC 6750 §3.1: an unknown client, a client with no registration
/// access token, another client's token and a rotated one answer alike.
fn denied() -> OAuthError {
    OAuthError::invalid_token("invalid registration access token")
}

/// The client `client_id` if `token` is its registration access token, and the token's
/// hash as stored (compared in constant time: both are hashes of equal length).
fn authorized(
    client_id: &str,
    token: &str,
    ctx: &Context<'_>,
) -> Result<(Client, String), OAuthError> {
    let client = ctx.store.find_client(client_id)?.ok_or_else(denied)?;
    let stored = client.registration_token_hash.clone().ok_or_else(denied)?;
    if !constant_time_eq(token_hash(token).as_bytes(), stored.as_bytes()) {
        return Err(denied());
    }
    Ok((client, stored))
}

/// Client read (RFC 7592 §2.1) with the registration access token.
pub fn read_registration(
    client_id: &str,
    token: &str,
    ctx: &Context<'_>,
) -> Result<Value, OAuthError> {
    let (client, _) = authorized(client_id, token, ctx)?;
    // RFC 7592 §3: the response carries the registration access token (the same one: only
    // an update rotates it).
    Ok(client_information(
        &client,
        None,
        Some(token),
        &registration_uri(ctx, client_id),
    ))
}

fn event(
    client_id: &str,
    action: &str,
    address: &str,
    details: Value,
    ctx: &Context<'_>,
) -> NewAuditEvent {
    NewAuditEvent {
        at: ctx.now,
        actor: format!("client:{client_id}"),
        action: action.to_owned(),
        target: Some(client_id.to_owned()),
        address: Some(address.to_owned()),
        details: Some(details.to_string()),
    }
}

fn logged(event: &NewAuditEvent) {
    crate::audit::admin_change(
        &event.actor,
        &event.action,
        event.target.as_deref().unwrap_or(""),
        event.address.as_deref().unwrap_or(""),
    );
}

/// The draft an update request describes, after the checks of RFC 7592 §2.2 that
/// concern the client's identity: `client_id` present and its own, `client_secret` (if
/// sent) its current secret.
fn update_draft(current: &Client, body: &Value) -> Result<ClientDraft, OAuthError> {
    let Value::Object(members) = body else {
        return Err(metadata_error("the body must be a JSON object"));
    };
    // §2.2: "The client MUST include its client_id field in the request, and it MUST be
    // the same as its currently issued client identifier."
    match members.get("client_id") {
        Some(Value::String(id)) if id == &current.id => {}
        Some(_) => return Err(metadata_error("client_id is not this client's")),
        None => return Err(metadata_error("client_id is required")),
    }
    // §2.2: "If the client includes the client_secret field in the request, the value of
    // this field MUST match the currently issued client secret"; a client never chooses
    // its secret.
    if let Some(sent) = members.get("client_secret") {
        let matches = match (sent.as_str(), &current.secret_hash) {
            (Some(sent), Some(stored)) => {
                constant_time_eq(token_hash(sent).as_bytes(), stored.as_bytes())
            }
            _ => false,
        };
        if !matches {
            return Err(metadata_error("client_secret is not this client's secret"));
        }
    }
    let mut rest = members.clone();
    for name in SERVER_MEMBERS.iter().chain(&["client_id", "client_secret"]) {
        rest.remove(*name);
    }
    // §2.2: the request replaces the registration, and omitted fields are removed: the
    // draft is read as a new registration would be, with the same rules.
    draft_from_json(&Value::Object(rest))
}

/// The redirect URIs the draft's sector identifier document lists, as far as the checks
/// need them. The document is fetched (up to the fetch timeout) only when the update
/// changes the sector identifier URI or names a redirect URI the client did not have:
/// otherwise every redirect URI was checked against this document when it was registered,
/// and an update that changes neither costs no outbound request.
fn sector_redirect_uris(
    current: &Client,
    draft: &ClientDraft,
    ctx: &Context<'_>,
) -> Option<Vec<String>> {
    let uri = draft.sector_identifier_uri.as_ref()?;
    let same_uri = current.metadata.sector_identifier_uri.as_ref() == Some(uri);
    let known = draft
        .redirect_uris
        .iter()
        .all(|r| current.redirect_uris.contains(r));
    if same_uri && known {
        return Some(current.redirect_uris.clone());
    }
    sector_document(uri, ctx)
}

/// Client update (RFC 7592 §2.2): the metadata replaced, validated as a registration, and
/// a new registration access token (§3) that the response carries; the presented one is
/// dead. `address` is the caller's, for the audit trail.
pub fn update_registration(
    client_id: &str,
    token: &str,
    body: &Value,
    address: &str,
    ctx: &Context<'_>,
) -> Result<Value, OAuthError> {
    let (current, presented_hash) = authorized(client_id, token, ctx)?;
    let mut draft = update_draft(&current, body)?;
    // A client without a name is shown by its id (as at registration): its own id, not
    // the one `register` draws.
    if draft.name.as_deref().is_none_or(|n| n.trim().is_empty()) {
        draft.name = Some(current.id.clone());
    }
    // The operator's token exchange policy goes through `register` with the new metadata,
    // so that its checks (the grant type, a confidential client) hold after the update
    // too: a client cannot turn public, or drop the grant, and keep the policy.
    if let Some(policy) = &current.metadata.token_exchange {
        draft.exchange_audiences = policy.audiences.clone();
        draft.exchange_impersonation = policy.impersonation;
    }
    // The operator's profile too: the client's new metadata must still meet it.
    draft.profile = current.metadata.profile;
    draft.sector_redirect_uris = sector_redirect_uris(&current, &draft, ctx);
    let Registered { mut client, .. } = register(draft, &ctx.config.issuer, ctx.kek, ctx.now)?;
    // OIDC Core §8.1: the pairwise `sub` derives from the sector; another sector would
    // give every user of the client a new identity. The server may refuse a change it
    // does not allow (§2.2).
    if current.pairwise_sector().is_some() && client.pairwise_sector() != current.pairwise_sector()
    {
        return Err(metadata_error(
            "this change would move the client to another sector and change every user's sub",
        ));
    }
    client.id = current.id.clone();
    client.created_at = current.created_at;
    client.registered_dynamically = current.registered_dynamically;
    // What only an operator sets is not the client's to change or remove. The store
    // takes these again from the row as it is when the update is written (an operator
    // may change them while this request runs): these copies are for the response.
    client.first_party = current.first_party;
    client.require_mfa = current.require_mfa;
    client.access_token_format = current.access_token_format;
    client.resources = current.resources.clone();
    // The secret stays unless the new method needs one the client lacks: a first secret,
    // or one for client_secret_jwt, which must be kept encrypted rather than hashed.
    let keeps_secret = client.auth_method.has_secret()
        && current.secret_hash.is_some()
        && (client.auth_method != AuthMethod::ClientSecretJwt
            || current.secret_ciphertext.is_some());
    let secret = if keeps_secret {
        client.secret_hash = current.secret_hash.clone();
        client.secret_ciphertext = current.secret_ciphertext.clone();
        None
    } else {
        issue_secret(&mut client, ctx.kek)?
    };
    // §3: a new token with every update; the old one stops working in the same write.
    let new_token = random_token(32);
    client.registration_token_hash = Some(token_hash(&new_token));
    let event = event(
        client_id,
        "client.updated",
        address,
        json!({ "via": "rfc7592", "new_secret": secret.is_some() }),
        ctx,
    );
    let change = AdminChange::UpdateRegisteredClient {
        client: &client,
        token_hash: &presented_hash,
        keeps_secret,
    };
    // `None`: the token was rotated (or the client deleted) since it was checked above,
    // by a concurrent request with the same token. That request won.
    ctx.store
        .apply_audited(change, &event)?
        .ok_or_else(denied)?;
    logged(&event);
    Ok(client_information(
        &client,
        secret.as_deref(),
        Some(&new_token),
        &registration_uri(ctx, client_id),
    ))
}

/// Client delete (RFC 7592 §2.3): the client goes, and with it its grants (their refresh
/// tokens and the access tokens that name them) and consents.
pub fn delete_registration(
    client_id: &str,
    token: &str,
    address: &str,
    ctx: &Context<'_>,
) -> Result<(), OAuthError> {
    let (client, presented_hash) = authorized(client_id, token, ctx)?;
    let event = event(
        client_id,
        "client.deleted",
        address,
        json!({ "via": "rfc7592", "client_name": client.name }),
        ctx,
    );
    let change = AdminChange::DeleteRegisteredClient {
        id: client_id,
        token_hash: &presented_hash,
    };
    ctx.store
        .apply_audited(change, &event)?
        .ok_or_else(denied)?;
    logged(&event);
    crate::audit::client_removed(client_id);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::ErrorCode;
    use crate::protocol::registration::register_dynamic;
    use crate::protocol::testing::TestWorld;

    fn registered(world: &TestWorld) -> Value {
        let draft = draft_from_json(&json!({
            "redirect_uris": ["https://rp.example/cb"],
            "client_name": "RP",
        }))
        .unwrap();
        register_dynamic(draft, &world.ctx()).unwrap()
    }

    fn text(v: &Value, name: &str) -> String {
        v[name].as_str().unwrap().to_owned()
    }

    #[test]
    fn an_update_replaces_the_metadata_and_rotates_the_token() {
        let world = TestWorld::default();
        let reg = registered(&world);
        let (id, token) = (
            text(&reg, "client_id"),
            text(&reg, "registration_access_token"),
        );
        let body = json!({
            "client_id": id,
            "client_secret": reg["client_secret"],
            "redirect_uris": ["https://rp.example/other"],
            "registration_access_token": "ignored",
        });
        let updated = update_registration(&id, &token, &body, "203.0.113.1", &world.ctx()).unwrap();
        assert_eq!(
            updated["redirect_uris"],
            json!(["https://rp.example/other"])
        );
        // Omitted: removed (the name falls back to the id).
        assert_eq!(updated["client_name"], json!(id));
        assert!(updated.get("client_secret").is_none(), "the secret stays");
        let new_token = text(&updated, "registration_access_token");
        assert_ne!(new_token, token);
        let old = read_registration(&id, &token, &world.ctx()).unwrap_err();
        assert_eq!(old.code, ErrorCode::InvalidToken);
        assert!(read_registration(&id, &new_token, &world.ctx()).is_ok());
        let events = world.store.list_audit_events(None, 10).unwrap();
        assert!(
            events
                .iter()
                .any(|e| e.action == "client.updated" && e.actor == format!("client:{id}"))
        );
    }

    #[test]
    fn an_update_must_name_the_client_and_its_secret() {
        let world = TestWorld::default();
        let reg = registered(&world);
        let (id, token) = (
            text(&reg, "client_id"),
            text(&reg, "registration_access_token"),
        );
        for body in [
            json!({"redirect_uris": ["https://rp.example/cb"]}),
            json!({"client_id": "someone-else", "redirect_uris": ["https://rp.example/cb"]}),
            json!({"client_id": id, "client_secret": "chosen", "redirect_uris": ["https://rp.example/cb"]}),
            json!({"client_id": id, "redirect_uris": ["http://rp.example/cb"]}),
            json!(["not", "an", "object"]),
        ] {
            let err = update_registration(&id, &token, &body, "", &world.ctx()).unwrap_err();
            assert!(
                matches!(
                    err.code,
                    ErrorCode::InvalidClientMetadata | ErrorCode::InvalidRedirectUri
                ),
                "{body}: {err:?}"
            );
        }
        // Nothing changed, and the token still works.
        let read = read_registration(&id, &token, &world.ctx()).unwrap();
        assert_eq!(read["client_name"], "RP");
    }

    #[test]
    fn another_clients_token_changes_nothing() {
        let world = TestWorld::default();
        let (a, b) = (registered(&world), registered(&world));
        let body = json!({"client_id": a["client_id"], "redirect_uris": ["https://x.example/cb"]});
        let a_id = text(&a, "client_id");
        let b_token = text(&b, "registration_access_token");
        for result in [
            update_registration(&a_id, &b_token, &body, "", &world.ctx()).map(drop),
            delete_registration(&a_id, &b_token, "", &world.ctx()),
        ] {
            assert_eq!(result.unwrap_err().code, ErrorCode::InvalidToken);
        }
        assert!(world.store.find_client(&a_id).unwrap().is_some());
    }

    #[test]
    fn a_deleted_client_is_gone_and_its_token_with_it() {
        let world = TestWorld::default();
        let reg = registered(&world);
        let (id, token) = (
            text(&reg, "client_id"),
            text(&reg, "registration_access_token"),
        );
        delete_registration(&id, &token, "", &world.ctx()).unwrap();
        assert!(world.store.find_client(&id).unwrap().is_none());
        let again = delete_registration(&id, &token, "", &world.ctx()).unwrap_err();
        assert_eq!(again.code, ErrorCode::InvalidToken);
    }

    /// A registered client with the token-exchange grant, given a policy by an operator.
    fn exchanging(world: &TestWorld) -> (String, String) {
        let draft = draft_from_json(&json!({
            "redirect_uris": ["https://rp.example/cb"],
            "grant_types": ["authorization_code", "urn:ietf:params:oauth:grant-type:token-exchange"],
        }))
        .unwrap();
        let reg = register_dynamic(draft, &world.ctx()).unwrap();
        let id = text(&reg, "client_id");
        let mut client = world.store.find_client(&id).unwrap().unwrap();
        client.metadata.token_exchange = Some(crate::domain::ExchangePolicy {
            audiences: vec!["https://api.example".into()],
            impersonation: true,
        });
        let event = event(&id, "client.updated", "", json!({}), &world.ctx());
        world
            .store
            .apply_audited(AdminChange::UpdateClient(&client), &event)
            .unwrap();
        (id, text(&reg, "registration_access_token"))
    }

    /// Review finding 1: the operator's exchange policy is checked against the new
    /// metadata; an update that no longer fits it is refused, and changes nothing.
    #[test]
    fn an_update_cannot_make_an_exchanging_client_public_or_drop_its_grant() {
        let world = TestWorld::default();
        let (id, token) = exchanging(&world);
        let exchange = "urn:ietf:params:oauth:grant-type:token-exchange";
        for body in [
            json!({
                "client_id": id,
                "redirect_uris": ["https://rp.example/cb"],
                "grant_types": ["authorization_code", exchange],
                "token_endpoint_auth_method": "none",
            }),
            json!({
                "client_id": id,
                "redirect_uris": ["https://rp.example/cb"],
                "grant_types": ["authorization_code"],
            }),
        ] {
            let err = update_registration(&id, &token, &body, "", &world.ctx()).unwrap_err();
            assert_eq!(err.code, ErrorCode::InvalidClientMetadata, "{body}");
        }
        let stored = world.store.find_client(&id).unwrap().unwrap();
        assert!(!stored.is_public() && stored.metadata.token_exchange.is_some());
        // An update that keeps what the policy needs keeps the policy.
        let body = json!({
            "client_id": id,
            "redirect_uris": ["https://rp.example/new"],
            "grant_types": ["authorization_code", exchange],
        });
        update_registration(&id, &token, &body, "", &world.ctx()).unwrap();
        let stored = world.store.find_client(&id).unwrap().unwrap();
        assert!(stored.metadata.token_exchange.is_some());
        assert_eq!(stored.redirect_uris, ["https://rp.example/new"]);
    }

    /// Review finding 2: an RFC 7592 update written after an operator's change (it read
    /// the client before) keeps what the operator set; an operator's change written after
    /// an RFC 7592 update (it read the client before) keeps the rotated token.
    #[test]
    fn a_client_update_and_an_operator_change_do_not_undo_each_other() {
        let world = TestWorld::default();
        let (id, token) = exchanging(&world);
        let stale = world.store.find_client(&id).unwrap().unwrap();
        // The operator, meanwhile: a new secret, first party, MFA, no more policy.
        let mut operator = stale.clone();
        operator.secret_hash = Some(token_hash("the operator's new secret"));
        operator.first_party = true;
        operator.require_mfa = true;
        operator.resources = vec!["https://api.example".into()];
        operator.metadata.token_exchange = None;
        let event = event(&id, "client.updated", "", json!({}), &world.ctx());
        world
            .store
            .apply_audited(AdminChange::UpdateClient(&operator), &event)
            .unwrap();
        // The update, built from the stale read, keeping the secret.
        let mut update = stale.clone();
        update.name = "Renamed".into();
        let rotated = token_hash("the next registration token");
        update.registration_token_hash = Some(rotated.clone());
        let change = AdminChange::UpdateRegisteredClient {
            client: &update,
            token_hash: &token_hash(&token),
            keeps_secret: true,
        };
        assert!(world.store.apply_audited(change, &event).unwrap().is_some());
        let stored = world.store.find_client(&id).unwrap().unwrap();
        assert_eq!(stored.name, "Renamed");
        assert_eq!(stored.secret_hash, operator.secret_hash);
        assert!(stored.first_party && stored.require_mfa);
        assert_eq!(stored.resources, operator.resources);
        assert_eq!(stored.metadata.token_exchange, None);
        assert_eq!(stored.registration_token_hash.as_ref(), Some(&rotated));
        // The operator again, from a read older than the rotation: the token stays rotated.
        let mut late = stale;
        late.require_mfa = false;
        world
            .store
            .apply_audited(AdminChange::UpdateClient(&late), &event)
            .unwrap();
        let stored = world.store.find_client(&id).unwrap().unwrap();
        assert!(!stored.require_mfa);
        assert_eq!(stored.registration_token_hash, Some(rotated));
        assert_eq!(
            read_registration(&id, &token, &world.ctx())
                .unwrap_err()
                .code,
            ErrorCode::InvalidToken
        );
    }

    #[test]
    fn the_store_rotates_only_from_the_hash_it_was_given() {
        let world = TestWorld::default();
        let reg = registered(&world);
        let id = text(&reg, "client_id");
        let mut client = world.store.find_client(&id).unwrap().unwrap();
        let event = event(&id, "client.updated", "", json!({}), &world.ctx());
        client.registration_token_hash = Some(token_hash("next"));
        let stale = AdminChange::UpdateRegisteredClient {
            client: &client,
            token_hash: &token_hash("not the token"),
            keeps_secret: true,
        };
        assert!(world.store.apply_audited(stale, &event).unwrap().is_none());
        let fresh_hash = token_hash(&text(&reg, "registration_access_token"));
        let fresh = AdminChange::UpdateRegisteredClient {
            client: &client,
            token_hash: &fresh_hash,
            keeps_secret: true,
        };
        assert!(world.store.apply_audited(fresh, &event).unwrap().is_some());
        // The same old hash a second time: rotated already.
        assert!(world.store.apply_audited(fresh, &event).unwrap().is_none());
    }
}
