//! The signing keys page, and rotating them.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use serde::Deserialize;

use super::{finish, links, run, see_other, signed_in, verified};
use crate::admin::AdminError;
use crate::domain::format_utc;
use crate::http::pages::render;
use crate::http::state::State;

struct KeyRow {
    kid: String,
    alg: String,
    created: String,
    activates: String,
    retires: String,
}

#[derive(Template)]
#[template(path = "admin_keys.html")]
struct KeysPage {
    ui: crate::http::ui::Ui,
    links: crate::http::paths::Links,
    csrf: String,
    actor: String,
    keys: Vec<KeyRow>,
}

pub(super) async fn keys(req: HttpRequest, state: State) -> HttpResponse {
    let page = async {
        let console = signed_in(&req, &state).await?;
        let keys = run(&state, &console, |admin| admin.list_keys()).await?;
        Ok(render(
            StatusCode::OK,
            &KeysPage {
                ui: crate::http::ui::Ui::current(),
                links: links(&state),
                csrf: console.csrf.clone(),
                actor: console.name(),
                keys: keys
                    .into_iter()
                    .map(|k| KeyRow {
                        kid: k.kid,
                        alg: k.alg,
                        created: format_utc(k.created_at),
                        activates: format_utc(k.activates_at),
                        retires: k.retires_at.map(format_utc).unwrap_or_else(|| "-".into()),
                    })
                    .collect(),
            },
        ))
    }
    .await;
    finish(&state, page)
}

#[derive(Deserialize)]
pub(super) struct RotateForm {
    csrf: String,
    #[serde(default)]
    alg: String,
}

pub(super) async fn rotate_keys(
    req: HttpRequest,
    form: web::Form<RotateForm>,
    state: State,
) -> HttpResponse {
    let page = async {
        let form = form.into_inner();
        let console = verified(&req, &state, &form.csrf).await?;
        let alg = Some(form.alg).filter(|a| !a.is_empty());
        let ring = state.keys.clone();
        run(&state, &console, move |admin| {
            admin.rotate_keys(alg.as_deref(), crate::keyring::DEFAULT_ACTIVATION_DELAY)?;
            let kek = admin
                .kek
                .ok_or_else(|| AdminError::Internal("no key-encryption key".into()))?;
            ring.reload(admin.store, kek, admin.now)
                .map_err(|e| AdminError::Internal(e.to_string()))
        })
        .await?;
        Ok(see_other(&links(&state).console_keys()))
    }
    .await;
    finish(&state, page)
}
