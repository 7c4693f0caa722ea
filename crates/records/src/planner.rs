//! The planner: every record one mail domain needs, computed from the
//! model alone. Deterministic: the same input gives the same records in the same order.

use std::collections::BTreeSet;

use crate::dkim::{self, DkimSelectorKey};
use crate::model::{DkimDelegation, Domain, Server, ServiceFamily};
use crate::name::{Name, NameError};
use crate::record::{DesiredRecord, RData, Record, RecordPurpose};
use crate::tlsa::{self, TlsaKeys};
use crate::{autoconfig, caa, dmarc, mtasts, spf, srv, tlsrpt};

pub mod inputs;

/// Everything the planner needs for one domain. Keys and certificate digests are resolved
/// by the caller (the engine reads files and the store), so planning does no I/O.
#[derive(Debug, Clone, Copy)]
pub struct PlanInput<'a> {
    pub server: &'a Server,
    pub domain: &'a Domain,
    /// The DKIM keys to publish (every key whose stage is published).
    pub dkim_keys: &'a [DkimSelectorKey],
    /// TLSA digests of the configured certificate chain, if any.
    pub tlsa: Option<&'a TlsaKeys>,
}

/// A record name the planner would have to build is not a valid DNS name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{domain}: cannot build the {purpose} record name `{labels}.{domain}`: {source}")]
pub struct PlanError {
    pub domain: String,
    pub purpose: RecordPurpose,
    pub labels: String,
    pub source: NameError,
}

/// Plans every record of a domain, ordered by [`RecordPurpose::ALL`], then owner name, then
/// data.
pub fn plan(input: PlanInput<'_>) -> Result<Vec<DesiredRecord>, PlanError> {
    let mut planner = Planner {
        input,
        records: Vec::new(),
    };
    planner.mx();
    planner.addresses();
    planner.spf();
    planner.dkim()?;
    planner.dmarc()?;
    planner.tls_rpt()?;
    planner.mta_sts()?;
    planner.srv()?;
    planner.auto_config()?;
    planner.caa();
    planner.tlsa()?;
    let mut records = planner.records;
    records.sort_by(|a, b| {
        (a.purpose, &a.record.name, &a.record.data).cmp(&(
            b.purpose,
            &b.record.name,
            &b.record.data,
        ))
    });
    records.dedup();
    Ok(records)
}

struct Planner<'a> {
    input: PlanInput<'a>,
    records: Vec<DesiredRecord>,
}

