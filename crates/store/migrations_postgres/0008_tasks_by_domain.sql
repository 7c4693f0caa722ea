-- Scheduling a task first looks for a waiting one of the same kind for the same domain:
-- without this index each look read the whole table, so a start with thousands of domains
-- took time quadratic in their number.
CREATE INDEX tasks_by_domain ON tasks (domain, kind);
