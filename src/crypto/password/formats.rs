//! The stored password hashes we verify: our own argon2id, and those imported from other
//! providers (`portcullis users import`). Each is parsed, and its cost checked against a
//! ceiling, before any work is done, the same way at import and at sign-in, so that no
//! stored string can make one sign-in cost more than about a second of one core.
//!
//! Accepted, exactly (README, "Moving in"):
//! - argon2 (RFC 9106) PHC strings: `$argon2id$`, `$argon2i$`, `$argon2d$`, with
//!   `v=19`, `v=16` or no version (1.0), any `m`, `t`, `p` within the ceiling;
//! - bcrypt: `$2a$`, `$2b$`, `$2y$` (60 characters, cost 04 to `BCRYPT_MAX_COST`);
//!   `$2x$` (crypt_blowfish's buggy variant) and `$2$` are refused;
//! - PBKDF2-HMAC-SHA256/512 (RFC 8018 §5.2): the PHC form
//!   `$pbkdf2-sha256$i=ITER[,l=LEN]$SALT$HASH` (also `$pbkdf2-sha512$`), SALT and HASH in
//!   the PHC spec's B64 (standard alphabet, padding optional), and passlib's form
//!   `$pbkdf2-sha256$ITER$SALT$HASH` in its "ab64" alphabet (`.` for `+`, no padding);
//! - scrypt (RFC 7914) PHC strings: `$scrypt$ln=LOG2N,r=R,p=P$SALT$HASH` in B64.
//!
//! Salts are the decoded bytes (as passlib, RustCrypto's crates and the PHC spec have it),
//! and the password is the UTF-8 bytes the user types.

use std::num::NonZeroU32;

use argon2_rust::{Algorithm, Params};
use base64::Engine as _;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};

// The ceilings, each about a second of one core here (measured with the `dev` profile's
// optimised crypto packages, as in release).
/// bcrypt's cost is log2 of its rounds: 14 takes 0.8 s (10, common, 55 ms; 12 is today's
/// recommendation).
pub const BCRYPT_MAX_COST: u32 = 14;
/// PBKDF2: iterations times the blocks of output (a 64-byte SHA-256 output costs twice).
/// 10 million of SHA-256 take 1 s, 3 million of SHA-512 1.1 s (OWASP asks for 600,000
/// and 210,000; Django uses about a million of SHA-256, Keycloak 210,000 of SHA-512).
pub const PBKDF2_SHA256_MAX_WORK: u64 = 10_000_000;
pub const PBKDF2_SHA512_MAX_WORK: u64 = 3_000_000;
/// scrypt: its memory, 128·r·(N+p+1) bytes (RFC 7914 §5-6: N blocks of 128·r bytes for
/// ROMix's V, p for the output of PBKDF2 that it mixes, one more to work in), and its
/// work (N·r·p). OWASP's N=2^17, r=8, p=1 is 128 MiB and 2^20 (0.4 s); 2^22 takes 1.3 s.
/// r and p are also capped on their own: no provider uses an r above 16 or a p above a
/// few, and a large r with a tiny N (`ln=1,r=1048576`) makes each block huge.
pub const SCRYPT_MAX_MEMORY: u64 = 256 * 1024 * 1024;
pub const SCRYPT_MAX_WORK: u64 = 1 << 22;
pub const SCRYPT_MAX_R: u32 = 32;
pub const SCRYPT_MAX_P: u32 = 16;
/// Salts and derived keys of PBKDF2 and scrypt: a hash shorter than 16 bytes is too easy
/// to collide with; longer ones than 64 add nothing.
const MIN_HASH_LEN: usize = 16;
const MAX_HASH_LEN: usize = 64;
const MAX_SALT_LEN: usize = 64;

/// The kinds of hash, as the import's report and audit event count them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum HashKind {
    Argon2id,
    Argon2i,
    Argon2d,
    Bcrypt,
    Pbkdf2Sha256,
    Pbkdf2Sha512,
    Scrypt,
}

impl HashKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Argon2id => "argon2id",
            Self::Argon2i => "argon2i",
            Self::Argon2d => "argon2d",
            Self::Bcrypt => "bcrypt",
            Self::Pbkdf2Sha256 => "pbkdf2-sha256",
            Self::Pbkdf2Sha512 => "pbkdf2-sha512",
            Self::Scrypt => "scrypt",
        }
    }
}

