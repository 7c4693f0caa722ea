//! The `plan` and `apply` use cases: read each zone, diff it against the
//! desired records, and (for apply) send the difference in one atomic UPDATE, re-planning
//! when a concurrent edit trips the prerequisites, then wait for propagation. Here: the
//! request and report, the entry point and one zone's reconcile; `run.rs` drives the
//! batches and zones of a run, `cores.rs` its two threads, `writes.rs` its state writes.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use mailzone_dns::{Capabilities, DnsError, ReadMethod};
use mailzone_records::diff::{self, ChangeSet, LedgerEntry, PlanEntry};
use mailzone_records::planner::inputs::remembered;
use mailzone_records::zones::{self, ZonePlan};
use mailzone_records::{DesiredRecord, Domain, Name, Record, RecordPurpose, RrType};
use mailzone_store::{Store, ZoneState, ZoneWrite};

use crate::error::ZoneFailure;
use crate::progress::Progress;
use crate::propagation;
use crate::records::{RecordPlanner, RecordsRequest};
use crate::{EngineError, LoadedConfig, connect};

mod cores;
mod in_order;
mod json;
mod room;
mod run;
mod writes;

pub use json::{ZoneJson, zone_json};
use run::Run;
use writes::ZoneWrites;

/// How many times a zone is re-read and re-planned after a concurrent edit.
pub const MAX_REPLANS: u32 = 3;
/// Default share of managed records an apply may delete without `--force`.
pub const DEFAULT_DELETE_LIMIT: f64 = 0.30;

/// A hook run between reading a zone and sending its update.
pub type AfterRead = Arc<dyn Fn(&Name) + Send + Sync>;

/// Receives each zone's outcome once it is known, in plan order; a run given one keeps no
/// zone outcomes in its report (`ReconcileReport::zones` stays empty), so the caller can
/// write a report over 100,000 zones as it goes instead of holding it.
pub type ZoneSink = Arc<dyn Fn(&ZoneOutcome) + Send + Sync>;

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
    /// Where each zone's outcome goes instead of the report, when set.
    pub on_zone: Option<ZoneSink>,
    /// Reconcile the zones on two threads (on a multi-thread runtime), the planning on a
    /// third. The caller's task is blocked meanwhile, so only a caller with nothing else
    /// to poll in that task sets it (the CLI; not the service, whose task also renews its
    /// lease).
    pub both_cores: bool,
}

/// Default number of zones a run holds at once, an RFC 2136 server's default
/// `maxConcurrentZones` (a 10,000-zone publish into one Knot, 16 of them at the server:
/// 7.9-8.7 s with 16 in flight, 6.9-7.0 s with 32, no better with 64; then 32 at the
/// server too: 1.13× knotd's CPU instead of 1.17×). With other servers' zones or a lower
/// limit, the zones beyond a server's limit wait at it, ready to go the moment one of its
/// zones finishes.
pub const DEFAULT_CONCURRENCY: usize = 32;

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
    /// Zones whose desired records this run planned. The others were found in sync by
    /// their serial with the inputs (settings, keys, certificate) they were last found in
    /// sync with, and needed no records.
    pub zones_planned: u64,
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

/// Domains planned together: a run holds the records of one batch at a time (and of the
/// zones in flight), never those of every domain. A batch ends only between zones: the
/// domains of one zone are planned, and published, together.
const BATCH_DOMAINS: usize = 256;
/// The first batch of a run: small, so that its first zones go out early.
const FIRST_BATCH_DOMAINS: usize = 16;