impl Planner<'_> {
    fn domain(&self) -> &Domain {
        self.input.domain
    }

    fn server(&self) -> &Server {
        self.input.server
    }

    fn push(&mut self, purpose: RecordPurpose, name: Name, data: RData) {
        let ttl = self.domain().ttl;
        self.records.push(DesiredRecord {
            purpose,
            record: Record { name, ttl, data },
        });
    }

    /// Pushes a record at `labels` below the domain.
    fn push_at(
        &mut self,
        purpose: RecordPurpose,
        labels: &str,
        data: RData,
    ) -> Result<(), PlanError> {
        let name = self.name(purpose, labels)?;
        self.push(purpose, name, data);
        Ok(())
    }

    fn name(&self, purpose: RecordPurpose, labels: &str) -> Result<Name, PlanError> {
        self.domain()
            .name
            .prefixed(labels)
            .map_err(|source| PlanError {
                domain: self.domain().name.as_str().to_string(),
                purpose,
                labels: labels.to_string(),
                source,
            })
    }

    fn in_zone(&self, host: &Name) -> bool {
        host.is_within(&self.domain().zone)
    }

    /// Hosts inside the zone that run on this server, and so get its addresses, SPF and
    /// TLSA: the server host, exchangers and service hosts.
    fn own_hosts_in_zone(&self) -> BTreeSet<Name> {
        let server = self.server();
        let mut hosts = BTreeSet::new();
        hosts.insert(server.hostname.clone());
        hosts.extend(server.mail_exchangers.iter().map(|mx| mx.hostname.clone()));
        hosts.extend(
            ServiceFamily::ALL
                .into_iter()
                .filter_map(|f| server.services.get(f))
                .map(|s| s.hostname.clone()),
        );
        hosts.retain(|h| self.in_zone(h));
        hosts
    }

    /// RFC 5321 §5.1: MX records name the exchangers with their preference.
    fn mx(&mut self) {
        let apex = self.domain().name.clone();
        for mx in self.server().mail_exchangers.clone() {
            let data = RData::Mx {
                preference: mx.priority,
                exchange: mx.hostname,
            };
            self.push(RecordPurpose::Mx, apex.clone(), data);
        }
    }

    /// A/AAAA for the mail hosts inside the zone (hosts outside live in another zone).
    fn addresses(&mut self) {
        let server = self.server().clone();
        for host in self.own_hosts_in_zone() {
            for ip in &server.ipv4 {
                self.push(RecordPurpose::Address, host.clone(), RData::A(*ip));
            }
            for ip in &server.ipv6 {
                self.push(RecordPurpose::Address, host.clone(), RData::Aaaa(*ip));
            }
        }
    }

    fn spf(&mut self) {
        let policy = self.domain().spf.clone();
        let apex = self.domain().name.clone();
        self.push(
            RecordPurpose::Spf,
            apex.clone(),
            RData::Txt(spf::domain_value(&policy).into_bytes()),
        );
        let exchangers: BTreeSet<Name> = self
            .server()
            .mail_exchangers
            .iter()
            .map(|mx| mx.hostname.clone())
            .filter(|h| self.in_zone(h) && h != &apex)
            .collect();
        for host in exchangers {
            let value = spf::host_value(&policy).into_bytes();
            self.push(RecordPurpose::Spf, host, RData::Txt(value));
        }
    }

    /// RFC 6376 §3.6.2.1: `<selector>._domainkey.<domain>`. Delegated keys: one CNAME per
    /// slot there, always (RFC 1034 §3.6.2: the resolver follows it to the TXT), and the
    /// TXT at `<slot>.<domain>.<delegateTo>`, published in the provider's zone.
    fn dkim(&mut self) -> Result<(), PlanError> {
        if let Some(delegation) = self.domain().dkim_management.delegation().cloned() {
            let algorithms = match &self.domain().dkim_management {
                crate::model::DkimManagement::Automatic { algorithms, .. } => algorithms.clone(),
                crate::model::DkimManagement::Manual { .. } => Vec::new(),
            };
            let domain = self.domain().name.clone();
            let error = |labels: String, source| PlanError {
                domain: domain.as_str().to_string(),
                purpose: RecordPurpose::Dkim,
                labels,
                source,
            };
            for algorithm in algorithms {
                for slot in DkimDelegation::slots(algorithm) {
                    let name = self.name(RecordPurpose::Dkim, &format!("{slot}._domainkey"))?;
                    let target = delegation
                        .key_name(&slot, &domain)
                        .map_err(|e| error(format!("{slot}.{}", delegation.zone.as_str()), e))?;
                    self.push(RecordPurpose::Dkim, name, RData::Cname(target));
                }
            }
            for key in self.input.dkim_keys {
                let name = delegation.key_name(&key.selector, &domain).map_err(|e| {
                    error(format!("{}.{}", key.selector, delegation.zone.as_str()), e)
                })?;
                let data = RData::Txt(key.key.txt_value().into_bytes());
                self.push(RecordPurpose::Dkim, name, data);
            }
            return Ok(());
        }
        for key in self.input.dkim_keys {
            let name = self.name(RecordPurpose::Dkim, &format!("{}._domainkey", key.selector))?;
            let data = RData::Txt(key.key.txt_value().into_bytes());
            self.push(RecordPurpose::Dkim, name, data);
        }
        Ok(())
    }

    /// RFC 7489 §6.1: `_dmarc.<domain>`.
    fn dmarc(&mut self) -> Result<(), PlanError> {
        let name = self.name(RecordPurpose::Dmarc, "_dmarc")?;
        let value = dmarc::value(&self.domain().dmarc);
        self.push(RecordPurpose::Dmarc, name, RData::Txt(value.into_bytes()));
        Ok(())
    }

    /// RFC 8460 §3: `_smtp._tls.<domain>`.
    fn tls_rpt(&mut self) -> Result<(), PlanError> {
        let policy = self.domain().tls_rpt.clone();
        if !policy.enabled || policy.rua.is_empty() {
            return Ok(());
        }
        let name = self.name(RecordPurpose::TlsRpt, "_smtp._tls")?;
        self.push(
            RecordPurpose::TlsRpt,
            name,
            RData::Txt(tlsrpt::value(&policy.rua).into_bytes()),
        );
        Ok(())
    }

    /// RFC 8461 §3.1 and §3.3: the policy host and the `_mta-sts` id record.
    fn mta_sts(&mut self) -> Result<(), PlanError> {
        let policy = self.domain().mta_sts.clone();
        if !policy.enabled {
            return Ok(());
        }
        let host = self.name(RecordPurpose::MtaSts, "mta-sts")?;
        let target = self.server().hostname.clone();
        self.push(RecordPurpose::MtaSts, host, RData::Cname(target));
        let id_name = self.name(RecordPurpose::MtaSts, "_mta-sts")?;
        let value = mtasts::txt_value(&mtasts::policy_text(&policy));
        self.push(
            RecordPurpose::MtaSts,
            id_name,
            RData::Txt(value.into_bytes()),
        );
        Ok(())
    }

    fn srv(&mut self) -> Result<(), PlanError> {
        for entry in srv::entries(&self.server().services) {
            let name = self.name(RecordPurpose::Srv, &format!("{}._tcp", entry.label))?;
            self.push(RecordPurpose::Srv, name, srv_data(&entry));
        }
        Ok(())
    }

    fn auto_config(&mut self) -> Result<(), PlanError> {
        let host = self.server().hostname.clone();
        let document = autoconfig::pacc_document(&self.server().services);
        let pacc_txt = autoconfig::pacc_txt_value(&document).into_bytes();
        let host_alias = || RData::Cname(host.clone());
        self.push_at(RecordPurpose::AutoConfig, "ua-auto-config", host_alias())?;
        self.push_at(
            RecordPurpose::AutoConfig,
            "_ua-auto-config",
            RData::Txt(pacc_txt),
        )?;
        self.push_at(RecordPurpose::AutoConfigLegacy, "autoconfig", host_alias())?;
        self.push_at(RecordPurpose::AutoDiscover, "autodiscover", host_alias())?;
        let entry = srv::autodiscover(&host);
        let srv_labels = format!("{}._tcp", entry.label);
        self.push_at(RecordPurpose::AutoDiscover, &srv_labels, srv_data(&entry))
    }

    fn caa(&mut self) {
        let Some(policy) = self.domain().caa.clone() else {
            return;
        };
        let apex = self.domain().name.clone();
        for property in caa::properties(&policy) {
            let data = RData::Caa {
                flags: 0,
                tag: property.tag.to_string(),
                value: property.value,
            };
            self.push(RecordPurpose::Caa, apex.clone(), data);
        }
    }

    /// RFC 7672 §3.1: `_25._tcp.<exchanger>`; the other TLS ports of hosts in the zone get
    /// the same records so that DANE-aware clients can use them too.
    fn tlsa(&mut self) -> Result<(), PlanError> {
        let Some(keys) = self.input.tlsa.cloned() else {
            return Ok(());
        };
        let mut endpoints: BTreeSet<(Name, u16)> = self
            .server()
            .mail_exchangers
            .iter()
            .filter(|mx| self.in_zone(&mx.hostname))
            .map(|mx| (mx.hostname.clone(), 25))
            .collect();
        for family in ServiceFamily::ALL {
            let Some(service) = self.server().services.get(family) else {
                continue;
            };
            if !self.in_zone(&service.hostname) {
                continue;
            }
            endpoints.insert((service.hostname.clone(), service.port));
            if let (Some(port), false) = (service.cleartext_port, family.is_http()) {
                // STARTTLS ports carry the same certificate.
                endpoints.insert((service.hostname.clone(), port));
            }
        }
        for (host, port) in endpoints {
            let name = host
                .prefixed(&format!("_{port}._tcp"))
                .map_err(|source| PlanError {
                    domain: self.domain().name.as_str().to_string(),
                    purpose: RecordPurpose::Tlsa,
                    labels: format!("_{port}._tcp.{}", host.as_str()),
                    source,
                })?;
            for data in tlsa_data(&keys) {
                self.push(RecordPurpose::Tlsa, name.clone(), data);
            }
        }
        Ok(())
    }
}

