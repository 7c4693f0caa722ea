//! mailzone's state database: what mailzone must remember between runs.
//!
//! It holds the DKIM keys mailzone generates for domains with automatic DKIM management
//! (selector, algorithm, private key sealed with `mailzone.key`, lifecycle stage and when
//! the stage next changes), the publication ledger and zone states, the service's tasks
//! and the hashes of its API tokens.
//!
//! The embedded back end is SQLite: one file, `mailzone.db`, in the state directory. The
//! database holds private keys, so the directory is created `0700` and the database file
//! `0600` before SQLite ever touches it. The schema lives in `migrations/`, embedded in the
//! binary and applied on open; its SQL is kept to what PostgreSQL also accepts.

mod acme;
mod dkim_keys;
mod domains;
mod findings;
mod ledger;
mod query;
mod seal;
mod tasks;
mod tlsa;
mod web;

pub use acme::AcmeChallenge;
pub use dkim_keys::StoredDkimKey;
pub use findings::AnnouncedFindings;
pub use ledger::{ZoneState, ZoneWrite};
pub use seal::{KEY_FILE_NAME, Sealer};
pub use tasks::{ApiToken, NewTask, Task, TaskChange, TaskEnd, TaskFilter, TaskStatus};
pub use web::{WebSession, token_subject};

use std::ffi::OsString;
use std::fs::{self, DirBuilder, OpenOptions, Permissions};
use std::io;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use mailzone_records::{Name, NameError};
use sqlx::Row;
use sqlx::migrate::{MigrateError, Migrator};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteRow,
    SqliteSynchronous,
};

/// Name of the SQLite database file inside the state directory.
pub const DATABASE_FILE_NAME: &str = "mailzone.db";

/// Only the owner may list the state directory: it holds private keys.
const STATE_DIR_MODE: u32 = 0o700;
/// Only the owner may read the database and its `-wal` / `-shm` companions.
const DATABASE_FILE_MODE: u32 = 0o600;
/// How long a statement waits for another connection or process holding the write lock.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// The schema, embedded at compile time (`build.rs` makes cargo notice new files).
static MIGRATOR: Migrator = sqlx::migrate!("./migrations");
/// The PostgreSQL schema (the same tables, integers as BIGINT).
static PG_MIGRATOR: Migrator = sqlx::migrate!("./migrations_postgres");

/// Everything that can go wrong in the store. Messages name the file concerned and say
/// what to do; they never contain key material.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A ledger row could not be read back.
    #[error("{}: the ledger row for {name} in zone {zone} is unreadable: {reason}", .path.display())]
    CorruptLedger {
        path: PathBuf,
        zone: String,
        name: String,
        reason: String,
    },
    /// A zone's remembered state could not be read back.
    #[error(
        "{}: the state of zone {zone} is unreadable: {reason}; restore the database from a \
         backup",
        .path.display()
    )]
    CorruptZoneState {
        path: PathBuf,
        zone: String,
        reason: String,
    },
    /// The state directory (or one of its parents) could not be created.
    #[error(
        "cannot create state directory {}{}: {source}; create it yourself (mode 0700, owned by \
         the user mailzone runs as) or choose another state directory",
        .path.display(),
        failed_at_note(.path, .failed_at)
    )]
    CreateStateDir {
        path: PathBuf,
        /// The component whose creation failed (a parent of `path`, or `path` itself).
        failed_at: PathBuf,
        source: io::Error,
    },
    /// The state directory path exists but is something other than a directory.
    #[error(
        "state directory {} exists but is not a directory; remove it or choose another state \
         directory",
        .path.display()
    )]
    NotADirectory { path: PathBuf },
    /// The database file could not be created (or checked) before opening it.
    #[error(
        "cannot create database file {}: {source}; check that the state directory is writable \
         by the user mailzone runs as",
        .path.display()
    )]
    CreateDatabase { path: PathBuf, source: io::Error },
    /// A file's permissions could not be restricted.
    #[error(
        "cannot set the permissions of {} to {mode:04o}: {source}; fix them by hand \
         (chmod {mode:o}) — the file holds private keys",
        .path.display()
    )]
    Permissions {
        path: PathBuf,
        mode: u32,
        source: io::Error,
    },
    /// SQLite could not open the database file.
    #[error(
        "cannot open state database {}: {source}; check that the file is a mailzone state \
         database and readable by the user mailzone runs as",
        .path.display()
    )]
    Open { path: PathBuf, source: sqlx::Error },
    /// The schema could not be brought up to date.
    #[error(
        "cannot bring state database {} up to date: {source}; if a newer mailzone already \
         used this database, run that version, otherwise restore the database from a backup",
        .path.display()
    )]
    Migrate { path: PathBuf, source: MigrateError },
    /// A query failed (disk full, database locked for longer than the busy timeout, ...).
    #[error(
        "state database {}: {source}; check free disk space, and that no other program holds \
         the database locked",
        .path.display()
    )]
    Database { path: PathBuf, source: sqlx::Error },
    /// A row holds a value this version of mailzone cannot interpret.
    #[error(
        "state database {} holds an unreadable DKIM key `{selector}` of domain {domain}: \
         {reason}; restore the database from a backup, or delete that key so a new one is made",
        .path.display()
    )]
    Corrupt {
        path: PathBuf,
        domain: String,
        selector: String,
        reason: String,
    },
    /// The sealing key file could not be made or read.
    #[error(
        "sealing key {}: {reason}; the DKIM private keys in the database are sealed with it",
        .path.display()
    )]
    SealingKey { path: PathBuf, reason: String },
    /// A domain or selector passed in is not in the canonical form the store keys on.
    #[error("invalid DKIM key {what} `{value}`: {reason}")]
    InvalidName {
        /// `"domain"` or `"selector"`.
        what: &'static str,
        value: String,
        reason: String,
    },
}

