//! The background work of `serve`: task workers, the drift schedule, the scheduled check
//! (`alerts`), and the signals (SIGHUP reloads the config, SIGTERM and Ctrl-C stop).

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use mailzone_engine::tasks::{
    DriftCursor, DriftPlan, Ran, Worker, schedule_all, schedule_tlsa_sync,
};
use mailzone_store::TaskEnd;
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::ServeOptions;
use crate::state::AppState;

/// Starts the workers and the drift schedule; they stop when `stop` turns true.
pub fn start(
    state: &AppState,
    options: &ServeOptions,
    stop: watch::Receiver<bool>,
) -> Vec<JoinHandle<()>> {
    let instance = instance_id();
    let mut handles = Vec::new();
    for n in 0..options.workers.max(1) {
        let worker = Worker {
            store: state.store.clone(),
            config: Arc::clone(&state.config),
            state_dir: options.state_dir.clone(),
            owner: format!("{instance}/{n}"),
            config_path: options.config_path.clone(),
            policy: options.policy.clone(),
        };
        handles.push(tokio::spawn(worker_loop(
            worker,
            state.clone(),
            stop.clone(),
            options.poll_interval,
        )));
    }
    handles.push(tokio::spawn(drift_schedule(
        state.clone(),
        options.reconcile_interval,
        stop.clone(),
    )));
    handles.push(tokio::spawn(crate::alerts::schedule(
        state.clone(),
        options.check.clone(),
        stop.clone(),
    )));
    handles.push(tokio::spawn(certificate_watch(
        state.clone(),
        options.certificate_check_interval,
        stop,
    )));
    handles
}

/// Reads the certificate files every `interval`; when they name other keys (a renewal, a
/// new `nextKey`), the config is reloaded and a TlsaSync task scheduled for every domain
/// whose TLSA records mailzone publishes.
async fn certificate_watch(
    state: AppState,
    interval: std::time::Duration,
    mut stop: watch::Receiver<bool>,
) {
    while waited(interval, &mut stop).await {
        let loaded = state.loaded();
        match mailzone_engine::load::certificate_files_changed(&loaded) {
            Ok(false) => continue,
            Ok(true) => {}
            Err(e) => {
                tracing::error!("cannot read the certificate files: {e}");
                continue;
            }
        }
        let Some(loaded) = reload_config(&state).await else {
            continue;
        };
        log_scheduled(
            "certificate files changed",
            "TlsaSync",
            schedule_tlsa_sync(&state.store, &loaded)
                .await
                .map(|tasks| tasks.len()),
        );
    }
}

/// `host:pid:random`: unique per process, readable in the `leaseOwner` of a task.
fn instance_id() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "localhost".into());
    let nonce: u32 = rand::random();
    format!("{host}:{}:{nonce:08x}", std::process::id())
}

async fn worker_loop(
    worker: Worker,
    state: AppState,
    mut stop: watch::Receiver<bool>,
    poll: std::time::Duration,
) {
    loop {
        if *stop.borrow() {
            return;
        }
        let task = match worker.claim().await {
            Ok(Some(task)) => task,
            Ok(None) => {
                tokio::select! {
                    () = tokio::time::sleep(poll) => {}
                    _ = stop.changed() => {}
                }
                continue;
            }
            Err(e) => {
                tracing::error!("cannot claim a task: {e}");
                tokio::select! {
                    () = tokio::time::sleep(poll) => {}
                    _ = stop.changed() => {}
                }
                continue;
            }
        };
        tracing::info!(task = %task.id, domain = %task.domain, attempt = task.attempts, "task started");
        let started = Instant::now();
        tokio::select! {
            ran = worker.run(&task) => {
                state.metrics.record_run(started.elapsed().as_millis() as u64);
                match ran {
                    Ok(Ran::Ended(TaskEnd::Failed { .. })) => {
                        state.metrics.task_failures.fetch_add(1, Ordering::Relaxed);
                    }
                    Ok(Ran::Ended(TaskEnd::Retry { .. })) => {
                        state.metrics.task_retries.fetch_add(1, Ordering::Relaxed);
                    }
                    Ok(_) => {}
                    Err(e) => tracing::error!(task = %task.id, "task bookkeeping failed: {e}"),
                }
            }
            () = stopped(&mut stop) => {
                // The run is dropped at its current await point: nothing half-done is left
                // that a new run would not redo (the ledger records the intent before the UPDATE).
                if let Err(e) = worker.release(&task).await {
                    tracing::error!(task = %task.id, "cannot give the task back: {e}");
                }
                tracing::info!(task = %task.id, "task given back for a later run");
                return;
            }
        }
    }
}

/// Resolves once `stop` turns true (or its sender is gone). Holds no borrow of the
/// channel afterwards, so the caller may await other things in its branch.
/// Sleeps `interval`; false when the service stops meanwhile.
async fn waited(interval: std::time::Duration, stop: &mut watch::Receiver<bool>) -> bool {
    tokio::select! {
        () = tokio::time::sleep(interval) => true,
        () = stopped(stop) => false,
    }
}

async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|stopped| *stopped).await;
}

