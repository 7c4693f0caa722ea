//! Notifications of changed check findings: the message ([`Notification`]: the findings
//! that appeared and those that disappeared) and the channels that deliver it, a signed
//! webhook ([`webhook`]) and mail through an SMTP relay ([`smtp`]). Secrets are read when
//! the channels are built and never appear in a message, a log line or an error.

pub mod smtp;
pub mod webhook;

use std::path::Path;

use mailzone_check::{Finding, Severity};
use mailzone_records::{NotifySettings, SecretSource};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

/// A finding as it is announced and remembered: the JSON shape of `mailzone check
/// --format json` (code, severity, recordType, name, message, seen, expected, fix).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Reported {
    pub code: String,
    pub severity: String,
    #[serde(default, rename = "recordType")]
    pub purpose: Option<String>,
    pub name: String,
    pub message: String,
    #[serde(default)]
    pub seen: Option<String>,
    #[serde(default)]
    pub expected: Option<String>,
    #[serde(default)]
    pub fix: Option<String>,
}

impl Reported {
    pub fn from_finding(finding: &Finding) -> Reported {
        Reported {
            code: finding.code.to_string(),
            severity: severity_name(finding.severity).to_string(),
            purpose: finding.purpose.map(|t| t.to_string()),
            name: finding.name.clone(),
            message: finding.message.clone(),
            seen: finding.seen.clone(),
            expected: finding.expected.clone(),
            fix: finding.fix.clone(),
        }
    }

    /// What makes two findings the same one: code, owner name and severity (the message
    /// and the values seen may change wording without the problem changing).
    pub fn identity(&self) -> (&str, &str, &str) {
        (&self.code, &self.name, &self.severity)
    }

    /// An error or a warning: something to act on.
    pub fn needs_action(&self) -> bool {
        self.severity == "error" || self.severity == "warning"
    }
}

pub fn severity_name(severity: Severity) -> &'static str {
    match severity {
        Severity::Error => "error",
        Severity::Warning => "warning",
        Severity::Info => "info",
    }
}

/// How many findings a domain has now, by severity.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Counts {
    pub errors: usize,
    pub warnings: usize,
    pub infos: usize,
}

impl Counts {
    pub fn of(findings: &[Reported]) -> Counts {
        let count = |s: &str| findings.iter().filter(|f| f.severity == s).count();
        Counts {
            errors: count("error"),
            warnings: count("warning"),
            infos: count("info"),
        }
    }
}

/// One domain's change, as every channel sends it. The webhook body is this as JSON.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Notification {
    pub domain: String,
    /// When the check ran (RFC 3339, UTC).
    pub checked_at: String,
    /// The domain's first check by this channel: `appeared` holds every finding.
    pub first_check: bool,
    pub appeared: Vec<Reported>,
    pub disappeared: Vec<Reported>,
    /// The domain's findings now, by severity.
    pub counts: Counts,
}

impl Notification {
    pub fn json(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("a notification serializes")
    }

    /// `mailzone: example.org: 1 appeared, 0 disappeared (1 error, 0 warnings)`.
    pub fn subject(&self) -> String {
        format!(
            "mailzone: {}: {} appeared, {} disappeared ({}, {})",
            self.domain,
            self.appeared.len(),
            self.disappeared.len(),
            plural(self.counts.errors, "error"),
            plural(self.counts.warnings, "warning"),
        )
    }

    /// The mail body: each finding with what was seen, expected and the fix.
    pub fn text(&self) -> String {
        let mut out = format!(
            "mailzone checked the DNS records of {} at {}.\n",
            self.domain, self.checked_at
        );
        if self.first_check {
            out.push_str("This is the first check of the domain: every finding is listed.\n");
        }
        for (title, findings) in [
            ("Appeared", &self.appeared),
            ("Disappeared", &self.disappeared),
        ] {
            out.push_str(&format!("\n{title} ({}):\n", findings.len()));
            if findings.is_empty() {
                out.push_str("  none\n");
            }
            for f in findings {
                out.push_str(&finding_text(f));
            }
        }
        out.push_str(&format!(
            "\nNow: {}, {}, {}.\nRun `mailzone check {}` for the full report.\n",
            plural(self.counts.errors, "error"),
            plural(self.counts.warnings, "warning"),
            plural(self.counts.infos, "info"),
            self.domain
        ));
        out
    }
}

fn finding_text(f: &Reported) -> String {
    let mut s = format!(
        "  {:<7} {} {}\n          {}\n",
        f.severity, f.code, f.name, f.message
    );
    s.push_str(&mailzone_engine::check::finding_details_text(
        &f.seen,
        &f.expected,
        &f.fix,
    ));
    s
}

fn plural(n: usize, word: &str) -> String {
    if n == 1 {
        format!("{n} {word}")
    } else {
        format!("{n} {word}s")
    }
}

/// A way of telling someone: the name it is remembered under in the store, and how it
/// sends.
pub enum Channel {
    Webhook(webhook::Webhook),
    /// Boxed: the SMTP transport is much larger than the webhook's client.
    Smtp(Box<smtp::Smtp>),
}

