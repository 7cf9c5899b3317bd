//! The device authorization endpoint (RFC 8628 §3.1, §3.2), and the device's polls of
//! the token endpoint (§3.4, §3.5): the request waits in the session store, so any
//! instance sharing it answers the device, the `/device` page and the polls.

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};

use super::client_request::client_request;
use crate::domain::GrantType;
use crate::http::client_address::{client_address_of, limit_key};
use crate::http::error::ApiError;
use crate::http::paths;
use crate::http::state::{State, blocking};
use crate::protocol::client_auth::authenticate;
use crate::protocol::device::{self, DeviceAuthorization, KEPT_FOR as KEPT, USER_CODE_DRAWS};
use crate::protocol::dpop::Proof;
use crate::protocol::features::DEVICE_AUTHORIZATION;
use crate::protocol::grants::device_code::{Decision, DeviceCodeRequest, Polled, poll as decide};
use crate::protocol::grants::{TokenRequest, exchange};
use crate::protocol::{ErrorCode, OAuthError, Params};
use crate::store::Client;

/// The window of `device_authorizations_per_address`.
const AUTHORIZATION_WINDOW: std::time::Duration = std::time::Duration::from_secs(60);

fn no_store(response: &mut actix_web::HttpResponseBuilder) -> &mut actix_web::HttpResponseBuilder {
    response
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .insert_header((header::PRAGMA, "no-cache"))
}

/// §3.1: client authentication as at the token endpoint (a public client names itself
/// with `client_id`), then the codes.
pub async fn device_authorization(
    req: HttpRequest,
    body: web::Bytes,
    state: State,
) -> Result<HttpResponse, ApiError> {
    let (params, creds) = client_request(&req, &body)?;
    let endpoint = state.settings.endpoint(DEVICE_AUTHORIZATION.path);
    let mut issued = blocking(&state, move |ctx| {
        let client = authenticate(&creds, &endpoint, ctx)?;
        device::authorize(&params, &client, ctx)
    })
    .await?;
    // Each request holds store entries for `KEPT`: one address keeps to its share of the
    // store (README, "Limits per client address").
    let address = client_address_of(&req, &state.settings);
    let recent = state
        .sessions
        .count_event("device", &limit_key(&address), AUTHORIZATION_WINDOW)
        .await
        .map_err(OAuthError::from)?;
    if recent > state.settings.device_authorizations_per_address {
        return Err(OAuthError::new(
            ErrorCode::RateLimited,
            "too many device authorizations from this address; try again later",
        )
        .into());
    }
    // A user code still held by another device is never overwritten: another is drawn.
    let mut saved = false;
    for _ in 0..USER_CODE_DRAWS {
        let record = &issued.record;
        saved = state
            .sessions
            .save_device(
                &record.device_code_hash,
                &record.user_code_hash,
                record,
                KEPT,
            )
            .await
            .map_err(OAuthError::from)?;
        if saved {
            break;
        }
        issued.redraw_user_code(&state.kek);
    }
    if !saved {
        return Err(OAuthError::server("no free user code after several draws").into());
    }
    let verification_uri = state.settings.endpoint(paths::DEVICE);
    let response = issued.response(&verification_uri, state.now());
    Ok(no_store(&mut HttpResponse::Ok()).json(response))
}

/// §3.4: a poll of the token endpoint with `grant_type=...:device_code` by the
/// authenticated `client`: the decision
/// from what the store holds (`device_code::poll`), then the tokens, once.
pub async fn poll(
    params: Params,
    client: Client,
    proof: Option<Proof>,
    state: &State,
) -> Result<HttpResponse, ApiError> {
    if !client.may_use_grant(GrantType::DeviceCode) {
        return Err(OAuthError::new(
            ErrorCode::UnauthorizedClient,
            "client may not use this grant_type",
        )
        .into());
    }
    let request = DeviceCodeRequest::parse(&params)?;
    let hash = request.device_code_hash();
    let sessions = &state.sessions;
    let device: Option<DeviceAuthorization> = sessions
        .load_device(&hash)
        .await
        .map_err(OAuthError::from)?;
    let decision: Option<Decision> = sessions
        .load_device_decision(&hash)
        .await
        .map_err(OAuthError::from)?;
    let (last_poll, slow_downs) = sessions
        .device_polls(&hash)
        .await
        .map_err(OAuthError::from)?;
    // Only the device's own polls count (another client's tell it nothing and change
    // nothing).
    let own = device.as_ref().is_some_and(|d| d.client_id == client.id);
    // Of polls that read the same last poll (at once, on any instance), one alone goes
    // on; the others are too soon.
    let raced = own
        && !sessions
            .claim_device_poll(&hash, last_poll)
            .await
            .map_err(OAuthError::from)?;
    let now = state.now();
    let verdict = decide(
        &Polled {
            device: device.as_ref(),
            decision,
            last_poll,
            slow_downs,
            raced,
        },
        &client.id,
        now,
    );
    if own {
        let slowed = matches!(&verdict, Err(e) if e.code == ErrorCode::SlowDown);
        sessions
            .record_device_poll(&hash, now, slowed, KEPT)
            .await
            .map_err(OAuthError::from)?;
    }
    verdict?;
    // Approved: taken first, so that of two polls at once (on any instances) one alone
    // goes on; every later poll finds nothing (`invalid_grant`).
    let taken: Option<DeviceAuthorization> = sessions
        .take_device(&hash)
        .await
        .map_err(OAuthError::from)?;
    let Some(taken) = taken else {
        return Err(OAuthError::invalid_grant("the device code was already used").into());
    };
    let client_id = client.id.clone();
    let exchanged = blocking(state, move |ctx| {
        exchange(
            TokenRequest::DeviceCode(request),
            &client,
            proof.as_ref(),
            ctx,
        )
    })
    .await;
    let response = match exchanged {
        Ok(response) => response,
        Err(e) => {
            // A failure of ours (not a refusal of the grant) loses nothing: the record
            // goes back, and the device's next poll tries again.
            if matches!(
                e.code,
                ErrorCode::ServerError | ErrorCode::TemporarilyUnavailable
            ) && taken.is_live(state.now())
            {
                let left = std::time::Duration::from_secs(taken.seconds_left(state.now()));
                if let Err(again) = sessions.restore_device(&hash, &taken, left).await {
                    tracing::warn!(error = %again, "could not put a device authorization back");
                }
            }
            return Err(e.into());
        }
    };
    let grant_type = GrantType::DeviceCode.as_str();
    state.metrics.token_issued(grant_type);
    crate::audit::tokens_issued(grant_type, &client_id);
    // RFC 6749 §5.1: responses carrying tokens must not be cached.
    Ok(no_store(&mut HttpResponse::Ok())
        .insert_header((header::ACCESS_CONTROL_ALLOW_ORIGIN, "*"))
        .json(response))
}
