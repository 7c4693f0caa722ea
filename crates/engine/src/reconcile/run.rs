//! One run of `plan` or `apply` over the selected domains: the batches planned (a zone
//! whose plan inputs are unchanged left unplanned) and their zones queued on one thread,
//! reconciled on two that each take the next zone as one of theirs finishes (no thread
//! waits for a batch's slowest zone), the DKIM provider zones gathered and queued last,
//! the served pending DKIM keys promoted after each zone, the outcomes reported in plan
//! order.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use futures::StreamExt as _;

use mailzone_records::diff::ChangeSet;
use mailzone_records::planner::inputs::remembered;
use mailzone_records::zones::{self, ZonePlan, ZonePlans};
use mailzone_records::{DnsServer, Domain, Name, RecordPurpose};
use mailzone_store::{Store, ZoneState};

use super::in_order::{InOrder, Release};
use super::room::Room;
use super::writes::ZoneWrites;
use super::{
    BATCH_DOMAINS, FIRST_BATCH_DOMAINS, ReconcileReport, ReconcileRequest, ZoneOutcome, ZoneSink,
    ZoneStart, cores, delegated_zone, failure, in_sync_by_serial, must_read, reconcile_zone,
};
use crate::error::ZoneFailure;
use crate::progress::Progress;
use crate::propagation;
use crate::records::RecordPlanner;
use crate::{EngineError, LoadedConfig, connect};

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

/// A zone the config cannot make (a delegated DKIM scope that is no valid name).
fn invalid_zone(error: zones::ZonePlanError) -> EngineError {
    EngineError::Usage(error.to_string())
}

/// The key of a zone's remembered state: (zone, DNS server).
fn state_key(plan: &ZonePlan<'_>) -> (String, String) {
    (plan.zone.as_str().to_string(), plan.server.name.clone())
}

/// A zone prepared for its reconcile: its position, plan, DNS server connection and
/// what it starts from.
type Ready<'a> = (
    usize,
    ZonePlan<'a>,
    Result<Arc<connect::Connection>, EngineError>,
    ZoneStart,
);

/// Prepared zones waiting in the queue for a reconciling thread, at most this many.
const QUEUED_ZONES: usize = BATCH_DOMAINS;

/// Results waiting for those of earlier zones, at most this many: a batch's worth
/// beyond the zones in flight, so that one slow zone stalls the run only after that.
const RESULTS_WINDOW: usize = 2 * BATCH_DOMAINS;

/// A run's zone results on their way to its report, in plan order.
type Results<'s> = InOrder<Result<ZoneDone, ZoneFailure>, Collected<'s>>;

/// What a run's zones gave, in plan order: each outcome (or, with a sink, only what the
/// report keeps), each failure by position, the DKIM keys made active.
struct Collected<'s> {
    sink: Option<&'s ZoneSink>,
    outcomes: Vec<ZoneOutcome>,
    failures: Vec<(usize, ZoneFailure)>,
    dkim_changes: Vec<(Name, Vec<crate::dkim::KeyChange>)>,
    on_key_change_failures: Vec<String>,
}

impl<'s> Collected<'s> {
    fn new(sink: Option<&'s ZoneSink>) -> Self {
        Collected {
            sink,
            outcomes: Vec::new(),
            failures: Vec::new(),
            dkim_changes: Vec::new(),
            on_key_change_failures: Vec::new(),
        }
    }
}

impl Release<Result<ZoneDone, ZoneFailure>> for Collected<'_> {
    fn release(&mut self, at: usize, result: Result<ZoneDone, ZoneFailure>) {
        match result {
            Ok(done) => {
                self.dkim_changes.extend(done.dkim_changes);
                self.on_key_change_failures
                    .extend(done.on_key_change_failures);
                match self.sink {
                    Some(sink) => sink(&done.outcome),
                    None => self.outcomes.push(done.outcome),
                }
            }
            Err(failure) => self.failures.push((at, failure)),
        }
    }
}

/// What a run shares between its zones.
pub(super) struct Run<'a> {
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
    /// Room in the queue of prepared zones.
    room: Room,
}

/// A zone reconciled, with the DKIM keys its publication made active.
struct ZoneDone {
    outcome: ZoneOutcome,
    dkim_changes: Vec<(Name, Vec<crate::dkim::KeyChange>)>,
    on_key_change_failures: Vec<String>,
}

