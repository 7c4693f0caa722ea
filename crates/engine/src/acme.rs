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

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write as _;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use instant_acme::{
    Account, AccountBuilder, AccountCredentials, AuthorizationStatus, ChallengeType, Identifier,
    NewAccount, NewOrder, Order, OrderStatus, RetryPolicy,
};
use mailzone_records::diff::{ChangeSet, LiveRecord};
use mailzone_records::{
    AcmeSettings, DesiredRecord, DnsManagement, DnsRecordType, DnsServer, Name, RData, Record,
};
use mailzone_store::Store;
use rcgen::{CertificateParams, DistinguishedName, KeyPair, PublicKeyData as _};
use serde::Serialize;
use x509_parser::prelude::{FromDer, GeneralName, X509Certificate};

use crate::progress::Progress;
use crate::{EngineError, LoadedConfig, clock, connect, propagation};

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
    issue(loaded, settings, &account, &store, request.now_unix, &mut report, progress).await?;
    Ok(report)
}

/// Removes the challenge records an earlier renewal recorded and never removed (it was
/// killed, or its removal failed); returns the ones that still could not be removed.
async fn remove_left_behind(
    loaded: &LoadedConfig,
    store: &Store,
) -> Result<Vec<String>, EngineError> {
    let rows = store.acme_challenges().await?;
    let mut published: Vec<Published> = Vec::new();
    for row in rows {
        let (Ok(zone), Ok(name)) = (Name::owner(&row.zone), Name::owner(&row.name)) else {
            tracing::warn!(zone = %row.zone, name = %row.name, "unreadable ACME challenge row dropped");
            store.remove_acme_challenges(&[row]).await?;
            continue;
        };
        let Some(server) = loaded.config.dns_server(&row.dns_server) else {
            // The DNS server is gone from the config: nothing can remove the record now.
            tracing::warn!(
                zone = %row.zone,
                dns_server = %row.dns_server,
                "ACME challenge record left behind on a DNS server no longer configured"
            );
            continue;
        };
        let record = Record {
            name,
            ttl: CHALLENGE_TTL,
            data: RData::Txt(row.value.into_bytes()),
        };
        match published
            .iter_mut()
            .find(|p| p.zone == zone && p.server.name == server.name)
        {
            Some(p) => p.records.push(record),
            None => published.push(Published {
                server: server.clone(),
                zone,
                records: vec![record],
            }),
        }
    }
    if !published.is_empty() {
        tracing::info!(
            zones = published.len(),
            "removing ACME challenge records an earlier renewal left behind"
        );
    }
    Ok(remove(loaded, store, &published).await)
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

// ---------------------------------------------------------------------------------------
// The certificate in place, and when it is due.

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

// ---------------------------------------------------------------------------------------
// The account (RFC 8555 §7.3).

fn acme_error<'a>(
    settings: &'a AcmeSettings,
    step: &'static str,
) -> impl Fn(instant_acme::Error) -> EngineError + 'a {
    move |e| EngineError::Acme {
        directory: settings.directory.clone(),
        step,
        transient: transient(&e),
        reason: error_chain(&e),
    }
}

/// Problems that the same request will meet again (RFC 8555 §6.7); everything else
/// (network, rate limits, a challenge the CA did not see yet) may pass.
fn transient(e: &instant_acme::Error) -> bool {
    const PERMANENT: [&str; 10] = [
        "malformed",
        "rejectedIdentifier",
        "badCSR",
        "caa",
        "unsupportedIdentifier",
        "badSignatureAlgorithm",
        "externalAccountRequired",
        "userActionRequired",
        "invalidContact",
        "unsupportedContact",
    ];
    match e {
        instant_acme::Error::Api(problem) => !problem
            .r#type
            .as_deref()
            .is_some_and(|t| PERMANENT.iter().any(|p| t.ends_with(p))),
        instant_acme::Error::Unsupported(_) | instant_acme::Error::KeyRejected => false,
        _ => true,
    }
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let next = s.to_string();
        if !text.contains(&next) {
            text.push_str(": ");
            text.push_str(&next);
        }
        source = s.source();
    }
    text
}

fn builder(settings: &AcmeSettings) -> Result<AccountBuilder, EngineError> {
    match &settings.ca_certificate {
        Some(ca) => Account::builder_with_root(&ca.path).map_err(|e| {
            EngineError::Usage(format!(
                "{}: cannot use {} as the CA certificate: {}",
                ca.key_path,
                ca.path.display(),
                error_chain(&e)
            ))
        }),
        None => Account::builder().map_err(acme_error(settings, "setting up HTTPS")),
    }
}

