-- Virtual keys: stored hashed; the plain key is shown once, when it is created.
CREATE TABLE virtual_keys (
    id TEXT PRIMARY KEY,
    hash BLOB NOT NULL UNIQUE,
    key_hint TEXT NOT NULL,
    alias TEXT,
    user_id TEXT,
    project TEXT,
    models TEXT NOT NULL DEFAULT '[]',
    max_budget REAL,
    budget_duration TEXT,
    budget_reset_at INTEGER,
    spend REAL NOT NULL DEFAULT 0,
    total_spend REAL NOT NULL DEFAULT 0,
    rpm_limit INTEGER,
    tpm_limit INTEGER,
    metadata TEXT NOT NULL DEFAULT '{}',
    expires_at INTEGER,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    deleted_at INTEGER
);

-- The analytics databank: one row per request, stored in the order of its id. Ids
-- are time-ordered (UUID v7), so a time range is an id range and the table is its own
-- time index: each request costs one B-tree insert.
CREATE TABLE requests (
    id TEXT PRIMARY KEY,
    started_at INTEGER NOT NULL,
    user_id TEXT NOT NULL,
    project TEXT,
    client TEXT,
    key_id TEXT,
    model TEXT NOT NULL,
    deployment TEXT,
    provider TEXT,
    upstream_model TEXT,
    api TEXT NOT NULL,
    stream INTEGER NOT NULL,
    status INTEGER NOT NULL,
    error TEXT,
    attempts INTEGER NOT NULL,
    fallbacks INTEGER NOT NULL,
    input_tokens INTEGER,
    output_tokens INTEGER,
    cached_tokens INTEGER,
    cache_write_tokens INTEGER,
    reasoning_tokens INTEGER,
    tokens_estimated INTEGER NOT NULL,
    cost_usd REAL,
    latency_ms REAL NOT NULL,
    ttft_ms REAL,
    upstream_ms REAL,
    overhead_ms REAL,
    memories_recalled INTEGER NOT NULL,
    memories_captured INTEGER NOT NULL,
    bytes_in INTEGER NOT NULL,
    bytes_out INTEGER NOT NULL,
    finish_reason TEXT
) WITHOUT ROWID;
-- No other index on the log: each would cost every insert, and summaries read the
-- rollups. Filtered reads go through the time (id) range; a key's log has its own
-- (LiteLLM's /spend/logs?api_key=).
CREATE INDEX requests_key ON requests (key_id, id) WHERE key_id IS NOT NULL;

CREATE TABLE feedback (
    request_id TEXT PRIMARY KEY,
    score REAL NOT NULL,
    comment TEXT,
    created_at INTEGER NOT NULL
);

-- Running totals per hour, one row per value of each dimension (user, project,
-- model, client, key, and `all`), kept by the writer with each batch: summaries read
-- these instead of scanning the request log.
CREATE TABLE rollups (
    dimension TEXT NOT NULL,
    hour INTEGER NOT NULL,
    value TEXT NOT NULL,
    requests INTEGER NOT NULL,
    errors INTEGER NOT NULL,
    truncated INTEGER NOT NULL,
    retried INTEGER NOT NULL,
    input_tokens INTEGER NOT NULL,
    output_tokens INTEGER NOT NULL,
    cached_tokens INTEGER NOT NULL,
    cost_usd REAL NOT NULL,
    unpriced INTEGER NOT NULL,
    latency_ms_sum REAL NOT NULL,
    latency_histogram BLOB NOT NULL,
    PRIMARY KEY (dimension, hour, value)
);
