//! Arguments shared by several commands.

use std::io::Write;
use std::path::PathBuf;

use clap::{Args, ValueEnum};
use mailzone_engine::{LoadedConfig, RecordsRequest, load_config_and_store};
use mailzone_store::Store;
use serde::Serialize;

/// The config file and the state directory, as every command that reads the config takes
/// them.
#[derive(Args, Clone)]
pub struct ConfigArgs {
    /// The config file (mailzone.toml).
    #[arg(long, short, env = "MAILZONE_CONFIG", default_value = "mailzone.toml")]
    pub config: PathBuf,
    /// Where mailzone keeps its state database (DKIM keys, what it published, ACME
    /// account, the domains and DNS servers defined through the API; created 0700, the
    /// database file 0600).
    #[arg(long, env = "MAILZONE_STATE_DIR", default_value = "mailzone-data")]
    pub state_dir: PathBuf,
}

impl ConfigArgs {
    /// The config file, with the domains and DNS servers defined through the API, and the
    /// state database they came from when there is one: the run goes on with that store
    /// (opened once), or opens (creates) one only when it needs it.
    pub async fn load(&self) -> anyhow::Result<(LoadedConfig, Option<Store>)> {
        Ok(load_config_and_store(&self.config, &self.state_dir).await?)
    }
}

impl ConfigArgs {
    /// A request for every record type of `domains` (all when empty) as of `now_unix`,
    /// working in this state directory through the store the command opened.
    pub fn records_request(
        &self,
        domains: Vec<String>,
        now_unix: i64,
        store: &Option<Store>,
    ) -> RecordsRequest {
        RecordsRequest {
            domains,
            types: vec![],
            state_dir: self.state_dir.clone(),
            now_unix,
            store: store.clone(),
        }
    }
}

/// Closes the state database a command opened for its run, whatever the run's outcome:
/// the last connection checkpoints SQLite's write-ahead log, as a process that simply
/// exited would not.
pub async fn close(store: Option<Store>) {
    if let Some(store) = store {
        store.close().await;
    }
}

/// Awaits `work`, then closes the state database whatever its outcome.
pub async fn then_close<T>(store: Option<Store>, work: impl Future<Output = T>) -> T {
    let outcome = work.await;
    close(store).await;
    outcome
}

/// What `--format json` prints: `value` as indented JSON, then a line break.
pub fn write_json(out: &mut impl Write, value: &impl Serialize) -> anyhow::Result<()> {
    serde_json::to_writer_pretty(&mut *out, value)?;
    writeln!(out)?;
    Ok(())
}

/// `--format` of the commands that print for people or for programs.
#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Text,
    Json,
}

/// Where the state lives: the state directory (SQLite database and the sealing key
/// `mailzone.key`), or a PostgreSQL database shared by several instances.
#[derive(Args, Clone)]
pub struct StoreArgs {
    /// The database: postgres://USER[:PASSWORD]@HOST[:PORT]/DB for several instances
    /// sharing one PostgreSQL (the sealing key `mailzone.key` stays in --state-dir: copy it
    /// to every instance), or sqlite://DIR. Without it, the embedded SQLite database in
    /// --state-dir (the one the other commands use).
    #[arg(long, env = "MAILZONE_DATABASE")]
    pub database: Option<String>,
    /// Where mailzone keeps its state database.
    #[arg(long, env = "MAILZONE_STATE_DIR", default_value = "mailzone-data")]
    pub state_dir: PathBuf,
}

impl StoreArgs {
    /// The state directory and, for PostgreSQL, the database URL.
    pub fn location(&self) -> anyhow::Result<(PathBuf, Option<String>)> {
        match self.database.as_deref() {
            None => Ok((self.state_dir.clone(), None)),
            Some(url) if url.starts_with("postgres://") || url.starts_with("postgresql://") => {
                Ok((self.state_dir.clone(), Some(url.to_string())))
            }
            Some(url) => match url
                .strip_prefix("sqlite://")
                .or_else(|| url.strip_prefix("sqlite:"))
            {
                Some(dir) => Ok((PathBuf::from(dir), None)),
                None => anyhow::bail!(
                    "--database {}: expected postgres://USER[:PASSWORD]@HOST[:PORT]/DB or sqlite://DIR",
                    mailzone_store::redact_url(url)
                ),
            },
        }
    }

    /// Opens the store (creating the state directory and database on first use).
    pub async fn open(&self) -> anyhow::Result<Store> {
        let (state_dir, database) = self.location()?;
        Ok(match database {
            Some(url) => Store::open_postgres(&url, &state_dir).await?,
            None => Store::open_sqlite(&state_dir).await?,
        })
    }
}
