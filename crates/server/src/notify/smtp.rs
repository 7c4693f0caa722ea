//! The mail channel: the notification as a plain-text mail through an SMTP relay (RFC
//! 5321; submission, RFC 6409), over STARTTLS (RFC 3207) or implicit TLS (RFC 8314 §3.3),
//! with SMTP AUTH (RFC 4954) when a username is configured.

use std::path::Path;

use lettre::message::Mailbox;
use lettre::message::header::{ContentType, HeaderName, HeaderValue};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport as _, Message, Tokio1Executor};
use mailzone_records::{SmtpSecurity, SmtpSettings};

use super::{Notification, read_secret};

pub struct Smtp {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    relay: String,
    from: Mailbox,
    to: Vec<Mailbox>,
}

impl Smtp {
    /// Parses the addresses and reads the password (when AUTH is configured).
    pub fn new(config_file: &Path, settings: &SmtpSettings) -> Result<Smtp, String> {
        let fail =
            |key: &str, reason: String| format!("{}: {key}: {reason}", config_file.display());
        let mailbox = |key: String, written: &str| {
            written
                .parse::<Mailbox>()
                .map_err(|e| fail(&key, format!("{written:?} is not a mail address: {e}")))
        };
        let from = mailbox("notify.smtp.from".into(), &settings.from)?;
        let to = settings
            .to
            .iter()
            .enumerate()
            .map(|(i, t)| mailbox(format!("notify.smtp.to[{i}]"), t))
            .collect::<Result<Vec<_>, _>>()?;
        let tls_parameters = || {
            TlsParameters::new(settings.host.clone())
                .map_err(|e| fail("notify.smtp.host", format!("cannot set up TLS: {e}")))
        };
        let tls = match settings.security {
            SmtpSecurity::Plain => Tls::None,
            SmtpSecurity::StartTlsOpportunistic => Tls::Opportunistic(tls_parameters()?),
            SmtpSecurity::StartTlsRequired => Tls::Required(tls_parameters()?),
            SmtpSecurity::ImplicitTls => Tls::Wrapper(tls_parameters()?),
        };
        // "dangerous" only because this builder starts without TLS; it is set just here.
        let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&settings.host)
            .port(settings.port)
            .tls(tls)
            .timeout(Some(settings.timeout));
        if let (Some(username), Some(source)) = (&settings.username, &settings.password) {
            let password = read_secret(config_file, "notify.smtp.password", source)?;
            builder = builder.credentials(Credentials::new(
                username.clone(),
                password.as_str().to_string(),
            ));
        }
        Ok(Smtp {
            transport: builder.build(),
            relay: format!("{}:{}", settings.host, settings.port),
            from,
            to,
        })
    }

    pub async fn deliver(&self, notification: &Notification) -> Result<(), String> {
        let mut message = Message::builder()
            .from(self.from.clone())
            .subject(notification.subject())
            .header(ContentType::TEXT_PLAIN)
            // RFC 3834 §5: a machine wrote this; auto-responders do not answer it.
            .raw_header(HeaderValue::new(
                HeaderName::new_from_ascii_str("Auto-Submitted"),
                "auto-generated".into(),
            ));
        for to in &self.to {
            message = message.to(to.clone());
        }
        let message = message
            .body(notification.text())
            .map_err(|e| format!("cannot build the mail: {e}"))?;
        self.transport
            .send(message)
            .await
            .map(|_| ())
            .map_err(|e| format!("SMTP relay {}: {e}", self.relay))
    }
}
