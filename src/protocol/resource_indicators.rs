//! Resource Indicators for OAuth 2.0 (RFC 8707): the `resource` parameter of the
//! authorization and token requests, and the audience it gives access tokens.
//!
//! A client may name only resources an operator registered it for. The authorization
//! request's resources are kept with the code and then the grant; a token request of
//! that grant (code or refresh) may narrow them (§2.2) but never widen them.

use super::{ErrorCode, OAuthError, Params};
use crate::store::Client;

fn invalid_target(description: &'static str) -> OAuthError {
    OAuthError::new(ErrorCode::InvalidTarget, description)
}

/// §2: "The value of the resource parameter MUST be an absolute URI ... MUST NOT include
/// a fragment component." A URI has no whitespace (RFC 3986 §2), which URL parsing would
/// otherwise trim or encode away, and resources are stored space-separated.
pub fn check_resource(resource: &str) -> Result<(), OAuthError> {
    let spaced = resource
        .chars()
        .any(|c| c.is_whitespace() || c.is_control());
    match url::Url::parse(resource) {
        Ok(url) if !spaced && url.fragment().is_none() && !resource.contains('#') => Ok(()),
        _ => Err(invalid_target(
            "resource must be an absolute URI without a fragment",
        )),
    }
}

/// Every `resource` of a request (§2: it may repeat), each checked, once each in the
/// order first named; malformed is `invalid_target`.
pub fn requested(params: &Params) -> Result<Vec<String>, OAuthError> {
    let mut resources: Vec<String> = Vec::new();
    for resource in params.all("resource") {
        check_resource(resource)?;
        if !resources.iter().any(|r| r == resource) {
            resources.push(resource.to_owned());
        }
    }
    Ok(resources)
}

/// §2: the server "can use the resource parameter ... to determine the resources the
/// client is permitted to access": here those an operator registered it for.
pub fn registered_for(client: &Client, resources: &[String]) -> Result<(), OAuthError> {
    if resources.iter().all(|r| client.resources.contains(r)) {
        Ok(())
    } else {
        Err(invalid_target(
            "the client may not request tokens for this resource",
        ))
    }
}

/// The audience of an access token from a grant of `granted` resources, for a token
/// request that named `requested` (§2.2): all of them when it named none, else the ones
/// named, which must each have been granted.
pub fn narrowed(granted: &[String], requested: Vec<String>) -> Result<Vec<String>, OAuthError> {
    if requested.is_empty() {
        return Ok(granted.to_vec());
    }
    if requested.iter().all(|r| granted.contains(r)) {
        Ok(requested)
    } else {
        Err(invalid_target(
            "the resource was not part of the authorization grant",
        ))
    }
}

/// Resources as stored (codes, grants): space-separated; `None` for none.
pub fn stored(resources: &[String]) -> Option<String> {
    (!resources.is_empty()).then(|| resources.join(" "))
}

/// Resources as a code or grant stored them (none before they were recorded).
pub fn from_stored(text: Option<&str>) -> Vec<String> {
    text.map(|t| {
        t.split(' ')
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect()
    })
    .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::testing;

    fn params(query: &str) -> Params {
        Params::from_urlencoded(query).unwrap()
    }

    fn strings(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn resources_are_absolute_uris_without_a_fragment_or_whitespace() {
        assert!(check_resource("https://api.example/").is_ok());
        assert!(check_resource("urn:example:api").is_ok());
        for bad in [
            "/relative",
            "api.example",
            "https://api.example/#frag",
            "https://api.example/#",
            " https://api.example/",
            "https://api.example/a b",
        ] {
            assert_eq!(
                check_resource(bad).unwrap_err().code,
                ErrorCode::InvalidTarget,
                "{bad:?}"
            );
        }
    }

    #[test]
    fn a_request_names_each_resource_once_in_its_order() {
        let named = requested(&params(
            "resource=https%3A%2F%2Fb.example&resource=https%3A%2F%2Fa.example\
             &resource=https%3A%2F%2Fb.example&resource=",
        ))
        .unwrap();
        assert_eq!(named, ["https://b.example", "https://a.example"]);
        assert!(requested(&params("scope=openid")).unwrap().is_empty());
        let malformed = requested(&params("resource=https%3A%2F%2Fa.example&resource=nope"));
        assert_eq!(malformed.unwrap_err().code, ErrorCode::InvalidTarget);
    }

    #[test]
    fn a_client_names_only_the_resources_it_was_registered_for() {
        let mut client = testing::client("c");
        client.resources = strings(&["https://api.example"]);
        assert!(registered_for(&client, &[]).is_ok());
        assert!(registered_for(&client, &strings(&["https://api.example"])).is_ok());
        let other = registered_for(
            &client,
            &strings(&["https://api.example", "https://x.example"]),
        );
        assert_eq!(other.unwrap_err().code, ErrorCode::InvalidTarget);
    }

    #[test]
    fn a_token_request_narrows_the_granted_resources_and_never_widens_them() {
        let granted = strings(&["https://a.example", "https://b.example"]);
        assert_eq!(narrowed(&granted, vec![]).unwrap(), granted);
        assert_eq!(
            narrowed(&granted, strings(&["https://b.example"])).unwrap(),
            ["https://b.example"]
        );
        let wider = narrowed(&granted, strings(&["https://c.example"]));
        assert_eq!(wider.unwrap_err().code, ErrorCode::InvalidTarget);
        let none_granted = narrowed(&[], strings(&["https://a.example"]));
        assert_eq!(none_granted.unwrap_err().code, ErrorCode::InvalidTarget);
    }

    #[test]
    fn resources_are_stored_space_separated_and_read_back() {
        let both = strings(&["https://a.example", "urn:b"]);
        assert_eq!(stored(&both).as_deref(), Some("https://a.example urn:b"));
        assert_eq!(from_stored(stored(&both).as_deref()), both);
        assert_eq!(stored(&[]), None);
        assert!(from_stored(None).is_empty());
    }
}
