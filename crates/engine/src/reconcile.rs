//! The `plan` and `apply` use cases: read each zone, diff it against the
//! desired records, and (for apply) send the difference in one atomic UPDATE, re-planning
//! when a concurrent edit trips the prerequisites, then wait for propagation.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use futures::StreamExt as _;

use mailzone_dns::{Capabilities, DnsError, ReadMethod};
use mailzone_records::diff::{self, ChangeSet, LedgerEntry, PlanEntry};
use mailzone_records::zones::{self, ZonePlan, ZonePlans};
use mailzone_records::{DesiredRecord, Name, Record, RecordPurpose, zonefile};
use mailzone_store::{Store, ZoneState};

use crate::error::ZoneFailure;
use crate::progress::Progress;
use crate::propagation;
use crate::records::RecordsRequest;
use crate::{EngineError, LoadedConfig, connect};

/// How many times a zone is re-read and re-planned after a concurrent edit.
pub const MAX_REPLANS: u32 = 3;
/// Default share of managed records an apply may delete without `--force`.
pub const DEFAULT_DELETE_LIMIT: f64 = 0.30;

/// A hook run between reading a zone and sending its update.
pub type AfterRead = Arc<dyn Fn(&Name) + Send + Sync>;

/// What to reconcile and how.
#[derive(Clone)]
pub struct ReconcileRequest {
    pub records: RecordsRequest,
    /// Send the changes (apply) or only show them (plan).
    pub apply: bool,
    /// Apply even when more than `delete_limit` of the managed records would be deleted.
    pub force: bool,
    pub delete_limit: f64,
    /// Called after a zone was read and before its update is sent (tests use it to make a
    /// concurrent edit).
    pub after_read: Option<AfterRead>,
    /// Zones worked on at once (reads, updates and propagation checks overlap).
    pub concurrency: usize,
}

/// Default number of zones worked on at once.
pub const DEFAULT_CONCURRENCY: usize = 16;

/// The outcome for one zone.
#[derive(Debug, Clone)]
pub struct ZoneOutcome {
    pub zone: Name,
    pub dns_server: String,
    pub domains: Vec<Name>,
    /// `None` when the zone was known to be in sync (serial and desired records unchanged)
    /// and was not read at all.
    pub method: Option<ReadMethod>,
    /// What the zone's provider can do (`plan` shows it when a change is not atomic).
    pub capabilities: Capabilities,
    pub serial: u32,
    pub changes: ChangeSet,
    pub applied: bool,
    /// UPDATE messages sent for this zone.
    pub updates_sent: u32,
    /// How many times the zone was re-planned after a concurrent edit.
    pub replans: u32,
}

impl ZoneOutcome {
    pub fn entries(&self) -> Vec<PlanEntry> {
        self.changes.entries()
    }
}

/// The result of a plan or apply run.
#[derive(Debug, Clone, Default)]
pub struct ReconcileReport {
    pub zones: Vec<ZoneOutcome>,
    /// Domains skipped because their DNS is managed by hand.
    pub manual_domains: Vec<Name>,
    /// DNS messages sent in all.
    pub messages: u64,
    /// DKIM keys made `Active` because this apply confirmed their records served
    /// (a `Pending` key signs nothing before), by domain.
    pub dkim_changes: Vec<(Name, Vec<crate::dkim::KeyChange>)>,
    /// Failures of the `onKeyChange` commands run for those changes (the changes stand).
    pub on_key_change_failures: Vec<String>,
}

/// `error` as this zone's failure, naming its DNS server.
fn failure(item: &ZonePlan<'_>, error: EngineError) -> ZoneFailure {
    ZoneFailure {
        zone: item.zone.clone(),
        dns_server: item.server.name.clone(),
        error,
    }
}

