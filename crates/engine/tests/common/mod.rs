//! Shared by the engine's integration tests: one apply of a config text.

use std::path::Path;

use mailzone_engine::{
    AfterRead, EngineError, ReconcileReport, ReconcileRequest, RecordsRequest, Silent, load_config,
    reconcile,
};

/// Writes `text` as `dir/mailzone.toml` and applies every domain of it, state in
/// `dir/state`, at a fixed time.
pub async fn apply(
    dir: &Path,
    text: &str,
    after_read: Option<AfterRead>,
) -> Result<ReconcileReport, EngineError> {
    let path = dir.join("mailzone.toml");
    std::fs::write(&path, text).unwrap();
    let loaded = load_config(&path)?;
    let request = ReconcileRequest {
        records: RecordsRequest {
            domains: vec![],
            types: vec![],
            state_dir: dir.join("state"),
            now_unix: 1_795_651_200,
            store: None,
        },
        apply: true,
        force: false,
        delete_limit: 0.3,
        after_read,
        concurrency: 4,
    };
    reconcile(&loaded, &request, &Silent).await
}
