//! Sending an invitation from the users page (issue 23 §4): the form posts an address;
//! the users page comes back saying what was sent, or why not.

use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;

use super::users::{InviteOutcome, UsersQuery, users_page_with};
use super::{finish, run, verified};
use crate::admin::{AdminError, NewInvitation};
use crate::http::paths::signup;
use crate::http::state::State;
use crate::http::ui::Ui;

#[derive(Deserialize)]
pub(super) struct InviteForm {
    csrf: String,
    email: String,
    #[serde(default)]
    locale: Option<String>,
}

pub(super) async fn invite(
    req: HttpRequest,
    form: web::Form<InviteForm>,
    state: State,
) -> HttpResponse {
    let page = async {
        let form = form.into_inner();
        let console = verified(&req, &state, &form.csrf).await?;
        let issuer = state.settings.issuer.clone();
        let invitation = NewInvitation {
            email: form.email,
            locale: form.locale,
        };
        let sent = run(&state, &console, move |admin| {
            Ok(admin.invite(&invitation, &|token| {
                signup::link(&issuer, signup::INVITATION, token)
            }))
        })
        .await?;
        let outcome = match sent {
            Ok(view) => {
                state.mail.wake();
                InviteOutcome {
                    invited: Some(
                        Ui::current().fill("console.invite.sent", &[("email", &view.email)]),
                    ),
                    error: None,
                }
            }
            // Bad input, signup off or an address with an account: said on the page.
            Err(AdminError::Invalid { description, .. }) => InviteOutcome {
                invited: None,
                error: Some(description),
            },
            Err(AdminError::Conflict(message)) => InviteOutcome {
                invited: None,
                error: Some(message),
            },
            Err(other) => return Err(other.into()),
        };
        users_page_with(&state, &console, UsersQuery::default(), None, outcome).await
    }
    .await;
    finish(&state, page)
}
