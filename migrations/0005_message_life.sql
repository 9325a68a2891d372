-- Messages over their whole life: edits, tombstones, replies and reactions (issue 21).

-- When the body was last edited (ms), NULL if never.
ALTER TABLE messages ADD COLUMN edited_at INTEGER;
-- A deleted message stays as a tombstone: body '', no reactions, still in its place in history.
ALTER TABLE messages ADD COLUMN deleted INTEGER NOT NULL DEFAULT 0;
-- The message this one answers (same room; no foreign key: both go only with their room),
-- and on a root: how many answer it.
ALTER TABLE messages ADD COLUMN reply_to TEXT;
ALTER TABLE messages ADD COLUMN reply_count INTEGER NOT NULL DEFAULT 0;
-- A thread, oldest first.
CREATE INDEX messages_by_reply_to ON messages(reply_to, seq) WHERE reply_to IS NOT NULL;

-- One row per (message, person, emoji); the counts are counted, never stored. A rowid table:
-- its rowid keeps the order reactions were made in (milliseconds tie).
CREATE TABLE reactions (
    message_id TEXT NOT NULL REFERENCES messages(id) ON DELETE CASCADE,
    user_id    TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    emoji      TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (message_id, user_id, emoji)
);
