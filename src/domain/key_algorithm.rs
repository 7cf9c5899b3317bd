//! The JWS algorithms of the keys this provider signs with (RFC 7518 §3, RFC 8037).

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "String", into = "&'static str")]
pub enum KeyAlgorithm {
    Rs256,
    /// RSASSA-PSS with SHA-256 (RFC 7518 §3.5): FAPI's choice over PKCS#1 v1.5.
    Ps256,
    Es256,
    /// Ed25519 (RFC 8037).
    EdDsa,
}

impl TryFrom<String> for KeyAlgorithm {
    type Error = String;

    fn try_from(value: String) -> Result<Self, String> {
        Self::parse(&value).ok_or_else(|| format!("unsupported algorithm {value}"))
    }
}

impl From<KeyAlgorithm> for &'static str {
    fn from(alg: KeyAlgorithm) -> Self {
        alg.as_str()
    }
}

impl KeyAlgorithm {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Rs256 => "RS256",
            Self::Ps256 => "PS256",
            Self::Es256 => "ES256",
            Self::EdDsa => "EdDSA",
        }
    }

    pub fn parse(value: &str) -> Option<Self> {
        match value {
            "RS256" => Some(Self::Rs256),
            "PS256" => Some(Self::Ps256),
            "ES256" => Some(Self::Es256),
            "EdDSA" => Some(Self::EdDsa),
            _ => None,
        }
    }
}
