-- Full-text search over message bodies (issue 22): a generated tsvector, so it is written by the
-- same statement (and transaction) as the body, with a GIN index. The 'simple' configuration
-- folds case but does not stem or drop stop words, as SQLite's unicode61 tokenizer does, so a
-- word finds the same messages on both databases.
ALTER TABLE messages ADD COLUMN search tsvector
    GENERATED ALWAYS AS (to_tsvector('simple', body)) STORED;
CREATE INDEX messages_search ON messages USING GIN (search);
-- Newest first is by event id (also the paging cursor).
CREATE UNIQUE INDEX messages_by_event ON messages(event_id);
