-- A waiting task can be cancelled from the API or the web UI: it keeps its row, with the
-- status `Cancelled`, and is never claimed.
ALTER TABLE tasks DROP CONSTRAINT tasks_status_check;
ALTER TABLE tasks ADD CONSTRAINT tasks_status_check
    CHECK (status IN ('Scheduled', 'Running', 'Retry', 'Succeeded', 'Failed', 'Cancelled'));
