//! Second factors as plain Rust: one-time codes (RFC 6238), recovery codes, and the QR
//! code of a TOTP enrolment. Storage is `store::FactorStore`; the sign-in decides when
//! each is asked for.

pub mod qr;
pub mod recovery;
pub mod totp;
