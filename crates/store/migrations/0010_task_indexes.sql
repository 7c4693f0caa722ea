-- Indexes for a service with thousands of domains. Scheduling a task first looks for a
-- waiting one of the same kind for the same domain; without `tasks_by_domain` each look
-- read the whole table, so a start took time quadratic in the number of domains. A claim
-- takes the earliest due task of a status; `tasks_claim` gives it without sorting.
CREATE INDEX tasks_by_domain ON tasks (domain, kind);
CREATE INDEX tasks_claim ON tasks (status, due_at, created_at);
