//! TLSA rollover over time (RFC 7671 §8.1): the digests the certificate files name
//! are compared with what mailzone published before, replaced ones stay published until
//! `server.tls.retireAfter` has passed, and `mailzone tlsa status` shows the certificate, the
//! next key, the stored state and what the authoritative servers serve side by side.
//!
//! The state (per server host name) is kept only where mailzone publishes TLSA itself
//! (`publishRecords` includes `tlsa` under automatic DNS management); a zone file written
//! for manual publication shows the files' digests as they are, plus `nextKey`. Reads
//! (`records`, `plan`, `check`, the API) show the state a publication would leave; only an
//! apply that published the records saves it.

use std::net::SocketAddr;
use std::time::Duration;

use mailzone_records::tlsa::TlsaKeys;
use mailzone_records::tlsa::rollover::{self, Advance, TlsaEntry, TlsaEvent, TlsaRole};
use mailzone_records::{DnsManagement, Domain, RData, RecordPurpose, zonefile};
use mailzone_store::Store;
use serde::Serialize;

use crate::records::RequestStore;
use crate::{EngineError, LoadedConfig, RecordsRequest};

/// True when mailzone publishes the domain's TLSA records (and so owns their rollover).
pub fn manages_tlsa(domain: &Domain) -> bool {
    matches!(
        &domain.dns_management,
        DnsManagement::Automatic { publish_records, .. } if publish_records.contains(&RecordPurpose::Tlsa)
    )
}

/// The TLSA rollover state a publication now would leave (RFC 7671 §8.1), computed from
/// the stored state and the run's time without saving anything: `records`, `plan`, `check`
/// and the API's reads show it, and only the apply that publishes its records saves it
/// ([`record_publication`]), so a `retireAfter` clock starts at the publication.
#[derive(Debug, Clone)]
pub(crate) struct PlannedTlsa {
    host: String,
    stored: Vec<TlsaEntry>,
    advanced: Advance,
    /// The files' keys plus every digest still retiring: what the planner publishes.
    pub keys: TlsaKeys,
}

/// The keys to plan TLSA records with: the files' keys plus every digest still retiring
/// in the state a publication at `now` would leave. `None` when the config names no
/// certificate. Reads the store, never writes it.
pub(crate) async fn planned_rollover(
    loaded: &LoadedConfig,
    store: &Store,
    now: i64,
) -> Result<Option<PlannedTlsa>, EngineError> {
    let (Some(keys), Some(tls)) = (&loaded.tlsa, &loaded.config.server.tls) else {
        return Ok(None);
    };
    let host = loaded.config.server.hostname.as_str();
    let stored = store.tlsa_state(host).await?;
    let retire_after = i64::try_from(tls.retire_after.as_secs()).unwrap_or(i64::MAX / 2);
    let advanced = rollover::advance(&stored, keys, now, retire_after);
    Ok(Some(PlannedTlsa {
        host: host.to_string(),
        keys: rollover::with_retiring(keys, &advanced.entries),
        stored,
        advanced,
    }))
}

/// Saves the planned rollover state once its records are published: called by `apply`
/// after every zone holding the host's TLSA records was updated and confirmed served. A
/// digest starts retiring (and its `retireAfter` clock runs) from this run's time.
pub(crate) async fn record_publication(
    store: &Store,
    planned: &PlannedTlsa,
) -> Result<(), EngineError> {
    if !planned.advanced.changed(&planned.stored) {
        return Ok(());
    }
    store
        .replace_tlsa_state(&planned.host, &planned.advanced.entries)
        .await?;
    for event in &planned.advanced.events {
        log_event(&planned.host, event);
    }
    Ok(())
}

