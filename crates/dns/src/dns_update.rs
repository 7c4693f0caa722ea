//! The HTTP DNS providers of the `dns-update` library (Cloudflare, Route 53, Hetzner, deSEC,
//! OVH, …) behind mailzone's [`Provider`] trait.
//!
//! The library reads and writes one RRset at a time (`list_rrset`, `set_rrset`,
//! `add_to_rrset`, `remove_from_rrset`), so a change is applied RRset by RRset: every RRset
//! that keeps records first (adds and replacements), then those that lose all of theirs.
//! An RRset is written whole, except a TXT RRset that also holds foreign records (a site
//! verification beside the SPF record): it gets mailzone's additions, then its removals,
//! and nothing else, so that a provider with record-level APIs (Cloudflare, DigitalOcean,
//! …) leaves the foreign records as they are, down to their ids, comments and the way
//! their text was quoted. The engine records its intent in the ledger before the
//! first write, so a run cut between two writes is finished by the next one, never
//! duplicated. The library's listings carry no TTL and no serial: the engine is told so by
//! [`Capabilities`] (a TTL change alone is not seen; every run reads the RRsets).

pub mod catalog;

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use dns_update::{CAARecord, DnsRecord, DnsUpdater, KeyValue, MXRecord, SRVRecord, TLSARecord};
use mailzone_records::diff::{ChangeSet, LiveRecord};
use mailzone_records::{Name, RData, Record, RrType};
use zeroize::Zeroizing;

use crate::provider::{Capabilities, Conditional, ReadScope, rrsets_after, unread_rrsets};
use crate::{ApplyReport, Cause, DnsError, Provider, ReadMethod, ZoneSnapshot};

/// What one library call does to an RRset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Action {
    /// `set_rrset`: the RRset becomes exactly these records.
    Set,
    /// `add_to_rrset`: these records join the RRset.
    Add,
    /// `remove_from_rrset`: these records leave the RRset.
    Remove,
}

/// One library call of a change.
#[derive(Debug)]
struct LibraryCall {
    action: Action,
    name: Name,
    rtype: RrType,
    ttl: u32,
    records: Vec<LiveRecord>,
}

/// The library calls that apply `changes` (`read`: the RRsets read for it), in a safe
/// order: RRsets keeping records first, emptied ones last; within a TXT RRset holding
/// foreign records, mailzone's additions before its removals. Other types are set whole:
/// the library finds a record to remove by comparing values in its own form, and for
/// names that form differs from some providers' (DigitalOcean stores targets without the
/// trailing dot), so a removal by value could silently find nothing, where a whole write
/// converges. TXT is where foreign records share mailzone's names (site verifications
/// beside SPF) and where providers' quoting differs.
fn library_calls(
    changes: &ChangeSet,
    read: BTreeMap<(Name, RrType), Vec<LiveRecord>>,
) -> Vec<LibraryCall> {
    let mut calls = Vec::new();
    for after in rrsets_after(changes, read) {
        let key = |r: &Record| r.name == after.name && r.data.rtype() == after.rtype;
        let adds: Vec<LiveRecord> = changes
            .adds
            .iter()
            .filter(|a| key(&a.record))
            .map(|a| LiveRecord::from_record(a.record.clone()))
            .collect();
        let removals: Vec<LiveRecord> = changes
            .deletes
            .iter()
            .filter(|(_, live)| key(&live.record))
            .map(|(_, live)| live.clone())
            .collect();
        let foreign = after
            .records
            .iter()
            .any(|r| !adds.iter().any(|a| a.record.data == r.record.data));
        // A listing has no TTLs: an RRset kept without an add gets the default TTL.
        let ttl = after
            .ttl
            .filter(|t| *t > 0)
            .unwrap_or(mailzone_records::config::DEFAULT_TTL);
        let call = |action, records| LibraryCall {
            action,
            name: after.name.clone(),
            rtype: after.rtype,
            ttl,
            records,
        };
        if !foreign || after.rtype != RrType::Txt {
            calls.push(call(Action::Set, after.records.clone()));
            continue;
        }
        if !adds.is_empty() {
            calls.push(call(Action::Add, adds));
        }
        if !removals.is_empty() {
            calls.push(call(Action::Remove, removals));
        }
    }
    calls
}

/// The library does not say which address it spoke to: errors name the provider instead.
const NO_SERVER: SocketAddr = SocketAddr::new(std::net::IpAddr::V4(Ipv4Addr::UNSPECIFIED), 0);

