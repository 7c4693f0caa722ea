//! What a check of one domain knows: the model, the desired records, the keys and
//! certificate digests mailzone holds, and how to ask DNS.

use std::time::Duration;

use mailzone_records::dkim::DkimPrivateKey;
use mailzone_records::tlsa::TlsaKeys;
use mailzone_records::{DesiredRecord, Domain, Server};

use crate::lookup::Lookup;

/// Options that change what the checks do.
#[derive(Debug, Clone)]
pub struct CheckOptions {
    /// Fetch `https://mta-sts.<domain>/.well-known/mta-sts.txt` (off in tests without a web
    /// server; the fetch failing is then not a finding).
    pub fetch_mta_sts: bool,
    /// DNSSEC trust anchors (DS or DNSKEY records in zone-file form) for test zones; empty
    /// means the root's.
    pub trust_anchors: Vec<String>,
    /// Time allowed for one DNS question.
    pub timeout: Duration,
    /// Where the MTA-STS policy is fetched from, `{domain}` standing for the mail domain;
    /// `None` is RFC 8461 §3.3's `https://mta-sts.{domain}/.well-known/mta-sts.txt`. Tests
    /// point it at a local web server.
    pub mta_sts_url: Option<String>,
    /// Time allowed for fetching the MTA-STS policy.
    pub fetch_timeout: Duration,
    /// Connect to the mail servers (MX port 25, submission, IMAP) and judge their TLS
    /// (`live_tls.rs`); `mailzone check --no-connect` turns it off.
    pub live_tls: bool,
    /// Time allowed for one live connection: connect, dialogue and TLS handshake.
    pub connect_timeout: Duration,
    /// Trust anchors for the mail servers' certificates besides Mozilla's roots
    /// (`--ca-file`: a private or test CA).
    pub extra_roots: Vec<rustls_pki_types::CertificateDer<'static>>,
    /// Where live connections go for the standard ports (tests: loopback ports).
    pub service_ports: crate::live_tls::ServicePorts,
    /// The live connections of this run, shared by its domains (a mail host serving many
    /// domains is probed once).
    pub live_tls_cache: crate::live_tls::ProbeCache,
    /// Time allowed for all the questions of one domain: a question still unanswered then
    /// fails (`dns-lookup-failed`, naming the servers and the question), and the domain's
    /// other findings are reported as usual.
    pub domain_timeout: Duration,
}

impl Default for CheckOptions {
    fn default() -> Self {
        CheckOptions {
            fetch_mta_sts: true,
            trust_anchors: Vec::new(),
            timeout: Duration::from_secs(5),
            mta_sts_url: None,
            fetch_timeout: Duration::from_secs(10),
            live_tls: true,
            connect_timeout: Duration::from_secs(10),
            extra_roots: Vec::new(),
            service_ports: crate::live_tls::ServicePorts::default(),
            live_tls_cache: crate::live_tls::ProbeCache::default(),
            domain_timeout: Duration::from_secs(30),
        }
    }
}

/// Everything a check of one domain may use.
pub struct DomainContext<'a> {
    pub server: &'a Server,
    pub domain: &'a Domain,
    /// The records the planner wants for this domain (all types).
    pub desired: &'a [DesiredRecord],
    /// The DKIM private keys mailzone holds for this domain: (selector, key).
    pub dkim_keys: &'a [(String, DkimPrivateKey)],
    /// TLSA digests of the configured certificate (and next key).
    pub tlsa: Option<&'a TlsaKeys>,
    pub lookup: &'a dyn Lookup,
    pub options: &'a CheckOptions,
}
