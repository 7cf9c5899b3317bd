//! Authentication levels: what a sign-in reached (`acr`, OIDC Core §2), what a request,
//! a client, the server or a user's own policy asks for, and the comparison between them.
//!
//! Two levels, ordered: one factor (a password, or a passkey without user verification),
//! and several (a password with a one-time or recovery code or a passkey, or a passkey
//! whose authenticator verified the user, which is possession and a PIN or biometric in
//! one step: NIST SP 800-63B §5.1.7 counts it as multi-factor).

use serde::{Deserialize, Serialize};

use super::UnixTime;

/// One factor, of any kind (`amr` shows which).
pub const ACR_PASSWORD: &str = "urn:portcullis:acr:password";
/// Two factors of different kinds, or a user-verifying passkey.
pub const ACR_MFA: &str = "urn:portcullis:acr:mfa";

/// How strongly a session's user was authenticated. Ordered: a higher level meets every
/// request for a lower one.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum Level {
    #[default]
    SingleFactor,
    MultiFactor,
}

impl Level {
    /// Every level, weakest first.
    pub const ALL: [Level; 2] = [Level::SingleFactor, Level::MultiFactor];

    /// The `acr` value naming this level.
    pub fn acr(self) -> &'static str {
        match self {
            Self::SingleFactor => ACR_PASSWORD,
            Self::MultiFactor => ACR_MFA,
        }
    }

    /// The level an `acr` value names, if it is one of ours.
    pub fn from_acr(acr: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|l| l.acr() == acr)
    }
}

/// One authentication method a session's user proved, and when (RFC 8176 §2 `amr`
/// value; OIDC Core §2 time).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MethodUse {
    pub amr: String,
    pub at: UnixTime,
}

/// The server-wide second-factor policy (`mfa`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MfaPolicy {
    /// No second factor is asked or offered; passkeys still sign in.
    Off,
    /// Users who enrolled a second factor use it; clients, requests and administrators
    /// may require one.
    #[default]
    Optional,
    /// Every sign-in needs two factors: a user without a second factor enrols one at the
    /// next sign-in.
    Required,
}

impl MfaPolicy {
    pub fn parse(value: &str) -> Option<Self> {
        match value {
            "off" => Some(Self::Off),
            "optional" => Some(Self::Optional),
            "required" => Some(Self::Required),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Off => "off",
            Self::Optional => "optional",
            Self::Required => "required",
        }
    }

    /// The levels sign-ins can reach under this policy (`acr_values_supported`).
    pub fn levels(self) -> &'static [Level] {
        match self {
            Self::Off => &[Level::SingleFactor],
            Self::Optional | Self::Required => &Level::ALL,
        }
    }

    /// The least every sign-in must reach.
    pub fn floor(self) -> Level {
        match self {
            Self::Required => Level::MultiFactor,
            Self::Off | Self::Optional => Level::SingleFactor,
        }
    }

    /// What a sign-in must reach when `asked` is asked of it: never more than this
    /// policy lets any sign-in reach (with `off`, a request for two factors gets one;
    /// an essential one was refused when the request was validated).
    pub fn required(self, asked: Level) -> Level {
        let reachable = self.levels().last().copied().unwrap_or_default();
        asked.max(self.floor()).min(reachable)
    }
}

/// What a request asked of the authentication context: `acr_values` (OIDC Core §3.1.2.1)
/// or an `acr` claims request (§5.5.1.1).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AcrAsked {
    /// The levels of ours the request named, weakest first (an unknown value names none).
    pub levels: Vec<Level>,
    /// An essential `acr` claim: a sign-in that reaches none of `levels` fails.
    pub essential: bool,
}

impl AcrAsked {
    /// The level a sign-in must reach to meet the request: any level it named will do,
    /// so the weakest of them.
    pub fn required(&self) -> Level {
        self.levels.first().copied().unwrap_or_default()
    }

    /// The `acr` to report for a session that reached `achieved`: the strongest level
    /// named that it meets (§5.5.1.1: an essential request's value must be one named),
    /// else the level reached.
    pub fn reported(&self, achieved: Level) -> &'static str {
        self.levels
            .iter()
            .rev()
            .find(|l| **l <= achieved)
            .copied()
            .unwrap_or(achieved)
            .acr()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_are_ordered_and_named_by_their_acr() {
        assert!(Level::SingleFactor < Level::MultiFactor);
        for level in Level::ALL {
            assert_eq!(Level::from_acr(level.acr()), Some(level));
        }
        assert_eq!(Level::from_acr("urn:other"), None);
    }

    #[test]
    fn the_policy_sets_a_floor_and_a_ceiling() {
        use Level::*;
        assert_eq!(MfaPolicy::Optional.required(SingleFactor), SingleFactor);
        assert_eq!(MfaPolicy::Optional.required(MultiFactor), MultiFactor);
        assert_eq!(MfaPolicy::Required.required(SingleFactor), MultiFactor);
        assert_eq!(MfaPolicy::Off.required(MultiFactor), SingleFactor);
        assert_eq!(MfaPolicy::Off.levels(), [SingleFactor]);
        assert_eq!(MfaPolicy::Required.levels(), Level::ALL);
        for policy in [MfaPolicy::Off, MfaPolicy::Optional, MfaPolicy::Required] {
            assert_eq!(MfaPolicy::parse(policy.as_str()), Some(policy));
        }
        assert_eq!(MfaPolicy::parse("on"), None);
    }

    #[test]
    fn the_weakest_level_named_is_required_and_the_strongest_met_is_reported() {
        use Level::*;
        let both = AcrAsked {
            levels: vec![SingleFactor, MultiFactor],
            essential: false,
        };
        assert_eq!(both.required(), SingleFactor);
        assert_eq!(both.reported(SingleFactor), ACR_PASSWORD);
        assert_eq!(both.reported(MultiFactor), ACR_MFA);
        let mfa = AcrAsked {
            levels: vec![MultiFactor],
            essential: true,
        };
        assert_eq!(mfa.required(), MultiFactor);
        let password = AcrAsked {
            levels: vec![SingleFactor],
            essential: true,
        };
        // A two-factor session meets a request for one: it reports the value asked.
        assert_eq!(password.reported(MultiFactor), ACR_PASSWORD);
        let unknown = AcrAsked::default();
        assert_eq!(unknown.required(), SingleFactor);
        assert_eq!(unknown.reported(MultiFactor), ACR_MFA);
    }
}
