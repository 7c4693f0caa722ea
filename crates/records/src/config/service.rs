//! `[serve]` and `[notify]`: the settings of `mailzone serve` — its HTTPS files, how often
//! and against which servers it checks the domains, and where it reports changed findings
//! (a signed webhook, mail through an SMTP relay).

use std::time::Duration;

use super::raw::{RawNotify, RawServe, RawSmtp, RawWebhook};
use super::{ConfigError, Result, Validator, duration, list, port, socket_addr};
use crate::model::{
    NotifySettings, SecretSource, ServeSettings, ServeTls, SmtpSecurity, SmtpSettings,
    WebhookSettings,
};

/// How often `serve` checks every domain without `serve.checkInterval` or
/// `--check-interval`.
pub const DEFAULT_CHECK_INTERVAL: Duration = Duration::from_secs(6 * 3600);
/// The shortest check interval accepted.
const MIN_CHECK_INTERVAL: Duration = Duration::from_secs(1);
/// How long one delivery (webhook POST, SMTP session) may take.
const DEFAULT_DELIVERY_TIMEOUT: &str = "10s";
/// Submission port (RFC 6409) for STARTTLS, submissions port (RFC 8314 §3.3) for TLS.
const SUBMISSION_PORT: u16 = 587;
const SUBMISSIONS_PORT: u16 = 465;

impl Validator<'_> {
    pub(super) fn serve(&self, raw: RawServe) -> Result<ServeSettings> {
        let tls = raw
            .tls
            .map(|tls| -> Result<ServeTls> {
                Ok(ServeTls {
                    certificate: self.file("serve.tls.certificate", &tls.certificate)?,
                    private_key: self.file("serve.tls.privateKey", &tls.private_key)?,
                })
            })
            .transpose()?;
        let check_interval = raw
            .check_interval
            .map(|text| check_interval("serve.checkInterval", &text))
            .transpose()?;
        let check_nameservers = list(
            &raw.check_nameservers,
            "serve.checkNameservers",
            |key, v| {
                socket_addr(v).ok_or_else(|| {
                    ConfigError::new(
                        key,
                        Some(v),
                        "expected IP or IP:PORT (e.g. 192.0.2.53 or [2001:db8::53]:53)",
                    )
                })
            },
        )?;
        Ok(ServeSettings {
            tls,
            check_interval,
            check_nameservers,
            check_connect: raw.check_connect.unwrap_or(true),
        })
    }

    pub(super) fn notify(&self, raw: RawNotify) -> Result<NotifySettings> {
        Ok(NotifySettings {
            webhook: raw.webhook.map(|w| self.webhook(w)).transpose()?,
            smtp: raw.smtp.map(|s| self.smtp(s)).transpose()?,
        })
    }

    fn webhook(&self, raw: RawWebhook) -> Result<WebhookSettings> {
        const KEY: &str = "notify.webhook";
        let url = raw.url.trim().to_string();
        let rest = url
            .strip_prefix("https://")
            .or_else(|| url.strip_prefix("http://"));
        if rest
            .is_none_or(|r| r.is_empty() || r.starts_with('/') || r.contains(char::is_whitespace))
        {
            return Err(ConfigError::new(
                format!("{KEY}.url"),
                Some(&raw.url),
                "expected an http:// or https:// URL with a host",
            ));
        }
        let secret = self
            .secret_source(KEY, "secret", raw.secret_file, raw.secret_env)?
            .ok_or_else(|| {
                ConfigError::new(
                    KEY,
                    None,
                    "a signing secret is needed: secretFile or secretEnv",
                )
            })?;
        Ok(WebhookSettings {
            url,
            secret,
            timeout: duration(
                &format!("{KEY}.timeout"),
                raw.timeout,
                DEFAULT_DELIVERY_TIMEOUT,
            )?,
        })
    }

    fn smtp(&self, raw: RawSmtp) -> Result<SmtpSettings> {
        const KEY: &str = "notify.smtp";
        let host = raw.host.trim().to_string();
        if host.is_empty() || host.contains(char::is_whitespace) {
            return Err(ConfigError::new(
                format!("{KEY}.host"),
                Some(&raw.host),
                "a host name or IP address is needed",
            ));
        }
        let security = match (raw.implicit_tls, raw.starttls.as_deref().map(str::trim)) {
            (Some(true), Some(_)) => {
                return Err(ConfigError::new(
                    KEY,
                    None,
                    "implicitTls = true and starttls exclude each other: TLS from the first byte needs no STARTTLS",
                ));
            }
            (Some(true), None) => SmtpSecurity::ImplicitTls,
            (_, None | Some("required")) => SmtpSecurity::StartTlsRequired,
            (_, Some("opportunistic")) => SmtpSecurity::StartTlsOpportunistic,
            (_, Some("never")) => SmtpSecurity::Plain,
            (_, Some(other)) => {
                return Err(ConfigError::new(
                    format!("{KEY}.starttls"),
                    Some(other),
                    "expected required, opportunistic or never",
                ));
            }
        };
        let default_port = match security {
            SmtpSecurity::ImplicitTls => SUBMISSIONS_PORT,
            _ => SUBMISSION_PORT,
        };
        let password = self.secret_source(KEY, "password", raw.password_file, raw.password_env)?;
        if password.is_some() != raw.username.is_some() {
            return Err(ConfigError::new(
                format!("{KEY}.username"),
                None,
                "SMTP AUTH needs both username and passwordFile (or passwordEnv)",
            ));
        }
        let from = mailbox(&format!("{KEY}.from"), &raw.from)?;
        if raw.to.is_empty() {
            return Err(ConfigError::new(
                format!("{KEY}.to"),
                None,
                "at least one recipient is needed",
            ));
        }
        let to = list(&raw.to, &format!("{KEY}.to"), mailbox)?;
        Ok(SmtpSettings {
            host,
            port: port(&format!("{KEY}.port"), raw.port)?.unwrap_or(default_port),
            security,
            username: raw.username,
            password,
            from,
            to,
            timeout: duration(
                &format!("{KEY}.timeout"),
                raw.timeout,
                DEFAULT_DELIVERY_TIMEOUT,
            )?,
        })
    }

    /// `<what>File` or `<what>Env` (at most one): where a secret is read when it is needed.
    fn secret_source(
        &self,
        key: &str,
        what: &str,
        file: Option<String>,
        env: Option<String>,
    ) -> Result<Option<SecretSource>> {
        match (file, env) {
            (Some(_), Some(_)) => Err(ConfigError::new(
                key,
                None,
                format!("give the {what} once: {what}File or {what}Env"),
            )),
            (Some(file), None) => Ok(Some(SecretSource::File(
                self.file(&format!("{key}.{what}File"), &file)?,
            ))),
            (None, Some(var)) if var.trim().is_empty() || var.contains('=') => {
                Err(ConfigError::new(
                    format!("{key}.{what}Env"),
                    Some(&var),
                    "an environment variable name is needed",
                ))
            }
            (None, Some(var)) => Ok(Some(SecretSource::Env(var.trim().to_string()))),
            (None, None) => Ok(None),
        }
    }
}

