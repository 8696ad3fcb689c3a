-- A turn or a note is remembered once per scope: agents resend whole conversations,
-- sessions fork and resume, and a note may be added twice. `fingerprint` is a hash of
-- the user's words of a turn (or of a note's text); older rows have none.
ALTER TABLE memories ADD COLUMN fingerprint TEXT;
CREATE UNIQUE INDEX memories_once ON memories (scope, fingerprint);

-- What memory added to each conversation (its blocks and where they went), so every
-- later turn of it gets the same bytes in the same places (services::memory::
-- conversation). Kept for a bounded time after the conversation's last change.
CREATE TABLE conversations (
    key TEXT PRIMARY KEY,
    state TEXT NOT NULL,
    updated_at INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX conversations_by_age ON conversations (updated_at);