impl Channel {
    /// `webhook` or `smtp`: the key of what this channel was told, in the store and in
    /// the metrics.
    pub fn name(&self) -> &'static str {
        match self {
            Channel::Webhook(_) => "webhook",
            Channel::Smtp(_) => "smtp",
        }
    }

    /// Sends `notification`; the error says what failed without any secret.
    pub async fn deliver(&self, notification: &Notification) -> Result<(), String> {
        match self {
            Channel::Webhook(w) => w.deliver(notification).await,
            Channel::Smtp(s) => s.deliver(notification).await,
        }
    }
}

/// The channels of `[notify]`, their secrets read now (`config_file` names the file in
/// errors). An unreadable secret or a bad address is an error naming its config key.
pub fn channels(config_file: &Path, settings: &NotifySettings) -> Result<Vec<Channel>, String> {
    let mut channels = Vec::new();
    if let Some(webhook) = &settings.webhook {
        channels.push(Channel::Webhook(webhook::Webhook::new(
            config_file,
            webhook,
        )?));
    }
    if let Some(smtp) = &settings.smtp {
        channels.push(Channel::Smtp(Box::new(smtp::Smtp::new(config_file, smtp)?)));
    }
    Ok(channels)
}

/// Reads a secret from its file (surrounding white space removed) or environment
/// variable. `key` is the config key of the secret; the value is never part of an error.
pub fn read_secret(
    config_file: &Path,
    key: &str,
    source: &SecretSource,
) -> Result<Zeroizing<String>, String> {
    let (text, _) = mailzone_engine::files::read_secret(config_file, key, source)?;
    let trimmed = Zeroizing::new(text.trim().to_string());
    if trimmed.is_empty() {
        let key = match source {
            SecretSource::File(file) => file.key_path.clone(),
            _ => format!("{key}Env"),
        };
        return Err(format!(
            "{}: {key}: the secret is empty",
            config_file.display()
        ));
    }
    Ok(trimmed)
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn finding(code: &str, severity: &str, name: &str) -> Reported {
        Reported {
            code: code.into(),
            severity: severity.into(),
            purpose: None,
            name: name.into(),
            message: format!("{code} at {name}"),
            seen: Some("nothing".into()),
            expected: None,
            fix: Some("publish it".into()),
        }
    }

    #[test]
    fn the_message_names_each_finding_and_the_counts() {
        let n = Notification {
            domain: "example.org".into(),
            checked_at: "2026-12-05T04:00:00Z".into(),
            first_check: false,
            appeared: vec![finding("record-missing", "error", "_dmarc.example.org.")],
            disappeared: vec![],
            counts: Counts {
                errors: 1,
                warnings: 0,
                infos: 2,
            },
        };
        assert_eq!(
            n.subject(),
            "mailzone: example.org: 1 appeared, 0 disappeared (1 error, 0 warnings)"
        );
        let text = n.text();
        assert!(
            text.contains(
                "Appeared (1):\n  error   record-missing _dmarc.example.org.\n          \
                 record-missing at _dmarc.example.org.\n          seen      nothing\n          \
                 fix       publish it\n"
            ),
            "{text}"
        );
        assert!(text.contains("Disappeared (0):\n  none\n"), "{text}");
        assert!(
            text.contains("Now: 1 error, 0 warnings, 2 infos."),
            "{text}"
        );
        let json: serde_json::Value = serde_json::from_slice(&n.json()).unwrap();
        assert_eq!(json["domain"], "example.org");
        assert_eq!(json["checkedAt"], "2026-12-05T04:00:00Z");
        assert_eq!(json["appeared"][0]["code"], "record-missing");
        assert_eq!(json["appeared"][0]["recordType"], serde_json::Value::Null);
        assert_eq!(json["disappeared"], serde_json::json!([]));
        assert_eq!(
            json["counts"],
            serde_json::json!({"errors": 1, "warnings": 0, "infos": 2})
        );
    }

    #[test]
    fn secrets_are_read_trimmed_and_never_shown() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("secret");
        std::fs::write(&path, "  s3cret-value\n").unwrap();
        let file = SecretSource::File(mailzone_records::FileRef {
            path: path.clone(),
            key_path: "notify.webhook.secretFile".into(),
        });
        let config = Path::new("/etc/mailzone.toml");
        assert_eq!(
            read_secret(config, "notify.webhook.secret", &file)
                .unwrap()
                .as_str(),
            "s3cret-value"
        );
        std::fs::write(&path, "\n").unwrap();
        let empty = read_secret(config, "notify.webhook.secret", &file).unwrap_err();
        assert_eq!(
            empty,
            "/etc/mailzone.toml: notify.webhook.secretFile: the secret is empty"
        );
        std::fs::remove_file(&path).unwrap();
        let missing = read_secret(config, "notify.webhook.secret", &file).unwrap_err();
        assert!(missing.contains("cannot read"), "{missing}");
        let env = SecretSource::Env("MAILZONE_TEST_UNSET_SECRET_VARIABLE".into());
        assert_eq!(
            read_secret(config, "notify.smtp.password", &env).unwrap_err(),
            "/etc/mailzone.toml: notify.smtp.passwordEnv: the environment variable \
             MAILZONE_TEST_UNSET_SECRET_VARIABLE is not set"
        );
    }
}
