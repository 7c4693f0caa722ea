//! The `plan` and `apply` use cases: read each zone, diff it against the
//! desired records, and (for apply) send the difference in one atomic UPDATE, re-planning
//! when a concurrent edit trips the prerequisites, then wait for propagation.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use futures::StreamExt as _;

use mailzone_dns::{Capabilities, DnsError, ReadMethod};
use mailzone_records::diff::{self, ChangeSet, LedgerEntry, PlanEntry};
use mailzone_records::zones::{self, ZonePlan};
use mailzone_records::{
    DesiredRecord, DnsServer, Domain, Name, Record, RecordPurpose, RrType, zonefile,
};
use mailzone_store::{Store, ZoneState, ZoneWrite};

use crate::error::ZoneFailure;
use crate::progress::Progress;
use crate::propagation;
use crate::records::{RecordPlanner, RecordsRequest};
use crate::{EngineError, LoadedConfig, connect};

mod cores;
mod writes;

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
    /// Drive half of the zones on a second thread (on a multi-thread runtime). The caller's
    /// task is blocked meanwhile, so only a caller with nothing else to poll in that task
    /// sets it (the CLI; not the service, whose task also renews its lease).
    pub both_cores: bool,
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
    let zones_planned = run.zones_planned.load(Ordering::Relaxed);
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

/// A zone's work with its position in the run (outcomes are reported in that order).
type Positioned<'a> = (usize, ZoneWork<'a>);

/// A zone on its way through a run.
struct ZoneWork<'a> {
    plan: ZonePlan<'a>,
    /// The zone's state remembered by the last run, once read with the states of its
    /// batch (a DKIM provider zone's is read when its turn comes).
    known: Option<Option<ZoneState>>,
    /// The digest of what its desired records are planned from, when it can be computed
    /// (`RecordPlanner::inputs_digest`).
    inputs: Option<String>,
    /// Whether `plan.desired` holds its records. A zone whose inputs digest is the one it
    /// was last found in sync with is left unplanned: found in sync by its serial, it never
    /// needs its records; otherwise they are planned when it is read.
    planned: bool,
}

impl<'a> ZoneWork<'a> {
    /// A zone planned with its records, its state not read yet.
    fn planned(plan: ZonePlan<'a>) -> Self {
        ZoneWork {
            plan,
            known: None,
            inputs: None,
            planned: true,
        }
    }
}

/// A batch's zones: the domains' own zones (in plan order), the DKIM provider zones'
/// shares of the batch (gathered over the run), and the domains managed by hand.
struct BatchPlan<'a> {
    zones: Vec<ZoneWork<'a>>,
    providers: Vec<ZonePlan<'a>>,
    manual: Vec<Name>,
}

/// The key of a zone's remembered state: (zone, DNS server).
fn state_key(plan: &ZonePlan<'_>) -> (String, String) {
    (plan.zone.as_str().to_string(), plan.server.name.clone())
}

/// Each zone's outcome by position, or the state database's failure that stopped them.
type ZoneResults = Result<Vec<(usize, Result<ZoneDone, ZoneFailure>)>, EngineError>;

/// What a run shares between its zones.
struct Run<'a> {
    loaded: &'a LoadedConfig,
    request: &'a ReconcileRequest,
    progress: &'a dyn Progress,
    store: &'a Store,
    /// Plans the records of the selected domains, and digests what they are planned from.
    planner: &'a RecordPlanner<'a>,
    /// The zones of DKIM providers the selected domains publish their keys into: gathered
    /// over the batches and reconciled last.
    provider_zones: HashSet<(&'a Name, &'a str)>,
    /// The zones' ledger and state writes, committed in groups.
    writes: ZoneWrites,
    /// Each DNS server's connection, made when its first zone comes up; `None` when it
    /// could not be made (each of its zones then tries again and fails on its own).
    connections: std::sync::Mutex<HashMap<String, Option<Arc<connect::Connection>>>>,
    /// `maxConcurrentZones`: each DNS server's zones in flight, whatever the run's
    /// overall concurrency.
    limits: HashMap<String, Arc<tokio::sync::Semaphore>>,
    /// The selected domains by name.
    by_name: HashMap<&'a Name, &'a Domain>,
    /// The propagation watcher asks the authoritative servers directly, not through a
    /// provider: its queries are counted here.
    propagation_queries: AtomicU64,
    /// Zones whose records were planned (for the report).
    zones_planned: AtomicU64,
    /// Zones holding TLSA records: how many the run planned, how many it found served.
    tlsa_zones: AtomicU64,
    tlsa_served: AtomicU64,
}