/// Why a stored hash is refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum HashFormatError {
    #[error(
        "unknown password hash format (accepted: $argon2id$, $argon2i$, $argon2d$, \
         $2a$, $2b$, $2y$, $pbkdf2-sha256$, $pbkdf2-sha512$, $scrypt$)"
    )]
    Unknown,
    #[error("malformed {kind} hash: {why}")]
    Malformed { kind: &'static str, why: String },
    #[error("{kind} hash too costly to check at sign-in: {why}")]
    TooCostly { kind: &'static str, why: String },
}

fn malformed(kind: HashKind, why: impl Into<String>) -> HashFormatError {
    HashFormatError::Malformed {
        kind: kind.as_str(),
        why: why.into(),
    }
}

fn too_costly(kind: HashKind, why: impl Into<String>) -> HashFormatError {
    HashFormatError::TooCostly {
        kind: kind.as_str(),
        why: why.into(),
    }
}

/// What checking a password against a parsed hash needs.
pub(super) enum Parsed {
    /// argon2-rust verifies the string itself (bounded by `argon2_ceiling`).
    Argon2(Algorithm),
    /// The bcrypt crate verifies the string itself (its cost checked here).
    Bcrypt,
    Pbkdf2 {
        algorithm: aws_lc_rs::pbkdf2::Algorithm,
        iterations: NonZeroU32,
        salt: Vec<u8>,
        hash: Vec<u8>,
    },
    Scrypt {
        params: scrypt::Params,
        salt: Vec<u8>,
        hash: Vec<u8>,
    },
}

/// The largest argon2 cost a stored hash may ask for: beyond it the hash is refused
/// rather than letting one database row allocate or compute without bound. One thread
/// whatever its `p`: each check runs on one hashing thread (`super::pool`).
#[allow(
    clippy::expect_used,
    reason = "constant parameters, checked by the tests"
)]
pub(super) fn argon2_ceiling() -> &'static Params {
    static CEILING: std::sync::OnceLock<Params> = std::sync::OnceLock::new();
    CEILING.get_or_init(|| {
        Params::builder()
            .memory(argon2_rust::params::Memory::mib(256))
            .passes(16)
            .lanes(16)
            .threads(1)
            .tag_len(argon2_rust::params::TagLen::bytes(64))
            .build()
            .expect("valid argon2 ceiling")
    })
}

/// The kind of a stored hash, if it is one we accept within our cost ceilings.
pub fn hash_kind(stored: &str) -> Result<HashKind, HashFormatError> {
    parse(stored).map(|(kind, _)| kind)
}

pub(super) fn parse(stored: &str) -> Result<(HashKind, Parsed), HashFormatError> {
    let Some(rest) = stored.strip_prefix('$') else {
        return Err(HashFormatError::Unknown);
    };
    let (id, _) = rest.split_once('$').ok_or(HashFormatError::Unknown)?;
    match id {
        "argon2id" => argon2(stored, HashKind::Argon2id, Algorithm::Argon2id),
        "argon2i" => argon2(stored, HashKind::Argon2i, Algorithm::Argon2i),
        "argon2d" => argon2(stored, HashKind::Argon2d, Algorithm::Argon2d),
        "2a" | "2b" | "2y" => bcrypt(stored),
        "pbkdf2-sha256" => pbkdf2(stored, HashKind::Pbkdf2Sha256),
        "pbkdf2-sha512" => pbkdf2(stored, HashKind::Pbkdf2Sha512),
        "scrypt" => scrypt(stored),
        _ => Err(HashFormatError::Unknown),
    }
}

/// Whether a hash that verified should be replaced by one of ours: one weaker than ours,
/// that is anything but argon2id, argon2id 1.0 (`v=16`), or argon2id with less memory
/// or fewer passes than ours. A stronger one (an import from a provider with a higher
/// cost, `m=65536,t=3,p=4`) is kept: replacing it would lower its cost.
pub(super) fn needs_upgrade(stored: &str) -> bool {
    let ours = Params::default();
    match argon2_rust::decode_string(stored, Algorithm::Argon2id) {
        Ok(decoded) => {
            decoded.version != argon2_rust::Version::V0x13
                || decoded.params.memory_kib() < ours.memory_kib()
                || decoded.params.passes() < ours.passes()
        }
        Err(_) => true,
    }
}

