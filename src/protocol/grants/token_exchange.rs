//! OAuth 2.0 Token Exchange (RFC 8693): a client trades a token of ours that speaks for
//! a user (the subject token) for an access token to another audience, acting for the
//! user itself (impersonation) or with an actor token saying who acts (delegation, the
//! `act` claim of §4.1). What a client may ask for is its operator's policy
//! (`ExchangePolicy`): the audiences, and whether it may impersonate.
//!
//! The issued token belongs to the subject token's grant (its `gid`): revoking that grant
//! (its refresh token, the user's consent, signing out of its session) revokes it too,
//! as for every access token of the grant. It never outlives the subject token, dies when
//! the subject token (or any token of its chain) is revoked (`exchanged_from`), and when
//! the exchanging client is deleted.
//!
//! Which tokens a client may present is bound to the client (README, "Token exchange"):
//! a subject access token issued to it or addressed to it, an ID token issued to it; an
//! actor token issued to it (its own, or a user's signed in to it).

use serde_json::{Value, json};

use super::{TokenResponse, requested_scope};
use crate::domain::{ExchangePolicy, Scopes, Secret};
use crate::protocol::jwt::{self, AudienceRule, IssuedAt, JtiRule, Lifetime, Rules, SubjectRule};
use crate::protocol::jwt::{UnverifiedJwt, VerifyingKey};
use crate::protocol::resource_indicators;
use crate::protocol::tokens::{
    AccessTokenClaims, AccessTokenRequest, Subject, access_token_claims, prepare_access_token,
    subject_for, verify_access_token,
};
use crate::protocol::{Context, ErrorCode, OAuthError, Params};
use crate::store::{Client, Grant, NewAuditEvent, StoreError};

/// RFC 8693 §3: the token type identifiers this provider takes and issues.
pub const ACCESS_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:access_token";
pub const ID_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:id_token";

/// RFC 8693 §2.2.2: "If the request itself is not valid or if either the subject_token or
/// actor_token are invalid for any reason, or are unacceptable based on policy, [...] The
/// value of the error parameter MUST be the invalid_request error code." One place, so
/// the code of every refused token (foreign, expired, revoked) is the same.
fn refused_token(description: &'static str) -> OAuthError {
    OAuthError::new(ErrorCode::InvalidRequest, description)
}

/// The two kinds of our tokens a subject or actor token may be.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TokenType {
    AccessToken,
    IdToken,
}

impl TokenType {
    fn parse(name: &str, value: &str) -> Result<Self, OAuthError> {
        match value {
            ACCESS_TOKEN_TYPE => Ok(Self::AccessToken),
            ID_TOKEN_TYPE => Ok(Self::IdToken),
            _ => Err(OAuthError::invalid_request(format!(
                "{name} must be {ACCESS_TOKEN_TYPE} or {ID_TOKEN_TYPE}"
            ))),
        }
    }
}

/// A token as presented, with its type; `Debug` shows the type only.
#[derive(Debug)]
pub struct PresentedToken {
    token: Secret<String>,
    kind: TokenType,
}

/// RFC 8693 §2.1, parsed.
#[derive(Debug)]
pub struct ExchangeRequest {
    subject: PresentedToken,
    actor: Option<PresentedToken>,
    scope: Option<Scopes>,
    /// `resource` and `audience` values together, in order, without repeats.
    targets: Vec<String>,
    /// The caller's address (set by the HTTP layer), for the audit event.
    address: Option<String>,
}

