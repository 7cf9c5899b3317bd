//! The browser interaction of an authorization request: the request waiting while the
//! user signs in and consents, bound to the browser that opened it, and the state machine
//! that says what comes next (login page, consent page, a response to the client).
//!
//! Plain data and decisions; `http::interaction` drives it (cookies, session-store I/O),
//! as node-oidc-provider's interaction API separates the two.

use serde::{Deserialize, Serialize};

use super::authorize::{
    Authentication, AuthorizationRequest, AuthorizationResponse, Next, Prompt,
    drop_unconsented_offline_access, next_step,
};
use super::device::DeviceAuthorization;
use super::logout::session_user;
use super::sign_in::{AccountFactors, SignIn};
use super::tokens::subject_for;
use super::{Context, ErrorCode, OAuthError};
use crate::crypto::tokens::{constant_time_eq, random_token, token_hash};
use crate::domain::{Level, MfaPolicy, UnixTime};
use crate::sessions::SsoSession;
use crate::store::{Client, Consent};

/// What a form token is for: a token of one form is no good in another.
pub const LOGIN_FORM: &str = "login-form";
pub const CONSENT_FORM: &str = "consent-form";
pub const FACTOR_FORM: &str = "factor-form";
pub const RESET_FORM: &str = "reset-form";

/// An authorization request waiting for the user, bound to the browser that first
/// opened it. It holds nothing from which a cookie or a form token could be rebuilt:
/// only hashes of them (whoever reads the session store must not get a credential).
#[derive(Debug, Serialize, Deserialize)]
pub struct Interaction {
    pub request: AuthorizationRequest,
    pub client_name: String,
    /// The client registered itself (dynamic registration): the consent page says so.
    #[serde(default)]
    pub client_unverified: bool,
    /// Hash of the browser id: pages and forms from any other browser are refused.
    /// Empty while a POSTed request waits for its browser to come back.
    pub browser: String,
    /// A POSTed request: hash of the one-time cookie set on the browser that posted it,
    /// so only that browser can continue it.
    #[serde(default)]
    pub continue_hash: Option<String>,
    /// Hash of the session created by a login during this interaction (a fresh
    /// authentication).
    pub logged_in_session: Option<String>,
    /// A sign-in to the account page, not an authorization request: it ends at the
    /// account page, with no client and no consent.
    #[serde(default)]
    pub for_account: bool,
    /// A sign-in waiting for its next step (a second factor, an enrolment, a step-up).
    #[serde(default)]
    pub sign_in: Option<SignIn>,
    /// The level a sign-in for this request is asked to reach: the request's
    /// `acr_values` and the client's `require_mfa` (see [`asked_of_sign_in`]).
    #[serde(default)]
    pub asked: Level,
    /// An account sign-in that confirms who is there before a change to how the account
    /// signs in: a fresh sign-in even with a session, and then the security page.
    #[serde(default)]
    pub reauth: bool,
    /// A password reset, not a sign-in: it checks the account's second factors, then
    /// takes a new password; it never leads to a session.
    #[serde(default)]
    pub reset: Option<PendingReset>,
    /// A local sign-in that confirms a link proof (issue 24; its handle): it ends at the
    /// link's confirmation, not at the account page.
    #[serde(default)]
    pub upstream_link: Option<String>,
    /// A device's request (RFC 8628 §3.3): its sign-in and consent end at the `/device`
    /// page's own answer, never at a redirect URI.
    #[serde(default)]
    pub device: Option<DeviceAuthorization>,
    /// The user code the user typed, sealed under the KEK (`device::seal_user_code`):
    /// the consent page shows it, for the user to check it is their device's (§3.3.1).
    #[serde(default)]
    pub device_user_code: Option<String>,
}

/// A password reset waiting in the browser that opened its link.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct PendingReset {
    /// The hash of the link (never the link itself).
    pub link_hash: String,
    pub user_id: String,
    /// The account's second factors were passed (or it has none): a new password may be
    /// set.
    pub checked: bool,
    /// What the account held when its check began: a second factor it holds at the
    /// completion but did not then was not passed, and the check runs again.
    #[serde(default)]
    pub held: AccountFactors,
}

impl Interaction {
    /// A validated request of `client`, bound to no browser yet.
    pub fn new(request: AuthorizationRequest, client: &Client) -> Self {
        Self {
            asked: asked_of_sign_in(&request, client.require_mfa),
            reauth: false,
            request,
            client_name: client.name.clone(),
            client_unverified: client.registered_dynamically,
            browser: String::new(),
            continue_hash: None,
            logged_in_session: None,
            for_account: false,
            sign_in: None,
            reset: None,
            upstream_link: None,
            device: None,
            device_user_code: None,
        }
    }

