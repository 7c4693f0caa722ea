//! What every handler and worker shares.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, RwLock};

use mailzone_check::Finding;
use mailzone_engine::LoadedConfig;
use mailzone_engine::check::CheckReport;
use mailzone_store::Store;

use crate::metrics::Metrics;

#[derive(Clone)]
pub struct AppState {
    pub store: Store,
    /// The config file as last loaded (swapped whole on SIGHUP).
    pub config: Arc<RwLock<Arc<LoadedConfig>>>,
    pub config_path: PathBuf,
    pub state_dir: PathBuf,
    pub metrics: Arc<Metrics>,
    /// Held while an API call changes the domains: validate, store and swap happen as one.
    pub config_writes: Arc<tokio::sync::Mutex<()>>,
    /// Each domain's last check (scheduled, or "Check now" in the web UI), by domain name.
    /// Kept in memory only: an observation, not state; the next scheduled check refills it.
    pub last_checks: Arc<RwLock<HashMap<String, LastCheck>>>,
    /// Failed web UI sign-ins per client address.
    pub sign_in_limiter: Arc<crate::ui::limiter::SignInLimiter>,
    /// `--check-nameserver`: the servers every check of the service asks (over
    /// `serve.checkNameservers`); empty when not given.
    pub check_nameserver_flags: Arc<Vec<std::net::SocketAddr>>,
}

/// The findings of a domain's last check and when it ran.
#[derive(Debug, Clone)]
pub struct LastCheck {
    pub at_unix: i64,
    pub findings: Vec<Finding>,
}

impl LastCheck {
    /// How many findings have `severity`.
    pub fn count(&self, severity: mailzone_check::Severity) -> usize {
        self.findings
            .iter()
            .filter(|f| f.severity == severity)
            .count()
    }
}

impl AppState {
    /// The state of a service over `loaded` (read from `config_path`), with fresh metrics
    /// and no check yet.
    pub fn new(
        store: Store,
        loaded: LoadedConfig,
        config_path: PathBuf,
        state_dir: PathBuf,
    ) -> AppState {
        AppState {
            store,
            config: Arc::new(RwLock::new(Arc::new(loaded))),
            config_path,
            state_dir,
            metrics: Arc::default(),
            config_writes: Arc::default(),
            last_checks: Arc::default(),
            sign_in_limiter: Arc::default(),
            check_nameserver_flags: Arc::default(),
        }
    }

    /// The same state, its checks asking `nameservers` (`--check-nameserver`) when not empty.
    pub fn with_check_nameservers(mut self, nameservers: Vec<std::net::SocketAddr>) -> AppState {
        self.check_nameserver_flags = Arc::new(nameservers);
        self
    }

    /// The servers a check of the service asks: `--check-nameserver`, else
    /// `serve.checkNameservers` of `loaded`; empty means each zone's authoritative servers.
    pub fn check_nameservers(&self, loaded: &LoadedConfig) -> Vec<std::net::SocketAddr> {
        if self.check_nameserver_flags.is_empty() {
            loaded.config.serve.check_nameservers.clone()
        } else {
            self.check_nameserver_flags.as_ref().clone()
        }
    }

    /// Replaces the running config.
    pub fn swap(&self, loaded: LoadedConfig) -> Arc<LoadedConfig> {
        let loaded = Arc::new(loaded);
        if let Ok(mut current) = self.config.write() {
            *current = Arc::clone(&loaded);
        }
        loaded
    }

    /// Takes the config write lock, then the config as it stands under it: an API change
    /// must start from the config that no other change is rewriting.
    pub async fn lock_config_writes(&self) -> (tokio::sync::MutexGuard<'_, ()>, Arc<LoadedConfig>) {
        let writing = self.config_writes.lock().await;
        (writing, self.loaded())
    }

    /// Keeps each checked domain's findings as its last check.
    pub fn record_checks(&self, report: &CheckReport, at_unix: i64) {
        let mut checks = match self.last_checks.write() {
            Ok(checks) => checks,
            Err(poisoned) => poisoned.into_inner(),
        };
        for domain in &report.domains {
            let check = LastCheck {
                at_unix,
                findings: domain.findings.clone(),
            };
            checks.insert(domain.domain.as_str().to_string(), check);
        }
    }

    /// Forgets the last checks of domains `loaded` no longer has: the map holds at most
    /// one entry per configured domain, however many were removed over the service's life.
    pub fn forget_unconfigured_checks(&self, loaded: &LoadedConfig) {
        let configured: std::collections::HashSet<&str> = loaded
            .config
            .domains
            .iter()
            .map(|d| d.name.as_str())
            .collect();
        let mut checks = match self.last_checks.write() {
            Ok(checks) => checks,
            Err(poisoned) => poisoned.into_inner(),
        };
        checks.retain(|domain, _| configured.contains(domain.as_str()));
    }

    /// The last check of `domain`, if it was checked since the service started.
    pub fn last_check(&self, domain: &str) -> Option<LastCheck> {
        let checks = match self.last_checks.read() {
            Ok(checks) => checks,
            Err(poisoned) => poisoned.into_inner(),
        };
        checks.get(domain).cloned()
    }

    /// The current config (a cheap clone of an `Arc`).
    pub fn loaded(&self) -> Arc<LoadedConfig> {
        match self.config.read() {
            Ok(c) => Arc::clone(&c),
            Err(poisoned) => Arc::clone(&poisoned.into_inner()),
        }
    }
}