/// A provider of the `dns-update` library.
pub struct DnsUpdateProvider {
    updater: DnsUpdater,
    kind: String,
    min_ttl: u32,
    /// Every secret setting's value, removed from error texts (some providers put tokens
    /// in URLs, and the library's errors quote URLs).
    secrets: Vec<Zeroizing<String>>,
    /// The names of the kind's secret settings (`apiToken`), named when a credential is
    /// refused.
    credential_keys: Vec<&'static str>,
    /// The longest one library call may take: its requests, and its own waits after a 429
    /// (some providers' clients have no timeout of their own).
    call_limit: Duration,
    requests: AtomicU64,
}

impl DnsUpdateProvider {
    /// Builds the provider `kind` from its settings (secrets already read).
    pub fn new(
        kind: &str,
        settings: &catalog::Settings,
        timeout: Duration,
    ) -> Result<DnsUpdateProvider, String> {
        let known = mailzone_records::config::dns_update_provider(kind)
            .ok_or_else(|| format!("unknown dns-update provider {kind}"))?;
        let secrets = known
            .settings
            .iter()
            .filter(|s| s.secret)
            .filter_map(|s| settings.get(s.key).cloned())
            .filter(|v| !v.is_empty())
            .collect();
        Ok(DnsUpdateProvider {
            updater: catalog::build(kind, settings, timeout)?,
            kind: kind.to_string(),
            min_ttl: known.min_ttl,
            secrets,
            credential_keys: known
                .settings
                .iter()
                .filter(|s| s.secret)
                .map(|s| s.key)
                .collect(),
            call_limit: timeout.saturating_mul(3) + Duration::from_secs(60),
            requests: AtomicU64::new(0),
        })
    }

    /// The library's error as a classified [`DnsError`], secrets removed.
    fn error(&self, doing: &str, e: dns_update::Error) -> DnsError {
        use dns_update::Error as E;
        let mut text = e.to_string();
        for secret in &self.secrets {
            text = text.replace(secret.as_str(), "<secret>");
        }
        let message = format!("{} API: {doing}: {text}", self.kind);
        let status = |code: u16| DnsError::http_status(NO_SERVER, code, message.clone());
        match e {
            // The library keeps only the status of a 401: say what it means and what to
            // check, since the provider's own words are lost.
            E::Unauthorized => DnsError::http_status(
                NO_SERVER,
                401,
                format!(
                    "{message} (HTTP 401: the provider refused the credential; check {})",
                    self.credential_keys.join(", ")
                ),
            ),
            E::NotFound => DnsError::permanent(
                NO_SERVER,
                Cause::NotServed,
                format!("{message} (is the zone hosted in this account?)"),
            ),
            E::BadRequest => status(400),
            E::Client(_) => DnsError::unreachable(NO_SERVER, message),
            // The library's API error carries the status only in its text ("HTTP 503: …",
            // "BadRequest …", "Failed to send request …"): read back from there.
            E::Api(ref detail) => match api_status(detail) {
                Some(code) => status(code),
                None if never_answered(detail) => DnsError::unreachable(NO_SERVER, message),
                None => DnsError::permanent(NO_SERVER, Cause::Http(0), message),
            },
            E::Unsupported(_) | E::InvalidRegion => {
                DnsError::permanent(NO_SERVER, Cause::Request, message)
            }
            _ => DnsError::permanent(NO_SERVER, Cause::Malformed, message),
        }
    }

    /// One library call within [`DnsUpdateProvider::call_limit`].
    async fn bounded<T>(
        &self,
        doing: &str,
        call: impl std::future::Future<Output = dns_update::Result<T>>,
    ) -> Result<T, DnsError> {
        match tokio::time::timeout(self.call_limit, call).await {
            Ok(result) => result.map_err(|e| self.error(doing, e)),
            Err(_) => Err(DnsError::unreachable(
                NO_SERVER,
                format!(
                    "{} API: {doing}: no answer within {:?}",
                    self.kind, self.call_limit
                ),
            )),
        }
    }

    async fn list(
        &self,
        zone: &Name,
        name: &Name,
        rtype: &str,
    ) -> Result<Vec<LiveRecord>, DnsError> {
        let Some(record_type) = record_type(rtype) else {
            return Ok(Vec::new());
        };
        self.requests.fetch_add(1, Ordering::Relaxed);
        let doing = format!("reading {name} {rtype}");
        let call = self
            .updater
            .list_rrset(name.to_absolute(), record_type, zone.to_absolute());
        let records = self.bounded(&doing, call).await?;
        records
            .into_iter()
            .map(|r| {
                from_library(name, r)
                    .map(LiveRecord::from_record)
                    .map_err(|reason| {
                        DnsError::permanent(
                            NO_SERVER,
                            Cause::Malformed,
                            format!("{} API: {name} {rtype}: {reason}", self.kind),
                        )
                    })
            })
            .collect()
    }
}

