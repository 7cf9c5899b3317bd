//! The account page: where the user is signed in and which apps they allowed, with
//! buttons to end one session, to sign out everywhere, and to withdraw an app's consent
//! (which revokes its tokens). Reached with the SSO session; without one, through the
//! login page.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use serde::Deserialize;

use super::render;
use super::signed_out::signed_out_page;
use crate::crypto::tokens::constant_time_eq;
use crate::domain::format_utc;
use crate::http::cookies::{browser_id, expired_session_cookie, known_browser, session_id};
use crate::http::csrf::form_token;
use crate::http::error::{PageError, page_response};
use crate::http::interaction::{redirect, sign_in_to_account, with_cookie};
use crate::http::paths::Links;
use crate::http::sign_out::{self, Ending};
use crate::http::state::{State, blocking};
use crate::protocol::OAuthError;
use crate::protocol::logout::session_user;
use crate::sessions::SsoSession;
use crate::store::User;

pub(super) const ACCOUNT_FORM: &str = "account-form";

struct SessionView {
    sid: String,
    device: String,
    address: String,
    since: String,
    current: bool,
}

/// An upstream identity linked to the account (issue 24).
struct UpstreamView {
    provider: String,
    /// The upstream's address, or its subject when it gave none.
    who: String,
    issuer: String,
    subject: String,
    linked: String,
    last_used: String,
}

struct AppView {
    client_id: String,
    name: String,
    scope: String,
    since: String,
}

#[derive(Template)]
#[template(path = "account.html")]
struct AccountPage<'a> {
    ui: crate::http::ui::Ui,
    links: Links,
    csrf: &'a str,
    username: &'a str,
    /// The account's address (empty: none), and whether it is verified.
    email: &'a str,
    email_verified: bool,
    sessions: &'a [SessionView],
    apps: &'a [AppView],
    upstreams: &'a [UpstreamView],
    /// Whether any upstream provider is configured (the section shows only then, or
    /// when the account has links).
    upstreams_configured: bool,
}

pub use crate::domain::describe_user_agent;

/// The browser's SSO session and its user, if the session still speaks for them: not
/// ended (wherever it was ended), and begun after the last password change.
pub(super) async fn signed_in(
    req: &HttpRequest,
    state: &State,
) -> Result<Option<(SsoSession, User)>, PageError> {
    let Some(id) = session_id(req, &state.settings) else {
        return Ok(None);
    };
    let Some(session) = state
        .sessions
        .load_sso(&id, state.now())
        .await
        .map_err(OAuthError::from)?
    else {
        return Ok(None);
    };
    let lookup = session.clone();
    let user = blocking(state, move |ctx| Ok(session_user(ctx.store, &lookup)?)).await?;
    Ok(user.map(|u| (session, u)))
}

pub async fn show(req: HttpRequest, state: State) -> HttpResponse {
    let settings = state.settings.clone();
    page_response(&settings, show_page(req, state).await)
}

async fn show_page(req: HttpRequest, state: State) -> Result<HttpResponse, PageError> {
    let Some((session, user)) = signed_in(&req, &state).await? else {
        return sign_in_to_account(&req, &state).await;
    };
    let (user_id, current) = (user.id.clone(), session.sid.clone());
    let names: Vec<(String, String)> = state
        .upstreams
        .list()
        .map(|p| (p.id.clone(), p.name.clone()))
        .collect();
    let never = crate::http::ui::Ui::current().t("account.upstream_never");
    let (sessions, apps, upstreams) = blocking(&state, move |ctx| {
        let upstreams: Vec<UpstreamView> = ctx
            .store
            .list_upstream_identities(&user_id)?
            .into_iter()
            .map(|i| UpstreamView {
                provider: names
                    .iter()
                    .find(|(id, _)| *id == i.provider)
                    .map(|(_, name)| name.clone())
                    .unwrap_or_else(|| i.provider.clone()),
                who: i.email.clone().unwrap_or_else(|| i.subject.clone()),
                linked: format_utc(i.created_at),
                last_used: i
                    .last_used_at
                    .map(format_utc)
                    .unwrap_or_else(|| never.to_owned()),
                issuer: i.issuer,
                subject: i.subject,
            })
            .collect();
        let sessions: Vec<SessionView> = ctx
            .store
            .list_user_sessions(&user_id, ctx.now)?
            .into_iter()
            .map(|s| SessionView {
                device: describe_user_agent(s.user_agent.as_deref().unwrap_or("")),
                address: s.ip_address.unwrap_or_default(),
                since: format_utc(s.created_at),
                current: s.sid == current,
                sid: s.sid,
            })
            .collect();
        let mut apps = Vec::new();
        for consent in ctx.store.list_consents(&user_id)? {
            let name = ctx
                .store
                .find_client(&consent.client_id)?
                .map(|c| c.name)
                .unwrap_or_else(|| consent.client_id.clone());
            apps.push(AppView {
                client_id: consent.client_id,
                name,
                scope: consent.scope,
                since: format_utc(consent.granted_at),
            });
        }
        Ok((sessions, apps, upstreams))
    })
    .await?;
    let (browser, new_cookie) = browser_id(&req, &state);
    let response = render(
        StatusCode::OK,
        &AccountPage {
            ui: crate::http::ui::Ui::current(),
            links: Links::new(&state.settings.issuer_path),
            csrf: &form_token(&state, ACCOUNT_FORM, &session.sid, &browser),
            username: &user.username,
            email: user.email.as_deref().unwrap_or_default(),
            email_verified: user.email_verified,
            sessions: &sessions,
            apps: &apps,
            upstreams: &upstreams,
            upstreams_configured: state.upstreams.list().next().is_some(),
        },
    );
    Ok(match new_cookie {
        Some(c) => with_cookie(response, &c),
        None => response,
    })
}

