-- DNS servers defined through the service's API: the `[dnsServer.name]` table as JSON, with
-- the TSIG secret (`key`) sealed like the DKIM private keys.
CREATE TABLE api_dns_servers (
    name        TEXT    NOT NULL PRIMARY KEY,
    definition  TEXT    NOT NULL,
    created_at  BIGINT  NOT NULL,
    updated_at  BIGINT  NOT NULL
);