fn argon2(
    stored: &str,
    kind: HashKind,
    algorithm: Algorithm,
) -> Result<(HashKind, Parsed), HashFormatError> {
    // The longest well-formed string is a few hundred characters; a longer one is not
    // decoded at all.
    if stored.len() > 512 {
        return Err(malformed(kind, "too long"));
    }
    let decoded = argon2_rust::decode_string(stored, algorithm)
        .map_err(|e| malformed(kind, e.to_string()))?;
    let ceiling = argon2_ceiling();
    let p = decoded.params;
    if p.memory_kib() > ceiling.memory_kib() {
        return Err(too_costly(
            kind,
            format!(
                "m={} KiB (at most {})",
                p.memory_kib(),
                ceiling.memory_kib()
            ),
        ));
    }
    if p.passes() > ceiling.passes() {
        return Err(too_costly(
            kind,
            format!("t={} (at most {})", p.passes(), ceiling.passes()),
        ));
    }
    if p.lanes() > ceiling.lanes() {
        return Err(too_costly(
            kind,
            format!("p={} (at most {})", p.lanes(), ceiling.lanes()),
        ));
    }
    if p.tag_len_bytes() > ceiling.tag_len_bytes() {
        return Err(malformed(kind, "a hash longer than 64 bytes"));
    }
    // As for PBKDF2 and scrypt: a shorter tag is too easy to collide with.
    if (p.tag_len_bytes() as usize) < MIN_HASH_LEN {
        return Err(malformed(kind, "a hash shorter than 16 bytes"));
    }
    if decoded.salt.len() as u64 > u64::from(argon2_rust::BOUNDED_MAX_SALT_LEN) {
        return Err(malformed(kind, "salt too long"));
    }
    Ok((kind, Parsed::Argon2(algorithm)))
}

/// `$2b$CC$` + 22 characters of salt + 31 of hash, in bcrypt's own base64 alphabet.
fn bcrypt(stored: &str) -> Result<(HashKind, Parsed), HashFormatError> {
    let kind = HashKind::Bcrypt;
    let bytes = stored.as_bytes();
    if bytes.len() != 60 || !stored.is_ascii() || bytes[3] != b'$' || bytes[6] != b'$' {
        return Err(malformed(kind, "expected $2b$CC$ and 53 characters"));
    }
    let cost: u32 = stored[4..6]
        .parse()
        .map_err(|_| malformed(kind, "the cost is not a number"))?;
    if cost < 4 {
        return Err(malformed(kind, "cost below 04"));
    }
    if cost > BCRYPT_MAX_COST {
        return Err(too_costly(
            kind,
            format!("cost {cost} (at most {BCRYPT_MAX_COST})"),
        ));
    }
    // Read by the bcrypt crate's own parser, which `verify_other` uses: its base64 is
    // strict (the unused low bits of the salt's and the hash's last characters must be
    // zero), and a hash it would not read would lock its user out without a word.
    stored
        .parse::<bcrypt::HashParts>()
        .map_err(|e| malformed(kind, e.to_string()))?;
    Ok((kind, Parsed::Bcrypt))
}

/// Decoding that accepts trailing bits that are not zero (passlib and bcrypt write none,
/// but hand-made strings may) and padding or its absence.
fn relaxed() -> GeneralPurposeConfig {
    GeneralPurposeConfig::new()
        .with_decode_allow_trailing_bits(true)
        .with_decode_padding_mode(DecodePaddingMode::Indifferent)
}

/// The PHC spec's B64: the standard alphabet, padding optional.
fn phc_b64(text: &str) -> Option<Vec<u8>> {
    GeneralPurpose::new(&base64::alphabet::STANDARD, relaxed())
        .decode(text)
        .ok()
}

/// passlib's "ab64": the standard alphabet with `.` for `+`, no padding.
fn passlib_ab64(text: &str) -> Option<Vec<u8>> {
    if text.contains(['+', '=']) {
        return None;
    }
    phc_b64(&text.replace('.', "+"))
}

/// The `name=value` pairs of a PHC parameter segment.
fn phc_params(segment: &str) -> Option<Vec<(&str, &str)>> {
    segment
        .split(',')
        .map(|pair| pair.split_once('='))
        .collect()
}

/// A decimal number without sign or leading zeros (as PHC and passlib write them).
fn decimal<T: std::str::FromStr>(text: &str) -> Option<T> {
    let canonical = !text.is_empty()
        && text.bytes().all(|b| b.is_ascii_digit())
        && (text == "0" || !text.starts_with('0'))
        && text.len() <= 10;
    canonical.then(|| text.parse().ok()).flatten()
}

