//! Durable tasks and their leases: a task is claimed by one worker at a time,
//! which holds a lease it renews; a task whose worker died is claimed again once the lease
//! has expired. Claiming is one UPDATE … RETURNING: on SQLite's single connection it runs
//! alone; on PostgreSQL the row is picked `FOR UPDATE SKIP LOCKED`, so instances sharing the
//! database never claim the same task.

use crate::{Pool, Store, StoreError, StoreRow, with_pool};

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
        self.insert_task(new, now, false).await
    }

    /// Like [`Store::create_task`], but a task running under a live lease also stands for
    /// the new one: for the start-up and drift schedules, which ask for "a reconcile soon",
    /// not for one after a change.
    pub async fn schedule_task(&self, new: &NewTask, now: i64) -> Result<Task, StoreError> {
        self.insert_task(new, now, true).await
    }

    async fn insert_task(
        &self,
        new: &NewTask,
        now: i64,
        running_counts: bool,
    ) -> Result<Task, StoreError> {
        let types = update_records_json(&new.update_records);
        with_pool!(self, pool => {
            let mut tx = pool.begin().await.map_err(|e| self.database_error(e))?;
            if let Pool::Postgres(_) = &self.pool {
                // Instances scheduling the same domain at once: one at a time, so the
                // second sees the first's task (released at commit).
                sqlx::query("SELECT pg_advisory_xact_lock(hashtext($1))")
                    .bind(&new.domain)
                    .execute(&mut *tx)
                    .await
                    .map_err(|e| self.database_error(e))?;
            }
            let waiting = sqlx::query(concat!(
                "SELECT ",
                columns!(),
                " FROM tasks WHERE domain = $1 AND kind = $2 AND update_records = $3 \
                 AND on_success_renew_certificate = $6 \
                 AND (status IN ('Scheduled', 'Retry') \
                      OR (status = 'Running' AND (lease_until < $4 OR $5))) \
                 ORDER BY created_at LIMIT 1"
            ))
            .bind(&new.domain)
            .bind(&new.kind)
            .bind(&types)
            .bind(now)
            .bind(running_counts)
            // A forced renewal must not disappear into a waiting task without it.
            .bind(new.on_success_renew_certificate)
            .fetch_optional(&mut *tx)
            .await
            .map_err(|e| self.database_error(e))?;
            let row = match waiting {
                Some(row) => row,
                None => sqlx::query(concat!(
                    "INSERT INTO tasks (id, kind, domain, update_records, on_success_renew_certificate, \
                     status, attempts, due_at, created_at, updated_at) \
                     VALUES ($1, $2, $3, $4, $5, 'Scheduled', 0, $6, $7, $7) RETURNING ",
                    columns!()
                ))
                .bind(new_task_id())
                .bind(&new.kind)
                .bind(&new.domain)
                .bind(&types)
                .bind(new.on_success_renew_certificate)
                .bind(new.due_at)
                .bind(now)
                .fetch_one(&mut *tx)
                .await
                .map_err(|e| self.database_error(e))?,
            };
            let mut task = self.task_from_row(&row)?;
            let waits_longer = matches!(task.status, TaskStatus::Scheduled | TaskStatus::Retry)
                && task.due_at > new.due_at;
            if waits_longer {
                // A task asked for sooner than the waiting one is due (a certificate changed
                // while a TlsaSync waits for a withdrawal): the waiting one comes forward.
                let row = sqlx::query(concat!(
                    "UPDATE tasks SET due_at = $1, updated_at = $2 WHERE id = $3 RETURNING ",
                    columns!()
                ))
                .bind(new.due_at)
                .bind(now)
                .bind(&task.id)
                .fetch_one(&mut *tx)
                .await
                .map_err(|e| self.database_error(e))?;
                task = self.task_from_row(&row)?;
            }
            tx.commit().await.map_err(|e| self.database_error(e))?;
            Ok(task)
        })
    }

    /// Takes the next due task for `owner` until `lease_until`: a Scheduled or Retry task
    /// whose time has come, or a Running one whose worker let its lease expire.
    pub async fn claim_task(
        &self,
        owner: &str,
        now: i64,
        lease_until: i64,
    ) -> Result<Option<Task>, StoreError> {
        macro_rules! claim {
            ($pick:literal) => {
                concat!(
                    "UPDATE tasks SET status = 'Running', lease_owner = $1, lease_until = $2, \
                     attempts = attempts + 1, progress = 'starting', updated_at = $3 \
                     WHERE id = (",
                    $pick,
                    ") RETURNING ",
                    columns!()
                )
            };
        }
        // SQLite: one connection, so the statement runs alone. The earliest due task of
        // each claimable status, each found through the `tasks_claim` index, then the
        // earliest of those three: one OR over the statuses made SQLite sort every due task
        // for each claim (thousands at a start with thousands of domains).
        // PostgreSQL: two instances may pick the same row; the row lock makes one of them
        // skip to the next (FOR UPDATE is not allowed over a UNION).
        let sql = match self.pool {
            Pool::Sqlite(_) => claim!(
                "SELECT id FROM ( \
                   SELECT * FROM (SELECT id, due_at, created_at FROM tasks \
                     WHERE status = 'Scheduled' AND due_at <= $3 \
                     ORDER BY due_at, created_at LIMIT 1) \
                   UNION ALL SELECT * FROM (SELECT id, due_at, created_at FROM tasks \
                     WHERE status = 'Retry' AND due_at <= $3 \
                     ORDER BY due_at, created_at LIMIT 1) \
                   UNION ALL SELECT * FROM (SELECT id, due_at, created_at FROM tasks \
                     WHERE status = 'Running' AND lease_until < $3 \
                     ORDER BY due_at, created_at LIMIT 1)) \
                 ORDER BY due_at, created_at LIMIT 1"
            ),
            Pool::Postgres(_) => claim!(
                "SELECT id FROM tasks \
                 WHERE (status IN ('Scheduled', 'Retry') AND due_at <= $3) \
                    OR (status = 'Running' AND lease_until < $3) \
                 ORDER BY due_at, created_at LIMIT 1 FOR UPDATE SKIP LOCKED"
            ),
        };
        with_pool!(self, pool => {
            let row = sqlx::query(sql)
                .bind(owner)
                .bind(lease_until)
                .bind(now)
                .fetch_optional(pool)
                .await
                .map_err(|e| self.database_error(e))?;
            row.map(|r| self.task_from_row(&r)).transpose()
        })
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
        with_pool!(self, pool => {
            let done = sqlx::query(
                "UPDATE tasks SET lease_until = $1, progress = $2, updated_at = $3 \
                 WHERE id = $4 AND lease_owner = $5 AND status = 'Running'",
            )
            .bind(lease_until)
            .bind(progress)
            .bind(now)
            .bind(id)
            .bind(owner)
            .execute(pool)
            .await
            .map_err(|e| self.database_error(e))?;
            Ok(done.rows_affected() == 1)
        })
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
        with_pool!(self, pool => {
            let done = sqlx::query(
                "UPDATE tasks SET status = $1, due_at = COALESCE($2, due_at), failure_reason = $3, \
                 result = $4, progress = NULL, lease_owner = NULL, lease_until = NULL, updated_at = $5 \
                 WHERE id = $6 AND lease_owner = $7 AND status = 'Running'",
            )
            .bind(status)
            .bind(due_at)
            .bind(reason)
            .bind(result)
            .bind(now)
            .bind(id)
            .bind(owner)
            .execute(pool)
            .await
            .map_err(|e| self.database_error(e))?;
            Ok(done.rows_affected() == 1)
        })
    }

    /// Gives a running task back without counting the attempt (graceful shutdown): it is
    /// due again at once, for this or another instance.
    pub async fn release_task(&self, id: &str, owner: &str, now: i64) -> Result<(), StoreError> {
        with_pool!(self, pool => {
            sqlx::query(
                "UPDATE tasks SET status = 'Scheduled', \
                 attempts = CASE WHEN attempts > 0 THEN attempts - 1 ELSE 0 END, due_at = $1, \
                 progress = NULL, lease_owner = NULL, lease_until = NULL, updated_at = $1 \
                 WHERE id = $2 AND lease_owner = $3 AND status = 'Running'",
            )
            .bind(now)
            .bind(id)
            .bind(owner)
            .execute(pool)
            .await
            .map_err(|e| self.database_error(e))?;
            Ok(())
        })
    }

    /// Schedules a Failed (or waiting Retry) task to run now, with its attempts reset.
    /// `None` when there is no such task; a Running or Succeeded task is returned unchanged.
    pub async fn retry_task(&self, id: &str, now: i64) -> Result<Option<Task>, StoreError> {
        with_pool!(self, pool => {
            sqlx::query(
                "UPDATE tasks SET status = 'Scheduled', attempts = 0, due_at = $1, updated_at = $1 \
                 WHERE id = $2 AND status IN ('Failed', 'Retry')",
            )
            .bind(now)
            .bind(id)
            .execute(pool)
            .await
            .map_err(|e| self.database_error(e))?;
        });
        self.task(id).await
    }

    pub async fn task(&self, id: &str) -> Result<Option<Task>, StoreError> {
        with_pool!(self, pool => {
            let row = sqlx::query(concat!("SELECT ", columns!(), " FROM tasks WHERE id = $1"))
                .bind(id)
                .fetch_optional(pool)
                .await
                .map_err(|e| self.database_error(e))?;
            row.map(|r| self.task_from_row(&r)).transpose()
        })
    }

    /// The newest tasks first, at most `limit`, optionally of one status.
    pub async fn tasks(
        &self,
        status: Option<TaskStatus>,
        limit: u32,
    ) -> Result<Vec<Task>, StoreError> {
        with_pool!(self, pool => {
            let rows = match status {
                Some(status) => sqlx::query(concat!(
                    "SELECT ",
                    columns!(),
                    " FROM tasks WHERE status = $1 ORDER BY created_at DESC, id LIMIT $2"
                ))
                .bind(status.as_str())
                .bind(i64::from(limit))
                .fetch_all(pool)
                .await,
                None => sqlx::query(concat!(
                    "SELECT ",
                    columns!(),
                    " FROM tasks ORDER BY created_at DESC, id LIMIT $1"
                ))
                .bind(i64::from(limit))
                .fetch_all(pool)
                .await,
            }
            .map_err(|e| self.database_error(e))?;
            rows.iter().map(|r| self.task_from_row(r)).collect()
        })
    }

    /// How many tasks are in each status (for metrics).
    pub async fn task_counts(&self) -> Result<Vec<(TaskStatus, i64)>, StoreError> {
        with_pool!(self, pool => {
            let rows = sqlx::query("SELECT status, COUNT(*) AS n FROM tasks GROUP BY status")
                .fetch_all(pool)
                .await
                .map_err(|e| self.database_error(e))?;
            let mut out = Vec::new();
            for row in rows {
                let status = row.text("status").map_err(|e| self.database_error(e))?;
                let n = row.int("n").map_err(|e| self.database_error(e))?;
                if let Some(status) = TaskStatus::parse(&status) {
                    out.push((status, n));
                }
            }
            Ok(out)
        })
    }

    fn task_from_row(&self, row: &impl StoreRow) -> Result<Task, StoreError> {
        let e = |e: sqlx::Error| self.database_error(e);
        let status = row.text("status").map_err(e)?;
        let update_records = row.text("update_records").map_err(e)?;
        let attempts = row.int("attempts").map_err(e)?;
        Ok(Task {
            id: row.text("id").map_err(e)?,
            kind: row.text("kind").map_err(e)?,
            domain: row.text("domain").map_err(e)?,
            update_records: serde_json::from_str(&update_records).unwrap_or_default(),
            on_success_renew_certificate: row.boolean("on_success_renew_certificate").map_err(e)?,
            status: TaskStatus::parse(&status).unwrap_or(TaskStatus::Failed),
            progress: row.opt_text("progress").map_err(e)?,
            attempts: u32::try_from(attempts).unwrap_or(0),
            due_at: row.int("due_at").map_err(e)?,
            lease_owner: row.opt_text("lease_owner").map_err(e)?,
            lease_until: row.opt_int("lease_until").map_err(e)?,
            failure_reason: row.opt_text("failure_reason").map_err(e)?,
            result: row.opt_text("result").map_err(e)?,
            created_at: row.int("created_at").map_err(e)?,
            updated_at: row.int("updated_at").map_err(e)?,
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
        with_pool!(self, pool => {
            sqlx::query(
                "INSERT INTO api_tokens (id, name, token_hash, created_at) VALUES ($1, $2, $3, $4)",
            )
            .bind(&id)
            .bind(name)
            .bind(token_hash)
            .bind(now)
            .execute(pool)
            .await
            .map_err(|e| self.database_error(e))?;
        });
        Ok(id)
    }

    /// The name of the token with this hash, if there is one.
    pub async fn api_token_name(&self, token_hash: &str) -> Result<Option<String>, StoreError> {
        with_pool!(self, pool => {
            let row = sqlx::query("SELECT name FROM api_tokens WHERE token_hash = $1")
                .bind(token_hash)
                .fetch_optional(pool)
                .await
                .map_err(|e| self.database_error(e))?;
            row.map(|r| r.text("name").map_err(|e| self.database_error(e)))
                .transpose()
        })
    }

    /// Every API token's id, name and creation time (never its hash), oldest first.
    pub async fn api_tokens(&self) -> Result<Vec<ApiToken>, StoreError> {
        with_pool!(self, pool => {
            let rows = sqlx::query(
                "SELECT id, name, created_at FROM api_tokens ORDER BY created_at, id",
            )
            .fetch_all(pool)
            .await
            .map_err(|e| self.database_error(e))?;
            rows.iter()
                .map(|row| {
                    Ok(ApiToken {
                        id: row.text("id")?,
                        name: row.text("name")?,
                        created_at: row.int("created_at")?,
                    })
                })
                .collect::<Result<Vec<_>, sqlx::Error>>()
                .map_err(|e| self.database_error(e))
        })
    }

    /// Deletes the token with this id: it stops working at once. Whether one was deleted.
    pub async fn revoke_api_token(&self, id: &str) -> Result<bool, StoreError> {
        with_pool!(self, pool => {
            let done = sqlx::query("DELETE FROM api_tokens WHERE id = $1")
                .bind(id)
                .execute(pool)
                .await
                .map_err(|e| self.database_error(e))?;
            Ok(done.rows_affected() > 0)
        })
    }

    pub async fn api_token_count(&self) -> Result<i64, StoreError> {
        with_pool!(self, pool => {
            let row = sqlx::query("SELECT COUNT(*) AS n FROM api_tokens")
                .fetch_one(pool)
                .await
                .map_err(|e| self.database_error(e))?;
            row.int("n").map_err(|e| self.database_error(e))
        })
    }
}

/// An API token as listed: the token itself is never stored, only its hash, which is not
/// listed either.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ApiToken {
    pub id: String,
    pub name: String,
    /// Unix seconds.
    pub created_at: i64,
}

fn update_records_json(types: &[String]) -> String {
    serde_json::to_string(types).expect("a list of strings always serialises")
}

/// 128 random bits in hex: unique without coordination between instances.
fn new_task_id() -> String {
    let bytes: [u8; 16] = rand::random();
    mailzone_records::zonefile::hex(&bytes)
}
