//! Live TLS of the mail servers, as internet.nl's and mox's testers do it: every address of
//! every served MX host on port 25 (SMTP, STARTTLS per RFC 3207), and the submission
//! (465 implicit TLS, 587 STARTTLS; RFC 8314 §3.3, RFC 6409) and IMAP (993, RFC 8314 §3.2)
//! endpoints the config offers or the domain's SRV records name (RFC 6186). For each:
//! connect, handshake, and judge what the server presents.
//!
//! The rules and where they come from:
//! - No connection to an offered endpoint → `tls-connect-failed`; EHLO without STARTTLS
//!   → `tls-starttls-missing` (mail travels in clear text); a protocol-version alert, or a
//!   server choosing a version below 1.2, → `tls-version-old` (RFC 8996 forbids TLS 1.0
//!   and 1.1; rustls offers only 1.2 and 1.3, so older servers are seen through that
//!   failure, and a completed handshake is always TLS ≥ 1.2); any other failure of the
//!   dialogue or the handshake → `tls-handshake-failed`.
//! - The certificate: the chain must lead to a trusted root (Mozilla's roots, as the
//!   MTA-STS fetch, plus `CheckOptions::extra_roots`) → `tls-certificate-untrusted`; the
//!   leaf must be valid now → `tls-certificate-expired`; the host name must be among its
//!   names (RFC 6125 §6.4) → `tls-certificate-name-mismatch`. On port 25 these are errors
//!   when the domain's MTA-STS policy enforces (RFC 8461 §4.2: senders refuse) or a DANE-TA
//!   record matched (RFC 7672 §3.1.2: names and dates are checked), warnings otherwise
//!   (opportunistic senders still deliver, encrypted); on submission and IMAP, errors.
//! - DANE (RFC 7672 §3): when TLSA records exist at `_<port>._tcp.<host>`, one of them
//!   must match what the server presents — DANE-EE (usage 3) the leaf, DANE-TA (usage 2)
//!   a certificate of the presented chain — independently of the configured certificate
//!   file (`tlsa.rs` judges that one) → `tls-dane-mismatch`. A DANE-EE match makes the
//!   certificate acceptable whatever its issuer, names and dates (RFC 7672 §3.1.1). The
//!   DNSSEC status of the TLSA records is `tlsa.rs`'s concern (`tlsa-not-authenticated`).
//!
//! Addresses come from the checker's [`crate::lookup::Lookup`], never the system resolver;
//! only globally reachable addresses and loopback are connected to
//! ([`crate::connect::may_connect`]: a zone naming a documentation or private address is
//! skipped silently). Each connection has `CheckOptions::connect_timeout` in all; the
//! endpoints of a domain are probed concurrently, and each (address, mode, host) once per
//! run through `CheckOptions::live_tls_cache`.

pub mod certificate;
mod probe;
pub mod smtp;

use std::net::{IpAddr, SocketAddr};

use mailzone_records::tlsa::{MATCHING_SHA256, SELECTOR_SPKI, USAGE_DANE_EE, spki_sha256};
use mailzone_records::zonefile::hex;
use mailzone_records::{MtaStsMode, Name, RData, RecordPurpose};
use rustls_pki_types::CertificateDer;

pub use probe::{Mode, Outcome, ProbeCache, ProbeKey, Session};

use crate::context::DomainContext;
use crate::finding::{Finding, Severity};
use crate::support;

crate::codes::declare! {
    purpose: Some(RecordPurpose::Mx);
    CONNECT_FAILED: Error, "tls-connect-failed",
        "a mail server address does not accept connections on the port it serves";
    STARTTLS_MISSING: Error, "tls-starttls-missing",
        "the server does not offer STARTTLS in its EHLO answer: mail travels in clear text";
    HANDSHAKE_FAILED: Error, "tls-handshake-failed",
        "the SMTP/IMAP dialogue or the TLS handshake failed before a certificate was presented";
    VERSION_OLD: Error, "tls-version-old",
        "the server speaks only TLS older than 1.2 (RFC 8996)";
    UNTRUSTED: Error, "tls-certificate-untrusted",
        "the presented certificate chain does not lead to a trusted root";
    EXPIRED: Error, "tls-certificate-expired",
        "the presented certificate has expired or is not yet valid";
    NAME_MISMATCH: Error, "tls-certificate-name-mismatch",
        "the host name is not among the names of the presented certificate";
    DANE_MISMATCH: Error, "tls-dane-mismatch" (Some(RecordPurpose::Tlsa)),
        "TLSA records exist but none matches the certificate the server presents";
    NOT_PROBED: Info, "tls-not-probed",
        "this machine has no route to a mail server address (e.g. no IPv6 here): its TLS was not checked";
}

