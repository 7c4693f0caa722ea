-- What mailzone published, per zone (DESIGN.md §5): the only records it may ever delete
-- when it no longer generates them. A row is written BEFORE the UPDATE that adds the
-- record is sent (an extra row for a record that never arrived is harmless: deletions
-- only touch records that are live), and removed after the UPDATE that deletes it.
CREATE TABLE published_records (
    zone        TEXT    NOT NULL,
    name        TEXT    NOT NULL,
    rtype       TEXT    NOT NULL,
    -- zone-file presentation of the data (absolute names, TXT quoted)
    rdata       TEXT    NOT NULL,
    record_type TEXT    NOT NULL,
    published_at BIGINT NOT NULL,
    PRIMARY KEY (zone, name, rtype, rdata)
);

-- What mailzone last saw of a zone: if the SOA serial and the digest of the desired records
-- are both unchanged, the zone is in sync and costs one SOA query.
CREATE TABLE zone_state (
    zone           TEXT    NOT NULL,
    dns_server     TEXT    NOT NULL,
    serial         BIGINT  NOT NULL,
    desired_digest TEXT    NOT NULL,
    checked_at     BIGINT  NOT NULL,
    PRIMARY KEY (zone, dns_server)
);
