//! Durable tasks and their leases: a task is claimed by one worker at a time,
//! which holds a lease it renews; a task whose worker died is claimed again once the lease
//! has expired. Claiming is one UPDATE … RETURNING: on SQLite's single connection it runs
//! alone; on PostgreSQL the row is picked `FOR UPDATE SKIP LOCKED`, so instances sharing the
//! database never claim the same task.

use crate::query::{Param, RowError, params};
use crate::{Pool, Store, StoreError, StoreRow};

/// Where a task is in its life (the names of Stalwart's task states).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum TaskStatus {
    Scheduled,
    Running,
    Retry,
    Succeeded,
    Failed,
    /// Taken off the queue before it ran (API or web UI): never claimed again.
    Cancelled,
}

impl TaskStatus {
    /// Every status, in the order of a task's life.
    pub const ALL: [TaskStatus; 6] = [
        TaskStatus::Scheduled,
        TaskStatus::Retry,
        TaskStatus::Running,
        TaskStatus::Succeeded,
        TaskStatus::Failed,
        TaskStatus::Cancelled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            TaskStatus::Scheduled => "Scheduled",
            TaskStatus::Running => "Running",
            TaskStatus::Retry => "Retry",
            TaskStatus::Succeeded => "Succeeded",
            TaskStatus::Failed => "Failed",
            TaskStatus::Cancelled => "Cancelled",
        }
    }

    /// The status named `s` (`Scheduled`, …), exactly as [`TaskStatus::as_str`] writes it.
    pub fn parse(s: &str) -> Option<TaskStatus> {
        TaskStatus::ALL.into_iter().find(|t| t.as_str() == s)
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

/// Which tasks a page of the task list shows; `None` is any.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TaskFilter {
    pub domain: Option<String>,
    /// `DnsManagement`, `DkimRotation`, …
    pub kind: Option<String>,
    /// At most two statuses (Scheduled with Retry: "waiting"); empty is any.
    pub statuses: Vec<TaskStatus>,
}

/// What became of a request to change one task (cancel, reschedule).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TaskChange {
    /// No task has that id.
    NotFound,
    /// Done: the task as it now is.
    Changed(Task),
    /// The task's status does not allow it: the task, unchanged.
    Refused(Task),
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

/// Tasks scheduled per transaction by [`Store::schedule_tasks`]: a few statements for this
/// many tasks (a drift slice of 500 domains, two tasks each), and a write lock held briefly
/// enough for a worker's claim to come between two batches.
pub(crate) const SCHEDULE_BATCH: usize = 1_000;

