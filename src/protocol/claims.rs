//! The standard claims of OIDC Core §5.1 as operators set them (`--claim NAME=VALUE`,
//! `address.MEMBER=VALUE`, `--unset-claim NAME`), and which scope releases which (§5.4).

use serde_json::{Map, Value, json};

use crate::store::User;

/// OIDC Core §5.1.1: the members of the structured `address` claim.
pub const ADDRESS_MEMBERS: [&str; 6] = [
    "formatted",
    "street_address",
    "locality",
    "region",
    "postal_code",
    "country",
];

/// What a standard claim holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Text,
    Url,
    Email,
    Date,
    Bool,
}

/// Every §5.1 claim an operator may set, with its kind. `sub`, `preferred_username` (the
/// username) and `updated_at` (kept by the server) are not set this way.
const SETTABLE: [(&str, Kind); 17] = [
    ("name", Kind::Text),
    ("given_name", Kind::Text),
    ("family_name", Kind::Text),
    ("middle_name", Kind::Text),
    ("nickname", Kind::Text),
    ("profile", Kind::Url),
    ("picture", Kind::Url),
    ("website", Kind::Url),
    ("email", Kind::Email),
    ("email_verified", Kind::Bool),
    ("gender", Kind::Text),
    ("birthdate", Kind::Date),
    ("zoneinfo", Kind::Text),
    ("locale", Kind::Text),
    ("phone_number", Kind::Text),
    ("phone_number_verified", Kind::Bool),
    ("address", Kind::Text),
];

const MAX_VALUE: usize = 2000;

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum ClaimError {
    #[error("unknown claim {0} (the OIDC Core §5.1 standard claims, or address.MEMBER)")]
    Unknown(String),
    #[error("{0} is not set this way")]
    NotSettable(String),
    #[error("{0}: expected NAME=VALUE")]
    Malformed(String),
    #[error("{name}: {why}")]
    Invalid { name: String, why: &'static str },
}

fn invalid(name: &str, why: &'static str) -> ClaimError {
    ClaimError::Invalid {
        name: name.to_owned(),
        why,
    }
}

/// Splits `NAME=VALUE` at the first `=`.
pub fn parse_assignment(text: &str) -> Result<(&str, &str), ClaimError> {
    text.split_once('=')
        .filter(|(name, _)| !name.is_empty())
        .ok_or_else(|| ClaimError::Malformed(text.to_owned()))
}

/// §5.1 `birthdate`: `YYYY-MM-DD`, `0000-MM-DD` (year withheld) or `YYYY` alone.
fn is_birthdate(value: &str) -> bool {
    let digits = |s: &str, n: usize| s.len() == n && s.bytes().all(|b| b.is_ascii_digit());
    match value.split('-').collect::<Vec<_>>().as_slice() {
        [year] => digits(year, 4),
        [year, month, day] => {
            digits(year, 4)
                && digits(month, 2)
                && digits(day, 2)
                && matches!(month.parse::<u8>(), Ok(1..=12))
                && matches!(day.parse::<u8>(), Ok(1..=31))
        }
        _ => false,
    }
}

fn checked(name: &str, kind: Kind, value: &str) -> Result<Value, ClaimError> {
    if value.len() > MAX_VALUE || value.chars().any(char::is_control) {
        return Err(invalid(
            name,
            "at most 2000 characters, without control characters",
        ));
    }
    match kind {
        Kind::Bool => match value {
            "true" => Ok(json!(true)),
            "false" => Ok(json!(false)),
            _ => Err(invalid(name, "must be true or false")),
        },
        Kind::Url => url::Url::parse(value)
            .ok()
            .filter(|u| matches!(u.scheme(), "https" | "http"))
            .map(|_| json!(value))
            .ok_or_else(|| invalid(name, "must be an http(s) URL")),
        Kind::Email if !value.contains('@') => Err(invalid(name, "must be an email address")),
        Kind::Date if !is_birthdate(value) => {
            Err(invalid(name, "must be YYYY-MM-DD, 0000-MM-DD or YYYY"))
        }
        _ if value.is_empty() => Err(invalid(name, "must not be empty (use --unset-claim)")),
        _ => Ok(json!(value)),
    }
}

fn text_slot<'u>(user: &'u mut User, name: &str) -> Option<&'u mut Option<String>> {
    Some(match name {
        "name" => &mut user.name,
        "given_name" => &mut user.given_name,
        "family_name" => &mut user.family_name,
        "middle_name" => &mut user.middle_name,
        "nickname" => &mut user.nickname,
        "profile" => &mut user.profile,
        "picture" => &mut user.picture,
        "website" => &mut user.website,
        "email" => &mut user.email,
        "gender" => &mut user.gender,
        "birthdate" => &mut user.birthdate,
        "zoneinfo" => &mut user.zoneinfo,
        "locale" => &mut user.locale,
        "phone_number" => &mut user.phone_number,
        _ => return None,
    })
}

