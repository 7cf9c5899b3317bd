//! How a mail leaves: to the SMTP server of `smtp_url` through lettre (rustls over the
//! process's aws-lc-rs provider; no OpenSSL, no second TLS stack), or, without one, into
//! an `.eml` file in the data directory's `outbox/`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use lettre::message::header::{HeaderName, HeaderValue};
use lettre::message::{Mailbox, MultiPart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

use super::message::Outgoing;
use super::{MailError, render};
use crate::config::{Brand, Settings, SmtpSecurity, SmtpServer};

/// How long one SMTP command (the connection included) may take.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a whole delivery may take: well within the outbox lease, so that no other
/// instance claims a mail while it is still being sent.
pub const SEND_TIMEOUT: Duration = Duration::from_secs(60);

/// RFC 3834 §5: mail a program sends by itself, which auto-responders must not answer.
const AUTO_SUBMITTED: HeaderName = HeaderName::new_from_ascii_str("Auto-Submitted");
const CONTENT_LANGUAGE: HeaderName = HeaderName::new_from_ascii_str("Content-Language");

/// Writes and sends mail as the configuration says.
pub struct Mailer {
    route: Route,
    from: Mailbox,
    brand: Brand,
    issuer: String,
}

enum Route {
    Smtp(AsyncSmtpTransport<Tokio1Executor>),
    Files(PathBuf),
}

/// Where a mail went.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Sent {
    /// Accepted by the SMTP server.
    Smtp,
    /// Written to this `.eml` file (no `smtp_url`).
    File(PathBuf),
}

/// Why a mail did not go.
#[derive(Clone, Debug)]
pub struct SendError {
    /// RFC 5321 §4.2.1: a 5yz reply. "The SMTP client SHOULD NOT repeat the exact
    /// request": the mail is given up at once.
    pub permanent: bool,
    /// What happened, without the recipient's address.
    pub message: String,
}

impl SendError {
    fn new(message: impl std::fmt::Display, outgoing: &Outgoing) -> Self {
        Self {
            permanent: false,
            message: redact(&message.to_string(), outgoing),
        }
    }
}

/// A server's reply may quote the address ("550 <bob@…>: no such user"); logs and the
/// outbox keep its domain at most.
fn redact(message: &str, outgoing: &Outgoing) -> String {
    message.replace(outgoing.to.as_str(), &format!("…@{}", outgoing.to.domain()))
}

/// The CA file's certificates, refused unless it holds at least one (an empty trust
/// addition would only fail later, at the first handshake, less helpfully).
fn read_ca_file(path: &Path) -> Result<Certificate, MailError> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    let bad = |message: String| MailError::Config {
        key: "smtp_ca_file",
        message: format!("{}: {message}", path.display()),
    };
    let pem = std::fs::read(path).map_err(|e| bad(format!("cannot read: {e}")))?;
    let found = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| bad(format!("not PEM: {e}")))?;
    if found.is_empty() {
        return Err(bad("no PEM certificate in it".into()));
    }
    Certificate::from_pem(&pem).map_err(|e| bad(e.to_string()))
}

/// The lettre transport of `server`. The certificate is always verified, against the
/// system's roots plus `ca_file`, and its name checked against the host.
fn smtp_transport(
    server: &SmtpServer,
    ca_file: Option<&Path>,
) -> Result<AsyncSmtpTransport<Tokio1Executor>, MailError> {
    crate::crypto::install_tls_provider();
    let mut parameters = TlsParameters::builder(server.host.clone());
    if let Some(path) = ca_file {
        parameters = parameters.add_root_certificate(read_ca_file(path)?);
    }
    let parameters = parameters.build_rustls().map_err(|e| MailError::Config {
        key: "smtp_url",
        message: e.to_string(),
    })?;
    let tls = match (server.security, &server.credentials) {
        (SmtpSecurity::ImplicitTls, _) => Tls::Wrapper(parameters),
        // Credentials never cross in plain text: without STARTTLS there is no session.
        (SmtpSecurity::StartTls, Some(_)) => Tls::Required(parameters),
        // RFC 3207: upgrade whenever the server offers STARTTLS; a failed upgrade (an
        // untrusted certificate) fails the attempt, never falls back to plain text. A
        // server that offers none (a relay on the same host) gets the mail in plain.
        (SmtpSecurity::StartTls, None) => Tls::Opportunistic(parameters),
    };
    let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(server.host.clone())
        .port(server.port)
        .timeout(Some(COMMAND_TIMEOUT))
        .tls(tls);
    if let Some(credentials) = &server.credentials {
        builder = builder.credentials(Credentials::new(
            credentials.username.clone(),
            credentials.password.expose().clone(),
        ));
    }
    Ok(builder.build())
}

impl Mailer {
    /// From the configuration; a CA file that cannot be read stops the start, naming
    /// `smtp_ca_file`.
    pub fn new(settings: &Settings) -> Result<Self, MailError> {
        let route = match &settings.smtp {
            Some(server) => Route::Smtp(smtp_transport(server, settings.smtp_ca_file.as_deref())?),
            None => Route::Files(settings.mail_outbox_dir.clone()),
        };
        Ok(Self {
            route,
            from: settings.mail_from.clone(),
            brand: settings.brand.clone(),
            issuer: settings.issuer.clone(),
        })
    }

    /// Whether mail is written to files (no `smtp_url`): its links are then logged.
    pub fn writes_files(&self) -> bool {
        matches!(self.route, Route::Files(_))
    }

