-- Indexes for a service with thousands of domains (and so tens of thousands of tasks).
-- Scheduling a task first looks for a waiting one of the same kind for the same domain;
-- without `tasks_by_domain` each look read the whole table, so a start took time quadratic
-- in the number of domains. A claim takes the earliest due task of a status
-- (`tasks_claim`), and the API lists the newest tasks, of a status or of all
-- (`tasks_newest_by_status`, `tasks_newest`): each without sorting the table.
CREATE INDEX tasks_by_domain ON tasks (domain, kind);
CREATE INDEX tasks_claim ON tasks (status, due_at, created_at);
CREATE INDEX tasks_newest ON tasks (created_at DESC, id);
CREATE INDEX tasks_newest_by_status ON tasks (status, created_at DESC, id);
