-- Memory by meaning: one vector per memory and model (all-MiniLM-L6-v2: 384 f32s,
-- little-endian), written by the embedding indexer after the memory itself. A vector
-- of another model counts as missing, so a model change re-embeds in the background.
CREATE TABLE memory_vectors (
    memory_rowid INTEGER PRIMARY KEY,
    scope TEXT NOT NULL,
    model TEXT NOT NULL,
    vector BLOB NOT NULL
);
CREATE INDEX memory_vectors_by_scope ON memory_vectors (scope, model);