impl<'a> Run<'a> {
    pub(super) async fn new(
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
            room: Room::new(QUEUED_ZONES),
        })
    }

    /// Every batch, then the gathered DKIM provider zones: planned and prepared on one
    /// thread, reconciled on two (each pulling the next prepared zone as one of its own
    /// finishes, so neither waits for the other), the outcomes put back in plan order.
    pub(super) async fn all(
        &self,
        domains: &[&'a Domain],
    ) -> Result<(ReconcileReport, Vec<(usize, ZoneFailure)>), EngineError> {
        // Unbounded: `room` bounds the queue.
        let (ready, taken) = flume::unbounded();
        let results = InOrder::new(
            RESULTS_WINDOW,
            Collected::new(self.request.on_zone.as_ref()),
        );
        let (first, second) = self.concurrency_per_thread();
        let two = self.request.both_cores;
        let ((), (), produced) = cores::spread(
            two,
            self.consume(taken.clone(), first, &results),
            self.consume(taken, second, &results),
            self.produce(domains, ready, &results),
        )
        .await;
        let manual_domains = produced?;
        let collected = results.finish();
        let report = ReconcileReport {
            zones: collected.outcomes,
            manual_domains,
            dkim_changes: collected.dkim_changes,
            on_key_change_failures: collected.on_key_change_failures,
            ..ReconcileReport::default()
        };
        Ok((report, collected.failures))
    }

    /// Plans every batch and hands its zones, prepared, to the threads reconciling them;
    /// the DKIM provider zones, which gather keys from every batch, go last. Returns the
    /// domains managed by hand. Ends (and so ends the reconciling threads once they have
    /// taken every zone) on the first failure of the state database.
    async fn produce(
        &self,
        domains: &[&'a Domain],
        ready: flume::Sender<Ready<'a>>,
        results: &Results<'_>,
    ) -> Result<Vec<Name>, EngineError> {
        let mut manual = Vec::new();
        let mut gathered: Vec<ZonePlan<'a>> = Vec::new();
        let mut gathered_at: HashMap<(Name, String), usize> = HashMap::new();
        let mut next = 0usize;
        let mut positioned = |works: Vec<ZoneWork<'a>>| -> Vec<Positioned<'a>> {
            works
                .into_iter()
                .map(|work| {
                    next += 1;
                    (next - 1, work)
                })
                .collect()
        };
        for batch in zone_batches(domains) {
            let plans = self.plan_batch(&batch).await?;
            manual.extend(plans.manual);
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
            self.hand_over(positioned(plans.zones), &ready, results)
                .await?;
        }
        let (loaded, publishing) = (self.loaded, self.loaded.publishing());
        let providers = gathered
            .into_iter()
            .map(|mut item| {
                item.settle(&loaded.config, publishing);
                ZoneWork::planned(item)
            })
            .collect();
        self.hand_over(positioned(providers), &ready, results)
            .await?;
        Ok(manual)
    }

    /// The run's concurrency split over the two reconciling threads; a run one zone at a
    /// time uses one.
    fn concurrency_per_thread(&self) -> (usize, usize) {
        let concurrency = self.request.concurrency.max(1);
        (concurrency.div_ceil(2), concurrency / 2)
    }

    /// A batch's zones. The states of the domains' own zones are read together first: a
    /// zone whose inputs digest is the one it was last found in sync with is not planned
    /// (most zones of a run that changes nothing), every other domain is.
    async fn plan_batch(&self, batch: &[&'a Domain]) -> Result<BatchPlan<'a>, EngineError> {
        let (loaded, types) = (self.loaded, &self.request.records.types);
        let outline = zones::outline_zones(&loaded.config, loaded.publishing(), batch, types)
            .map_err(invalid_zone)?;
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
            let unchanged = match (&inputs, &known) {
                (Some(inputs), Some(known)) => {
                    known.inputs_digest.as_deref()
                        == Some(&remembered(inputs, &known.desired_digest))
                }
                _ => false,
            };
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
        let plans = self.planned_zones(&to_plan).await?;
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
        let plans = self.planned_zones(&self.domains_of(item)).await?;
        *item = plans
            .zones
            .into_iter()
            .find(|plan| plan.zone == item.zone && plan.server.name == item.server.name)
            .expect("a zone's domains planned again make the same zone");
        Ok(())
    }

    /// The records of `domains` planned and grouped by zone.
    async fn planned_zones(&self, domains: &[&'a Domain]) -> Result<ZonePlans<'a>, EngineError> {
        let planned = self.planner.plan(domains).await?;
        let (loaded, types) = (self.loaded, &self.request.records.types);
        zones::plan_zones(&loaded.config, loaded.publishing(), &planned, types)
            .map_err(invalid_zone)
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

    /// Prepares `items` (their stored states and ledgers read in a few queries, their DNS
    /// server's connection) and queues them for the reconciling threads, each once the
    /// results waiting to go out in order leave room for it.
    async fn hand_over(
        &self,
        items: Vec<Positioned<'a>>,
        ready: &flume::Sender<Ready<'a>>,
        results: &Results<'_>,
    ) -> Result<(), EngineError> {
        let mut room = self.room.taker();
        for item in self.prepare(items).await? {
            results.room_for(item.0).await;
            if !room.one().await {
                // A reconciling thread panicked: its panic ends the run.
                break;
            }
            // The queue is unbounded (`room` bounds it): sending never waits.
            if ready.send(item).is_err() {
                // Both reconciling threads are gone (one panicked): nothing takes zones.
                break;
            }
        }
        Ok(())
    }

    /// `items` with what their reconcile starts from.
    async fn prepare(&self, items: Vec<Positioned<'a>>) -> Result<Vec<Ready<'a>>, EngineError> {
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
        Ok(ready)
    }

    /// Reconciles the zones `taken` from the queue, `concurrency` at a time, putting each
    /// result in `results` as it comes.
    async fn consume(
        &self,
        taken: flume::Receiver<Ready<'a>>,
        concurrency: usize,
        results: &Results<'_>,
    ) {
        if concurrency == 0 {
            return;
        }
        let _room = self.room.closed_on_panic();
        let mut running = futures::stream::FuturesUnordered::new();
        let mut open = true;
        loop {
            let room = open && running.len() < concurrency;
            tokio::select! {
                next = taken.recv_async(), if room => match next {
                    Ok(ready) => {
                        self.room.give_back();
                        running.push(self.reconcile_at(ready));
                    }
                    Err(_) => open = false,
                },
                Some((at, result)) = running.next(), if !running.is_empty() => {
                    results.put(at, result);
                }
                else => break,
            }
        }
    }

    /// One prepared zone reconciled, with its position. Boxed as a `Send` future named
    /// by a method, not a closure: the service runs this inside spawned tasks, and a
    /// closure over the zone trips the compiler's higher-ranked lifetime check for `Send`.
    fn reconcile_at(
        &self,
        (at, item, connection, start): Ready<'a>,
    ) -> futures::future::BoxFuture<'_, (usize, Result<ZoneDone, ZoneFailure>)> {
        Box::pin(async move { (at, self.zone(item, connection, start).await) })
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
        mut item: ZonePlan<'a>,
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

    /// Zones whose records this run planned.
    pub(super) fn zones_planned(&self) -> u64 {
        self.zones_planned.load(Ordering::Relaxed)
    }

    /// Whether every zone of this run that holds TLSA records serves what was planned: each
    /// was applied and confirmed on every authoritative server, or found already in sync.
    pub(super) fn tlsa_published(&self) -> bool {
        let planned = self.tlsa_zones.load(Ordering::Relaxed);
        planned > 0 && self.tlsa_served.load(Ordering::Relaxed) == planned
    }

    /// DNS messages sent in all: by the providers and by the propagation watcher.
    pub(super) fn messages_sent(&self) -> u64 {
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
/// (and DNS server) in the same batch, in the order each zone's first domain comes. The
/// first batch holds about [`FIRST_BATCH_DOMAINS`] and each next one twice as many up to
/// [`BATCH_DOMAINS`]: the first zones are read and updated while the next batches are
/// planned, instead of the DNS server waiting for a whole batch to be planned first.
pub(super) fn zone_batches<'d>(domains: &[&'d Domain]) -> Vec<Vec<&'d Domain>> {
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
    let mut size = FIRST_BATCH_DOMAINS;
    for group in groups {
        current.extend(group);
        if current.len() >= size {
            batches.push(std::mem::take(&mut current));
            size = (size * 2).min(BATCH_DOMAINS);
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
                transferred: None,
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
