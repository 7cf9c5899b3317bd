//! How a mail is worded: its subject, a text part and an HTML part, from the pages'
//! message catalogues (`templates/i18n`, the `mail.*` keys) and two askama templates
//! (`templates/mail/`), under the operator's brand.

use std::collections::HashMap;
use std::sync::OnceLock;

use askama::Template;

use super::MailError;
use super::message::{Locale, MailKind, Outgoing};
use crate::config::Brand;

/// The pages' catalogues: mail says things the way the pages do.
const CATALOGUES: [(Locale, &str); 2] = [
    (Locale::En, include_str!("../../templates/i18n/en.toml")),
    (Locale::Fr, include_str!("../../templates/i18n/fr.toml")),
];

/// The colour of the button when the operator set none (the pages' `--accent`).
const DEFAULT_ACCENT: &str = "#2f5bea";

fn catalogue(locale: Locale) -> Option<&'static HashMap<String, String>> {
    static PARSED: OnceLock<HashMap<Locale, HashMap<String, String>>> = OnceLock::new();
    PARSED
        .get_or_init(|| {
            CATALOGUES
                .iter()
                // A broken catalogue is caught by the unit tests (here and in http::ui).
                .map(|(l, text)| (*l, toml::from_str(text).unwrap_or_default()))
                .collect()
        })
        .get(&locale)
}

/// The message `key` in `locale` (English if it has none), `{name}`s filled in. A value
/// (an inviter's name) cannot break a line: its control characters become spaces, so the
/// subject stays one header.
fn text(locale: Locale, key: &str, values: &[(&str, &str)]) -> String {
    let message = [locale, Locale::En]
        .iter()
        .find_map(|l| catalogue(*l)?.get(key))
        .map(String::as_str)
        .unwrap_or("");
    values
        .iter()
        .fold(message.to_owned(), |text, (name, value)| {
            text.replace(
                &format!("{{{name}}}"),
                &value.replace(char::is_control, " "),
            )
        })
}

/// "30 minutes", "24 hours", "7 days".
fn duration(locale: Locale, minutes: u32) -> String {
    let n = |v: u32| v.to_string();
    match minutes {
        60 => text(locale, "mail.duration.hour", &[]),
        // An invitation's week reads as days; a day stays "24 hours".
        m if m > 1440 && m % 1440 == 0 => {
            text(locale, "mail.duration.days", &[("n", &n(m / 1440))])
        }
        m if m % 60 == 0 => text(locale, "mail.duration.hours", &[("n", &n(m / 60))]),
        m => text(locale, "mail.duration.minutes", &[("n", &n(m))]),
    }
}

/// A mail, ready to be sent.
#[derive(Clone, Debug)]
pub struct Rendered {
    pub subject: String,
    pub text: String,
    pub html: String,
}

/// The button of a mail with a link.
struct Action {
    label: String,
    url: String,
    hint: String,
    once: String,
}

/// What both parts say, worded once.
struct View {
    lang: &'static str,
    brand: String,
    logo: Option<String>,
    accent: String,
    greeting: String,
    paragraphs: Vec<String>,
    action: Option<Action>,
    footer: String,
}

#[derive(Template)]
#[template(path = "mail/message.txt")]
struct TextPart<'a> {
    view: &'a View,
}

#[derive(Template)]
#[template(path = "mail/message.html")]
struct HtmlPart<'a> {
    view: &'a View,
}

/// The logo as mail clients can load it: an absolute https URL (a path on this server is
/// made one under the issuer); none otherwise.
fn logo_url(brand: &Brand, issuer: &str) -> Option<String> {
    let logo = brand.logo_url.as_deref()?;
    if logo.starts_with("https://") {
        Some(logo.to_owned())
    } else if logo.starts_with('/') && issuer.starts_with("https://") {
        let origin = url::Url::parse(issuer).ok()?.origin().ascii_serialization();
        Some(format!("{origin}{logo}"))
    } else {
        None
    }
}

