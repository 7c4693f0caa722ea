-- Durable tasks (DESIGN.md §1 `Task`, issue 5): what the service must do, who is doing it
-- (a lease that expires when its worker dies) and how the last attempt ended.
-- Same SQL for SQLite and PostgreSQL; times are unix seconds.
CREATE TABLE tasks (
    id              TEXT    NOT NULL PRIMARY KEY,
    -- DnsManagement (later DkimRotation, TlsaSync)
    kind            TEXT    NOT NULL,
    domain          TEXT    NOT NULL,
    -- JSON array of DnsRecordType names; empty = every type the domain publishes
    update_records  TEXT    NOT NULL DEFAULT '[]',
    on_success_renew_certificate BOOLEAN NOT NULL DEFAULT FALSE,
    status          TEXT    NOT NULL
                    CHECK (status IN ('Scheduled', 'Running', 'Retry', 'Succeeded', 'Failed')),
    -- what the running task is doing now, for people
    progress        TEXT    NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    due_at          BIGINT  NOT NULL,
    lease_owner     TEXT    NULL,
    lease_until     BIGINT  NULL,
    failure_reason  TEXT    NULL,
    -- a one-line account of the last successful run
    result          TEXT    NULL,
    created_at      BIGINT  NOT NULL,
    updated_at      BIGINT  NOT NULL
);
CREATE INDEX tasks_due ON tasks (status, due_at);

-- Bearer tokens of the HTTP API: only a SHA-256 of the token is kept (tokens are 256
-- random bits, so a fast hash loses nothing to guessing).
CREATE TABLE api_tokens (
    id          TEXT    NOT NULL PRIMARY KEY,
    name        TEXT    NOT NULL,
    token_hash  TEXT    NOT NULL UNIQUE,
    created_at  BIGINT  NOT NULL
);