impl ExchangeRequest {
    pub fn parse(params: &Params) -> Result<Self, OAuthError> {
        let subject = PresentedToken {
            token: Secret::new(params.required("subject_token")?.to_owned()),
            kind: TokenType::parse("subject_token_type", params.required("subject_token_type")?)?,
        };
        // §2.1: actor_token_type "is REQUIRED when the actor_token parameter is present in
        // the request but MUST NOT be included otherwise".
        let actor = match (
            params.single("actor_token")?,
            params.single("actor_token_type")?,
        ) {
            (Some(token), Some(kind)) => Some(PresentedToken {
                token: Secret::new(token.to_owned()),
                kind: TokenType::parse("actor_token_type", kind)?,
            }),
            (None, None) => None,
            (Some(_), None) => {
                return Err(OAuthError::invalid_request(
                    "actor_token_type is required with actor_token",
                ));
            }
            (None, Some(_)) => {
                return Err(OAuthError::invalid_request(
                    "actor_token_type without actor_token",
                ));
            }
        };
        // We issue access tokens only (§2.1 `requested_token_type` is optional).
        if let Some(requested) = params.single("requested_token_type")?
            && requested != ACCESS_TOKEN_TYPE
        {
            return Err(OAuthError::invalid_request(format!(
                "requested_token_type must be {ACCESS_TOKEN_TYPE}"
            )));
        }
        let mut targets = resource_indicators::requested(params)?;
        for audience in params.all("audience") {
            if audience.is_empty() {
                return Err(OAuthError::invalid_request("audience is empty"));
            }
            if !targets.iter().any(|t| t == audience) {
                targets.push(audience.to_owned());
            }
        }
        Ok(Self {
            subject,
            actor,
            scope: requested_scope(params)?,
            targets,
            address: None,
        })
    }

    pub fn with_address(self, address: String) -> Self {
        Self {
            address: Some(address),
            ..self
        }
    }
}

/// The longest chain of exchanges a token may come from (each exchange of an exchanged
/// token adds one link, and with an actor one level of `act`): a bound on the size of
/// the token and on the revocation checks its use costs. Longer: `invalid_request`.
pub const MAX_CHAIN: usize = 8;

/// What a verified subject token stands for.
#[derive(Debug)]
struct SubjectFacts {
    grant: Grant,
    scope: Scopes,
    /// The subject token's own expiry: the issued token ends no later.
    expires_at: i64,
    /// The subject token's `act` (it was itself delegated): the chain goes on.
    act: Option<Value>,
    /// The `jti` of the subject (an access token), then those it was exchanged from: the
    /// issued token's `exchanged_from`, checked at each use, so that revoking any of them
    /// (RFC 7009) revokes it too. Empty for an ID token (which cannot be revoked; its
    /// session and grant can, and are checked).
    chain: Vec<String>,
}

/// Whether an access token with these claims was meant for `client`: issued to it
/// (`client_id`), or addressed to it (`aud` names its client id or one of the RFC 8707
/// resources registered for it). Any other token of ours, a client that got hold of it
/// (a token sent to it by mistake, or for another service) cannot exchange.
fn meant_for(claims: &AccessTokenClaims, client: &Client) -> bool {
    if claims.client_id == client.id {
        return true;
    }
    let names = |aud: &str| aud == client.id || client.resources.iter().any(|r| r == aud);
    match &claims.aud {
        Value::String(aud) => names(aud),
        Value::Array(auds) => auds.iter().filter_map(Value::as_str).any(names),
        _ => false,
    }
}

/// The subject token: an access token meant for `client`, or an ID token issued to
/// `client`, of ours, live, for a user.
fn verify_subject(
    presented: &PresentedToken,
    client: &Client,
    ctx: &Context<'_>,
) -> Result<SubjectFacts, OAuthError> {
    match presented.kind {
        TokenType::AccessToken => {
            let claims = live_access_token(presented.token.expose(), ctx)?;
            let Some(Subject::User { grant_id, .. }) = claims.subject() else {
                return Err(refused_token("subject_token speaks for no user"));
            };
            if !meant_for(&claims, client) {
                return Err(refused_token(
                    "subject_token was neither issued to this client nor addressed to it",
                ));
            }
            let grant = ctx
                .store
                .find_grant(&grant_id)?
                .filter(|g| g.is_live(ctx.now))
                .ok_or_else(|| refused_token("subject_token has been revoked"))?;
            // The token's own scope, not its grant's: an exchange conveys no more than
            // the token it is given.
            let scope = Scopes::parse(&claims.scope).unwrap_or_default();
            let mut chain = vec![claims.jti];
            chain.extend(claims.exchanged_from);
            Ok(SubjectFacts {
                grant,
                scope,
                expires_at: claims.exp,
                act: claims.act,
                chain,
            })
        }
        TokenType::IdToken => {
            let id = user_id_token(presented.token.expose(), client, ctx)?;
            Ok(SubjectFacts {
                scope: Scopes::parse(&id.grant.scope).unwrap_or_default(),
                grant: id.grant,
                expires_at: id.expires_at,
                act: None,
                chain: Vec::new(),
            })
        }
    }
}