    /// The message of outbox row `id`: `multipart/alternative`, text then HTML (RFC 2046
    /// §5.1.4: the richer part last). Its Message-ID is made from the row, so a mail sent
    /// twice (a lease that ran out mid-send) is one message to the recipient's client.
    pub fn message(&self, id: &str, outgoing: &Outgoing) -> Result<Message, MailError> {
        let rendered = render(outgoing, &self.brand, &self.issuer)?;
        Message::builder()
            .from(self.from.clone())
            .to(Mailbox::new(None, outgoing.to.address().clone()))
            .subject(rendered.subject)
            .message_id(Some(format!("<{id}@{}>", self.from.email.domain())))
            .raw_header(HeaderValue::new(AUTO_SUBMITTED, "auto-generated".into()))
            .raw_header(HeaderValue::new(
                CONTENT_LANGUAGE,
                outgoing.locale.as_str().into(),
            ))
            .multipart(MultiPart::alternative_plain_html(
                rendered.text,
                rendered.html,
            ))
            .map_err(|e| MailError::Render(e.to_string()))
    }

    /// Sends (or writes) the mail of outbox row `id`.
    pub async fn send(&self, id: &str, outgoing: &Outgoing) -> Result<Sent, SendError> {
        // A message that cannot be written now never can be: given up at once.
        let message = self.message(id, outgoing).map_err(|e| SendError {
            permanent: true,
            ..SendError::new(e, outgoing)
        })?;
        match &self.route {
            Route::Smtp(transport) => {
                match tokio::time::timeout(SEND_TIMEOUT, transport.send(message)).await {
                    Ok(Ok(_)) => Ok(Sent::Smtp),
                    Ok(Err(e)) => Err(SendError {
                        permanent: e.is_permanent(),
                        ..SendError::new(e, outgoing)
                    }),
                    Err(_) => Err(SendError::new("the SMTP server took too long", outgoing)),
                }
            }
            Route::Files(dir) => {
                let path = dir.join(format!("{id}.eml"));
                let (dir, target, bytes) = (dir.clone(), path.clone(), message.formatted());
                match tokio::task::spawn_blocking(move || write_eml(&dir, &target, &bytes)).await {
                    Ok(Ok(())) => Ok(Sent::File(path)),
                    Ok(Err(e)) => Err(SendError::new(
                        format!("cannot write {}: {e}", path.display()),
                        outgoing,
                    )),
                    Err(e) => Err(SendError::new(e, outgoing)),
                }
            }
        }
    }
}

/// Writes the file whole or not at all (a temporary file renamed), readable by its owner
/// only: it holds a single-use link.
fn write_eml(dir: &Path, target: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    std::fs::create_dir_all(dir)?;
    let partial = target.with_extension("eml.partial");
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(&partial)?;
    file.write_all(bytes)?;
    file.sync_all()?;
    std::fs::rename(&partial, target)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mail::{EmailAddress, Link, Locale, MailKind};

    fn settings(toml: &str) -> Settings {
        Settings::from_sources(Some(toml), |_| None).unwrap()
    }

    fn outgoing() -> Outgoing {
        Outgoing {
            to: EmailAddress::parse("bob@example.org").unwrap(),
            locale: Locale::Fr,
            kind: MailKind::EmailVerification {
                link: Link::new("https://id.example/v?code=x".into()).unwrap(),
                valid_minutes: 1440,
                username: Some("bob".into()),
            },
        }
    }

    #[test]
    fn a_message_has_both_parts_its_language_and_a_message_id_of_its_row() {
        let mailer = Mailer::new(&settings(
            "brand_name = \"Acme\"\nissuer = \"https://id.example\"",
        ))
        .unwrap();
        assert!(mailer.writes_files());
        let text =
            String::from_utf8(mailer.message("row-1", &outgoing()).unwrap().formatted()).unwrap();
        for header in [
            "From: Acme <noreply@id.example>",
            "To: bob@example.org",
            "Message-ID: <row-1@id.example>",
            "Auto-Submitted: auto-generated",
            "Content-Language: fr",
            "multipart/alternative",
            "text/plain",
            "text/html",
        ] {
            assert!(text.contains(header), "{header} in {text}");
        }
        assert!(text.find("text/plain") < text.find("text/html"));
    }

    #[test]
    fn a_server_reply_that_quotes_the_address_keeps_its_domain_only() {
        let error = SendError::new(
            "permanent error (550): <bob@example.org> unknown",
            &outgoing(),
        );
        assert_eq!(
            error.message,
            "permanent error (550): <…@example.org> unknown"
        );
    }

    #[test]
    fn a_ca_file_without_certificates_stops_the_start_naming_its_key() {
        let dir = tempfile::TempDir::new().unwrap();
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "nothing here\n").unwrap();
        for (path, why) in [
            (empty.clone(), "no PEM certificate"),
            (dir.path().join("missing.pem"), "cannot read"),
        ] {
            let toml = format!(
                "smtp_url = \"smtp://mx.example\"\nsmtp_ca_file = \"{}\"",
                path.display()
            );
            let Err(error) = Mailer::new(&settings(&toml)) else {
                panic!("started with {}", path.display());
            };
            let error = error.to_string();
            assert!(
                error.starts_with("configuration: smtp_ca_file:") && error.contains(why),
                "{error}"
            );
        }
        assert!(
            !Mailer::new(&settings("smtp_url = \"smtps://u:p@mx.example\""))
                .unwrap()
                .writes_files()
        );
    }
}
