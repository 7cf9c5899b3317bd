//! Who may create an account without an administrator (`signup`, issue 23 §4): nobody,
//! those an administrator invited, or anyone whose address answers a mail. A domain value
//! because the configuration reads it and the pages, the admin layer and the protocol
//! act on it.

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum SignupMode {
    /// Only administrators create accounts; invitations are refused.
    #[default]
    Off,
    /// Administrators invite; an invitation's link creates the account.
    Invite,
    /// Invitations, and "Create an account" on the login page.
    Open,
}

impl SignupMode {
    pub fn parse(value: &str) -> Option<Self> {
        match value.trim() {
            "off" => Some(Self::Off),
            "invite" => Some(Self::Invite),
            "open" => Some(Self::Open),
            _ => None,
        }
    }

    /// Invitations are sent and accepted (`invite` and `open`).
    pub fn invitations(self) -> bool {
        self != Self::Off
    }

    /// Anyone may sign up (`open`).
    pub fn open(self) -> bool {
        self == Self::Open
    }
}

#[cfg(test)]
mod tests {
    use super::SignupMode;

    #[test]
    fn off_refuses_everything_invite_invitations_and_open_both() {
        assert_eq!(SignupMode::parse("off"), Some(SignupMode::Off));
        assert_eq!(SignupMode::parse("Open"), None);
        let modes = ["off", "invite", "open"].map(|m| SignupMode::parse(m).unwrap());
        assert_eq!(modes.map(SignupMode::invitations), [false, true, true]);
        assert_eq!(modes.map(SignupMode::open), [false, false, true]);
    }
}