fn log_event(host: &str, event: &TlsaEvent) {
    match event {
        TlsaEvent::Added {
            usage,
            digest,
            role,
        } => tracing::info!(
            host,
            "TLSA {usage} 1 1 {} published ({})",
            zonefile::hex(digest),
            role.as_str()
        ),
        TlsaEvent::Switched {
            digest,
            announced: true,
        } => tracing::info!(
            host,
            "certificate key changed to the announced next key {}",
            zonefile::hex(digest)
        ),
        TlsaEvent::Switched {
            digest,
            announced: false,
        } => tracing::warn!(
            host,
            "certificate key changed to {} which was never announced: DANE clients holding the old TLSA RRset cannot validate the new certificate until it expires from their cache; name the next key in server.tls.nextKey before renewing under a new key",
            zonefile::hex(digest)
        ),
        TlsaEvent::Retiring {
            usage,
            digest,
            retire_at,
        } => tracing::info!(
            host,
            "TLSA {usage} 1 1 {} retiring; withdrawn at {}",
            zonefile::hex(digest),
            crate::clock::rfc3339(*retire_at)
        ),
        TlsaEvent::Withdrawn { usage, digest } => {
            tracing::info!(host, "TLSA {usage} 1 1 {} withdrawn", zonefile::hex(digest))
        }
    }
}

/// The earliest time a retiring digest of the server's host is due to be withdrawn.
pub async fn next_withdrawal(
    loaded: &LoadedConfig,
    store: &Store,
) -> Result<Option<i64>, EngineError> {
    let host = loaded.config.server.hostname.as_str();
    Ok(store
        .tlsa_state(host)
        .await?
        .iter()
        .filter_map(|e| e.retire_at)
        .min())
}

/// `mailzone tlsa status`: one row per digest.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TlsaStatus {
    pub host: String,
    /// Subject of the certificate file's leaf.
    pub certificate_subject: String,
    /// Whether the state database holds the rollover (mailzone publishes TLSA).
    pub managed: bool,
    pub digests: Vec<TlsaDigestStatus>,
    /// The TLSA owner names queried and the servers asked.
    pub names: Vec<String>,
    pub servers: Vec<String>,
    /// Questions that failed (server down, refused), one line each.
    pub errors: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TlsaDigestStatus {
    pub usage: u8,
    pub digest: String,
    /// `current`, `next` or `retiring` (from the state when managed, else from the files).
    pub role: String,
    /// The certificate file's leaf (usage 3) or issuer (usage 2) has this key.
    pub in_certificate: bool,
    /// `server.tls.nextKey` has this key.
    pub next_key: bool,
    pub since: Option<i64>,
    pub retire_at: Option<i64>,
    /// The digest should be published now (the planner's set).
    pub planned: bool,
    /// Servers that serve it at every queried name.
    pub served_by: Vec<String>,
}

/// Reads the certificate files, the stored rollover state (without advancing it) and the
/// TLSA RRsets the authoritative servers serve for the selected domains' planned names.
pub async fn status(
    loaded: &LoadedConfig,
    request: &RecordsRequest,
    timeout: Duration,
) -> Result<TlsaStatus, EngineError> {
    let (Some(keys), Some(_)) = (&loaded.tlsa, &loaded.config.server.tls) else {
        return Err(EngineError::Usage(format!(
            "{}: no [server.tls] certificate is configured, so there are no TLSA records",
            loaded.path.display()
        )));
    };
    let domains = crate::records::select_domains(loaded, &request.domains)?;
    let managed = domains.iter().any(|d| manages_tlsa(d));
    let host = loaded.config.server.hostname.as_str().to_string();
    let stored = if managed {
        let opened = RequestStore::open(request.store.as_ref(), &request.state_dir).await?;
        let entries = opened.store.tlsa_state(&host).await?;
        opened.close().await;
        entries
    } else {
        Vec::new()
    };
    let planned = rollover::with_retiring(keys, &stored);
    let mut rows = digest_rows(keys, &stored);
    let planned_data = planned_tlsa(loaded, &domains, &planned)?;
    for row in &mut rows {
        row.planned = planned_data
            .iter()
            .any(|(_, usage, digest)| *usage == row.usage && *digest == row.digest);
    }
    let mut names: Vec<String> = planned_data.iter().map(|(n, _, _)| n.clone()).collect();
    names.sort();
    names.dedup();
    let servers = query_targets(loaded, &domains).await;
    let mut errors = Vec::new();
    for server in &servers {
        let mut served_everywhere: Option<Vec<(u8, String)>> = None;
        for name in &names {
            let owner = mailzone_records::Name::owner(name)
                .map_err(|e| EngineError::Usage(format!("{name}: {e}")))?;
            match mailzone_dns::query::query_rrset(*server, &owner, "TLSA", timeout).await {
                Ok(records) => {
                    let here: Vec<(u8, String)> = records
                        .iter()
                        .filter_map(|r| match &r.record.data {
                            RData::Tlsa { usage, data, .. } => Some((*usage, zonefile::hex(data))),
                            _ => None,
                        })
                        .collect();
                    served_everywhere = Some(match served_everywhere {
                        None => here,
                        Some(before) => before.into_iter().filter(|d| here.contains(d)).collect(),
                    });
                }
                Err(e) => errors.push(format!("{server}: {name} TLSA: {e}")),
            }
        }
        for (usage, digest) in served_everywhere.unwrap_or_default() {
            match rows
                .iter_mut()
                .find(|r| r.usage == usage && r.digest == digest)
            {
                Some(row) => row.served_by.push(server.to_string()),
                None => rows.push(TlsaDigestStatus {
                    usage,
                    digest,
                    role: "unknown".into(),
                    in_certificate: false,
                    next_key: false,
                    since: None,
                    retire_at: None,
                    planned: false,
                    served_by: vec![server.to_string()],
                }),
            }
        }
    }
    Ok(TlsaStatus {
        host,
        certificate_subject: keys.leaf_subject.clone(),
        managed,
        digests: rows,
        names,
        servers: servers.iter().map(|s| s.to_string()).collect(),
        errors,
    })
}