/// Plans (and with `apply`, applies) every selected domain under automatic management,
/// batch by batch: plan, read, diff, apply and record each zone, then let it go. The zones
/// of a DKIM provider (`delegateTo`), which hold keys of domains of every batch, are
/// gathered over the batches and published last, each in one update.
pub async fn reconcile(
    loaded: &LoadedConfig,
    request: &ReconcileRequest,
    progress: &dyn Progress,
) -> Result<ReconcileReport, EngineError> {
    let domains = crate::records::select_domains(loaded, &request.records.domains)?;
    let planner = RecordPlanner::open(loaded, &request.records, &domains).await?;
    let opened = match open_run_store(request, &domains).await {
        Ok(opened) => opened,
        Err(e) => {
            planner.close().await;
            return Err(e);
        }
    };
    let outcome = match &opened {
        Some(opened) => {
            publish_all(loaded, request, progress, &opened.store, &planner, &domains).await
        }
        None => manual_only(loaded, request, &planner, &domains).await,
    };
    let planned_tlsa = planner.close().await;
    let (report, mut failures, tlsa_published) = match outcome {
        Ok(done) => done,
        Err(e) => {
            if let Some(opened) = opened {
                opened.close().await;
            }
            return Err(e);
        }
    };
    // The TLSA rollover state the records were planned with becomes the stored state only
    // now that they are served: a replaced digest's `retireAfter` runs from this publication.
    // Not a zone's failure: the state database's.
    let mut saving_tlsa = Ok(());
    if let (Some(opened), Some(tlsa)) = (&opened, planned_tlsa.as_ref())
        && request.apply
        && tlsa_published
    {
        saving_tlsa = crate::tlsa::record_publication(&opened.store, tlsa).await;
    }
    if let Some(opened) = opened {
        opened.close().await;
    }
    failures.sort_by_key(|(at, _)| *at);
    let failures: Vec<ZoneFailure> = failures.into_iter().map(|(_, f)| f).collect();
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

/// The state database of a run: opened once a selected domain may publish anything (a
/// run over domains under manual DNS management only never opens it).
async fn open_run_store(
    request: &ReconcileRequest,
    domains: &[&Domain],
) -> Result<Option<crate::records::RequestStore>, EngineError> {
    let types = &request.records.types;
    if !domains
        .iter()
        .any(|d| zones::own_zone(d).is_some() || delegated_zone(d, types).is_some())
    {
        return Ok(None);
    }
    let store = crate::records::RequestStore::open(
        request.records.store.as_ref(),
        &request.records.state_dir,
    )
    .await?;
    Ok(Some(store))
}

/// The DKIM provider zone (and its DNS server) a domain's delegated keys are published
/// into, when it delegates them (`delegateTo`) and the run publishes DKIM.
fn delegated_zone<'d>(domain: &'d Domain, types: &[RecordPurpose]) -> Option<(&'d Name, &'d str)> {
    let publishes_dkim = types.is_empty() || types.contains(&RecordPurpose::Dkim);
    domain
        .dkim_management
        .delegation()
        .filter(|_| publishes_dkim)
        .map(|d| (&d.zone, d.dns_server.as_str()))
}

/// A run's report, its zones' failures (by position in the plan) and whether every zone
/// holding TLSA records serves what was planned.
type RunOutcome = (ReconcileReport, Vec<(usize, ZoneFailure)>, bool);

/// Every batch of the selected domains published through one [`Run`].
async fn publish_all(
    loaded: &LoadedConfig,
    request: &ReconcileRequest,
    progress: &dyn Progress,
    store: &Store,
    planner: &RecordPlanner<'_>,
    domains: &[&Domain],
) -> Result<RunOutcome, EngineError> {
    let (writes, writer) = ZoneWrites::new(store);
    let run = Run::new(loaded, request, progress, store, planner, domains, writes).await?;
    let outcome = run.all(domains).await;
    let messages = run.messages_sent();
    let zones_planned = run.zones_planned();
    let tlsa_published = run.tlsa_published();
    // The run's queue of writes goes with it, which ends the writer.
    drop(run);
    writer.finished().await;
    let (mut report, failures) = outcome?;
    report.messages = messages;
    report.zones_planned = zones_planned;
    Ok((report, failures, tlsa_published))
}

/// A run whose selected domains are all under manual DNS management: their records are
/// planned (automatic DKIM keys made, as `records` would), nothing is published.
async fn manual_only(
    loaded: &LoadedConfig,
    request: &ReconcileRequest,
    planner: &RecordPlanner<'_>,
    domains: &[&Domain],
) -> Result<RunOutcome, EngineError> {
    let mut report = ReconcileReport::default();
    for batch in domains.chunks(BATCH_DOMAINS) {
        let planned = planner.plan(batch).await?;
        let plans = zones::plan_zones(
            &loaded.config,
            loaded.publishing(),
            &planned,
            &request.records.types,
        )
        .map_err(|e| EngineError::Usage(e.to_string()))?;
        report.manual_domains.extend(plans.manual);
    }
    Ok((report, Vec::new(), false))
}

