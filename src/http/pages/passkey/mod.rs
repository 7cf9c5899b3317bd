//! The passkey ceremonies' JSON endpoints: the script half (`static/passkey.js`) of three
//! pages. Signing in ([`sign_in`]: the login page, with no username; the second-factor
//! page, after a password), adding a passkey ([`registration`]: the security page), and
//! making an account with one ([`invitation`]: an invitation's page, signed out).
//!
//! Each ceremony is two POSTs of `application/json` from the page's script: the options
//! (the ceremony is kept on the server, `protocol::passkeys`), then the browser's answer
//! (the ceremony is *taken*: answered once, right or wrong). A ceremony is kept under a
//! key bound to this browser (the interaction it is bound to, or the session its cookie
//! loaded) and to its challenge, so the username field's autofill and the button each have
//! their own. Both POSTs come from our own pages (`Origin`) with the page's form token.
//! Refusals are `{"error": "..."}` with a 4xx status, in the page's language.

pub mod invitation;
pub mod registration;
pub mod sign_in;

use actix_web::http::{StatusCode, header};
use actix_web::{HttpRequest, HttpResponse};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::http::body::BodyType;
use crate::http::error::PasskeyApiError;
use crate::http::state::State;
use crate::http::ui::Ui;
use crate::protocol::OAuthError;
use crate::protocol::passkeys::stored::Failure;
use crate::protocol::passkeys::{
    CEREMONY_TTL, PasskeyError, Passkeys, challenge_of_answer, challenge_of_options,
};
use crate::sessions::CeremonyOwner;

/// What the script posts (its contract is at the top of `static/passkey.js`).
#[derive(Deserialize)]
struct CeremonyBody {
    #[serde(default)]
    csrf: String,
    /// The pending request's handle (sign-in only).
    #[serde(default)]
    interaction: String,
    /// The answer: `PublicKeyCredential.toJSON()` (finish only).
    #[serde(default)]
    credential: Option<Value>,
    /// The new passkey's name (registration only).
    #[serde(default)]
    name: Option<String>,
    /// The invitation's token (an invitation's page only).
    #[serde(default)]
    token: String,
    /// The username chosen for the new account (an invitation's options only).
    #[serde(default)]
    username: String,
}

fn refused(status: StatusCode, key: &str) -> PasskeyApiError {
    PasskeyApiError::refused(status, Ui::current().t(key))
}

/// The Relying Party, or the refusal of a server without passkeys.
fn enabled(state: &State) -> Result<&Passkeys, PasskeyApiError> {
    state
        .passkeys
        .as_ref()
        .ok_or_else(|| refused(StatusCode::NOT_FOUND, "security.passkeys_off"))
}

/// The Relying Party on the blocking pool (a closure there owns its `State`).
fn relying_party(state: &State) -> Result<&Passkeys, OAuthError> {
    state
        .passkeys
        .as_ref()
        .ok_or_else(|| OAuthError::server("passkeys are off"))
}

/// The body as its declared type (`application/json` only; see `http::body`).
fn read_body(req: &HttpRequest, body: &[u8]) -> Result<CeremonyBody, PasskeyApiError> {
    let unreadable = || refused(StatusCode::BAD_REQUEST, "passkey.error.malformed");
    if !BodyType::Json.declared_by(req) {
        return Err(unreadable());
    }
    serde_json::from_slice(body).map_err(|_| unreadable())
}

/// The answer as webauthn-rs reads it, and the challenge it signed (which ceremony it
/// answers); `None` when the body has no answer that can be read that far.
fn answer_of(body: &CeremonyBody) -> Option<(String, String)> {
    let answer = body
        .credential
        .as_ref()
        .filter(|c| c.is_object())?
        .to_string();
    let challenge = challenge_of_answer(&answer)?;
    Some((answer, challenge))
}

/// The credential ID the answer names, for the log line of a refusal: public, bounded,
/// base64url characters only.
fn credential_id_of(body: &CeremonyBody) -> String {
    body.credential
        .as_ref()
        .and_then(|c| c["id"].as_str())
        .unwrap_or_default()
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_'))
        .take(256)
        .collect()
}

/// What the person is told of a refused answer, and with which status.
fn refusal(error: &PasskeyError) -> PasskeyApiError {
    use PasskeyError as E;
    let (status, key) = match error {
        E::Malformed => (StatusCode::BAD_REQUEST, "passkey.error.malformed"),
        E::Expired => (StatusCode::BAD_REQUEST, "passkey.error.expired"),
        E::ChallengeMismatch => (StatusCode::BAD_REQUEST, "passkey.error.challenge"),
        E::WrongOrigin => (StatusCode::BAD_REQUEST, "passkey.error.origin"),
        E::WrongRpId => (StatusCode::BAD_REQUEST, "passkey.error.rp_id"),
        E::UnknownCredential => (StatusCode::FORBIDDEN, "passkey.error.unknown"),
        E::AlreadyRegistered => (StatusCode::CONFLICT, "passkey.error.already_registered"),
        E::UserHandleMismatch => (StatusCode::FORBIDDEN, "passkey.error.user_handle"),
        E::UserNotVerified => (StatusCode::FORBIDDEN, "passkey.error.not_verified"),
        E::VerificationFailed => (StatusCode::FORBIDDEN, "passkey.error.verification"),
        E::NoPasskeys => (StatusCode::BAD_REQUEST, "passkey.error.none"),
        E::Server(cause) => return OAuthError::server(cause).into(),
    };
    refused(status, key)
}

/// A failed step: the answer's fault (said to the person), or ours (logged).
fn failure(failure: Failure) -> PasskeyApiError {
    match failure {
        Failure::Refused(error) => refusal(&error),
        Failure::Server(error) => error.into(),
    }
}

/// Keeps `ceremony` for `owner` under the challenge of its `options`.
async fn keep<T: Serialize>(
    state: &State,
    owner: CeremonyOwner<'_>,
    options: &Value,
    ceremony: &T,
) -> Result<(), PasskeyApiError> {
    let challenge = challenge_of_options(options)
        .ok_or_else(|| OAuthError::server("passkey options without a challenge"))?;
    let kept = state
        .sessions
        .save_ceremony(owner, &challenge, ceremony, CEREMONY_TTL)
        .await
        .map_err(OAuthError::from)?;
    if !kept {
        return Err(refused(StatusCode::TOO_MANY_REQUESTS, "passkey.too_many"));
    }
    Ok(())
}

/// The options, as the script hands them to `navigator.credentials`.
fn options_answer(options: &Value) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(options)
}

/// Where the script sends the browser next.
fn redirect_answer(location: &str) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(json!({ "redirect": location }))
}