/// Adds " (creating /a/b failed)" when the component that failed is a parent of the state
/// directory rather than the directory itself.
fn failed_at_note(path: &Path, failed_at: &Path) -> String {
    if path == failed_at {
        String::new()
    } else {
        format!(" (creating {} failed)", failed_at.display())
    }
}

/// The database behind a [`Store`]: the embedded SQLite file, or a PostgreSQL server
/// shared by several instances.
#[derive(Debug, Clone)]
enum Pool {
    Sqlite(SqlitePool),
    Postgres(sqlx::PgPool),
}

/// Runs `$body` with `$pool` bound to the store's pool. The body is compiled once per back
/// end, so one SQL text (in the dialect both accept: `$n` parameters, `ON CONFLICT`,
/// `RETURNING`) serves both; where they differ, the caller matches on [`Pool`] itself.
macro_rules! with_pool {
    ($store:expr, $pool:ident => $body:expr) => {
        match &$store.pool {
            crate::Pool::Sqlite($pool) => $body,
            crate::Pool::Postgres($pool) => $body,
        }
    };
}

/// Column access shared by SQLite and PostgreSQL rows.
pub(crate) trait StoreRow {
    fn text(&self, column: &str) -> Result<String, sqlx::Error>;
    fn opt_text(&self, column: &str) -> Result<Option<String>, sqlx::Error>;
    fn int(&self, column: &str) -> Result<i64, sqlx::Error>;
    fn opt_int(&self, column: &str) -> Result<Option<i64>, sqlx::Error>;
    fn boolean(&self, column: &str) -> Result<bool, sqlx::Error>;
}

macro_rules! impl_store_row {
    ($row:ty) => {
        impl StoreRow for $row {
            fn text(&self, column: &str) -> Result<String, sqlx::Error> {
                self.try_get(column)
            }
            fn opt_text(&self, column: &str) -> Result<Option<String>, sqlx::Error> {
                self.try_get(column)
            }
            fn int(&self, column: &str) -> Result<i64, sqlx::Error> {
                self.try_get(column)
            }
            fn opt_int(&self, column: &str) -> Result<Option<i64>, sqlx::Error> {
                self.try_get(column)
            }
            fn boolean(&self, column: &str) -> Result<bool, sqlx::Error> {
                self.try_get(column)
            }
        }
    };
}
impl_store_row!(SqliteRow);
impl_store_row!(sqlx::postgres::PgRow);

/// A handle on the state database. Cloning is cheap; clones share one connection pool.
#[derive(Debug, Clone)]
pub struct Store {
    pool: Pool,
    /// The SQLite file, or the PostgreSQL URL without its password (for messages).
    db_path: PathBuf,
    /// The state directory (`--state-dir`): the sealing key, and files a provider keeps.
    state_dir: PathBuf,
    sealer: std::sync::Arc<Sealer>,
}

