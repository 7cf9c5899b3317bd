//! The response mode a `response_type` implies when the request names none.

use super::ResponseMode;
use crate::domain::ResponseType;

/// Multiple Response Types §2.1 and §3: query for `code`, fragment whenever a token
/// comes from the authorization endpoint.
pub fn default_mode(response_type: ResponseType) -> ResponseMode {
    if response_type == ResponseType::CODE {
        ResponseMode::Query
    } else {
        ResponseMode::Fragment
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_code_defaults_to_the_query() {
        for value in ResponseType::SUPPORTED {
            let expected = if value == "code" {
                ResponseMode::Query
            } else {
                ResponseMode::Fragment
            };
            assert_eq!(default_mode(ResponseType::parse(value).unwrap()), expected);
        }
    }
}
