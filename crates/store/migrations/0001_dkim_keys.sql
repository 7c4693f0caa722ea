-- DKIM keys that mailzone generated and keeps (dkimManagement = Automatic).
--
-- Written in the SQL that SQLite and PostgreSQL share, so the same file can serve
-- both back ends: no AUTOINCREMENT, no WITHOUT ROWID, no type affinity tricks.
-- Times are unix seconds in BIGINT: PostgreSQL's INTEGER is 32 bits and would stop
-- in 2038; SQLite gives BIGINT the same 64-bit INTEGER affinity.
CREATE TABLE dkim_keys (
    -- A-label, lowercase, without the trailing dot.
    domain          TEXT    NOT NULL,
    selector        TEXT    NOT NULL,
    algorithm       TEXT    NOT NULL
                    CHECK (algorithm IN ('ed25519-sha256', 'rsa-sha256')),
    -- PKCS#8 PEM. Secret: never logged, never part of an error message.
    private_key_pem TEXT    NOT NULL,
    stage           TEXT    NOT NULL
                    CHECK (stage IN ('Pending', 'Active', 'Retiring', 'Retired')),
    created_at      BIGINT  NOT NULL,
    -- When the key moves to its next stage; NULL once it has none (Retired).
    next_transition BIGINT  NULL,
    PRIMARY KEY (domain, selector)
);
