-- The ledger keyed by its primary key alone (a WITHOUT ROWID table, SQLite's clustered
-- index): a rowid table kept each row twice, once in the table and once, rdata included,
-- in the index of its primary key, so that every record a publish remembered wrote both
-- B-trees and every ledger read looked the row up in the table after finding it in the
-- index. Same columns, same key, same rows.
CREATE TABLE published_records_keyed (
    zone        TEXT    NOT NULL,
    name        TEXT    NOT NULL,
    rtype       TEXT    NOT NULL,
    rdata       TEXT    NOT NULL,
    record_type TEXT    NOT NULL,
    published_at BIGINT NOT NULL,
    PRIMARY KEY (zone, name, rtype, rdata)
) WITHOUT ROWID;

INSERT INTO published_records_keyed (zone, name, rtype, rdata, record_type, published_at)
    SELECT zone, name, rtype, rdata, record_type, published_at FROM published_records;

DROP TABLE published_records;

ALTER TABLE published_records_keyed RENAME TO published_records;
