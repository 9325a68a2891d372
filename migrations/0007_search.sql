-- Full-text search over message bodies (issue 22): an FTS5 index whose content is `messages`
-- itself (external content: the text is stored once). Its rowid is the message's event id, not
-- the table's own rowid: a rowid of a table without an INTEGER PRIMARY KEY may change on VACUUM,
-- and the event id also gives "newest first" as a walk down the index, so a search for a common
-- word stops after one page instead of sorting every match.
CREATE UNIQUE INDEX messages_by_event ON messages(event_id);

-- unicode61 folds case and (with remove_diacritics 2) accents; prefix indexes of 2 and 3
-- characters make short `ab*` searches cheap at the cost of a larger index.
CREATE VIRTUAL TABLE messages_fts USING fts5(
    body,
    content = 'messages',
    content_rowid = 'event_id',
    tokenize = 'unicode61 remove_diacritics 2',
    prefix = '2 3'
);

-- Kept in step by triggers, which run inside the statement that writes the message, so in the
-- same transaction (the group-commit writer's, an edit's, a delete's, a room's cascade).
CREATE TRIGGER messages_fts_insert AFTER INSERT ON messages BEGIN
    INSERT INTO messages_fts (rowid, body) VALUES (new.event_id, new.body);
END;
CREATE TRIGGER messages_fts_delete AFTER DELETE ON messages BEGIN
    INSERT INTO messages_fts (messages_fts, rowid, body) VALUES ('delete', old.event_id, old.body);
END;
CREATE TRIGGER messages_fts_update AFTER UPDATE OF body, event_id ON messages BEGIN
    INSERT INTO messages_fts (messages_fts, rowid, body) VALUES ('delete', old.event_id, old.body);
    INSERT INTO messages_fts (rowid, body) VALUES (new.event_id, new.body);
END;

-- Messages written before this migration.
INSERT INTO messages_fts (messages_fts) VALUES ('rebuild');
