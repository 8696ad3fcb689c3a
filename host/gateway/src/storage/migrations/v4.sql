-- A memory backend that failed a request (timed out, answered an error): the request
-- went on without memories, and the analytics say so.
ALTER TABLE requests ADD COLUMN memory_error TEXT;
-- For a deployment behind Supermemory's router: what it reported doing (its
-- x-supermemory-* response headers as a JSON object).
ALTER TABLE requests ADD COLUMN supermemory TEXT;

-- Memories on their way to a remote backend (Supermemory), kept until it has them:
-- nothing is lost while it is slow or down. Written with the request records,
-- removed by the sender once the backend accepted them.
CREATE TABLE memory_outbox (
    id TEXT PRIMARY KEY,
    backend TEXT NOT NULL,
    container_tag TEXT NOT NULL,
    custom_id TEXT NOT NULL,
    content TEXT NOT NULL,
    metadata TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL DEFAULT 0,
    last_error TEXT
) WITHOUT ROWID;
CREATE INDEX memory_outbox_due ON memory_outbox (next_attempt_at);
