-- Domains defined through the service's API (issue 5): the `[domain."name"]` table as JSON,
-- merged with the config file's domains at load. Domains of the file are never stored here.
CREATE TABLE api_domains (
    name        TEXT    NOT NULL PRIMARY KEY,
    definition  TEXT    NOT NULL,
    created_at  BIGINT  NOT NULL,
    updated_at  BIGINT  NOT NULL
);
