-- Messages over their whole life: edits, tombstones, replies and reactions (issue 21).

-- When the body was last edited (ms), NULL if never.
ALTER TABLE messages ADD COLUMN edited_at BIGINT;
-- A deleted message stays as a tombstone: body '', no reactions, still in its place in history.
ALTER TABLE messages ADD COLUMN deleted BOOLEAN NOT NULL DEFAULT FALSE;
-- The message this one answers (same room; no foreign key: both go only with their room),
-- and on a root: how many answer it.
ALTER TABLE messages ADD COLUMN reply_to TEXT;
ALTER TABLE messages ADD COLUMN reply_count BIGINT NOT NULL DEFAULT 0;
-- A thread, oldest first.
CREATE INDEX messages_by_reply_to ON messages(reply_to, seq) WHERE reply_to IS NOT NULL;

-- One row per (message, person, emoji); the counts are counted, never stored. `n` keeps the
-- order reactions were made in (milliseconds tie; reactions to one message take turns).
CREATE TABLE reactions (
    message_id TEXT NOT NULL REFERENCES messages(id) ON DELETE CASCADE,
    user_id    TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    emoji      TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    n          BIGINT GENERATED ALWAYS AS IDENTITY,
    PRIMARY KEY (message_id, user_id, emoji)
);
CREATE INDEX reactions_by_message ON reactions(message_id, n);
CREATE INDEX reactions_by_user ON reactions(user_id, created_at);