/// The HTTP status in the library's API error text: its shared client writes "HTTP 503: …"
/// or "BadRequest …", some providers their own words ("Route53 API error: 429 Too Many
/// Requests - …"). Only an error status (400–599) right after one of those is taken.
fn api_status(detail: &str) -> Option<u16> {
    if detail.starts_with("BadRequest") || detail.contains(" BadRequest") {
        return Some(400);
    }
    ["HTTP ", "error: "].iter().find_map(|marker| {
        let (_, after) = detail.split_once(marker)?;
        let digits: String = after.chars().take_while(char::is_ascii_digit).collect();
        let code: u16 = digits.parse().ok().filter(|_| digits.len() == 3)?;
        (400..=599).contains(&code).then_some(code)
    })
}

/// Whether the library's API error text says the request never got an answer (its shared
/// client's "Failed to send request", reqwest's own "error sending request").
fn never_answered(detail: &str) -> bool {
    detail.starts_with("Failed to send") || detail.contains("error sending request")
}

fn record_type(rtype: &str) -> Option<dns_update::DnsRecordType> {
    use dns_update::DnsRecordType as T;
    Some(match rtype {
        "A" => T::A,
        "AAAA" => T::AAAA,
        "CNAME" => T::CNAME,
        "MX" => T::MX,
        "TXT" => T::TXT,
        "SRV" => T::SRV,
        "TLSA" => T::TLSA,
        "CAA" => T::CAA,
        _ => return None,
    })
}

fn name_of(text: &str) -> Result<Name, String> {
    Name::owner(text.trim_end_matches('.')).map_err(|e| format!("{text}: {e}"))
}

/// A record of the library as mailzone's (the TTL is not listed: 0 until the engine
/// takes the desired one).
fn from_library(owner: &Name, record: DnsRecord) -> Result<Record, String> {
    let data = match record {
        DnsRecord::A(ip) => RData::A(ip),
        DnsRecord::AAAA(ip) => RData::Aaaa(ip),
        DnsRecord::CNAME(target) => RData::Cname(name_of(&target)?),
        DnsRecord::NS(target) => RData::Ns(name_of(&target)?),
        DnsRecord::MX(mx) => RData::Mx {
            preference: mx.priority,
            exchange: name_of(&mx.exchange)?,
        },
        DnsRecord::TXT(text) => RData::Txt(text.into_bytes()),
        DnsRecord::SRV(srv) => RData::Srv {
            priority: srv.priority,
            weight: srv.weight,
            port: srv.port,
            target: name_of(&srv.target)?,
        },
        DnsRecord::TLSA(tlsa) => RData::Tlsa {
            usage: tlsa_usage(tlsa.cert_usage),
            selector: tlsa_selector(tlsa.selector),
            matching_type: tlsa_matching(tlsa.matching),
            data: tlsa.cert_data,
        },
        DnsRecord::CAA(caa) => {
            let (flags, tag, value) = caa.decompose();
            RData::Caa { flags, tag, value }
        }
    };
    Ok(Record {
        name: owner.clone(),
        ttl: 0,
        data,
    })
}

/// mailzone's record data as the library's; `None` for a type it does not write.
fn to_library(data: &RData) -> Option<DnsRecord> {
    use dns_update::{TlsaCertUsage as U, TlsaMatching as M, TlsaSelector as S};
    Some(match data {
        RData::A(ip) => DnsRecord::A(*ip),
        RData::Aaaa(ip) => DnsRecord::AAAA(*ip),
        RData::Cname(target) => DnsRecord::CNAME(target.to_absolute()),
        RData::Ns(target) => DnsRecord::NS(target.to_absolute()),
        RData::Mx {
            preference,
            exchange,
        } => DnsRecord::MX(MXRecord {
            exchange: exchange.to_absolute(),
            priority: *preference,
        }),
        RData::Txt(bytes) => DnsRecord::TXT(String::from_utf8_lossy(bytes).into_owned()),
        RData::Srv {
            priority,
            weight,
            port,
            target,
        } => DnsRecord::SRV(SRVRecord {
            target: target.to_absolute(),
            priority: *priority,
            weight: *weight,
            port: *port,
        }),
        RData::Tlsa {
            usage,
            selector,
            matching_type,
            data,
        } => DnsRecord::TLSA(TLSARecord {
            cert_usage: match usage {
                0 => U::PkixTa,
                1 => U::PkixEe,
                2 => U::DaneTa,
                3 => U::DaneEe,
                _ => U::Private,
            },
            selector: match selector {
                0 => S::Full,
                1 => S::Spki,
                _ => S::Private,
            },
            matching: match matching_type {
                0 => M::Raw,
                1 => M::Sha256,
                2 => M::Sha512,
                _ => M::Private,
            },
            cert_data: data.clone(),
        }),
        RData::Caa { flags, tag, value } => DnsRecord::CAA(caa(*flags, tag, value)),
        RData::Ptr(_) => return None,
    })
}

