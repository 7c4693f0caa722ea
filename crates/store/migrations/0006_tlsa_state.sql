-- TLSA rollover state per host (RFC 7671 §8.1, issue 6): every digest the certificate files
-- named, why it is published, and when a replaced one is withdrawn.
CREATE TABLE tlsa_state (
    host      TEXT    NOT NULL,
    usage     INTEGER NOT NULL,
    -- SHA-256 of the SubjectPublicKeyInfo, lowercase hex
    digest    TEXT    NOT NULL,
    -- current | next | retiring
    role      TEXT    NOT NULL,
    since     BIGINT  NOT NULL,
    retire_at BIGINT,
    PRIMARY KEY (host, usage, digest)
);
