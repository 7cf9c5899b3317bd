//! One user's page: their claims, sessions, consents and second factors, and what an
//! administrator may do to them.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use serde::Deserialize;

use super::{confirm, finish, links, run, see_other, signed_in, verified};
use crate::admin::{FactorsView, UserPatch};
use crate::domain::{Secret, format_utc};
use crate::http::pages::render;
use crate::http::sign_out;
use crate::http::state::State;
use crate::http::ui::Ui;
use crate::protocol::OAuthError;

struct ConsentRow {
    client_id: String,
    scope: String,
    since: String,
}

/// A second factor as the page lists it: what it is and when it was added and used;
/// never a secret (`admin::FactorsView` has none).
struct FactorRow {
    /// "Authenticator app", or the passkey's name with its kind.
    name: String,
    added: String,
    last_used: String,
}

struct SessionRow {
    sid: String,
    browser: String,
    address: String,
    since: String,
}

#[derive(Template)]
#[template(path = "admin_user.html")]
struct UserPage {
    ui: crate::http::ui::Ui,
    links: crate::http::paths::Links,
    csrf: String,
    actor: String,
    user: crate::admin::UserView,
    claims: Vec<(String, String)>,
    sessions: Vec<SessionRow>,
    consents: Vec<ConsentRow>,
    factors: Vec<FactorRow>,
    /// "N recovery codes left."
    recovery_codes: String,
    /// Whether a reset would remove anything.
    has_factors: bool,
    message: Option<String>,
}

fn factor_rows(ui: &Ui, factors: &FactorsView) -> Vec<FactorRow> {
    let when =
        |at: Option<i64>| at.map_or_else(|| ui.t("console.factors.never").to_owned(), format_utc);
    let totp = factors.totp.iter().map(|t| FactorRow {
        name: ui.t("console.factors.totp").to_owned(),
        added: format_utc(t.created_at),
        last_used: when(t.last_used_at),
    });
    let passkeys = factors.passkeys.iter().map(|p| FactorRow {
        name: ui.fill("console.factors.passkey", &[("name", &p.name)]),
        added: format_utc(p.created_at),
        last_used: when(p.last_used_at),
    });
    totp.chain(passkeys).collect()
}

#[derive(Deserialize)]
pub(super) struct UserQuery {
    done: Option<String>,
}

pub(super) async fn user(
    req: HttpRequest,
    path: web::Path<String>,
    query: web::Query<UserQuery>,
    state: State,
) -> HttpResponse {
    let page = async {
        let console = signed_in(&req, &state).await?;
        let id = path.into_inner();
        let (user, sessions, consents, factors) = run(&state, &console, move |admin| {
            Ok((
                admin.get_user(&id)?,
                admin.list_sessions(&id)?,
                admin.list_consents(&id)?,
                FactorsView::of(&admin.second_factors(&id)?),
            ))
        })
        .await?;
        let claims = user
            .claims
            .iter()
            .map(|(k, v)| {
                (
                    k.clone(),
                    v.as_str().map_or_else(|| v.to_string(), str::to_owned),
                )
            })
            .collect();
        let message = query.done.as_deref().map(|done| {
            let key = match done {
                "password" => "console.done.password",
                "session" => "console.done.session",
                "withdrawn" => "console.done.withdrawn",
                "factors_reset" => "console.done.factors_reset",
                _ => "console.done.saved",
            };
            Ui::current().t(key).to_owned()
        });
        let ui = Ui::current();
        Ok(render(
            StatusCode::OK,
            &UserPage {
                factors: factor_rows(&ui, &factors),
                recovery_codes: ui.fill(
                    "console.factors.recovery_left",
                    &[("count", &factors.recovery_codes_left.to_string())],
                ),
                has_factors: !factors.is_empty(),
                ui,
                links: links(&state),
                csrf: console.csrf.clone(),
                actor: console.name(),
                claims,
                sessions: sessions
                    .into_iter()
                    .map(|s| SessionRow {
                        sid: s.sid,
                        browser: s.browser,
                        address: s.ip_address.unwrap_or_default(),
                        since: format_utc(s.created_at),
                    })
                    .collect(),
                consents: consents
                    .into_iter()
                    .map(|c| ConsentRow {
                        client_id: c.client_id,
                        scope: c.scope,
                        since: format_utc(c.granted_at),
                    })
                    .collect(),
                user,
                message,
            },
        ))
    }
    .await;
    finish(&state, page)
}

