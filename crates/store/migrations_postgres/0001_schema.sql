-- The PostgreSQL schema: the same tables as the SQLite migrations 0001–0003 (see there for
-- what each column means), with every integer BIGINT so that both back ends decode to i64.
CREATE TABLE dkim_keys (
    domain          TEXT    NOT NULL,
    selector        TEXT    NOT NULL,
    algorithm       TEXT    NOT NULL
                    CHECK (algorithm IN ('ed25519-sha256', 'rsa-sha256')),
    private_key_pem TEXT    NOT NULL,
    stage           TEXT    NOT NULL
                    CHECK (stage IN ('Pending', 'Active', 'Retiring', 'Retired')),
    created_at      BIGINT  NOT NULL,
    next_transition BIGINT  NULL,
    PRIMARY KEY (domain, selector)
);

CREATE TABLE published_records (
    zone        TEXT    NOT NULL,
    name        TEXT    NOT NULL,
    rtype       TEXT    NOT NULL,
    rdata       TEXT    NOT NULL,
    record_type TEXT    NOT NULL,
    published_at BIGINT NOT NULL,
    PRIMARY KEY (zone, name, rtype, rdata)
);

CREATE TABLE zone_state (
    zone           TEXT    NOT NULL,
    dns_server     TEXT    NOT NULL,
    serial         BIGINT  NOT NULL,
    desired_digest TEXT    NOT NULL,
    checked_at     BIGINT  NOT NULL,
    PRIMARY KEY (zone, dns_server)
);

CREATE TABLE tasks (
    id              TEXT    NOT NULL PRIMARY KEY,
    kind            TEXT    NOT NULL,
    domain          TEXT    NOT NULL,
    update_records  TEXT    NOT NULL DEFAULT '[]',
    on_success_renew_certificate BOOLEAN NOT NULL DEFAULT FALSE,
    status          TEXT    NOT NULL
                    CHECK (status IN ('Scheduled', 'Running', 'Retry', 'Succeeded', 'Failed')),
    progress        TEXT    NULL,
    attempts        BIGINT  NOT NULL DEFAULT 0,
    due_at          BIGINT  NOT NULL,
    lease_owner     TEXT    NULL,
    lease_until     BIGINT  NULL,
    failure_reason  TEXT    NULL,
    result          TEXT    NULL,
    created_at      BIGINT  NOT NULL,
    updated_at      BIGINT  NOT NULL
);
CREATE INDEX tasks_due ON tasks (status, due_at);

CREATE TABLE api_tokens (
    id          TEXT    NOT NULL PRIMARY KEY,
    name        TEXT    NOT NULL,
    token_hash  TEXT    NOT NULL UNIQUE,
    created_at  BIGINT  NOT NULL
);
