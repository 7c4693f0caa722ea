//! Prometheus metrics (text exposition format 0.0.4): tasks by status (from the database,
//! so every instance reports the same), this instance's task runs, their durations and
//! their failures, and the findings of its last scheduled check.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use mailzone_check::Severity;
use mailzone_engine::CheckReport;
use mailzone_store::{Store, TaskStatus};

/// The last scheduled check: when it ran, and each domain's findings by severity.
#[derive(Default)]
pub struct CheckMetrics {
    pub last_run_unix: Option<i64>,
    /// Domain (A-labels) → [errors, warnings, infos].
    pub findings: BTreeMap<String, [usize; 3]>,
}

/// The channels in `notify_failures` order.
const NOTIFY_CHANNELS: [&str; 2] = ["webhook", "smtp"];

#[derive(Default)]
pub struct Metrics {
    pub task_runs: AtomicU64,
    pub task_failures: AtomicU64,
    pub task_retries: AtomicU64,
    /// Sum of run durations in milliseconds.
    pub task_run_millis: AtomicU64,
    pub checks: Mutex<CheckMetrics>,
    /// Failed notifications, by channel (webhook, smtp).
    pub notify_failures: [AtomicU64; 2],
    /// Drift slices scheduled, the tasks standing for them, and the time their scheduling
    /// took in milliseconds.
    pub drift_slices: AtomicU64,
    pub drift_tasks: AtomicU64,
    pub drift_millis: AtomicU64,
}

impl Metrics {
    pub fn record_run(&self, millis: u64) {
        self.task_runs.fetch_add(1, Ordering::Relaxed);
        self.task_run_millis.fetch_add(millis, Ordering::Relaxed);
    }

    /// One drift slice scheduled: `tasks` tasks in `millis` milliseconds.
    pub fn record_drift_slice(&self, tasks: u64, millis: u64) {
        self.drift_slices.fetch_add(1, Ordering::Relaxed);
        self.drift_tasks.fetch_add(tasks, Ordering::Relaxed);
        self.drift_millis.fetch_add(millis, Ordering::Relaxed);
    }

    /// Replaces the last check's figures (domains no longer configured disappear).
    pub fn record_check(&self, report: &CheckReport, at_unix: i64) {
        let findings = report
            .domains
            .iter()
            .map(|d| {
                let count = |s| d.findings.iter().filter(|f| f.severity == s).count();
                (
                    d.domain.as_str().to_string(),
                    [
                        count(Severity::Error),
                        count(Severity::Warning),
                        count(Severity::Info),
                    ],
                )
            })
            .collect();
        let mut checks = self.checks.lock().unwrap_or_else(|p| p.into_inner());
        *checks = CheckMetrics {
            last_run_unix: Some(at_unix),
            findings,
        };
    }

    fn render_checks(&self, out: &mut String) {
        let checks = self.checks.lock().unwrap_or_else(|p| p.into_inner());
        out.push_str("# HELP mailzone_check_findings Findings of the last scheduled check, by domain and severity.\n");
        out.push_str("# TYPE mailzone_check_findings gauge\n");
        for (domain, counts) in &checks.findings {
            for (severity, n) in ["error", "warning", "info"].iter().zip(counts) {
                out.push_str(&format!(
                    "mailzone_check_findings{{domain=\"{}\",severity=\"{severity}\"}} {n}\n",
                    label_value(domain)
                ));
            }
        }
        if let Some(at) = checks.last_run_unix {
            out.push_str("# HELP mailzone_check_last_run_timestamp_seconds When the last scheduled check ran (Unix time).\n");
            out.push_str("# TYPE mailzone_check_last_run_timestamp_seconds gauge\n");
            out.push_str(&format!("mailzone_check_last_run_timestamp_seconds {at}\n"));
        }
        out.push_str("# HELP mailzone_notify_failures_total Notifications of changed findings that could not be delivered (retried at the next check).\n");
        out.push_str("# TYPE mailzone_notify_failures_total counter\n");
        for (channel, n) in NOTIFY_CHANNELS.iter().zip(&self.notify_failures) {
            out.push_str(&format!(
                "mailzone_notify_failures_total{{channel=\"{channel}\"}} {}\n",
                n.load(Ordering::Relaxed)
            ));
        }
    }

    pub async fn render(&self, store: &Store) -> String {
        let mut out = String::new();
        out.push_str("# HELP mailzone_tasks Tasks in the database by status.\n");
        out.push_str("# TYPE mailzone_tasks gauge\n");
        let counts = store.task_counts().await.unwrap_or_default();
        for status in [
            TaskStatus::Scheduled,
            TaskStatus::Running,
            TaskStatus::Retry,
            TaskStatus::Succeeded,
            TaskStatus::Failed,
            TaskStatus::Cancelled,
        ] {
            let n = counts
                .iter()
                .find(|(s, _)| *s == status)
                .map_or(0, |(_, n)| *n);
            out.push_str(&format!(
                "mailzone_tasks{{status=\"{}\"}} {n}\n",
                status.as_str()
            ));
        }
        let runs = self.task_runs.load(Ordering::Relaxed);
        let millis = self.task_run_millis.load(Ordering::Relaxed);
        out.push_str("# HELP mailzone_task_run_seconds Durations of task runs (reconciles) on this instance.\n");
        out.push_str("# TYPE mailzone_task_run_seconds summary\n");
        out.push_str(&format!(
            "mailzone_task_run_seconds_sum {}\nmailzone_task_run_seconds_count {runs}\n",
            millis as f64 / 1000.0
        ));
        out.push_str("# HELP mailzone_task_failures_total Task runs that ended Failed (DNS or config errors).\n");
        out.push_str("# TYPE mailzone_task_failures_total counter\n");
        out.push_str(&format!(
            "mailzone_task_failures_total {}\n",
            self.task_failures.load(Ordering::Relaxed)
        ));
        out.push_str("# HELP mailzone_task_retries_total Task runs that ended in Retry (transient DNS errors).\n");
        out.push_str("# TYPE mailzone_task_retries_total counter\n");
        out.push_str(&format!(
            "mailzone_task_retries_total {}\n",
            self.task_retries.load(Ordering::Relaxed)
        ));
        out.push_str("# HELP mailzone_drift_slice_seconds Drift slices scheduled on this instance: the time their scheduling took.\n");
        out.push_str("# TYPE mailzone_drift_slice_seconds summary\n");
        out.push_str(&format!(
            "mailzone_drift_slice_seconds_sum {}\nmailzone_drift_slice_seconds_count {}\n",
            self.drift_millis.load(Ordering::Relaxed) as f64 / 1000.0,
            self.drift_slices.load(Ordering::Relaxed)
        ));
        out.push_str("# HELP mailzone_drift_tasks_total Tasks standing for the drift slices scheduled on this instance (new or already waiting).\n");
        out.push_str("# TYPE mailzone_drift_tasks_total counter\n");
        out.push_str(&format!(
            "mailzone_drift_tasks_total {}\n",
            self.drift_tasks.load(Ordering::Relaxed)
        ));
        self.render_checks(&mut out);
        out
    }
}

/// A label value in the exposition format: backslash, double quote and line feed escaped.
fn label_value(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}
