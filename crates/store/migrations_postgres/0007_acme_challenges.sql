-- ACME DNS-01 challenge records (RFC 8555 §8.4) that may be published: each row is written
-- before the UPDATE that adds the record and deleted once the record is removed, so that a
-- renewal killed in between leaves the next one a list of what to remove.
CREATE TABLE acme_challenges (
    zone        TEXT    NOT NULL,
    dns_server  TEXT    NOT NULL,
    -- the owner name, `_acme-challenge.<name>`
    name        TEXT    NOT NULL,
    value       TEXT    NOT NULL,
    created_at  BIGINT  NOT NULL,
    PRIMARY KEY (zone, dns_server, name, value)
);