/// The account for the directory: restored from the store, or created and stored.
async fn account(settings: &AcmeSettings, store: &Store, now: i64) -> Result<Account, EngineError> {
    if let Some(json) = store.acme_account(&settings.directory).await? {
        let credentials: AccountCredentials = serde_json::from_str(&json).map_err(|e| {
            EngineError::Usage(format!(
                "the stored ACME account for {} is unreadable ({}); delete its row from acme_accounts to make a new one",
                settings.directory,
                e.classify_name()
            ))
        })?;
        return builder(settings)?
            .from_credentials(credentials)
            .await
            .map_err(acme_error(settings, "restoring the account"));
    }
    let contact: Vec<&str> = settings.contact.iter().map(String::as_str).collect();
    let (account, credentials) = builder(settings)?
        .create(
            &NewAccount {
                contact: &contact,
                terms_of_service_agreed: true,
                only_return_existing: false,
            },
            settings.directory.clone(),
            None,
        )
        .await
        .map_err(acme_error(settings, "creating the account"))?;
    let json = zeroize::Zeroizing::new(serde_json::to_string(&credentials).map_err(|e| {
        EngineError::Usage(format!(
            "cannot store the ACME account: {}",
            e.classify_name()
        ))
    })?);
    store
        .put_acme_account(&settings.directory, &json, now)
        .await?;
    tracing::info!(directory = %settings.directory, "ACME account created");
    Ok(account)
}

trait ClassifyName {
    fn classify_name(&self) -> &'static str;
}

impl ClassifyName for serde_json::Error {
    /// The kind of a JSON error only: its message could quote secret material.
    fn classify_name(&self) -> &'static str {
        match self.classify() {
            serde_json::error::Category::Io => "I/O error",
            serde_json::error::Category::Syntax => "not JSON",
            serde_json::error::Category::Data => "unexpected fields",
            serde_json::error::Category::Eof => "truncated",
        }
    }
}

// ---------------------------------------------------------------------------------------
// The order (RFC 8555 §7.4) and its DNS-01 challenges (§8.4).

/// One challenge to publish: `_acme-challenge.<name>` TXT `<value>`.
#[derive(Debug, Clone)]
struct Challenge {
    name: Name,
    value: String,
}

/// Challenge records published in one zone, to be removed again.
struct Published {
    server: DnsServer,
    zone: Name,
    records: Vec<Record>,
}

async fn issue(
    loaded: &LoadedConfig,
    settings: &AcmeSettings,
    account: &Account,
    store: &Store,
    now: i64,
    report: &mut RenewReport,
    progress: &dyn Progress,
) -> Result<(), EngineError> {
    let identifiers: Vec<Identifier> = settings
        .names
        .iter()
        .map(|n| Identifier::Dns(n.as_str().to_string()))
        .collect();
    let mut order = account
        .new_order(&NewOrder::new(&identifiers))
        .await
        .map_err(acme_error(settings, "creating the order"))?;
    let challenges = pending_challenges(settings, &mut order).await?;
    report.challenges = challenges.len();
    let mut published = Vec::new();
    let mut result = publish(loaded, store, now, &challenges, &mut published, progress).await;
    if result.is_ok() {
        crate::crash::point("acme-challenge");
        result = validate_and_finalize(settings, &mut order, report).await;
    }
    report
        .leftover_challenges
        .extend(remove(loaded, store, &published).await);
    result
}

/// The DNS-01 challenge of every authorization still pending (a valid one needs none).
async fn pending_challenges(
    settings: &AcmeSettings,
    order: &mut Order,
) -> Result<Vec<Challenge>, EngineError> {
    let mut out = Vec::new();
    let mut authorizations = order.authorizations();
    while let Some(authz) = authorizations.next().await {
        let mut authz = authz.map_err(acme_error(settings, "reading an authorization"))?;
        match authz.status {
            AuthorizationStatus::Valid => continue,
            AuthorizationStatus::Pending => {}
            other => {
                return Err(EngineError::Acme {
                    directory: settings.directory.clone(),
                    step: "reading an authorization",
                    reason: format!("{} is {other:?}", authz.identifier()),
                    transient: true,
                });
            }
        }
        let identifier = authz.identifier().to_string();
        let challenge = authz
            .challenge(ChallengeType::Dns01)
            .ok_or_else(|| EngineError::Acme {
                directory: settings.directory.clone(),
                step: "reading an authorization",
                reason: format!("the CA offers no dns-01 challenge for {identifier}"),
                transient: false,
            })?;
        let name = Name::host(&identifier).map_err(|e| {
            EngineError::Usage(format!(
                "the CA names an unusable identifier {identifier}: {e}"
            ))
        })?;
        out.push(Challenge {
            name,
            value: challenge.key_authorization().dns_value(),
        });
    }
    Ok(out)
}

