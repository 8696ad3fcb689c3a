-- Facts supersede stale ones (memory.extraction_model): the old memory stays as
-- history, out of the index and without a vector, so it is no longer recalled.
ALTER TABLE memories ADD COLUMN superseded_by TEXT;
ALTER TABLE memories ADD COLUMN superseded_at INTEGER;

-- What memory recall offered each request: [{"id": memory id, "score": 0 to 1}], best
-- first (the dashboard shows the memories and why they came).
ALTER TABLE requests ADD COLUMN recalled TEXT;

-- Finished turns waiting to be distilled into facts by the extraction model. Written
-- with the request records, removed in the transaction that stores the facts (or,
-- when extraction keeps failing, the cleaned turn itself): nothing is lost while the
-- model is slow or down.
CREATE TABLE memory_extractions (
    id TEXT PRIMARY KEY,
    scope TEXT NOT NULL,
    user_id TEXT NOT NULL,
    project TEXT,
    client TEXT,
    request_id TEXT,
    text TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    fingerprint TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL DEFAULT 0,
    last_error TEXT
) WITHOUT ROWID;
CREATE INDEX memory_extractions_due ON memory_extractions (next_attempt_at);

-- The form of the words in memory_index: 1, lower-cased words; 2, their English
-- (Snowball) stems, so "deployed" finds "deploys". The store rebuilds an index of an
-- older form when it opens (memory::store).
CREATE TABLE memory_index_form (form INTEGER NOT NULL);
INSERT INTO memory_index_form (form) VALUES (1);
