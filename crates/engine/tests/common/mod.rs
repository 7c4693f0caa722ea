//! Shared by the engine's integration tests: a plan or apply of a config text.

#![allow(dead_code)] // each test binary uses its part

use std::path::Path;

use mailzone_engine::{
    AfterRead, EngineError, ReconcileReport, ReconcileRequest, RecordsRequest, Silent, load_config,
    reconcile,
};

/// What one run of [`reconcile_text`] does.
pub struct Run<'a> {
    /// The domains selected; empty: all of them.
    pub domains: &'a [&'a str],
    /// Apply, or only plan.
    pub apply: bool,
    pub after_read: Option<AfterRead>,
}

/// Writes `text` as `dir/mailzone.toml` and plans or applies it, state in `dir/state`, at a
/// fixed time.
pub async fn reconcile_text(
    dir: &Path,
    text: &str,
    run: Run<'_>,
) -> Result<ReconcileReport, EngineError> {
    let path = dir.join("mailzone.toml");
    std::fs::write(&path, text).unwrap();
    let loaded = load_config(&path)?;
    let request = ReconcileRequest {
        records: RecordsRequest {
            domains: run.domains.iter().map(|d| d.to_string()).collect(),
            types: vec![],
            state_dir: dir.join("state"),
            now_unix: 1_795_651_200,
            store: None,
        },
        apply: run.apply,
        force: false,
        delete_limit: 0.3,
        after_read: run.after_read,
        on_zone: None,
        concurrency: 4,
        both_cores: false,
    };
    reconcile(&loaded, &request, &Silent).await
}

/// [`reconcile_text`] applying every domain.
pub async fn apply(
    dir: &Path,
    text: &str,
    after_read: Option<AfterRead>,
) -> Result<ReconcileReport, EngineError> {
    let run = Run {
        domains: &[],
        apply: true,
        after_read,
    };
    reconcile_text(dir, text, run).await
}