impl Store {
    /// The state directory this store was opened with.
    pub fn state_dir(&self) -> &Path {
        &self.state_dir
    }

    /// Opens (creating if needed) the SQLite state database in `state_dir` and applies
    /// pending migrations.
    pub async fn open_sqlite(state_dir: &Path) -> Result<Store, StoreError> {
        let state_dir_kept = state_dir.to_path_buf();
        let state_dir = state_dir.to_path_buf();
        let db_path = state_dir.join(DATABASE_FILE_NAME);

        {
            let db_path = db_path.clone();
            let state_dir = state_dir.clone();
            blocking(move || {
                create_state_dir(&state_dir)?;
                create_database_file(&db_path)
            })
            .await?;
        }

        // The file exists with mode 0600 by now; letting SQLite create it would use the
        // umask (typically 0644), and a missing file at this point means something removed
        // it behind our back, which should fail rather than silently make a new one.
        let options = SqliteConnectOptions::new()
            .filename(&db_path)
            .create_if_missing(false)
            // WAL lets readers proceed while a writer commits (CLI and server side by side).
            .journal_mode(SqliteJournalMode::Wal)
            // In WAL mode NORMAL never corrupts the database; a power cut may lose the last
            // commits. What is lost then is safe to lose: a zone's "in sync" note (it is read
            // again) or a ledger row (a record is then not deleted, never wrongly deleted).
            // FULL would fsync every commit, one per zone when a thousand zones are reconciled.
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(BUSY_TIMEOUT)
            // Deleted and overwritten content is zeroed, so a plaintext key replaced by its
            // sealed form does not linger in free pages.
            .pragma("secure_delete", "ON")
            .foreign_keys(true);
        let sealer = {
            let state_dir = state_dir.clone();
            std::sync::Arc::new(blocking(move || Sealer::open_or_create(&state_dir)).await?)
        };
        let pool = connect(options, &db_path).await?;

        let store = Store {
            pool: Pool::Sqlite(pool),
            db_path,
            state_dir: state_dir_kept,
            sealer,
        };
        if let Err(e) = store.migrate().await {
            store.close_pool().await;
            return Err(e);
        }
        if let Err(e) = store.seal_plaintext_keys().await {
            store.close_pool().await;
            return Err(e);
        }

        // SQLite creates `-wal` and `-shm` with the database file's mode, so they should
        // already be 0600; this catches a database file whose mode was created elsewhere
        // or changed since, and SQLite builds that behave differently.
        let db_path = store.db_path.clone();
        if let Err(e) = blocking(move || restrict_sidecar_files(&db_path)).await {
            store.close_pool().await;
            return Err(e);
        }
        Ok(store)
    }

    /// Connects to a PostgreSQL database (`postgres://user:password@host:port/db`) shared
    /// by several instances, and applies pending migrations (under PostgreSQL's advisory
    /// lock, so instances starting together do not race). The sealing key is read from, or
    /// created in, `state_dir`: every instance needs the same `mailzone.key`.
    pub async fn open_postgres(url: &str, state_dir: &Path) -> Result<Store, StoreError> {
        let shown = PathBuf::from(redact_url(url));
        let state_dir = state_dir.to_path_buf();
        let sealer = {
            let state_dir = state_dir.clone();
            blocking(move || {
                create_state_dir(&state_dir)?;
                Sealer::open_or_create(&state_dir)
            })
            .await?
        };
        let pool = sqlx::postgres::PgPoolOptions::new()
            .max_connections(8)
            .acquire_timeout(BUSY_TIMEOUT)
            .connect(url)
            .await
            .map_err(|source| StoreError::Open {
                path: shown.clone(),
                source,
            })?;
        PG_MIGRATOR
            .run(&pool)
            .await
            .map_err(|source| StoreError::Migrate {
                path: shown.clone(),
                source,
            })?;
        let store = Store {
            pool: Pool::Postgres(pool),
            db_path: shown,
            state_dir: state_dir.to_path_buf(),
            sealer: std::sync::Arc::new(sealer),
        };
        store.seal_plaintext_keys().await?;
        Ok(store)
    }

    /// Whether several instances may share this database (PostgreSQL).
    pub fn is_shared(&self) -> bool {
        matches!(self.pool, Pool::Postgres(_))
    }

    async fn close_pool(&self) {
        with_pool!(self, pool => pool.close().await)
    }

    /// Path of the database file.
    pub fn database_path(&self) -> &Path {
        &self.db_path
    }

