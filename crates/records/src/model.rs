//! The model of a mail deployment, validated: every name, address and policy here is known
//! to be well formed. Built by [`crate::config`] from the config file and the API-defined
//! domains and DNS servers. Names follow Stalwart's (`Domain`, `DnsServer`, `publishRecords`).

use std::net::{Ipv4Addr, Ipv6Addr};
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::name::Name;
use crate::record::RecordPurpose;

/// Facts about the mail deployment shared by every domain.
#[derive(Debug, Clone, PartialEq, Hash)]
pub struct Server {
    pub hostname: Name,
    pub ipv4: Vec<Ipv4Addr>,
    pub ipv6: Vec<Ipv6Addr>,
    pub mail_exchangers: Vec<MailExchanger>,
    pub services: Services,
    /// `mailto:postmaster` or a full URI; a `mailto:` without `@` is completed per domain.
    pub report_address: String,
    pub tls: Option<TlsFiles>,
    /// Default TTL of every record.
    pub ttl: u32,
    /// `[server.acme]`: certificates from an ACME CA over DNS-01 (RFC 8555 §8.4).
    pub acme: Option<AcmeSettings>,
}

/// `[server.acme]`, validated: where to get the certificate, for which names, where to
/// write it and when to renew it.
#[derive(Debug, Clone, PartialEq)]
pub struct AcmeSettings {
    /// The ACME directory URL (https).
    pub directory: String,
    /// `mailto:` contacts of the account.
    pub contact: Vec<String>,
    /// Where the chain (leaf first) is written.
    pub certificate: FileRef,
    /// Where the private key is written (mode 0600).
    pub private_key: FileRef,
    /// The names of the certificate, each inside a zone whose DNS mailzone manages.
    pub names: Vec<Name>,
    /// Renew when less than this fraction of the certificate's lifetime is left.
    pub renew_before: f64,
    /// A PEM CA certificate to trust for the directory's HTTPS (test CAs such as pebble).
    pub ca_certificate: Option<FileRef>,
    /// Keep the private key across renewals, so the TLSA `3 1 1` digest does not change.
    pub reuse_key: bool,
}

/// By hand for the `f64`, hashed as its bits; every field named, so that a new one cannot
/// be left out unnoticed.
impl std::hash::Hash for AcmeSettings {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        let AcmeSettings {
            directory,
            contact,
            certificate,
            private_key,
            names,
            renew_before,
            ca_certificate,
            reuse_key,
        } = self;
        directory.hash(state);
        contact.hash(state);
        certificate.hash(state);
        private_key.hash(state);
        names.hash(state);
        renew_before.to_bits().hash(state);
        ca_certificate.hash(state);
        reuse_key.hash(state);
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct MailExchanger {
    pub hostname: Name,
    pub priority: u16,
}

/// The client services offered; `None` means the family is not offered at all.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct Services {
    pub imap: Option<Service>,
    pub pop3: Option<Service>,
    pub submission: Option<Service>,
    pub jmap: Option<Service>,
    pub caldav: Option<Service>,
    pub carddav: Option<Service>,
}

/// One offered service: the implicit-TLS port and, when offered, the cleartext
/// (STARTTLS or plain HTTP) port.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Service {
    pub hostname: Name,
    pub port: u16,
    pub cleartext_port: Option<u16>,
}

#[cfg(test)]
impl Service {
    /// A service on `hostname` offered over implicit TLS only.
    pub(crate) fn tls_only(hostname: &Name, port: u16) -> Service {
        Service {
            hostname: hostname.clone(),
            port,
            cleartext_port: None,
        }
    }
}

/// The service families of RFC 6186, RFC 8314, RFC 8620 and RFC 6764, in SRV order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ServiceFamily {
    Submission,
    Imap,
    Pop3,
    Jmap,
    Caldav,
    Carddav,
}

impl ServiceFamily {
    pub const ALL: [ServiceFamily; 6] = [
        ServiceFamily::Submission,
        ServiceFamily::Imap,
        ServiceFamily::Pop3,
        ServiceFamily::Jmap,
        ServiceFamily::Caldav,
        ServiceFamily::Carddav,
    ];