    /// The sign-in and consent of a device authorization, of `client`, that a user code
    /// found.
    pub fn for_device(
        device: DeviceAuthorization,
        client: &Client,
        sealed_user_code: Option<String>,
    ) -> Self {
        let mut interaction = Self::new(
            crate::protocol::device::authorization_request(&device),
            client,
        );
        interaction.device = Some(device);
        interaction.device_user_code = sealed_user_code;
        interaction
    }

    /// A sign-in to the account page.
    pub fn for_account() -> Self {
        Self {
            request: AuthorizationRequest::default(),
            client_name: "your account".into(),
            client_unverified: false,
            browser: String::new(),
            continue_hash: None,
            logged_in_session: None,
            for_account: true,
            sign_in: None,
            asked: Level::SingleFactor,
            reauth: false,
            reset: None,
            upstream_link: None,
            device: None,
            device_user_code: None,
        }
    }

    /// A password reset of `user_id` by the link of hash `link_hash`.
    pub fn for_reset(link_hash: &str, user_id: &str) -> Self {
        let mut interaction = Self::for_account();
        interaction.reset = Some(PendingReset {
            link_hash: link_hash.to_owned(),
            user_id: user_id.to_owned(),
            checked: false,
            held: AccountFactors::default(),
        });
        interaction
    }

    /// A fresh sign-in of `username` to confirm it is them, before a change to how the
    /// account signs in (the security page).
    pub fn confirm_identity(username: &str) -> Self {
        let mut interaction = Self::for_account();
        interaction.reauth = true;
        interaction.request.login_hint = Some(username.to_owned());
        interaction
    }

    pub fn bind(&mut self, browser_id: &str) {
        self.browser = token_hash(browser_id);
    }

    /// Whether `browser_id` is the browser this interaction is bound to.
    pub fn is_bound_to(&self, browser_id: &str) -> bool {
        !self.browser.is_empty()
            && constant_time_eq(token_hash(browser_id).as_bytes(), self.browser.as_bytes())
    }

    /// Parks a POSTed request until its browser comes back with a GET: returns the value
    /// of the one-time cookie that browser must bring.
    pub fn park(&mut self) -> String {
        let nonce = random_token(24);
        self.continue_hash = Some(token_hash(&nonce));
        nonce
    }

    /// The GET after a POSTed request: binds it to `browser_id` if that browser brings
    /// the one-time cookie of [`Self::park`]. A link used before has expired; a link
    /// opened in another browser is refused.
    pub fn claim_parked(
        &mut self,
        cookie: Option<&str>,
        browser_id: &str,
    ) -> Result<(), OAuthError> {
        if !self.browser.is_empty() {
            return Err(expired());
        }
        let posted_here = cookie
            .zip(self.continue_hash.as_deref())
            .is_some_and(|(c, h)| constant_time_eq(token_hash(c).as_bytes(), h.as_bytes()));
        if !posted_here {
            return Err(other_browser());
        }
        self.bind(browser_id);
        self.continue_hash = None;
        Ok(())
    }

    /// True when `session` was created by a login during this interaction.
    pub fn fresh_login_of(&self, session: &SsoSession) -> bool {
        self.logged_in_session
            .as_deref()
            .is_some_and(|h| constant_time_eq(h.as_bytes(), token_hash(&session.id).as_bytes()))
    }

    /// The consent page has an authorization request to consent to; an account sign-in
    /// has none.
    pub fn consentable(self) -> Result<Self, OAuthError> {
        if self.for_account {
            return Err(expired());
        }
        Ok(self)
    }

    /// The user allowed the request: `prompt=consent` is satisfied by that decision.
    pub fn consented(&mut self) {
        self.request.prompt.retain(|p| *p != Prompt::Consent);
    }

    /// The response that ends the interaction with `code` (e.g. `access_denied`).
    pub fn error_response(&self, code: ErrorCode, issuer: &str) -> AuthorizationResponse {
        AuthorizationResponse::error_for(&self.request, &OAuthError::bare(code), issuer)
    }
}