/// The zone (and its DNS server) that holds `name`'s challenge record.
fn zone_of<'a>(
    loaded: &'a LoadedConfig,
    name: &Name,
) -> Result<(&'a Name, &'a DnsServer), EngineError> {
    let domain =
        mailzone_records::config::managed_zone(name, &loaded.config.domains).ok_or_else(|| {
            EngineError::Usage(format!(
                "server.acme.names: {name} is in no zone whose DNS mailzone manages"
            ))
        })?;
    let DnsManagement::Automatic { dns_server, .. } = &domain.dns_management else {
        unreachable!("managed_zone returns domains under automatic DNS management")
    };
    let server = loaded.config.dns_server(dns_server).ok_or_else(|| {
        EngineError::Usage(format!(
            "domain {}: no DNS server {dns_server}",
            domain.name
        ))
    })?;
    Ok((&domain.zone, server))
}

/// Publishes every challenge record, one UPDATE per zone, and waits until each zone's
/// authoritative servers serve them. What was sent is pushed to `published` as it goes, so
/// the caller removes it whatever happens.
async fn publish(
    loaded: &LoadedConfig,
    store: &Store,
    now: i64,
    challenges: &[Challenge],
    published: &mut Vec<Published>,
    progress: &dyn Progress,
) -> Result<(), EngineError> {
    let mut by_zone: BTreeMap<(Name, String), (DnsServer, Vec<Record>)> = BTreeMap::new();
    for c in challenges {
        let (zone, server) = zone_of(loaded, &c.name)?;
        let record = challenge_record(c)?;
        by_zone
            .entry((zone.clone(), server.name.clone()))
            .or_insert_with(|| (server.clone(), vec![]))
            .1
            .push(record);
    }
    for ((zone, _), (server, records)) in by_zone {
        progress.step(&zone, "publishing ACME challenge records");
        let provider = connect::provider(loaded, &server).await?;
        let dns = |error| EngineError::Dns {
            zone: zone.to_string(),
            error,
        };
        let wanted: Vec<(Name, &'static str)> =
            records.iter().map(|r| (r.name.clone(), "TXT")).collect();
        let before = provider.read_zone(&zone, &wanted).await.map_err(dns)?;
        let before: Vec<LiveRecord> = before
            .records
            .into_iter()
            .filter(|l| wanted.contains(&(l.record.name.clone(), l.record.data.rtype())))
            .collect();
        let changes = additions(&zone, &records);
        let entry = Published {
            server: server.clone(),
            zone: zone.clone(),
            records,
        };
        store.add_acme_challenges(&entry.rows(), now).await?;
        let applied = match provider.apply(&changes).await {
            Ok(applied) => applied,
            Err(error) => {
                if !may_have_applied(&error) {
                    store.remove_acme_challenges(&entry.rows()).await?;
                }
                return Err(dns(error));
            }
        };
        published.push(entry);
        let serial = match applied.serial {
            Some(serial) => serial,
            None => provider.serial(&zone).await.map_err(dns)?,
        };
        let sent = AtomicU64::new(0);
        propagation::wait(&server, &zone, &changes, &before, serial, progress, &sent).await?;
        progress.step(
            &zone,
            "ACME challenge records served by every authoritative server",
        );
    }
    Ok(())
}

/// Whether an UPDATE that failed may still have been applied: no answer came, or one that
/// could not be read. An error RCODE or a request never sent changed nothing (RFC 2136
/// §3.8: the zone is changed only when the answer is NOERROR).
fn may_have_applied(error: &mailzone_dns::DnsError) -> bool {
    use mailzone_dns::Cause;
    !matches!(
        error.cause(),
        Cause::Rcode(_) | Cause::NotServed | Cause::Request
    )
}

fn challenge_record(c: &Challenge) -> Result<Record, EngineError> {
    let owner = c
        .name
        .prefixed("_acme-challenge")
        .map_err(|e| EngineError::Usage(format!("_acme-challenge.{}: {e}", c.name)))?;
    Ok(Record {
        name: owner,
        ttl: CHALLENGE_TTL,
        data: RData::Txt(c.value.clone().into_bytes()),
    })
}

/// Adds of single RRs with no prerequisite: nothing else at those names is touched.
fn additions(zone: &Name, records: &[Record]) -> ChangeSet {
    ChangeSet {
        zone: Some(zone.clone()),
        adds: records
            .iter()
            .map(|r| DesiredRecord {
                // The reason label only (providers ignore it): CAA is the family of
                // records about certificate issuance.
                record_type: DnsRecordType::Caa,
                record: r.clone(),
            })
            .collect(),
        ..ChangeSet::default()
    }
}

impl Published {
    /// The store's rows for these records.
    fn rows(&self) -> Vec<mailzone_store::AcmeChallenge> {
        self.records
            .iter()
            .filter_map(|r| match &r.data {
                RData::Txt(value) => Some(mailzone_store::AcmeChallenge {
                    zone: self.zone.to_string(),
                    dns_server: self.server.name.clone(),
                    name: r.name.to_string(),
                    value: String::from_utf8_lossy(value).into_owned(),
                }),
                _ => None,
            })
            .collect()
    }
}

/// Removes the challenge records that were published and forgets them in the store;
/// returns what could not be removed (still recorded, for the next renewal).
async fn remove(loaded: &LoadedConfig, store: &Store, published: &[Published]) -> Vec<String> {
    let mut leftover = Vec::new();
    for p in published {
        let changes = ChangeSet {
            zone: Some(p.zone.clone()),
            deletes: p
                .records
                .iter()
                .map(|r| (None, LiveRecord::from_record(r.clone())))
                .collect(),
            ..ChangeSet::default()
        };
        let result = match connect::provider(loaded, &p.server).await {
            Ok(provider) => provider
                .apply(&changes)
                .await
                .map(|_| ())
                .map_err(|e| e.to_string()),
            Err(e) => Err(e.to_string()),
        };
        let result = match result {
            Ok(()) => store
                .remove_acme_challenges(&p.rows())
                .await
                .map_err(|e| format!("removed from DNS, but the store did not forget them: {e}")),
            Err(reason) => Err(reason),
        };
        if let Err(reason) = result {
            tracing::warn!(zone = %p.zone, %reason, "ACME challenge records not removed");
            leftover.extend(
                p.records
                    .iter()
                    .map(|r| format!("{} TXT: {reason}", r.name)),
            );
        }
    }
    leftover
}

/// Tells the CA the challenges are ready, waits for the order, finalizes it with a CSR and
/// writes the chain and key.
async fn validate_and_finalize(
    settings: &AcmeSettings,
    order: &mut Order,
    report: &mut RenewReport,
) -> Result<(), EngineError> {
    let mut authorizations = order.authorizations();
    while let Some(authz) = authorizations.next().await {
        let mut authz = authz.map_err(acme_error(settings, "reading an authorization"))?;
        if authz.status != AuthorizationStatus::Pending {
            continue;
        }
        if let Some(mut challenge) = authz.challenge(ChallengeType::Dns01) {
            challenge.set_ready().await.map_err(acme_error(
                settings,
                "telling the CA the challenge is ready",
            ))?;
        }
    }
    let retries = RetryPolicy::new()
        .initial_delay(Duration::from_millis(250))
        .backoff(1.5)
        .timeout(Duration::from_secs(120));
    let status = order
        .poll_ready(&retries)
        .await
        .map_err(acme_error(settings, "waiting for validation"))?;
    if status != OrderStatus::Ready {
        return Err(EngineError::Acme {
            directory: settings.directory.clone(),
            step: "validation",
            reason: invalid_reason(order).await,
            transient: true,
        });
    }
    let (key, reused) = certificate_key(settings)?;
    let csr = csr(settings, &key)?;
    order
        .finalize_csr(&csr)
        .await
        .map_err(acme_error(settings, "finalizing the order"))?;
    let chain = order
        .poll_certificate(&retries)
        .await
        .map_err(acme_error(settings, "downloading the certificate"))?;
    let leaf = check_chain(settings, &chain, &key)?;
    write_files(settings, &chain, &key, reused)?;
    if !settings.reuse_key {
        write_next_key(settings)?;
    }
    report.outcome = Outcome::Issued;
    report.key_reused = reused;
    report.not_after = Some(leaf.not_after);
    report.renew_at = Some(leaf.renew_at(settings.renew_before));
    Ok(())
}

/// Why the CA marked the order invalid: the challenges' problem documents.
async fn invalid_reason(order: &mut Order) -> String {
    let mut reasons = Vec::new();
    let mut authorizations = order.authorizations();
    while let Some(Ok(mut authz)) = authorizations.next().await {
        let identifier = authz.identifier().to_string();
        if authz.refresh().await.is_err() {
            continue;
        }
        for c in &authz.challenges {
            if let Some(problem) = &c.error {
                reasons.push(format!("{identifier}: {problem}"));
            }
        }
    }
    if reasons.is_empty() {
        "the CA marked the order invalid".into()
    } else {
        format!("the CA marked the order invalid: {}", reasons.join("; "))
    }
}

// ---------------------------------------------------------------------------------------
// Key, CSR, chain and files.

/// `reuseKey = false`: where the key of the *next* renewal waits, beside the private key
/// (`mail.key` → `mail.key.next`, 0600). It is made one renewal ahead, so its `3 1 1` is
/// published as the next key long before a certificate uses it (RFC 7671 §8.1).
pub fn next_key_path(private_key: &Path) -> PathBuf {
    let mut name = private_key.as_os_str().to_owned();
    name.push(".next");
    PathBuf::from(name)
}

/// The SHA-256 of the SubjectPublicKeyInfo of the waiting next key (`reuseKey = false`),
/// `None` when there is none yet: the `3 1 1` digest published ahead of the switch.
pub fn next_key_digest(private_key: &Path) -> Result<Option<Vec<u8>>, String> {
    let path = next_key_path(private_key);
    let text =
        match crate::files::read_to_string_limited(&path, crate::files::REFERENCED_FILE_LIMIT) {
            Ok(text) => zeroize::Zeroizing::new(text),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(format!("cannot read {}: {e}", path.display())),
        };
    let key = KeyPair::from_pem(&text).map_err(|_| {
        format!(
            "{} is not a PEM private key mailzone can use",
            path.display()
        )
    })?;
    Ok(Some(mailzone_records::tlsa::spki_sha256(
        &key.subject_public_key_info(),
    )))
}

/// The key for this order: with `reuseKey`, the existing key when it can be read; without,
/// the announced next key when one waits (`next_key_path`); else a new ECDSA P-256 key.
fn certificate_key(settings: &AcmeSettings) -> Result<(KeyPair, bool), EngineError> {
    let path = &settings.private_key.path;
    if !settings.reuse_key {
        let next = next_key_path(path);
        if let Ok(text) =
            crate::files::read_to_string_limited(&next, crate::files::REFERENCED_FILE_LIMIT)
        {
            let text = zeroize::Zeroizing::new(text);
            if let Ok(key) = KeyPair::from_pem(&text) {
                return Ok((key, false));
            }
            tracing::warn!(
                "{} is not a usable key; a new key is made instead (it was not announced)",
                next.display()
            );
        }
    }
    if settings.reuse_key {
        match crate::files::read_to_string_limited(path, crate::files::REFERENCED_FILE_LIMIT) {
            Ok(text) => {
                let text = zeroize::Zeroizing::new(text);
                let key = KeyPair::from_pem(&text).map_err(|_| {
                    EngineError::Usage(format!(
                        "{}: {} is not a PEM private key mailzone can use (ECDSA P-256/P-384, Ed25519 or RSA in PKCS#8); move it away to get a new key",
                        settings.private_key.key_path,
                        path.display()
                    ))
                })?;
                return Ok((key, true));
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                return Err(EngineError::Usage(format!(
                    "{}: cannot read {}: {e}",
                    settings.private_key.key_path,
                    path.display()
                )));
            }
        }
    }
    let key = KeyPair::generate()
        .map_err(|e| EngineError::Usage(format!("cannot generate a private key: {e}")))?;
    Ok((key, false))
}

/// A CSR (RFC 2986) for the names, with an empty subject: the names are in the SAN.
fn csr(settings: &AcmeSettings, key: &KeyPair) -> Result<Vec<u8>, EngineError> {
    let fail = |e: rcgen::Error| EngineError::Usage(format!("cannot make the CSR: {e}"));
    let names: Vec<String> = settings
        .names
        .iter()
        .map(|n| n.as_str().to_string())
        .collect();
    let mut params = CertificateParams::new(names).map_err(fail)?;
    params.distinguished_name = DistinguishedName::new();
    Ok(params.serialize_request(key).map_err(fail)?.der().to_vec())
}

/// The issued chain is for our key and our names, or it is not written.
fn check_chain(
    settings: &AcmeSettings,
    chain: &str,
    key: &KeyPair,
) -> Result<Current, EngineError> {
    let fail = |reason: String| EngineError::Acme {
        directory: settings.directory.clone(),
        step: "checking the certificate",
        reason,
        transient: false,
    };
    let der =
        leaf_der(chain.as_bytes()).ok_or_else(|| fail("no certificate in the answer".into()))?;
    let (_, cert) =
        X509Certificate::from_der(&der).map_err(|e| fail(format!("unreadable leaf: {e}")))?;
    if cert.public_key().subject_public_key.data.as_ref() != key.der_bytes() {
        return Err(fail(
            "the leaf certificate is not for the key of the CSR".into(),
        ));
    }
    let leaf = parse_leaf(&der).ok_or_else(|| fail("unreadable leaf".into()))?;
    let wanted: BTreeSet<String> = settings
        .names
        .iter()
        .map(|n| n.as_str().to_string())
        .collect();
    if leaf.names != wanted {
        return Err(fail(format!(
            "the certificate names {:?}, not the requested {:?}",
            leaf.names, wanted
        )));
    }
    Ok(leaf)
}

/// Writes the key (unless reused) and the chain, each to a temporary file beside its target
/// then renamed over it: a reader sees the old file or the new one, never half of one.
fn write_files(
    settings: &AcmeSettings,
    chain: &str,
    key: &KeyPair,
    reused: bool,
) -> Result<(), EngineError> {
    let key_file = &settings.private_key;
    let cert_file = &settings.certificate;
    let fail = |file: &mailzone_records::FileRef, e: std::io::Error| {
        EngineError::Usage(format!(
            "{}: cannot write {}: {e}",
            file.key_path,
            file.path.display()
        ))
    };
    for file in [key_file, cert_file] {
        if let Some(dir) = file.path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| fail(file, e))?;
        }
    }
    let key_tmp = if reused {
        None
    } else {
        let pem = zeroize::Zeroizing::new(key.serialize_pem());
        Some(write_temp(&key_file.path, pem.as_bytes(), KEY_MODE).map_err(|e| fail(key_file, e))?)
    };
    let cert_tmp =
        write_temp(&cert_file.path, chain.as_bytes(), CERT_MODE).map_err(|e| fail(cert_file, e))?;
    if let Some(tmp) = key_tmp {
        std::fs::rename(&tmp, &key_file.path).map_err(|e| fail(key_file, e))?;
    } else {
        std::fs::set_permissions(&key_file.path, std::fs::Permissions::from_mode(KEY_MODE))
            .map_err(|e| fail(key_file, e))?;
    }
    std::fs::rename(&cert_tmp, &cert_file.path).map_err(|e| fail(cert_file, e))?;
    Ok(())
}

