//! Signing in with a passkey (WebAuthn L3 §7.2), for an interaction: on the login page
//! as the first factor (a discoverable credential names the account: no username, the
//! username field's autofill or the "Sign in with a passkey" button), on the
//! second-factor page after a password (only that account's passkeys). Which page it is
//! comes from the form token the request carries; the sign-in machine
//! (`protocol::sign_in`) judges the verified passkey like any other factor.
//!
//! A passkey that proves its account is not a guess: it is not counted by the throttle,
//! but every refusal is audited and logged with the credential ID it named.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use serde::{Deserialize, Serialize};

use super::{
    CeremonyBody, answer_of, credential_id_of, enabled, failure, keep, options_answer, read_body,
    redirect_answer, refusal, refused, relying_party,
};
use crate::crypto::tokens::constant_time_eq;
use crate::http::client_address::client_address_of;
use crate::http::csrf::{form_token, from_our_pages};
use crate::http::error::PasskeyApiError;
use crate::http::interaction::{bound_browser, save_if_present};
use crate::http::pages::sign_in_ports::{FormPorts, throttle_limits};
use crate::http::paths::Links;
use crate::http::state::{State, blocking};
use crate::protocol::OAuthError;
use crate::protocol::interaction::{FACTOR_FORM, Interaction, LOGIN_FORM};
use crate::protocol::passkeys::stored::{self, Failure};
use crate::protocol::passkeys::{PasskeyError, SecondFactorCeremony, SignInCeremony};
use crate::protocol::sign_in::{Answer, Denied, Factor, Next, SignIn, VerifiedPasskey};
use crate::sessions::CeremonyOwner;

/// A sign-in ceremony kept for an interaction.
#[derive(Serialize, Deserialize)]
enum LoginCeremony {
    /// The login page's: any discoverable credential.
    FirstFactor(SignInCeremony),
    /// The second-factor page's: the account's own passkeys.
    SecondFactor(SecondFactorCeremony),
}

/// The page a request comes from, told by its form token.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Page {
    Login,
    SecondFactor,
}

/// A request that passed the checks: its interaction, its browser, its page.
struct Checked {
    pending: Interaction,
    browser: String,
    page: Page,
}

/// Both CSRF defences (our own page posted it; the token is the page's, for this
/// interaction in the browser bound to it), and which page that is.
async fn check(
    req: &HttpRequest,
    state: &State,
    body: &CeremonyBody,
) -> Result<Checked, PasskeyApiError> {
    let unverified = || refused(StatusCode::FORBIDDEN, "passkey.not_verified");
    if !from_our_pages(req, &state.settings) {
        return Err(unverified());
    }
    let pending: Interaction = state
        .sessions
        .load_pending(&body.interaction)
        .await
        .map_err(OAuthError::from)?
        .ok_or_else(|| refused(StatusCode::BAD_REQUEST, "passkey.page_expired"))?;
    let browser = bound_browser(&pending, req, state).ok_or_else(unverified)?;
    let carries = |purpose: &str| {
        let token = form_token(state, purpose, &body.interaction, &browser);
        constant_time_eq(token.as_bytes(), body.csrf.as_bytes())
    };
    // A password reset's interaction has no first factor to prove.
    let page = if carries(LOGIN_FORM) && pending.reset.is_none() {
        Page::Login
    } else if carries(FACTOR_FORM) {
        Page::SecondFactor
    } else {
        return Err(unverified());
    };
    Ok(Checked {
        pending,
        browser,
        page,
    })
}

/// The account whose second factor a passkey may be now: the sign-in waiting with the
/// interaction asks for one.
fn second_factor_of(pending: &Interaction) -> Result<String, PasskeyApiError> {
    let sign_in = pending.sign_in.as_ref();
    let asked = sign_in.and_then(|s| match s.next() {
        Some(Next::SecondFactor(offered)) if offered.contains(&Factor::Passkey) => s.user_id(),
        _ => None,
    });
    asked
        .map(str::to_owned)
        .ok_or_else(|| refused(StatusCode::CONFLICT, "passkey.not_asked"))
}

/// The options of a passkey sign-in for the interaction (`{csrf, interaction}`).
pub async fn options(
    req: HttpRequest,
    body: web::Bytes,
    state: State,
) -> Result<HttpResponse, PasskeyApiError> {
    let passkeys = enabled(&state)?;
    let body = read_body(&req, &body)?;
    let checked = check(&req, &state, &body).await?;
    let (options, ceremony) = match checked.page {
        Page::Login => {
            let (options, ceremony) = passkeys
                .start_sign_in(state.now())
                .map_err(|e| refusal(&e))?;
            (options, LoginCeremony::FirstFactor(ceremony))
        }
        Page::SecondFactor => {
            let user_id = second_factor_of(&checked.pending)?;
            let shared = state.clone();
            let (options, ceremony) = blocking(&state, move |ctx| {
                let passkeys = relying_party(&shared)?;
                Ok(stored::second_factor_options(ctx, passkeys, &user_id))
            })
            .await?
            .map_err(failure)?;
            (options, LoginCeremony::SecondFactor(ceremony))
        }
    };
    let owner = CeremonyOwner::SignIn {
        interaction: &body.interaction,
        browser: &checked.browser,
    };
    keep(&state, owner, &options, &ceremony).await?;
    Ok(options_answer(&options))
}

