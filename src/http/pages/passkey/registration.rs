//! Adding a passkey (WebAuthn L3 §7.1) on the security page: for the signed-in account,
//! only after a recent sign-in at its full strength (`protocol::security`), as every
//! change to how the account signs in. Never by a link: both requests carry the security
//! page's form token, bound to the session and the browser.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};

use super::{
    CeremonyBody, answer_of, credential_id_of, enabled, failure, keep, options_answer, read_body,
    redirect_answer, refusal, refused, relying_party,
};
use crate::crypto::tokens::constant_time_eq;
use crate::http::client_address::client_address_of;
use crate::http::cookies::known_browser;
use crate::http::csrf::{form_token, from_our_pages};
use crate::http::error::PasskeyApiError;
use crate::http::pages::security::{SECURITY_FORM, signed_in};
use crate::http::paths::Links;
use crate::http::state::{State, blocking};
use crate::protocol::OAuthError;
use crate::protocol::passkeys::stored;
use crate::protocol::passkeys::{PasskeyError, RegistrationCeremony};
use crate::protocol::security;
use crate::sessions::{CeremonyOwner, SsoSession};
use crate::store::User;

/// The signed-in account, if the request comes from its security page and its sign-in is
/// recent and strong enough to add a factor.
async fn account(
    req: &HttpRequest,
    state: &State,
    body: &CeremonyBody,
) -> Result<(SsoSession, User), PasskeyApiError> {
    let Some((session, user)) = signed_in(req, state).await? else {
        return Err(refused(StatusCode::FORBIDDEN, "passkey.signed_out"));
    };
    let expected =
        known_browser(req, state).map(|b| form_token(state, SECURITY_FORM, &session.sid, &b));
    if !from_our_pages(req, &state.settings)
        || !expected.is_some_and(|e| constant_time_eq(e.as_bytes(), body.csrf.as_bytes()))
    {
        return Err(refused(StatusCode::FORBIDDEN, "passkey.not_verified"));
    }
    let check = session.clone();
    let recent = blocking(state, move |ctx| security::may_change_factors(ctx, &check)).await?;
    if !recent {
        return Err(refused(StatusCode::FORBIDDEN, "passkey.confirm_first"));
    }
    Ok((session, user))
}

/// The options of a new passkey for the signed-in account (`{csrf}`).
pub async fn options(
    req: HttpRequest,
    body: web::Bytes,
    state: State,
) -> Result<HttpResponse, PasskeyApiError> {
    enabled(&state)?;
    let body = read_body(&req, &body)?;
    let (session, user) = account(&req, &state, &body).await?;
    let shared = state.clone();
    let (options, ceremony) = blocking(&state, move |ctx| {
        let passkeys = relying_party(&shared)?;
        Ok(stored::registration_options(ctx, passkeys, &user))
    })
    .await?
    .map_err(failure)?;
    let owner = CeremonyOwner::Registration { sid: &session.sid };
    keep(&state, owner, &options, &ceremony).await?;
    Ok(options_answer(&options))
}

/// The answer (`{csrf, credential, name}`): verified, then kept as the account's, named
/// as the person said or after their browser ("Chrome on Android").
pub async fn finish(
    req: HttpRequest,
    body: web::Bytes,
    state: State,
) -> Result<HttpResponse, PasskeyApiError> {
    let passkeys = enabled(&state)?;
    let body = read_body(&req, &body)?;
    let (session, user) = account(&req, &state, &body).await?;
    let credential_id = credential_id_of(&body);
    let refuse = |error: PasskeyError| {
        tracing::info!(
            credential_id = %credential_id,
            user_id = %user.id,
            reason = %error,
            "a passkey registration was refused"
        );
        refusal(&error)
    };
    let Some((answer, challenge)) = answer_of(&body) else {
        return Err(refuse(PasskeyError::Malformed));
    };
    let owner = CeremonyOwner::Registration { sid: &session.sid };
    let ceremony: Option<RegistrationCeremony> = state
        .sessions
        .take_ceremony(owner, &challenge)
        .await
        .map_err(OAuthError::from)?;
    let Some(ceremony) = ceremony else {
        return Err(refuse(PasskeyError::Expired));
    };
    let new = match passkeys.finish_registration(&answer, ceremony, &user.id, state.now()) {
        Ok(new) => new,
        Err(error) if error.is_server_fault() => return Err(OAuthError::server(error).into()),
        Err(error) => return Err(refuse(error)),
    };
    let name = body
        .name
        .filter(|n| !n.trim().is_empty())
        .unwrap_or_else(|| browser_description(&req));
    let address = client_address_of(&req, &state.settings);
    let who = user.clone();
    let registered = blocking(&state, move |ctx| {
        security::register_passkey(ctx, &who, &new, &name, &address)
    })
    .await?;
    if !registered {
        return Err(refuse(PasskeyError::AlreadyRegistered));
    }
    Ok(redirect_answer(
        &Links::new(&state.settings.issuer_path).security(),
    ))
}

/// "Chrome on Android": the name of a passkey the person did not name.
pub(super) fn browser_description(req: &HttpRequest) -> String {
    let agent = req
        .headers()
        .get(actix_web::http::header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    crate::domain::describe_user_agent(agent)
}