/// A zone reconciled, with the DKIM keys its publication made active.
struct ZoneDone {
    outcome: ZoneOutcome,
    dkim_changes: Vec<(Name, Vec<crate::dkim::KeyChange>)>,
    on_key_change_failures: Vec<String>,
}

impl<'a> Run<'a> {
    async fn new(
        loaded: &'a LoadedConfig,
        request: &'a ReconcileRequest,
        progress: &'a dyn Progress,
        store: &'a Store,
        planner: &'a RecordPlanner<'a>,
        domains: &[&'a Domain],
        writes: ZoneWrites,
    ) -> Result<Run<'a>, EngineError> {
        let mut servers: BTreeSet<&str> = BTreeSet::new();
        for &d in domains {
            let own = zones::own_zone(d);
            let delegated = delegated_zone(d, &request.records.types);
            servers.extend(own.into_iter().chain(delegated).map(|(_, server)| server));
        }
        let limits = servers
            .into_iter()
            .filter_map(|name| loaded.config.dns_server(name))
            .map(|server| {
                let permits = server.max_concurrent_zones.max(1);
                (
                    server.name.clone(),
                    Arc::new(tokio::sync::Semaphore::new(permits)),
                )
            })
            .collect();
        Ok(Run {
            loaded,
            request,
            progress,
            store,
            planner,
            provider_zones: provider_zones(domains, &request.records.types),
            writes,
            connections: std::sync::Mutex::new(HashMap::new()),
            limits,
            by_name: domains.iter().map(|d| (&d.name, *d)).collect(),
            propagation_queries: AtomicU64::new(0),
            zones_planned: AtomicU64::new(0),
            tlsa_zones: AtomicU64::new(0),
            tlsa_served: AtomicU64::new(0),
        })
    }