/// An access token of ours, unexpired and not revoked (nor its grant).
fn live_access_token(token: &str, ctx: &Context<'_>) -> Result<AccessTokenClaims, OAuthError> {
    verify_access_token(token, None, ctx).map_err(|e| match e.code {
        ErrorCode::InvalidToken => refused_token("the token is not a live access token of ours"),
        _ => e,
    })
}

/// A verified ID token of ours, issued to the requesting client, and what it stands for.
struct UserIdToken {
    user_id: String,
    /// The grant it was issued with, live.
    grant: Grant,
    expires_at: i64,
}

/// An ID token we issued (our key, `typ: JWT`, our issuer), not expired, whose `aud` is
/// `client` itself, for a user whose session is live, with the grant it was issued with
/// still live.
///
/// Only the requesting client's own ID tokens: an ID token is a relying party's proof of
/// a sign-in, not a credential for anyone else, and ID tokens travel (`id_token_hint` in
/// the query of a logout URL). RFC 8693 §2.1 leaves the acceptance of a subject token to
/// the server's policy, and this is ours.
fn user_id_token(
    token: &str,
    client: &Client,
    ctx: &Context<'_>,
) -> Result<UserIdToken, OAuthError> {
    let invalid = || refused_token("the token is not a live ID token of ours");
    let rules = Rules {
        issuer: Some(&ctx.config.issuer),
        subject: SubjectRule::Present,
        audience: AudienceRule::Unchecked,
        lifetime: Lifetime::AtMost {
            max: ctx.config.id_token_ttl.as_secs(),
        },
        issued_at: IssuedAt::Unchecked,
        leeway: 0,
        jti: JtiRule::Unchecked,
    };
    let parsed = UnverifiedJwt::parse(token).map_err(|_| invalid())?;
    let ours = VerifyingKey::Ours {
        keys: ctx.keys,
        typ: "JWT",
    };
    let claims = jwt::verify(&parsed, ours, &rules, ctx.now).map_err(|_| invalid())?;
    // Ours name one client: a string (or an array of one).
    let audience = match &claims["aud"] {
        Value::String(aud) => Some(aud.as_str()),
        Value::Array(auds) if auds.len() == 1 => auds[0].as_str(),
        _ => None,
    }
    .ok_or_else(invalid)?;
    if audience != client.id {
        return Err(refused_token("the ID token was not issued to this client"));
    }
    let sub = claims["sub"].as_str().ok_or_else(invalid)?;
    let expires_at = claims["exp"].as_i64().ok_or_else(invalid)?;
    let issued_at = claims["iat"].as_i64().ok_or_else(invalid)?;
    // The grant the ID token was issued with: that of its session, to its audience. A
    // session that ended (the user signed out) has none left.
    let sid = claims["sid"]
        .as_str()
        .ok_or_else(|| refused_token("the ID token has no session (sid)"))?;
    let session = ctx
        .store
        .find_session(sid)?
        .filter(|s| s.ended_at.is_none() && s.expires_at > ctx.now)
        .ok_or_else(|| refused_token("the ID token's session has ended"))?;
    // The `sub` is the one the client knows the user by (pairwise or not).
    if sub != subject_for(client, &session.user_id, ctx.kek) {
        return Err(invalid());
    }
    // Its own grant: the newest of the session made no later than the token (a grant
    // given afterwards, with other scopes, is not what this token stands for), and live.
    let grant = ctx
        .store
        .find_session_grant(&client.id, &session.user_id, sid, issued_at)?
        .filter(|g| g.is_live(ctx.now))
        .ok_or_else(|| refused_token("the ID token's grant has been revoked"))?;
    Ok(UserIdToken {
        user_id: session.user_id,
        grant,
        expires_at,
    })
}