fn address_of(user: &User) -> Map<String, Value> {
    user.address
        .as_deref()
        .and_then(|a| serde_json::from_str(a).ok())
        .unwrap_or_default()
}

fn set_address(user: &mut User, address: Map<String, Value>) {
    user.address = (!address.is_empty()).then(|| Value::Object(address).to_string());
}

/// Sets the standard claim `name` (or `address.MEMBER`) of `user` to `value`.
pub fn set_claim(user: &mut User, name: &str, value: &str) -> Result<(), ClaimError> {
    if let Some(member) = name.strip_prefix("address.") {
        if !ADDRESS_MEMBERS.contains(&member) {
            return Err(ClaimError::Unknown(name.to_owned()));
        }
        let value = checked(name, Kind::Text, value)?;
        let mut address = address_of(user);
        address.insert(member.to_owned(), value);
        set_address(user, address);
        return Ok(());
    }
    if name == "address" {
        return Err(invalid(name, "set its members: address.street_address=..."));
    }
    let kind = SETTABLE
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, k)| *k)
        .ok_or_else(|| unknown_or_fixed(name))?;
    let value = checked(name, kind, value)?;
    match (name, value) {
        ("email_verified", Value::Bool(b)) => user.email_verified = b,
        ("phone_number_verified", Value::Bool(b)) => user.phone_number_verified = b,
        (_, Value::String(s)) => {
            if let Some(slot) = text_slot(user, name) {
                *slot = Some(s);
            }
        }
        _ => {}
    }
    Ok(())
}

/// Removes the claim `name` (or `address.MEMBER`, or the whole `address`).
pub fn unset_claim(user: &mut User, name: &str) -> Result<(), ClaimError> {
    if let Some(member) = name.strip_prefix("address.") {
        if !ADDRESS_MEMBERS.contains(&member) {
            return Err(ClaimError::Unknown(name.to_owned()));
        }
        let mut address = address_of(user);
        address.remove(member);
        set_address(user, address);
        return Ok(());
    }
    match name {
        "address" => user.address = None,
        "email_verified" => user.email_verified = false,
        "phone_number_verified" => user.phone_number_verified = false,
        _ => *text_slot(user, name).ok_or_else(|| unknown_or_fixed(name))? = None,
    }
    Ok(())
}

fn unknown_or_fixed(name: &str) -> ClaimError {
    match name {
        "sub" | "preferred_username" | "updated_at" => ClaimError::NotSettable(name.to_owned()),
        _ => ClaimError::Unknown(name.to_owned()),
    }
}

/// The scope that releases `claim` (OIDC Core §5.4, and `groups`), for the claims about
/// the user;
/// `None` for the others (`sub`, `acr`, `auth_time`, and names this provider never
/// releases).
pub fn releasing_scope(claim: &str) -> Option<&'static str> {
    match claim {
        "name" | "given_name" | "family_name" | "middle_name" | "nickname"
        | "preferred_username" | "profile" | "picture" | "website" | "gender" | "birthdate"
        | "zoneinfo" | "locale" | "updated_at" => Some("profile"),
        "email" | "email_verified" => Some("email"),
        "address" => Some("address"),
        "phone_number" | "phone_number_verified" => Some("phone"),
        super::groups::GROUPS => Some(super::groups::GROUPS),
        _ => None,
    }
}

/// Every standard claim the user has (what the `claims` parameter may pick from).
pub fn all_claims(user: &User) -> Map<String, Value> {
    let every =
        crate::domain::Scopes::parse("openid profile email address phone").unwrap_or_default();
    claims_for(user, &every)
}