/// What a run knows of a zone before working on it.
struct ZoneStart {
    /// The zone's state remembered by the last run.
    known: Option<ZoneState>,
    /// The digest of the zone's desired records.
    digest: String,
    /// The digest of what they are planned from, when it can be computed.
    inputs: Option<String>,
    /// Whether the zone's records are planned (else `digest` is the remembered one).
    planned: bool,
    /// Whether the zone must be read whatever its serial.
    read: bool,
    /// The zone's ledger, when read ahead with those of other zones.
    ledger: Option<BTreeSet<LedgerEntry>>,
}

/// A zone must be read when its desired records are not those last found in sync, or
/// when its provider has no serial to compare (or could not be reached).
fn must_read(
    known: Option<&ZoneState>,
    digest: &str,
    connection: &Result<Arc<connect::Connection>, EngineError>,
) -> bool {
    let has_serial = connection
        .as_ref()
        .is_ok_and(|c| c.provider.capabilities().serial);
    !(has_serial && known.is_some_and(|k| k.desired_digest == digest))
}

/// A DNS failure met while working on `zone`.
fn dns_failure(zone: &Name) -> impl Fn(DnsError) -> EngineError + Copy + '_ {
    move |error| EngineError::Dns {
        zone: zone.as_str().to_string(),
        error,
    }
}

/// The zone's outcome when its serial is the one it was last found in sync at and its
/// desired records are those it was found in sync with: nothing to read. Only worth a SOA
/// query then: with other desired records the zone must be read whatever its serial, and
/// a provider without a serial is read every time. An apply that finds the zone so with
/// other inputs (settings changed in a way that plans the same records) remembers them,
/// so that the next run need not plan it.
async fn in_sync_by_serial(
    writes: &ZoneWrites,
    connection: &connect::Connection,
    item: &ZonePlan<'_>,
    request: &ReconcileRequest,
    progress: &dyn Progress,
    start: &ZoneStart,
) -> Result<Option<ZoneOutcome>, EngineError> {
    let Some(known) = start.known.as_ref().filter(|_| !start.read) else {
        return Ok(None);
    };
    let (provider, zone) = (connection.provider.as_ref(), &item.zone);
    progress.step(zone, "checking the SOA serial");
    let serial = provider.serial(zone).await.map_err(dns_failure(zone))?;
    if known.serial != serial {
        return Ok(None);
    }
    // An unplanned zone was left so because its remembered inputs matched: nothing new to
    // remember, and no digest to compute again.
    if request.apply && start.planned && start.inputs.is_some() {
        let state = in_sync_state(serial, start.digest.clone(), start.inputs.as_deref());
        if state.inputs_digest != known.inputs_digest {
            writes.write_later(zone_state(item, state));
        }
    }
    Ok(Some(ZoneOutcome {
        zone: zone.clone(),
        dns_server: item.server.name.clone(),
        domains: item.domains.clone(),
        method: None,
        capabilities: provider.capabilities(),
        serial,
        changes: ChangeSet::default(),
        applied: false,
        updates_sent: 0,
        replans: 0,
    }))
}