/// Makes the key the next renewal will use and puts it where [`next_key_path`] says; the
/// next publication announces it as the next key (TLSA `3 1 1` beside the current one).
fn write_next_key(settings: &AcmeSettings) -> Result<(), EngineError> {
    let target = next_key_path(&settings.private_key.path);
    let fail = |e: std::io::Error| {
        EngineError::Usage(format!(
            "{}: cannot write the next key {}: {e}",
            settings.private_key.key_path,
            target.display()
        ))
    };
    let key = KeyPair::generate()
        .map_err(|e| EngineError::Usage(format!("cannot generate a private key: {e}")))?;
    let pem = zeroize::Zeroizing::new(key.serialize_pem());
    let tmp = write_temp(&target, pem.as_bytes(), KEY_MODE).map_err(fail)?;
    std::fs::rename(&tmp, &target).map_err(fail)
}

/// A new file beside `target` (same directory, so the rename is atomic), created with
/// `mode` before any byte is written, and flushed to disk.
fn write_temp(target: &Path, bytes: &[u8], mode: u32) -> std::io::Result<PathBuf> {
    let name = target
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = target.with_file_name(format!(
        ".{name}.{}.{}.tmp",
        std::process::id(),
        clock::unix_now()
    ));
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(&tmp)?;
    let written = file.write_all(bytes).and_then(|()| file.sync_all());
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    Ok(tmp)
}

#[cfg(test)]
mod tests {
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
