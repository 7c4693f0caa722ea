//! One run of `plan` or `apply` over the selected domains: the batches planned (a zone
//! whose plan inputs are unchanged left unplanned), each batch's zones reconciled on two
//! threads while the next is planned, the DKIM provider zones gathered and reconciled
//! last, the served pending DKIM keys promoted after each zone.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use futures::StreamExt as _;

use mailzone_records::diff::ChangeSet;
use mailzone_records::planner::inputs::remembered;
use mailzone_records::zones::{self, ZonePlan, ZonePlans};
use mailzone_records::{DnsServer, Domain, Name, RecordPurpose};
use mailzone_store::{Store, ZoneState};

use super::writes::ZoneWrites;
use super::{
    BATCH_DOMAINS, ReconcileReport, ReconcileRequest, ZoneOutcome, ZoneStart, cores,
    delegated_zone, failure, in_sync_by_serial, must_read, reconcile_zone,
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

/// Each zone's outcome by position, or the state database's failure that stopped them.
type ZoneResults = Result<Vec<(usize, Result<ZoneDone, ZoneFailure>)>, EngineError>;

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
        })
    }

    /// Every batch, then the gathered DKIM provider zones.
    pub(super) async fn all(
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
/// (and DNS server) in the same batch, in the order each zone's first domain comes.
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