/// Rows deleted per statement by [`Store::prune_tasks`].
pub(crate) const PRUNE_BATCH: i64 = 10_000;

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
        let mut tx = self.begin().await?;
        if self.is_shared() {
            // Instances scheduling the same domain at once: one at a time, so the
            // second sees the first's task (released at commit).
            tx.db()
                .execute(
                    "SELECT pg_advisory_xact_lock(hashtext($1))",
                    params![&new.domain],
                )
                .await?;
        }
        let waiting = tx
            .db()
            .fetch_optional(
                concat!(
                    "SELECT ",
                    columns!(),
                    " FROM tasks WHERE domain = $1 AND kind = $2 AND update_records = $3 \
                     AND on_success_renew_certificate = $6 \
                     AND (status IN ('Scheduled', 'Retry') \
                          OR (status = 'Running' AND (lease_until < $4 OR $5))) \
                     ORDER BY created_at LIMIT 1"
                ),
                // A forced renewal must not disappear into a waiting task without it.
                params![
                    &new.domain,
                    &new.kind,
                    &types,
                    now,
                    running_counts,
                    new.on_success_renew_certificate
                ],
                task_from_row,
            )
            .await?;
        let mut task = match waiting {
            Some(task) => task,
            None => {
                tx.db()
                    .fetch_one(
                        concat!(
                            "INSERT INTO tasks (id, kind, domain, update_records, \
                             on_success_renew_certificate, status, attempts, due_at, created_at, \
                             updated_at) \
                             VALUES ($1, $2, $3, $4, $5, 'Scheduled', 0, $6, $7, $7) RETURNING ",
                            columns!()
                        ),
                        params![
                            new_task_id(),
                            &new.kind,
                            &new.domain,
                            &types,
                            new.on_success_renew_certificate,
                            new.due_at,
                            now
                        ],
                        task_from_row,
                    )
                    .await?
            }
        };
        let waits_longer = matches!(task.status, TaskStatus::Scheduled | TaskStatus::Retry)
            && task.due_at > new.due_at;
        if waits_longer {
            // A task asked for sooner than the waiting one is due (a certificate changed
            // while a TlsaSync waits for a withdrawal): the waiting one comes forward.
            task = tx
                .db()
                .fetch_one(
                    concat!(
                        "UPDATE tasks SET due_at = $1, updated_at = $2 WHERE id = $3 RETURNING ",
                        columns!()
                    ),
                    params![new.due_at, now, &task.id],
                    task_from_row,
                )
                .await?;
        }
        tx.commit().await?;
        Ok(task)
    }

    /// [`Store::schedule_task`] for many tasks in a few statements per
    /// [`SCHEDULE_BATCH`] tasks (a transaction each): the waiting or running tasks of those
    /// domains read in one query, the missing ones inserted in one, those due later brought
    /// forward in one per due time. The tasks standing for `new`, in its order (a task asked
    /// for twice is the same task twice).
    pub async fn schedule_tasks(&self, new: &[NewTask], now: i64) -> Result<Vec<Task>, StoreError> {
        let mut out = Vec::with_capacity(new.len());
        for chunk in new.chunks(SCHEDULE_BATCH) {
            out.extend(self.schedule_chunk(chunk, now).await?);
        }
        Ok(out)
    }

    async fn schedule_chunk(&self, new: &[NewTask], now: i64) -> Result<Vec<Task>, StoreError> {
        use std::collections::{BTreeSet, HashMap};
        let key_of = |t: &NewTask| -> TaskKey {
            (
                t.domain.clone(),
                t.kind.clone(),
                update_records_json(&t.update_records),
                t.on_success_renew_certificate,
            )
        };
        let domains: BTreeSet<&str> = new.iter().map(|t| t.domain.as_str()).collect();
        let domains = serde_json::to_string(&domains).expect("strings always serialise");
        // SQLite: the write lock from the first statement, so no other writer slips a task
        // in between the read and the insert (the same reason PostgreSQL takes the
        // per-domain advisory locks of `insert_task`, here in name order: two batches
        // never wait for each other's locks in a cycle).
        let mut tx = self.begin_immediate().await?;
        let (lock, waiting_sql, insert_sql, forward_sql) = match self.pool {
            Pool::Sqlite(_) => (
                None,
                concat!(
                    "SELECT ",
                    columns!(),
                    " FROM tasks WHERE domain IN (SELECT value FROM json_each($1)) \
                     AND status IN ('Scheduled', 'Retry', 'Running') ORDER BY created_at, id"
                ),
                concat!(
                    "INSERT INTO tasks (id, kind, domain, update_records, \
                     on_success_renew_certificate, status, attempts, due_at, created_at, \
                     updated_at) \
                     SELECT json_extract(value, '$.id'), json_extract(value, '$.kind'), \
                     json_extract(value, '$.domain'), json_extract(value, '$.types'), \
                     json_extract(value, '$.renew'), 'Scheduled', 0, \
                     json_extract(value, '$.dueAt'), $2, $2 FROM json_each($1) RETURNING ",
                    columns!()
                ),
                concat!(
                    "UPDATE tasks SET due_at = $1, updated_at = $2 \
                     WHERE id IN (SELECT value FROM json_each($3)) \
                     AND status IN ('Scheduled', 'Retry') AND due_at > $1 RETURNING ",
                    columns!()
                ),
            ),
            Pool::Postgres(_) => (
                Some(
                    "SELECT pg_advisory_xact_lock(hashtext(d)) FROM \
                     (SELECT d FROM json_array_elements_text($1::json) AS t(d) ORDER BY d) \
                     AS locked",
                ),
                concat!(
                    "SELECT ",
                    columns!(),
                    " FROM tasks WHERE domain IN (SELECT json_array_elements_text($1::json)) \
                     AND status IN ('Scheduled', 'Retry', 'Running') ORDER BY created_at, id"
                ),
                concat!(
                    "INSERT INTO tasks (id, kind, domain, update_records, \
                     on_success_renew_certificate, status, attempts, due_at, created_at, \
                     updated_at) \
                     SELECT r->>'id', r->>'kind', r->>'domain', r->>'types', \
                     (r->>'renew')::boolean, 'Scheduled', 0, (r->>'dueAt')::bigint, $2, $2 \
                     FROM json_array_elements($1::json) AS r RETURNING ",
                    columns!()
                ),
                concat!(
                    "UPDATE tasks SET due_at = $1, updated_at = $2 \
                     WHERE id IN (SELECT json_array_elements_text($3::json)) \
                     AND status IN ('Scheduled', 'Retry') AND due_at > $1 RETURNING ",
                    columns!()
                ),
            ),
        };
        if let Some(lock) = lock {
            tx.db()
                .fetch_all(lock, params![&domains], |_| Ok(()))
                .await?;
        }
        // The oldest waiting or running task of each (domain, kind, types, renewal), as
        // `insert_task` picks it.
        let mut standing: HashMap<TaskKey, Task> = HashMap::new();
        for task in tx
            .db()
            .fetch_all(waiting_sql, params![&domains], task_from_row)
            .await?
        {
            standing.entry(task_key(&task)).or_insert(task);
        }
        // The earliest due time asked for each task found or to make, in the order asked.
        let mut asked: HashMap<TaskKey, i64> = HashMap::new();
        let mut order = Vec::new();
        for t in new {
            let key = key_of(t);
            match asked.get_mut(&key) {
                Some(due) => *due = (*due).min(t.due_at),
                None => {
                    asked.insert(key.clone(), t.due_at);
                    order.push(key);
                }
            }
        }
        let rows: Vec<serde_json::Value> = order
            .iter()
            .filter(|key| !standing.contains_key(*key))
            .map(|key @ (domain, kind, types, renew)| {
                serde_json::json!({
                    "id": new_task_id(),
                    "kind": kind,
                    "domain": domain,
                    "types": types,
                    "renew": renew,
                    "dueAt": asked[key],
                })
            })
            .collect();
        if !rows.is_empty() {
            let rows = serde_json::Value::Array(rows).to_string();
            for task in tx
                .db()
                .fetch_all(insert_sql, params![rows, now], task_from_row)
                .await?
            {
                standing.insert(task_key(&task), task);
            }
        }
        // A task asked for sooner than the waiting one is due comes forward (one UPDATE per
        // due time asked: one for a schedule, where every task is due now).
        let mut forward: std::collections::BTreeMap<i64, Vec<&str>> = Default::default();
        for (key, due) in &asked {
            if let Some(task) = standing.get(key)
                && matches!(task.status, TaskStatus::Scheduled | TaskStatus::Retry)
                && task.due_at > *due
            {
                forward.entry(*due).or_default().push(task.id.as_str());
            }
        }
        let mut moved = Vec::new();
        for (due, ids) in forward {
            let ids = serde_json::to_string(&ids).expect("strings always serialise");
            moved.extend(
                tx.db()
                    .fetch_all(forward_sql, params![due, now, ids], task_from_row)
                    .await?,
            );
        }
        for task in moved {
            standing.insert(task_key(&task), task);
        }
        tx.commit().await?;
        let mut out = Vec::with_capacity(new.len());
        for t in new {
            out.push(match standing.get(&key_of(t)) {
                Some(task) => task.clone(),
                // Every key was found or inserted above; should the database have returned
                // fewer rows, the task is scheduled on its own.
                None => self.insert_task(t, now, true).await?,
            });
        }
        Ok(out)
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
        self.db()
            .fetch_optional(sql, params![owner, lease_until, now], task_from_row)
            .await
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
        let changed = self
            .db()
            .execute(
                "UPDATE tasks SET lease_until = $1, progress = $2, updated_at = $3 \
                 WHERE id = $4 AND lease_owner = $5 AND status = 'Running'",
                params![lease_until, progress, now, id, owner],
            )
            .await?;
        Ok(changed == 1)
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
        let changed = self
            .db()
            .execute(
                "UPDATE tasks SET status = $1, due_at = COALESCE($2, due_at), failure_reason = $3, \
                 result = $4, progress = NULL, lease_owner = NULL, lease_until = NULL, updated_at = $5 \
                 WHERE id = $6 AND lease_owner = $7 AND status = 'Running'",
                params![status, due_at, reason, result, now, id, owner],
            )
            .await?;
        Ok(changed == 1)
    }

    /// Gives a running task back without counting the attempt (graceful shutdown): it is
    /// due again at once, for this or another instance.
    pub async fn release_task(&self, id: &str, owner: &str, now: i64) -> Result<(), StoreError> {
        self.db()
            .execute(
                "UPDATE tasks SET status = 'Scheduled', \
                 attempts = CASE WHEN attempts > 0 THEN attempts - 1 ELSE 0 END, due_at = $1, \
                 progress = NULL, lease_owner = NULL, lease_until = NULL, updated_at = $1 \
                 WHERE id = $2 AND lease_owner = $3 AND status = 'Running'",
                params![now, id, owner],
            )
            .await?;
        Ok(())
    }

    /// Schedules a Failed (or waiting Retry) task to run now, with its attempts reset.
    /// `None` when there is no such task; a Running or Succeeded task is returned unchanged.
    pub async fn retry_task(&self, id: &str, now: i64) -> Result<Option<Task>, StoreError> {
        self.db()
            .execute(
                "UPDATE tasks SET status = 'Scheduled', attempts = 0, due_at = $1, updated_at = $1 \
                 WHERE id = $2 AND status IN ('Failed', 'Retry')",
                params![now, id],
            )
            .await?;
        self.task(id).await
    }

    /// Takes a waiting (Scheduled or Retry) task off the queue: it becomes `Cancelled` and
    /// is never claimed. A Running task is refused (its worker holds it; the publication
    /// it is making cannot be taken back halfway), as are ended ones. One conditional
    /// UPDATE, so a claim racing with the cancel either wins (Refused) or finds nothing.
    pub async fn cancel_task(&self, id: &str, now: i64) -> Result<TaskChange, StoreError> {
        let changed = self
            .db()
            .execute(
                "UPDATE tasks SET status = 'Cancelled', progress = NULL, updated_at = $1 \
                 WHERE id = $2 AND status IN ('Scheduled', 'Retry')",
                params![now, id],
            )
            .await?;
        self.task_change(id, changed).await
    }

    /// Sets when a waiting or Failed task runs: `due_at` (now or later; a past time means
    /// now). A Scheduled or Retry task keeps its status and attempts; a Failed one is
    /// Scheduled again with its attempts reset, as [`Store::retry_task`] does. Running,
    /// Succeeded and Cancelled tasks are refused.
    pub async fn reschedule_task(
        &self,
        id: &str,
        due_at: i64,
        now: i64,
    ) -> Result<TaskChange, StoreError> {
        let changed = self
            .db()
            .execute(
                "UPDATE tasks SET \
                 attempts = CASE WHEN status = 'Failed' THEN 0 ELSE attempts END, \
                 status = CASE WHEN status = 'Failed' THEN 'Scheduled' ELSE status END, \
                 due_at = $1, updated_at = $2 \
                 WHERE id = $3 AND status IN ('Scheduled', 'Retry', 'Failed')",
                params![due_at, now, id],
            )
            .await?;
        self.task_change(id, changed).await
    }

    /// The outcome of a conditional UPDATE of task `id` that changed `changed` rows.
    async fn task_change(&self, id: &str, changed: u64) -> Result<TaskChange, StoreError> {
        Ok(match self.task(id).await? {
            None => TaskChange::NotFound,
            Some(task) if changed > 0 => TaskChange::Changed(task),
            Some(task) => TaskChange::Refused(task),
        })
    }

    /// One page of the tasks matching `filter`, newest first: at most `limit` from
    /// `offset` on (the database skips and limits; nothing else is read).
    pub async fn task_page(
        &self,
        filter: &TaskFilter,
        limit: u32,
        offset: u64,
    ) -> Result<Vec<Task>, StoreError> {
        let status = |i: usize| filter.statuses.get(i).map(|s| s.as_str());
        let any_status = filter.statuses.is_empty();
        self.db()
            .fetch_all(
                concat!(
                    "SELECT ",
                    columns!(),
                    " FROM tasks WHERE ($1 IS NULL OR domain = $1) AND ($2 IS NULL OR kind = $2) \
                     AND ($3 OR status = $4 OR status = $5) \
                     ORDER BY created_at DESC, id LIMIT $6 OFFSET $7"
                ),
                params![
                    filter.domain.as_deref(),
                    filter.kind.as_deref(),
                    any_status,
                    status(0),
                    status(1),
                    i64::from(limit),
                    i64::try_from(offset).unwrap_or(i64::MAX)
                ],
                task_from_row,
            )
            .await
    }

    /// How many tasks match `filter` (the total beside a page of [`Store::task_page`]).
    pub async fn task_count(&self, filter: &TaskFilter) -> Result<u64, StoreError> {
        let status = |i: usize| filter.statuses.get(i).map(|s| s.as_str());
        let n = self
            .db()
            .fetch_one(
                "SELECT COUNT(*) AS n FROM tasks WHERE ($1 IS NULL OR domain = $1) \
                 AND ($2 IS NULL OR kind = $2) AND ($3 OR status = $4 OR status = $5)",
                params![
                    filter.domain.as_deref(),
                    filter.kind.as_deref(),
                    filter.statuses.is_empty(),
                    status(0),
                    status(1)
                ],
                |row| Ok(row.int("n")?),
            )
            .await?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    /// Deletes ended tasks that a newer task of the same domain and kind has replaced:
    /// Succeeded and Cancelled ones last changed before `ended_before`, Failed ones (they
    /// explain a problem) before `failed_before`. The newest task of each domain and kind
    /// stays, however old, as that domain's last word: without this the table grows by
    /// every drift run of every domain. At most [`PRUNE_BATCH`] rows per statement, so no
    /// lock is held long. How many were deleted.
    pub async fn prune_tasks(
        &self,
        ended_before: i64,
        failed_before: i64,
    ) -> Result<u64, StoreError> {
        let mut deleted = 0;
        loop {
            let n = self
                .db()
                .execute(
                    "DELETE FROM tasks WHERE id IN (SELECT id FROM tasks AS old \
                     WHERE ((old.status IN ('Succeeded', 'Cancelled') AND old.updated_at < $1) \
                            OR (old.status = 'Failed' AND old.updated_at < $2)) \
                     AND EXISTS (SELECT 1 FROM tasks AS newer \
                       WHERE newer.domain = old.domain AND newer.kind = old.kind \
                       AND (newer.created_at > old.created_at \
                            OR (newer.created_at = old.created_at AND newer.id > old.id))) \
                     LIMIT $3)",
                    params![ended_before, failed_before, PRUNE_BATCH],
                )
                .await?;
            deleted += n;
            if n < PRUNE_BATCH as u64 {
                return Ok(deleted);
            }
        }
    }

    pub async fn task(&self, id: &str) -> Result<Option<Task>, StoreError> {
        self.db()
            .fetch_optional(
                concat!("SELECT ", columns!(), " FROM tasks WHERE id = $1"),
                params![id],
                task_from_row,
            )
            .await
    }

    /// The newest tasks first, at most `limit`, optionally of one status.
    pub async fn tasks(
        &self,
        status: Option<TaskStatus>,
        limit: u32,
    ) -> Result<Vec<Task>, StoreError> {
        let limit = Param::from(i64::from(limit));
        let (sql, params) = match status {
            Some(status) => (
                concat!(
                    "SELECT ",
                    columns!(),
                    " FROM tasks WHERE status = $1 ORDER BY created_at DESC, id LIMIT $2"
                ),
                vec![Param::from(status.as_str()), limit],
            ),
            None => (
                concat!(
                    "SELECT ",
                    columns!(),
                    " FROM tasks ORDER BY created_at DESC, id LIMIT $1"
                ),
                vec![limit],
            ),
        };
        self.db().fetch_all(sql, &params, task_from_row).await
    }

    /// The newest task of each domain (of any kind), in one query: what the domain list
    /// shows beside each domain, without a query per domain.
    pub async fn newest_task_per_domain(&self) -> Result<Vec<Task>, StoreError> {
        self.db()
            .fetch_all(
                concat!(
                    "SELECT ",
                    columns!(),
                    " FROM (SELECT ",
                    columns!(),
                    ", ROW_NUMBER() OVER (PARTITION BY domain ORDER BY created_at DESC, id DESC) \
                     AS newest FROM tasks) AS ranked WHERE newest = 1"
                ),
                params![],
                task_from_row,
            )
            .await
    }

    /// How many tasks are in each status (for metrics).
    pub async fn task_counts(&self) -> Result<Vec<(TaskStatus, i64)>, StoreError> {
        let counts = self
            .db()
            .fetch_all(
                "SELECT status, COUNT(*) AS n FROM tasks GROUP BY status",
                params![],
                |row| Ok((row.text("status")?, row.int("n")?)),
            )
            .await?;
        Ok(counts
            .into_iter()
            .filter_map(|(status, n)| Some((TaskStatus::parse(&status)?, n)))
            .collect())
    }

    /// Stores an API token's hash under a name.
    pub async fn add_api_token(
        &self,
        name: &str,
        token_hash: &str,
        now: i64,
    ) -> Result<String, StoreError> {
        let id = new_task_id();
        self.db()
            .execute(
                "INSERT INTO api_tokens (id, name, token_hash, created_at) VALUES ($1, $2, $3, $4)",
                params![&id, name, token_hash, now],
            )
            .await?;
        Ok(id)
    }

    /// The name of the token with this hash, if there is one.
    pub async fn api_token_name(&self, token_hash: &str) -> Result<Option<String>, StoreError> {
        self.db()
            .fetch_optional(
                "SELECT name FROM api_tokens WHERE token_hash = $1",
                params![token_hash],
                |row| Ok(row.text("name")?),
            )
            .await
    }

    /// Every API token's id, name and creation time (never its hash), oldest first.
    pub async fn api_tokens(&self) -> Result<Vec<ApiToken>, StoreError> {
        self.db()
            .fetch_all(
                "SELECT id, name, created_at FROM api_tokens ORDER BY created_at, id",
                params![],
                |row| {
                    Ok(ApiToken {
                        id: row.text("id")?,
                        name: row.text("name")?,
                        created_at: row.int("created_at")?,
                    })
                },
            )
            .await
    }

    /// Deletes the token with this id: it stops working at once, and the web UI sessions
    /// opened with it end. Whether one was deleted.
    pub async fn revoke_api_token(&self, id: &str) -> Result<bool, StoreError> {
        let deleted = self
            .db()
            .execute("DELETE FROM api_tokens WHERE id = $1", params![id])
            .await?;
        self.delete_web_sessions_of(&crate::web::token_subject(id))
            .await?;
        Ok(deleted > 0)
    }

    pub async fn api_token_count(&self) -> Result<i64, StoreError> {
        self.db()
            .fetch_one("SELECT COUNT(*) AS n FROM api_tokens", params![], |row| {
                Ok(row.int("n")?)
            })
            .await
    }
}

