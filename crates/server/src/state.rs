//! What every handler and worker shares.

use std::path::PathBuf;
use std::sync::{Arc, RwLock};

use mailzone_engine::LoadedConfig;
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
}

impl AppState {
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

    /// The current config (a cheap clone of an `Arc`).
    pub fn loaded(&self) -> Arc<LoadedConfig> {
        match self.config.read() {
            Ok(c) => Arc::clone(&c),
            Err(poisoned) => Arc::clone(&poisoned.into_inner()),
        }
    }
}
