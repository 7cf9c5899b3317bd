//! A passkey instead of a password on an invitation's page (`/signup/invitation`),
//! `protocol::signup::passkey` decides. Signed out: both requests carry the invitation
//! form's token, bound to this browser and to the invitation's token, come from our own
//! pages (`Origin`), and name the invitation (`token`). The ceremony is kept under a key
//! bound to the browser and to the invitation's token hash, with the username and the new
//! account's id inside, so the answer can finish only this invitation, for this name.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};

use super::registration::browser_description;
use super::{
    CeremonyBody, answer_of, credential_id_of, enabled, keep, options_answer, read_body,
    redirect_answer, refusal, refused, relying_party,
};
use crate::crypto::tokens::{constant_time_eq, token_hash};
use crate::http::client_address::client_address_of;
use crate::http::cookies::known_browser;
use crate::http::csrf::{form_token, from_our_pages};
use crate::http::error::PasskeyApiError;
use crate::http::pages::signup::INVITATION_FORM;
use crate::http::paths::Links;
use crate::http::state::{State, blocking};
use crate::protocol::OAuthError;
use crate::protocol::links::LinkRefused;
use crate::protocol::passkeys::PasskeyError;
use crate::protocol::signup::{self, Declined, FormProblem, InvitationCeremony, Refused};
use crate::sessions::CeremonyOwner;

/// This browser's id, if the request comes from the invitation's page with its form
/// token (bound to the browser and to `body.token`).
fn from_the_page(
    req: &HttpRequest,
    state: &State,
    body: &CeremonyBody,
) -> Result<String, PasskeyApiError> {
    let browser = known_browser(req, state);
    let expected = browser
        .as_deref()
        .map(|b| form_token(state, INVITATION_FORM, &body.token, b));
    match browser {
        Some(browser)
            if from_our_pages(req, &state.settings)
                && expected
                    .is_some_and(|e| constant_time_eq(e.as_bytes(), body.csrf.as_bytes())) =>
        {
            Ok(browser)
        }
        _ => Err(refused(StatusCode::FORBIDDEN, "passkey.not_verified")),
    }
}

/// What the person is told when the invitation or the username is refused: the password
/// form's words.
fn declined(refusal: Refused) -> PasskeyApiError {
    let (status, key) = match refusal {
        Refused::Closed => (StatusCode::NOT_FOUND, "signup.closed.body"),
        Refused::Link(LinkRefused::Unknown) => (StatusCode::NOT_FOUND, "signup.link.unknown.body"),
        Refused::Link(LinkRefused::Used) => (StatusCode::GONE, "signup.link.used.body"),
        Refused::Link(LinkRefused::Expired) => (StatusCode::GONE, "signup.link.expired.body"),
        Refused::UsernameTaken => (StatusCode::CONFLICT, "signup.error.username_taken"),
        Refused::Form(FormProblem::Username) => (StatusCode::BAD_REQUEST, "signup.error.username"),
        // A passkey has no password to refuse, nor an address to check.
        Refused::Form(_) | Refused::WrongPassword => {
            (StatusCode::BAD_REQUEST, "passkey.error.malformed")
        }
    };
    refused(status, key)
}

/// The ceremony's key: this browser and this invitation (by its token's hash).
fn owner<'a>(browser: &'a str, invitation: &'a str) -> CeremonyOwner<'a> {
    CeremonyOwner::Invitation {
        invitation,
        browser,
    }
}

/// The options of a passkey for a new account (`{csrf, token, username}`).
pub async fn options(
    req: HttpRequest,
    body: web::Bytes,
    state: State,
) -> Result<HttpResponse, PasskeyApiError> {
    enabled(&state)?;
    let body = read_body(&req, &body)?;
    let browser = from_the_page(&req, &state, &body)?;
    let mode = state.settings.signup;
    let (shared, token, username) = (state.clone(), body.token.clone(), body.username.clone());
    let started = blocking(&state, move |ctx| {
        let passkeys = relying_party(&shared)?;
        signup::start_invitation_passkey(ctx, mode, passkeys, &token, &username)
    })
    .await?;
    let (options, ceremony) = started.map_err(declined)?;
    let invitation = token_hash(&body.token);
    keep(&state, owner(&browser, &invitation), &options, &ceremony).await?;
    Ok(options_answer(&options))
}

/// The answer (`{csrf, token, credential, name}`): verified, then the account is made with
/// it; the person is sent to sign in with it.
pub async fn finish(
    req: HttpRequest,
    body: web::Bytes,
    state: State,
) -> Result<HttpResponse, PasskeyApiError> {
    enabled(&state)?;
    let body = read_body(&req, &body)?;
    let browser = from_the_page(&req, &state, &body)?;
    let credential_id = credential_id_of(&body);
    let refuse = |error: PasskeyError| {
        tracing::info!(
            credential_id = %credential_id,
            reason = %error,
            "a passkey for an invitation was refused"
        );
        refusal(&error)
    };
    let Some((answer, challenge)) = answer_of(&body) else {
        return Err(refuse(PasskeyError::Malformed));
    };
    let invitation = token_hash(&body.token);
    let ceremony: Option<InvitationCeremony> = state
        .sessions
        .take_ceremony(owner(&browser, &invitation), &challenge)
        .await
        .map_err(OAuthError::from)?;
    let Some(ceremony) = ceremony else {
        return Err(refuse(PasskeyError::Expired));
    };
    let name = body
        .name
        .clone()
        .filter(|n| !n.trim().is_empty())
        .unwrap_or_else(|| browser_description(&req));
    let address = client_address_of(&req, &state.settings);
    let mode = state.settings.signup;
    let (shared, token) = (state.clone(), body.token.clone());
    let outcome = blocking(&state, move |ctx| {
        let passkeys = relying_party(&shared)?;
        signup::accept_invitation_with_passkey(
            ctx,
            mode,
            passkeys,
            &token,
            ceremony,
            &answer,
            &name,
            Some(&address),
        )
    })
    .await?;
    match outcome {
        // The account exists: signing in (with the passkey) is the login page's, where the
        // second-factor policy and the session's `amr` are decided.
        Ok(_) => Ok(redirect_answer(
            &Links::new(&state.settings.issuer_path).account(),
        )),
        Err(Declined::Refused(refusal)) => Err(declined(refusal)),
        Err(Declined::Passkey(error)) => Err(refuse(error)),
    }
}