fn salt_and_hash(
    kind: HashKind,
    salt: Option<Vec<u8>>,
    hash: Option<Vec<u8>>,
) -> Result<(Vec<u8>, Vec<u8>), HashFormatError> {
    let salt = salt.ok_or_else(|| malformed(kind, "the salt is not base64"))?;
    let hash = hash.ok_or_else(|| malformed(kind, "the hash is not base64"))?;
    if salt.is_empty() || salt.len() > MAX_SALT_LEN {
        return Err(malformed(kind, "the salt must be 1 to 64 bytes"));
    }
    if !(MIN_HASH_LEN..=MAX_HASH_LEN).contains(&hash.len()) {
        return Err(malformed(kind, "the hash must be 16 to 64 bytes"));
    }
    Ok((salt, hash))
}

fn pbkdf2(stored: &str, kind: HashKind) -> Result<(HashKind, Parsed), HashFormatError> {
    let parts: Vec<&str> = stored.split('$').collect();
    let [_, _, params, salt, hash] = parts.as_slice() else {
        return Err(malformed(kind, "expected $pbkdf2-shaNNN$i=ITER$SALT$HASH"));
    };
    let (iterations, length, salt, hash) = if params.starts_with("i=") {
        let mut iterations = None;
        let mut length = None;
        for (name, value) in
            phc_params(params).ok_or_else(|| malformed(kind, "parameters are not name=value"))?
        {
            let slot = match name {
                "i" => &mut iterations,
                "l" => &mut length,
                _ => return Err(malformed(kind, format!("unexpected parameter {name}"))),
            };
            if slot.is_some() {
                return Err(malformed(kind, format!("{name} given twice")));
            }
            *slot = Some(
                decimal::<u32>(value)
                    .ok_or_else(|| malformed(kind, format!("{name} is not a number")))?,
            );
        }
        (iterations, length, phc_b64(salt), phc_b64(hash))
    } else {
        (
            decimal::<u32>(params),
            None,
            passlib_ab64(salt),
            passlib_ab64(hash),
        )
    };
    let iterations = iterations
        .and_then(NonZeroU32::new)
        .ok_or_else(|| malformed(kind, "the iteration count must be a number from 1"))?;
    let (salt, hash) = salt_and_hash(kind, salt, hash)?;
    if length.is_some_and(|l| l as usize != hash.len()) {
        return Err(malformed(kind, "l does not match the hash's length"));
    }
    let (algorithm, block, ceiling) = match kind {
        HashKind::Pbkdf2Sha512 => (
            aws_lc_rs::pbkdf2::PBKDF2_HMAC_SHA512,
            64,
            PBKDF2_SHA512_MAX_WORK,
        ),
        _ => (
            aws_lc_rs::pbkdf2::PBKDF2_HMAC_SHA256,
            32,
            PBKDF2_SHA256_MAX_WORK,
        ),
    };
    // RFC 8018 §5.2: each block of output is a run of the iterations of its own.
    let work = u64::from(iterations.get()) * hash.len().div_ceil(block) as u64;
    if work > ceiling {
        return Err(too_costly(
            kind,
            format!("{work} iterations (at most {ceiling})"),
        ));
    }
    Ok((
        kind,
        Parsed::Pbkdf2 {
            algorithm,
            iterations,
            salt,
            hash,
        },
    ))
}

