//! Durable tasks and their leases (issue 5): a task is claimed by one worker at a time,
//! which holds a lease it renews; a task whose worker died is claimed again once the lease
//! has expired. Claiming is one UPDATE … RETURNING on a single connection, so two workers
//! of one process never get the same task.

use sqlx::Row;
use sqlx::sqlite::SqliteRow;

use crate::{Store, StoreError};

/// Where a task is in its life (the names of Stalwart's task states).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum TaskStatus {
    Scheduled,
    Running,
    Retry,
    Succeeded,
    Failed,
}

impl TaskStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            TaskStatus::Scheduled => "Scheduled",
            TaskStatus::Running => "Running",
            TaskStatus::Retry => "Retry",
            TaskStatus::Succeeded => "Succeeded",
            TaskStatus::Failed => "Failed",
        }
    }

    fn parse(s: &str) -> Option<TaskStatus> {
        [
            TaskStatus::Scheduled,
            TaskStatus::Running,
            TaskStatus::Retry,
            TaskStatus::Succeeded,
            TaskStatus::Failed,
        ]
        .into_iter()
        .find(|t| t.as_str() == s)
    }
}

/// One task as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Task {
    pub id: String,
    /// `DnsManagement`.
    pub kind: String,
    pub domain: String,
    /// Record type names (`mx`, `dkim`, …) to update; empty means all (Stalwart's
    /// `updateRecords`).
    pub update_records: Vec<String>,
    pub on_success_renew_certificate: bool,
    pub status: TaskStatus,
    pub progress: Option<String>,
    pub attempts: u32,
    /// When the task may run (Scheduled, Retry), unix seconds.
    pub due_at: i64,
    pub lease_owner: Option<String>,
    pub lease_until: Option<i64>,
    pub failure_reason: Option<String>,
    pub result: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
}

/// A task to create.
#[derive(Debug, Clone)]
pub struct NewTask {
    pub kind: String,
    pub domain: String,
    pub update_records: Vec<String>,
    pub on_success_renew_certificate: bool,
    pub due_at: i64,
}

/// How an attempt ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TaskEnd {
    Succeeded {
        result: String,
    },
    /// A transient failure: run again at `due_at`.
    Retry {
        due_at: i64,
        reason: String,
    },
    Failed {
        reason: String,
    },
}

/// The task columns, as a macro so that queries stay `&'static str` (sqlx refuses
/// run-time built SQL).
macro_rules! columns {
    () => {
        "id, kind, domain, update_records, on_success_renew_certificate, status, progress, \
         attempts, due_at, lease_owner, lease_until, failure_reason, result, created_at, updated_at"
    };
}

impl Store {
    /// Creates a task, unless one for the same domain, kind and types is already waiting,
    /// or running under an expired lease (it will be run again from the start, with the
    /// config of that moment): that one is returned instead. A task running under a live
    /// lease may be working from an older config, so a new one is queued behind it.
    pub async fn create_task(&self, new: &NewTask, now: i64) -> Result<Task, StoreError> {
        let waiting = sqlx::query(concat!(
            "SELECT ",
            columns!(),
            " FROM tasks WHERE domain = ? AND kind = ? AND update_records = ? \
             AND (status IN ('Scheduled', 'Retry') OR (status = 'Running' AND lease_until < ?)) \
             ORDER BY created_at LIMIT 1"
        ))
        .bind(&new.domain)
        .bind(&new.kind)
        .bind(update_records_json(&new.update_records))
        .bind(now)
        .fetch_optional(&self.pool)
        .await
        .map_err(|e| self.database_error(e))?;
        if let Some(row) = waiting {
            return self.task_from_row(&row);
        }
        let id = new_task_id();
        let row = sqlx::query(concat!(
            "INSERT INTO tasks (id, kind, domain, update_records, on_success_renew_certificate, \
             status, attempts, due_at, created_at, updated_at) \
             VALUES (?, ?, ?, ?, ?, 'Scheduled', 0, ?, ?, ?) RETURNING ",
            columns!()
        ))
        .bind(&id)
        .bind(&new.kind)
        .bind(&new.domain)
        .bind(update_records_json(&new.update_records))
        .bind(new.on_success_renew_certificate)
        .bind(new.due_at)
        .bind(now)
        .bind(now)
        .fetch_one(&self.pool)
        .await
        .map_err(|e| self.database_error(e))?;
        self.task_from_row(&row)
    }

