//! The service's durable tasks (Stalwart's `DnsManagement` task and its kin): a worker claims
//! a due task with a lease, runs it while renewing the lease and reporting progress, and
//! ends it as `Succeeded`, `Retry` (transient failure, exponential backoff) or `Failed`
//! (permanent failure, or attempts used up) with a `failureReason`.
//!
//! Every step of a `DnsManagement` run is idempotent (read, diff, one atomic UPDATE with
//! prerequisites), so a run cut short anywhere — a crash, a lost lease, a shutdown — is
//! simply run again.

use futures::FutureExt;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use mailzone_records::{DnsManagement, Name, RecordPurpose};
use mailzone_store::{NewTask, Store, Task, TaskEnd};

use crate::progress::Progress;
use crate::reconcile::{DEFAULT_CONCURRENCY, DEFAULT_DELETE_LIMIT, ReconcileRequest};
use crate::{EngineError, LoadedConfig, RecordsRequest, clock, reconcile};

/// What a task does. Stored and shown by its name (`DnsManagement`, …).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TaskKind {
    /// Publish and reconcile a domain's records.
    DnsManagement,
    /// Move a domain's automatic DKIM keys through their stages (`mailzone dkim rotate`).
    DkimRotation,
    /// Publish a domain's TLSA records after the certificate files changed, and withdraw
    /// replaced digests when their `retireAfter` has passed (RFC 7671 §8.1).
    TlsaSync,
    /// Renew the `[server.acme]` certificate over DNS-01 (`mailzone acme renew`). Chained
    /// after a `DnsManagement` run: with `onSuccessRenewCertificate` (then it renews even
    /// when not due), or when the certificate is due. Its domain is the mail host.
    AcmeRenewal,
}

impl TaskKind {
    /// Every task kind this version runs.
    pub const ALL: [TaskKind; 4] = [
        TaskKind::DnsManagement,
        TaskKind::DkimRotation,
        TaskKind::TlsaSync,
        TaskKind::AcmeRenewal,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            TaskKind::DnsManagement => "DnsManagement",
            TaskKind::DkimRotation => "DkimRotation",
            TaskKind::TlsaSync => "TlsaSync",
            TaskKind::AcmeRenewal => "AcmeRenewal",
        }
    }

    pub fn parse(name: &str) -> Option<TaskKind> {
        TaskKind::ALL.into_iter().find(|k| k.as_str() == name)
    }

    /// A task of this kind for `domain`, due at `due_at` (Unix seconds), with no
    /// `updateRecords` subset and no chained renewal.
    pub fn task(self, domain: &str, due_at: i64) -> NewTask {
        NewTask {
            kind: self.as_str().to_string(),
            domain: domain.to_string(),
            update_records: vec![],
            on_success_renew_certificate: false,
            due_at,
        }
    }
}

impl std::fmt::Display for TaskKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The names of the kinds, as stored in a task's `kind`.
pub const DNS_MANAGEMENT: &str = TaskKind::DnsManagement.as_str();
pub const DKIM_ROTATION: &str = TaskKind::DkimRotation.as_str();
pub const TLSA_SYNC: &str = TaskKind::TlsaSync.as_str();
pub const ACME_RENEWAL: &str = TaskKind::AcmeRenewal.as_str();
/// Every task kind this version runs, by name.
pub const TASK_KINDS: [&str; 4] = [DNS_MANAGEMENT, DKIM_ROTATION, TLSA_SYNC, ACME_RENEWAL];

/// How tasks are retried and leased.
#[derive(Debug, Clone)]
pub struct TaskPolicy {
    /// Attempts before a transient failure becomes `Failed`.
    pub max_attempts: u32,
    /// The first retry's delay; each further one doubles it, up to `max_backoff`.
    pub first_backoff: Duration,
    pub max_backoff: Duration,
    /// How long a claimed task stays leased without renewal; renewed every third of it.
    pub lease: Duration,
}

