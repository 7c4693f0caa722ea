-- ACME accounts (RFC 8555 §7.3), one per directory URL: instant-acme's account credentials
-- (account URL and private key) as JSON, sealed like the DKIM private keys.
CREATE TABLE acme_accounts (
    directory    TEXT    NOT NULL PRIMARY KEY,
    credentials  TEXT    NOT NULL,
    created_at   BIGINT  NOT NULL
);