    /// The config key of the family.
    pub fn key(self) -> &'static str {
        match self {
            ServiceFamily::Submission => "submission",
            ServiceFamily::Imap => "imap",
            ServiceFamily::Pop3 => "pop3",
            ServiceFamily::Jmap => "jmap",
            ServiceFamily::Caldav => "caldav",
            ServiceFamily::Carddav => "carddav",
        }
    }

    /// Default implicit-TLS and cleartext ports (RFC 8314 §7.3, RFC 6186 §3.1,
    /// RFC 8620 §2.2, RFC 6764 §3).
    pub fn default_ports(self) -> (u16, u16) {
        match self {
            ServiceFamily::Submission => (465, 587),
            ServiceFamily::Imap => (993, 143),
            ServiceFamily::Pop3 => (995, 110),
            ServiceFamily::Jmap => (443, 80),
            ServiceFamily::Caldav => (443, 80),
            ServiceFamily::Carddav => (443, 80),
        }
    }

    /// SRV service labels: the implicit-TLS one and the cleartext one (JMAP has none:
    /// RFC 8620 §2.2 defines only `_jmap._tcp`).
    pub fn srv_labels(self) -> (&'static str, Option<&'static str>) {
        match self {
            ServiceFamily::Submission => ("_submissions", Some("_submission")),
            ServiceFamily::Imap => ("_imaps", Some("_imap")),
            ServiceFamily::Pop3 => ("_pop3s", Some("_pop3")),
            ServiceFamily::Jmap => ("_jmap", None),
            ServiceFamily::Caldav => ("_caldavs", Some("_caldav")),
            ServiceFamily::Carddav => ("_carddavs", Some("_carddav")),
        }
    }

    /// True for families served over HTTP, whose cleartext port is not a TLS endpoint.
    pub fn is_http(self) -> bool {
        matches!(
            self,
            ServiceFamily::Jmap | ServiceFamily::Caldav | ServiceFamily::Carddav
        )
    }
}

impl Services {
    pub fn get(&self, family: ServiceFamily) -> Option<&Service> {
        match family {
            ServiceFamily::Submission => self.submission.as_ref(),
            ServiceFamily::Imap => self.imap.as_ref(),
            ServiceFamily::Pop3 => self.pop3.as_ref(),
            ServiceFamily::Jmap => self.jmap.as_ref(),
            ServiceFamily::Caldav => self.caldav.as_ref(),
            ServiceFamily::Carddav => self.carddav.as_ref(),
        }
    }
}

/// Certificate files named in the config (read by the engine, parsed by [`crate::tlsa`]).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TlsFiles {
    pub certificate: FileRef,
    /// The next key (public or private key PEM) for a rollover: its `3 1 1` is published
    /// before the certificate changes (RFC 7671 §8.1).
    pub next_key: Option<FileRef>,
    /// How long a replaced key's or issuer's TLSA record stays published after the
    /// certificate files stopped naming it (RFC 7671 §8.1: until no server presents it and
    /// no client holds the old RRset).
    pub retire_after: std::time::Duration,
}

/// A file named in the config: the resolved path and the config key that named it, so that
/// a problem with the file is reported against the key a person wrote.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct FileRef {
    pub path: PathBuf,
    pub key_path: String,
}