impl Default for TaskPolicy {
    fn default() -> TaskPolicy {
        TaskPolicy {
            max_attempts: 8,
            first_backoff: Duration::from_secs(30),
            max_backoff: Duration::from_secs(3600),
            lease: Duration::from_secs(60),
        }
    }
}

impl TaskPolicy {
    /// The delay before attempt `attempts + 1`, after `attempts` failed ones.
    pub fn backoff(&self, attempts: u32) -> Duration {
        let factor = 2u32.saturating_pow(attempts.saturating_sub(1));
        self.first_backoff
            .saturating_mul(factor)
            .min(self.max_backoff)
    }
}

/// The tasks the automatic schedule asks for `domain`, due at `now`: a `DkimRotation`
/// task where mailzone rotates its keys, a `DnsManagement` task where it publishes.
fn automatic_tasks(domain: &mailzone_records::Domain, now: i64) -> impl Iterator<Item = NewTask> {
    // Keys rotate by themselves only where mailzone also publishes them: with manual
    // DNS the operator publishes each new key (`mailzone dkim rotate`), unless the keys
    // are delegated (`delegateTo`): they live in the provider's zone, which mailzone
    // publishes whatever the domain's own DNS management.
    let automatic_dns = matches!(domain.dns_management, DnsManagement::Automatic { .. });
    let rotation = matches!(
        domain.dkim_management,
        mailzone_records::DkimManagement::Automatic { .. }
    ) && (automatic_dns || domain.dkim_management.delegation().is_some());
    let name = domain.name.as_str();
    let rotation = rotation.then(|| TaskKind::DkimRotation.task(name, now));
    let publication = automatic_dns.then(|| TaskKind::DnsManagement.task(name, now));
    rotation.into_iter().chain(publication)
}

/// Schedules a `DnsManagement` task for every domain under automatic management and a
/// `DkimRotation` task for every such domain with automatic DKIM keys, and for every domain
/// with delegated keys. Domains that already have one waiting get none. The tasks are
/// returned, in the config's order; [`schedule_all`] schedules the same and only counts
/// them.
pub async fn schedule_automatic(
    store: &Store,
    loaded: &LoadedConfig,
) -> Result<Vec<Task>, EngineError> {
    let now = clock::unix_now();
    let wanted: Vec<NewTask> = loaded
        .config
        .domains
        .iter()
        .flat_map(|d| automatic_tasks(d, now))
        .collect();
    enqueue(store, &wanted, now, Enqueue::UnlessWaitingOrRunning).await
}

/// What [`schedule_automatic`] schedules (at start and on reload), [`DRIFT_SLICE`] domains
/// at a time, so that 100,000 domains never make 200,000 tasks in memory at once: how many
/// tasks stand for the schedule (new ones and those already waiting or running).
pub async fn schedule_all(store: &Store, loaded: &LoadedConfig) -> Result<usize, EngineError> {
    let mut cursor = DriftCursor::default();
    let mut tasks = 0;
    loop {
        let slice = cursor.schedule_next(store, loaded, DRIFT_SLICE).await?;
        tasks += slice.tasks;
        if slice.wrapped {
            return Ok(tasks);
        }
    }
}

/// The most domains one slice of the drift schedule covers. 500 domains are at most 1,000
/// tasks, read and written in two statements and one transaction
/// ([`Store::schedule_tasks`]): about 0.1 s of the database's write lock with 100,000
/// domains and the workers busy (bench/README.md). A config of up to 500 domains is one
/// slice, scheduled whole every interval as before slices existed. 100,000 domains under a
/// one-hour interval are 200 slices, one every 18 seconds.
pub const DRIFT_SLICE: usize = 500;

/// How the drift schedule spreads a config's domains over one interval.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DriftPlan {
    /// Slices per interval: `ceil(domains / DRIFT_SLICE)`, at least 1.
    pub slices: usize,
    /// Domains per slice: the domains shared evenly over the slices (at most
    /// [`DRIFT_SLICE`]).
    pub size: usize,
    /// The time between two slices: the interval over the slices.
    pub tick: Duration,
}