/// Plans (and with `apply`, applies) every selected domain under automatic management.
pub async fn reconcile(
    loaded: &LoadedConfig,
    request: &ReconcileRequest,
    progress: &dyn Progress,
) -> Result<ReconcileReport, EngineError> {
    let planned = crate::records::plan_records(loaded, &request.records).await?;
    let ZonePlans {
        zones: work,
        manual,
    } = zones::plan_zones(&loaded.config, &planned.domains, &request.records.types)
        .map_err(|e| EngineError::Usage(e.to_string()))?;
    let mut report = ReconcileReport {
        manual_domains: manual,
        ..ReconcileReport::default()
    };
    if work.is_empty() {
        return Ok(report);
    }
    let opened = crate::records::RequestStore::open(
        request.records.store.as_ref(),
        &request.records.state_dir,
    )
    .await?;
    let store = opened.store.clone();
    // Every zone's failure is kept with its zone and DNS server, so the caller sees each
    // one's class (a task retries when any of them is transient).
    let mut failures: Vec<ZoneFailure> = Vec::new();
    let mut connections: BTreeMap<String, connect::Connection> = BTreeMap::new();
    let mut connected: Vec<&ZonePlan<'_>> = Vec::new();
    for item in &work {
        if !connections.contains_key(&item.server.name) {
            // A server that cannot be used fails its zones only; the others go on. Tried
            // again for each of its zones, so each failure is its own.
            match connect::connect(loaded, item.server, store.state_dir()).await {
                Ok(connection) => {
                    connections.insert(item.server.name.clone(), connection);
                }
                Err(e) => {
                    progress.zone_started(&item.zone);
                    progress.zone_failed(&item.zone, &e.to_string());
                    failures.push(failure(item, e));
                    continue;
                }
            }
        }
        connected.push(item);
    }
    // The propagation watcher asks the authoritative servers directly, not through a
    // provider: its queries are counted here.
    let propagation_queries = AtomicU64::new(0);
    let keys: Vec<(String, String)> = connected
        .iter()
        .map(|item| (item.zone.as_str().to_string(), item.server.name.clone()))
        .collect();
    let known_states = store.zone_states_of(&keys).await?;
    // `maxConcurrentZones`: each DNS server's zones in flight, whatever the run's overall
    // concurrency.
    let limits: BTreeMap<&str, tokio::sync::Semaphore> = connected
        .iter()
        .map(|item| {
            (
                item.server.name.as_str(),
                tokio::sync::Semaphore::new(item.server.max_concurrent_zones.max(1)),
            )
        })
        .collect();
    // Boxed as `Send` futures, named before the stream is built: the service runs this
    // inside spawned tasks, and an unboxed closure stream trips the compiler's
    // higher-ranked lifetime check for `Send`.
    let runs: Vec<futures::future::BoxFuture<'_, Result<ZoneOutcome, EngineError>>> = connected
        .iter()
        .map(|&item| {
            let connection = &connections[&item.server.name];
            let store = &store;
            let propagation_queries = &propagation_queries;
            let known =
                known_states.get(&(item.zone.as_str().to_string(), item.server.name.clone()));
            let limit = &limits[item.server.name.as_str()];
            Box::pin(async move {
                let _turn = limit.acquire().await;
                progress.zone_started(&item.zone);
                let result = reconcile_zone(
                    store,
                    connection,
                    item,
                    request,
                    progress,
                    propagation_queries,
                    known,
                )
                .await;
                match &result {
                    Ok(outcome) => progress.zone_finished(&item.zone, &outcome_summary(outcome)),
                    Err(e) => progress.zone_failed(&item.zone, &e.to_string()),
                }
                result
            }) as futures::future::BoxFuture<'_, _>
        })
        .collect();
    let zones = futures::stream::iter(runs)
        .buffered(request.concurrency.max(1))
        .collect::<Vec<_>>()
        .await;
    let mut served_dkim = Vec::new();
    for (&item, result) in connected.iter().zip(zones) {
        match result {
            Ok(outcome) => {
                if request.apply && item.managed_types.contains(&RecordPurpose::Dkim) {
                    served_dkim.push((item, outcome.applied, outcome.serial));
                }
                report.zones.push(outcome);
            }
            Err(e) => failures.push(failure(item, e)),
        }
    }
    // Only now, with every record of these zones served by every authoritative server,
    // may a pending DKIM key sign: the rotation promotion path, for the keys whose records
    // were part of what was applied.
    // By name, built once: a lookup per zone in the config's list would be quadratic.
    let domains: std::collections::HashMap<&Name, &mailzone_records::Domain> =
        loaded.config.domains.iter().map(|d| (&d.name, d)).collect();
    for (item, applied, serial) in served_dkim {
        let confirmed = Confirmed {
            applied,
            primary: connections[&item.server.name].endpoint,
            serial,
            progress,
            sent: &propagation_queries,
        };
        if let Err(e) = promote_applied(
            loaded,
            &domains,
            request,
            &store,
            item,
            confirmed,
            &mut report,
        )
        .await
        {
            failures.push(failure(item, e));
        }
    }
    // The TLSA rollover state the records were planned with becomes the stored state only
    // now that they are served: a replaced digest's `retireAfter` runs from this publication.
    // Not a zone's failure: the state database's.
    let mut saving_tlsa = Ok(());
    if let Some(tlsa) = planned.tlsa.as_ref().filter(|_| request.apply)
        && tlsa_published(&work, &report)
    {
        saving_tlsa = crate::tlsa::record_publication(&store, tlsa).await;
    }
    report.messages = connections
        .values()
        .map(|c| c.provider.messages_sent())
        .sum::<u64>()
        + propagation_queries.load(Ordering::Relaxed);
    drop(store);
    opened.close().await;
    match (failures.is_empty(), saving_tlsa) {
        (true, Ok(())) => Ok(report),
        (true, Err(e)) => Err(e),
        (false, saving_tlsa) => {
            if let Err(e) = saving_tlsa {
                tracing::error!("{e}");
            }
            Err(EngineError::Zones(failures))
        }
    }
}

