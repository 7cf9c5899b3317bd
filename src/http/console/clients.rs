//! The clients page: the registered applications, registering one, a new secret,
//! requiring a second factor of everyone who signs in to one, and deleting one.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use serde::Deserialize;
use serde_json::Value;

use super::{
    Console, CsrfForm, Page, Refusal, confirm, finish, links, run, see_other, signed_in, verified,
};
use crate::admin::CONSOLE_CLIENT_ID;
use crate::http::pages::render;
use crate::http::state::State;
use crate::http::ui::Ui;
use crate::protocol::{ErrorCode, OAuthError};

struct ClientRow {
    name: String,
    client_id: String,
    auth_method: String,
    has_secret: bool,
    /// Everyone who signs in to it needs a second factor.
    require_mfa: bool,
    /// Held to the FAPI 2.0 Security Profile.
    fapi2: bool,
    /// Not the console's own client, which every instance sets up as it is.
    deletable: bool,
}

/// A client just registered (or given a new secret): shown once.
struct Registered {
    /// "NAME is registered".
    title: String,
    client_id: String,
    client_secret: Option<String>,
}

#[derive(Template)]
#[template(path = "admin_clients.html")]
struct ClientsPage {
    ui: crate::http::ui::Ui,
    links: crate::http::paths::Links,
    csrf: String,
    actor: String,
    clients: Vec<ClientRow>,
    /// The `after` of the next page, if there is one.
    next_after: Option<String>,
    registered: Option<Registered>,
    discovery_url: String,
    message: Option<String>,
}

/// Clients a page shows (a deployment may have a hundred thousand: the page never holds
/// them all).
const PAGE: i64 = 50;

#[derive(Default, Deserialize)]
pub(super) struct ClientsQuery {
    /// The previous page's last client_id.
    after: Option<String>,
}

pub(super) async fn clients(
    req: HttpRequest,
    query: web::Query<ClientsQuery>,
    state: State,
) -> HttpResponse {
    let page = async {
        let console = signed_in(&req, &state).await?;
        clients_page_after(&state, &console, query.into_inner().after, None, None).await
    }
    .await;
    finish(&state, page)
}

/// The first page, with what a form just did.
async fn clients_page(
    state: &State,
    console: &Console,
    registered: Option<Registered>,
    message: Option<String>,
) -> Page {
    clients_page_after(state, console, None, registered, message).await
}

async fn clients_page_after(
    state: &State,
    console: &Console,
    after: Option<String>,
    registered: Option<Registered>,
    message: Option<String>,
) -> Page {
    let page = run(state, console, move |admin| {
        admin.list_clients_page(after.as_deref(), Some(PAGE))
    })
    .await?;
    let list = page.clients;
    let text = |v: &Value, k: &str| v[k].as_str().unwrap_or_default().to_owned();
    let status = if message.is_some() {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::OK
    };
    Ok(render(
        status,
        &ClientsPage {
            ui: crate::http::ui::Ui::current(),
            links: links(state),
            csrf: console.csrf.clone(),
            actor: console.name(),
            clients: list
                .iter()
                .map(|c| ClientRow {
                    name: text(c, "client_name"),
                    client_id: text(c, "client_id"),
                    auth_method: text(c, "token_endpoint_auth_method"),
                    has_secret: c.get("client_secret_expires_at").is_some(),
                    require_mfa: c["require_mfa"] == true,
                    fapi2: c["profile"] == "fapi2",
                    deletable: c["client_id"] != CONSOLE_CLIENT_ID,
                })
                .collect(),
            next_after: page.next_after,
            registered,
            discovery_url: state
                .settings
                .endpoint(crate::http::endpoints::discovery::CONFIGURATION),
            message,
        },
    ))
}

#[derive(Deserialize)]
pub(super) struct RegisterForm {
    csrf: String,
    name: String,
    redirect_uri: String,
    kind: String,
    /// The checkbox: present when ticked.
    require_mfa: Option<String>,
}

pub(super) async fn register_client(
    req: HttpRequest,
    form: web::Form<RegisterForm>,
    state: State,
) -> HttpResponse {
    let page = async {
        let form = form.into_inner();
        let console = verified(&req, &state, &form.csrf).await?;
        let draft = crate::protocol::registration::ClientDraft {
            name: Some(form.name.clone()),
            redirect_uris: vec![form.redirect_uri.trim().to_owned()],
            auth_method: (form.kind == "public").then(|| "none".to_owned()),
            require_mfa: form.require_mfa.is_some(),
            ..Default::default()
        };
        match run(&state, &console, move |admin| admin.register_client(draft)).await {
            Ok(r) => {
                let shown = Registered {
                    title: Ui::current().fill("console.registered", &[("name", &form.name)]),
                    client_id: r.client_id,
                    client_secret: r.client_secret,
                };
                clients_page(&state, &console, Some(shown), None).await
            }
            Err(Refusal::Page(e)) if e.0.code == ErrorCode::InvalidRequest => {
                let message = e.0.description.map(|d| d.into_owned());
                clients_page(&state, &console, None, message).await
            }
            Err(other) => Err(other),
        }
    }
    .await;
    finish(&state, page)
}

pub(super) async fn client_action(
    req: HttpRequest,
    path: web::Path<(String, String)>,
    form: web::Form<CsrfForm>,
    state: State,
) -> HttpResponse {
    let page = async {
        let (id, action) = path.into_inner();
        let console = verified(&req, &state, &form.csrf).await?;
        if let "require_mfa" | "waive_mfa" = action.as_str() {
            let required = action == "require_mfa";
            run(&state, &console, move |admin| {
                admin.set_client_require_mfa(&id, required)
            })
            .await?;
            return Ok(see_other(&links(&state).console_clients()));
        }
        let confirmed = form.confirm.as_deref() == Some("yes");
        let name = if confirmed {
            String::new()
        } else {
            let target = id.clone();
            let client = run(&state, &console, move |admin| admin.get_client(&target)).await?;
            client["client_name"].as_str().unwrap_or(&id).to_owned()
        };
        let action_url = links(&state).console_client_action(&id, &action);
        let back = links(&state).console_clients();
        match (action.as_str(), confirmed) {
            ("secret", false) => Ok(confirm(
                &state,
                &console,
                "console.confirm.new_secret",
                &name,
                action_url,
                back,
            )),
            ("secret", true) => {
                let r = run(&state, &console, move |admin| admin.rotate_secret(&id)).await?;
                let shown = Registered {
                    title: Ui::current().fill(
                        "console.registered",
                        &[(
                            "name",
                            r.metadata["client_name"].as_str().unwrap_or_default(),
                        )],
                    ),
                    client_id: r.client_id,
                    client_secret: r.client_secret,
                };
                clients_page(&state, &console, Some(shown), None).await
            }
            ("delete", false) => Ok(confirm(
                &state,
                &console,
                "console.confirm.delete_app",
                &name,
                action_url,
                back,
            )),
            ("delete", true) => {
                run(&state, &console, move |admin| admin.delete_client(&id)).await?;
                Ok(see_other(&links(&state).console_clients()))
            }
            _ => Err(OAuthError::invalid_request("no such action").into()),
        }
    }
    .await;
    finish(&state, page)
}