fn scrypt(stored: &str) -> Result<(HashKind, Parsed), HashFormatError> {
    let kind = HashKind::Scrypt;
    let parts: Vec<&str> = stored.split('$').collect();
    let [_, _, params, salt, hash] = parts.as_slice() else {
        return Err(malformed(
            kind,
            "expected $scrypt$ln=..,r=..,p=..$SALT$HASH",
        ));
    };
    let (mut ln, mut r, mut p) = (None, None, None);
    for (name, value) in
        phc_params(params).ok_or_else(|| malformed(kind, "parameters are not name=value"))?
    {
        let slot = match name {
            "ln" => &mut ln,
            "r" => &mut r,
            "p" => &mut p,
            _ => return Err(malformed(kind, format!("unexpected parameter {name}"))),
        };
        if slot.is_some() {
            return Err(malformed(kind, format!("{name} given twice")));
        }
        *slot = Some(
            decimal::<u32>(value)
                .filter(|v| *v > 0)
                .ok_or_else(|| malformed(kind, format!("{name} must be a number from 1")))?,
        );
    }
    let (Some(ln), Some(r), Some(p)) = (ln, r, p) else {
        return Err(malformed(kind, "ln, r and p are all needed"));
    };
    let (salt, hash) = salt_and_hash(kind, phc_b64(salt), phc_b64(hash))?;
    if ln > 30 {
        return Err(too_costly(kind, format!("ln={ln}")));
    }
    if r > SCRYPT_MAX_R {
        return Err(too_costly(kind, format!("r={r} (at most {SCRYPT_MAX_R})")));
    }
    if p > SCRYPT_MAX_P {
        return Err(too_costly(kind, format!("p={p} (at most {SCRYPT_MAX_P})")));
    }
    // With those caps nothing below overflows a u64 (2^7·2^5·(2^30+17) < 2^43), but the
    // arithmetic is checked all the same: an overflow counts as too costly, never as
    // small.
    let n = 1u64 << ln;
    let (r, p) = (u64::from(r), u64::from(p));
    let memory = n
        .checked_add(p)
        .and_then(|blocks| blocks.checked_add(1))
        .and_then(|blocks| blocks.checked_mul(128))
        .and_then(|bytes| bytes.checked_mul(r));
    let work = n.checked_mul(r).and_then(|nr| nr.checked_mul(p));
    match memory {
        Some(memory) if memory <= SCRYPT_MAX_MEMORY => {}
        Some(memory) => {
            return Err(too_costly(
                kind,
                format!("{} MiB of memory (at most 256)", memory >> 20),
            ));
        }
        None => return Err(too_costly(kind, "its memory overflows")),
    }
    match work {
        Some(work) if work <= SCRYPT_MAX_WORK => {}
        Some(work) => {
            return Err(too_costly(
                kind,
                format!("N·r·p = {work} (at most {SCRYPT_MAX_WORK})"),
            ));
        }
        None => return Err(too_costly(kind, "N·r·p overflows")),
    }
    let (r, p) = (r as u32, p as u32);
    let params = u8::try_from(ln)
        .ok()
        .and_then(|ln| scrypt::Params::new(ln, r, p).ok())
        .ok_or_else(|| malformed(kind, "parameters out of scrypt's range"))?;
    Ok((kind, Parsed::Scrypt { params, salt, hash }))
}

