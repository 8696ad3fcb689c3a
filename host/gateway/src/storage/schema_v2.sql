-- Long-term memories: one per remembered turn or added note, each in one scope (a
-- user, and a project or none). `scope` is the scope as a single search token (see
-- memory::Scope::token), so a search reads only its own scope's postings.
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

-- The full-text index over the memories (external content: the text is stored once).
-- Porter stemming, so "colours" finds "colour".
CREATE VIRTUAL TABLE memory_index USING fts5(
    scope, text,
    content = 'memories', content_rowid = 'rowid',
    tokenize = 'porter unicode61 remove_diacritics 2'
);
CREATE TRIGGER memories_indexed AFTER INSERT ON memories BEGIN
    INSERT INTO memory_index (rowid, scope, text) VALUES (new.rowid, new.scope, new.text);
END;
CREATE TRIGGER memories_unindexed AFTER DELETE ON memories BEGIN
    INSERT INTO memory_index (memory_index, rowid, scope, text) VALUES ('delete', old.rowid, old.scope, old.text);
END;
