//! The webhook channel: the notification as a JSON POST, signed with HMAC-SHA256 (RFC 2104)
//! under a shared secret so that the receiver can tell it comes from mailzone and has not
//! been altered or replayed.
//!
//! `X-Mailzone-Timestamp` is the sending time in Unix seconds; `X-Mailzone-Signature` is
//! `sha256=` and the lowercase hex HMAC-SHA256 of `<timestamp>.<body>` (the timestamp's
//! decimal digits, a full stop, the exact body bytes). A receiver recomputes it, compares
//! in constant time, and refuses a timestamp older than a few minutes.

use std::path::Path;
use std::time::Duration;

use hmac::{Hmac, KeyInit as _, Mac as _};
use mailzone_records::WebhookSettings;
use sha2::Sha256;
use zeroize::Zeroizing;

use super::{Notification, read_secret};

pub const TIMESTAMP_HEADER: &str = "X-Mailzone-Timestamp";
pub const SIGNATURE_HEADER: &str = "X-Mailzone-Signature";

pub struct Webhook {
    url: String,
    secret: Zeroizing<String>,
    client: reqwest::Client,
}

impl Webhook {
    /// Reads the signing secret; the client follows no redirect (a signed body is meant
    /// for the configured URL only).
    pub fn new(config_file: &Path, settings: &WebhookSettings) -> Result<Webhook, String> {
        let secret = read_secret(config_file, "notify.webhook.secret", &settings.secret)?;
        let client = reqwest::Client::builder()
            .timeout(settings.timeout)
            .connect_timeout(settings.timeout.min(Duration::from_secs(10)))
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("mailzone/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| format!("notify.webhook: cannot build the HTTP client: {e}"))?;
        Ok(Webhook {
            url: settings.url.clone(),
            secret,
            client,
        })
    }

    /// POSTs the notification; any answer other than 2xx is a failure.
    pub async fn deliver(&self, notification: &Notification) -> Result<(), String> {
        let body = notification.json();
        let timestamp = mailzone_engine::clock::unix_now();
        let signature = sign(self.secret.as_bytes(), timestamp, &body);
        let response = self
            .client
            .post(&self.url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header(TIMESTAMP_HEADER, timestamp.to_string())
            .header(SIGNATURE_HEADER, signature)
            .body(body)
            .send()
            .await
            // reqwest's message names the URL, which carries no secret of mailzone's.
            .map_err(|e| format!("webhook {}: {}", self.url, error_chain(&e)))?;
        let status = response.status();
        if status.is_success() {
            Ok(())
        } else {
            Err(format!("webhook {}: answered {status}", self.url))
        }
    }
}

/// `sha256=<hex>`: HMAC-SHA256 under `secret` of `<timestamp>.<body>`.
pub fn sign(secret: &[u8], timestamp: i64, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes a key of any length");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!(
        "sha256={}",
        mailzone_records::zonefile::hex(&mac.finalize().into_bytes())
    )
}

fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 4231 §4.3 (test case 2): key "Jefe", data "what do ya want for nothing?" —
    /// here split as timestamp-free data to check the construction against the RFC vector.
    #[test]
    fn hmac_sha256_matches_rfc_4231() {
        let mut mac = Hmac::<Sha256>::new_from_slice(b"Jefe").unwrap();
        mac.update(b"what do ya want for nothing?");
        assert_eq!(
            mailzone_records::zonefile::hex(&mac.finalize().into_bytes()),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn the_signature_covers_timestamp_and_body() {
        let a = sign(b"secret", 1_700_000_000, b"{}");
        assert!(a.starts_with("sha256=") && a.len() == 7 + 64, "{a}");
        let mut mac = Hmac::<Sha256>::new_from_slice(b"secret").unwrap();
        mac.update(b"1700000000.{}");
        assert_eq!(
            a,
            format!(
                "sha256={}",
                mailzone_records::zonefile::hex(&mac.finalize().into_bytes())
            )
        );
        assert_ne!(a, sign(b"secret", 1_700_000_001, b"{}"));
        assert_ne!(a, sign(b"secret", 1_700_000_000, b"{ }"));
        assert_ne!(a, sign(b"other", 1_700_000_000, b"{}"));
    }
}