    /// Takes the next due task for `owner` until `lease_until`: a Scheduled or Retry task
    /// whose time has come, or a Running one whose worker let its lease expire.
    pub async fn claim_task(
        &self,
        owner: &str,
        now: i64,
        lease_until: i64,
    ) -> Result<Option<Task>, StoreError> {
        let row = sqlx::query(concat!(
            "UPDATE tasks SET status = 'Running', lease_owner = ?, lease_until = ?, \
             attempts = attempts + 1, progress = 'starting', updated_at = ? \
             WHERE id = (SELECT id FROM tasks \
                 WHERE (status IN ('Scheduled', 'Retry') AND due_at <= ?) \
                    OR (status = 'Running' AND lease_until < ?) \
                 ORDER BY due_at, created_at LIMIT 1) \
             RETURNING ",
            columns!()
        ))
        .bind(owner)
        .bind(lease_until)
        .bind(now)
        .bind(now)
        .bind(now)
        .fetch_optional(&self.pool)
        .await
        .map_err(|e| self.database_error(e))?;
        row.map(|r| self.task_from_row(&r)).transpose()
    }

    /// Extends the lease and records progress. `false` when the lease was lost (another
    /// worker took the task over): the caller must stop.
    pub async fn renew_task(
        &self,
        id: &str,
        owner: &str,
        lease_until: i64,
        progress: &str,
        now: i64,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE tasks SET lease_until = ?, progress = ?, updated_at = ? \
             WHERE id = ? AND lease_owner = ? AND status = 'Running'",
        )
        .bind(lease_until)
        .bind(progress)
        .bind(now)
        .bind(id)
        .bind(owner)
        .execute(&self.pool)
        .await
        .map_err(|e| self.database_error(e))?;
        Ok(done.rows_affected() == 1)
    }

    /// Ends an attempt. `false` when `owner` no longer held the task.
    pub async fn finish_task(
        &self,
        id: &str,
        owner: &str,
        end: &TaskEnd,
        now: i64,
    ) -> Result<bool, StoreError> {
        let (status, due_at, reason, result) = match end {
            TaskEnd::Succeeded { result } => ("Succeeded", None, None, Some(result.as_str())),
            TaskEnd::Retry { due_at, reason } => {
                ("Retry", Some(*due_at), Some(reason.as_str()), None)
            }
            TaskEnd::Failed { reason } => ("Failed", None, Some(reason.as_str()), None),
        };
        let done = sqlx::query(
            "UPDATE tasks SET status = ?, due_at = COALESCE(?, due_at), failure_reason = ?, \
             result = ?, progress = NULL, lease_owner = NULL, lease_until = NULL, updated_at = ? \
             WHERE id = ? AND lease_owner = ? AND status = 'Running'",
        )
        .bind(status)
        .bind(due_at)
        .bind(reason)
        .bind(result)
        .bind(now)
        .bind(id)
        .bind(owner)
        .execute(&self.pool)
        .await
        .map_err(|e| self.database_error(e))?;
        Ok(done.rows_affected() == 1)
    }

    /// Gives a running task back without counting the attempt (graceful shutdown): it is
    /// due again at once, for this or another instance.
    pub async fn release_task(&self, id: &str, owner: &str, now: i64) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE tasks SET status = 'Scheduled', attempts = MAX(attempts - 1, 0), due_at = ?, \
             progress = NULL, lease_owner = NULL, lease_until = NULL, updated_at = ? \
             WHERE id = ? AND lease_owner = ? AND status = 'Running'",
        )
        .bind(now)
        .bind(now)
        .bind(id)
        .bind(owner)
        .execute(&self.pool)
        .await
        .map_err(|e| self.database_error(e))?;
        Ok(())
    }

    /// Schedules a Failed (or waiting Retry) task to run now, with its attempts reset.
    /// `None` when there is no such task; a Running or Succeeded task is returned unchanged.
    pub async fn retry_task(&self, id: &str, now: i64) -> Result<Option<Task>, StoreError> {
        sqlx::query(
            "UPDATE tasks SET status = 'Scheduled', attempts = 0, due_at = ?, updated_at = ? \
             WHERE id = ? AND status IN ('Failed', 'Retry')",
        )
        .bind(now)
        .bind(now)
        .bind(id)
        .execute(&self.pool)
        .await
        .map_err(|e| self.database_error(e))?;
        self.task(id).await
    }

    pub async fn task(&self, id: &str) -> Result<Option<Task>, StoreError> {
        let row = sqlx::query(concat!("SELECT ", columns!(), " FROM tasks WHERE id = ?"))
            .bind(id)
            .fetch_optional(&self.pool)
            .await
            .map_err(|e| self.database_error(e))?;
        row.map(|r| self.task_from_row(&r)).transpose()
    }

    /// The newest tasks first, at most `limit`, optionally of one status.
    pub async fn tasks(
        &self,
        status: Option<TaskStatus>,
        limit: u32,
    ) -> Result<Vec<Task>, StoreError> {
        let rows = sqlx::query(concat!(
            "SELECT ",
            columns!(),
            " FROM tasks WHERE (? IS NULL OR status = ?) \
             ORDER BY created_at DESC, id LIMIT ?"
        ))
        .bind(status.map(TaskStatus::as_str))
        .bind(status.map(TaskStatus::as_str))
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await
        .map_err(|e| self.database_error(e))?;
        rows.iter().map(|r| self.task_from_row(r)).collect()
    }

    /// How many tasks are in each status (for metrics).
    pub async fn task_counts(&self) -> Result<Vec<(TaskStatus, i64)>, StoreError> {
        let rows = sqlx::query("SELECT status, COUNT(*) AS n FROM tasks GROUP BY status")
            .fetch_all(&self.pool)
            .await
            .map_err(|e| self.database_error(e))?;
        let mut out = Vec::new();
        for row in rows {
            let status: String = row.try_get("status").map_err(|e| self.database_error(e))?;
            let n: i64 = row.try_get("n").map_err(|e| self.database_error(e))?;
            if let Some(status) = TaskStatus::parse(&status) {
                out.push((status, n));
            }
        }
        Ok(out)
    }

    fn task_from_row(&self, row: &SqliteRow) -> Result<Task, StoreError> {
        let e = |e: sqlx::Error| self.database_error(e);
        let status: String = row.try_get("status").map_err(e)?;
        let update_records: String = row.try_get("update_records").map_err(e)?;
        let attempts: i64 = row.try_get("attempts").map_err(e)?;
        Ok(Task {
            id: row.try_get("id").map_err(e)?,
            kind: row.try_get("kind").map_err(e)?,
            domain: row.try_get("domain").map_err(e)?,
            update_records: serde_json::from_str(&update_records).unwrap_or_default(),
            on_success_renew_certificate: row.try_get("on_success_renew_certificate").map_err(e)?,
            status: TaskStatus::parse(&status).unwrap_or(TaskStatus::Failed),
            progress: row.try_get("progress").map_err(e)?,
            attempts: u32::try_from(attempts).unwrap_or(0),
            due_at: row.try_get("due_at").map_err(e)?,
            lease_owner: row.try_get("lease_owner").map_err(e)?,
            lease_until: row.try_get("lease_until").map_err(e)?,
            failure_reason: row.try_get("failure_reason").map_err(e)?,
            result: row.try_get("result").map_err(e)?,
            created_at: row.try_get("created_at").map_err(e)?,
            updated_at: row.try_get("updated_at").map_err(e)?,
        })
    }

    /// Stores an API token's hash under a name.
    pub async fn add_api_token(
        &self,
        name: &str,
        token_hash: &str,
        now: i64,
    ) -> Result<String, StoreError> {
        let id = new_task_id();
        sqlx::query(
            "INSERT INTO api_tokens (id, name, token_hash, created_at) VALUES (?, ?, ?, ?)",
        )
        .bind(&id)
        .bind(name)
        .bind(token_hash)
        .bind(now)
        .execute(&self.pool)
        .await
        .map_err(|e| self.database_error(e))?;
        Ok(id)
    }

    /// The name of the token with this hash, if there is one.
    pub async fn api_token_name(&self, token_hash: &str) -> Result<Option<String>, StoreError> {
        let row = sqlx::query("SELECT name FROM api_tokens WHERE token_hash = ?")
            .bind(token_hash)
            .fetch_optional(&self.pool)
            .await
            .map_err(|e| self.database_error(e))?;
        row.map(|r| r.try_get("name").map_err(|e| self.database_error(e)))
            .transpose()
    }

    pub async fn api_token_count(&self) -> Result<i64, StoreError> {
        let row = sqlx::query("SELECT COUNT(*) AS n FROM api_tokens")
            .fetch_one(&self.pool)
            .await
            .map_err(|e| self.database_error(e))?;
        row.try_get("n").map_err(|e| self.database_error(e))
    }
}

fn update_records_json(types: &[String]) -> String {
    serde_json::to_string(types).expect("a list of strings always serialises")
}

/// 128 random bits in hex: unique without coordination between instances.
fn new_task_id() -> String {
    let bytes: [u8; 16] = rand::random();
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