    /// Every batch, then the gathered DKIM provider zones.
    async fn all(
        &self,
        domains: &[&'a Domain],
    ) -> Result<(ReconcileReport, Vec<(usize, ZoneFailure)>), EngineError> {
        let loaded = self.loaded;
        let mut report = ReconcileReport::default();
        let mut outcomes: Vec<(usize, ZoneOutcome)> = Vec::new();
        let mut failures: Vec<(usize, ZoneFailure)> = Vec::new();
        let mut gathered: Vec<ZonePlan<'a>> = Vec::new();
        let mut gathered_at: HashMap<(Name, String), usize> = HashMap::new();
        let mut next = 0usize;
        let sink = self.request.on_zone.as_ref();
        let mut collect = |mut results: Vec<(usize, Result<ZoneDone, ZoneFailure>)>,
                           report: &mut ReconcileReport| {
            // Each call holds zones after those of the call before: sorted, they go out in
            // plan order.
            results.sort_by_key(|(at, _)| *at);
            for (at, result) in results {
                match result {
                    Ok(done) => {
                        report.dkim_changes.extend(done.dkim_changes);
                        report
                            .on_key_change_failures
                            .extend(done.on_key_change_failures);
                        match sink {
                            Some(sink) => sink(&done.outcome),
                            None => outcomes.push((at, done.outcome)),
                        }
                    }
                    Err(failure) => failures.push((at, failure)),
                }
            }
        };
        // Zones wait here until a batch's worth is planned, then run together while the
        // next batch is planned: the DNS server is not left idle while records are made.
        let mut in_flight: Vec<Positioned<'a>> = Vec::new();
        for batch in zone_batches(domains) {
            let ready = if in_flight.len() >= BATCH_DOMAINS {
                std::mem::take(&mut in_flight)
            } else {
                Vec::new()
            };
            let (results, plans) = self
                .zones_on_both_cores(ready, self.plan_batch(&batch))
                .await;
            collect(results?, &mut report);
            let plans = plans?;
            report.manual_domains.extend(plans.manual);
            for item in plans.providers {
                let key = (item.zone.clone(), item.server.name.clone());
                match gathered_at.get(&key) {
                    Some(&at) => gathered[at].absorb(item),
                    None => {
                        gathered_at.insert(key, gathered.len());
                        gathered.push(item);
                    }
                }
            }
            for work in plans.zones {
                in_flight.push((next, work));
                next += 1;
            }
        }
        for mut item in gathered {
            item.settle(&loaded.config, loaded.publishing());
            in_flight.push((next, ZoneWork::planned(item)));
            next += 1;
        }
        let (results, ()) = self.zones_on_both_cores(in_flight, async {}).await;
        collect(results?, &mut report);
        outcomes.sort_by_key(|(at, _)| *at);
        report.zones = outcomes.into_iter().map(|(_, o)| o).collect();
        Ok((report, failures))
    }

    /// A batch's zones. The states of the domains' own zones are read together first: a
    /// zone whose inputs digest is the one it was last found in sync with is not planned
    /// (most zones of a run that changes nothing), every other domain is.
    async fn plan_batch(&self, batch: &[&'a Domain]) -> Result<BatchPlan<'a>, EngineError> {
        let (loaded, types) = (self.loaded, &self.request.records.types);
        let invalid = |e: zones::ZonePlanError| EngineError::Usage(e.to_string());
        let outline = zones::outline_zones(&loaded.config, loaded.publishing(), batch, types)
            .map_err(invalid)?;
        let own: Vec<ZonePlan<'a>> = outline
            .zones
            .into_iter()
            .filter(|plan| !self.is_provider_zone(plan))
            .collect();
        let keys: Vec<(String, String)> = own.iter().map(state_key).collect();
        let mut states = self.store.zone_states_of(&keys).await?;
        let mut works = Vec::with_capacity(own.len());
        for (plan, key) in own.into_iter().zip(keys) {
            let known = states.remove(&key);
            let inputs = self.planner.inputs_digest(&self.domains_of(&plan)).await?;
            let unchanged = inputs.is_some()
                && known.as_ref().and_then(|k| k.inputs_digest.as_ref()) == inputs.as_ref();
            works.push(ZoneWork {
                plan,
                known: Some(known),
                inputs,
                planned: !unchanged,
            });
        }
        let to_plan: Vec<&Domain> = {
            let unplanned: HashSet<&Name> = works
                .iter()
                .filter(|work| !work.planned)
                .flat_map(|work| &work.plan.domains)
                .collect();
            let planned = |d: &&Domain| !unplanned.contains(&d.name);
            batch.iter().copied().filter(planned).collect()
        };
        let planned = self.planner.plan(&to_plan).await?;
        let plans = zones::plan_zones(&loaded.config, loaded.publishing(), &planned, types)
            .map_err(invalid)?;
        let mut providers = Vec::new();
        let mut own_plans = HashMap::with_capacity(plans.zones.len());
        for plan in plans.zones {
            if self.is_provider_zone(&plan) {
                providers.push(plan);
            } else {
                own_plans.insert(state_key(&plan), plan);
            }
        }
        for work in works.iter_mut().filter(|work| work.planned) {
            work.plan = own_plans
                .remove(&state_key(&work.plan))
                .expect("a zone whose domains were all planned has a plan");
        }
        Ok(BatchPlan {
            zones: works,
            providers,
            manual: plans.manual,
        })
    }

    /// Plans the records of a zone left unplanned, now that it must be read.
    async fn plan_now(&self, item: &mut ZonePlan<'a>) -> Result<(), EngineError> {
        let planned = self.planner.plan(&self.domains_of(item)).await?;
        let (loaded, types) = (self.loaded, &self.request.records.types);
        let plans = zones::plan_zones(&loaded.config, loaded.publishing(), &planned, types)
            .map_err(|e| EngineError::Usage(e.to_string()))?;
        *item = plans
            .zones
            .into_iter()
            .find(|plan| plan.zone == item.zone && plan.server.name == item.server.name)
            .expect("a zone's domains planned again make the same zone");
        Ok(())
    }

    /// The selected domains publishing into `plan`'s zone, in plan order.
    fn domains_of(&self, plan: &ZonePlan<'_>) -> Vec<&'a Domain> {
        plan.domains
            .iter()
            .filter_map(|name| self.by_name.get(name).copied())
            .collect()
    }

    fn is_provider_zone(&self, plan: &ZonePlan<'_>) -> bool {
        self.provider_zones
            .contains(&(&plan.zone, plan.server.name.as_str()))
    }

    /// Reconciles `items` in two halves, with `beside` (the next batch's planning) on a
    /// thread of its own: three threads the OS shares over the two cores. Driven beside
    /// the second half on its thread, the planning made that half the slower one, and the
    /// first waited for it (a 10,000-zone warm no-op: 730 ms, now 620 ms).
    async fn zones_on_both_cores<F>(
        &self,
        items: Vec<Positioned<'a>>,
        beside: F,
    ) -> (ZoneResults, F::Output)
    where
        F: std::future::Future + Send,
        F::Output: Send,
    {
        let (first, rest) = self.halves(items);
        let two = self.request.both_cores;
        let (first, (rest, beside)) = cores::both(
            two,
            self.zones(first),
            cores::both(two, self.zones(rest), beside),
        )
        .await;
        let results = first.and_then(|mut results| {
            results.extend(rest?);
            Ok(results)
        });
        (results, beside)
    }

    /// `items` split in two for two cores, each half with half the run's concurrency; a
    /// run one zone at a time keeps them together.
    fn halves(&self, mut items: Vec<Positioned<'a>>) -> (Vec<Positioned<'a>>, Vec<Positioned<'a>>) {
        if self.request.concurrency <= 1 {
            return (items, Vec::new());
        }
        let rest = items.split_off(items.len() / 2);
        (items, rest)
    }

    /// Zones of one half worked on at once.
    fn half_concurrency(&self) -> usize {
        self.request.concurrency.div_ceil(2).max(1)
    }

    /// Reconciles `items`, half the run's concurrency at a time, with their stored states
    /// read in a few queries.
    async fn zones(
        &self,
        items: Vec<Positioned<'a>>,
    ) -> Result<Vec<(usize, Result<ZoneDone, ZoneFailure>)>, EngineError> {
        if items.is_empty() {
            return Ok(Vec::new());
        }
        let unread: Vec<(String, String)> = items
            .iter()
            .filter(|(_, work)| work.known.is_none())
            .map(|(_, work)| state_key(&work.plan))
            .collect();
        let mut known_states = if unread.is_empty() {
            HashMap::new()
        } else {
            self.store.zone_states_of(&unread).await?
        };
        let mut ready = Vec::with_capacity(items.len());
        for (at, work) in items {
            let ZoneWork {
                plan: item,
                known,
                inputs,
                planned,
            } = work;
            let known = known.unwrap_or_else(|| known_states.remove(&state_key(&item)));
            let connection = self.connection(item.server).await;
            // An unplanned zone's inputs are those its remembered digest was planned from.
            let digest = match (&known, planned) {
                (Some(known), false) => known.desired_digest.clone(),
                _ => item.desired_digest(),
            };
            let start = ZoneStart {
                read: must_read(known.as_ref(), &digest, &connection),
                known,
                digest,
                inputs,
                planned,
                ledger: None,
            };
            ready.push((at, item, connection, start));
        }
        // The ledgers of the zones that will be read whatever their serial, in a few
        // queries: read one by one they cost a round trip to the state database per zone.
        let reading: Vec<&Name> = ready
            .iter()
            .filter(|(_, _, _, start)| start.read)
            .map(|(_, item, _, _)| &item.zone)
            .collect();
        if !reading.is_empty() {
            let mut ledgers = self.store.ledgers_of(&reading).await?;
            for (_, item, _, start) in ready.iter_mut().filter(|(.., start)| start.read) {
                start.ledger = Some(ledgers.remove(item.zone.as_str()).unwrap_or_default());
            }
        }
        // Boxed as `Send` futures, named before the stream is built: the service runs this
        // inside spawned tasks, and an unboxed closure stream trips the compiler's
        // higher-ranked lifetime check for `Send`.
        let runs: Vec<futures::future::BoxFuture<'_, (usize, Result<ZoneDone, ZoneFailure>)>> =
            ready
                .into_iter()
                .map(|(at, item, connection, start)| {
                    Box::pin(async move { (at, self.zone(item, connection, start).await) })
                        as futures::future::BoxFuture<'_, _>
                })
                .collect();
        Ok(futures::stream::iter(runs)
            .buffer_unordered(self.half_concurrency())
            .collect()
            .await)
    }

    /// The DNS server's connection, made on its first zone.
    async fn connection(
        &self,
        server: &DnsServer,
    ) -> Result<Arc<connect::Connection>, EngineError> {
        let known = self
            .connections
            .lock()
            .expect("the connections lock is never poisoned")
            .get(&server.name)
            .cloned();
        if let Some(Some(connection)) = known {
            return Ok(connection);
        }
        let made = connect::connect(self.loaded, server, self.store.state_dir()).await;
        let mut connections = self
            .connections
            .lock()
            .expect("the connections lock is never poisoned");
        // The other thread's zones may have connected meanwhile: theirs is kept, so that
        // every zone counts its messages on the one connection the report adds up.
        if let Some(Some(connection)) = connections.get(&server.name) {
            return Ok(connection.clone());
        }
        match made {
            Ok(connection) => {
                let connection = Arc::new(connection);
                connections.insert(server.name.clone(), Some(connection.clone()));
                Ok(connection)
            }
            Err(e) => {
                connections.insert(server.name.clone(), None);
                Err(e)
            }
        }
    }

    /// One zone: reconciled under its DNS server's limit, then its served DKIM keys
    /// promoted.
    async fn zone(
        &self,
        item: ZonePlan<'a>,
        connection: Result<Arc<connect::Connection>, EngineError>,
        start: ZoneStart,
    ) -> Result<ZoneDone, ZoneFailure> {
        let progress = self.progress;
        let has_tlsa = item.managed_types.contains(&RecordPurpose::Tlsa);
        if has_tlsa {
            self.tlsa_zones.fetch_add(1, Ordering::Relaxed);
        }
        let connection = match connection {
            Ok(connection) => connection,
            Err(e) => {
                progress.zone_started(&item.zone);
                progress.zone_failed(&item.zone, &e.to_string());
                return Err(failure(&item, e));
            }
        };
        let _turn = match self.limits.get(&item.server.name) {
            Some(limit) => Some(limit.clone().acquire_owned().await),
            None => None,
        };
        progress.zone_started(&item.zone);
        let mut item = item;
        let result = self.reconcile(&mut item, &connection, start).await;
        let outcome = match result {
            Ok(outcome) => {
                progress.zone_finished(&item.zone, &outcome_summary(&outcome));
                outcome
            }
            Err(e) => {
                progress.zone_failed(&item.zone, &e.to_string());
                return Err(failure(&item, e));
            }
        };
        if has_tlsa {
            self.tlsa_served.fetch_add(1, Ordering::Relaxed);
        }
        let mut done = ZoneDone {
            outcome,
            dkim_changes: Vec::new(),
            on_key_change_failures: Vec::new(),
        };
        // Only now, with every record of this zone served by every authoritative server,
        // may a pending DKIM key sign: the rotation promotion path, for the keys whose
        // records were part of what was applied.
        if self.request.apply && item.managed_types.contains(&RecordPurpose::Dkim) {
            let confirmed = Confirmed {
                applied: done.outcome.applied,
                primary: connection.endpoint,
                serial: done.outcome.serial,
                progress,
                sent: &self.propagation_queries,
            };
            if let Err(e) = promote_applied(self, &item, confirmed, &mut done).await {
                return Err(failure(&item, e));
            }
        }
        Ok(done)
    }

    /// Reconciles one zone: in sync by its serial alone when its desired records are those
    /// last found in sync, or else (its records planned now if they were left unplanned)
    /// read, diffed and updated.
    async fn reconcile(
        &self,
        item: &mut ZonePlan<'a>,
        connection: &connect::Connection,
        mut start: ZoneStart,
    ) -> Result<ZoneOutcome, EngineError> {
        let in_sync = in_sync_by_serial(
            &self.writes,
            connection,
            item,
            self.request,
            self.progress,
            &start,
        )
        .await?;
        if !start.planned && in_sync.is_none() {
            self.plan_now(item).await?;
            start.digest = item.desired_digest();
            start.planned = true;
        }
        if start.planned {
            self.zones_planned.fetch_add(1, Ordering::Relaxed);
        }
        if let Some(outcome) = in_sync {
            return Ok(outcome);
        }
        reconcile_zone(
            self.store,
            &self.writes,
            connection,
            item,
            self.request,
            self.progress,
            &self.propagation_queries,
            start,
        )
        .await
    }

    /// Whether every zone of this run that holds TLSA records serves what was planned: each
    /// was applied and confirmed on every authoritative server, or found already in sync.
    fn tlsa_published(&self) -> bool {
        let planned = self.tlsa_zones.load(Ordering::Relaxed);
        planned > 0 && self.tlsa_served.load(Ordering::Relaxed) == planned
    }

    /// DNS messages sent in all: by the providers and by the propagation watcher.
    fn messages_sent(&self) -> u64 {
        let connections = self
            .connections
            .lock()
            .expect("the connections lock is never poisoned");
        connections
            .values()
            .flatten()
            .map(|c| c.provider.messages_sent())
            .sum::<u64>()
            + self.propagation_queries.load(Ordering::Relaxed)
    }
}

/// The zones of DKIM providers (`delegateDnsServer`, `delegateTo`) the selected domains
/// publish their keys into.
fn provider_zones<'d>(
    domains: &[&'d Domain],
    types: &[RecordPurpose],
) -> HashSet<(&'d Name, &'d str)> {
    domains
        .iter()
        .filter_map(|d| delegated_zone(d, types))
        .collect()
}

/// The selected domains in batches of about [`BATCH_DOMAINS`], the domains sharing a zone
/// (and DNS server) in the same batch, in the order each zone's first domain comes.
fn zone_batches<'d>(domains: &[&'d Domain]) -> Vec<Vec<&'d Domain>> {
    let mut groups: Vec<Vec<&'d Domain>> = Vec::new();
    let mut group_of: HashMap<(&Name, &str), usize> = HashMap::new();
    for &domain in domains {
        match zones::own_zone(domain) {
            Some(key) => match group_of.get(&key) {
                Some(&at) => groups[at].push(domain),
                None => {
                    group_of.insert(key, groups.len());
                    groups.push(vec![domain]);
                }
            },
            None => groups.push(vec![domain]),
        }
    }
    let mut batches: Vec<Vec<&'d Domain>> = Vec::new();
    let mut current: Vec<&'d Domain> = Vec::new();
    for group in groups {
        current.extend(group);
        if current.len() >= BATCH_DOMAINS {
            batches.push(std::mem::take(&mut current));
        }
    }
    if !current.is_empty() {
        batches.push(current);
    }
    batches
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
    run: &Run<'_>,
    item: &ZonePlan<'_>,
    confirmed: Confirmed<'_>,
    done: &mut ZoneDone,
) -> Result<(), EngineError> {
    let (loaded, request, store) = (run.loaded, run.request, run.store);
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
        let Some(domain) = run.by_name.get(name) else {
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
            done.on_key_change_failures.push(e.to_string());
        }
        done.dkim_changes.push((name.clone(), changes));
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
    let serial = provider.serial(zone).await.map_err(|e| EngineError::Dns {
        zone: zone.as_str().to_string(),
        error: e,
    })?;
    if known.serial != serial {
        return Ok(None);
    }
    if request.apply && start.inputs.is_some() && start.inputs != known.inputs_digest {
        let state = ZoneState {
            serial,
            desired_digest: start.digest.clone(),
            inputs_digest: start.inputs.clone(),
        };
        writes.write_later(zone_state(item, state));
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
    let dns = |e: DnsError| EngineError::Dns {
        zone: zone.as_str().to_string(),
        error: e,
    };

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
                let state = ZoneState {
                    serial: snapshot.serial,
                    desired_digest: digest,
                    inputs_digest: inputs,
                };
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
                    inputs_digest: inputs,
                };
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

#[cfg(test)]
mod tests {
    use std::fmt::Write as _;
    use std::path::Path;

    use super::*;

    /// 300 domains with a zone each, then `sub.d000.test` published into `d000.test`.
    fn config() -> mailzone_records::Config {
        let mut text = String::from(
            "[server]\nhostname = \"mail.example.org\"\nipv4 = [\"192.0.2.1\"]\n\n\
             [dnsServer]\nprimary = { kind = \"rfc2136\", host = \"127.0.0.1\" }\n\n[domain]\n",
        );
        for i in 0..300 {
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
        let config = config();
        let domains: Vec<&Domain> = config.domains.iter().collect();
        let batches = zone_batches(&domains);
        assert_eq!(batches.len(), 2);
        assert!(batches[0].len() >= BATCH_DOMAINS, "{}", batches[0].len());
        let first: Vec<&str> = batches[0].iter().map(|d| d.name.as_str()).collect();
        assert_eq!(first[..2], ["d000.test", "sub.d000.test"]);
        let mut all: Vec<&str> = batches.iter().flatten().map(|d| d.name.as_str()).collect();
        assert_eq!(all.len(), 301);
        all.sort_unstable();
        all.dedup();
        assert_eq!(all.len(), 301, "each domain in one batch only");
    }
}
