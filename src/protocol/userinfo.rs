//! The UserInfo endpoint (OIDC Core §5.3): claims by scope (§5.4) for a valid access token.

use serde_json::{Map, Value, json};

use super::tokens::{Subject, verify_access_token};
use super::{Context, ErrorCode, OAuthError};
use crate::domain::Scopes;
use crate::store::User;

pub fn userinfo(access_token: &str, ctx: &Context<'_>) -> Result<Value, OAuthError> {
    // RFC 9068 §4: userinfo is this provider's resource, so the token must name it.
    let claims = verify_access_token(access_token, Some(&ctx.settings.issuer), ctx)?;
    let Some(Subject::User { user_id, .. }) = claims.subject() else {
        // A client's own token (client_credentials) speaks for no user.
        return Err(OAuthError::invalid_token(
            "the access token was not issued for a user",
        ));
    };
    let scopes = Scopes::parse(&claims.scope).unwrap_or_default();
    if !scopes.contains("openid") {
        return Err(OAuthError::new(
            ErrorCode::InsufficientScope,
            "the openid scope is required",
        ));
    }
    let user = ctx
        .store
        .find_user(&user_id)?
        .ok_or_else(|| OAuthError::invalid_token("the user no longer exists"))?;
    Ok(Value::Object(claims_for(&user, &scopes)))
}

/// The standard claims `scopes` release (OIDC Core §5.4); absent values are omitted.
pub fn claims_for(user: &User, scopes: &Scopes) -> Map<String, Value> {
    let mut out = Map::new();
    out.insert("sub".into(), json!(user.id));
    let mut put = |name: &str, value: Option<&String>| {
        if let Some(v) = value {
            out.insert(name.into(), json!(v));
        }
    };
    if scopes.contains("profile") {
        put("name", user.name.as_ref());
        put("given_name", user.given_name.as_ref());
        put("family_name", user.family_name.as_ref());
        put("middle_name", user.middle_name.as_ref());
        put("nickname", user.nickname.as_ref());
        put("preferred_username", Some(&user.username));
        put("profile", user.profile.as_ref());
        put("picture", user.picture.as_ref());
        put("website", user.website.as_ref());
        put("gender", user.gender.as_ref());
        put("birthdate", user.birthdate.as_ref());
        put("zoneinfo", user.zoneinfo.as_ref());
        put("locale", user.locale.as_ref());
        out.insert("updated_at".into(), json!(user.updated_at));
    }
    if scopes.contains("email") && user.email.is_some() {
        out.insert("email".into(), json!(user.email));
        out.insert("email_verified".into(), json!(user.email_verified));
    }
    if scopes.contains("phone") && user.phone_number.is_some() {
        out.insert("phone_number".into(), json!(user.phone_number));
        out.insert(
            "phone_number_verified".into(),
            json!(user.phone_number_verified),
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn claims_follow_the_granted_scopes() {
        let mut user = User::new("sub-1".into(), "alice".into(), "x".into(), 7);
        user.email = Some("alice@example.com".into());
        user.name = Some("Alice".into());
        let only_openid = claims_for(&user, &Scopes::parse("openid").unwrap());
        assert_eq!(only_openid.len(), 1);
        let all = claims_for(&user, &Scopes::parse("openid profile email").unwrap());
        assert_eq!(all["name"], "Alice");
        assert_eq!(all["preferred_username"], "alice");
        assert_eq!(all["email_verified"], false);
        assert!(all.get("phone_number").is_none());
    }
}