impl DriftPlan {
    /// The plan for `domains` domains under `interval`.
    pub fn new(domains: usize, interval: Duration) -> DriftPlan {
        let slices = domains.div_ceil(DRIFT_SLICE).max(1);
        DriftPlan {
            slices,
            size: domains.div_ceil(slices).max(1),
            tick: interval / u32::try_from(slices).unwrap_or(u32::MAX),
        }
    }
}

/// A cursor over the config's domains, in the config's order: each call schedules the next
/// slice, and the end of the list wraps around to its start. A config changed between two
/// slices (SIGHUP, the API) is followed by the name of the last domain scheduled, so that
/// domains added or removed before it shift no other domain out of its turn; a reload
/// schedules every domain anyway.
#[derive(Debug, Default)]
pub struct DriftCursor {
    next: usize,
    last: Option<Name>,
}

/// What one slice scheduled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Slice {
    /// The config's domains the slice covered (indexes).
    pub domains: std::ops::Range<usize>,
    /// The tasks standing for it: new ones and those already waiting or running.
    pub tasks: usize,
    /// The slice reached the end of the list: the next one starts over.
    pub wrapped: bool,
}

impl DriftCursor {
    /// The index of the next domain to schedule in `loaded`.
    fn position(&self, loaded: &LoadedConfig) -> usize {
        let domains = &loaded.config.domains;
        let Some(last) = &self.last else {
            return self.next.min(domains.len());
        };
        // Unchanged config: the last one scheduled is right before the cursor.
        if self.next > 0 && domains.get(self.next - 1).is_some_and(|d| &d.name == last) {
            return self.next;
        }
        match domains.iter().position(|d| &d.name == last) {
            Some(i) => i + 1,
            None => self.next.min(domains.len()),
        }
    }

    /// Schedules the tasks of the next `size` domains of `loaded` ([`automatic_tasks`]),
    /// due now, in few store round trips; a waiting or running task of a domain stands
    /// for its new one.
    pub async fn schedule_next(
        &mut self,
        store: &Store,
        loaded: &LoadedConfig,
        size: usize,
    ) -> Result<Slice, EngineError> {
        let domains = &loaded.config.domains;
        let start = self.position(loaded);
        let end = start.saturating_add(size.max(1)).min(domains.len());
        let now = clock::unix_now();
        let wanted: Vec<NewTask> = domains[start..end]
            .iter()
            .flat_map(|d| automatic_tasks(d, now))
            .collect();
        let tasks = enqueue(store, &wanted, now, Enqueue::UnlessWaitingOrRunning)
            .await?
            .len();
        let wrapped = end >= domains.len();
        self.last = if wrapped {
            None
        } else {
            domains.get(end - 1).map(|d| d.name.clone())
        };
        self.next = if wrapped { 0 } else { end };
        Ok(Slice {
            domains: start..end,
            tasks,
            wrapped,
        })
    }
}

/// Schedules a `TlsaSync` task, due now, for every domain whose TLSA records mailzone
/// publishes (the certificate files changed).
pub async fn schedule_tlsa_sync(
    store: &Store,
    loaded: &LoadedConfig,
) -> Result<Vec<Task>, EngineError> {
    let now = clock::unix_now();
    let wanted: Vec<NewTask> = loaded
        .config
        .domains
        .iter()
        .filter(|d| crate::tlsa::manages_tlsa(d))
        .map(|domain| TaskKind::TlsaSync.task(domain.name.as_str(), now))
        .collect();
    enqueue(store, &wanted, now, Enqueue::UnlessWaiting).await
}