/// Where live connections go for each standard port; tests point them at loopback ports.
/// An endpoint on another port (a custom one in the config or an SRV record) is connected
/// to as it is; the DNS names (`_25._tcp.<host>` TLSA) always use the standard port.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServicePorts {
    pub smtp: u16,
    pub submissions: u16,
    pub submission: u16,
    pub imaps: u16,
}

impl Default for ServicePorts {
    fn default() -> Self {
        ServicePorts {
            smtp: 25,
            submissions: 465,
            submission: 587,
            imaps: 993,
        }
    }
}

impl ServicePorts {
    /// The port connected to for an endpoint served on `port`.
    pub fn connect_port(&self, port: u16) -> u16 {
        match port {
            25 => self.smtp,
            465 => self.submissions,
            587 => self.submission,
            993 => self.imaps,
            other => other,
        }
    }

    /// Applies `service=port` (`smtp`, `submissions`, `submission`, `imaps`).
    pub fn set(&mut self, spec: &str) -> Result<(), String> {
        let (service, port) = spec
            .split_once('=')
            .ok_or_else(|| format!("{spec:?}: expected SERVICE=PORT, e.g. smtp=2525"))?;
        let port: u16 = port
            .parse()
            .map_err(|_| format!("{spec:?}: {port:?} is not a port number"))?;
        let slot = match service {
            "smtp" => &mut self.smtp,
            "submissions" => &mut self.submissions,
            "submission" => &mut self.submission,
            "imaps" => &mut self.imaps,
            _ => {
                return Err(format!(
                    "{spec:?}: unknown service {service:?} (smtp, submissions, submission, imaps)"
                ));
            }
        };
        *slot = port;
        Ok(())
    }
}

/// The certificates of a PEM file (`--ca-file`), as extra trust anchors.
pub fn parse_ca_pem(text: &[u8]) -> Result<Vec<CertificateDer<'static>>, String> {
    let blocks = pem::parse_many(text).map_err(|e| format!("not a PEM file: {e}"))?;
    let certs: Vec<CertificateDer<'static>> = blocks
        .into_iter()
        .filter(|b| b.tag() == "CERTIFICATE")
        .map(|b| CertificateDer::from(b.into_contents()))
        .collect();
    if certs.is_empty() {
        return Err("no `-----BEGIN CERTIFICATE-----` block found".into());
    }
    Ok(certs)
}

/// One endpoint to probe.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Endpoint {
    host: Name,
    port: u16,
    mode: Mode,
    purpose: RecordPurpose,
}

impl Endpoint {
    fn label(&self) -> String {
        let what = match (self.purpose, self.mode) {
            (RecordPurpose::Mx, _) => "SMTP (STARTTLS)",
            (_, Mode::SmtpStarttls) => "submission (STARTTLS)",
            (_, Mode::SmtpImplicit) => "submission (implicit TLS)",
            (_, Mode::ImapImplicit) => "IMAP (implicit TLS)",
        };
        format!("{what} on {} port {}", self.host, self.port)
    }
}

pub async fn check(ctx: &DomainContext<'_>) -> Vec<Finding> {
    if !ctx.options.live_tls {
        return Vec::new();
    }
    let endpoints = endpoints(ctx).await;
    futures::future::join_all(endpoints.iter().map(|e| check_endpoint(ctx, e)))
        .await
        .into_iter()
        .flatten()
        .collect()
}