fn check_interval(key: &str, text: &str) -> Result<Duration> {
    let interval = duration(key, Some(text.to_string()), "")?;
    if interval < MIN_CHECK_INTERVAL {
        return Err(ConfigError::new(
            key,
            Some(text),
            "the check interval must be at least 1s",
        ));
    }
    Ok(interval)
}

/// An address as RFC 5322 §3.4.1 writes it, `local@domain`, or with a display name,
/// `Name <local@domain>`; the SMTP client parses it fully when it sends.
fn mailbox(key: &str, written: &str) -> Result<String> {
    let written = written.trim();
    let address = match (written.rfind('<'), written.ends_with('>')) {
        (Some(open), true) => &written[open + 1..written.len() - 1],
        _ => written,
    };
    let valid = address
        .split_once('@')
        .is_some_and(|(local, domain)| !local.is_empty() && !domain.is_empty())
        && !address.contains(char::is_whitespace);
    if !valid {
        return Err(ConfigError::new(
            key,
            Some(written),
            "expected a mail address: local@domain or Name <local@domain>",
        ));
    }
    Ok(written.to_string())
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use crate::model::{SecretSource, SmtpSecurity};

    const SERVER: &str = "[server]\nhostname = \"mail.example.org\"\nipv4 = [\"192.0.2.1\"]\n";

    fn parse(extra: &str) -> Result<crate::Config, crate::config::ConfigError> {
        crate::config::parse(&format!("{SERVER}{extra}"), Path::new("/etc/mailzone"))
    }

    fn error(extra: &str) -> String {
        parse(extra).unwrap_err().to_string()
    }

    #[test]
    fn without_the_tables_nothing_is_notified_and_the_interval_is_left_to_the_flag() {
        let config = parse("").unwrap();
        assert!(config.notify.is_empty());
        assert_eq!(config.serve.check_interval, None);
        assert!(config.serve.check_nameservers.is_empty());
        assert!(config.serve.check_connect, "live TLS probes by default");
    }

    #[test]
    fn check_settings_are_read() {
        let config = parse(
            "[serve]\ncheckInterval = \"90m\"\ncheckNameservers = [\"127.0.0.1:5300\", \"::1\"]\ncheckConnect = false\n",
        )
        .unwrap();
        assert!(!config.serve.check_connect);
        assert_eq!(
            config.serve.check_interval,
            Some(std::time::Duration::from_secs(5400))
        );
        assert_eq!(
            config.serve.check_nameservers,
            [
                "127.0.0.1:5300".parse().unwrap(),
                "[::1]:53".parse().unwrap()
            ]
        );
        assert!(error("[serve]\ncheckInterval = \"0s\"\n").contains("at least 1s"));
        assert!(error("[serve]\ncheckInterval = \"often\"\n").starts_with("serve.checkInterval"));
        assert!(
            error("[serve]\ncheckNameservers = [\"ns.example\"]\n")
                .starts_with("serve.checkNameservers[0]")
        );
    }

    #[test]
    fn webhook_and_smtp_are_read_with_their_defaults() {
        let config = parse(
            r#"
[notify.webhook]
url = "https://hooks.example.net/mailzone"
secretFile = "webhook.secret"

[notify.smtp]
host = "smtp.example.org"
username = "mailzone"
passwordEnv = "SMTP_PASSWORD"
from = "mailzone <mailzone@example.org>"
to = ["postmaster@example.org", "ops@example.net"]
"#,
        )
        .unwrap();
        let webhook = config.notify.webhook.unwrap();
        assert_eq!(webhook.url, "https://hooks.example.net/mailzone");
        let SecretSource::File(file) = webhook.secret else {
            panic!("{:?}", webhook.secret)
        };
        assert_eq!(file.path, Path::new("/etc/mailzone/webhook.secret"));
        assert_eq!(file.key_path, "notify.webhook.secretFile");
        let smtp = config.notify.smtp.unwrap();
        assert_eq!(
            (smtp.port, smtp.security),
            (587, SmtpSecurity::StartTlsRequired)
        );
        assert_eq!(
            smtp.password,
            Some(SecretSource::Env("SMTP_PASSWORD".into()))
        );
        assert_eq!(smtp.to.len(), 2);
    }

    #[test]
    fn smtp_security_modes() {
        let smtp = |extra: &str| {
            parse(&format!(
                "[notify.smtp]\nhost = \"127.0.0.1\"\nfrom = \"a@example.org\"\nto = [\"b@example.org\"]\n{extra}"
            ))
            .map(|c| {
                let s = c.notify.smtp.unwrap();
                (s.security, s.port)
            })
        };
        assert_eq!(
            smtp("implicitTls = true").unwrap(),
            (SmtpSecurity::ImplicitTls, 465)
        );
        assert_eq!(
            smtp("starttls = \"never\"\nport = 2525").unwrap(),
            (SmtpSecurity::Plain, 2525)
        );
        assert_eq!(
            smtp("starttls = \"opportunistic\"").unwrap(),
            (SmtpSecurity::StartTlsOpportunistic, 587)
        );
        let both = smtp("implicitTls = true\nstarttls = \"required\"").unwrap_err();
        assert!(both.to_string().contains("exclude each other"), "{both}");
        let bad = smtp("starttls = \"sometimes\"").unwrap_err();
        assert_eq!(bad.key, "notify.smtp.starttls");
    }

    #[test]
    fn mistakes_name_their_key() {
        for (extra, key) in [
            (
                "[notify.webhook]\nurl = \"ftp://x\"\nsecretEnv = \"S\"\n",
                "notify.webhook.url",
            ),
            (
                "[notify.webhook]\nurl = \"https://x.example\"\n",
                "notify.webhook",
            ),
            (
                "[notify.webhook]\nurl = \"https://x.example\"\nsecretEnv = \"S\"\nsecretFile = \"f\"\n",
                "notify.webhook",
            ),
            (
                "[notify.smtp]\nhost = \"h\"\nfrom = \"nobody\"\nto = [\"b@example.org\"]\n",
                "notify.smtp.from",
            ),
            (
                "[notify.smtp]\nhost = \"h\"\nfrom = \"a@example.org\"\nto = []\n",
                "notify.smtp.to",
            ),
            (
                "[notify.smtp]\nhost = \"h\"\nfrom = \"a@example.org\"\nto = [\"b@example.org\"]\nusername = \"u\"\n",
                "notify.smtp.username",
            ),
            ("[notify.email]\n", "notify.email"),
        ] {
            let e = parse(extra).unwrap_err();
            assert_eq!(e.key, key, "{extra}: {e}");
        }
    }
}
