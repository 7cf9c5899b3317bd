//! Characters that make a name shown to people read as another: shared by every name
//! that is displayed or released (group names, client names).

/// Unicode's bidirectional formatting characters (the marks, embeddings, overrides and
/// isolates): `admins\u{202E}` shows as something else than it is.
pub fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{200E}' | '\u{200F}' | '\u{061C}')
}

/// Unicode's format characters (general category Cf, as of Unicode 15.1): invisible, so
/// `ad\u{200B}mins` (a zero-width space) displays as `admins` and is another string. The
/// bidirectional controls are among them. The standard library has no category lookup,
/// and the list changes rarely (a later Unicode version's additions are refused by
/// nothing here, which is why names are also normalised before they are compared).
pub fn is_format(c: char) -> bool {
    matches!(
        c,
        '\u{00AD}'
            | '\u{0600}'..='\u{0605}'
            | '\u{061C}'
            | '\u{06DD}'
            | '\u{070F}'
            | '\u{0890}'..='\u{0891}'
            | '\u{08E2}'
            | '\u{180E}'
            | '\u{200B}'..='\u{200F}'
            | '\u{202A}'..='\u{202E}'
            | '\u{2060}'..='\u{2064}'
            | '\u{2066}'..='\u{206F}'
            | '\u{FEFF}'
            | '\u{FFF9}'..='\u{FFFB}'
            | '\u{110BD}'
            | '\u{110CD}'
            | '\u{13430}'..='\u{1343F}'
            | '\u{1BCA0}'..='\u{1BCA3}'
            | '\u{1D173}'..='\u{1D17A}'
            | '\u{E0001}'
            | '\u{E0020}'..='\u{E007F}'
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bidi_controls_are_format_characters() {
        for c in [
            '\u{202A}', '\u{202E}', '\u{2066}', '\u{2069}', '\u{200E}', '\u{200F}', '\u{061C}',
        ] {
            assert!(is_bidi_control(c) && is_format(c), "{c:?}");
        }
        for c in [
            '\u{200B}',
            '\u{200D}',
            '\u{2060}',
            '\u{FEFF}',
            '\u{00AD}',
            '\u{E0041}',
        ] {
            assert!(is_format(c) && !is_bidi_control(c), "{c:?}");
        }
        for c in ['a', ' ', 'é', '\u{0301}', '\u{2028}'] {
            assert!(!is_format(c), "{c:?}");
        }
    }
}
