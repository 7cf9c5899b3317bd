//! The admin API (`/admin/api/...`): JSON over HTTP for the operations of `admin`,
//! each authorized by a bearer access token with the admin scope (`admin::authenticate`).
//! Handlers parse, run the operation on the blocking pool, and finish what lives outside
//! the database (session-store records, the key ring). Groups are in `groups`.

mod groups;
mod invitations;

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;
use serde::de::DeserializeOwned;

use crate::admin::{
    Admin, AdminError, AdminResult, ClientChange, FactorsView, NewUser, UserPatch, authenticate,
};
use crate::domain::Secret;
use crate::http::body::BodyType;
use crate::http::client_address::client_address_of;
use crate::http::dpop::resource_token;
use crate::http::error::AdminApiError;
use crate::http::paths::{admin_api, fill};
use crate::http::routes::at;
use crate::http::sign_out;
use crate::http::state::State;
use crate::protocol::Context;
use crate::protocol::registration::{operator_draft_from_json, sector_document};
use crate::store::EndedSessions;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        at(admin_api::USERS)
            .get(list_users)
            .post(create_user)
            .done(),
    )
    .service(
        at(admin_api::USER)
            .get(get_user)
            .patch(update_user)
            .delete(delete_user)
            .done(),
    )
    .service(at(admin_api::USER_PASSWORD).post(set_password).done())
    .service(
        at(admin_api::USER_SESSIONS)
            .get(list_sessions)
            .delete(end_user_sessions)
            .done(),
    )
    .service(
        at(admin_api::USER_FACTORS)
            .get(list_factors)
            .delete(reset_factors)
            .done(),
    )
    .service(at(admin_api::USER_CONSENTS).get(list_consents).done())
    .service(at(admin_api::USER_CONSENT).delete(withdraw_consent).done())
    .service(at(admin_api::SESSION).delete(end_session).done())
    .service(
        at(admin_api::CLIENTS)
            .get(list_clients)
            .post(register_client)
            .done(),
    )
    .service(
        at(admin_api::CLIENT)
            .get(get_client)
            .patch(update_client)
            .delete(delete_client)
            .done(),
    )
    .service(at(admin_api::CLIENT_SECRET).post(rotate_secret).done())
    .service(at(admin_api::KEYS).get(list_keys).done())
    .service(at(admin_api::UPSTREAMS).get(list_upstreams).done())
    .service(at(admin_api::ROTATE_KEYS).post(rotate_keys).done())
    .service(at(admin_api::AUDIT).get(list_audit).done())
    .configure(groups::configure)
    .configure(invitations::configure);
}

type Reply = Result<HttpResponse, AdminApiError>;

/// Runs `op` for the administrator the request's bearer token speaks for.
async fn run<T, F>(req: &HttpRequest, state: &State, op: F) -> Result<T, AdminApiError>
where
    T: Send + 'static,
    F: FnOnce(&Admin<'_>, &Context<'_>) -> AdminResult<T> + Send + 'static,
{
    // The token travels in the header only: bodies here are JSON (RFC 6750 §2.2 is for
    // form bodies).
    let presented = resource_token(req, &[], state).await?;
    let address = client_address_of(req, &state.settings);
    let state = state.clone();
    let span = tracing::Span::current();
    web::block(move || {
        span.in_scope(|| {
            state.with_context(|ctx| {
                let actor = authenticate(&presented.token, presented.presented(), ctx)
                    .map_err(|e| presented.refusal(&state, e))?;
                op(
                    &Admin::in_context(ctx, &state.settings, &actor, Some(&address)),
                    ctx,
                )
                .map_err(AdminApiError::from)
            })
        })
    })
    .await
    .map_err(|e| AdminApiError::Refused(AdminError::Internal(e.to_string())))?
}

/// A request body and whether it was declared `application/json`.
struct JsonBody {
    declared: bool,
    bytes: web::Bytes,
}

impl JsonBody {
    fn of(req: &HttpRequest, bytes: web::Bytes) -> Self {
        Self {
            declared: BodyType::Json.declared_by(req),
            bytes,
        }
    }

    fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    /// The body as `T`. Parsed inside `run`, after the caller is authenticated: a caller
    /// without a good token learns that (401), not what is wrong with its input.
    fn parse<T: DeserializeOwned>(&self) -> AdminResult<T> {
        if !self.declared {
            return Err(AdminError::invalid(BodyType::Json.refusal()));
        }
        let refused = |e: serde_json::Error| {
            AdminError::invalid(format!("the body is not what this call takes: {e}"))
        };
        // Every body of this API is a JSON object: serde would also fill a struct from
        // an array of its fields' values in order (`["Ops"]` as `{"name": "Ops"}`). The
        // first byte past JSON's whitespace (RFC 8259 §2) says which it is; the struct is
        // then read straight from the bytes, so a field given twice is refused (through a
        // `Value` the last one would silently win, as RFC 8259 §4 leaves it open).
        let first = self
            .bytes
            .iter()
            .find(|b| !matches!(b, b' ' | b'\t' | b'\n' | b'\r'));
        if first != Some(&b'{') {
            return Err(AdminError::invalid(
                "the body is not what this call takes: a JSON object",
            ));
        }
        serde_json::from_slice(&self.bytes).map_err(refused)
    }
}

/// The query string as `T`, likewise.
fn query<T: DeserializeOwned>(text: &str) -> AdminResult<T> {
    web::Query::<T>::from_query(text)
        .map(web::Query::into_inner)
        .map_err(|e| AdminError::invalid(format!("bad query: {e}")))
}

fn ok(value: impl serde::Serialize) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(value)
}

fn created(location: String, value: impl serde::Serialize) -> HttpResponse {
    HttpResponse::Created()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .insert_header((header::LOCATION, location))
        .json(value)
}

fn no_content() -> HttpResponse {
    HttpResponse::NoContent()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .finish()
}

