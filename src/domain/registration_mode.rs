/// Who may register clients at the RFC 7591 registration endpoint: anyone, holders of the
/// initial access token (§3), or nobody. A domain value because both the configuration
/// (which reads it) and the protocol (which publishes the endpoint or not) name it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RegistrationMode {
    Open,
    Token,
    Off,
}