/// Which task already there stands for a new one of the same domain and kind.
enum Enqueue {
    /// A waiting one ([`Store::create_task`]): a change must be published after it.
    UnlessWaiting,
    /// A waiting or running one ([`Store::schedule_task`]): a schedule only asks for a
    /// run soon.
    UnlessWaitingOrRunning,
}

/// Queues `tasks`, stopping at the first error: a schedule in batches of a few statements
/// each ([`Store::schedule_tasks`]), changes one by one.
async fn enqueue(
    store: &Store,
    tasks: &[NewTask],
    now: i64,
    how: Enqueue,
) -> Result<Vec<Task>, EngineError> {
    if let Enqueue::UnlessWaitingOrRunning = how {
        return Ok(store.schedule_tasks(tasks, now).await?);
    }
    let mut queued = Vec::with_capacity(tasks.len());
    for task in tasks {
        queued.push(store.create_task(task, now).await?);
    }
    Ok(queued)
}

/// One worker: claims and runs tasks.
pub struct Worker {
    pub store: Store,
    pub config: Arc<RwLock<Arc<LoadedConfig>>>,
    pub state_dir: std::path::PathBuf,
    /// Unique per process and worker: the lease owner.
    pub owner: String,
    /// The config file, read again (with the API's domains) when a task names a domain
    /// this worker does not know yet (another instance created it).
    pub config_path: std::path::PathBuf,
    pub policy: TaskPolicy,
}

/// What became of one claimed task.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ran {
    Ended(TaskEnd),
    /// Another worker took the task over (this one's lease had expired).
    LeaseLost,
}

/// The error a panicking task ends with.
fn panicked(panic: &(dyn std::any::Any + Send)) -> EngineError {
    let message = panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "no message".to_string());
    EngineError::Usage(format!(
        "internal error: the task panicked ({message}); this is a bug in mailzone"
    ))
}

impl Worker {
    /// Claims the next due task, if any.
    pub async fn claim(&self) -> Result<Option<Task>, EngineError> {
        let now = clock::unix_now();
        let until = clock::after(now, self.policy.lease);
        Ok(self.store.claim_task(&self.owner, now, until).await?)
    }

    /// Runs a claimed task to its end, renewing the lease meanwhile, and records the end.
    pub async fn run(&self, task: &Task) -> Result<Ran, EngineError> {
        let progress = TaskProgress::default();
        // A panic in a task is a bug, but it must not take the worker with it: the task ends
        // `Failed` with the panic's message and the worker goes on to the next one.
        let work = std::panic::AssertUnwindSafe(self.execute(task, &progress))
            .catch_unwind()
            .map(|ran| ran.unwrap_or_else(|panic| Err(panicked(panic.as_ref()))));
        tokio::pin!(work);
        // The renewals run beside the work, never instead of it: while a renewal waits for
        // a database connection, the work that may hold that connection goes on, so the two
        // cannot wait for each other until the pool times out and the lease is lost.
        let outcome = tokio::select! {
            outcome = &mut work => outcome,
            lost = self.renew_lease(task, &progress) => {
                lost?;
                tracing::warn!(task = %task.id, "lease lost: another worker runs this task now");
                return Ok(Ran::LeaseLost);
            }
        };
        let now = clock::unix_now();
        let end = task_end(&self.policy, task.attempts, outcome, now);
        if self
            .store
            .finish_task(&task.id, &self.owner, &end, now)
            .await?
        {
            tracing::info!(task = %task.id, domain = %task.domain, end = ?end, "task ended");
            Ok(Ran::Ended(end))
        } else {
            Ok(Ran::LeaseLost)
        }
    }

    /// Renews the lease of `task` every third of its length with the latest progress, until
    /// a renewal finds the task taken over (`Ok`) or fails (`Err`).
    async fn renew_lease(&self, task: &Task, progress: &TaskProgress) -> Result<(), EngineError> {
        let renew_every = self.policy.lease / 3;
        loop {
            tokio::time::sleep(renew_every).await;
            let now = clock::unix_now();
            let until = clock::after(now, self.policy.lease);
            let step = progress.latest();
            if !self
                .store
                .renew_task(&task.id, &self.owner, until, &step, now)
                .await?
            {
                return Ok(());
            }
        }
    }

