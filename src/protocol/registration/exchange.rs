//! A client's token exchange policy (RFC 8693), as an operator registers it.

use super::{MAX_URI, MAX_URIS, metadata_error};
use crate::domain::{ExchangePolicy, GrantType};
use crate::protocol::OAuthError;
use crate::store::AuthMethod;

/// The policy `audiences` and `impersonation` describe for a client of `grants`; `None`
/// when the operator gave none (the client's exchanges are then `unauthorized_client`).
pub(super) fn policy(
    grants: &[GrantType],
    auth_method: AuthMethod,
    audiences: Vec<String>,
    impersonation: bool,
) -> Result<Option<ExchangePolicy>, OAuthError> {
    if audiences.is_empty() {
        if impersonation {
            return Err(metadata_error(
                "exchange_impersonation needs exchange_audiences",
            ));
        }
        return Ok(None);
    }
    if !grants.contains(&GrantType::TokenExchange) {
        return Err(metadata_error(format!(
            "exchange_audiences need the grant type {}",
            GrantType::TokenExchange.as_str()
        )));
    }
    // A token that speaks for a user, to anyone holding a public client's id: no.
    if auth_method == AuthMethod::None {
        return Err(metadata_error(
            "token exchange is only for confidential clients",
        ));
    }
    if audiences.len() > MAX_URIS {
        return Err(metadata_error("too many exchange_audiences"));
    }
    let mut kept: Vec<String> = Vec::with_capacity(audiences.len());
    for audience in audiences {
        // RFC 8693 §2.1: `audience` is a logical name or a URI; either way one printable
        // token without spaces (it is compared exactly, and written into `aud`).
        let printable = !audience.is_empty()
            && audience.len() <= MAX_URI
            && audience.chars().all(|c| c.is_ascii_graphic());
        if !printable {
            return Err(metadata_error(
                "each exchange audience is a URI or a name without spaces",
            ));
        }
        if !kept.contains(&audience) {
            kept.push(audience);
        }
    }
    Ok(Some(ExchangePolicy {
        audiences: kept,
        impersonation,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXCHANGE: [GrantType; 1] = [GrantType::TokenExchange];

    #[test]
    fn a_policy_needs_the_grant_a_confidential_client_and_clean_audiences() {
        let basic = AuthMethod::ClientSecretBasic;
        let ok = policy(&EXCHANGE, basic, vec!["https://api.example".into()], true)
            .unwrap()
            .unwrap();
        assert_eq!(ok.audiences, ["https://api.example"]);
        assert!(ok.impersonation);
        assert_eq!(policy(&EXCHANGE, basic, vec![], false).unwrap(), None);
        let refused = [
            policy(&EXCHANGE, basic, vec![], true),
            policy(
                &[GrantType::ClientCredentials],
                basic,
                vec!["a".into()],
                false,
            ),
            policy(&EXCHANGE, AuthMethod::None, vec!["a".into()], false),
            policy(&EXCHANGE, basic, vec!["two words".into()], false),
            policy(&EXCHANGE, basic, vec![String::new()], false),
        ];
        for result in refused {
            assert!(result.is_err(), "{result:?}");
        }
    }
}