/// How long a Succeeded or Cancelled task is kept once a newer task of its domain and kind
/// exists (the newest of each domain and kind is kept always): the last hour's runs in the
/// task list, and a table that holds two or three rounds of the drift schedule, not every
/// round since the start (100,000 domains under an hourly drift would add 4.8 million rows
/// a day).
pub const TASK_RETENTION: std::time::Duration = std::time::Duration::from_secs(3600);
/// How long a Failed task is kept once a newer one of its domain and kind exists: its
/// `failureReason` explains a problem, a day of them stays in the list.
pub const FAILED_TASK_RETENTION: std::time::Duration = std::time::Duration::from_secs(24 * 3600);

/// Schedules a reconcile of every automatically managed domain once every `interval`:
/// drift (someone edited the zone) is found and repaired by the task like any other
/// change. The domains are spread over the interval in slices ([`DriftPlan`]: up to
/// `DRIFT_SLICE` domains, one slice every `interval / slices`), so 100,000 domains make at
/// most 1,000 tasks at a time, never 200,000 at once; a config of up to `DRIFT_SLICE`
/// domains is one slice, scheduled whole every interval. Each time the cursor has gone
/// round the whole list, the ended tasks older than their retention are deleted
/// ([`prune_tasks`]).
pub async fn drift_schedule(
    state: AppState,
    interval: std::time::Duration,
    mut stop: watch::Receiver<bool>,
) {
    let mut cursor = DriftCursor::default();
    loop {
        let plan = DriftPlan::new(state.loaded().config.domains.len(), interval);
        if !waited(plan.tick, &mut stop).await {
            return;
        }
        // The config of now: it may have changed during the wait.
        let loaded = state.loaded();
        let plan = DriftPlan::new(loaded.config.domains.len(), interval);
        let started = Instant::now();
        let slice = match cursor.schedule_next(&state.store, &loaded, plan.size).await {
            Ok(slice) => slice,
            Err(e) => {
                tracing::error!("cannot schedule the drift check: {e}");
                continue;
            }
        };
        let millis = started.elapsed().as_millis() as u64;
        state.metrics.record_drift_slice(slice.tasks as u64, millis);
        tracing::info!(
            tasks = slice.tasks,
            domains = %format!("{}..{} of {}", slice.domains.start, slice.domains.end, loaded.config.domains.len()),
            millis,
            "drift check scheduled"
        );
        if slice.wrapped {
            prune_tasks(&state).await;
        }
    }
}

/// Deletes the ended tasks a newer task has replaced: Succeeded and Cancelled ones older
/// than [`TASK_RETENTION`], Failed ones older than [`FAILED_TASK_RETENTION`] (the newest of
/// each domain and kind stays).
pub async fn prune_tasks(state: &AppState) {
    let now = mailzone_engine::clock::unix_now();
    let before = |keep: std::time::Duration| now - i64::try_from(keep.as_secs()).unwrap_or(0);
    match state
        .store
        .prune_tasks(before(TASK_RETENTION), before(FAILED_TASK_RETENTION))
        .await
    {
        Ok(0) => {}
        Ok(n) => tracing::info!(tasks = n, "old ended tasks deleted"),
        Err(e) => tracing::error!("cannot delete old tasks: {e}"),
    }
}

/// Waits for SIGTERM or Ctrl-C (then signals `stop`), reloading the config on SIGHUP.
pub async fn wait_for_signals(state: &AppState, stop: watch::Sender<bool>) {
    let (Ok(mut term), Ok(mut hup)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::hangup()),
    ) else {
        tracing::error!("cannot install signal handlers; stop the service with Ctrl-C");
        let _ = tokio::signal::ctrl_c().await;
        let _ = stop.send(true);
        return;
    };
    loop {
        tokio::select! {
            _ = term.recv() => break,
            _ = tokio::signal::ctrl_c() => break,
            _ = hup.recv() => {
                crate::systemd::reloading();
                reload(state).await;
                crate::systemd::ready("config reloaded");
            }
        }
    }
    let _ = stop.send(true);
}

/// Reads the config file again; a broken file is reported and the running config kept.
pub async fn reload(state: &AppState) {
    let Some(loaded) = reload_config(state).await else {
        return;
    };
    log_scheduled(
        "config reloaded",
        "DnsManagement",
        schedule_all(&state.store, &loaded).await,
    );
}

/// Logs what was scheduled after `event` (`tasks` tasks of `kind`), or why scheduling failed.
fn log_scheduled<E: std::fmt::Display>(event: &str, kind: &str, scheduled: Result<usize, E>) {
    match scheduled {
        Ok(tasks) => tracing::info!(tasks, "{event}; {kind} tasks scheduled"),
        Err(e) => tracing::error!("{event}, but scheduling failed: {e}"),
    }
}

/// Reads the config file (and the files it names) again and swaps it in; a broken file is
/// reported and the running config kept (`None`).
async fn reload_config(state: &AppState) -> Option<Arc<mailzone_engine::LoadedConfig>> {
    match mailzone_engine::load::reload_config(&state.config, &state.config_path, &state.store)
        .await
    {
        Ok(loaded) => Some(loaded),
        Err(e) => {
            tracing::error!("config not reloaded, the running one is kept: {e}");
            None
        }
    }
}