    /// Gives the task back for a later run (graceful shutdown).
    pub async fn release(&self, task: &Task) -> Result<(), EngineError> {
        Ok(self
            .store
            .release_task(&task.id, &self.owner, clock::unix_now())
            .await?)
    }

    async fn execute(&self, task: &Task, progress: &TaskProgress) -> Result<String, EngineError> {
        if !TASK_KINDS.contains(&task.kind.as_str()) {
            return Err(EngineError::Usage(format!(
                "unknown task kind `{}`; this version runs {}",
                task.kind,
                TASK_KINDS.join(", ")
            )));
        }
        let mut loaded = self
            .config
            .read()
            .map(|c| Arc::clone(&c))
            .map_err(|_| EngineError::Usage("the configuration lock is poisoned".into()))?;
        if task.kind == ACME_RENEWAL {
            return self.renew_certificate(&loaded, task, progress).await;
        }
        let domain = Name::owner(&task.domain)
            .map_err(|e| EngineError::Usage(format!("task domain `{}`: {e}", task.domain)))?;
        if loaded.config.domain(&domain).is_none() {
            loaded =
                crate::load::reload_config(&self.config, &self.config_path, &self.store).await?;
        }
        if task.kind == DKIM_ROTATION {
            return self.rotate_dkim(&loaded, &domain, progress).await;
        }
        match loaded.config.domain(&domain).map(|d| &d.dns_management) {
            None => {
                return Err(EngineError::Usage(format!(
                    "domain {domain} is no longer configured"
                )));
            }
            Some(DnsManagement::Manual) => {
                return Err(EngineError::Usage(format!(
                    "domain {domain} is under manual DNS management: nothing to publish"
                )));
            }
            Some(DnsManagement::Automatic { .. }) => {}
        }
        let types = if task.kind == TLSA_SYNC {
            vec![RecordPurpose::Tlsa]
        } else {
            task.update_records
                .iter()
                .map(|t| {
                    t.parse::<RecordPurpose>()
                        .map_err(|e| EngineError::Usage(format!("updateRecords: {e}")))
                })
                .collect::<Result<Vec<_>, _>>()?
        };
        let request = ReconcileRequest {
            records: RecordsRequest {
                domains: vec![task.domain.clone()],
                types,
                state_dir: self.state_dir.clone(),
                now_unix: clock::unix_now(),
                store: Some(self.store.clone()),
            },
            apply: true,
            force: false,
            delete_limit: DEFAULT_DELETE_LIMIT,
            after_read: None,
            on_zone: None,
            concurrency: DEFAULT_CONCURRENCY,
            both_cores: false,
        };
        let report = reconcile(&loaded, &request, progress).await?;
        if let Some(failure) = report.on_key_change_failures.first() {
            return Err(EngineError::OnKeyChange(failure.clone()));
        }
        let changes: usize = report
            .zones
            .iter()
            .map(|z| z.changes.adds.len() + z.changes.deletes.len())
            .sum();
        self.schedule_tlsa_withdrawal(&loaded, &domain).await?;
        let summary = match changes {
            0 => format!("{domain}: in sync ({} DNS messages)", report.messages),
            n => format!(
                "{domain}: {n} record changes published and propagated ({} DNS messages)",
                report.messages
            ),
        };
        if task.kind != DNS_MANAGEMENT {
            return Ok(summary);
        }
        Ok(match self.chain_renewal(&loaded, task, &domain).await? {
            Some(note) => format!("{summary}; {note}"),
            None => summary,
        })
    }
}

