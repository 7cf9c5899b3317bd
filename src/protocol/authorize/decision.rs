//! What an authorization request needs next: a login, a consent, or nothing more
//! (OIDC Core §3.1.2.3, `prompt` and `max_age` in §3.1.2.1).

use std::collections::BTreeSet;

use super::{AuthorizationRequest, Prompt};
use crate::domain::{Level, Scopes, UnixTime};
use crate::protocol::claims::releasing_scope;
use crate::protocol::claims_request::ClaimsRequest;
use crate::protocol::{ErrorCode, OFFLINE_ACCESS};
use crate::sessions::SsoSession;
use crate::store::Consent;

/// Who is signed in for this request, if anyone.
pub struct Authentication<'a> {
    pub session: &'a SsoSession,
    /// True when the user entered credentials during this very request.
    pub fresh: bool,
    /// False when the request names a user (`id_token_hint`, or a claims request for a
    /// `sub`, OIDC Core §5.5.1) and it is not this session's. The name is the client's
    /// (pairwise, perhaps): only the caller, who knows the client, can compare it.
    pub is_the_named_user: bool,
    /// The level the session must have reached: what the request, the client, the
    /// server's policy and the user's administrator ask for.
    pub required: Level,
}

#[derive(Debug, PartialEq, Eq)]
pub enum Next {
    Login,
    /// The session's user signed in at a lower level than required: ask only for the
    /// missing factor, in the same session.
    StepUp,
    Consent,
    IssueCode,
    Fail(ErrorCode),
}

/// OIDC Core §11: offline_access is ignored unless the user is asked for consent
/// (`prompt=consent`) or has already consented to it for this client. It is then dropped
/// from the request (no refresh token) rather than refused. A first-party client is one of
/// the "other conditions for processing the request permitting offline access" §11
/// allows: the operator's word stands for the user's consent.
pub fn drop_unconsented_offline_access(
    request: &mut AuthorizationRequest,
    consent: Option<&Consent>,
    first_party: bool,
) {
    let mut scopes = request.scopes();
    if !scopes.contains(OFFLINE_ACCESS) || request.prompts(Prompt::Consent) || first_party {
        return;
    }
    let consented = consent
        .and_then(|c| Scopes::parse(&c.scope))
        .is_some_and(|granted| granted.contains(OFFLINE_ACCESS));
    if !consented {
        scopes.retain(|s| s != OFFLINE_ACCESS);
        request.scope = scopes.to_string();
    }
}

