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
}

impl AppState {
    /// The current config (a cheap clone of an `Arc`).
    pub fn loaded(&self) -> Arc<LoadedConfig> {
        match self.config.read() {
            Ok(c) => Arc::clone(&c),
            Err(poisoned) => Arc::clone(&poisoned.into_inner()),
        }
    }
}