/// The answer of a passkey sign-in (`{csrf, interaction, credential}`): verified, then
/// judged by the sign-in. Success and "a factor more" both go on at the second-factor
/// page, which completes a sign-in that reached its level (the session, its cookie and
/// the way on to the client in whatever response mode, `form_post` included: a page, not
/// a JSON answer) or asks for what is missing.
pub async fn finish(
    req: HttpRequest,
    body: web::Bytes,
    state: State,
) -> Result<HttpResponse, PasskeyApiError> {
    enabled(&state)?;
    let body = read_body(&req, &body)?;
    let Checked {
        mut pending,
        browser,
        page,
    } = check(&req, &state, &body).await?;
    let second_factor_user = match page {
        Page::Login => None,
        Page::SecondFactor => Some(second_factor_of(&pending)?),
    };
    let address = client_address_of(&req, &state.settings);
    let credential_id = credential_id_of(&body);
    let refuse = |error: PasskeyError| {
        let account = second_factor_user.as_deref().unwrap_or("unknown");
        crate::audit::factor_failed(account, "passkey", &address);
        tracing::info!(credential_id = %credential_id, reason = %error, "a passkey was refused");
        refusal(&error)
    };
    let Some((answer, challenge)) = answer_of(&body) else {
        return Err(refuse(PasskeyError::Malformed));
    };
    let owner = CeremonyOwner::SignIn {
        interaction: &body.interaction,
        browser: &browser,
    };
    let ceremony: Option<LoginCeremony> = state
        .sessions
        .take_ceremony(owner, &challenge)
        .await
        .map_err(OAuthError::from)?;
    let Some(ceremony) = ceremony else {
        // Expired, or answered already (a replay): a new one is needed.
        return Err(refuse(PasskeyError::Expired));
    };
    let (shared, user) = (state.clone(), second_factor_user.clone());
    let verified = blocking(&state, move |ctx| {
        let passkeys = relying_party(&shared)?;
        Ok(match (ceremony, user) {
            (LoginCeremony::FirstFactor(c), None) => {
                stored::verify_sign_in(ctx, passkeys, &answer, c)
            }
            (LoginCeremony::SecondFactor(c), Some(user_id)) => {
                stored::verify_second_factor(ctx, passkeys, &answer, c, &user_id)
            }
            // The other page's ceremony: not the one this page asked for.
            _ => Err(Failure::Refused(PasskeyError::ChallengeMismatch)),
        })
    })
    .await?;
    let verified = match verified {
        Ok(verified) => verified,
        Err(Failure::Refused(error)) => return Err(refuse(error)),
        Err(server) => return Err(failure(server)),
    };

    let mut sign_in = match page {
        // A sign-in from the start, as the password form begins one.
        Page::Login => SignIn::begin(
            "",
            pending.asked,
            state.settings.mfa,
            throttle_limits(&state),
            state.now(),
        ),
        Page::SecondFactor => pending
            .sign_in
            .take()
            .ok_or_else(|| refused(StatusCode::CONFLICT, "passkey.not_asked"))?,
    };
    let ports = FormPorts::new(&state, &req, &pending);
    let proof = VerifiedPasskey {
        user_id: verified.user_id.clone(),
        user_verified: verified.user_verified,
        synced: verified.backup_eligible,
    };
    let answer = sign_in.passkey(proof, &ports).await?;
    match answer {
        Answer::Success(_) | Answer::Continue(_) => {
            crate::audit::factor_used(&verified.user_id, "passkey", &address);
            record(&state, &verified.user_id, "factor.used", &address).await?;
            if matches!(answer, Answer::Success(_)) {
                state.metrics.login(true);
            }
            pending.sign_in = Some(sign_in);
            save_if_present(&state, &body.interaction, &pending).await?;
            let links = Links::new(&state.settings.issuer_path);
            Ok(redirect_answer(&format!(
                "{}?id={}",
                links.second_factor(),
                body.interaction
            )))
        }
        Answer::Denied(reason) => {
            state.metrics.login(false);
            if page == Page::SecondFactor {
                // The sign-in is over; the interaction stays, for a new sign-in.
                save_if_present(&state, &body.interaction, &pending).await?;
            }
            Err(match reason {
                // Said only to whoever holds the account's passkey.
                Denied::Disabled { user_id } => {
                    crate::audit::login_refused_disabled(&user_id, &address);
                    refused(StatusCode::FORBIDDEN, "login.disabled")
                }
                // Another account's passkey after a password, or an account gone.
                _ => {
                    crate::audit::factor_failed(&verified.user_id, "passkey", &address);
                    record(&state, &verified.user_id, "factor.failed", &address).await?;
                    tracing::info!(
                        credential_id = %verified.credential_id,
                        "a passkey was refused: its account is not the one signing in"
                    );
                    refusal(&PasskeyError::UnknownCredential)
                }
            })
        }
    }
}

/// A passkey's use or failure for a known account, in the audit table.
async fn record(
    state: &State,
    user_id: &str,
    action: &'static str,
    address: &str,
) -> Result<(), PasskeyApiError> {
    let (user_id, address) = (user_id.to_owned(), address.to_owned());
    blocking(state, move |ctx| {
        crate::protocol::security::record_sign_in_event(ctx, &user_id, action, "passkey", &address)
    })
    .await?;
    Ok(())
}