/// The claims `request` asks for one by one (the `claims` parameter, OIDC Core §5.5) that
/// its own scopes do not release: the user allows them beside the scopes.
pub fn claims_beyond_scopes(request: &AuthorizationRequest) -> BTreeSet<String> {
    let scopes = request.scopes();
    ClaimsRequest::from_stored(request.claims.as_deref())
        .map(|claims| {
            claims
                .names()
                .into_iter()
                .filter(|name| releasing_scope(name).is_some_and(|s| !scopes.contains(s)))
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

/// Whether what the user allowed covers everything `request` would release: every scope,
/// and every claim asked for one by one, by a consented scope that releases it or by
/// name (OIDC Core §3.1.2.4: consent to the information released).
fn consent_covers(consent: &Consent, request: &AuthorizationRequest) -> bool {
    let Some(granted) = Scopes::parse(&consent.scope) else {
        return false;
    };
    let allowed_claims = consent.claim_names();
    request.scopes().is_subset(&granted)
        && claims_beyond_scopes(request).iter().all(|name| {
            allowed_claims.contains(name.as_str())
                || releasing_scope(name).is_some_and(|s| granted.contains(s))
        })
}

/// What happens next for `request`, given the browser's session and the stored consent.
/// A `first_party` client (so marked by the operator, as Hydra's `skip_consent`) is taken
/// as consented to exactly what it asks, and no consent is recorded for it.
pub fn next_step(
    request: &AuthorizationRequest,
    auth: Option<&Authentication<'_>>,
    consent: Option<&Consent>,
    first_party: bool,
    now: UnixTime,
) -> Next {
    let none = request.prompts(Prompt::None);
    let must_login = match auth {
        None => true,
        Some(a) => {
            !a.fresh
                // select_account: the login page is where an account is chosen.
                && (request.prompts(Prompt::Login)
                    || request.prompts(Prompt::SelectAccount)
                    || request
                        .max_age
                        // OIDC Core §3.1.2.1 (errata): max_age=0 is prompt=login.
                        .is_some_and(|max| max == 0 || now - a.session.auth_time > max)
                    || !a.is_the_named_user)
        }
    };
    if must_login {
        return if none {
            Next::Fail(ErrorCode::LoginRequired)
        } else {
            Next::Login
        };
    }
    // A hint naming another user than the one who just logged in cannot be satisfied.
    if auth.is_some_and(|a| !a.is_the_named_user) {
        return Next::Fail(ErrorCode::LoginRequired);
    }
    // A session below the level asked is stepped up (OIDC Core §3.1.2.1 `acr_values`;
    // with `prompt=none` that needs the user: `login_required`, §3.1.2.6).
    if auth.is_some_and(|a| a.session.level < a.required) {
        return if none {
            Next::Fail(ErrorCode::LoginRequired)
        } else {
            Next::StepUp
        };
    }
    let covered = first_party || consent.is_some_and(|c| consent_covers(c, request));
    // OIDC Core §3.1.2.1: with `prompt=consent` the OP "SHOULD prompt the End-User for
    // consent before returning information to the Client", first-party or not.
    if !covered || request.prompts(Prompt::Consent) {
        return if none {
            Next::Fail(ErrorCode::ConsentRequired)
        } else {
            Next::Consent
        };
    }
    Next::IssueCode
}

#[cfg(test)]
mod tests {
    use super::*;

    const FIRST_PARTY: bool = true;
    const THIRD_PARTY: bool = false;

    /// The decision for a client that is not first-party, as most tests here want it.
    fn next_step(
        request: &AuthorizationRequest,
        auth: Option<&Authentication<'_>>,
        consent: Option<&Consent>,
        now: UnixTime,
    ) -> Next {
        super::next_step(request, auth, consent, THIRD_PARTY, now)
    }

    /// The decision for a first-party client.
    fn first_party_step(
        request: &AuthorizationRequest,
        auth: Option<&Authentication<'_>>,
        consent: Option<&Consent>,
        now: UnixTime,
    ) -> Next {
        super::next_step(request, auth, consent, FIRST_PARTY, now)
    }

    fn request(prompt: &[&str], max_age: Option<i64>) -> AuthorizationRequest {
        AuthorizationRequest {
            client_id: "c".into(),
            redirect_uri: "https://rp/cb".into(),
            redirect_uri_sent: true,
            scope: "openid profile".into(),
            state: None,
            nonce: None,
            code_challenge: None,
            code_challenge_method: None,
            dpop_jkt: None,
            prompt: prompt.iter().filter_map(|s| Prompt::parse(s)).collect(),
            max_age,
            hinted_sub: None,
            login_hint: None,
            idp_hint: None,
            response_mode: Default::default(),
            response_type: Default::default(),
            claims: None,
            acr_asked: None,
            resources: Vec::new(),
        }
    }

    fn session(auth_time: i64) -> SsoSession {
        SsoSession {
            id: "s".into(),
            sid: "p".into(),
            user_id: "u".into(),
            auth_time,
            amr: vec!["pwd".into()],
            level: Level::SingleFactor,
            methods: Vec::new(),
            expires_at: auth_time + 1000,
            idp: None,
            upstream_id_token: None,
        }
    }

    /// `session` signed in before this request, for the user the request names (if any).
    fn signed_in(session: &SsoSession) -> Authentication<'_> {
        Authentication {
            session,
            fresh: false,
            is_the_named_user: true,
            required: Level::SingleFactor,
        }
    }

    fn consent(scope: &str) -> Consent {
        Consent {
            user_id: "u".into(),
            client_id: "c".into(),
            scope: scope.into(),
            granted_at: 0,
            claims: String::new(),
        }
    }

    #[test]
    fn without_a_session_the_user_logs_in_unless_prompt_is_none() {
        assert_eq!(next_step(&request(&[], None), None, None, 100), Next::Login);
        assert_eq!(
            next_step(&request(&["none"], None), None, None, 100),
            Next::Fail(ErrorCode::LoginRequired)
        );
    }

    #[test]
    fn prompt_login_and_exceeded_max_age_force_a_new_login_once() {
        let s = session(100);
        let old = signed_in(&s);
        let fresh = Authentication {
            fresh: true,
            ..signed_in(&s)
        };
        let c = consent("openid profile");
        assert_eq!(
            next_step(&request(&["login"], None), Some(&old), Some(&c), 150),
            Next::Login
        );
        assert_eq!(
            next_step(&request(&["login"], None), Some(&fresh), Some(&c), 150),
            Next::IssueCode
        );
        assert_eq!(
            next_step(&request(&[], Some(10)), Some(&old), Some(&c), 150),
            Next::Login
        );
        assert_eq!(
            next_step(&request(&[], Some(100)), Some(&old), Some(&c), 150),
            Next::IssueCode
        );
        // §3.1.2.1: "If the elapsed time is greater than this value": at exactly
        // max_age the sign-in still stands, a second later it does not.
        assert_eq!(
            next_step(&request(&[], Some(50)), Some(&old), Some(&c), 150),
            Next::IssueCode
        );
        assert_eq!(
            next_step(&request(&[], Some(50)), Some(&old), Some(&c), 151),
            Next::Login
        );
        assert_eq!(
            next_step(&request(&[], Some(0)), Some(&old), Some(&c), 100),
            Next::Login
        );
        assert_eq!(
            next_step(&request(&[], Some(0)), Some(&fresh), Some(&c), 100),
            Next::IssueCode
        );
    }

    #[test]
    fn consent_must_cover_every_requested_scope() {
        let s = session(100);
        let a = signed_in(&s);
        let narrow = consent("openid");
        let wide = consent("openid profile email");
        assert_eq!(
            next_step(&request(&[], None), Some(&a), Some(&narrow), 100),
            Next::Consent
        );
        assert_eq!(
            next_step(&request(&[], None), Some(&a), Some(&wide), 100),
            Next::IssueCode
        );
        assert_eq!(
            next_step(&request(&["none"], None), Some(&a), Some(&narrow), 100),
            Next::Fail(ErrorCode::ConsentRequired)
        );
        assert_eq!(
            next_step(&request(&["consent"], None), Some(&a), Some(&wide), 100),
            Next::Consent
        );
    }

    #[test]
    fn consent_must_cover_every_claim_asked_for_one_by_one() {
        let s = session(100);
        let a = signed_in(&s);
        let mut r = request(&[], None);
        r.scope = "openid".into();
        r.claims = Some(
            ClaimsRequest::parse(
                r#"{"userinfo":{"email":null,"phone_number":null},"id_token":{"acr":null,"sub":null}}"#,
            )
            .unwrap()
            .to_json(),
        );
        assert_eq!(
            claims_beyond_scopes(&r).into_iter().collect::<Vec<_>>(),
            ["email", "phone_number"]
        );
        let scopes_only = consent("openid");
        assert_eq!(
            next_step(&r, Some(&a), Some(&scopes_only), 100),
            Next::Consent
        );
        let mut none = r.clone();
        none.prompt = vec![Prompt::None];
        assert_eq!(
            next_step(&none, Some(&a), Some(&scopes_only), 100),
            Next::Fail(ErrorCode::ConsentRequired)
        );
        // Allowed by name, or released by a consented scope: covered.
        let mut by_name = consent("openid");
        by_name.claims = "email phone_number".into();
        assert_eq!(
            next_step(&none, Some(&a), Some(&by_name), 100),
            Next::IssueCode
        );
        let mut one_short = consent("openid");
        one_short.claims = "email".into();
        assert_eq!(
            next_step(&none, Some(&a), Some(&one_short), 100),
            Next::Fail(ErrorCode::ConsentRequired)
        );
        let by_scope = consent("openid email phone");
        assert_eq!(
            next_step(&none, Some(&a), Some(&by_scope), 100),
            Next::IssueCode
        );
        // Claims the request's own scopes release are consented with those scopes.
        let mut with_scope = none.clone();
        with_scope.scope = "openid email phone".into();
        assert!(claims_beyond_scopes(&with_scope).is_empty());
    }

    #[test]
    fn offline_access_stays_only_with_prompt_consent_or_a_consent_given_for_it() {
        let mut plain = request(&[], None);
        plain.scope = "offline_access openid".into();
        let mut asked = plain.clone();
        asked.prompt = vec![Prompt::Consent];
        let mut remembered = plain.clone();

        drop_unconsented_offline_access(&mut plain, Some(&consent("openid profile")), THIRD_PARTY);
        assert_eq!(plain.scope, "openid");
        drop_unconsented_offline_access(&mut asked, None, THIRD_PARTY);
        assert_eq!(asked.scope, "offline_access openid");
        drop_unconsented_offline_access(
            &mut remembered,
            Some(&consent("offline_access openid")),
            THIRD_PARTY,
        );
        assert_eq!(remembered.scope, "offline_access openid");
    }

    #[test]
    fn id_token_hint_for_another_user_requires_login() {
        let s = session(100);
        let a = signed_in(&s);
        let other = Authentication {
            is_the_named_user: false,
            ..a
        };
        assert_eq!(
            next_step(&request(&["none"], None), Some(&other), None, 100),
            Next::Fail(ErrorCode::LoginRequired)
        );
        assert_eq!(
            next_step(&request(&[], None), Some(&other), None, 100),
            Next::Login
        );
        let just_signed_in = Authentication {
            fresh: true,
            ..other
        };
        assert_eq!(
            next_step(&request(&[], None), Some(&just_signed_in), None, 100),
            Next::Fail(ErrorCode::LoginRequired)
        );
    }

    #[test]
    fn a_session_below_the_level_required_is_stepped_up_in_place() {
        let s = session(100);
        let c = consent("openid profile");
        let below = Authentication {
            required: Level::MultiFactor,
            ..signed_in(&s)
        };
        assert_eq!(
            next_step(&request(&[], None), Some(&below), Some(&c), 100),
            Next::StepUp
        );
        assert_eq!(
            next_step(&request(&["none"], None), Some(&below), Some(&c), 100),
            Next::Fail(ErrorCode::LoginRequired),
            "prompt=none cannot ask for the factor"
        );
        // prompt=login is a whole new sign-in, not a step-up.
        assert_eq!(
            next_step(&request(&["login"], None), Some(&below), Some(&c), 100),
            Next::Login
        );
        let mut strong = session(100);
        strong.level = Level::MultiFactor;
        let met = Authentication {
            required: Level::MultiFactor,
            ..signed_in(&strong)
        };
        assert_eq!(
            next_step(&request(&[], None), Some(&met), Some(&c), 100),
            Next::IssueCode
        );
        // Consent comes after the step-up, not before.
        assert_eq!(
            next_step(&request(&[], None), Some(&below), None, 100),
            Next::StepUp
        );
    }

    #[test]
    fn a_first_party_client_is_not_asked_for_consent_unless_prompt_consent_says_so() {
        let s = session(100);
        let a = signed_in(&s);
        let narrow = consent("openid");
        assert_eq!(
            first_party_step(&request(&[], None), Some(&a), None, 100),
            Next::IssueCode
        );
        assert_eq!(
            first_party_step(&request(&[], None), Some(&a), Some(&narrow), 100),
            Next::IssueCode,
            "a narrower consent given before does not limit a first-party client"
        );
        assert_eq!(
            first_party_step(&request(&["consent"], None), Some(&a), None, 100),
            Next::Consent
        );
        // Being first-party skips consent, not the login.
        assert_eq!(
            first_party_step(&request(&[], None), None, None, 100),
            Next::Login
        );
        assert_eq!(
            first_party_step(&request(&["login"], None), Some(&a), None, 150),
            Next::Login
        );
    }

    #[test]
    fn prompt_none_gets_a_first_party_client_a_code_without_any_consent_record() {
        let s = session(100);
        let a = signed_in(&s);
        assert_eq!(
            first_party_step(&request(&["none"], None), Some(&a), None, 100),
            Next::IssueCode
        );
        assert_eq!(
            next_step(&request(&["none"], None), Some(&a), None, 100),
            Next::Fail(ErrorCode::ConsentRequired)
        );
        assert_eq!(
            first_party_step(&request(&["none"], None), None, None, 100),
            Next::Fail(ErrorCode::LoginRequired)
        );
    }

    #[test]
    fn a_first_party_client_keeps_offline_access_without_a_consent_to_it() {
        let mut first = request(&[], None);
        first.scope = "offline_access openid".into();
        let mut third = first.clone();
        drop_unconsented_offline_access(&mut first, None, FIRST_PARTY);
        assert_eq!(first.scope, "offline_access openid");
        drop_unconsented_offline_access(&mut third, None, THIRD_PARTY);
        assert_eq!(third.scope, "openid");
    }
}