/// One row per digest the files name or the state holds.
fn digest_rows(keys: &TlsaKeys, stored: &[TlsaEntry]) -> Vec<TlsaDigestStatus> {
    let from_files = rollover::advance(&[], keys, 0, 0).entries;
    let mut rows: Vec<TlsaDigestStatus> = Vec::new();
    for entry in from_files.iter().chain(stored) {
        let digest = zonefile::hex(&entry.digest);
        if rows
            .iter()
            .any(|r| r.usage == entry.usage && r.digest == digest)
        {
            continue;
        }
        let kept = stored
            .iter()
            .find(|s| s.usage == entry.usage && s.digest == entry.digest);
        let role = kept.map_or(entry.role, |s| s.role);
        rows.push(TlsaDigestStatus {
            usage: entry.usage,
            digest,
            role: role.as_str().into(),
            in_certificate: (entry.usage == 3 && entry.digest == keys.leaf)
                || (entry.usage == 2 && Some(&entry.digest) == keys.issuer.as_ref()),
            next_key: entry.usage == 3 && Some(&entry.digest) == keys.next.as_ref(),
            since: kept.map(|s| s.since),
            retire_at: kept.and_then(|s| s.retire_at),
            planned: false,
            served_by: Vec::new(),
        });
    }
    rows.sort_by_key(|r| {
        (
            std::cmp::Reverse(r.usage),
            TlsaRole::parse(&r.role),
            r.digest.clone(),
        )
    });
    rows
}

/// (owner name, usage, digest hex) of every TLSA record planned for the domains.
fn planned_tlsa(
    loaded: &LoadedConfig,
    domains: &[&Domain],
    keys: &TlsaKeys,
) -> Result<Vec<(String, u8, String)>, EngineError> {
    let mut out = Vec::new();
    for domain in domains {
        let records = mailzone_records::plan(mailzone_records::PlanInput {
            server: &loaded.config.server,
            domain,
            dkim_keys: &[],
            tlsa: Some(keys),
        })?;
        for r in records {
            if let RData::Tlsa { usage, data, .. } = &r.record.data {
                out.push((r.record.name.to_string(), *usage, zonefile::hex(data)));
            }
        }
    }
    Ok(out)
}

/// The servers to ask: each managed domain's DNS server and its authoritative servers.
async fn query_targets(loaded: &LoadedConfig, domains: &[&Domain]) -> Vec<SocketAddr> {
    let mut out = Vec::new();
    for domain in domains {
        let DnsManagement::Automatic { dns_server, .. } = &domain.dns_management else {
            continue;
        };
        let Some(server) = loaded.config.dns_server(dns_server) else {
            continue;
        };
        if let mailzone_records::DnsProvider::Rfc2136 { host, port, .. } = &server.provider
            && let Ok(addrs) = tokio::net::lookup_host((host.as_str(), *port)).await
        {
            out.extend(addrs.take(1));
        }
        out.extend(server.authoritative_servers.iter().flatten().copied());
    }
    out.sort();
    out.dedup();
    out
}