/// The served MX hosts (port 25), and the submission and IMAP endpoints the config offers
/// or the domain's SRV records name. DNS failures are other checks' findings.
async fn endpoints(ctx: &DomainContext<'_>) -> Vec<Endpoint> {
    let domain = &ctx.domain.name;
    let mut out: Vec<Endpoint> = Vec::new();
    let mut push = |e: Endpoint| {
        if !out.contains(&e) {
            out.push(e);
        }
    };
    let srv_names = [
        ("_submissions._tcp", Mode::SmtpImplicit),
        ("_submission._tcp", Mode::SmtpStarttls),
        ("_imaps._tcp", Mode::ImapImplicit),
    ];
    let srv_queries = srv_names.iter().map(|(label, _)| async move {
        match domain.prefixed(label) {
            Ok(name) => support::query(ctx, &name, "SRV").await.ok(),
            Err(_) => None,
        }
    });
    let (mx, srvs) = tokio::join!(
        support::query(ctx, domain, "MX"),
        futures::future::join_all(srv_queries)
    );
    if let Ok(answer) = mx {
        for (_, host) in support::exchangers(&answer.records) {
            if !host.is_root() {
                push(Endpoint {
                    host,
                    port: 25,
                    mode: Mode::SmtpStarttls,
                    purpose: RecordPurpose::Mx,
                });
            }
        }
    }
    let services = &ctx.server.services;
    if let Some(s) = &services.submission {
        push(service(&s.hostname, s.port, Mode::SmtpImplicit));
        if let Some(port) = s.cleartext_port {
            push(service(&s.hostname, port, Mode::SmtpStarttls));
        }
    }
    if let Some(s) = &services.imap {
        push(service(&s.hostname, s.port, Mode::ImapImplicit));
    }
    for ((_, mode), answer) in srv_names.iter().zip(srvs) {
        for record in answer.iter().flat_map(|a| &a.records) {
            if let RData::Srv { port, target, .. } = &record.record.data
                && !target.is_root()
            {
                push(service(target, *port, *mode));
            }
        }
    }
    out
}

fn service(host: &Name, port: u16, mode: Mode) -> Endpoint {
    Endpoint {
        host: host.clone(),
        port,
        mode,
        purpose: RecordPurpose::Srv,
    }
}

async fn check_endpoint(ctx: &DomainContext<'_>, endpoint: &Endpoint) -> Vec<Finding> {
    let Ok((addresses, _)) = support::addresses(ctx, &endpoint.host).await else {
        return Vec::new(); // `dns-lookup-failed` from the MX and SRV checks
    };
    let mut allowed: Vec<IpAddr> = Vec::new();
    for ip in addresses {
        match crate::connect::may_connect(ip) {
            Ok(()) => allowed.push(ip),
            Err(why) => tracing::debug!("live TLS: {} not connected to: {why}", endpoint.label()),
        }
    }
    if allowed.is_empty() {
        return Vec::new();
    }
    let tlsa_name = endpoint
        .host
        .prefixed(&format!("_{}._tcp", endpoint.port))
        .ok();
    let tlsa_query = async {
        match &tlsa_name {
            Some(name) => support::query(ctx, name, "TLSA").await.ok(),
            None => None,
        }
    };
    let port = ctx.options.service_ports.connect_port(endpoint.port);
    let host = endpoint.host.as_str().to_string();
    let ehlo_name = ctx.server.hostname.as_str().to_string();
    let settings = probe::Settings {
        ehlo_name: &ehlo_name,
        timeout: ctx.options.connect_timeout,
        extra_roots: &ctx.options.extra_roots,
    };
    let probes = futures::future::join_all(allowed.iter().map(|ip| {
        let key = ProbeKey {
            addr: SocketAddr::new(*ip, port),
            mode: endpoint.mode,
            host: host.clone(),
        };
        let settings = &settings;
        async move {
            let outcome = ctx.options.live_tls_cache.probe(&key, settings).await;
            (key.addr, outcome)
        }
    }));
    let (tlsa, probes) = tokio::join!(tlsa_query, probes);
    let tlsa = support::tlsa_records(tlsa.iter().flat_map(|a| &a.records));
    let mut findings = Vec::new();
    for (addr, outcome) in probes {
        let judged = Judged {
            ctx,
            endpoint,
            addr,
            tlsa: &tlsa,
            tlsa_name: tlsa_name.as_ref(),
        };
        findings.extend(judged.findings(&outcome));
    }
    findings
}

/// One probe's outcome, judged for one endpoint of one domain.
struct Judged<'a> {
    ctx: &'a DomainContext<'a>,
    endpoint: &'a Endpoint,
    addr: SocketAddr,
    tlsa: &'a [support::TlsaRecord<'a>],
    tlsa_name: Option<&'a Name>,
}

