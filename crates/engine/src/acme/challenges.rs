//! The DNS-01 challenge records (RFC 8555 §8.4): published through the DNS server of the
//! zone that holds each name, waited for on every authoritative server, removed again;
//! recorded in the store from before they are added until they are removed.

use std::collections::BTreeMap;
use std::sync::atomic::AtomicU64;

use mailzone_records::diff::{ChangeSet, LiveRecord};
use mailzone_records::{
    DesiredRecord, DnsManagement, DnsServer, Name, RData, Record, RecordPurpose, RrType,
};
use mailzone_store::Store;

use crate::progress::Progress;
use crate::{EngineError, LoadedConfig, connect, propagation};

use super::*;

/// Removes the challenge records an earlier renewal recorded and never removed (it was
/// killed, or its removal failed); returns the ones that still could not be removed.
pub(crate) async fn remove_left_behind(
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

/// One challenge to publish: `_acme-challenge.<name>` TXT `<value>`.
#[derive(Debug, Clone)]
pub(crate) struct Challenge {
    pub(crate) name: Name,
    pub(crate) value: String,
}

/// Challenge records published in one zone, to be removed again.
pub(crate) struct Published {
    pub(crate) server: DnsServer,
    pub(crate) zone: Name,
    pub(crate) records: Vec<Record>,
}

/// The zone (and its DNS server) that holds `name`'s challenge record.
pub(crate) fn zone_of<'a>(
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
pub(crate) async fn publish(
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
        let connection = connect::connect(loaded, &server, store.state_dir()).await?;
        let provider = connection.provider.as_ref();
        let dns = |error| EngineError::Dns {
            zone: zone.to_string(),
            error,
        };
        let wanted: Vec<(Name, RrType)> = records
            .iter()
            .map(|r| (r.name.clone(), RrType::Txt))
            .collect();
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
        let origin = propagation::Origin {
            server: &server,
            primary: connection.endpoint,
            transferred: None,
        };
        propagation::wait(origin, &zone, &changes, &before, serial, progress, &sent).await?;
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
pub(crate) fn may_have_applied(error: &mailzone_dns::DnsError) -> bool {
    use mailzone_dns::Cause;
    !matches!(
        error.cause(),
        Cause::Rcode(_) | Cause::NotServed | Cause::Request
    )
}

pub(crate) fn challenge_record(c: &Challenge) -> Result<Record, EngineError> {
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
pub(crate) fn additions(zone: &Name, records: &[Record]) -> ChangeSet {
    ChangeSet {
        zone: Some(zone.clone()),
        adds: records
            .iter()
            .map(|r| DesiredRecord {
                // The reason label only (providers ignore it): CAA is the family of
                // records about certificate issuance.
                purpose: RecordPurpose::Caa,
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
pub(crate) async fn remove(
    loaded: &LoadedConfig,
    store: &Store,
    published: &[Published],
) -> Vec<String> {
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
        let result = match connect::connect(loaded, &p.server, store.state_dir()).await {
            Ok(connection) => connection
                .provider
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
