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
        describe(
            out,
            "mailzone_check_findings",
            "gauge",
            "Findings of the last scheduled check, by domain and severity.",
        );
        for (domain, counts) in &checks.findings {
            for (severity, n) in ["error", "warning", "info"].iter().zip(counts) {
                out.push_str(&format!(
                    "mailzone_check_findings{{domain=\"{}\",severity=\"{severity}\"}} {n}\n",
                    label_value(domain)
                ));
            }
        }
        if let Some(at) = checks.last_run_unix {
            describe(
                out,
                "mailzone_check_last_run_timestamp_seconds",
                "gauge",
                "When the last scheduled check ran (Unix time).",
            );
            out.push_str(&format!("mailzone_check_last_run_timestamp_seconds {at}\n"));
        }
        describe(
            out,
            "mailzone_notify_failures_total",
            "counter",
            "Notifications of changed findings that could not be delivered (retried at the next check).",
        );
        for (channel, n) in NOTIFY_CHANNELS.iter().zip(&self.notify_failures) {
            out.push_str(&format!(
                "mailzone_notify_failures_total{{channel=\"{channel}\"}} {}\n",
                n.load(Ordering::Relaxed)
            ));
        }
    }

    pub async fn render(&self, store: &Store) -> String {
        let mut out = String::new();
        describe(
            &mut out,
            "mailzone_tasks",
            "gauge",
            "Tasks in the database by status.",
        );
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
        let load = |n: &AtomicU64| n.load(Ordering::Relaxed);
        seconds_summary(
            &mut out,
            "mailzone_task_run_seconds",
            "Durations of task runs (reconciles) on this instance.",
            load(&self.task_run_millis),
            load(&self.task_runs),
        );
        counter(
            &mut out,
            "mailzone_task_failures_total",
            "Task runs that ended Failed (DNS or config errors).",
            load(&self.task_failures),
        );
        counter(
            &mut out,
            "mailzone_task_retries_total",
            "Task runs that ended in Retry (transient DNS errors).",
            load(&self.task_retries),
        );
        seconds_summary(
            &mut out,
            "mailzone_drift_slice_seconds",
            "Drift slices scheduled on this instance: the time their scheduling took.",
            load(&self.drift_millis),
            load(&self.drift_slices),
        );
        counter(
            &mut out,
            "mailzone_drift_tasks_total",
            "Tasks standing for the drift slices scheduled on this instance (new or already waiting).",
            load(&self.drift_tasks),
        );
        self.render_checks(&mut out);
        out
    }
}

/// The `# HELP` and `# TYPE` lines of a metric in the exposition format.
fn describe(out: &mut String, name: &str, kind: &str, help: &str) {
    out.push_str(&format!("# HELP {name} {help}\n# TYPE {name} {kind}\n"));
}

/// A counter without labels: its description and value.
fn counter(out: &mut String, name: &str, help: &str, value: u64) {
    describe(out, name, "counter", help);
    out.push_str(&format!("{name} {value}\n"));
}

/// A summary of durations kept in milliseconds: its description, the sum in seconds and
/// the count.
fn seconds_summary(out: &mut String, name: &str, help: &str, millis: u64, count: u64) {
    describe(out, name, "summary", help);
    out.push_str(&format!(
        "{name}_sum {}\n{name}_count {count}\n",
        millis as f64 / 1000.0
    ));
}

/// A label value in the exposition format: backslash, double quote and line feed escaped.
fn label_value(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The exposition format's lines for a counter and a summary of durations.
    #[test]
    fn counters_and_summaries_are_written_in_the_exposition_format() {
        let mut out = String::new();
        counter(&mut out, "x_total", "Things counted.", 3);
        seconds_summary(&mut out, "y_seconds", "Time taken.", 1_500, 2);
        assert_eq!(
            out,
            "# HELP x_total Things counted.\n# TYPE x_total counter\nx_total 3\n\
             # HELP y_seconds Time taken.\n# TYPE y_seconds summary\n\
             y_seconds_sum 1.5\ny_seconds_count 2\n"
        );
    }
}