impl Worker {
    /// A replaced TLSA digest is withdrawn at its time, not at the next drift check: a
    /// TlsaSync task is scheduled for then (one per domain; an earlier one stands).
    async fn schedule_tlsa_withdrawal(
        &self,
        loaded: &LoadedConfig,
        domain: &Name,
    ) -> Result<(), EngineError> {
        let manages = loaded
            .config
            .domain(domain)
            .is_some_and(crate::tlsa::manages_tlsa);
        if !manages {
            return Ok(());
        }
        if let Some(at) = crate::tlsa::next_withdrawal(loaded, &self.store).await? {
            let task = TaskKind::TlsaSync.task(domain.as_str(), at);
            // Not `schedule_task`: the running task (perhaps a TlsaSync itself) must not
            // stand for one due later.
            self.store.create_task(&task, clock::unix_now()).await?;
        }
        Ok(())
    }

    /// After a successful publication: an `AcmeRenewal` task when the task asks for one
    /// (`onSuccessRenewCertificate`), or when the domain holds a name of the certificate
    /// and it is due. A separate task, so a CA failure is retried on its own schedule and
    /// never makes the publication (already done) run again.
    async fn chain_renewal(
        &self,
        loaded: &LoadedConfig,
        task: &Task,
        domain: &Name,
    ) -> Result<Option<String>, EngineError> {
        let Some(acme) = &loaded.config.server.acme else {
            return Ok(task
                .on_success_renew_certificate
                .then(|| "no certificate renewal: the config has no [server.acme]".to_string()));
        };
        let now = clock::unix_now();
        let holds_a_name = loaded.config.domain(domain).is_some_and(|d| {
            acme.names.iter().any(|n| {
                mailzone_records::config::managed_zone(n, &loaded.config.domains)
                    .is_some_and(|owner| owner.name == d.name)
            })
        });
        let forced = task.on_success_renew_certificate;
        // An unreadable certificate file is the renewal task's failure to report, not
        // this publication's.
        let due = holds_a_name && crate::acme::is_due(loaded, now).unwrap_or(true);
        if !forced && !due {
            return Ok(None);
        }
        let renewal = NewTask {
            on_success_renew_certificate: forced,
            ..TaskKind::AcmeRenewal.task(loaded.config.server.hostname.as_str(), now)
        };
        let created = self.store.create_task(&renewal, now).await?;
        Ok(Some(format!(
            "certificate renewal chained: task {}",
            created.id
        )))
    }

    /// An `AcmeRenewal` task: renews when due, or always when it was asked for by
    /// `onSuccessRenewCertificate`.
    async fn renew_certificate(
        &self,
        loaded: &LoadedConfig,
        task: &Task,
        progress: &TaskProgress,
    ) -> Result<String, EngineError> {
        let request = crate::acme::RenewRequest {
            state_dir: self.state_dir.clone(),
            store: Some(self.store.clone()),
            force: task.on_success_renew_certificate,
            now_unix: clock::unix_now(),
        };
        let report = crate::acme::renew(loaded, &request, progress).await?;
        if report.outcome == crate::acme::Outcome::Issued {
            self.reload_for_tlsa().await;
        }
        let mut summary = match report.outcome {
            crate::acme::Outcome::NotDue => format!("certificate {}", report.reason),
            crate::acme::Outcome::Issued => format!(
                "certificate issued for {} ({}), written to {}",
                report.names.join(", "),
                report.reason,
                report.certificate.display()
            ),
        };
        if !report.leftover_challenges.is_empty() {
            summary.push_str(&format!(
                "; challenge records not removed: {}",
                report.leftover_challenges.join("; ")
            ));
        }
        Ok(summary)
    }

    /// Reads the config again after a new certificate was written, so publications compute
    /// TLSA records from it, and runs TlsaSync for the domains whose TLSA mailzone publishes
    /// (no need to wait for the service's certificate watch). A failure keeps the config in
    /// use (the next reload reports it).
    async fn reload_for_tlsa(&self) {
        let fresh =
            match crate::load::reload_config(&self.config, &self.config_path, &self.store).await {
                Ok(fresh) => fresh,
                Err(e) => {
                    tracing::warn!(error = %e, "config not reloaded after the new certificate");
                    return;
                }
            };
        if let Err(e) = schedule_tlsa_sync(&self.store, &fresh).await {
            tracing::warn!(error = %e, "TlsaSync not scheduled after the new certificate");
        }
    }

