//! The end of a device's sign-in (RFC 8628 §3.3): the user's decision, recorded where
//! the device's polls find it, and the page that sends the user back to the device.

use std::time::Duration;

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse};
use askama::Template;

use crate::domain::GrantType;
use crate::http::client_address::client_address_of;
use crate::http::error::PageError;
use crate::http::page::render;
use crate::http::paths::Links;
use crate::http::state::{State, blocking};
use crate::protocol::OAuthError;
use crate::protocol::authorize::issue_device_code;
use crate::protocol::device::{DeviceAuthorization, KEPT_FOR};
use crate::protocol::grants::device_code::Decision;
use crate::protocol::interaction::Interaction;
use crate::sessions::SsoSession;

#[derive(Template)]
#[template(path = "device_done.html")]
struct DonePage<'a> {
    ui: crate::http::ui::Ui,
    links: Links,
    approved: bool,
    client_name: &'a str,
}

/// The code was decided on already (in another tab), or has expired.
pub fn code_gone() -> OAuthError {
    OAuthError::invalid_request(
        "this code has expired or was already used; start again on your device",
    )
}

fn done(state: &State, approved: bool, client_name: &str) -> HttpResponse {
    render(
        StatusCode::OK,
        &DonePage {
            ui: crate::http::ui::Ui::current(),
            links: Links::new(&state.settings.issuer_path),
            approved,
            client_name,
        },
    )
}

/// Takes `device`'s user code: `false` if another decision took it first.
async fn take_code(state: &State, device: &DeviceAuthorization) -> Result<bool, OAuthError> {
    state
        .sessions
        .take_user_code(&device.user_code_hash)
        .await
        .map_err(OAuthError::from)
}

/// Puts back `device`'s user code after a failure before any decision was recorded (a
/// failure to do even that is logged: the device then waits until it expires).
async fn give_back(state: &State, device: &DeviceAuthorization) {
    let left = Duration::from_secs(device.seconds_left(state.now()));
    if let Err(e) = state
        .sessions
        .restore_user_code(&device.user_code_hash, &device.device_code_hash, left)
        .await
    {
        tracing::warn!(error = %e, "could not put a device's user code back");
    }
}

/// Records the decision the device's polls find; on failure the user code goes back.
async fn record(
    state: &State,
    device: &DeviceAuthorization,
    decision: Decision,
) -> Result<(), OAuthError> {
    let saved = state
        .sessions
        .save_device_decision(&device.device_code_hash, &decision, KEPT_FOR)
        .await;
    if let Err(e) = saved {
        give_back(state, device).await;
        return Err(e.into());
    }
    Ok(())
}

/// The user signed in and allowed `device` (the interaction was taken already): the
/// authorization code its poll redeems, then the approval the poll finds.
pub async fn approve(
    req: &HttpRequest,
    state: &State,
    interaction: &Interaction,
    device: &DeviceAuthorization,
    session: SsoSession,
) -> Result<HttpResponse, PageError> {
    if !device.is_live(state.now()) {
        return Err(code_gone().into());
    }
    // The application may have been removed (or lost the grant) since the code was
    // typed: the device is told `access_denied` and the user a plain page, not a 500.
    let client_id = device.client_id.clone();
    let usable = blocking(state, move |ctx| {
        Ok(ctx
            .store
            .find_client(&client_id)?
            .is_some_and(|c| c.may_use_grant(GrantType::DeviceCode)))
    })
    .await?;
    // One decision per user code, whatever tab or instance makes it.
    if !take_code(state, device).await? {
        return Err(code_gone().into());
    }
    if !usable {
        record(state, device, Decision::Denied).await?;
        return Err(OAuthError::invalid_request("the device's application was removed").into());
    }
    let user_id = session.user_id.clone();
    let request = interaction.request.clone();
    let (code_hash, expires_at) = (device.grant_code_hash.clone(), device.expires_at);
    let issued = blocking(state, move |ctx| {
        issue_device_code(&request, &session, &code_hash, expires_at, ctx)
    })
    .await;
    if let Err(e) = issued {
        // Nothing was decided: the code goes back, and the user may try again.
        give_back(state, device).await;
        return Err(e.into());
    }
    record(state, device, Decision::Approved).await?;
    crate::audit::device_approved(
        &user_id,
        &device.client_id,
        &interaction.request.scope,
        &client_address_of(req, &state.settings),
    );
    Ok(done(state, true, &interaction.client_name))
}

/// The user denied the device on the consent page: the interaction ends, and the
/// device's next poll is `access_denied`.
pub async fn deny(
    req: &HttpRequest,
    state: &State,
    handle: &str,
    interaction: &Interaction,
    user_id: &str,
) -> Result<HttpResponse, PageError> {
    // The interaction ends here, used once.
    state
        .sessions
        .take_pending::<Interaction>(handle)
        .await
        .map_err(OAuthError::from)?;
    let Some(device) = &interaction.device else {
        return Err(OAuthError::server("a device denial without a device").into());
    };
    if !take_code(state, device).await? {
        return Err(code_gone().into());
    }
    record(state, device, Decision::Denied).await?;
    crate::audit::device_denied(
        user_id,
        &device.client_id,
        &client_address_of(req, &state.settings),
    );
    Ok(done(state, false, &interaction.client_name))
}