/// Who acts (RFC 8693 §4.1 `act.sub`), bound to the requesting client: the client itself
/// (an access token of its own, `client_credentials`: `act.sub` is its client id) or a
/// user signed in to it (an access token issued to it, or an ID token issued to it with
/// a live session and grant: `act.sub` is our user id, the `sub` of our access tokens).
/// Never the subject itself: that would be an impersonation dressed as a delegation.
fn verify_actor(
    presented: &PresentedToken,
    subject: &SubjectFacts,
    client: &Client,
    ctx: &Context<'_>,
) -> Result<String, OAuthError> {
    let actor = match presented.kind {
        TokenType::AccessToken => {
            let claims = live_access_token(presented.token.expose(), ctx)?;
            if claims.client_id != client.id {
                return Err(refused_token("actor_token was not issued to this client"));
            }
            if subject.chain.first() == Some(&claims.jti) {
                return Err(refused_token("actor_token is the subject_token"));
            }
            match claims.subject() {
                Some(Subject::User { user_id, .. }) => user_id,
                Some(Subject::Client { client_id }) => client_id,
                None => return Err(refused_token("actor_token speaks for no one")),
            }
        }
        TokenType::IdToken => user_id_token(presented.token.expose(), client, ctx)?.user_id,
    };
    if actor == subject.grant.user_id {
        return Err(refused_token("the actor is the subject"));
    }
    Ok(actor)
}

/// How deep an `act` claim nests.
fn act_depth(act: Option<&Value>) -> usize {
    let mut depth = 0;
    let mut next = act;
    while let Some(act) = next {
        depth += 1;
        next = act.get("act");
    }
    depth
}

/// RFC 8693 §4.1: the issued token's `act`. With an actor, the actor, and inside it the
/// subject token's own `act` (the earlier actors of the chain: "the outermost act claim
/// represents the current actor while nested act claims represent prior actors"). Without
/// one (impersonation), whatever the subject token said, so that an exchange never hides
/// a delegation.
pub fn act_claim(actor_sub: Option<&str>, prior: Option<Value>) -> Option<Value> {
    match actor_sub {
        None => prior,
        Some(sub) => {
            let mut act = json!({ "sub": sub });
            if let Some(prior) = prior {
                act["act"] = prior;
            }
            Some(act)
        }
    }
}

/// The audience of the issued token: the targets asked for, each in the policy (§2.2.2
/// `invalid_target` otherwise). None asked for: the policy's one audience; with several,
/// `invalid_target` too (a token for every service the client may reach would be a token
/// none of them should accept: §2.1 "the authorization server [...] can use the
/// audience/resource to determine the target").
pub fn target_audience(
    policy: &ExchangePolicy,
    requested: Vec<String>,
) -> Result<Vec<String>, OAuthError> {
    if requested.is_empty() {
        if policy.audiences.len() == 1 {
            return Ok(policy.audiences.clone());
        }
        return Err(OAuthError::new(
            ErrorCode::InvalidTarget,
            "name the audience or resource the token is for",
        ));
    }
    if let Some(outside) = requested.iter().find(|t| !policy.audiences.contains(t)) {
        return Err(OAuthError::new(
            ErrorCode::InvalidTarget,
            format!("this client may not exchange tokens for {outside}"),
        ));
    }
    Ok(requested)
}

/// The scope of the issued token: the subject token's, or fewer (never more: a
/// delegation cannot give what the user did not), and within the scope registered for
/// the exchanging client, when it has one (it never gets a scope it could not ask for
/// itself). Asked for beyond either: `invalid_scope`.
pub fn narrowed_scope(
    subject: &Scopes,
    registered: Option<&Scopes>,
    requested: Option<Scopes>,
) -> Result<Scopes, OAuthError> {
    let mut allowed = subject.clone();
    if let Some(registered) = registered {
        allowed.retain(|s| registered.contains(s));
    }
    match requested {
        None => Ok(allowed),
        Some(s) if s.is_subset(&allowed) => Ok(s),
        Some(_) => Err(OAuthError::new(
            ErrorCode::InvalidScope,
            "the scope is wider than the subject token's or this client's",
        )),
    }
}

