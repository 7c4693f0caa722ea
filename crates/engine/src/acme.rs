//! ACME certificates over DNS-01 (RFC 8555 §8.4): an account per directory (sealed in the
//! store), an order for the configured names, each `_acme-challenge.<name>` TXT published
//! through the DNS server of the zone that holds the name and waited for on every
//! authoritative server, then the CA told, the order finalized with a CSR, the chain and key
//! written atomically — and the challenge records removed again, on success and on failure.
//!
//! The challenge records are added and removed value by value, with no prerequisite: an
//! RFC 2136 add of one RR and a delete of one RR (§2.5.1, §2.5.4) leave any other TXT at the
//! same name (another client's challenge) alone. Each is recorded in the store before the
//! UPDATE that adds it and forgotten once removed; a renewal killed in between (crash
//! point `acme-challenge`) leaves rows that the next renewal removes first, due or not.

use std::collections::BTreeSet;
use std::path::PathBuf;

use mailzone_records::AcmeSettings;
use mailzone_store::Store;
use serde::Serialize;
use x509_parser::prelude::{FromDer, GeneralName, X509Certificate};

use crate::progress::Progress;
use crate::{EngineError, LoadedConfig};

mod challenges;
mod files;
mod order;

use challenges::*;
use files::*;
pub use files::{next_key_digest, next_key_path};
use order::*;

/// TTL of a challenge record: it lives for minutes.
const CHALLENGE_TTL: u32 = 60;

/// Mode of the private key file.
const KEY_MODE: u32 = 0o600;

/// Mode of the certificate chain (public).
const CERT_MODE: u32 = 0o644;

/// What `renew` should do.
#[derive(Debug, Clone)]
pub struct RenewRequest {
    /// The state directory (the ACME account lives in its database).
    pub state_dir: PathBuf,
    /// An open store (the service's); the CLI opens one in `state_dir`.
    pub store: Option<Store>,
    /// Renew even when the certificate is not due.
    pub force: bool,
    pub now_unix: i64,
}

/// Whether a certificate was issued, and what it is.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub enum Outcome {
    Issued,
    NotDue,
}

/// The result of one `renew`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RenewReport {
    pub outcome: Outcome,
    /// Why a certificate was (or was not) requested.
    pub reason: String,
    pub names: Vec<String>,
    pub certificate: PathBuf,
    pub private_key: PathBuf,
    /// Expiry of the certificate now in place (Unix seconds).
    pub not_after: Option<i64>,
    /// When it becomes due for renewal (Unix seconds).
    pub renew_at: Option<i64>,
    /// The private key was kept from the previous certificate (TLSA `3 1 1` unchanged).
    pub key_reused: bool,
    /// Challenge records published (and removed again).
    pub challenges: usize,
    /// Challenge records that could not be removed, with the reason (normally empty).
    pub leftover_challenges: Vec<String>,
}

/// Renews the certificate of `[server.acme]` when it is due (or `force`).
pub async fn renew(
    loaded: &LoadedConfig,
    request: &RenewRequest,
    progress: &dyn Progress,
) -> Result<RenewReport, EngineError> {
    let settings = settings(loaded)?;
    let current = read_current(settings)?;
    let mut report = RenewReport {
        outcome: Outcome::NotDue,
        reason: String::new(),
        names: settings
            .names
            .iter()
            .map(|n| n.as_str().to_string())
            .collect(),
        certificate: settings.certificate.path.clone(),
        private_key: settings.private_key.path.clone(),
        not_after: current.as_ref().map(|c| c.not_after),
        renew_at: current.as_ref().map(|c| c.renew_at(settings.renew_before)),
        key_reused: false,
        challenges: 0,
        leftover_challenges: vec![],
    };
    let store = match &request.store {
        Some(store) => store.clone(),
        None => Store::open_sqlite(&request.state_dir).await?,
    };
    report.leftover_challenges = remove_left_behind(loaded, &store).await?;
    match due(settings, current.as_ref(), request.now_unix, request.force) {
        Due::No(reason) => {
            report.reason = reason;
            return Ok(report);
        }
        Due::Yes(reason) => report.reason = reason,
    }
    let account = account(settings, &store, request.now_unix).await?;
    issue(
        loaded,
        settings,
        &account,
        &store,
        request.now_unix,
        &mut report,
        progress,
    )
    .await?;
    Ok(report)
}

/// The `[server.acme]` section, or a usage error saying how to add one.
pub fn settings(loaded: &LoadedConfig) -> Result<&AcmeSettings, EngineError> {
    loaded.config.server.acme.as_ref().ok_or_else(|| {
        EngineError::Usage(format!(
            "{}: no [server.acme] section: add one with the ACME directory URL to get certificates",
            loaded.path.display()
        ))
    })
}

/// Whether the configured certificate is due for renewal (without touching the network).
pub fn is_due(loaded: &LoadedConfig, now_unix: i64) -> Result<bool, EngineError> {
    let settings = settings(loaded)?;
    let current = read_current(settings)?;
    Ok(matches!(
        due(settings, current.as_ref(), now_unix, false),
        Due::Yes(_)
    ))
}

/// What matters of the certificate in place.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Current {
    not_before: i64,
    not_after: i64,
    names: BTreeSet<String>,
}