fn task_from_row(row: &dyn StoreRow) -> Result<Task, RowError> {
    let status = row.text("status")?;
    let update_records = row.text("update_records")?;
    let attempts = row.int("attempts")?;
    Ok(Task {
        id: row.text("id")?,
        kind: row.text("kind")?,
        domain: row.text("domain")?,
        update_records: serde_json::from_str(&update_records).unwrap_or_default(),
        on_success_renew_certificate: row.boolean("on_success_renew_certificate")?,
        status: TaskStatus::parse(&status).unwrap_or(TaskStatus::Failed),
        progress: row.opt_text("progress")?,
        attempts: u32::try_from(attempts).unwrap_or(0),
        due_at: row.int("due_at")?,
        lease_owner: row.opt_text("lease_owner")?,
        lease_until: row.opt_int("lease_until")?,
        failure_reason: row.opt_text("failure_reason")?,
        result: row.opt_text("result")?,
        created_at: row.int("created_at")?,
        updated_at: row.int("updated_at")?,
    })
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

/// What makes two tasks the same request: domain, kind, types (as stored), renewal.
type TaskKey = (String, String, String, bool);

fn task_key(task: &Task) -> TaskKey {
    (
        task.domain.clone(),
        task.kind.clone(),
        update_records_json(&task.update_records),
        task.on_success_renew_certificate,
    )
}

fn update_records_json(types: &[String]) -> String {
    serde_json::to_string(types).expect("a list of strings always serialises")
}

/// 128 bits in hex: the creation time in milliseconds (48 bits, strictly increasing within
/// a process), then 80 random bits. Unique without coordination between instances, and in
/// creation order: `created_at` counts seconds, and the lists that show the newest task of
/// a domain break its ties by id, so two tasks of one second (a failed one, then the one a
/// user started) come out in the order they were made.
fn new_task_id() -> String {
    static LAST: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
    let previous = LAST
        .fetch_update(
            std::sync::atomic::Ordering::Relaxed,
            std::sync::atomic::Ordering::Relaxed,
            |last| Some(now.max(last + 1)),
        )
        .expect("the update always gives a value");
    let stamp = now.max(previous + 1);
    let mut bytes: [u8; 16] = rand::random();
    bytes[..6].copy_from_slice(&stamp.to_be_bytes()[2..]);
    mailzone_records::zonefile::hex(&bytes)
}
