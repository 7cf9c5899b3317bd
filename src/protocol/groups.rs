//! The `groups` scope and claim: the names of the groups the user belongs to, as a JSON
//! array of strings sorted case-insensitively (the `groups` of RFC 9068 §2.2.3.1, which
//! takes it from SCIM, RFC 7643 §4.1.2).
//!
//! Where the scope releases it: unlike the profile claims (OIDC Core §5.4, which reach
//! the client at userinfo), groups are what apps and APIs decide access by, so they travel
//! with every answer about the user: the ID token, userinfo, the JWT access token and
//! introspection. The ID token and the access token carry the groups of the moment they
//! are issued (the next token, a refresh, has the change); userinfo and introspection say
//! what they are now. The `claims` parameter (§5.5) may ask for `groups` by name, for the
//! ID token or userinfo, like any claim, with the user's consent to it (the consent page
//! lists it).
//!
//! Looking them up is one indexed query (`GroupStore::grant_group_names`), made only when
//! the claim is released, and answered from the liveness cache when the grant was seen
//! lately.

use std::collections::BTreeMap;

use serde_json::Value;

use super::claims_request::ClaimRequest;
use super::{Context, OAuthError};
use crate::domain::Scopes;

/// The scope, and the claim it releases.
pub const GROUPS: &str = "groups";

/// Whether the groups are released where `requested` (the claims parameter's member for
/// that place, if any) applies: by the scope, or asked for by name.
pub fn released(scopes: &Scopes, requested: Option<&BTreeMap<String, ClaimRequest>>) -> bool {
    scopes.contains(GROUPS) || requested.is_some_and(|r| r.contains_key(GROUPS))
}

/// The claim's value for the user of `grant_id`.
pub fn claim(grant_id: &str, ctx: &Context<'_>) -> Result<Vec<String>, OAuthError> {
    Ok(ctx.store.grant_group_names(grant_id)?)
}

/// The claim's value for `user_id`, before any grant of theirs is stored (a code's
/// redemption looks them up ahead of the transaction that stores its grant): the same
/// names in the same order as `claim`, without its cache.
pub fn claim_of_user(user_id: &str, ctx: &Context<'_>) -> Result<Vec<String>, OAuthError> {
    Ok(ctx
        .store
        .list_user_groups(user_id)?
        .into_iter()
        .map(|group| group.name)
        .collect())
}

/// The claim as JSON.
pub fn value(names: &[String]) -> Value {
    Value::from(names.to_vec())
}

#[cfg(test)]
mod tests {
    use base64::Engine;
    use serde_json::json;

    use super::*;
    use crate::domain::GroupName;
    use crate::protocol::Params;
    use crate::protocol::claims_request::ClaimsRequest;
    use crate::protocol::grants::{TokenRequest, exchange};
    use crate::protocol::introspection::introspect;
    use crate::protocol::testing::{REDIRECT_URI, TestWorld, VERIFIER};
    use crate::protocol::tokens::verify_access_token;
    use crate::protocol::userinfo::{UserinfoResponse, userinfo};
    use crate::store::{AdminChange, AuthMethod, Group, NewAuditEvent};

    fn event(action: &str) -> NewAuditEvent {
        NewAuditEvent {
            at: 1,
            actor: "cli".into(),
            action: action.into(),
            target: None,
            address: None,
            details: None,
        }
    }

    /// Puts `user_id` in a new group named `name`.
    fn join(world: &TestWorld, name: &str, user_id: &str) {
        let group = Group::new(name.into(), &GroupName::parse(name).unwrap(), 1);
        let store = &world.store;
        store
            .apply_audited(AdminChange::CreateGroup(&group), &event("group.created"))
            .unwrap();
        let change = AdminChange::AddGroupMember {
            group_id: &group.id,
            user_id,
        };
        store
            .apply_audited(change, &event("group.member_added"))
            .unwrap();
    }

    fn payload(jwt: &str) -> serde_json::Value {
        let part = jwt.split('.').nth(1).unwrap();
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(part)
            .unwrap();
        serde_json::from_slice(&bytes).unwrap()
    }

    /// The `groups` of the ID token, the access token, userinfo and introspection of a
    /// code issued for `scope`.
    fn released_for(scope: &str) -> [serde_json::Value; 4] {
        let world = TestWorld::default();
        let alice = world.add_user("alice");
        let bob = world.add_user("bob");
        for name in ["Ops", "admins", "Billing"] {
            join(&world, name, &alice.id);
        }
        join(&world, "bob's", &bob.id);
        let (client, _) = world.add_client("rp", AuthMethod::ClientSecretBasic);
        let code = world.issue_code(&client, &alice, scope);
        let request = TokenRequest::parse(&Params::new(
            [
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", REDIRECT_URI),
                ("code_verifier", VERIFIER),
            ]
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .to_vec(),
        ))
        .unwrap();
        let tokens = exchange(request, &client, None, &world.ctx()).unwrap();
        let ctx = world.ctx();
        let access = verify_access_token(&tokens.access_token, None, &ctx).unwrap();
        let UserinfoResponse::Json(info) = userinfo(
            &tokens.access_token,
            crate::protocol::dpop::Presented::Bearer,
            &ctx,
        )
        .unwrap() else {
            panic!("a JSON answer");
        };
        let introspected = introspect(&tokens.access_token, &client, &ctx).unwrap();
        [
            payload(&tokens.id_token.unwrap())["groups"].clone(),
            json!(access.groups),
            info["groups"].clone(),
            introspected["groups"].clone(),
        ]
    }

    #[test]
    fn the_groups_scope_releases_the_users_group_names_sorted_everywhere() {
        let sorted = json!(["admins", "Billing", "Ops"]);
        assert_eq!(
            released_for("openid groups"),
            [sorted.clone(), sorted.clone(), sorted.clone(), sorted]
        );
        let none = serde_json::Value::Null;
        assert_eq!(
            released_for("openid profile"),
            [none.clone(), none.clone(), none.clone(), none]
        );
    }

    #[test]
    fn the_scope_or_a_request_by_name_releases_the_groups() {
        let with = Scopes::parse("openid groups").unwrap();
        let without = Scopes::parse("openid profile").unwrap();
        assert!(released(&with, None));
        assert!(!released(&without, None));
        let asked = ClaimsRequest::parse(r#"{"userinfo":{"groups":null}}"#).unwrap();
        assert!(released(&without, Some(&asked.userinfo)));
        assert!(
            !released(&without, Some(&asked.id_token)),
            "asked for userinfo only"
        );
    }
}