#[derive(Deserialize)]
pub struct AccountForm {
    #[serde(default)]
    csrf: String,
    /// The session to end.
    sid: Option<String>,
    /// The app whose consent is withdrawn.
    client_id: Option<String>,
    /// The upstream identity to unlink (issue 24).
    issuer: Option<String>,
    subject: Option<String>,
}

/// The signed-in user of a verified account form: both CSRF defences (our pages' origin,
/// and a token bound to this browser and session).
async fn verified(
    req: &HttpRequest,
    state: &State,
    form: &AccountForm,
) -> Result<(SsoSession, User), PageError> {
    let refused = || OAuthError::invalid_request("the form could not be verified");
    let (session, user) = signed_in(req, state).await?.ok_or_else(refused)?;
    let expected =
        known_browser(req, state).map(|b| form_token(state, ACCOUNT_FORM, &session.sid, &b));
    if !crate::http::csrf::from_our_pages(req, &state.settings)
        || !expected.is_some_and(|e| constant_time_eq(e.as_bytes(), form.csrf.as_bytes()))
    {
        return Err(refused().into());
    }
    Ok((session, user))
}

fn back_to_account(state: &State) -> HttpResponse {
    redirect(
        StatusCode::SEE_OTHER,
        &Links::new(&state.settings.issuer_path).account(),
    )
}

/// What this browser sees once its own session has ended: the signed-out page with the
/// front-channel frames of that session (and `message`, why), and the session cookie
/// cleared.
pub(super) async fn signed_out_here(
    state: &State,
    ended: &crate::store::EndedSessions,
    sid: &str,
    message: Option<&str>,
) -> Result<HttpResponse, PageError> {
    let frames = sign_out::frontchannel_uris(state, ended, sid).await?;
    let response = signed_out_page(&state.settings.issuer_path, &frames, None, message);
    Ok(with_cookie(
        response,
        &expired_session_cookie(&state.settings),
    ))
}

pub async fn end_session(
    req: HttpRequest,
    form: web::Form<AccountForm>,
    state: State,
) -> HttpResponse {
    let settings = state.settings.clone();
    page_response(
        &settings,
        end_session_page(req, form.into_inner(), state).await,
    )
}

async fn end_session_page(
    req: HttpRequest,
    form: AccountForm,
    state: State,
) -> Result<HttpResponse, PageError> {
    let (session, user) = verified(&req, &state, &form).await?;
    let sid = form
        .sid
        .ok_or_else(|| OAuthError::invalid_request("which session?"))?;
    let lookup = sid.clone();
    let owned = blocking(&state, move |ctx| Ok(ctx.store.find_session(&lookup)?))
        .await?
        .is_some_and(|s| s.user_id == user.id);
    if !owned {
        // Another user's session, or none: the same answer for both.
        return Err(OAuthError::invalid_request("no such session").into());
    }
    let ending = Ending::Session {
        sid: sid.clone(),
        reason: "ended_by_user",
    };
    let ended = sign_out::end(&state, ending).await?;
    if sid == session.sid {
        return signed_out_here(&state, &ended, &sid, None).await;
    }
    Ok(back_to_account(&state))
}

pub async fn sign_out_everywhere(
    req: HttpRequest,
    form: web::Form<AccountForm>,
    state: State,
) -> HttpResponse {
    let settings = state.settings.clone();
    page_response(
        &settings,
        everywhere_page(req, form.into_inner(), state).await,
    )
}

async fn everywhere_page(
    req: HttpRequest,
    form: AccountForm,
    state: State,
) -> Result<HttpResponse, PageError> {
    let (session, user) = verified(&req, &state, &form).await?;
    let ended = sign_out::end(&state, Ending::EveryUserSession { user_id: user.id }).await?;
    signed_out_here(&state, &ended, &session.sid, None).await
}

pub async fn withdraw_consent(
    req: HttpRequest,
    form: web::Form<AccountForm>,
    state: State,
) -> HttpResponse {
    let settings = state.settings.clone();
    page_response(
        &settings,
        withdraw_page(req, form.into_inner(), state).await,
    )
}