/// Checks `password` against a parsed hash that is not argon2 (argon2 is checked on the
/// caller's reusable work area). Every comparison is constant-time.
pub(super) fn verify_other(parsed: &Parsed, stored: &str, password: &[u8]) -> bool {
    match parsed {
        Parsed::Argon2(_) => false,
        // Passwords past 72 bytes are cut there, as the system that made the hash did.
        Parsed::Bcrypt => bcrypt::verify(password, stored).unwrap_or(false),
        Parsed::Pbkdf2 {
            algorithm,
            iterations,
            salt,
            hash,
        } => aws_lc_rs::pbkdf2::verify(*algorithm, *iterations, salt, password, hash).is_ok(),
        Parsed::Scrypt { params, salt, hash } => {
            let mut derived = vec![0u8; hash.len()];
            scrypt::scrypt(password, salt, params, &mut derived).is_ok()
                && crate::crypto::tokens::constant_time_eq(&derived, hash)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b64(bytes: &[u8]) -> String {
        base64::engine::general_purpose::STANDARD_NO_PAD.encode(bytes)
    }

    fn hex(text: &str) -> Vec<u8> {
        (0..text.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap())
            .collect()
    }

    fn checks(stored: &str, password: &str) -> bool {
        let (_, parsed) = parse(stored).unwrap_or_else(|e| panic!("{stored}: {e}"));
        verify_other(&parsed, stored, password.as_bytes())
    }

    #[test]
    fn pbkdf2_sha256_meets_the_rfc_7914_known_answers() {
        // RFC 7914 §11: PBKDF2-HMAC-SHA256 with dkLen 64 (two blocks of output).
        let one = hex(
            "55ac046e56e3089fec1691c22544b605f94185216dde0465e68b9d57c20dacbc\
             49ca9cccf179b645991664b39d77ef317c71b845b1e30bd509112041d3a19783",
        );
        let stored = format!("$pbkdf2-sha256$i=1,l=64${}${}", b64(b"salt"), b64(&one));
        assert!(checks(&stored, "passwd"));
        assert!(!checks(&stored, "passwe"));
        let many = hex(
            "4ddcd8f60b98be21830cee5ef22701f9641a4418d04c0414aeff08876b34ab56\
             a1d425a1225833549adb841b51c9b3176a272bdebba1d078478f62b397f33c8d",
        );
        let stored = format!("$pbkdf2-sha256$i=80000${}${}", b64(b"NaCl"), b64(&many));
        assert!(checks(&stored, "Password"));
    }

    #[test]
    fn pbkdf2_sha256_and_sha512_meet_the_rfc_6070_style_known_answers() {
        // RFC 6070's inputs ("password", "salt"), as published for SHA-256 and SHA-512.
        let sha256 = hex("c5e478d59288c841aa530db6845c4c8d962893a001ce4e11a4963873aa98134a");
        let stored = format!(
            "$pbkdf2-sha256$i=4096,l=32${}${}",
            b64(b"salt"),
            b64(&sha256)
        );
        assert!(checks(&stored, "password"));
        let sha512 = hex(
            "867f70cf1ade02cff3752599a3a53dc4af34c7a669815ae5d513554e1c8cf252\
             c02d470a285a0501bad999bfe943c08f050235d7d68b1da55e63f73b60a57fce",
        );
        let stored = format!("$pbkdf2-sha512$i=1${}${}", b64(b"salt"), b64(&sha512));
        assert!(checks(&stored, "password"));
        assert!(!checks(&stored, "Password"));
        // The same hash under the other PRF does not verify.
        let swapped = stored.replace("sha512", "sha256");
        assert!(!checks(&swapped, "password"));
    }

    #[test]
    fn passlibs_pbkdf2_form_uses_its_own_alphabet() {
        // passlib.hash.pbkdf2_sha256.hash("password", salt=b"\xfb\xef\xbe\xfb\xef\xbe...",
        // rounds=1): '+' is written '.', and there is no padding.
        let salt = [0xfbu8; 12];
        let mut derived = [0u8; 32];
        aws_lc_rs::pbkdf2::derive(
            aws_lc_rs::pbkdf2::PBKDF2_HMAC_SHA256,
            NonZeroU32::new(1).unwrap(),
            &salt,
            b"password",
            &mut derived,
        );
        let ab64 = |bytes: &[u8]| b64(bytes).replace('+', ".");
        assert!(ab64(&salt).contains('.'));
        let stored = format!("$pbkdf2-sha256$1${}${}", ab64(&salt), ab64(&derived));
        assert!(checks(&stored, "password"));
        // '+' belongs to the PHC form, not passlib's.
        let mixed = format!("$pbkdf2-sha256$1${}${}", b64(&salt), ab64(&derived));
        assert!(parse(&mixed).is_err());
    }

    #[test]
    fn scrypt_meets_the_rfc_7914_known_answers() {
        // RFC 7914 §12, the second and third vectors (the fourth needs 1 GiB: refused).
        let second = hex(
            "fdbabe1c9d3472007856e7190d01e9fe7c6ad7cbc8237830e77376634b373162\
             2eaf30d92e22a3886ff109279d9830dac727afb94a83ee6d8360cbdfa2cc0640",
        );
        let stored = format!("$scrypt$ln=10,r=8,p=16${}${}", b64(b"NaCl"), b64(&second));
        assert!(checks(&stored, "password"));
        assert!(!checks(&stored, "passwore"));
        let third = hex(
            "7023bdcb3afd7348461c06cd81fd38ebfda8fbba904f8e3ea9b543f6545da1f2\
             d5432955613f0fcf62d49705242a9af9e61e85dc0d651e40dfcf017b45575887",
        );
        let stored = format!(
            "$scrypt$ln=14,r=8,p=1${}${}",
            b64(b"SodiumChloride"),
            b64(&third)
        );
        assert!(checks(&stored, "pleaseletmein"));
        let fourth = format!(
            "$scrypt$ln=20,r=8,p=1${}${}",
            b64(b"SodiumChloride"),
            b64(&third)
        );
        assert!(matches!(
            parse(&fourth),
            Err(HashFormatError::TooCostly { .. })
        ));
    }

    #[test]
    fn bcrypt_meets_known_answers_in_each_accepted_prefix() {
        // jBCrypt's and OpenBSD's test vectors.
        let empty = "$2a$06$DCq7YPn5Rq63x1Lad4cll.TV4S6ytwfsfvkgY8jIucDrjc8deX1s.";
        assert!(checks(empty, ""));
        assert!(!checks(empty, "a"));
        let abc = "$2a$06$If6bvum7DFjUnE9p2uDeDu0YHzrHM6tf.iqN8.yx.jNN1ILEf7h0i";
        assert!(checks(abc, "abc"));
        // $2b$ and $2y$ are the same algorithm under another name.
        assert!(checks(&abc.replace("$2a$", "$2b$"), "abc"));
        assert!(checks(&abc.replace("$2a$", "$2y$"), "abc"));
        assert_eq!(hash_kind(abc), Ok(HashKind::Bcrypt));
    }

    #[test]
    fn costs_beyond_the_ceilings_are_refused_before_any_work() {
        let salt = b64(b"saltsaltsaltsalt");
        let hash = b64(&[7u8; 32]);
        for stored in [
            "$2b$15$DCq7YPn5Rq63x1Lad4cll.TV4S6ytwfsfvkgY8jIucDrjc8deX1s.".to_owned(),
            "$2b$31$DCq7YPn5Rq63x1Lad4cll.TV4S6ytwfsfvkgY8jIucDrjc8deX1s.".to_owned(),
            format!("$pbkdf2-sha256$i=10000001${salt}${hash}"),
            format!("$pbkdf2-sha256$i=6000000,l=64${salt}${}", b64(&[7u8; 64])),
            format!("$pbkdf2-sha512$i=3000001${salt}${hash}"),
            format!("$pbkdf2-sha512$i=4294967295${salt}${hash}"),
            format!("$scrypt$ln=22,r=8,p=1${salt}${hash}"),
            format!("$scrypt$ln=16,r=8,p=64${salt}${hash}"),
            format!("$scrypt$ln=63,r=8,p=1${salt}${hash}"),
            format!("$argon2id$v=19$m=4194304,t=2,p=1${salt}${hash}"),
            format!("$argon2id$v=19$m=19456,t=100,p=1${salt}${hash}"),
            format!("$argon2i$v=19$m=65536,t=2,p=64${salt}${hash}"),
        ] {
            assert!(
                matches!(parse(&stored), Err(HashFormatError::TooCostly { .. })),
                "{stored}: {:?}",
                parse(&stored).err()
            );
        }
    }

    #[test]
    fn malformed_and_unknown_hashes_are_refused() {
        let salt = b64(b"saltsaltsaltsalt");
        let hash = b64(&[7u8; 32]);
        for stored in [
            String::new(),
            "plaintext".to_owned(),
            "$1$md5crypt$abc".to_owned(),
            "$6$rounds=5000$sha512crypt$abc".to_owned(),
            "$2x$06$DCq7YPn5Rq63x1Lad4cll.TV4S6ytwfsfvkgY8jIucDrjc8deX1s.".to_owned(),
            "$2b$06$DCq7YPn5Rq63x1Lad4cll.TV4S6ytwfsfvkgY8jIucDrjc8deX1s".to_owned(),
            "$2b$03$DCq7YPn5Rq63x1Lad4cll.TV4S6ytwfsfvkgY8jIucDrjc8deX1s.".to_owned(),
            "$2b$1a$DCq7YPn5Rq63x1Lad4cll.TV4S6ytwfsfvkgY8jIucDrjc8deX1s.".to_owned(),
            format!("$pbkdf2$i=1000${salt}${hash}"),
            format!("$pbkdf2-sha1$i=1000${salt}${hash}"),
            format!("$pbkdf2-sha256$i=0${salt}${hash}"),
            format!("$pbkdf2-sha256$i=01000${salt}${hash}"),
            format!("$pbkdf2-sha256$i=1000,l=16${salt}${hash}"),
            format!("$pbkdf2-sha256$i=1000,x=1${salt}${hash}"),
            format!("$pbkdf2-sha256$i=1000$${hash}"),
            format!("$pbkdf2-sha256$i=1000${salt}${}", b64(&[1u8; 8])),
            format!("$pbkdf2-sha256$i=1000${salt}$not base64!"),
            format!("$pbkdf2-sha256$i=1000${salt}"),
            format!("$scrypt$ln=14,r=8${salt}${hash}"),
            format!("$scrypt$ln=14,r=8,p=1,p=1${salt}${hash}"),
            format!("$scrypt$ln=14,r=0,p=1${salt}${hash}"),
            format!("$argon2id$v=19$m=19456,t=2,p=1${salt}$"),
            format!("$argon2id$v=19$m=19456,t=2${salt}${hash}"),
            format!("$argon2$v=19$m=19456,t=2,p=1${salt}${hash}"),
        ] {
            assert!(parse(&stored).is_err(), "{stored}");
        }
        assert_eq!(hash_kind("$md5$x$y"), Err(HashFormatError::Unknown));
    }

    #[test]
    fn only_hashes_weaker_than_ours_are_replaced() {
        let salt = b64(b"saltsaltsaltsalt");
        let hash = b64(&[7u8; 32]);
        for kept in [
            format!("$argon2id$v=19$m=19456,t=2,p=1${salt}${hash}"),
            // Stronger than ours: more memory, more passes, more lanes, a longer tag.
            format!("$argon2id$v=19$m=65536,t=3,p=4${salt}${hash}"),
            format!("$argon2id$v=19$m=19456,t=5,p=1${salt}${hash}"),
            format!("$argon2id$v=19$m=19456,t=2,p=1${salt}${}", b64(&[7u8; 64])),
        ] {
            assert!(!needs_upgrade(&kept), "{kept}");
        }
        for weaker in [
            format!("$argon2id$v=16$m=19456,t=2,p=1${salt}${hash}"),
            format!("$argon2id$v=16$m=65536,t=3,p=1${salt}${hash}"),
            format!("$argon2id$v=19$m=8192,t=2,p=1${salt}${hash}"),
            format!("$argon2id$v=19$m=65536,t=1,p=1${salt}${hash}"),
            format!("$argon2i$v=19$m=65536,t=3,p=1${salt}${hash}"),
            format!("$argon2d$v=19$m=19456,t=2,p=1${salt}${hash}"),
            "$2b$10$DCq7YPn5Rq63x1Lad4cll.TV4S6ytwfsfvkgY8jIucDrjc8deX1s.".to_owned(),
        ] {
            assert!(needs_upgrade(&weaker), "{weaker}");
        }
    }

    #[test]
    fn scrypt_memory_counts_r_p_and_n_without_overflow() {
        let salt = b64(b"saltsaltsaltsalt");
        let hash = b64(&[7u8; 32]);
        for stored in [
            // N·r·p is 2^22, at the ceiling, but 128·r·(N+p+1) is 640 MiB.
            format!("$scrypt$ln=1,r=1048576,p=2${salt}${hash}"),
            // 128·r·N alone overflows a u64.
            format!("$scrypt$ln=30,r=4294967295,p=1${salt}${hash}"),
            format!("$scrypt$ln=4,r=33,p=1${salt}${hash}"),
            format!("$scrypt$ln=4,r=8,p=17${salt}${hash}"),
            // r and p at their caps, N large: 128·32·(2^16+17) is past 256 MiB.
            format!("$scrypt$ln=16,r=32,p=16${salt}${hash}"),
        ] {
            assert!(
                matches!(parse(&stored), Err(HashFormatError::TooCostly { .. })),
                "{stored}: {:?}",
                parse(&stored).err()
            );
        }
        // At the caps with a small N: accepted.
        assert!(parse(&format!("$scrypt$ln=10,r=32,p=16${salt}${hash}")).is_ok());
        assert!(parse(&format!("$scrypt$ln=17,r=8,p=1${salt}${hash}")).is_ok());
    }

    #[test]
    fn argon2_tags_shorter_than_16_bytes_are_refused() {
        let salt = b64(b"saltsaltsaltsalt");
        let short = format!("$argon2id$v=19$m=19456,t=2,p=1${salt}${}", b64(&[7u8; 8]));
        assert!(
            matches!(parse(&short), Err(HashFormatError::Malformed { .. })),
            "{:?}",
            parse(&short).err()
        );
        let sixteen = format!("$argon2id$v=19$m=19456,t=2,p=1${salt}${}", b64(&[7u8; 16]));
        assert!(parse(&sixteen).is_ok());
    }

    #[test]
    fn bcrypt_hashes_the_crate_would_not_read_are_refused() {
        let abc = "$2a$06$If6bvum7DFjUnE9p2uDeDu0YHzrHM6tf.iqN8.yx.jNN1ILEf7h0i";
        assert!(parse(abc).is_ok());
        // The salt's last character carries 4 unused bits, the hash's 2: set, a lenient
        // decoder reads the same bytes, the bcrypt crate refuses the string, and its user
        // could never sign in.
        let salt_bits = abc.replace("DeDu0Y", "DeDv0Y");
        let hash_bits = abc.replace("Ef7h0i", "Ef7h0j");
        for stored in [salt_bits, hash_bits] {
            assert_eq!(stored.len(), 60);
            assert!(bcrypt::verify("abc", &stored).is_err(), "{stored}");
            assert!(
                matches!(parse(&stored), Err(HashFormatError::Malformed { .. })),
                "{stored}"
            );
        }
    }

    #[test]
    fn the_argon2_ceiling_is_valid() {
        let ceiling = argon2_ceiling();
        assert_eq!(ceiling.memory_kib(), 256 * 1024);
        assert_eq!(ceiling.threads(), 1);
    }
}