/// A mail domain.
#[derive(Debug, Clone, PartialEq, Hash, Serialize, Deserialize)]
pub struct Domain {
    pub name: Name,
    /// The zone the records live in (`origin`): the domain itself unless configured.
    pub zone: Name,
    pub ttl: u32,
    pub spf: SpfPolicy,
    pub dmarc: DmarcPolicy,
    pub tls_rpt: TlsRptPolicy,
    pub mta_sts: MtaStsPolicy,
    pub caa: Option<CaaPolicy>,
    pub dkim_management: DkimManagement,
    pub dns_management: DnsManagement,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct SpfPolicy {
    /// The qualifier of the closing `all` (RFC 7208 §4.6.2): `-`, `~` or `?`.
    pub all_qualifier: char,
    /// Extra mechanisms placed after `mx` (e.g. `include:_spf.provider.example`).
    pub mechanisms: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DmarcDisposition {
    None,
    Quarantine,
    Reject,
}

impl DmarcDisposition {
    pub fn as_str(self) -> &'static str {
        match self {
            DmarcDisposition::None => "none",
            DmarcDisposition::Quarantine => "quarantine",
            DmarcDisposition::Reject => "reject",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Alignment {
    #[serde(rename = "r", alias = "relaxed")]
    Relaxed,
    #[serde(rename = "s", alias = "strict")]
    Strict,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct DmarcPolicy {
    pub policy: DmarcDisposition,
    pub subdomain_policy: Option<DmarcDisposition>,
    /// Report URIs, already completed (`mailto:postmaster@<domain>`).
    pub rua: Vec<String>,
    pub ruf: Vec<String>,
    pub adkim: Option<Alignment>,
    pub aspf: Option<Alignment>,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct TlsRptPolicy {
    pub enabled: bool,
    pub rua: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MtaStsMode {
    Enforce,
    Testing,
    None,
}

impl MtaStsMode {
    pub fn as_str(self) -> &'static str {
        match self {
            MtaStsMode::Enforce => "enforce",
            MtaStsMode::Testing => "testing",
            MtaStsMode::None => "none",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct MtaStsPolicy {
    pub enabled: bool,
    pub mode: MtaStsMode,
    pub max_age: u32,
    /// The `mx:` patterns of the policy; by default the exchangers' host names.
    pub mx: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct CaaPolicy {
    pub issuers: Vec<Name>,
    pub issuers_wild: Option<Vec<Name>>,
    pub account_uri: Option<String>,
    pub validation_methods: Vec<String>,
    pub iodef: Option<String>,
}

/// DKIM signing algorithms (RFC 6376 §3.3, RFC 8463).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum DkimAlgorithm {
    #[serde(rename = "ed25519-sha256")]
    Ed25519Sha256,
    #[serde(rename = "rsa-sha256")]
    RsaSha256,
}

impl DkimAlgorithm {
    pub fn as_str(self) -> &'static str {
        match self {
            DkimAlgorithm::Ed25519Sha256 => "ed25519-sha256",
            DkimAlgorithm::RsaSha256 => "rsa-sha256",
        }
    }

    /// The one-letter tag used by the default selector template (`202611e`, `202611r`).
    pub fn letter(self) -> char {
        match self {
            DkimAlgorithm::Ed25519Sha256 => 'e',
            DkimAlgorithm::RsaSha256 => 'r',
        }
    }

    pub fn parse(s: &str) -> Option<DkimAlgorithm> {
        match s {
            "ed25519-sha256" | "ed25519" => Some(DkimAlgorithm::Ed25519Sha256),
            "rsa-sha256" | "rsa" => Some(DkimAlgorithm::RsaSha256),
            _ => None,
        }
    }
}

/// The lifecycle stage of a DKIM key: `Pending` → `Active` → `Retiring` → `Retired`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum DkimStage {
    Pending,
    Active,
    Retiring,
    Retired,
}

impl DkimStage {
    pub fn as_str(self) -> &'static str {
        match self {
            DkimStage::Pending => "Pending",
            DkimStage::Active => "Active",
            DkimStage::Retiring => "Retiring",
            DkimStage::Retired => "Retired",
        }
    }

    pub fn parse(s: &str) -> Option<DkimStage> {
        [
            DkimStage::Pending,
            DkimStage::Active,
            DkimStage::Retiring,
            DkimStage::Retired,
        ]
        .into_iter()
        .find(|stage| stage.as_str() == s)
    }

    /// Stages whose key must be in DNS.
    pub fn is_published(self) -> bool {
        !matches!(self, DkimStage::Retired)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum DkimManagement {
    /// Keys the operator made, read from files.
    Manual { keys: Vec<ManualDkimKey> },
    /// Keys mailzone generates and keeps in its state database.
    Automatic {
        algorithms: Vec<DkimAlgorithm>,
        selector_template: String,
        /// The size of the RSA keys mailzone makes (`rsaBits`: 2048, 3072 or 4096).
        rsa_bits: usize,
        rotation: DkimRotation,
        /// A command (argv, run without a shell) to run after a key became `Active` or
        /// was withdrawn from DNS, e.g. to re-export the keys and reload the MTA; empty
        /// for none.
        on_key_change: Vec<String>,
        /// `delegateTo`: the keys live in a provider's zone, the domain only holds CNAMEs.
        delegation: Option<DkimDelegation>,
    },
}

/// Delegated DKIM: the domain's zone holds one stable CNAME per selector slot,
/// `<slot>._domainkey.<domain>` → `<slot>.<domain>.<zone>`, and the TXT keys are published
/// and rotated in the provider's zone `zone` through the DNS server `dns_server`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct DkimDelegation {
    /// The provider's zone (its apex): the keys are published under it.
    pub zone: Name,
    /// The `[dnsServer.<name>]` that publishes `zone`.
    pub dns_server: String,
}

impl DkimDelegation {
    /// The fixed selector slots of an algorithm: `e1`, `e2` (Ed25519), `r1`, `r2` (RSA).
    /// A new key takes the slot no published key holds, so rotation alternates them.
    pub fn slots(algorithm: DkimAlgorithm) -> [String; 2] {
        let letter = algorithm.letter();
        [format!("{letter}1"), format!("{letter}2")]
    }

    /// Where the key of `selector` is published: `<selector>.<domain>.<zone>`.
    pub fn key_name(&self, selector: &str, domain: &Name) -> Result<Name, crate::name::NameError> {
        self.zone
            .prefixed(&format!("{selector}.{}", domain.as_str()))
    }
}

impl Domain {
    /// Where the key record of `selector` is published: `<selector>._domainkey.<domain>`
    /// (RFC 6376 §3.6.2.1), or with `delegateTo` the provider-zone name its CNAME points to.
    pub fn dkim_key_record_name(&self, selector: &str) -> Result<Name, crate::name::NameError> {
        match self.dkim_management.delegation() {
            Some(delegation) => delegation.key_name(selector, &self.name),
            None => crate::dkim::record_name(selector, &self.name),
        }
    }
}

impl DkimManagement {
    /// The delegation of automatic keys, if any.
    pub fn delegation(&self) -> Option<&DkimDelegation> {
        match self {
            DkimManagement::Automatic { delegation, .. } => delegation.as_ref(),
            DkimManagement::Manual { .. } => None,
        }
    }

    /// The size of the RSA keys made for the domain: the configured `rsaBits`, else the
    /// default.
    pub fn rsa_bits(&self) -> usize {
        match self {
            DkimManagement::Automatic { rsa_bits, .. } => *rsa_bits,
            DkimManagement::Manual { .. } => crate::dkim::GENERATED_RSA_BITS,
        }
    }
}

/// When automatic keys move on: a key is replaced `rotate_after` its creation,
/// the replaced key stays published `retire_after` once the new one is active (mail signed
/// just before the switch still verifies), and is deleted `delete_after` its withdrawal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct DkimRotation {
    pub rotate_after: std::time::Duration,
    pub retire_after: std::time::Duration,
    pub delete_after: std::time::Duration,
}

impl Default for DkimRotation {
    fn default() -> DkimRotation {
        DkimRotation {
            rotate_after: std::time::Duration::from_secs(90 * 86_400),
            retire_after: std::time::Duration::from_secs(7 * 86_400),
            delete_after: std::time::Duration::from_secs(30 * 86_400),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ManualDkimKey {
    pub selector: String,
    /// One value for every key naming the same file (a hosting config names one file for
    /// thousands of domains): its `key_path` is that of the first key naming it, where a
    /// problem with the file is reported.
    pub private_key_file: std::sync::Arc<FileRef>,
}

/// The default selector template: year, month, algorithm letter (`202611e`).
pub const DEFAULT_SELECTOR_TEMPLATE: &str = "{year}{month}{algorithm}";

/// A deployment: the server, its domains in config order, and the DNS servers they
/// publish through.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    pub server: Server,
    pub domains: Vec<Domain>,
    pub dns_servers: Vec<DnsServer>,
    pub serve: ServeSettings,
    /// `[notify]`: where `mailzone serve` reports changed check findings.
    pub notify: NotifySettings,
    /// [`Config::domain`]'s index, made on its first use.
    pub(crate) domain_index: DomainIndex,
}

/// The domains by name, for [`Config::domain`], made on its first use: a service with
/// 100,000 domains looks one up per task and per API call, where a scan of the list would
/// cost a pass over every domain.
#[derive(Default)]
pub(crate) struct DomainIndex(std::sync::OnceLock<crate::hash_index::HashIndex>);

impl DomainIndex {
    /// The positions in `domains` of the names hashing like `name` (usually one: its own).
    fn candidates(&self, domains: &[Domain], name: &Name) -> impl Iterator<Item = usize> + '_ {
        let index = self.0.get_or_init(|| {
            crate::hash_index::HashIndex::new(domains.iter().map(|d| d.name.as_str()).enumerate())
        });
        index.candidates(name.as_str())
    }
}

/// A cache, not part of the value: configs are equal whatever their indexes hold, and a
/// clone makes its own.
impl PartialEq for DomainIndex {
    fn eq(&self, _: &DomainIndex) -> bool {
        true
    }
}

impl Clone for DomainIndex {
    fn clone(&self) -> DomainIndex {
        DomainIndex::default()
    }
}

impl std::fmt::Debug for DomainIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DomainIndex")
    }
}

/// `[serve]`: how `mailzone serve` listens and how often it checks the domains.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServeSettings {
    /// Certificate chain and private key for HTTPS on the service's listeners; without
    /// them the service speaks plain HTTP (for a TLS-terminating reverse proxy in front).
    pub tls: Option<ServeTls>,
    /// `serve.checkInterval`: how often the service checks every domain; `None` when not
    /// written (the `--check-interval` flag or the default applies).
    pub check_interval: Option<std::time::Duration>,
    /// `serve.checkNameservers`: the servers the scheduled check asks instead of each
    /// zone's authoritative servers (empty: the authoritative servers).
    pub check_nameservers: Vec<std::net::SocketAddr>,
    /// `serve.checkConnect` (default `true`): the service's checks (scheduled, API, web
    /// UI) connect to the mail servers to judge their TLS; `false` where outbound SMTP is
    /// blocked and every probe would only report a connection failure.
    pub check_connect: bool,
}

/// What an empty `[serve]` table means.
impl Default for ServeSettings {
    fn default() -> Self {
        ServeSettings {
            tls: None,
            check_interval: None,
            check_nameservers: Vec::new(),
            check_connect: true,
        }
    }
}

/// `[notify]`: the channels told when a domain's check findings change. Both may be set;
/// with neither, the scheduled check only updates the metrics.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct NotifySettings {
    pub webhook: Option<WebhookSettings>,
    pub smtp: Option<SmtpSettings>,
}

impl NotifySettings {
    pub fn is_empty(&self) -> bool {
        self.webhook.is_none() && self.smtp.is_none()
    }
}

/// `[notify.webhook]`: a JSON POST signed with HMAC-SHA256 (RFC 2104) under a shared
/// secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookSettings {
    /// `http://` or `https://` URL.
    pub url: String,
    /// The signing secret: `secretFile` or `secretEnv`, read when a message is sent.
    pub secret: SecretSource,
    pub timeout: std::time::Duration,
}

/// `[notify.smtp]`: a mail through an SMTP relay (RFC 5321; submission, RFC 6409).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SmtpSettings {
    pub host: String,
    pub port: u16,
    pub security: SmtpSecurity,
    /// SMTP AUTH (RFC 4954) user; its password is in `password`.
    pub username: Option<String>,
    pub password: Option<SecretSource>,
    pub from: String,
    pub to: Vec<String>,
    pub timeout: std::time::Duration,
}

/// How the SMTP connection is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmtpSecurity {
    /// STARTTLS (RFC 3207) or no delivery: `starttls = "required"`, the default.
    StartTlsRequired,
    /// STARTTLS when the relay offers it, plain text otherwise.
    StartTlsOpportunistic,
    /// Plain text (`starttls = "never"`): for a relay on the same host or a test sink.
    Plain,
    /// TLS from the first byte (`implicitTls = true`, RFC 8314 §3.3), port 465.
    ImplicitTls,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServeTls {
    pub certificate: FileRef,
    pub private_key: FileRef,
}

impl Config {
    pub fn domain(&self, name: &Name) -> Option<&Domain> {
        let indexed = self
            .domain_index
            .candidates(&self.domains, name)
            .filter_map(|at| self.domains.get(at))
            .find(|d| &d.name == name);
        // `domains` is public: a list changed after the index was made is scanned.
        indexed.or_else(|| self.domains.iter().find(|d| &d.name == name))
    }