/// Whether every zone of this run that holds TLSA records serves what was planned: each
/// was applied and confirmed on every authoritative server, or found already in sync.
fn tlsa_published(work: &[ZonePlan<'_>], report: &ReconcileReport) -> bool {
    let mut tlsa_zones = work
        .iter()
        .filter(|item| item.managed_types.contains(&RecordPurpose::Tlsa))
        .peekable();
    tlsa_zones.peek().is_some()
        && tlsa_zones.all(|item| {
            report
                .zones
                .iter()
                .any(|z| z.zone == item.zone && z.dns_server == item.server.name)
        })
}

/// How a zone's records were confirmed served.
struct Confirmed<'a> {
    /// This run sent an update and waited for it on every authoritative server.
    applied: bool,
    /// The DNS server's address when spoken to over DNS (it serves what it applied).
    primary: Option<std::net::SocketAddr>,
    /// The zone's serial this run saw (or made).
    serial: u32,
    progress: &'a dyn Progress,
    sent: &'a AtomicU64,
}

/// Promotes the pending DKIM keys of `item`'s domains whose records were among the
/// applied (and so served) records, and runs `onKeyChange` for them. A zone found already
/// in sync was confirmed on the primary only (a previous apply may have timed out waiting
/// for a secondary): before a key is promoted there, every authoritative server must serve
/// that serial.
async fn promote_applied(
    loaded: &LoadedConfig,
    domains: &std::collections::HashMap<&Name, &mailzone_records::Domain>,
    request: &ReconcileRequest,
    store: &Store,
    item: &ZonePlan<'_>,
    confirmed: Confirmed<'_>,
    report: &mut ReconcileReport,
) -> Result<(), EngineError> {
    let key_records: BTreeSet<&Name> = item
        .desired
        .iter()
        .filter(|r| r.purpose == RecordPurpose::Dkim)
        .filter(|r| matches!(r.record.data, mailzone_records::RData::Txt(_)))
        .map(|r| &r.record.name)
        .collect();
    if key_records.is_empty() {
        return Ok(());
    }
    let mut everywhere = confirmed.applied;
    for name in &item.domains {
        let Some(domain) = domains.get(name) else {
            continue;
        };
        // Manual keys are the operator's files, never staged in the state database: no
        // query for them (one per zone adds up over thousands of zones).
        if !matches!(
            domain.dkim_management,
            mailzone_records::DkimManagement::Automatic { .. }
        ) {
            continue;
        }
        // The key records this zone's applied records hold, mapped back to the domain's
        // selectors (a provider zone also holds other customers' keys).
        let stored = store.dkim_keys(name.as_str()).await?;
        let served: BTreeSet<String> = stored
            .iter()
            .map(|k| k.selector.clone())
            .filter(|selector| {
                domain
                    .dkim_key_record_name(selector)
                    .is_ok_and(|owner| key_records.contains(&owner))
            })
            .collect();
        let waiting = stored.iter().any(|k| {
            k.stage == mailzone_records::DkimStage::Pending && served.contains(&k.selector)
        });
        if !waiting {
            continue;
        }
        if !everywhere {
            confirmed
                .progress
                .step(&item.zone, "confirming every server serves the DKIM keys");
            let origin = propagation::Origin {
                server: item.server,
                primary: confirmed.primary,
            };
            propagation::wait(
                origin,
                &item.zone,
                &ChangeSet::default(),
                &[],
                confirmed.serial,
                confirmed.progress,
                confirmed.sent,
            )
            .await?;
            everywhere = true;
        }
        let changes =
            crate::dkim::promote_served(store, domain, Some(&served), request.records.now_unix)
                .await?;
        if changes.is_empty() {
            continue;
        }
        if let Err(e) =
            crate::dkim::run_on_key_change(loaded, &request.records.state_dir, domain, &changes)
                .await
        {
            report.on_key_change_failures.push(e.to_string());
        }
        report.dkim_changes.push((name.clone(), changes));
    }
    Ok(())
}