/// Words `outgoing` in its language under `brand` (`issuer` locates a logo given as a path).
pub fn render(outgoing: &Outgoing, brand: &Brand, issuer: &str) -> Result<Rendered, MailError> {
    let locale = outgoing.locale;
    let t = |key: &str, values: &[(&str, &str)]| text(locale, key, values);
    let name = brand.name.as_str();
    let with_brand = [("brand", name)];
    let kind = outgoing.kind.name();
    let subject = match &outgoing.kind {
        MailKind::Invitation { invited_by, .. } => t(
            "mail.invitation.subject",
            &[("brand", name), ("inviter", invited_by)],
        ),
        _ => t(&format!("mail.{kind}.subject"), &with_brand),
    };
    let mut paragraphs = Vec::new();
    match &outgoing.kind {
        MailKind::EmailVerification {
            username: Some(username),
            ..
        } => paragraphs.push(t(
            "mail.email_verification.body_account",
            &[
                ("brand", name),
                ("address", outgoing.to.as_str()),
                ("username", username),
            ],
        )),
        MailKind::EmailVerification { username: None, .. } => paragraphs.push(t(
            "mail.email_verification.body",
            &[("brand", name), ("address", outgoing.to.as_str())],
        )),
        MailKind::PasswordReset { .. } | MailKind::Test => {
            paragraphs.push(t(&format!("mail.{kind}.body"), &with_brand))
        }
        MailKind::PasswordChanged { username } => {
            paragraphs.push(t(
                "mail.password_changed.body",
                &[("brand", name), ("username", username)],
            ));
            paragraphs.push(t("mail.password_changed.warning", &[]));
        }
        MailKind::AddressChange {
            username,
            new_address,
            done,
        } => {
            let key = if *done {
                "mail.address_change.done"
            } else {
                "mail.address_change.asked"
            };
            paragraphs.push(t(
                key,
                &[
                    ("brand", name),
                    ("username", username),
                    ("address", new_address),
                ],
            ));
            paragraphs.push(t("mail.address_change.warning", &[]));
        }
        MailKind::Invitation { invited_by, .. } => paragraphs.push(t(
            "mail.invitation.body",
            &[("brand", name), ("inviter", invited_by)],
        )),
    }
    let action = outgoing.kind.link().map(|(link, minutes)| Action {
        label: t(&format!("mail.{kind}.action"), &[]),
        url: link.expose().to_owned(),
        hint: t("mail.link_hint", &[]),
        once: t(
            "mail.link_once",
            &[("duration", &duration(locale, minutes))],
        ),
    });
    // A mail that someone else may have asked for says it can be ignored; a notice or a
    // test does not.
    if outgoing.kind.link().is_some() {
        paragraphs.push(t("mail.ignore", &[]));
    }
    let view = View {
        lang: locale.as_str(),
        brand: name.to_owned(),
        logo: logo_url(brand, issuer),
        accent: brand
            .accent_color
            .clone()
            .unwrap_or_else(|| DEFAULT_ACCENT.to_owned()),
        greeting: t("mail.greeting", &[]),
        paragraphs,
        action,
        footer: t("mail.footer", &with_brand),
    };
    let failed = |e: askama::Error| MailError::Render(e.to_string());
    Ok(Rendered {
        subject,
        text: TextPart { view: &view }.render().map_err(failed)?,
        html: HtmlPart { view: &view }.render().map_err(failed)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mail::{EmailAddress, Link};

    fn brand() -> Brand {
        Brand {
            name: "Acme <ID>".into(),
            logo_url: Some("/static/acme.svg".into()),
            accent_color: Some("#aa0000".into()),
            stylesheet: None,
        }
    }

    fn outgoing(locale: Locale, kind: MailKind) -> Outgoing {
        Outgoing {
            to: EmailAddress::parse("bob@example.org").unwrap(),
            locale,
            kind,
        }
    }

    fn link() -> Link {
        Link::new("https://id.example/verify?code=a&b=c".into()).unwrap()
    }

    fn every_kind() -> Vec<MailKind> {
        vec![
            MailKind::EmailVerification {
                link: link(),
                valid_minutes: 1440,
                username: Some("bob".into()),
            },
            MailKind::PasswordReset {
                link: link(),
                valid_minutes: 30,
            },
            MailKind::PasswordChanged {
                username: "bob".into(),
            },
            MailKind::Invitation {
                link: link(),
                valid_minutes: 10080,
                invited_by: "Alice Admin".into(),
            },
            MailKind::Test,
            MailKind::AddressChange {
                username: "bob".into(),
                new_address: "new@example.org".into(),
                done: false,
            },
            MailKind::AddressChange {
                username: "bob".into(),
                new_address: "new@example.org".into(),
                done: true,
            },
            // Queued before mails named the account.
            MailKind::EmailVerification {
                link: link(),
                valid_minutes: 1440,
                username: None,
            },
        ]
    }

    #[test]
    fn every_kind_has_a_subject_and_both_parts_in_every_language() {
        for locale in Locale::ALL {
            for kind in every_kind() {
                let name = kind.name();
                let mail = render(
                    &outgoing(locale, kind.clone()),
                    &brand(),
                    "https://id.example",
                )
                .unwrap();
                assert!(
                    mail.subject.contains("Acme <ID>"),
                    "{name}: {}",
                    mail.subject
                );
                assert!(mail.text.contains("Acme <ID>"), "{name}");
                // The HTML part escapes what the operator and the inviter wrote.
                assert!(
                    mail.html.contains("Acme &#60;ID&#62;")
                        || mail.html.contains("Acme &lt;ID&gt;"),
                    "{name}: {}",
                    mail.html
                );
                assert!(!mail.html.contains("<ID>"), "{name}");
                assert!(mail.html.contains(&format!("lang=\"{}\"", locale.as_str())));
                if let Some((link, _)) = kind.link() {
                    assert!(mail.text.contains(link.expose()), "{name}");
                    assert!(
                        mail.html
                            .contains("https://id.example/verify?code=a&#38;b=c")
                            || mail
                                .html
                                .contains("https://id.example/verify?code=a&amp;b=c"),
                        "{name}: {}",
                        mail.html
                    );
                } else {
                    assert!(!mail.text.contains("https://"), "{name}");
                }
                for part in [&mail.subject, &mail.text, &mail.html] {
                    assert!(
                        !part.contains('{'),
                        "{name} {locale:?}: a placeholder left: {part}"
                    );
                }
            }
        }
    }

    #[test]
    fn french_mail_is_french_and_says_how_long_the_link_works() {
        let fr = render(
            &outgoing(Locale::Fr, every_kind()[1].clone()),
            &brand(),
            "https://id.example",
        )
        .unwrap();
        assert!(fr.subject.starts_with("Réinitialisez"), "{}", fr.subject);
        assert!(fr.text.contains("pendant 30 minutes"), "{}", fr.text);
        let en = render(
            &outgoing(Locale::En, every_kind()[0].clone()),
            &brand(),
            "https://id.example",
        )
        .unwrap();
        assert!(en.text.contains("for 24 hours"), "{}", en.text);
        assert!(en.text.contains("bob@example.org"));
        let invitation = render(
            &outgoing(Locale::En, every_kind()[3].clone()),
            &brand(),
            "https://id.example",
        )
        .unwrap();
        assert_eq!(invitation.subject, "Alice Admin invited you to Acme <ID>");
        let sneaky = MailKind::Invitation {
            link: link(),
            valid_minutes: 60,
            invited_by: "Eve\r\nBcc: all@example.org".into(),
        };
        let sneaky = render(
            &outgoing(Locale::En, sneaky),
            &brand(),
            "https://id.example",
        )
        .unwrap();
        assert_eq!(
            sneaky.subject,
            "Eve  Bcc: all@example.org invited you to Acme <ID>"
        );
        assert!(
            invitation.text.contains("for 7 days"),
            "{}",
            invitation.text
        );
    }

    #[test]
    fn a_verification_names_the_account_it_acts_on() {
        for locale in Locale::ALL {
            let kind = MailKind::EmailVerification {
                link: link(),
                valid_minutes: 1440,
                username: Some("bob_the_user".into()),
            };
            let mail = render(&outgoing(locale, kind), &brand(), "https://id.example").unwrap();
            assert!(mail.text.contains("bob_the_user"), "{}", mail.text);
            assert!(mail.html.contains("bob_the_user"), "{}", mail.html);
        }
    }

    #[test]
    fn the_brand_colour_and_logo_are_in_the_html_part() {
        let mail = render(
            &outgoing(Locale::En, MailKind::Test),
            &brand(),
            "https://id.example/auth",
        )
        .unwrap();
        assert!(mail.html.contains("#aa0000"));
        assert!(
            mail.html.contains("https://id.example/static/acme.svg"),
            "{}",
            mail.html
        );
        // A local issuer's logo is not reachable from a mailbox: none.
        let local = render(
            &outgoing(Locale::En, MailKind::Test),
            &brand(),
            "http://localhost:8080",
        )
        .unwrap();
        assert!(!local.html.contains("<img"));
    }

    #[test]
    fn every_mail_message_is_in_every_catalogue() {
        let english: Vec<&String> = catalogue(Locale::En)
            .unwrap()
            .keys()
            .filter(|k| k.starts_with("mail."))
            .collect();
        assert!(english.len() >= 20, "{}", english.len());
        for locale in Locale::ALL {
            for key in &english {
                assert!(
                    catalogue(locale).unwrap().contains_key(*key),
                    "{locale:?} lacks {key}"
                );
            }
        }
    }
}