/// Ending sessions in the database is followed by their session-store records.
async fn forgotten(state: &State, ended: &EndedSessions) -> Result<(), AdminApiError> {
    sign_out::forget(state, ended)
        .await
        .map_err(|e| AdminError::from(e).into())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UserListQuery {
    search: Option<String>,
    after: Option<String>,
    limit: Option<i64>,
}

async fn list_users(req: HttpRequest, state: State) -> Reply {
    let text = req.query_string().to_owned();
    let page = run(&req, &state, move |admin, _| {
        let q: UserListQuery = query(&text)?;
        admin.list_users(q.search.as_deref(), q.after.as_deref(), q.limit)
    })
    .await?;
    Ok(ok(page))
}

async fn create_user(req: HttpRequest, body: web::Bytes, state: State) -> Reply {
    let body = JsonBody::of(&req, body);
    let user = run(&req, &state, move |admin, _| {
        admin.create_user(body.parse::<NewUser>()?)
    })
    .await?;
    let location = state.settings.endpoint(&fill(admin_api::USER, &[&user.id]));
    Ok(created(location, user))
}

async fn get_user(req: HttpRequest, path: web::Path<String>, state: State) -> Reply {
    let id = path.into_inner();
    Ok(ok(
        run(&req, &state, move |admin, _| admin.get_user(&id)).await?
    ))
}

async fn update_user(
    req: HttpRequest,
    path: web::Path<String>,
    body: web::Bytes,
    state: State,
) -> Reply {
    let id = path.into_inner();
    let body = JsonBody::of(&req, body);
    let (user, ended) = run(&req, &state, move |admin, _| {
        admin.update_user(&id, &body.parse::<UserPatch>()?)
    })
    .await?;
    forgotten(&state, &ended).await?;
    Ok(ok(user))
}

async fn delete_user(req: HttpRequest, path: web::Path<String>, state: State) -> Reply {
    let id = path.into_inner();
    let ended = run(&req, &state, move |admin, _| admin.delete_user(&id)).await?;
    forgotten(&state, &ended).await?;
    Ok(no_content())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PasswordBody {
    password: Secret<String>,
}

async fn set_password(
    req: HttpRequest,
    path: web::Path<String>,
    body: web::Bytes,
    state: State,
) -> Reply {
    let id = path.into_inner();
    let body = JsonBody::of(&req, body);
    let ended = run(&req, &state, move |admin, _| {
        let PasswordBody { password } = body.parse()?;
        admin.set_password(&id, &password)
    })
    .await?;
    forgotten(&state, &ended).await?;
    Ok(no_content())
}

async fn list_sessions(req: HttpRequest, path: web::Path<String>, state: State) -> Reply {
    let id = path.into_inner();
    Ok(ok(run(&req, &state, move |admin, _| {
        admin.list_sessions(&id)
    })
    .await?))
}

async fn end_user_sessions(req: HttpRequest, path: web::Path<String>, state: State) -> Reply {
    let id = path.into_inner();
    let ended = run(&req, &state, move |admin, _| admin.end_user_sessions(&id)).await?;
    forgotten(&state, &ended).await?;
    Ok(no_content())
}

async fn end_session(req: HttpRequest, path: web::Path<String>, state: State) -> Reply {
    let sid = path.into_inner();
    let ended = run(&req, &state, move |admin, _| admin.end_session(&sid)).await?;
    forgotten(&state, &ended).await?;
    Ok(no_content())
}

async fn list_factors(req: HttpRequest, path: web::Path<String>, state: State) -> Reply {
    let id = path.into_inner();
    let factors = run(&req, &state, move |admin, _| {
        admin.second_factors(&id).map(|f| FactorsView::of(&f))
    })
    .await?;
    Ok(ok(factors))
}

/// Removes the user's second factors; their sessions and grants end with them (as
/// `DELETE .../sessions`, and announced to the other instances the same way).
async fn reset_factors(req: HttpRequest, path: web::Path<String>, state: State) -> Reply {
    let id = path.into_inner();
    let ended = run(&req, &state, move |admin, _| {
        admin.reset_second_factors(&id)
    })
    .await?;
    forgotten(&state, &ended).await?;
    Ok(no_content())
}

async fn list_consents(req: HttpRequest, path: web::Path<String>, state: State) -> Reply {
    let id = path.into_inner();
    Ok(ok(run(&req, &state, move |admin, _| {
        admin.list_consents(&id)
    })
    .await?))
}

async fn withdraw_consent(
    req: HttpRequest,
    path: web::Path<(String, String)>,
    state: State,
) -> Reply {
    let (user, client) = path.into_inner();
    run(&req, &state, move |admin, _| {
        admin.withdraw_consent(&user, &client)
    })
    .await?;
    Ok(no_content())
}

/// Unknown parameters are not refused here (unlike the other listings): before paging,
/// this listing took none and ignored whatever it was given.
#[derive(Deserialize)]
struct ClientListQuery {
    after: Option<String>,
    limit: Option<i64>,
}

/// Every client without `after` and `limit`, as before paging (one read of the whole
/// table); with either, a page of them in the same order (oldest first). Both answer a
/// JSON array: the next page is the one `after` the last client_id, and a page shorter
/// than `limit` is the last.
async fn list_clients(req: HttpRequest, state: State) -> Reply {
    let text = req.query_string().to_owned();
    let clients = run(&req, &state, move |admin, _| {
        let q: ClientListQuery = query(&text)?;
        if q.after.is_none() && q.limit.is_none() {
            return admin.list_clients();
        }
        Ok(admin
            .list_clients_page(q.after.as_deref(), q.limit)?
            .clients)
    })
    .await?;
    Ok(ok(clients))
}

async fn register_client(req: HttpRequest, body: web::Bytes, state: State) -> Reply {
    let body = JsonBody::of(&req, body);
    let registered = run(&req, &state, move |admin, ctx| {
        let metadata: serde_json::Value = body.parse()?;
        let mut draft = operator_draft_from_json(&metadata)?;
        if let Some(uri) = &draft.sector_identifier_uri {
            draft.sector_redirect_uris = sector_document(uri, ctx);
        }
        admin.register_client(draft)
    })
    .await?;
    let location = state
        .settings
        .endpoint(&fill(admin_api::CLIENT, &[&registered.client_id]));
    Ok(created(location, registered.metadata))
}

async fn get_client(req: HttpRequest, path: web::Path<String>, state: State) -> Reply {
    let id = path.into_inner();
    Ok(ok(
        run(&req, &state, move |admin, _| admin.get_client(&id)).await?
    ))
}

async fn update_client(
    req: HttpRequest,
    path: web::Path<String>,
    body: web::Bytes,
    state: State,
) -> Reply {
    let id = path.into_inner();
    let body = JsonBody::of(&req, body);
    let updated = run(&req, &state, move |admin, ctx| {
        let change: ClientChange = body.parse()?;
        let (current, mut draft) = admin.change_draft(&id, &change)?;
        if let Some(uri) = &draft.sector_identifier_uri {
            draft.sector_redirect_uris = sector_document(uri, ctx);
        }
        let changed: Vec<&str> = change.keys().map(String::as_str).collect();
        admin.update_client(current, draft, &changed)
    })
    .await?;
    Ok(ok(updated.metadata))
}

async fn rotate_secret(req: HttpRequest, path: web::Path<String>, state: State) -> Reply {
    let id = path.into_inner();
    let rotated = run(&req, &state, move |admin, _| admin.rotate_secret(&id)).await?;
    Ok(ok(serde_json::json!({
        "client_id": rotated.client_id,
        "client_secret": rotated.client_secret,
    })))
}

async fn delete_client(req: HttpRequest, path: web::Path<String>, state: State) -> Reply {
    let id = path.into_inner();
    run(&req, &state, move |admin, _| admin.delete_client(&id)).await?;
    Ok(no_content())
}

/// `GET /admin/api/upstreams` (issue 24): the configured upstream providers and their
/// health as this instance saw it (discovery fetched and when, the JWK Set's last fetch,
/// the last error). Configuration is the source of truth: nothing here changes them.
async fn list_upstreams(req: HttpRequest, state: State) -> Reply {
    // The caller is an admin (the same check as every admin call).
    run(&req, &state, |_, _| Ok(())).await?;
    let health = state.upstreams.health();
    let list: Vec<serde_json::Value> = state
        .upstreams
        .list()
        .zip(health)
        .map(|(p, h)| {
            serde_json::json!({
                "id": p.id,
                "name": p.name,
                "issuer": p.issuer,
                "preset": p.preset,
                "jit": p.jit,
                "link": match p.link {
                    crate::config::LinkMode::Off => "off",
                    crate::config::LinkMode::VerifiedEmail => "verified_email",
                },
                "trusted_email_domains": p.trusted_email_domains,
                "discovered": h.discovered,
                "discovered_at": h.discovered_at,
                "jwks_fetched_at": h.jwks_fetched_at,
                "last_error": h.last_error,
            })
        })
        .collect();
    Ok(ok(serde_json::json!({ "upstreams": list })))
}

async fn list_keys(req: HttpRequest, state: State) -> Reply {
    Ok(ok(run(&req, &state, |admin, _| admin.list_keys()).await?))
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RotateBody {
    alg: Option<String>,
    activate_in: Option<i64>,
}

async fn rotate_keys(req: HttpRequest, body: web::Bytes, state: State) -> Reply {
    let keys = state.keys.clone();
    // No body at all is every default; a body is JSON like any other.
    let body = JsonBody::of(&req, body);
    let rotated = run(&req, &state, move |admin, ctx| {
        let RotateBody { alg, activate_in } = if body.is_empty() {
            RotateBody::default()
        } else {
            body.parse()?
        };
        let rotated = admin.rotate_keys(
            alg.as_deref(),
            activate_in.unwrap_or(crate::keyring::DEFAULT_ACTIVATION_DELAY),
        )?;
        // Published here at once; other instances at their next key refresh.
        keys.reload(admin.store, ctx.kek, admin.now)
            .map_err(|e| AdminError::Internal(e.to_string()))?;
        Ok(rotated)
    })
    .await?;
    Ok(ok(rotated))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AuditQuery {
    before: Option<i64>,
    limit: Option<i64>,
}

async fn list_audit(req: HttpRequest, state: State) -> Reply {
    let text = req.query_string().to_owned();
    let events = run(&req, &state, move |admin, _| {
        let q: AuditQuery = query(&text)?;
        admin.list_audit(q.before, q.limit)
    })
    .await?;
    Ok(ok(events))
}