    pub fn dns_server(&self, name: &str) -> Option<&DnsServer> {
        self.dns_servers.iter().find(|s| s.name == name)
    }
}

/// How a domain's records reach DNS (the seeds' `dnsManagement`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum DnsManagement {
    /// The operator publishes the `dnsZoneFile` text by hand.
    Manual,
    /// mailzone publishes and reconciles through a [`DnsServer`].
    Automatic {
        /// The key of the `[dnsServer.<name>]` table.
        dns_server: String,
        /// The record types mailzone may write.
        publish_records: Vec<RecordPurpose>,
    },
}

/// The types published when `publishRecords` is not given: Stalwart's default list.
/// `tlsa` needs DNSSEC to mean anything and `address` is often managed elsewhere, so both
/// are opt-in.
pub const DEFAULT_PUBLISH_RECORDS: [RecordPurpose; 11] = [
    RecordPurpose::Dkim,
    RecordPurpose::Spf,
    RecordPurpose::Mx,
    RecordPurpose::Dmarc,
    RecordPurpose::Srv,
    RecordPurpose::MtaSts,
    RecordPurpose::TlsRpt,
    RecordPurpose::Caa,
    RecordPurpose::AutoConfig,
    RecordPurpose::AutoConfigLegacy,
    RecordPurpose::AutoDiscover,
];