impl Current {
    /// `renew_before` of the lifetime before expiry.
    fn renew_at(&self, renew_before: f64) -> i64 {
        let lifetime = (self.not_after - self.not_before).max(0) as f64;
        self.not_after - (lifetime * renew_before) as i64
    }
}

enum Due {
    Yes(String),
    No(String),
}

fn due(settings: &AcmeSettings, current: Option<&Current>, now: i64, force: bool) -> Due {
    let Some(current) = current else {
        return Due::Yes("no certificate yet".into());
    };
    let wanted: BTreeSet<String> = settings
        .names
        .iter()
        .map(|n| n.as_str().to_string())
        .collect();
    if force {
        Due::Yes("forced".into())
    } else if current.names != wanted {
        Due::Yes("the certificate's names differ from server.acme.names".into())
    } else if now >= current.renew_at(settings.renew_before) {
        Due::Yes(format!("expires in {}", days(current.not_after - now)))
    } else {
        Due::No(format!(
            "not due: expires in {}, renewal from {}",
            days(current.not_after - now),
            days(current.renew_at(settings.renew_before) - now)
        ))
    }
}

fn days(seconds: i64) -> String {
    match seconds {
        s if s < 0 => "the past (expired)".into(),
        s if s < 86_400 => format!("{} hours", s / 3600),
        s => format!("{} days", s / 86_400),
    }
}

/// The leaf of the configured certificate file; `None` when there is none yet or it cannot
/// be read as a certificate (then a new one is due).
fn read_current(settings: &AcmeSettings) -> Result<Option<Current>, EngineError> {
    let bytes = match crate::files::read_limited(
        &settings.certificate.path,
        crate::files::REFERENCED_FILE_LIMIT,
    ) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => {
            return Err(EngineError::Usage(format!(
                "{}: cannot read {}: {e}",
                settings.certificate.key_path,
                settings.certificate.path.display()
            )));
        }
    };
    Ok(leaf_der(&bytes).and_then(|der| parse_leaf(&der)))
}

fn leaf_der(pem_text: &[u8]) -> Option<Vec<u8>> {
    pem::parse_many(pem_text)
        .ok()?
        .into_iter()
        .find(|b| b.tag() == "CERTIFICATE")
        .map(|b| b.contents().to_vec())
}

fn parse_leaf(der: &[u8]) -> Option<Current> {
    let (_, cert) = X509Certificate::from_der(der).ok()?;
    let names = cert
        .subject_alternative_name()
        .ok()
        .flatten()
        .map(|san| {
            san.value
                .general_names
                .iter()
                .filter_map(|n| match n {
                    GeneralName::DNSName(d) => Some(d.to_ascii_lowercase()),
                    _ => None,
                })
                .collect()
        })
        .unwrap_or_default();
    Some(Current {
        not_before: cert.validity().not_before.timestamp(),
        not_after: cert.validity().not_after.timestamp(),
        names,
    })
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt as _;

    use mailzone_records::Name;

    use super::*;

    fn settings(names: &[&str]) -> AcmeSettings {
        let file = |p: &str| mailzone_records::FileRef {
            path: PathBuf::from(p),
            key_path: "k".into(),
        };
        AcmeSettings {
            directory: "https://acme.test/dir".into(),
            contact: vec![],
            certificate: file("/tmp/c.pem"),
            private_key: file("/tmp/c.key"),
            names: names.iter().map(|n| Name::host(n).unwrap()).collect(),
            renew_before: 1.0 / 3.0,
            ca_certificate: None,
            reuse_key: true,
        }
    }

    fn current(names: &[&str]) -> Current {
        Current {
            not_before: 0,
            not_after: 90 * 86_400,
            names: names.iter().map(|n| n.to_string()).collect(),
        }
    }

    #[test]
    fn due_in_the_last_third_of_the_lifetime_or_when_names_change() {
        let s = settings(&["mail.example.org"]);
        let c = current(&["mail.example.org"]);
        assert_eq!(c.renew_at(s.renew_before), 60 * 86_400);
        assert!(matches!(due(&s, Some(&c), 59 * 86_400, false), Due::No(_)));
        assert!(matches!(due(&s, Some(&c), 60 * 86_400, false), Due::Yes(_)));
        assert!(matches!(due(&s, Some(&c), 86_400, true), Due::Yes(_)));
        assert!(matches!(due(&s, None, 0, false), Due::Yes(_)));
        let other = current(&["mail.example.org", "mta-sts.example.org"]);
        assert!(matches!(due(&s, Some(&other), 86_400, false), Due::Yes(_)));
    }

    #[test]
    fn challenge_records_are_single_adds_without_prerequisites() {
        let zone = Name::host("example.org").unwrap();
        let record = challenge_record(&Challenge {
            name: Name::host("mail.example.org").unwrap(),
            value: "abc".into(),
        })
        .unwrap();
        assert_eq!(record.name.as_str(), "_acme-challenge.mail.example.org");
        let changes = additions(&zone, &[record]);
        assert_eq!(changes.adds.len(), 1);
        assert!(changes.deletes.is_empty() && changes.prerequisites.is_empty());
    }

    #[test]
    fn temp_files_get_their_mode_before_any_byte() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("key.pem");
        let tmp = write_temp(&target, b"secret", KEY_MODE).unwrap();
        let mode = std::fs::metadata(&tmp).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert_eq!(tmp.parent(), target.parent());
    }
}
