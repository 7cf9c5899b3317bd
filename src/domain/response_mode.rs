use serde::{Deserialize, Serialize};

/// How the response reaches the client (OAuth 2.0 Multiple Response Types §2.1, OAuth 2.0
/// Form Post Response Mode §2).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ResponseMode {
    /// Parameters in the redirect URI's query: the default for `code`.
    #[default]
    Query,
    /// Parameters in the redirect URI's fragment: the browser never sends them to a
    /// server.
    Fragment,
    /// An HTML form the browser POSTs to the redirect URI: parameters stay out of URLs
    /// (and so out of logs and the Referer header).
    FormPost,
}

impl ResponseMode {
    pub const SUPPORTED: [&'static str; 3] = ["query", "fragment", "form_post"];

    pub fn parse(value: &str) -> Option<Self> {
        match value {
            "query" => Some(Self::Query),
            "fragment" => Some(Self::Fragment),
            "form_post" => Some(Self::FormPost),
            _ => None,
        }
    }
}
