//! The `amr` of a sign-in as codes and grants store it: its values, space-separated, and
//! (issue 24) the upstream provider a session signed in through as a last word, so that
//! its ID tokens can say `idp` without another column. Grants write it, tokens and
//! introspection read it: it sits below both.

/// `amr` as stored (grants, codes): space-separated; `None` for none.
pub fn amr_text(amr: &[String]) -> Option<String> {
    (!amr.is_empty()).then(|| amr.join(" "))
}

/// The word of the stored `amr` text (codes, grants) that carries the upstream provider
/// a session signed in through (issue 24), so that its ID tokens can say `idp` without
/// another column in codes and grants. It is never an `amr` value: every reader of the
/// stored text goes through [`amr_words`] and [`idp_of`].
const IDP_WORD: &str = "idp:";

/// `amr` as stored, with the session's upstream provider (if any) as its last word.
pub fn amr_text_with(amr: &[String], idp: Option<&str>) -> Option<String> {
    let text = amr_text(amr)?;
    Some(match idp {
        Some(idp) => format!("{text} {IDP_WORD}{idp}"),
        None => text,
    })
}

/// The `amr` values of a stored text (without the provider word).
pub fn amr_words(stored: &str) -> Vec<&str> {
    stored
        .split(' ')
        .filter(|s| !s.is_empty() && !s.starts_with(IDP_WORD))
        .collect()
}

/// The upstream provider a stored `amr` text names, if any.
pub fn idp_of(stored: Option<&str>) -> Option<&str> {
    stored?.split(' ').find_map(|w| w.strip_prefix(IDP_WORD))
}

/// `amr` as a code stored it. A code issued before codes recorded it came from a
/// password sign-in, the only kind there was.
pub fn amr_of_code(stored: Option<&str>) -> Vec<String> {
    match stored {
        Some(text) => amr_words(text).into_iter().map(str::to_owned).collect(),
        None => vec!["pwd".to_owned()],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_provider_word_rides_along_and_is_never_an_amr_value() {
        let amr = vec!["fed".to_owned(), "otp".to_owned()];
        let stored = amr_text_with(&amr, Some("corp")).unwrap();
        assert_eq!(stored, "fed otp idp:corp");
        assert_eq!(amr_words(&stored), ["fed", "otp"]);
        assert_eq!(idp_of(Some(&stored)), Some("corp"));
        assert_eq!(amr_of_code(Some(&stored)), ["fed", "otp"]);
        // A local sign-in names no provider.
        let local = amr_text_with(&["pwd".to_owned()], None).unwrap();
        assert_eq!(local, "pwd");
        assert_eq!(idp_of(Some(&local)), None);
        assert_eq!(idp_of(None), None);
        // Nothing signed in: nothing stored; a code from before codes kept `amr` was a password's.
        assert_eq!(amr_text_with(&[], Some("corp")), None);
        assert_eq!(amr_of_code(None), ["pwd"]);
    }
}
