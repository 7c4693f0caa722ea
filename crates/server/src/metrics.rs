//! Prometheus metrics (text exposition format 0.0.4): tasks by status (from the database,
//! so every instance reports the same), and this instance's task runs, their durations and
//! their failures.

use std::sync::atomic::{AtomicU64, Ordering};

use mailzone_store::{Store, TaskStatus};

#[derive(Default)]
pub struct Metrics {
    pub task_runs: AtomicU64,
    pub task_failures: AtomicU64,
    pub task_retries: AtomicU64,
    /// Sum of run durations in milliseconds.
    pub task_run_millis: AtomicU64,
}

impl Metrics {
    pub fn record_run(&self, millis: u64) {
        self.task_runs.fetch_add(1, Ordering::Relaxed);
        self.task_run_millis.fetch_add(millis, Ordering::Relaxed);
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
        out
    }
}