fn outcome_summary(outcome: &ZoneOutcome) -> String {
    let n = outcome.changes.adds.len() + outcome.changes.deletes.len();
    match (outcome.method, n, outcome.applied) {
        (None, _, _) => "in sync (serial unchanged)".into(),
        (_, 0, _) => "in sync".into(),
        (_, _, true) => format!("{n} record changes applied"),
        (_, _, false) => format!("{n} record changes planned"),
    }
}

async fn reconcile_zone(
    store: &Store,
    connection: &connect::Connection,
    item: &ZonePlan<'_>,
    request: &ReconcileRequest,
    progress: &dyn Progress,
    propagation_queries: &AtomicU64,
    known: Option<&ZoneState>,
) -> Result<ZoneOutcome, EngineError> {
    let provider = connection.provider.as_ref();
    let zone = &item.zone;
    let server_name = &item.server.name;
    let digest = item.desired_digest();
    let dns = |e: DnsError| EngineError::Dns {
        zone: zone.as_str().to_string(),
        error: e,
    };

    let capabilities = provider.capabilities();
    // Only worth a SOA query when the desired records are those last found in sync: with
    // other desired records the zone must be read whatever its serial. A provider without
    // a serial is read every time.
    if let Some(known) = known.filter(|k| k.desired_digest == digest && capabilities.serial) {
        progress.step(zone, "checking the SOA serial");
        let serial = provider.serial(zone).await.map_err(dns)?;
        if known.serial == serial {
            return Ok(ZoneOutcome {
                zone: zone.clone(),
                dns_server: server_name.clone(),
                domains: item.domains.clone(),
                method: None,
                capabilities,
                serial,
                changes: ChangeSet::default(),
                applied: false,
                updates_sent: 0,
                replans: 0,
            });
        }
    }

    let mut replans = 0;
    loop {
        let mut ledger = store.ledger(zone).await?;
        ledger.retain(|e| item.owns(&e.name));
        let wanted = wanted_rrsets(&item.desired, &ledger);
        progress.step(zone, "reading the zone");
        let mut snapshot = provider.read_zone(zone, &wanted).await.map_err(dns)?;
        let desired = desired_for(&item.desired, &capabilities);
        if !capabilities.ttl_read {
            adopt_desired_ttls(&mut snapshot.records, &desired);
        }
        let mut changes = diff::diff(
            zone,
            &desired,
            &snapshot.records,
            &ledger,
            &item.managed_types,
        );
        changes.read_serial = Some(snapshot.serial);
        let mut outcome = ZoneOutcome {
            zone: zone.clone(),
            dns_server: server_name.clone(),
            domains: item.domains.clone(),
            method: Some(snapshot.method),
            capabilities,
            serial: snapshot.serial,
            changes,
            applied: false,
            updates_sent: 0,
            replans,
        };
        if outcome.changes.is_empty() {
            // Only an apply remembers a zone in sync: a plan is a read and leaves the state
            // database as it found it.
            if request.apply {
                let state = ZoneState {
                    serial: snapshot.serial,
                    desired_digest: digest,
                };
                store
                    .set_zone_state(zone, server_name, &state, crate::clock::unix_now())
                    .await?;
            }
            return Ok(outcome);
        }
        if !request.apply {
            return Ok(outcome);
        }
        check_delete_limit(&outcome, &item.desired, request)?;
        if let Some(hook) = &request.after_read {
            hook(zone);
        }
        // The remembered state is left as it is: it vouches only for the serial it names,
        // and this UPDATE, if it lands, moves the serial. A crash before the new state is
        // written costs a full read next time, never a wrong "in sync".
        let intent: Vec<LedgerEntry> = outcome
            .changes
            .adds
            .iter()
            .map(|a| LedgerEntry {
                purpose: a.purpose,
                name: a.record.name.clone(),
                data: a.record.data.clone(),
            })
            .collect();
        store
            .ledger_add(zone, &intent, crate::clock::unix_now())
            .await?;
        crate::crash::point("ledger-intent");
        progress.step(zone, "sending the update");
        match provider.apply(&outcome.changes).await {
            Ok(applied) => {
                crate::crash::point("update-sent");
                let deleted: Vec<_> = outcome
                    .changes
                    .deletes
                    .iter()
                    .map(|(_, l)| l.record.clone())
                    .collect();
                store.ledger_remove(zone, &deleted).await?;
                outcome.applied = true;
                outcome.updates_sent = applied.messages;
                let serial = match applied.serial {
                    Some(serial) => serial,
                    None => provider.serial(zone).await.map_err(dns)?,
                };
                outcome.serial = serial;
                progress.step(zone, "waiting for propagation");
                crate::crash::point("propagation");
                let origin = propagation::Origin {
                    server: item.server,
                    primary: connection.endpoint,
                };
                propagation::wait(
                    origin,
                    zone,
                    &outcome.changes,
                    &snapshot.records,
                    serial,
                    progress,
                    propagation_queries,
                )
                .await?;
                let state = ZoneState {
                    serial,
                    desired_digest: digest,
                };
                store
                    .set_zone_state(zone, server_name, &state, crate::clock::unix_now())
                    .await?;
                return Ok(outcome);
            }
            Err(e) if e.is_conflict() && replans < MAX_REPLANS => {
                replans += 1;
                tracing::info!(
                    zone = zone.as_str(),
                    replans,
                    "the zone changed while planning; re-reading"
                );
                progress.step(zone, "the zone changed meanwhile; re-reading");
            }
            Err(e) => return Err(dns(e)),
        }
    }
}