#[allow(clippy::too_many_arguments)]
async fn reconcile_zone(
    store: &Store,
    writes: &ZoneWrites,
    connection: &connect::Connection,
    item: &ZonePlan<'_>,
    request: &ReconcileRequest,
    progress: &dyn Progress,
    propagation_queries: &AtomicU64,
    start: ZoneStart,
) -> Result<ZoneOutcome, EngineError> {
    let provider = connection.provider.as_ref();
    let zone = &item.zone;
    let server_name = &item.server.name;
    let ZoneStart {
        digest,
        inputs,
        ledger: mut read_ahead,
        ..
    } = start;
    let dns = dns_failure(zone);

    let capabilities = provider.capabilities();
    let mut replans = 0;
    loop {
        let mut ledger = match read_ahead.take() {
            Some(ledger) => ledger,
            None => store.ledger(zone).await?,
        };
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
                let state = in_sync_state(snapshot.serial, digest, inputs.as_deref());
                writes.write_later(zone_state(item, state));
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
        writes
            .write(ZoneWrite::LedgerAdd {
                zone: zone.clone(),
                entries: intent,
            })
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
                writes.write_later(ZoneWrite::LedgerRemove {
                    zone: zone.clone(),
                    records: deleted,
                });
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
                    transferred: Some(&snapshot),
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
                let state = in_sync_state(serial, digest, inputs.as_deref());
                writes.write_later(zone_state(item, state));
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

/// A zone found in sync at `serial` with the desired records of `digest`, planned from the
/// inputs of `inputs` when known: the two bound together
/// ([`mailzone_records::planner::inputs::remembered`]).
fn in_sync_state(serial: u32, digest: String, inputs: Option<&str>) -> ZoneState {
    ZoneState {
        serial,
        inputs_digest: inputs.map(|inputs| remembered(inputs, &digest)),
        desired_digest: digest,
    }
}

/// `item`'s zone remembered as in sync on its DNS server.
fn zone_state(item: &ZonePlan<'_>, state: ZoneState) -> ZoneWrite {
    ZoneWrite::State {
        zone: item.zone.clone(),
        dns_server: item.server.name.clone(),
        state,
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
    let by_rrset: BTreeMap<(&Name, RrType), u32> = desired
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
fn wanted_rrsets(desired: &[DesiredRecord], ledger: &BTreeSet<LedgerEntry>) -> Vec<(Name, RrType)> {
    let set: BTreeSet<(Name, RrType)> = desired
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
        .changes
        .plain_deletes()
        .filter(|record| !rrset_still_wanted(record))
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

#[cfg(test)]
mod tests {
    use std::fmt::Write as _;
    use std::path::Path;

    use super::run::zone_batches;
    use super::*;

    /// `n` domains with a zone each, then `sub.d000.test` published into `d000.test`.
    fn config(n: usize) -> mailzone_records::Config {
        let mut text = String::from(
            "[server]\nhostname = \"mail.example.org\"\nipv4 = [\"192.0.2.1\"]\n\n\
             [dnsServer]\nprimary = { kind = \"rfc2136\", host = \"127.0.0.1\" }\n\n[domain]\n",
        );
        for i in 0..n {
            let _ = writeln!(
                text,
                "\"d{i:03}.test\".dnsManagement.automatic = {{ dnsServer = \"primary\" }}"
            );
        }
        text.push_str(
            "\"sub.d000.test\".dnsManagement.automatic = { dnsServer = \"primary\", origin = \"d000.test\" }\n",
        );
        mailzone_records::config::parse(&text, Path::new("/etc/mailzone")).unwrap()
    }

    #[test]
    fn batches_keep_the_domains_of_a_zone_together_and_every_domain_once() {
        let config = config(300);
        let domains: Vec<&Domain> = config.domains.iter().collect();
        let batches = zone_batches(&domains);
        // 16 (d000.test and sub.d000.test, then d001 … d014), 32, 64, 128, the rest.
        let sizes: Vec<usize> = batches.iter().map(Vec::len).collect();
        assert_eq!(sizes, [FIRST_BATCH_DOMAINS, 32, 64, 128, 61]);
        let first: Vec<&str> = batches[0].iter().map(|d| d.name.as_str()).collect();
        assert_eq!(first[..2], ["d000.test", "sub.d000.test"]);
        let mut all: Vec<&str> = batches.iter().flatten().map(|d| d.name.as_str()).collect();
        assert_eq!(all.len(), 301);
        all.sort_unstable();
        all.dedup();
        assert_eq!(all.len(), 301, "each domain in one batch only");
    }

    #[test]
    fn batches_grow_twice_over_up_to_the_batch_size() {
        let config = config(1000);
        let domains: Vec<&Domain> = config.domains.iter().collect();
        let sizes: Vec<usize> = zone_batches(&domains).iter().map(Vec::len).collect();
        assert_eq!(sizes, [16, 32, 64, 128, BATCH_DOMAINS, BATCH_DOMAINS, 249]);
    }
}
