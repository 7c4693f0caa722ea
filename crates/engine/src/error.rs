//! Engine errors: each names the file and config key, or the zone and server, a person has
//! to look at. None carries secret material (key bytes are never formatted into a message).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

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
    #[error("zone {zone}: {error}")]
    Dns {
        zone: String,
        error: mailzone_dns::DnsError,
    },
    #[error(
        "zone {zone}: the plan deletes {deletes} of {managed} managed records, more than the {limit_percent}% safety limit; review it with `mailzone plan` and run apply with --force if it is right"
    )]
    DeleteLimit {
        zone: String,
        deletes: usize,
        managed: usize,
        limit_percent: u32,
    },
    #[error(
        "zone {zone}: {server} did not serve the change within {timeout:?}: {reason}{}",
        if *others > 0 { format!(" ({others} more servers lag)") } else { String::new() }
    )]
    Propagation {
        zone: String,
        server: SocketAddr,
        timeout: Duration,
        reason: String,
        others: usize,
    },
    /// An ACME step failed (RFC 8555): the CA's problem document or the transport error.
    #[error("ACME {directory}: {step}: {reason}")]
    Acme {
        directory: String,
        step: &'static str,
        reason: String,
        /// Whether trying again later can help (network, rate limits, DNS not yet seen).
        transient: bool,
    },
    /// The `onKeyChange` command failed; the key change it was told about stands.
    #[error("{0}")]
    OnKeyChange(String),
}

impl EngineError {
    /// Whether retrying later can help (task retries use this).
    pub fn is_transient(&self) -> bool {
        match self {
            EngineError::Dns { error, .. } => error.class() == mailzone_dns::ErrorClass::Transient,
            EngineError::Propagation { .. } => true,
            EngineError::Acme { transient, .. } => *transient,
            _ => false,
        }
    }
}