/// Where zones are published (the seeds' `DnsServer`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DnsServer {
    pub name: String,
    pub provider: DnsProvider,
    /// TTL of the records written through this server (overrides `server.ttl`).
    pub ttl: Option<u32>,
    pub timeout: std::time::Duration,
    pub propagation_delay: std::time::Duration,
    pub polling_interval: std::time::Duration,
    pub propagation_timeout: std::time::Duration,
    /// Servers to poll for propagation (`authoritativeServers`); `None` (the key absent):
    /// the zone's NS, found when polling; an empty list: none, only the delay is waited.
    pub authoritative_servers: Option<Vec<std::net::SocketAddr>>,
    /// The least time between two requests to this server, from `maxRequestsPerSecond`;
    /// `None`: unlimited.
    pub request_interval: Option<std::time::Duration>,
    /// Zones published through this server at the same time (`maxConcurrentZones`).
    pub max_concurrent_zones: usize,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DnsProvider {
    /// RFC 2136 dynamic updates, signed with TSIG (RFC 8945).
    Rfc2136 {
        host: String,
        port: u16,
        protocol: Transport,
        key_name: Option<String>,
        key: Option<SecretSource>,
        algorithm: TsigAlgorithm,
    },
    /// The PowerDNS Authoritative HTTP API.
    PowerDns {
        url: String,
        server_id: String,
        key: SecretSource,
        /// Where the server answers DNS: serials are read there with one SOA query.
        dns_address: Option<std::net::SocketAddr>,
    },
    /// Zone files on disk, loaded by BIND, NSD or Knot.
    ZoneFile {
        /// `{zone}` stands for the zone's name.
        path: String,
        layout: ZoneFileLayout,
        /// With the include layout: the zone file that `$INCLUDE`s mailzone's file.
        zone_file: Option<String>,
        /// Run after each write (argv, no shell); empty: none.
        reload_command: Vec<String>,
    },
    /// One of the HTTP providers of the `dns-update` library, by its name.
    DnsUpdate {
        kind: String,
        /// Every setting the config gave, by key; secrets by where they are.
        settings: std::collections::BTreeMap<String, Setting>,
    },
}

