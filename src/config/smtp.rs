//! `smtp_url` and `mail_from`: where mail is sent and whom it comes from, parsed once at
//! start. The password in the URL is a secret: it is kept as one (its `Debug` prints
//! nothing) and the URL itself is not kept.

use crate::domain::Secret;

/// How the connection to the SMTP server is protected.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SmtpSecurity {
    /// `smtp://`: plain TCP upgraded by STARTTLS (RFC 3207) whenever the server offers it,
    /// and always when credentials are sent; the upgrade never falls back to plain text.
    StartTls,
    /// `smtps://`: TLS from the first byte (RFC 8314 §3.3, "implicit TLS").
    ImplicitTls,
}

/// The SMTP server of `smtp_url`.
#[derive(Clone, Debug)]
pub struct SmtpServer {
    pub security: SmtpSecurity,
    pub host: String,
    pub port: u16,
    pub credentials: Option<SmtpCredentials>,
}

/// The URL's userinfo, percent-decoded.
#[derive(Clone, Debug)]
pub struct SmtpCredentials {
    pub username: String,
    pub password: Secret<String>,
}

/// RFC 6409 submission and RFC 8314 submissions: what `smtp://` and `smtps://` reach
/// without a port.
pub const SUBMISSION_PORT: u16 = 587;
pub const SUBMISSIONS_PORT: u16 = 465;

impl SmtpServer {
    /// `smtp://[USER:PASSWORD@]HOST[:PORT]` or `smtps://…`; nothing after the authority
    /// (a path, query or fragment could only be a mistake or a wish for a mode we do not
    /// offer, such as unverified TLS). The error never repeats the URL (its password).
    pub fn parse(text: &str) -> Result<Self, String> {
        let url = url::Url::parse(text).map_err(|e| format!("not a URL ({e})"))?;
        let security = match url.scheme() {
            "smtp" => SmtpSecurity::StartTls,
            "smtps" => SmtpSecurity::ImplicitTls,
            _ => {
                return Err(
                    "expected smtp://[USER:PASSWORD@]HOST[:PORT] (STARTTLS) or smtps://… (TLS)"
                        .into(),
                );
            }
        };
        let host = match url.host() {
            Some(url::Host::Domain(d)) if !d.is_empty() => d.to_owned(),
            Some(url::Host::Ipv4(ip)) => ip.to_string(),
            Some(url::Host::Ipv6(ip)) => ip.to_string(),
            _ => return Err("the URL has no host".into()),
        };
        if !matches!(url.path(), "" | "/") || url.query().is_some() || url.fragment().is_some() {
            return Err("nothing may follow HOST[:PORT] (no path, query or fragment)".into());
        }
        let port = url.port().unwrap_or(match security {
            SmtpSecurity::StartTls => SUBMISSION_PORT,
            SmtpSecurity::ImplicitTls => SUBMISSIONS_PORT,
        });
        let decode = |part: &str, what: &str| {
            percent_decode(part)
                .ok_or_else(|| format!("the {what} is not valid percent-encoded UTF-8"))
        };
        let credentials = match (url.username(), url.password()) {
            ("", None) => None,
            (_, None) => {
                return Err("credentials are USER:PASSWORD@ (the password is missing)".into());
            }
            (user, Some(password)) => Some(SmtpCredentials {
                username: decode(user, "user name")?,
                password: Secret::new(decode(password, "password")?),
            }),
        };
        Ok(Self {
            security,
            host,
            port,
            credentials,
        })
    }
}

/// RFC 3986 §2.1 percent-decoding of the userinfo (`%40` for an `@` in a user name).
fn percent_decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = text.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// `mail_from`: `Name <address>` or a bare address (RFC 5322 §3.4).
pub fn parse_mailbox(text: &str) -> Result<lettre::message::Mailbox, String> {
    text.trim()
        .parse::<lettre::message::Mailbox>()
        .map_err(|e| format!("expected an address or Name <address>, got {text:?} ({e})"))
}

/// The default sender: `noreply@` the issuer's host, under the brand's name.
pub fn default_mailbox(issuer: &str, brand_name: &str) -> Result<lettre::message::Mailbox, String> {
    let host = url::Url::parse(issuer)
        .ok()
        .and_then(|u| u.host_str().map(str::to_owned))
        .unwrap_or_default();
    let address = lettre::Address::new("noreply", host.trim_matches(['[', ']']))
        .map_err(|_| format!("the issuer's host {host:?} makes no address: set mail_from"))?;
    Ok(lettre::message::Mailbox::new(
        Some(brand_name.to_owned()),
        address,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_scheme_chooses_starttls_or_implicit_tls_and_the_submission_ports() {
        let s = SmtpServer::parse("smtp://mail.example").unwrap();
        assert_eq!(
            (s.security, s.host.as_str(), s.port),
            (SmtpSecurity::StartTls, "mail.example", 587)
        );
        assert!(s.credentials.is_none());
        let s = SmtpServer::parse("smtps://mail.example:2465/").unwrap();
        assert_eq!((s.security, s.port), (SmtpSecurity::ImplicitTls, 2465));
        assert_eq!(SmtpServer::parse("smtps://[::1]").unwrap().host, "::1");
        assert_eq!(SmtpServer::parse("smtp://127.0.0.1:25").unwrap().port, 25);
    }

    #[test]
    fn credentials_are_percent_decoded_and_the_password_never_printed() {
        let s =
            SmtpServer::parse("smtp://me%40example.com:p%40ss%3Aw%2Frd%25@mail.example").unwrap();
        let credentials = s.credentials.clone().unwrap();
        assert_eq!(credentials.username, "me@example.com");
        assert_eq!(credentials.password.expose(), "p@ss:w/rd%");
        let shown = format!("{s:?}");
        assert!(
            !shown.contains("p@ss") && !shown.contains("p%40ss"),
            "{shown}"
        );
        assert!(shown.contains("me@example.com"));
    }

    #[test]
    fn a_url_that_is_not_a_plain_smtp_server_is_refused_without_repeating_it() {
        for bad in [
            "http://mail.example",
            "smtp://",
            "smtp:///x",
            "smtp://mail.example/ehlo-name",
            "smtp://mail.example?tls=none",
            "smtps://mail.example#insecure",
            "smtp://user@mail.example",
            "smtp://u:%ff@mail.example",
            "mail.example:25",
        ] {
            let error = SmtpServer::parse(bad)
                .err()
                .unwrap_or_else(|| panic!("{bad} accepted"));
            assert!(!error.contains("mail.example"), "{bad}: {error}");
        }
    }

    #[test]
    fn the_sender_is_an_address_or_a_named_one() {
        let named = parse_mailbox("Acme Sign-in <id@acme.example>").unwrap();
        assert_eq!(named.name.as_deref(), Some("Acme Sign-in"));
        assert_eq!(named.email.to_string(), "id@acme.example");
        assert!(parse_mailbox("id@acme.example").unwrap().name.is_none());
        assert!(parse_mailbox("not an address").is_err());
        let default = default_mailbox("https://id.acme.example/auth", "Acme").unwrap();
        assert_eq!(default.to_string(), "Acme <noreply@id.acme.example>");
        let local = default_mailbox("http://127.0.0.1:8080", "Portcullis").unwrap();
        assert_eq!(local.email.to_string(), "noreply@127.0.0.1");
    }
}