impl Judged<'_> {
    fn finding(&self, code: &'static crate::codes::Code, message: String) -> Finding {
        let f = Finding::new(code, self.endpoint.host.to_string(), message);
        if self.endpoint.purpose == RecordPurpose::Mx || code.id == DANE_MISMATCH.id {
            f
        } else {
            f.typed(self.endpoint.purpose)
        }
    }

    fn at(&self) -> String {
        format!("{} ({})", self.endpoint.label(), self.addr)
    }

    fn who(&self) -> &'static str {
        if self.endpoint.purpose == RecordPurpose::Mx {
            "senders"
        } else {
            "mail clients"
        }
    }

    fn findings(&self, outcome: &Outcome) -> Vec<Finding> {
        let at = self.at();
        match outcome {
            Outcome::Unreachable(why) => vec![
                self.finding(
                    CONNECT_FAILED,
                    format!("{at} does not accept connections: {} cannot reach it", self.who()),
                )
                .seen(why.clone())
                .expected(format!("a server accepting connections at {}", self.addr))
                .fix(format!(
                    "start the server on port {}, or open that port to the Internet in the firewall (or remove the address from DNS)",
                    self.endpoint.port
                )),
            ],
            Outcome::NoLocalRoute(why) => vec![
                self.finding(
                    NOT_PROBED,
                    format!("{at} was not checked: this machine has no route to it"),
                )
                .seen(why.clone())
                .fix("check from a machine with a route to that address (an IPv6 address needs IPv6 here), or pass --no-connect"),
            ],
            Outcome::NoStarttls(ehlo) => vec![
                self.finding(
                    STARTTLS_MISSING,
                    format!("{at} does not offer STARTTLS: mail to and from it travels in clear text (RFC 3207)"),
                )
                .seen(ehlo.clone())
                .expected("STARTTLS among the EHLO extensions")
                .fix("install a certificate and enable TLS (Postfix: smtpd_tls_chain_files and smtpd_tls_security_level = may)"),
            ],
            Outcome::OldVersion(detail) => vec![
                self.finding(
                    VERSION_OLD,
                    format!("{at} refused TLS 1.2 and 1.3: it speaks only older versions, which RFC 8996 forbids and current {} refuse (they fall back to clear text or fail)", self.who()),
                )
                .seen(detail.clone())
                .expected("TLS 1.2 or 1.3")
                .fix("enable TLS 1.2 and 1.3 in the server (and update its TLS library)"),
            ],
            Outcome::Failed { step, detail } => vec![
                self.finding(
                    HANDSHAKE_FAILED,
                    format!("{at}: the session failed at {step}, before a certificate was presented"),
                )
                .seen(detail.clone())
                .expected("a completed TLS handshake")
                .fix("look at the server's log for this connection"),
            ],
            Outcome::Tls(session) => self.certificate(session),
        }
    }

    /// The findings about the presented certificate and the TLSA records.
    fn certificate(&self, session: &Session) -> Vec<Finding> {
        let at = self.at();
        let Some(leaf) = session.chain.first().and_then(|d| certificate::leaf(d)) else {
            return vec![
                self.finding(
                    HANDSHAKE_FAILED,
                    format!("{at} presented no certificate that parses as X.509"),
                )
                .seen(format!("{} certificate(s)", session.chain.len()))
                .expected("an X.509 certificate chain"),
            ];
        };
        let mut findings = Vec::new();
        let matches = |usage: u8| {
            self.tlsa.iter().any(|t| {
                t.usage == usage
                    && certificate::tlsa_matches(
                        t.usage,
                        t.selector,
                        t.matching,
                        t.data,
                        &session.chain,
                    )
            })
        };
        let dane_ee = matches(USAGE_DANE_EE);
        let dane_ta = matches(mailzone_records::tlsa::USAGE_DANE_TA);
        if !self.tlsa.is_empty() && !dane_ee && !dane_ta {
            let name = self
                .tlsa_name
                .map(|n| n.to_string())
                .unwrap_or_else(|| self.endpoint.host.to_string());
            let spki = x509_parser::prelude::FromDer::from_der(session.chain[0].as_slice())
                .ok()
                .map(
                    |(_, c): (_, x509_parser::certificate::X509Certificate<'_>)| {
                        spki_sha256(c.public_key().raw)
                    },
                );
            let wanted = spki.map(|d| {
                format!(
                    "{name} IN TLSA {USAGE_DANE_EE} {SELECTOR_SPKI} {MATCHING_SHA256} {}",
                    hex(&d)
                )
            });
            findings.push(
                Finding::new(
                    DANE_MISMATCH,
                    name.clone(),
                    format!(
                        "no TLSA record at {name} matches the certificate {at} presents ({}): DANE-enabled {} will not connect (RFC 7672 §3)",
                        leaf.subject,
                        self.who()
                    ),
                )
                .seen(support::lines(self.tlsa.iter().map(|t| t.record)))
                .expected(wanted.clone().unwrap_or_else(|| "a record matching the presented certificate".into()))
                .fix(match wanted {
                    Some(w) => format!("publish {w} (the key the server presents), or install the certificate the TLSA records name"),
                    None => "install the certificate the TLSA records name".into(),
                }),
            );
        }
        if dane_ee {
            return findings; // RFC 7672 §3.1.1: issuer, names and dates are not checked
        }
        let strict =
            self.endpoint.purpose != RecordPurpose::Mx || dane_ta || self.mta_sts_enforced();
        let severity = if strict {
            Severity::Error
        } else {
            Severity::Warning
        };
        let consequence = if self.endpoint.purpose != RecordPurpose::Mx {
            "mail clients refuse the connection".to_string()
        } else if strict {
            "senders enforcing MTA-STS or DANE will not deliver (RFC 8461 §4.2, RFC 7672 §3.1.2)"
                .to_string()
        } else {
            "senders that authenticate the server (MTA-STS, DANE) would not deliver; opportunistic TLS still encrypts".to_string()
        };
        if let (Err(why), false) = (&session.trust, dane_ta) {
            findings.push(
                self.finding(
                    UNTRUSTED,
                    format!("the certificate {at} presents ({}, issued by {}) is not trusted: {consequence}", leaf.subject, leaf.issuer),
                )
                .severity(severity)
                .seen(why.clone())
                .expected("a chain from a trusted CA (or a matching DANE-EE TLSA record)")
                .fix("install a certificate from a public CA with its intermediates (leaf first), or publish a `3 1 1` TLSA record for it in a signed zone"),
            );
        }
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
            .unwrap_or(0);
        if now < leaf.not_before || now > leaf.not_after {
            let state = if now > leaf.not_after {
                "has expired"
            } else {
                "is not yet valid"
            };
            findings.push(
                self.finding(
                    EXPIRED,
                    format!(
                        "the certificate {at} presents ({}) {state}: {consequence}",
                        leaf.subject
                    ),
                )
                .severity(severity)
                .seen(format!(
                    "valid from {} to {}",
                    date(leaf.not_before),
                    date(leaf.not_after)
                ))
                .expected(format!("a certificate valid on {}", date(now)))
                .fix("renew the certificate and reload the server"),
            );
        }
        if !certificate::covers(&leaf.names, self.endpoint.host.as_str()) {
            findings.push(
                self.finding(
                    NAME_MISMATCH,
                    format!(
                        "the certificate {at} presents does not name {}: {consequence}",
                        self.endpoint.host
                    ),
                )
                .severity(severity)
                .seen(if leaf.names.is_empty() {
                    "no DNS names".to_string()
                } else {
                    leaf.names.join(", ")
                })
                .expected(self.endpoint.host.as_str().to_string())
                .fix(format!(
                    "install a certificate whose subjectAltName includes {}",
                    self.endpoint.host.as_str()
                )),
            );
        }
        findings
    }

    fn mta_sts_enforced(&self) -> bool {
        let policy = &self.ctx.domain.mta_sts;
        policy.enabled && policy.mode == MtaStsMode::Enforce
    }
}

/// `YYYY-MM-DD` of a Unix time.
fn date(unix: i64) -> String {
    let (y, m, d) = mailzone_records::calendar::utc_date(unix);
    format!("{y:04}-{m:02}-{d:02}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_are_remapped_by_service() {
        let mut ports = ServicePorts::default();
        assert_eq!(ports.connect_port(25), 25);
        ports.set("smtp=2525").unwrap();
        ports.set("imaps=9993").unwrap();
        assert_eq!(ports.connect_port(25), 2525);
        assert_eq!(ports.connect_port(993), 9993);
        assert_eq!(ports.connect_port(465), 465);
        assert_eq!(ports.connect_port(10025), 10025);
        assert!(ports.set("pop3=1").is_err());
        assert!(ports.set("smtp").is_err());
        assert!(ports.set("smtp=x").is_err());
    }

    #[test]
    fn ca_files_need_certificates() {
        let pem = std::fs::read(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../examples/certs/mail.example.org.pem"
        ))
        .unwrap();
        assert_eq!(parse_ca_pem(&pem).unwrap().len(), 2);
        assert!(
            parse_ca_pem(b"-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n").is_err()
        );
    }
}