    /// Applies the embedded migrations that the database does not have yet.
    async fn migrate(&self) -> Result<(), StoreError> {
        // sqlx's SQLite migrator takes no lock, so two processes opening a new database at
        // the same moment would both try to create the tables. `BEGIN IMMEDIATE` takes the
        // write lock first: the second process waits (busy timeout), then sees the
        // migrations as applied. The migrator nests its own transactions as savepoints.
        let migrate_error = |source: MigrateError| StoreError::Migrate {
            path: self.db_path.clone(),
            source,
        };
        let Pool::Sqlite(pool) = &self.pool else {
            return Ok(());
        };
        let mut tx = pool
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(|e| migrate_error(e.into()))?;
        // `run_direct` is `Migrator::run` minus the `Acquire` bound, which would make this
        // future "not general enough" to be `Send` (sqlx's own comment on it says so); it is
        // `#[doc(hidden)]`, so re-check it when upgrading sqlx.
        MIGRATOR
            .run_direct(None, &mut *tx, false)
            .await
            .map_err(migrate_error)?;
        tx.commit().await.map_err(|e| migrate_error(e.into()))
    }

    /// Closes every connection, waiting for queries in flight (also for clones of this store).
    pub async fn close(self) {
        self.close_pool().await;
    }

    fn database_error(&self, source: sqlx::Error) -> StoreError {
        StoreError::Database {
            path: self.db_path.clone(),
            source,
        }
    }
}

/// A database URL without its password, for messages.
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let user_end = url[scheme + 3..at].find(':').map_or(at, |i| scheme + 3 + i);
            format!("{}@{}", &url[..user_end], &url[at + 1..])
        }
        _ => url.to_string(),
    }
}

/// Opens the pool, retrying while SQLite reports the database busy.
///
/// The busy timeout does not cover everything: while one process switches a new database
/// to WAL mode, another opening it at the same moment gets SQLITE_BUSY at once, without
/// SQLite waiting. Retrying within the same 5 s budget makes a CLI command started next to
/// the server behave as if the timeout applied.
async fn connect(options: SqliteConnectOptions, db_path: &Path) -> Result<SqlitePool, StoreError> {
    let deadline = Instant::now() + BUSY_TIMEOUT;
    loop {
        // One connection: SQLite has one writer at a time anyway, and several pooled
        // connections writing at once wait in SQLite's busy handler, which sleeps in
        // steps of milliseconds (measured: a second of idle time over 1,000 zones).
        let pool = SqlitePoolOptions::new()
            .max_connections(1)
            // The connection is a handle in this process, not a socket that can go dead
            // while idle: the ping sqlx sends before lending it out would be one more
            // round trip to SQLite's worker thread per statement, finding nothing the
            // statement itself would not report.
            .test_before_acquire(false)
            .connect_with(options.clone())
            .await;
        match pool {
            Ok(pool) => return Ok(pool),
            Err(e) if is_busy(&e) && Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Err(source) => {
                return Err(StoreError::Open {
                    path: db_path.to_path_buf(),
                    source,
                });
            }
        }
    }
}

/// True for SQLITE_BUSY and its extended codes (sqlx reports the extended code).
fn is_busy(e: &sqlx::Error) -> bool {
    const SQLITE_BUSY: i32 = 5;
    match e {
        sqlx::Error::Database(db) => db
            .code()
            .and_then(|code| code.parse::<i32>().ok())
            .is_some_and(|code| code & 0xff == SQLITE_BUSY),
        _ => false,
    }
}

/// Rejects names the store would key on wrongly: `Example.org.` and `example.org` must not
/// become two domains with two sets of keys.
fn check_canonical(
    what: &'static str,
    value: &str,
    parse: fn(&str) -> Result<Name, NameError>,
) -> Result<(), StoreError> {
    let invalid = |reason: String| StoreError::InvalidName {
        what,
        value: value.to_string(),
        reason,
    };
    let name = parse(value).map_err(|e| invalid(e.to_string()))?;
    if name.as_str() != value {
        return Err(invalid(format!(
            "not in canonical form (lowercase A-labels, no trailing dot); use `{}`",
            name.as_str()
        )));
    }
    Ok(())
}