impl DnsProvider {
    /// The config `kind`.
    pub fn kind(&self) -> &str {
        match self {
            DnsProvider::Rfc2136 { .. } => "rfc2136",
            DnsProvider::PowerDns { .. } => "powerdns",
            DnsProvider::ZoneFile { .. } => "zonefile",
            DnsProvider::DnsUpdate { kind, .. } => kind,
        }
    }
}

/// Which file the zone-file provider writes (`layout`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ZoneFileLayout {
    /// The zone's whole master file: mailzone's records between two marker comments.
    #[default]
    Zone,
    /// A file of mailzone's own that the zone `$INCLUDE`s.
    Include,
}

/// A provider setting: plain text, or a secret known only by where it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Setting {
    Plain(String),
    Secret(SecretSource),
}

/// How requests reach a DNS server (`protocol`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Transport {
    /// Every message over TCP (RFC 7766).
    #[default]
    Tcp,
    /// Over UDP, falling back to TCP when the answer is truncated (TC) or the request does
    /// not fit in one UDP message.
    Udp,
}

impl std::fmt::Display for Transport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Transport::Tcp => "tcp",
            Transport::Udp => "udp",
        })
    }
}

impl std::str::FromStr for Transport {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "tcp" => Ok(Transport::Tcp),
            "udp" => Ok(Transport::Udp),
            other => Err(format!("unknown protocol `{other}`; use tcp or udp")),
        }
    }
}

