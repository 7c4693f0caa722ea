-- The web UI of `mailzone serve`: the local admin password (Argon2id PHC string, one row)
-- and the signed-in sessions. A session is known by the SHA-256 of its cookie value, so a
-- copy of the database signs nobody in; `last_seen` drives the idle expiry. `subject` is
-- `admin` or `token:<token id>` (sessions end with their token), `label` what the page shows.
CREATE TABLE admin_password (
    id            INTEGER NOT NULL PRIMARY KEY CHECK (id = 1),
    password_hash TEXT    NOT NULL,
    updated_at    BIGINT  NOT NULL
);
CREATE TABLE web_sessions (
    id_hash     TEXT    NOT NULL PRIMARY KEY,
    subject     TEXT    NOT NULL,
    label       TEXT    NOT NULL,
    created_at  BIGINT  NOT NULL,
    last_seen   BIGINT  NOT NULL
);
CREATE INDEX web_sessions_last_seen ON web_sessions (last_seen);
