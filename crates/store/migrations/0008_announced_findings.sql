-- What each notification channel of `mailzone serve` was last told about a domain's check
-- findings: a restart compares with this and does not alert again.
CREATE TABLE announced_findings (
    domain     TEXT    NOT NULL,
    -- webhook | smtp
    channel    TEXT    NOT NULL,
    -- JSON array of the findings as announced
    findings   TEXT    NOT NULL,
    checked_at BIGINT  NOT NULL,
    PRIMARY KEY (domain, channel)
);
