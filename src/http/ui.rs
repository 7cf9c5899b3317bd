//! What every page is rendered with: the language chosen for the request and the
//! operator's branding.
//!
//! The language is, in order: the `ui_locales` of the request (OIDC Core §3.1.2.1; it is
//! then remembered in a cookie, so the login and consent pages that follow speak it too),
//! that cookie, the browser's `Accept-Language`, English. The messages are in
//! `templates/i18n/*.toml`, one file per language.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

use actix_web::body::MessageBody;
use actix_web::cookie::{Cookie, SameSite, time::Duration as CookieDuration};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;

use crate::config::{Brand, Settings};

/// The languages the pages speak (published as `ui_locales_supported`), English first:
/// it is the fallback of every message.
pub const LOCALES: [&str; 2] = crate::protocol::discovery::UI_LOCALES;

const CATALOGUES: [(&str, &str); 2] = [
    ("en", include_str!("../../templates/i18n/en.toml")),
    ("fr", include_str!("../../templates/i18n/fr.toml")),
];

const LOCALE_COOKIE: &str = "portcullis_locale";

type Catalogue = HashMap<String, String>;

fn catalogues() -> &'static HashMap<&'static str, Catalogue> {
    static PARSED: OnceLock<HashMap<&'static str, Catalogue>> = OnceLock::new();
    PARSED.get_or_init(|| {
        CATALOGUES
            .iter()
            .map(|(locale, text)| {
                // A broken catalogue is caught by the unit tests, never at run time.
                (*locale, toml::from_str(text).unwrap_or_default())
            })
            .collect()
    })
}

tokio::task_local! {
    static CURRENT: Ui;
}

/// The language and branding of the request being answered.
#[derive(Clone)]
pub struct Ui {
    locale: &'static str,
    settings: Option<Arc<Settings>>,
}

impl Ui {
    /// The request's (set by `localize`); English and the default brand elsewhere.
    pub fn current() -> Self {
        CURRENT.try_with(Clone::clone).unwrap_or(Self {
            locale: LOCALES[0],
            settings: None,
        })
    }

    /// The `lang` of the page.
    pub fn lang(&self) -> &'static str {
        self.locale
    }

    /// The message `key` in the page's language (English if it has none).
    pub fn t(&self, key: &str) -> &'static str {
        let all = catalogues();
        [self.locale, LOCALES[0]]
            .iter()
            .find_map(|l| all.get(l).and_then(|c| c.get(key)))
            .map(String::as_str)
            .unwrap_or("")
    }

    /// `t` with `{name}` placeholders filled in.
    pub fn fill(&self, key: &str, values: &[(&str, &str)]) -> String {
        values
            .iter()
            .fold(self.t(key).to_owned(), |text, (name, value)| {
                text.replace(&format!("{{{name}}}"), value)
            })
    }

    pub fn brand(&self) -> &Brand {
        static DEFAULT: OnceLock<Brand> = OnceLock::new();
        match &self.settings {
            Some(s) => &s.brand,
            None => DEFAULT.get_or_init(|| Brand {
                name: "Portcullis".into(),
                logo_url: None,
                accent_color: None,
                stylesheet: None,
            }),
        }
    }
}

/// The primary subtag of a BCP 47 tag we speak (`fr-CA` is `fr`).
fn supported(tag: &str) -> Option<&'static str> {
    let primary = tag.trim().split(['-', '_']).next()?.to_ascii_lowercase();
    LOCALES.iter().copied().find(|l| *l == primary)
}

/// The first of the space-separated `ui_locales` we speak.
pub fn from_ui_locales(value: &str) -> Option<&'static str> {
    value.split(' ').find_map(supported)
}

/// The language of `Accept-Language` (RFC 9110 §12.5.4) we speak with the highest
/// weight (the earliest of equal weights); `q=0` means "not this one".
pub fn from_accept_language(value: &str) -> Option<&'static str> {
    let mut choices: Vec<(u16, usize, &'static str)> = value
        .split(',')
        .enumerate()
        .filter_map(|(i, item)| {
            let mut parts = item.split(';');
            let locale = supported(parts.next()?)?;
            let weight =
                parts
                    .find_map(|p| p.trim().strip_prefix("q="))
                    .map_or(Some(1000), |q| {
                        q.trim()
                            .parse::<f32>()
                            .ok()
                            .map(|q| (q.clamp(0.0, 1.0) * 1000.0) as u16)
                    })?;
            (weight > 0).then_some((weight, i, locale))
        })
        .collect();
    choices.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    choices.first().map(|c| c.2)
}