#[derive(Deserialize)]
pub(super) struct UserActionForm {
    csrf: String,
    confirm: Option<String>,
    password: Option<String>,
    client_id: Option<String>,
}

pub(super) async fn user_action(
    req: HttpRequest,
    path: web::Path<(String, String)>,
    form: web::Form<UserActionForm>,
    state: State,
) -> HttpResponse {
    let page = async {
        let (id, action) = path.into_inner();
        let form = form.into_inner();
        let console = verified(&req, &state, &form.csrf).await?;
        let back = links(&state).console_user(&id);
        match action.as_str() {
            "disable" | "enable" | "require_mfa" | "waive_mfa" => {
                let patch = match action.as_str() {
                    "disable" | "enable" => UserPatch {
                        disabled: Some(action == "disable"),
                        ..UserPatch::default()
                    },
                    _ => UserPatch {
                        mfa_required: Some(action == "require_mfa"),
                        ..UserPatch::default()
                    },
                };
                let target = id.clone();
                let (_, ended) = run(&state, &console, move |admin| {
                    admin.update_user(&target, &patch)
                })
                .await?;
                sign_out::forget(&state, &ended).await?;
                Ok(see_other(&format!("{back}?done=saved")))
            }
            "password" => {
                let password = Secret::new(form.password.unwrap_or_default());
                let target = id.clone();
                let ended = run(&state, &console, move |admin| {
                    admin.set_password(&target, &password)
                })
                .await?;
                sign_out::forget(&state, &ended).await?;
                Ok(see_other(&format!("{back}?done=password")))
            }
            "withdraw" => {
                let client = form.client_id.unwrap_or_default();
                let target = id.clone();
                run(&state, &console, move |admin| {
                    admin.withdraw_consent(&target, &client)
                })
                .await?;
                Ok(see_other(&format!("{back}?done=withdrawn")))
            }
            "reset_factors" if form.confirm.as_deref() != Some("yes") => {
                let target = id.clone();
                let user = run(&state, &console, move |admin| admin.get_user(&target)).await?;
                Ok(confirm(
                    &state,
                    &console,
                    "console.confirm.reset_factors",
                    &user.username,
                    links(&state).console_user_action(&id, "reset_factors"),
                    back,
                ))
            }
            "reset_factors" => {
                let target = id.clone();
                let ended = run(&state, &console, move |admin| {
                    admin.reset_second_factors(&target)
                })
                .await?;
                sign_out::forget(&state, &ended).await?;
                Ok(see_other(&format!("{back}?done=factors_reset")))
            }
            "delete" if form.confirm.as_deref() != Some("yes") => {
                let target = id.clone();
                let user = run(&state, &console, move |admin| admin.get_user(&target)).await?;
                Ok(confirm(
                    &state,
                    &console,
                    "console.confirm.delete_user",
                    &user.username,
                    links(&state).console_user_action(&id, "delete"),
                    back,
                ))
            }
            "delete" => {
                let ended = run(&state, &console, move |admin| admin.delete_user(&id)).await?;
                sign_out::forget(&state, &ended).await?;
                Ok(see_other(&links(&state).console_users()))
            }
            _ => Err(OAuthError::invalid_request("no such action").into()),
        }
    }
    .await;
    finish(&state, page)
}

#[derive(Deserialize)]
pub(super) struct EndSessionForm {
    csrf: String,
    sid: String,
}

pub(super) async fn end_session(
    req: HttpRequest,
    form: web::Form<EndSessionForm>,
    state: State,
) -> HttpResponse {
    let page = async {
        let form = form.into_inner();
        let console = verified(&req, &state, &form.csrf).await?;
        let sid = form.sid.clone();
        let ended = run(&state, &console, move |admin| admin.end_session(&sid)).await?;
        sign_out::forget(&state, &ended).await?;
        // Back to the session's user (from the record, not from the form).
        let user = ended
            .sessions
            .first()
            .map(|s| s.user_id.clone())
            .unwrap_or_default();
        Ok(see_other(&format!(
            "{}?done=session",
            links(&state).console_user(&user)
        )))
    }
    .await;
    finish(&state, page)
}
