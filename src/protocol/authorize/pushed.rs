//! Pushed Authorization Requests (RFC 9126): the client posts its authorization request
//! first (authenticated, over the back channel) and sends the browser with a one-time
//! `request_uri` that stands for it.

use serde::{Deserialize, Serialize};

use crate::crypto::tokens::random_token;
use crate::domain::UnixTime;
use crate::protocol::{OAuthError, Params};

/// §2.2: "a URN ... for example urn:ietf:params:oauth:request_uri:<reference-value>".
pub const REQUEST_URI_PREFIX: &str = "urn:ietf:params:oauth:request_uri:";

/// §2.2 `expires_in`: short, as the request is to be used at once (and only once).
pub const PUSHED_REQUEST_TTL: i64 = 60;

/// Parameters of client authentication, which are not part of the request itself.
const AUTHENTICATION_PARAMS: [&str; 3] =
    ["client_secret", "client_assertion", "client_assertion_type"];

/// A pushed request, waiting for the browser.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PushedRequest {
    pub client_id: String,
    pub params: Vec<(String, String)>,
    pub expires_at: UnixTime,
}

impl PushedRequest {
    /// The request to store for `client_id`; §2.1: `request_uri` "MUST NOT be provided"
    /// in a push.
    pub fn new(client_id: &str, params: &Params, now: UnixTime) -> Result<Self, OAuthError> {
        if params.single("request_uri")?.is_some() {
            return Err(OAuthError::invalid_request(
                "request_uri cannot be pushed (RFC 9126 §2.1)",
            ));
        }
        let mut pairs: Vec<(String, String)> = params
            .pairs()
            .iter()
            .filter(|(k, _)| !AUTHENTICATION_PARAMS.contains(&k.as_str()) && k != "client_id")
            .cloned()
            .collect();
        // The authenticated client is the request's client.
        pairs.push(("client_id".into(), client_id.to_owned()));
        Ok(Self {
            client_id: client_id.to_owned(),
            params: pairs,
            expires_at: now + PUSHED_REQUEST_TTL,
        })
    }

    /// The stored request as the authorization endpoint's parameters, if `client_id`
    /// (the authorization request's) is its client and it has not expired.
    pub fn redeem(self, client_id: Option<&str>, now: UnixTime) -> Result<Params, OAuthError> {
        if client_id != Some(self.client_id.as_str()) || self.expires_at <= now {
            return Err(invalid_request_uri());
        }
        Ok(Params::new(self.params))
    }
}

/// A new `request_uri` and the handle it is stored under.
pub fn new_request_uri() -> (String, String) {
    let handle = random_token(24);
    (format!("{REQUEST_URI_PREFIX}{handle}"), handle)
}

/// The handle of one of our `request_uri` values.
pub fn handle_of(request_uri: &str) -> Option<&str> {
    request_uri
        .strip_prefix(REQUEST_URI_PREFIX)
        .filter(|h| !h.is_empty() && h.len() <= 64)
}

pub fn invalid_request_uri() -> OAuthError {
    OAuthError::new(
        crate::protocol::ErrorCode::InvalidRequestUri,
        "request_uri is unknown, expired, already used or for another client",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(pairs: &[(&str, &str)]) -> Params {
        Params::new(
            pairs
                .iter()
                .map(|(k, v)| ((*k).into(), (*v).into()))
                .collect(),
        )
    }

    #[test]
    fn a_pushed_request_keeps_its_parameters_but_not_the_clients_credentials() {
        let pushed = PushedRequest::new(
            "rp",
            &params(&[
                ("scope", "openid"),
                ("client_secret", "s"),
                ("client_id", "other"),
            ]),
            100,
        )
        .unwrap();
        assert_eq!(
            pushed.params,
            vec![
                ("scope".to_owned(), "openid".to_owned()),
                ("client_id".to_owned(), "rp".to_owned())
            ]
        );
        assert_eq!(pushed.expires_at, 100 + PUSHED_REQUEST_TTL);
        assert!(PushedRequest::new("rp", &params(&[("request_uri", "x")]), 0).is_err());
    }

    #[test]
    fn a_pushed_request_is_redeemed_by_its_client_before_it_expires() {
        let pushed = PushedRequest::new("rp", &params(&[("scope", "openid")]), 100).unwrap();
        assert!(pushed.clone().redeem(Some("rp"), 159).is_ok());
        assert!(pushed.clone().redeem(Some("rp"), 160).is_err());
        assert!(pushed.clone().redeem(Some("other"), 100).is_err());
        assert!(pushed.redeem(None, 100).is_err());
        let (uri, handle) = new_request_uri();
        assert_eq!(handle_of(&uri), Some(handle.as_str()));
        assert_eq!(handle_of("https://rp.example/request.jwt"), None);
    }
}
