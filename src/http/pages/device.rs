//! The device page (RFC 8628 §3.3): the user types the code their device shows (or
//! arrives with it, `?user_code=`), then signs in and consents as for `/authorize`
//! (`http::interaction`); the decision ends at `http::device`.

use std::time::Duration;

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use serde::Deserialize;

use super::render;
use crate::crypto::tokens::constant_time_eq;
use crate::http::client_address::{client_address_of, limit_key};
use crate::http::cookies::{browser_id, known_browser};
use crate::http::csrf::{form_token, from_our_pages};
use crate::http::error::{PageError, page_response};
use crate::http::interaction::{start, with_cookie};
use crate::http::paths::Links;
use crate::http::state::{State, blocking};
use crate::protocol::OAuthError;
use crate::protocol::device::{
    DeviceAuthorization, USER_CODE_GUESS_WINDOW, USER_CODE_GUESSES, canonical_user_code,
    display_user_code, seal_user_code, user_code_hash,
};
use crate::protocol::interaction::Interaction;

const DEVICE_FORM: &str = "device-form";
const GUESS_WINDOW: Duration = Duration::from_secs(USER_CODE_GUESS_WINDOW as u64);

#[derive(Template)]
#[template(path = "device.html")]
struct DevicePage<'a> {
    ui: crate::http::ui::Ui,
    links: Links,
    csrf: &'a str,
    user_code: &'a str,
    /// The code a `verification_uri_complete` link carried, for the user to check
    /// against their device's screen (RFC 8628 §3.3.1, §5.4).
    check: Option<String>,
    error: Option<&'static str>,
}

#[derive(Deserialize)]
pub struct DeviceQuery {
    #[serde(default)]
    user_code: Option<String>,
}

#[derive(Deserialize)]
pub struct DeviceForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    user_code: String,
}

fn page(
    state: &State,
    status: StatusCode,
    browser: &str,
    user_code: &str,
    error: Option<&'static str>,
) -> HttpResponse {
    let csrf = form_token(state, DEVICE_FORM, "", browser);
    render(
        status,
        &DevicePage {
            ui: crate::http::ui::Ui::current(),
            links: Links::new(&state.settings.issuer_path),
            csrf: &csrf,
            user_code: &display_user_code(user_code),
            check: (error.is_none() && !user_code.is_empty())
                .then(|| canonical_user_code(user_code).map(|c| display_user_code(&c)))
                .flatten(),
            error,
        },
    )
}

pub async fn show(req: HttpRequest, query: web::Query<DeviceQuery>, state: State) -> HttpResponse {
    let (browser, new_cookie) = browser_id(&req, &state);
    let typed = query.user_code.as_deref().unwrap_or("");
    let response = page(&state, StatusCode::OK, &browser, typed, None);
    match new_cookie {
        Some(cookie) => with_cookie(response, &cookie),
        None => response,
    }
}

pub async fn submit(req: HttpRequest, form: web::Form<DeviceForm>, state: State) -> HttpResponse {
    let settings = state.settings.clone();
    page_response(&settings, submit_page(req, form.into_inner(), state).await)
}

async fn submit_page(
    req: HttpRequest,
    form: DeviceForm,
    state: State,
) -> Result<HttpResponse, PageError> {
    let browser = known_browser(&req, &state).filter(|browser| {
        constant_time_eq(
            form_token(&state, DEVICE_FORM, "", browser).as_bytes(),
            form.csrf.as_bytes(),
        )
    });
    let Some(browser) = browser.filter(|_| from_our_pages(&req, &state.settings)) else {
        return Err(OAuthError::invalid_request(
            "the form could not be verified; reload the page and try again",
        )
        .into());
    };
    let address = client_address_of(&req, &state.settings);
    let source = limit_key(&address);
    // Counted before the code is looked up, so that guesses sent at once (to any
    // instance) are all counted; a right code gives its count back.
    let guesses = state
        .sessions
        .reserve_user_code_guess(&source, GUESS_WINDOW)
        .await
        .map_err(OAuthError::from)?;
    let ui = crate::http::ui::Ui::current();
    if guesses > USER_CODE_GUESSES {
        crate::audit::device_code_refused(&address, true);
        return Ok(page(
            &state,
            StatusCode::TOO_MANY_REQUESTS,
            &browser,
            &form.user_code,
            Some(ui.t("device.throttled")),
        ));
    }
    let found: Option<DeviceAuthorization> = match user_code_hash(&state.kek, &form.user_code) {
        Some(hash) => state
            .sessions
            .find_device_by_user_code(&hash)
            .await
            .map_err(OAuthError::from)?,
        None => None,
    };
    let now = state.now();
    let Some(device) = found.filter(|d| d.is_live(now)) else {
        crate::audit::device_code_refused(&address, false);
        return Ok(page(
            &state,
            StatusCode::BAD_REQUEST,
            &browser,
            &form.user_code,
            Some(ui.t("device.wrong_code")),
        ));
    };
    state
        .sessions
        .user_code_guess_right(&source, GUESS_WINDOW)
        .await
        .map_err(OAuthError::from)?;
    let client_id = device.client_id.clone();
    let client = blocking(&state, move |ctx| Ok(ctx.store.find_client(&client_id)?))
        .await?
        .ok_or_else(|| OAuthError::invalid_request("the device's application was removed"))?;
    let sealed = seal_user_code(&state.kek, &device, &form.user_code);
    start(
        &req,
        &state,
        Interaction::for_device(device, &client, sealed),
    )
    .await
}