/// The desired records as the provider will hold them: TTLs below its minimum raised to it.
fn desired_for(desired: &[DesiredRecord], capabilities: &Capabilities) -> Vec<DesiredRecord> {
    desired
        .iter()
        .map(|d| {
            let mut d = d.clone();
            d.record.ttl = d.record.ttl.max(capabilities.min_ttl);
            d
        })
        .collect()
}

/// For a provider whose listing has no TTLs: a live record holding desired data is taken
/// to have the desired TTL, foreign ones the TTL of their RRset's desired records (or
/// stay at 0), so that only data is compared.
fn adopt_desired_ttls(live: &mut [mailzone_records::diff::LiveRecord], desired: &[DesiredRecord]) {
    let by_rrset: BTreeMap<(&Name, &'static str), u32> = desired
        .iter()
        .map(|d| ((&d.record.name, d.record.data.rtype()), d.record.ttl))
        .collect();
    for record in live.iter_mut() {
        let key = (&record.record.name, record.record.data.rtype());
        if let Some(ttl) = by_rrset.get(&key) {
            record.record.ttl = *ttl;
        }
    }
}

/// The (owner, type) pairs to query one by one when a transfer is refused: everything
/// desired, and everything the ledger says mailzone published.
fn wanted_rrsets(
    desired: &[DesiredRecord],
    ledger: &BTreeSet<LedgerEntry>,
) -> Vec<(Name, &'static str)> {
    let set: BTreeSet<(Name, &'static str)> = desired
        .iter()
        .map(|d| (d.record.name.clone(), d.record.data.rtype()))
        .chain(ledger.iter().map(|e| (e.name.clone(), e.data.rtype())))
        .collect();
    set.into_iter().collect()
}

/// Plans that delete more than a share of the managed records are refused
/// without `--force` — a config mistake should not empty a zone. Deletes that only shrink
/// an RRset the plan still wants (a retired TLSA digest withdrawn beside the current one)
/// are routine rollover steps, not counted.
fn check_delete_limit(
    outcome: &ZoneOutcome,
    desired: &[DesiredRecord],
    request: &ReconcileRequest,
) -> Result<(), EngineError> {
    if request.force {
        return Ok(());
    }
    let rrset_still_wanted = |record: &Record| {
        desired
            .iter()
            .any(|d| d.record.name == record.name && d.record.data.rtype() == record.data.rtype())
    };
    let deletes = outcome
        .entries()
        .iter()
        .filter(|e| matches!(e, PlanEntry::Delete(_, record) if !rrset_still_wanted(record)))
        .count();
    let managed = outcome.changes.managed.max(deletes).max(1);
    let share = deletes as f64 / managed as f64;
    if deletes > 0 && share > request.delete_limit {
        return Err(EngineError::DeleteLimit {
            zone: outcome.zone.as_str().to_string(),
            deletes,
            managed,
            limit_percent: (request.delete_limit * 100.0).round() as u32,
        });
    }
    Ok(())
}

/// One zone's outcome as JSON (the `zones[]` items of `plan`/`apply --format json` and of
/// the API's plan).
pub fn zone_json(zone: &ZoneOutcome) -> serde_json::Value {
    let changes: Vec<serde_json::Value> = zone
        .entries()
        .into_iter()
        .map(|entry| {
            let (action, purpose, old, new) = match entry {
                PlanEntry::Add(d) => ("add", Some(d.purpose), vec![], vec![d.record]),
                PlanEntry::Replace { purpose, old, new } => ("replace", Some(purpose), old, new),
                PlanEntry::Delete(t, r) => ("delete", t, vec![r], vec![]),
            };
            let first = new.first().or(old.first()).expect("a change has a record");
            serde_json::json!({
                "action": action,
                "recordType": purpose,
                "name": first.name.to_string(),
                "type": first.data.rtype(),
                "old": old.iter().map(record_json).collect::<Vec<_>>(),
                "new": new.iter().map(record_json).collect::<Vec<_>>(),
            })
        })
        .collect();
    serde_json::json!({
        "zone": zone.zone.as_str(),
        "dnsServer": zone.dns_server,
        "domains": zone.domains.iter().map(Name::as_str).collect::<Vec<_>>(),
        "serial": zone.serial,
        "readBy": zone.method.map(ReadMethod::name),
        "capabilities": zone.capabilities.json(),
        "applied": zone.applied,
        "updatesSent": zone.updates_sent,
        "replans": zone.replans,
        "changes": changes,
    })
}

fn record_json(record: &mailzone_records::Record) -> serde_json::Value {
    serde_json::json!({ "ttl": record.ttl, "value": record.data.value(), "rdata": zonefile::rdata_presentation(&record.data) })
}