/// What the browser's session means for an interaction, read from the store.
pub struct SignedIn {
    pub session: SsoSession,
    pub consent: Option<Consent>,
    /// The client is first-party: its user is taken to consent to what it asks. Read
    /// with the consent, so that an operator's change applies to the next step.
    pub first_party: bool,
    /// The request's `id_token_hint` names this session's user.
    pub hint_names_user: bool,
    /// The level the session must have reached for this request (see
    /// [`required_level`]).
    pub required: Level,
}

/// Whether `session` still speaks for its user, and if so what they consented to for
/// `request`'s client. `None`: the user was removed, or changed the password, since
/// signing in, and the session is worthless.
pub fn signed_in(
    request: &AuthorizationRequest,
    session: SsoSession,
    ctx: &Context<'_>,
) -> Result<Option<SignedIn>, OAuthError> {
    let Some(user) = session_user(ctx.store, &session)? else {
        return Ok(None);
    };
    let client_id = &request.client_id;
    let client = ctx.store.find_client(client_id)?;
    // An id_token_hint names the user as this client knows them (a pairwise `sub`,
    // perhaps): is it this session's user?
    let hint_names_user = match (&request.hinted_sub, &client) {
        (Some(hint), Some(client)) => *hint == subject_for(client, &user.id, ctx.kek),
        _ => false,
    };
    let client_requires = client.as_ref().is_some_and(|c| c.require_mfa);
    Ok(Some(SignedIn {
        consent: ctx.store.find_consent(&user.id, client_id)?,
        first_party: client.as_ref().is_some_and(|c| c.first_party),
        required: required_level(
            ctx.config.mfa,
            asked_of_sign_in(request, client_requires),
            user.mfa_required,
        ),
        session,
        hint_names_user,
    }))
}

/// What a sign-in for `request` is asked to reach before the account is known: the
/// request's `acr_values` and the client's `require_mfa`.
pub fn asked_of_sign_in(request: &AuthorizationRequest, client_requires_mfa: bool) -> Level {
    let client = if client_requires_mfa {
        Level::MultiFactor
    } else {
        Level::SingleFactor
    };
    request.asked_level().max(client)
}

/// The level a session must have reached: what was `asked` (request and client), what
/// an administrator requires of the user, and the server's policy. A sign-in asked for
/// `asked` reaches at least this (`sign_in::SignIn::required` adds the account's own
/// factors), so a fresh sign-in is never stepped up again.
pub fn required_level(policy: MfaPolicy, asked: Level, user_mfa_required: bool) -> Level {
    let user = if user_mfa_required {
        Level::MultiFactor
    } else {
        Level::SingleFactor
    };
    policy.required(asked.max(user))
}

/// Where an interaction goes next.
#[derive(Debug, PartialEq)]
pub enum Step {
    /// To the login page.
    Login,
    /// To the second-factor page, for the session's own user.
    StepUp,
    /// To the consent page.
    Consent,
    /// An account sign-in is done: to the account page.
    Account,
    /// The user is signed in and has consented: issue the response to the client.
    Issue,
    /// Back to the client with an error (`login_required`, `consent_required`, ...).
    Fail(AuthorizationResponse),
}

/// Decides the next step of `interaction` for the browser's session (if it still speaks
/// for its user). A user the request names (`id_token_hint`, a claims request for a
/// `sub`) is compared in the client's own form (`SignedIn::hint_names_user`), never with
/// the internal id. Adjusts the request as the decision requires: an unconsented
/// `offline_access` is dropped (OIDC Core §11).
pub fn step(
    interaction: &mut Interaction,
    signed_in: Option<&SignedIn>,
    issuer: &str,
    now: UnixTime,
) -> Step {
    if interaction.for_account {
        return match signed_in {
            Some(s) if !interaction.reauth || interaction.fresh_login_of(&s.session) => {
                Step::Account
            }
            _ => Step::Login,
        };
    }
    let consent = signed_in.and_then(|s| s.consent.as_ref());
    let first_party = signed_in.is_some_and(|s| s.first_party);
    drop_unconsented_offline_access(&mut interaction.request, consent, first_party);
    let named = interaction.request.hinted_sub.is_some();
    let auth = signed_in.map(|s| Authentication {
        session: &s.session,
        fresh: interaction.fresh_login_of(&s.session),
        is_the_named_user: !named || s.hint_names_user,
        required: s.required,
    });
    match next_step(
        &interaction.request,
        auth.as_ref(),
        consent,
        first_party,
        now,
    ) {
        Next::Login => Step::Login,
        Next::StepUp => Step::StepUp,
        Next::Consent => Step::Consent,
        Next::IssueCode => Step::Issue,
        Next::Fail(code) => Step::Fail(interaction.error_response(code, issuer)),
    }
}

