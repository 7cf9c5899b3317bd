use std::collections::HashMap;
use std::time::Instant;

use diesel::prelude::*;

use super::{AnyConnection, SqlStore};
use crate::domain::{
    AccessTokenFormat, ApplicationType, ClientMetadata, GrantType, ResponseType, Scopes,
};
use crate::store::schema::{client_redirect_uris, clients};
use crate::store::{AuthMethod, Client, ClientStore, LogoutUri, StoreError, StoreResult};

#[derive(Queryable, Selectable, Insertable, AsChangeset)]
#[diesel(table_name = clients, treat_none_as_null = true)]
struct ClientRow {
    id: String,
    name: String,
    secret_hash: Option<String>,
    token_endpoint_auth_method: String,
    application_type: String,
    grant_types: String,
    response_types: String,
    scope: Option<String>,
    metadata: String,
    registration_token_hash: Option<String>,
    created_at: i64,
    secret_ciphertext: Option<String>,
    jwks: Option<String>,
    jwks_uri: Option<String>,
    pkce_required: bool,
    resources: Option<String>,
    registered_dynamically: bool,
    backchannel_logout_uri: Option<String>,
    backchannel_logout_session_required: bool,
    frontchannel_logout_uri: Option<String>,
    frontchannel_logout_session_required: bool,
    first_party: bool,
    require_mfa: bool,
    access_token_format: String,
}

#[derive(Queryable, Selectable, Insertable)]
#[diesel(table_name = client_redirect_uris)]
struct RedirectUriRow {
    client_id: String,
    kind: String,
    uri: String,
    position: i32,
}

const LOGIN: &str = "login";
const LOGOUT: &str = "logout";

fn words(list: &[String]) -> String {
    list.join(" ")
}