/// A CAA record (RFC 8659 §4.1.1) in the library's shape: `issue`/`issuewild` values are
/// an issuer name and `key=value` parameters after `;`.
fn caa(flags: u8, tag: &str, value: &str) -> CAARecord {
    let issuer_critical = flags & 128 != 0;
    let mut parts = value.split(';');
    let name = parts
        .next()
        .map(str::trim)
        .filter(|n| !n.is_empty())
        .map(str::to_string);
    let options = parts
        .filter_map(|p| p.split_once('='))
        .map(|(k, v)| KeyValue {
            key: k.trim().to_string(),
            value: v.trim().to_string(),
        })
        .collect();
    match tag.to_ascii_lowercase().as_str() {
        "issuewild" => CAARecord::IssueWild {
            issuer_critical,
            name,
            options,
        },
        "iodef" => CAARecord::Iodef {
            issuer_critical,
            url: value.to_string(),
        },
        _ => CAARecord::Issue {
            issuer_critical,
            name,
            options,
        },
    }
}

fn tlsa_usage(u: dns_update::TlsaCertUsage) -> u8 {
    use dns_update::TlsaCertUsage as U;
    match u {
        U::PkixTa => 0,
        U::PkixEe => 1,
        U::DaneTa => 2,
        U::DaneEe => 3,
        U::Private => 255,
    }
}

fn tlsa_selector(s: dns_update::TlsaSelector) -> u8 {
    use dns_update::TlsaSelector as S;
    match s {
        S::Full => 0,
        S::Spki => 1,
        S::Private => 255,
    }
}

fn tlsa_matching(m: dns_update::TlsaMatching) -> u8 {
    use dns_update::TlsaMatching as M;
    match m {
        M::Raw => 0,
        M::Sha256 => 1,
        M::Sha512 => 2,
        M::Private => 255,
    }
}

/// What a `dns-update` provider can do; `min_ttl` is the provider's own.
pub fn capabilities(min_ttl: u32) -> Capabilities {
    Capabilities {
        read: ReadScope::Rrsets,
        atomic: false,
        conditional: Conditional::No,
        serial: false,
        txt_strings_kept: false,
        ttl_read: false,
        min_ttl,
    }
}

#[async_trait]
impl Provider for DnsUpdateProvider {
    fn capabilities(&self) -> Capabilities {
        capabilities(self.min_ttl)
    }

    async fn read_zone(
        &self,
        zone: &Name,
        wanted: &[(Name, RrType)],
    ) -> Result<ZoneSnapshot, DnsError> {
        let mut records = Vec::new();
        for (name, rtype) in wanted {
            records.extend(self.list(zone, name, rtype.as_str()).await?);
        }
        Ok(ZoneSnapshot {
            zone: zone.clone(),
            serial: 0,
            records,
            method: ReadMethod::Queries,
            ns_records: None,
        })
    }

    async fn serial(&self, _zone: &Name) -> Result<u32, DnsError> {
        Ok(0)
    }

    async fn apply(&self, changes: &ChangeSet) -> Result<ApplyReport, DnsError> {
        let zone = changes.zone.clone().ok_or_else(|| {
            DnsError::permanent(NO_SERVER, Cause::Request, "a change set without its zone")
        })?;
        let mut read = BTreeMap::new();
        for (name, rtype) in unread_rrsets(changes) {
            let live = self.list(&zone, &name, rtype.as_str()).await?;
            read.insert((name, rtype), live);
        }
        let mut sent = 0;
        for call in library_calls(changes, read) {
            let doing = format!("writing {} {}", call.name, call.rtype);
            let Some(record_type) = record_type(call.rtype.as_str()) else {
                continue;
            };
            let records: Vec<DnsRecord> = call
                .records
                .iter()
                .filter_map(|r| to_library(&r.record.data))
                .collect();
            let name = call.name.to_absolute();
            let origin = zone.to_absolute();
            if sent > 0 {
                crate::crash::point("rrset-written");
            }
            self.requests.fetch_add(1, Ordering::Relaxed);
            let ttl = call.ttl.max(self.min_ttl);
            match call.action {
                Action::Set => {
                    let call = self
                        .updater
                        .set_rrset(name, record_type, ttl, records, origin);
                    self.bounded(&doing, call).await?;
                }
                Action::Add => {
                    let call = self
                        .updater
                        .add_to_rrset(name, record_type, ttl, records, origin);
                    self.bounded(&doing, call).await?;
                }
                Action::Remove => {
                    let call = self
                        .updater
                        .remove_from_rrset(name, record_type, records, origin);
                    self.bounded(&doing, call).await?;
                }
            }
            sent += 1;
        }
        Ok(ApplyReport {
            messages: sent,
            serial: None,
        })
    }

    fn messages_sent(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests;