fn srv_data(entry: &srv::SrvEntry) -> RData {
    RData::Srv {
        priority: entry.priority,
        weight: entry.weight,
        port: entry.port,
        target: entry.target.clone(),
    }
}

fn tlsa_data(keys: &TlsaKeys) -> Vec<RData> {
    let record = |usage, digest: &Vec<u8>| RData::Tlsa {
        usage,
        selector: tlsa::SELECTOR_SPKI,
        matching_type: tlsa::MATCHING_SHA256,
        data: digest.clone(),
    };
    let mut out = vec![record(tlsa::USAGE_DANE_EE, &keys.leaf)];
    if let Some(next) = &keys.next {
        out.push(record(tlsa::USAGE_DANE_EE, next));
    }
    if let Some(issuer) = &keys.issuer {
        out.push(record(tlsa::USAGE_DANE_TA, issuer));
    }
    for (usage, digest) in &keys.retiring {
        let data = record(*usage, digest);
        if !out.contains(&data) {
            out.push(data);
        }
    }
    out
}

/// The keys of a domain that are published, for [`PlanInput::dkim_keys`].
pub fn selector_keys<'a>(
    keys: impl IntoIterator<Item = (&'a str, &'a dkim::DkimPrivateKey)>,
) -> Vec<DkimSelectorKey> {
    keys.into_iter()
        .map(|(selector, key)| DkimSelectorKey {
            selector: selector.to_string(),
            key: key.public_key(),
        })
        .collect()
}