    async fn rotate_dkim(
        &self,
        loaded: &LoadedConfig,
        domain: &Name,
        progress: &TaskProgress,
    ) -> Result<String, EngineError> {
        let request = RecordsRequest {
            domains: vec![domain.as_str().to_string()],
            types: vec![],
            state_dir: self.state_dir.clone(),
            now_unix: clock::unix_now(),
            store: Some(self.store.clone()),
        };
        let reports = crate::dkim::rotate(loaded, &request, false, false, progress).await?;
        let Some(r) = reports.first() else {
            return Ok(format!("{domain}: no automatic DKIM keys"));
        };
        if let Some(failure) = &r.on_key_change_failed {
            return Err(EngineError::OnKeyChange(failure.clone()));
        }
        if let Some(waiting) = &r.waiting {
            return Ok(waiting.clone());
        }
        let moves: Vec<String> = [
            ("generated", &r.generated),
            ("activated", &r.activated),
            ("retiring", &r.retiring),
            ("withdrawn", &r.retired),
            ("deleted", &r.deleted),
        ]
        .iter()
        .filter(|(_, s)| !s.is_empty())
        .map(|(what, s)| format!("{what} {}", s.join(", ")))
        .collect();
        Ok(if moves.is_empty() {
            format!("{domain}: DKIM keys: nothing due")
        } else {
            format!("{domain}: DKIM keys: {}", moves.join("; "))
        })
    }
}

/// How a run ends: `Retry` (with backoff) for a transient failure while attempts are left,
/// `Failed` for a permanent one (its class, [`crate::error::FailureClass`], decides: a run
/// whose zones failed is retried when any of them failed transiently) or when the
/// attempts are used up. The reason is the error as shown (each zone with its DNS server).
pub fn task_end(
    policy: &TaskPolicy,
    attempts: u32,
    outcome: Result<String, EngineError>,
    now: i64,
) -> TaskEnd {
    match outcome {
        Ok(summary) => TaskEnd::Succeeded { result: summary },
        Err(e) if e.is_transient() && attempts < policy.max_attempts => {
            let delay = policy.backoff(attempts);
            TaskEnd::Retry {
                due_at: clock::after(now, delay),
                reason: format!(
                    "{e} (attempt {attempts} of {}; next in {})",
                    policy.max_attempts,
                    humantime::format_duration(delay)
                ),
            }
        }
        Err(e) => TaskEnd::Failed {
            reason: if e.is_transient() {
                format!("{e} (gave up after {attempts} attempts)")
            } else {
                e.to_string()
            },
        },
    }
}

/// Keeps the latest progress line of a running task.
#[derive(Default)]
struct TaskProgress {
    latest: Mutex<String>,
}

impl TaskProgress {
    fn latest(&self) -> String {
        self.latest.lock().map(|s| s.clone()).unwrap_or_default()
    }

    fn set(&self, line: String) {
        if let Ok(mut latest) = self.latest.lock() {
            *latest = line;
        }
    }
}

impl Progress for TaskProgress {
    fn zone_started(&self, zone: &Name) {
        self.set(format!("zone {zone}: starting"));
    }
    fn step(&self, zone: &Name, what: &str) {
        self.set(format!("zone {zone}: {what}"));
    }
    fn zone_finished(&self, zone: &Name, summary: &str) {
        self.set(format!("zone {zone}: {summary}"));
    }
    fn zone_failed(&self, zone: &Name, reason: &str) {
        self.set(format!("zone {zone}: failed: {reason}"));
    }
}

#[cfg(test)]
mod tests;