/// The page shown when a sign-in link is opened in another browser than the one that
/// started it.
pub fn other_browser() -> OAuthError {
    OAuthError::invalid_request(
        "this sign-in was started in another browser; return to the application and start again",
    )
}

pub fn expired() -> OAuthError {
    OAuthError::invalid_request(
        "this sign-in request has expired or was already completed; return to the application and start again",
    )
}

/// The one-time cookie that lets the browser which POSTed an authorization request
/// continue it.
pub fn continue_cookie_name(handle: &str) -> String {
    format!("portcullis_continue_{}", &handle[..handle.len().min(12)])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::authorize::ResponseMode;

    fn request(scope: &str, prompt: &[Prompt]) -> AuthorizationRequest {
        AuthorizationRequest {
            client_id: "c".into(),
            redirect_uri: "https://rp.example/cb".into(),
            redirect_uri_sent: true,
            scope: scope.into(),
            state: Some("st".into()),
            prompt: prompt.to_vec(),
            response_mode: ResponseMode::Query,
            ..Default::default()
        }
    }

    fn interaction(scope: &str, prompt: &[Prompt]) -> Interaction {
        Interaction {
            request: request(scope, prompt),
            client_name: "App".into(),
            client_unverified: false,
            browser: String::new(),
            continue_hash: None,
            logged_in_session: None,
            for_account: false,
            sign_in: None,
            asked: Level::SingleFactor,
            reauth: false,
            reset: None,
            upstream_link: None,
            device: None,
            device_user_code: None,
        }
    }

    fn session(user: &str, auth_time: UnixTime) -> SsoSession {
        SsoSession {
            id: format!("session-of-{user}"),
            sid: "sid".into(),
            user_id: user.into(),
            auth_time,
            amr: vec!["pwd".into()],
            level: Default::default(),
            methods: Vec::new(),
            expires_at: auth_time + 3600,
            idp: None,
            upstream_id_token: None,
        }
    }

    fn signed_in(user: &str, consented: Option<&str>, hint_names_user: bool) -> SignedIn {
        SignedIn {
            session: session(user, 100),
            consent: consented.map(|scope| Consent {
                user_id: user.into(),
                client_id: "c".into(),
                scope: scope.into(),
                granted_at: 100,
                claims: String::new(),
            }),
            first_party: false,
            hint_names_user,
            required: Level::SingleFactor,
        }
    }

    #[test]
    fn a_bound_interaction_accepts_its_browser_only() {
        let mut i = interaction("openid", &[]);
        assert!(!i.is_bound_to(""), "an unbound interaction has no browser");
        i.bind("browser-a");
        assert!(i.is_bound_to("browser-a"));
        assert!(!i.is_bound_to("browser-b"));
        assert_ne!(i.browser, "browser-a", "only a hash is stored");
    }

    #[test]
    fn a_parked_request_is_claimed_once_by_the_browser_with_its_cookie() {
        let mut i = interaction("openid", &[]);
        let cookie = i.park();
        let refused = |r: Result<(), OAuthError>| r.unwrap_err().description;
        assert_eq!(
            refused(i.claim_parked(None, "b")),
            other_browser().description
        );
        assert_eq!(
            refused(i.claim_parked(Some("forged"), "b")),
            other_browser().description
        );
        i.claim_parked(Some(&cookie), "b").unwrap();
        assert!(i.is_bound_to("b"));
        assert_eq!(i.continue_hash, None);
        assert_eq!(
            refused(i.claim_parked(Some(&cookie), "b")),
            expired().description,
            "a continue link works once"
        );
    }

    #[test]
    fn without_a_session_the_user_logs_in_unless_prompt_is_none() {
        let mut i = interaction("openid", &[]);
        assert_eq!(step(&mut i, None, "https://op", 200), Step::Login);
        let mut i = interaction("openid", &[Prompt::None]);
        let Step::Fail(response) = step(&mut i, None, "https://op", 200) else {
            panic!("prompt=none fails");
        };
        let url = response.redirect_url().unwrap();
        assert!(url.contains("error=login_required"), "{url}");
        assert!(url.contains("state=st"), "{url}");
    }

    #[test]
    fn consent_covering_the_scopes_issues_and_a_missing_one_asks() {
        let mut i = interaction("openid profile", &[]);
        let given = signed_in("u", Some("openid profile email"), false);
        assert_eq!(step(&mut i, Some(&given), "https://op", 200), Step::Issue);
        let partial = signed_in("u", Some("openid"), false);
        assert_eq!(
            step(&mut i, Some(&partial), "https://op", 200),
            Step::Consent
        );
        i.request.prompt = vec![Prompt::None];
        assert!(matches!(
            step(&mut i, Some(&partial), "https://op", 200),
            Step::Fail(_)
        ));
    }

    #[test]
    fn consenting_satisfies_prompt_consent() {
        let mut i = interaction("openid", &[Prompt::Consent]);
        let given = signed_in("u", Some("openid"), false);
        assert_eq!(step(&mut i, Some(&given), "https://op", 200), Step::Consent);
        i.consented();
        assert_eq!(step(&mut i, Some(&given), "https://op", 200), Step::Issue);
    }

    #[test]
    fn a_first_party_client_issues_without_a_consent_and_keeps_offline_access() {
        let mut i = interaction("openid offline_access", &[]);
        let mut given = signed_in("u", None, false);
        given.first_party = true;
        assert_eq!(step(&mut i, Some(&given), "https://op", 200), Step::Issue);
        assert_eq!(i.request.scope, "openid offline_access", "kept as asked");
        let mut asked = interaction("openid", &[Prompt::Consent]);
        assert_eq!(
            step(&mut asked, Some(&given), "https://op", 200),
            Step::Consent,
            "prompt=consent still shows the page"
        );
        asked.consented();
        assert_eq!(
            step(&mut asked, Some(&given), "https://op", 200),
            Step::Issue
        );
    }

    #[test]
    fn unconsented_offline_access_is_dropped_from_the_request() {
        let mut i = interaction("openid offline_access", &[]);
        let given = signed_in("u", Some("openid"), false);
        assert_eq!(step(&mut i, Some(&given), "https://op", 200), Step::Issue);
        assert_eq!(i.request.scope, "openid");
    }

    #[test]
    fn a_hint_naming_the_user_is_issued_for_and_one_naming_another_asks_to_log_in() {
        let mut i = interaction("openid", &[]);
        i.request.hinted_sub = Some("pairwise-sub".into());
        let given = signed_in("u", Some("openid"), true);
        assert_eq!(step(&mut i, Some(&given), "https://op", 200), Step::Issue);
        assert_eq!(i.request.hinted_sub.as_deref(), Some("pairwise-sub"));
        let mut i = interaction("openid", &[]);
        i.request.hinted_sub = Some("someone-else".into());
        let given = signed_in("u", Some("openid"), false);
        assert_eq!(step(&mut i, Some(&given), "https://op", 200), Step::Login);
        // The user's internal id is not the client's name for them (a pairwise client
        // probing for it): it names someone else.
        let mut i = interaction("openid", &[Prompt::None]);
        i.request.hinted_sub = Some("u".into());
        let given = signed_in("u", Some("openid"), false);
        assert!(matches!(
            step(&mut i, Some(&given), "https://op", 200),
            Step::Fail(_)
        ));
    }

    #[test]
    fn a_login_in_this_interaction_is_fresh_and_satisfies_prompt_login() {
        let mut i = interaction("openid", &[Prompt::Login]);
        let given = signed_in("u", Some("openid"), false);
        assert_eq!(step(&mut i, Some(&given), "https://op", 200), Step::Login);
        i.logged_in_session = Some(token_hash(&given.session.id));
        assert!(i.fresh_login_of(&given.session));
        assert_eq!(step(&mut i, Some(&given), "https://op", 200), Step::Issue);
    }

    #[test]
    fn an_account_sign_in_ends_at_the_account_page_and_has_nothing_to_consent_to() {
        let mut i = Interaction::for_account();
        assert_eq!(step(&mut i, None, "https://op", 200), Step::Login);
        let given = signed_in("u", None, false);
        assert_eq!(step(&mut i, Some(&given), "https://op", 200), Step::Account);
        assert_eq!(
            i.consentable().unwrap_err().description,
            expired().description
        );
        assert!(interaction("openid", &[]).consentable().is_ok());
    }

    #[test]
    fn errors_go_back_in_the_requested_mode_with_state() {
        let mut i = interaction("openid", &[]);
        i.request.response_mode = ResponseMode::Fragment;
        let url = i
            .error_response(ErrorCode::AccessDenied, "https://op")
            .redirect_url()
            .unwrap();
        assert!(
            url.starts_with("https://rp.example/cb#error=access_denied"),
            "{url}"
        );
        assert!(url.contains("state=st") && url.contains("iss="), "{url}");
    }
}