pub fn exchange(
    request: ExchangeRequest,
    client: &Client,
    ctx: &Context<'_>,
) -> Result<TokenResponse, OAuthError> {
    let policy = client.metadata.token_exchange.as_ref().ok_or_else(|| {
        OAuthError::new(
            ErrorCode::UnauthorizedClient,
            "this client has no token exchange policy",
        )
    })?;
    // RFC 8693 §2.1 asks for client authentication where the client can authenticate;
    // a token that speaks for a user, to anyone holding a public client's id: no. The
    // registration refuses such a policy, and this holds whatever was stored since.
    if client.is_public() {
        return Err(OAuthError::new(
            ErrorCode::UnauthorizedClient,
            "token exchange is only for confidential clients",
        ));
    }
    // The request's own shape first (no lookup): a missing actor where only delegation
    // is allowed, a target outside the policy.
    if request.actor.is_none() && !policy.impersonation {
        return Err(refused_token(
            "this client may only delegate: an actor_token is required",
        ));
    }
    let audience = target_audience(policy, request.targets)?;
    let subject = verify_subject(&request.subject, client, ctx)?;
    if subject.chain.len() > MAX_CHAIN || act_depth(subject.act.as_ref()) >= MAX_CHAIN {
        return Err(refused_token("subject_token comes from too long a chain"));
    }
    let actor = request
        .actor
        .as_ref()
        .map(|actor| verify_actor(actor, &subject, client, ctx))
        .transpose()?;
    let scope = narrowed_scope(&subject.scope, client.scope.as_ref(), request.scope)?;
    let scope_text = scope.to_string();
    let grant = &subject.grant;
    let mut claims = access_token_claims(
        &AccessTokenRequest {
            subject: &Subject::User {
                user_id: grant.user_id.clone(),
                grant_id: grant.id.clone(),
            },
            client,
            scope: &scope_text,
            audience: &audience,
            auth_time: Some(grant.auth_time),
            acr: grant.acr.as_deref(),
            amr: grant.amr.as_deref(),
            groups: None,
        },
        ctx,
    );
    // Never outliving the subject token (nor the grant, which `gid` checks at use).
    claims.exp = claims.exp.min(subject.expires_at);
    claims.act = act_claim(actor.as_deref(), subject.act);
    claims.exchanged_from = subject.chain;
    let expires_in = claims.exp - ctx.now;
    let event = NewAuditEvent {
        at: ctx.now,
        actor: format!("client:{}", client.id),
        action: "token.exchanged".to_owned(),
        target: Some(grant.user_id.clone()),
        address: request.address.clone(),
        details: Some(
            json!({
                "subject": grant.user_id,
                "actor": actor,
                "client_id": client.id,
                "audience": audience,
                "scope": scope_text,
                "jti": claims.jti,
            })
            .to_string(),
        ),
    };
    let prepared = prepare_access_token(claims, client, ctx)?;
    // An opaque token's row refers to the subject's grant, live when looked up above but
    // deleted since with its client or its user: the reference fails, and the subject
    // token is refused as one whose grant had ended already is (RFC 8693 §2.2.2).
    if let Some(row) = prepared.pending() {
        ctx.store
            .insert_opaque_access_token(row)
            .map_err(|e| match e {
                StoreError::Gone => refused_token("the subject token's grant has ended"),
                other => other.into(),
            })?;
    }
    let access = prepared.recorded().token;
    ctx.store.record_audit_event(&event)?;
    crate::audit::token_exchanged(
        &grant.user_id,
        actor.as_deref().unwrap_or(""),
        &client.id,
        &audience.join(" "),
    );
    Ok(TokenResponse {
        access_token: access.token,
        token_type: "Bearer",
        expires_in,
        id_token: None,
        refresh_token: None,
        scope: scope_text,
        issued_token_type: Some(ACCESS_TOKEN_TYPE),
    })
}

#[cfg(test)]
mod tests;