/// The TSIG algorithms mailzone signs with (RFC 8945 §6: HMAC-SHA256 is mandatory to
/// implement; the older HMAC-MD5 and HMAC-SHA1 are not offered).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum TsigAlgorithm {
    #[default]
    #[serde(rename = "hmac-sha256")]
    HmacSha256,
    #[serde(rename = "hmac-sha384")]
    HmacSha384,
    #[serde(rename = "hmac-sha512")]
    HmacSha512,
}

impl TsigAlgorithm {
    /// The name used in configs and on the wire (`hmac-sha256`).
    pub fn name(self) -> &'static str {
        match self {
            TsigAlgorithm::HmacSha256 => "hmac-sha256",
            TsigAlgorithm::HmacSha384 => "hmac-sha384",
            TsigAlgorithm::HmacSha512 => "hmac-sha512",
        }
    }
}

impl std::fmt::Display for TsigAlgorithm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for TsigAlgorithm {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().trim_end_matches('.').to_ascii_lowercase().as_str() {
            "hmac-sha256" => Ok(TsigAlgorithm::HmacSha256),
            "hmac-sha384" => Ok(TsigAlgorithm::HmacSha384),
            "hmac-sha512" => Ok(TsigAlgorithm::HmacSha512),
            other => Err(format!(
                "unsupported TSIG algorithm `{other}`; use hmac-sha256, hmac-sha384 or hmac-sha512"
            )),
        }
    }
}

/// Where a secret comes from. The value itself is only read by the engine, at the moment
/// it is needed, and never printed.
#[derive(Clone, PartialEq, Eq)]
pub enum SecretSource {
    Inline(zeroize::Zeroizing<String>),
    File(FileRef),
    Env(String),
}

impl std::fmt::Debug for SecretSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SecretSource::Inline(_) => f.write_str("Inline(<redacted>)"),
            SecretSource::File(file) => write!(f, "File({})", file.path.display()),
            SecretSource::Env(var) => write!(f, "Env({var})"),
        }
    }
}