fn split(text: &str) -> Vec<String> {
    text.split(' ')
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

/// A response type is itself a space-separated list ("code id_token"), so the column
/// separates them with commas (rows from before hold one word: "code").
const RESPONSE_TYPE_SEPARATOR: &str = ",";

/// The typed values of a row, read once here: a value no registration could have
/// written is a broken row, reported like an unknown auth method.
fn parse_column<T>(
    id: &str,
    column: &str,
    values: impl Iterator<Item = String>,
    parse: impl Fn(&str) -> Option<T>,
) -> StoreResult<Vec<T>> {
    values
        .map(|v| {
            parse(&v).ok_or_else(|| {
                StoreError::Internal(format!("client {id} has an unknown {column} {v:?}"))
            })
        })
        .collect()
}

fn grant_types(id: &str, text: &str) -> StoreResult<Vec<GrantType>> {
    parse_column(id, "grant type", split(text).into_iter(), GrantType::parse)
}

fn response_types(id: &str, text: &str) -> StoreResult<Vec<ResponseType>> {
    let values = text
        .split(RESPONSE_TYPE_SEPARATOR)
        .filter(|s| !s.is_empty())
        .map(str::to_owned);
    parse_column(id, "response type", values, ResponseType::parse)
}

fn response_types_column(types: &[ResponseType]) -> String {
    types
        .iter()
        .map(|t| t.as_str())
        .collect::<Vec<_>>()
        .join(RESPONSE_TYPE_SEPARATOR)
}

fn assemble(row: ClientRow, uris: Vec<RedirectUriRow>) -> StoreResult<Client> {
    let auth_method = AuthMethod::parse(&row.token_endpoint_auth_method).ok_or_else(|| {
        StoreError::Internal(format!("client {} has an unknown auth method", row.id))
    })?;
    let pick = |kind: &str| {
        uris.iter()
            .filter(|u| u.kind == kind)
            .map(|u| u.uri.clone())
            .collect::<Vec<_>>()
    };
    let metadata = ClientMetadata::from_json(&row.metadata).map_err(|e| {
        StoreError::Internal(format!("client {} has unreadable metadata: {e}", row.id))
    })?;
    let application_type = ApplicationType::parse(&row.application_type).ok_or_else(|| {
        StoreError::Internal(format!("client {} has an unknown application type", row.id))
    })?;
    let access_token_format =
        AccessTokenFormat::parse(&row.access_token_format).ok_or_else(|| {
            StoreError::Internal(format!(
                "client {} has an unknown access token format",
                row.id
            ))
        })?;
    let grant_types = grant_types(&row.id, &row.grant_types)?;
    let response_types = response_types(&row.id, &row.response_types)?;
    let scope = match row.scope.as_deref() {
        None => None,
        Some(text) => Some(Scopes::parse(text).ok_or_else(|| {
            StoreError::Internal(format!("client {} has a malformed scope", row.id))
        })?),
    };
    Ok(Client {
        metadata,
        redirect_uris: pick(LOGIN),
        post_logout_redirect_uris: pick(LOGOUT),
        id: row.id,
        name: row.name,
        secret_hash: row.secret_hash,
        auth_method,
        application_type,
        grant_types,
        response_types,
        scope,
        registration_token_hash: row.registration_token_hash,
        created_at: row.created_at,
        secret_ciphertext: row.secret_ciphertext,
        jwks: row
            .jwks
            .as_deref()
            .and_then(|j| serde_json::from_str(j).ok()),
        jwks_uri: row.jwks_uri,
        pkce_required: row.pkce_required,
        resources: row.resources.as_deref().map(split).unwrap_or_default(),
        registered_dynamically: row.registered_dynamically,
        first_party: row.first_party,
        require_mfa: row.require_mfa,
        access_token_format,
        backchannel_logout: logout_uri(
            row.backchannel_logout_uri,
            row.backchannel_logout_session_required,
        ),
        frontchannel_logout: logout_uri(
            row.frontchannel_logout_uri,
            row.frontchannel_logout_session_required,
        ),
    })
}

fn logout_uri(uri: Option<String>, session_required: bool) -> Option<LogoutUri> {
    uri.map(|uri| LogoutUri {
        uri,
        session_required,
    })
}

fn load_uris(conn: &mut AnyConnection, ids: &[String]) -> StoreResult<Vec<RedirectUriRow>> {
    Ok(client_redirect_uris::table
        .filter(client_redirect_uris::client_id.eq_any(ids))
        .order((
            client_redirect_uris::client_id,
            client_redirect_uris::position,
        ))
        .select(RedirectUriRow::as_select())
        .load(conn)?)
}

/// Clients from their rows and their URIs (of these clients or more), in the rows' order.
fn assemble_all(rows: Vec<ClientRow>, uris: Vec<RedirectUriRow>) -> StoreResult<Vec<Client>> {
    let mut by_client: HashMap<String, Vec<RedirectUriRow>> = HashMap::new();
    for uri in uris {
        by_client
            .entry(uri.client_id.clone())
            .or_default()
            .push(uri);
    }
    rows.into_iter()
        .map(|row| {
            let mine = by_client.remove(&row.id).unwrap_or_default();
            assemble(row, mine)
        })
        .collect()
}

fn row_of(client: &Client) -> (ClientRow, Vec<RedirectUriRow>) {
    let row = ClientRow {
        id: client.id.clone(),
        name: client.name.clone(),
        secret_hash: client.secret_hash.clone(),
        token_endpoint_auth_method: client.auth_method.as_str().to_owned(),
        application_type: client.application_type.as_str().to_owned(),
        grant_types: client
            .grant_types
            .iter()
            .map(|g| g.as_str())
            .collect::<Vec<_>>()
            .join(" "),
        response_types: response_types_column(&client.response_types),
        scope: client.scope.as_ref().map(Scopes::to_string),
        metadata: client.metadata.to_json(),
        registration_token_hash: client.registration_token_hash.clone(),
        created_at: client.created_at,
        secret_ciphertext: client.secret_ciphertext.clone(),
        jwks: client.jwks.as_ref().map(|j| j.to_string()),
        jwks_uri: client.jwks_uri.clone(),
        pkce_required: client.pkce_required,
        resources: (!client.resources.is_empty()).then(|| words(&client.resources)),
        registered_dynamically: client.registered_dynamically,
        first_party: client.first_party,
        require_mfa: client.require_mfa,
        access_token_format: client.access_token_format.as_str().to_owned(),
        backchannel_logout_uri: client.backchannel_logout.as_ref().map(|l| l.uri.clone()),
        backchannel_logout_session_required: client
            .backchannel_logout
            .as_ref()
            .is_some_and(|l| l.session_required),
        frontchannel_logout_uri: client.frontchannel_logout.as_ref().map(|l| l.uri.clone()),
        frontchannel_logout_session_required: client
            .frontchannel_logout
            .as_ref()
            .is_some_and(|l| l.session_required),
    };
    let uris: Vec<RedirectUriRow> = [
        (LOGIN, &client.redirect_uris),
        (LOGOUT, &client.post_logout_redirect_uris),
    ]
    .into_iter()
    .flat_map(|(kind, list)| {
        list.iter().enumerate().map(move |(i, uri)| RedirectUriRow {
            client_id: client.id.clone(),
            kind: kind.to_owned(),
            uri: uri.clone(),
            position: i as i32,
        })
    })
    .collect();
    (row, uris)
}

fn insert_uris(conn: &mut AnyConnection, uris: &[RedirectUriRow]) -> StoreResult<()> {
    for uri in uris {
        diesel::insert_into(client_redirect_uris::table)
            .values(uri)
            .execute(conn)?;
    }
    Ok(())
}

/// Inside the caller's transaction.
pub(super) fn insert_client_in(conn: &mut AnyConnection, client: &Client) -> StoreResult<()> {
    let (row, uris) = row_of(client);
    diesel::insert_into(clients::table)
        .values(&row)
        .execute(conn)?;
    insert_uris(conn, &uris)
}

/// Inside the caller's transaction: the row and its URIs replaced (the id and
/// registration time stay).
///
/// The registration access token hash is not the caller's to write: an operator's change
/// (read before, written now) keeps the hash stored at this moment, so that it never
/// brings back a token an RFC 7592 update rotated meanwhile.
pub(super) fn update_client_in(conn: &mut AnyConnection, client: &Client) -> StoreResult<bool> {
    // The row locked (a no-op UPDATE, as in `registration_token_is_in`), then its hash
    // read: no other writer can change it before this transaction ends.
    let locked = diesel::update(clients::table.find(&client.id))
        .set(clients::registration_token_hash.eq(clients::registration_token_hash))
        .execute(conn)?;
    if locked == 0 {
        return Ok(false);
    }
    let stored: Option<String> = clients::table
        .find(&client.id)
        .select(clients::registration_token_hash)
        .get_result(conn)?;
    let client = Client {
        registration_token_hash: stored,
        ..client.clone()
    };
    write_client_in(conn, &client)
}

/// Inside the caller's transaction: an RFC 7592 §2.2 update, applied only if the
/// registration access token hash is still `token_hash` (the row locked meanwhile). What
/// only an operator sets (`first_party`, `require_mfa`, `access_token_format`, `resources`, the token exchange
/// policy, the security profile) and, when `keeps_secret`, the secret columns are taken
/// from the row as it is now, not from `client`: the request was checked against an
/// earlier read (and may have waited seconds for a sector document), and an operator's
/// change made meanwhile (a rotated secret, a removed policy) must not be undone by it.
/// A profile changed meanwhile refuses the update instead (`false`, the token not
/// rotated): its metadata was checked against the other profile, so neither that
/// metadata with the new profile nor the old profile may be stored. A retry is checked
/// against the new one.
pub(super) fn update_registered_client_in(
    conn: &mut AnyConnection,
    client: &Client,
    token_hash: &str,
    keeps_secret: bool,
) -> StoreResult<bool> {
    if !registration_token_is_in(conn, &client.id, token_hash)? {
        return Ok(false);
    }
    let Some(fresh) = find_client_in(conn, &client.id)? else {
        return Ok(false);
    };
    if fresh.metadata.profile != client.metadata.profile {
        return Ok(false);
    }
    let mut merged = client.clone();
    merged.first_party = fresh.first_party;
    merged.require_mfa = fresh.require_mfa;
    merged.access_token_format = fresh.access_token_format;
    merged.resources = fresh.resources;
    merged.metadata.token_exchange = fresh.metadata.token_exchange;
    if keeps_secret {
        merged.secret_hash = fresh.secret_hash;
        merged.secret_ciphertext = fresh.secret_ciphertext;
    }
    write_client_in(conn, &merged)
}

/// Inside the caller's transaction: the client as stored now (no cache).
pub(super) fn find_client_in(conn: &mut AnyConnection, id: &str) -> StoreResult<Option<Client>> {
    let Some(row) = clients::table
        .find(id)
        .select(ClientRow::as_select())
        .get_result(conn)
        .optional()?
    else {
        return Ok(None);
    };
    let uris = load_uris(conn, std::slice::from_ref(&row.id))?;
    assemble(row, uris).map(Some)
}

/// Inside the caller's transaction: every column written from `client`.
fn write_client_in(conn: &mut AnyConnection, client: &Client) -> StoreResult<bool> {
    let (row, uris) = row_of(client);
    let n = diesel::update(clients::table.find(&client.id))
        .set(&row)
        .execute(conn)?;
    if n == 0 {
        return Ok(false);
    }
    diesel::delete(
        client_redirect_uris::table.filter(client_redirect_uris::client_id.eq(&client.id)),
    )
    .execute(conn)?;
    insert_uris(conn, &uris)?;
    Ok(true)
}

/// Inside the caller's transaction: whether the client's registration access token hash
/// is still `token_hash`, with the client's row locked until the transaction ends (a
/// no-op UPDATE, as `rotate_refresh_token` locks its grant), so that of two transactions
/// presenting the same hash the second waits, then finds it replaced.
pub(super) fn registration_token_is_in(
    conn: &mut AnyConnection,
    id: &str,
    token_hash: &str,
) -> StoreResult<bool> {
    let claimed = diesel::update(
        clients::table
            .find(id)
            .filter(clients::registration_token_hash.eq(token_hash)),
    )
    .set(clients::registration_token_hash.eq(clients::registration_token_hash))
    .execute(conn)?;
    Ok(claimed == 1)
}

/// Inside the caller's transaction.
pub(super) fn delete_client_in(conn: &mut AnyConnection, id: &str) -> StoreResult<bool> {
    diesel::delete(client_redirect_uris::table.filter(client_redirect_uris::client_id.eq(id)))
        .execute(conn)?;
    Ok(diesel::delete(clients::table.find(id)).execute(conn)? > 0)
}

impl ClientStore for SqlStore {
    fn create_client(&self, client: &Client) -> StoreResult<()> {
        self.conn()?
            .transaction::<_, StoreError, _>(|conn| insert_client_in(conn, client))
    }

    /// Client metadata is read on nearly every request and rarely changes, so it is kept
    /// in the liveness cache: a change made here or announced by another instance clears
    /// it at once, and one nobody announced is seen within `LIVENESS_TTL`.
    fn find_client(&self, id: &str) -> StoreResult<Option<Client>> {
        if let Some(client) = self.liveness.client(id) {
            return Ok(Some(client));
        }
        // A read that a change overtakes is not remembered (or the old record would be
        // served until the TTL, after the change was heard).
        let seen = self.liveness.generation();
        let asked_at = Instant::now();
        let mut conn = self.conn()?;
        let Some(row) = clients::table
            .find(id)
            .select(ClientRow::as_select())
            .get_result(&mut *conn)
            .optional()?
        else {
            return Ok(None);
        };
        let uris = load_uris(&mut conn, std::slice::from_ref(&row.id))?;
        let client = assemble(row, uris)?;
        self.liveness.remember_client(seen, &client, asked_at);
        Ok(Some(client))
    }

    fn list_clients(&self) -> StoreResult<Vec<Client>> {
        let mut conn = self.conn()?;
        let rows = clients::table
            .order((clients::created_at, clients::id))
            .select(ClientRow::as_select())
            .load(&mut *conn)?;
        // Every client's URIs, unfiltered: a list of every id would pass SQLite's limit
        // of bound parameters at a few tens of thousands of clients.
        let uris = client_redirect_uris::table
            .order((
                client_redirect_uris::client_id,
                client_redirect_uris::position,
            ))
            .select(RedirectUriRow::as_select())
            .load(&mut *conn)?;
        assemble_all(rows, uris)
    }

    fn find_clients(&self, after: Option<&str>, limit: i64) -> StoreResult<Vec<Client>> {
        let mut conn = self.conn()?;
        let mut select = clients::table.select(ClientRow::as_select()).into_boxed();
        if let Some(after) = after {
            // Keyset paging in (created_at, id) order, from the client `after`. One
            // deleted since has lost its place with its row: the clients whose id sorts
            // after it follow, rather than an error for a page already shown.
            let at: Option<i64> = clients::table
                .find(after)
                .select(clients::created_at)
                .get_result(&mut *conn)
                .optional()?;
            select = match at {
                Some(at) => select.filter(
                    clients::created_at.gt(at).or(clients::created_at
                        .eq(at)
                        .and(clients::id.gt(after.to_owned()))),
                ),
                None => select.filter(clients::id.gt(after.to_owned())),
            };
        }
        let rows = select
            .order((clients::created_at, clients::id))
            .limit(limit)
            .load(&mut *conn)?;
        let ids: Vec<String> = rows.iter().map(|r| r.id.clone()).collect();
        let uris = load_uris(&mut conn, &ids)?;
        assemble_all(rows, uris)
    }

    fn delete_client(&self, id: &str) -> StoreResult<bool> {
        let deleted = self
            .conn()?
            .transaction::<_, StoreError, _>(|conn| delete_client_in(conn, id));
        // The client, and its grants with it: forgotten here and on the other instances.
        self.liveness_changed();
        deleted
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typed_columns_keep_their_text_form() {
        let types = response_types("rp", "code,id_token token,code id_token").unwrap();
        assert_eq!(
            types,
            [
                ResponseType::CODE,
                ResponseType::parse("id_token token").unwrap(),
                ResponseType::parse("code id_token").unwrap(),
            ]
        );
        assert_eq!(
            response_types_column(&types),
            "code,id_token token,code id_token"
        );
        assert!(response_types("rp", "").unwrap().is_empty());
        assert_eq!(
            grant_types("rp", "authorization_code refresh_token").unwrap(),
            [GrantType::AuthorizationCode, GrantType::RefreshToken]
        );
    }

    #[test]
    fn a_value_no_registration_writes_is_a_broken_row() {
        assert!(matches!(
            grant_types("rp", "authorization_code password"),
            Err(StoreError::Internal(_))
        ));
        assert!(matches!(
            response_types("rp", "code,token"),
            Err(StoreError::Internal(_))
        ));
    }
}
