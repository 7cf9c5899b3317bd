//! Recovery codes: ten single-use codes shown once, for a user who lost their other
//! factors. Each is 80 random bits written as 16 characters of Crockford's base32 in four
//! groups (`7k2m-q9xa-...`): lower case, and without `i`, `l`, `o` and `u`, so that what
//! is read off paper is what was printed (a typed `o`, `i` or `l` is read as `0` or `1`).
//!
//! Stored as keyed hashes (the KEK's MAC, bound to the user): 80 bits are far beyond
//! guessing online, so no slow password hash is needed, and without the KEK a database
//! dump gives nothing to search offline either.

use crate::crypto::kek::KeyEncryptionKey;
use crate::crypto::tokens::random_bytes;

/// How many codes a set has.
pub const COUNT: usize = 10;
/// Random bytes per code: 80 bits, above the 64 the issue asks for.
const CODE_BYTES: usize = 10;
/// 80 bits in 5-bit characters.
const CODE_CHARS: usize = CODE_BYTES * 8 / 5;
const GROUP: usize = 4;
/// Crockford's base32, lower case.
const ALPHABET: &[u8; 32] = b"0123456789abcdefghjkmnpqrstvwxyz";

/// A new set of codes, in their display form (`xxxx-xxxx-xxxx-xxxx`).
pub fn generate() -> [String; COUNT] {
    std::array::from_fn(|_| format_code(&random_bytes(CODE_BYTES)))
}

fn format_code(bytes: &[u8]) -> String {
    let mut chars = String::with_capacity(CODE_CHARS + CODE_CHARS / GROUP);
    let mut buffer: u32 = 0;
    let mut bits = 0;
    let mut written: usize = 0;
    for &byte in bytes {
        buffer = (buffer << 8) | u32::from(byte);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            if written > 0 && written.is_multiple_of(GROUP) {
                chars.push('-');
            }
            chars.push(char::from(ALPHABET[((buffer >> bits) & 0x1f) as usize]));
            written += 1;
        }
    }
    chars
}

/// The code as typed, in the one form that is hashed: spaces and dashes dropped, lower
/// case, `o` read as `0` and `i`, `l` as `1`. `None` if it cannot be a code (wrong length
/// or a character outside the alphabet), so no hash is computed for it.
pub fn normalise(typed: &str) -> Option<String> {
    let mut code = String::with_capacity(CODE_CHARS);
    for c in typed.chars() {
        let c = match c.to_ascii_lowercase() {
            ' ' | '-' | '\t' => continue,
            'o' => '0',
            'i' | 'l' => '1',
            c => c,
        };
        if !c.is_ascii() || !ALPHABET.contains(&(c as u8)) {
            return None;
        }
        code.push(c);
    }
    (code.len() == CODE_CHARS).then_some(code)
}

/// The stored form of a code of `user_id`: the KEK's MAC of its normal form. `None` for
/// what cannot be a code.
pub fn hash(kek: &KeyEncryptionKey, user_id: &str, typed: &str) -> Option<String> {
    let code = normalise(typed)?;
    Some(kek.derive("recovery-code", &format!("{user_id}\n{code}")))
}

/// The stored forms of a new set (`generate`) of `user_id`, for
/// `FactorStore::replace_recovery_codes`.
pub fn hashes(kek: &KeyEncryptionKey, user_id: &str, codes: &[String]) -> Vec<String> {
    codes
        .iter()
        .filter_map(|code| hash(kek, user_id, code))
        .collect()
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    fn kek() -> KeyEncryptionKey {
        KeyEncryptionKey::from_bytes(&[9; 32]).unwrap()
    }

    #[test]
    fn a_set_is_ten_distinct_codes_of_80_bits_in_four_groups() {
        let codes = generate();
        assert_eq!(codes.len(), 10);
        assert_eq!(codes.iter().collect::<HashSet<_>>().len(), 10);
        for code in &codes {
            let groups: Vec<&str> = code.split('-').collect();
            assert_eq!(groups.len(), 4, "{code}");
            assert!(groups.iter().all(|g| g.len() == 4), "{code}");
            assert!(
                code.bytes()
                    .all(|b| b == b'-' || ALPHABET.contains(&b) && !b"ilou".contains(&b)),
                "{code}"
            );
            // 16 characters of 5 bits each.
            assert_eq!(normalise(code).unwrap().len() * 5, 80);
        }
        assert_ne!(generate(), codes);
    }

    #[test]
    fn the_encoding_is_crockford_base32_of_the_bytes() {
        assert_eq!(format_code(&[0; 10]), "0000-0000-0000-0000");
        assert_eq!(format_code(&[0xff; 10]), "zzzz-zzzz-zzzz-zzzz");
        // 0x00 0x44 0x32 0x14 0xc7 ... is 00000 00001 00010 00011 00100 00101 00110 00111.
        assert_eq!(
            format_code(&[0x00, 0x44, 0x32, 0x14, 0xc7, 0x42, 0x54, 0xb6, 0x35, 0xcf]),
            "0123-4567-89ab-cdef"
        );
    }

    #[test]
    fn typed_codes_are_normalised_before_hashing() {
        let code = "7k2m-q9xa-0r1t-vw3e";
        for typed in [
            "7k2m-q9xa-0r1t-vw3e",
            "7K2M-Q9XA-0R1T-VW3E",
            "7k2mq9xa0r1tvw3e",
            " 7k2m q9xa 0r1t vw3e ",
            "7k2m-q9xa-Or1t-vw3e",
            "7k2m-q9xa-0rIt-vw3e",
            "7k2m-q9xa-0rlt-vw3e",
        ] {
            assert_eq!(
                normalise(typed).as_deref(),
                Some("7k2mq9xa0r1tvw3e"),
                "{typed}"
            );
            assert_eq!(
                hash(&kek(), "u1", typed),
                hash(&kek(), "u1", code),
                "{typed}"
            );
        }
        for bad in [
            "",
            "7k2m-q9xa-0r1t-vw3",
            "7k2m-q9xa-0r1t-vw3ee",
            "7k2m-q9xa-0r1t-vw3u",
            "7k2m_q9xa_0r1t_vw3e",
            "7k2m-q9xa-0r1t-vw3é",
        ] {
            assert_eq!(normalise(bad), None, "{bad:?}");
            assert_eq!(hash(&kek(), "u1", bad), None, "{bad:?}");
        }
    }

    #[test]
    fn hashes_are_stable_keyed_and_bound_to_the_user() {
        let code = "7k2m-q9xa-0r1t-vw3e";
        let stored = hash(&kek(), "u1", code).unwrap();
        assert_eq!(hash(&kek(), "u1", code).unwrap(), stored);
        assert!(!stored.contains("7k2m"));
        assert_ne!(hash(&kek(), "u2", code).unwrap(), stored, "another user");
        let other_key = KeyEncryptionKey::from_bytes(&[8; 32]).unwrap();
        assert_ne!(hash(&other_key, "u1", code).unwrap(), stored, "another key");
        let codes = generate();
        let set = hashes(&kek(), "u1", &codes);
        assert_eq!(set.len(), COUNT);
        assert_eq!(set[3], hash(&kek(), "u1", &codes[3]).unwrap());
    }
}
