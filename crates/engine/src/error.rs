//! Engine errors: each names the file and config key a person has to fix. None carries
//! secret material (key bytes are never formatted into a message).

use std::path::PathBuf;

use mailzone_records::config::ConfigError;

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("{file}: cannot read the config file: {reason}")]
    ReadConfig { file: PathBuf, reason: String },
    #[error("{file}: {error}")]
    Config { file: PathBuf, error: ConfigError },
    #[error("{file}: {key}: {reason} (file: {path})")]
    ReferencedFile {
        file: PathBuf,
        key: String,
        path: PathBuf,
        reason: String,
    },
    #[error("{0}")]
    Usage(String),
    #[error("state database: {0}")]
    Store(#[from] mailzone_store::StoreError),
    #[error("{0}")]
    Plan(#[from] mailzone_records::PlanError),
}