async fn withdraw_page(
    req: HttpRequest,
    form: AccountForm,
    state: State,
) -> Result<HttpResponse, PageError> {
    let (_, user) = verified(&req, &state, &form).await?;
    let client_id = form
        .client_id
        .ok_or_else(|| OAuthError::invalid_request("which application?"))?;
    let user_id = user.id.clone();
    let withdrawn = blocking(&state, move |ctx| {
        Ok(ctx
            .store
            .withdraw_consent(&user_id, &client_id, ctx.now)?
            .then_some(client_id))
    })
    .await?;
    if let Some(client_id) = withdrawn {
        crate::audit::consent_withdrawn(&user.id, &client_id);
    }
    Ok(back_to_account(&state))
}

/// `POST /account/upstream/unlink` (issue 24): unlinks one upstream identity, after a
/// recent sign-in at the account's full strength (as every change to how the account
/// signs in), unless it is the account's last way to sign in.
pub async fn unlink_upstream(
    req: HttpRequest,
    form: web::Form<AccountForm>,
    state: State,
) -> HttpResponse {
    let settings = state.settings.clone();
    page_response(&settings, unlink_page(req, form.into_inner(), state).await)
}

async fn unlink_page(
    req: HttpRequest,
    form: AccountForm,
    state: State,
) -> Result<HttpResponse, PageError> {
    let (session, user) = verified(&req, &state, &form).await?;
    let (Some(issuer), Some(subject)) = (form.issuer, form.subject) else {
        return Err(OAuthError::invalid_request("which identity?").into());
    };
    let check = session.clone();
    let recent = blocking(&state, move |ctx| {
        crate::protocol::security::may_change_factors(ctx, &check)
    })
    .await?;
    if !recent {
        // Confirm who is there first; the unlink is asked again after.
        return crate::http::interaction::start(
            &req,
            &state,
            crate::protocol::interaction::Interaction::confirm_identity(&user.username),
        )
        .await;
    }
    let address = crate::http::client_address::client_address_of(&req, &state.settings);
    let user_id = user.id.clone();
    let providers: Vec<String> = state.upstreams.list().map(|p| p.id.clone()).collect();
    let (done, provider) = blocking(&state, move |ctx| {
        let provider = ctx
            .store
            .find_upstream_identity(&issuer, &subject)?
            .map(|r| r.provider);
        Ok((
            crate::protocol::upstream::unlink(ctx, &user, &issuer, &subject, &providers, &address)?,
            provider,
        ))
    })
    .await?;
    if done == crate::store::Unlinked::Done
        && let Some(provider) = provider
    {
        end_sessions_through(&state, &user_id, &provider).await?;
    }
    let ui = crate::http::ui::Ui::current();
    let (status, message) = match done {
        crate::store::Unlinked::Done => (StatusCode::OK, ui.t("account.upstream_unlinked")),
        crate::store::Unlinked::LastWay => {
            (StatusCode::CONFLICT, ui.t("account.upstream_last_way"))
        }
        crate::store::Unlinked::NotFound => {
            return Err(OAuthError::invalid_request("no such linked identity").into());
        }
    };
    Ok(render(
        status,
        &NoticePage {
            ui: ui.clone(),
            links: Links::new(&state.settings.issuer_path),
            title: "account.upstreams",
            message,
        },
    ))
}

/// Ends the user's sessions signed in through `provider` (and the grants made in them):
/// an unlinked identity (wrongly linked, or its upstream account taken over) keeps
/// nothing it got.
async fn end_sessions_through(
    state: &State,
    user_id: &str,
    provider: &str,
) -> Result<(), PageError> {
    let id = user_id.to_owned();
    let now = state.now();
    let sessions = blocking(state, move |ctx| {
        Ok(ctx.store.list_user_sessions(&id, now)?)
    })
    .await?;
    for record in sessions {
        let sso = state
            .sessions
            .load_sso_record(&record.store_key)
            .await
            .map_err(OAuthError::from)?;
        if sso.is_some_and(|s| s.idp.as_deref() == Some(provider)) {
            crate::http::sign_out::end(
                state,
                crate::protocol::sign_out::Ending::Session {
                    sid: record.sid,
                    reason: "upstream_unlinked",
                },
            )
            .await?;
        }
    }
    Ok(())
}

#[derive(Template)]
#[template(path = "notice.html")]
struct NoticePage<'a> {
    ui: crate::http::ui::Ui,
    links: Links,
    title: &'a str,
    message: &'a str,
}

#[cfg(test)]
mod tests {
    use super::describe_user_agent;

    #[test]
    fn browsers_are_described_by_name_and_system() {
        let firefox = "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0";
        assert_eq!(describe_user_agent(firefox), "Firefox on Linux");
        let chrome = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36";
        assert_eq!(describe_user_agent(chrome), "Chrome on Windows");
        let edge =
            "Mozilla/5.0 (Windows NT 10.0) AppleWebKit/537.36 Chrome/131.0 Safari/537.36 Edg/131.0";
        assert_eq!(describe_user_agent(edge), "Edge on Windows");
        let safari = "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 Version/18.1 Mobile/15E148 Safari/604.1";
        assert_eq!(describe_user_agent(safari), "Safari on iPhone");
        assert_eq!(describe_user_agent(""), "An unknown browser");
    }
}