/// The standard claims `scopes` release (OIDC Core §5.4); absent values are omitted.
pub fn claims_for(user: &User, scopes: &crate::domain::Scopes) -> Map<String, Value> {
    let mut out = Map::new();
    out.insert("sub".into(), json!(user.id));
    let mut put = |name: &str, value: Option<&String>| {
        if let Some(v) = value {
            out.insert(name.into(), json!(v));
        }
    };
    if scopes.contains("profile") {
        put("name", user.name.as_ref());
        put("given_name", user.given_name.as_ref());
        put("family_name", user.family_name.as_ref());
        put("middle_name", user.middle_name.as_ref());
        put("nickname", user.nickname.as_ref());
        put("preferred_username", Some(&user.username));
        put("profile", user.profile.as_ref());
        put("picture", user.picture.as_ref());
        put("website", user.website.as_ref());
        put("gender", user.gender.as_ref());
        put("birthdate", user.birthdate.as_ref());
        put("zoneinfo", user.zoneinfo.as_ref());
        put("locale", user.locale.as_ref());
        out.insert("updated_at".into(), json!(user.updated_at));
    }
    if scopes.contains("email") && user.email.is_some() {
        out.insert("email".into(), json!(user.email));
        out.insert("email_verified".into(), json!(user.email_verified));
    }
    if scopes.contains("address") {
        let address = address_of(user);
        if !address.is_empty() {
            out.insert("address".into(), Value::Object(address));
        }
    }
    if scopes.contains("phone") && user.phone_number.is_some() {
        out.insert("phone_number".into(), json!(user.phone_number));
        out.insert(
            "phone_number_verified".into(),
            json!(user.phone_number_verified),
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Scopes;

    fn user() -> User {
        User::new("sub-1".into(), "alice".into(), "x".into(), 7)
    }

    #[test]
    fn claims_are_set_checked_and_unset() {
        let mut u = user();
        for (name, value) in [
            ("phone_number", "+1 555 0100"),
            ("phone_number_verified", "true"),
            ("birthdate", "1990-01-31"),
            ("website", "https://alice.example"),
            ("locale", "fr-CA"),
            ("address.locality", "Montréal"),
            ("address.country", "CA"),
        ] {
            set_claim(&mut u, name, value).unwrap();
        }
        assert_eq!(u.phone_number.as_deref(), Some("+1 555 0100"));
        assert!(u.phone_number_verified);
        let all = claims_for(&u, &Scopes::parse("openid profile address phone").unwrap());
        assert_eq!(
            all["address"],
            json!({"locality": "Montréal", "country": "CA"})
        );
        assert_eq!(all["birthdate"], "1990-01-31");
        assert_eq!(all["phone_number_verified"], true);
        unset_claim(&mut u, "address.locality").unwrap();
        unset_claim(&mut u, "address.country").unwrap();
        assert_eq!(u.address, None, "an empty address is no address");
        unset_claim(&mut u, "phone_number_verified").unwrap();
        assert!(!u.phone_number_verified);
    }

    #[test]
    fn bad_names_and_values_are_refused() {
        let mut u = user();
        for (name, value, error) in [
            ("shoe_size", "42", ClaimError::Unknown("shoe_size".into())),
            (
                "address.planet",
                "Mars",
                ClaimError::Unknown("address.planet".into()),
            ),
            ("sub", "x", ClaimError::NotSettable("sub".into())),
            (
                "preferred_username",
                "x",
                ClaimError::NotSettable("preferred_username".into()),
            ),
            (
                "email_verified",
                "yes",
                invalid("email_verified", "must be true or false"),
            ),
            (
                "website",
                "javascript:alert(1)",
                invalid("website", "must be an http(s) URL"),
            ),
            (
                "birthdate",
                "1990-13-01",
                invalid("birthdate", "must be YYYY-MM-DD, 0000-MM-DD or YYYY"),
            ),
            (
                "email",
                "alice",
                invalid("email", "must be an email address"),
            ),
        ] {
            assert_eq!(set_claim(&mut u, name, value), Err(error), "{name}={value}");
        }
        assert!(set_claim(&mut u, "birthdate", "0000-12-24").is_ok());
        assert!(set_claim(&mut u, "birthdate", "1990").is_ok());
        assert_eq!(parse_assignment("name=A=B"), Ok(("name", "A=B")));
        assert!(parse_assignment("=x").is_err() && parse_assignment("name").is_err());
    }

    #[test]
    fn each_released_claim_has_the_scope_that_releases_it() {
        let mut user = user();
        user.name = Some("A".into());
        user.email = Some("a@example.com".into());
        user.phone_number = Some("+1".into());
        set_claim(&mut user, "address.locality", "Paris").unwrap();
        for (name, _) in all_claims(&user) {
            let Some(scope) = releasing_scope(&name) else {
                assert_eq!(name, "sub");
                continue;
            };
            let scopes = crate::domain::Scopes::parse(scope).unwrap();
            assert!(claims_for(&user, &scopes).contains_key(&name), "{name}");
        }
        assert_eq!(releasing_scope("acr"), None);
        assert_eq!(releasing_scope("shoe_size"), None);
    }

    #[test]
    fn claims_follow_the_granted_scopes() {
        let mut u = user();
        u.email = Some("alice@example.com".into());
        u.name = Some("Alice".into());
        set_claim(&mut u, "address.country", "CA").unwrap();
        let only_openid = claims_for(&u, &Scopes::parse("openid").unwrap());
        assert_eq!(only_openid.len(), 1);
        let all = claims_for(&u, &Scopes::parse("openid profile email").unwrap());
        assert_eq!(all["name"], "Alice");
        assert_eq!(all["preferred_username"], "alice");
        assert_eq!(all["email_verified"], false);
        assert!(all.get("phone_number").is_none() && all.get("address").is_none());
    }
}
