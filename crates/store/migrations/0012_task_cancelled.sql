-- A waiting task can be cancelled from the API or the web UI: it keeps its row, with the
-- status `Cancelled`, and is never claimed. SQLite cannot change a CHECK constraint in
-- place, so the table is rebuilt with the new list and its indexes made again.
CREATE TABLE tasks_new (
    id              TEXT    NOT NULL PRIMARY KEY,
    kind            TEXT    NOT NULL,
    domain          TEXT    NOT NULL,
    update_records  TEXT    NOT NULL DEFAULT '[]',
    on_success_renew_certificate BOOLEAN NOT NULL DEFAULT FALSE,
    status          TEXT    NOT NULL
                    CHECK (status IN ('Scheduled', 'Running', 'Retry', 'Succeeded', 'Failed', 'Cancelled')),
    progress        TEXT    NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    due_at          BIGINT  NOT NULL,
    lease_owner     TEXT    NULL,
    lease_until     BIGINT  NULL,
    failure_reason  TEXT    NULL,
    result          TEXT    NULL,
    created_at      BIGINT  NOT NULL,
    updated_at      BIGINT  NOT NULL
);
INSERT INTO tasks_new (id, kind, domain, update_records, on_success_renew_certificate, status,
    progress, attempts, due_at, lease_owner, lease_until, failure_reason, result, created_at,
    updated_at)
SELECT id, kind, domain, update_records, on_success_renew_certificate, status, progress,
    attempts, due_at, lease_owner, lease_until, failure_reason, result, created_at, updated_at
FROM tasks;
DROP TABLE tasks;
ALTER TABLE tasks_new RENAME TO tasks;
CREATE INDEX tasks_due ON tasks (status, due_at);
CREATE INDEX tasks_by_domain ON tasks (domain, kind);
CREATE INDEX tasks_claim ON tasks (status, due_at, created_at);
CREATE INDEX tasks_newest ON tasks (created_at DESC, id);
CREATE INDEX tasks_newest_by_status ON tasks (status, created_at DESC, id);
