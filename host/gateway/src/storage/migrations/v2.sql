-- Long-term memories: one per remembered turn or added note, each in one scope (a
-- user, and a project or none); `scope` is the scope's token (memory::Scope::token).
CREATE TABLE memories (
    rowid INTEGER PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    scope TEXT NOT NULL,
    user_id TEXT NOT NULL,
    project TEXT,
    client TEXT,
    request_id TEXT,
    text TEXT NOT NULL,
    created_at INTEGER NOT NULL
);
CREATE INDEX memories_by_scope ON memories (scope, rowid);

-- The full-text index: for each memory (same rowid) its distinct words, each prefixed
-- with the scope's token, so every word's postings are one scope's own and a search
-- never reads another scope's (memory::store). Contentless: the text is in `memories`.
CREATE VIRTUAL TABLE memory_index USING fts5(
    words,
    content = '', contentless_delete = 1,
    tokenize = 'unicode61 remove_diacritics 2'
);