/// Runs file-system work on the blocking pool, keeping the async workers free.
async fn blocking<T, F>(f: F) -> T
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    match tokio::task::spawn_blocking(f).await {
        Ok(value) => value,
        // A panic in the closure is a bug; carry it to the caller as if it ran inline.
        Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        // Only happens while the runtime shuts down, and then nobody awaits us any more.
        Err(e) => panic!("file-system task cancelled during runtime shutdown: {e}"),
    }
}

/// Creates `dir` and any missing parents with mode 0700. Existing directories keep their
/// mode: the operator may have chosen it deliberately.
fn create_state_dir(dir: &Path) -> Result<(), StoreError> {
    match fs::metadata(dir) {
        Ok(meta) if meta.is_dir() => return Ok(()),
        Ok(_) => {
            return Err(StoreError::NotADirectory {
                path: dir.to_path_buf(),
            });
        }
        Err(_) => {}
    }

    // Collect the missing components, deepest first. Any error other than "exists" is
    // treated as missing; creating that component then reports the real cause.
    let missing: Vec<&Path> = dir
        .ancestors()
        .filter(|p| !p.as_os_str().is_empty())
        .take_while(|p| fs::metadata(p).is_err())
        .collect();

    for component in missing.into_iter().rev() {
        let create_error = |source: io::Error| StoreError::CreateStateDir {
            path: dir.to_path_buf(),
            failed_at: component.to_path_buf(),
            source,
        };
        match DirBuilder::new().mode(STATE_DIR_MODE).create(component) {
            // The umask may have cleared bits of 0700 (never added any); set it exactly.
            Ok(()) => set_mode(component, STATE_DIR_MODE)?,
            // Another process created it between our check and now: it is theirs, not ours.
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists && component.is_dir() => {}
            Err(e) => return Err(create_error(e)),
        }
    }
    Ok(())
}

/// Creates the database file with mode 0600 if it does not exist yet.
fn create_database_file(path: &Path) -> Result<(), StoreError> {
    let create_error = |source: io::Error| StoreError::CreateDatabase {
        path: path.to_path_buf(),
        source,
    };
    match OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(DATABASE_FILE_MODE)
        .open(path)
    {
        Ok(file) => file
            // The umask can only have removed bits; set the mode exactly anyway.
            .set_permissions(Permissions::from_mode(DATABASE_FILE_MODE))
            .map_err(|source| StoreError::Permissions {
                path: path.to_path_buf(),
                mode: DATABASE_FILE_MODE,
                source,
            }),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
            if fs::metadata(path).map_err(create_error)?.is_file() {
                Ok(())
            } else {
                Err(create_error(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    "it exists but is not a regular file",
                )))
            }
        }
        Err(e) => Err(create_error(e)),
    }
}

/// Makes `mailzone.db-wal` and `mailzone.db-shm` 0600 if they exist.
fn restrict_sidecar_files(db_path: &Path) -> Result<(), StoreError> {
    for suffix in ["-wal", "-shm"] {
        let mut name = OsString::from(db_path.as_os_str());
        name.push(suffix);
        let path = PathBuf::from(name);
        match fs::metadata(&path) {
            Ok(meta) if meta.permissions().mode() & 0o777 != DATABASE_FILE_MODE => {
                set_mode(&path, DATABASE_FILE_MODE)?;
            }
            Ok(_) => {}
            // SQLite removes them when the last connection closes; absent is fine.
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(source) => {
                return Err(StoreError::Permissions {
                    path,
                    mode: DATABASE_FILE_MODE,
                    source,
                });
            }
        }
    }
    Ok(())
}

fn set_mode(path: &Path, mode: u32) -> Result<(), StoreError> {
    fs::set_permissions(path, Permissions::from_mode(mode)).map_err(|source| {
        StoreError::Permissions {
            path: path.to_path_buf(),
            mode,
            source,
        }
    })
}

/// A SQLite store in a new temporary directory, which lives as long as the `TempDir`.
#[cfg(test)]
pub(crate) async fn temp_store() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open_sqlite(dir.path()).await.unwrap();
    (dir, store)
}

#[cfg(test)]
mod url_tests {
    #[test]
    fn passwords_are_not_shown() {
        assert_eq!(
            super::redact_url("postgres://mz:s3cret@127.0.0.1:5432/mz"),
            "postgres://mz@127.0.0.1:5432/mz"
        );
        assert_eq!(
            super::redact_url("postgres://mz@127.0.0.1/mz"),
            "postgres://mz@127.0.0.1/mz"
        );
    }
}