/// The middleware that chooses the request's `Ui`.
pub async fn localize(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let settings = req
        .app_data::<crate::http::state::State>()
        .map(|s| s.settings.clone());
    let asked = url::form_urlencoded::parse(req.query_string().as_bytes())
        .find(|(k, _)| k == "ui_locales")
        .and_then(|(_, v)| from_ui_locales(&v));
    let remembered = req.cookie(LOCALE_COOKIE).and_then(|c| supported(c.value()));
    let accepted = req
        .headers()
        .get(actix_web::http::header::ACCEPT_LANGUAGE)
        .and_then(|v| v.to_str().ok())
        .and_then(from_accept_language);
    let locale = asked.or(remembered).or(accepted).unwrap_or(LOCALES[0]);
    let ui = Ui {
        locale,
        settings: settings.clone(),
    };
    let mut response = CURRENT.scope(ui, next.call(req)).await?;
    if let (Some(locale), Some(settings)) = (asked, settings)
        && remembered != Some(locale)
    {
        let mut cookie = Cookie::build(LOCALE_COOKIE, locale)
            .path("/")
            .http_only(true)
            .secure(settings.cookie_secure)
            .same_site(SameSite::Lax)
            .finish();
        cookie.set_max_age(CookieDuration::days(365));
        let _ = response.response_mut().add_cookie(&cookie);
    }
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_catalogue_parses_and_has_every_message() {
        let all = catalogues();
        let english = &all["en"];
        assert!(english.len() > 50, "{}", english.len());
        for (locale, text) in CATALOGUES {
            let parsed: Catalogue = toml::from_str(text).unwrap();
            let mut missing: Vec<&String> = english
                .keys()
                .filter(|k| !parsed.contains_key(*k))
                .collect();
            missing.sort();
            assert!(missing.is_empty(), "{locale} lacks {missing:?}");
            let extra: Vec<&String> = parsed
                .keys()
                .filter(|k| !english.contains_key(*k))
                .collect();
            assert!(extra.is_empty(), "{locale} has unknown {extra:?}");
        }
    }

    #[test]
    fn every_message_the_templates_use_exists() {
        let english = &catalogues()["en"];
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/templates");
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            let Ok(text) = std::fs::read_to_string(&path) else {
                continue;
            };
            for used in text.split("ui.t(\"").skip(1) {
                let key = &used[..used.find('"').unwrap()];
                assert!(english.contains_key(key), "{}: {key}", path.display());
            }
        }
    }

    #[test]
    fn ui_locales_pick_the_first_language_we_speak() {
        assert_eq!(from_ui_locales("de fr-CA en"), Some("fr"));
        assert_eq!(from_ui_locales("EN-gb"), Some("en"));
        assert_eq!(from_ui_locales("de ja"), None);
        assert_eq!(from_ui_locales(""), None);
    }

    #[test]
    fn accept_language_is_read_by_weight() {
        assert_eq!(
            from_accept_language("fr-CH, fr;q=0.9, en;q=0.8"),
            Some("fr")
        );
        assert_eq!(from_accept_language("de, en;q=0.5, fr;q=0.7"), Some("fr"));
        assert_eq!(
            from_accept_language("en;q=0.5, fr;q=0.5"),
            Some("en"),
            "ties: first"
        );
        assert_eq!(
            from_accept_language("fr;q=0, en;q=0.1"),
            Some("en"),
            "q=0 is a no"
        );
        assert_eq!(from_accept_language("fr;q=0"), None);
        assert_eq!(from_accept_language("*"), None);
        assert_eq!(from_accept_language("fr;q=abc"), None);
    }

    #[test]
    fn messages_fall_back_to_english_and_fill_placeholders() {
        let fr = Ui {
            locale: "fr",
            settings: None,
        };
        assert_eq!(fr.t("login.submit"), "Se connecter");
        assert_eq!(
            fr.fill("scope.api", &[("scope", "api:read")]),
            "Utiliser « api:read »"
        );
        assert_eq!(fr.t("no.such.key"), "");
        assert_eq!(Ui::current().lang(), "en");
        assert_eq!(Ui::current().brand().name, "Portcullis");
    }
}
