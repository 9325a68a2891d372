-- Switchboard's schema (SQLite). Ids are UUID strings except the event log's integer cursor.

CREATE TABLE users (
    id            TEXT PRIMARY KEY,
    username      TEXT NOT NULL UNIQUE,
    password_hash TEXT NOT NULL,
    is_admin      INTEGER NOT NULL DEFAULT 0,
    created_at    INTEGER NOT NULL
);

CREATE TABLE rooms (
    id         TEXT PRIMARY KEY,
    name       TEXT NOT NULL,
    private    INTEGER NOT NULL,
    -- For a DM: "<smaller user id>:<larger user id>", so one pair has exactly one room.
    dm_key     TEXT UNIQUE,
    created_by TEXT NOT NULL REFERENCES users(id),
    created_at INTEGER NOT NULL,
    -- Highest message seq in the room; the next message gets last_seq + 1.
    last_seq   INTEGER NOT NULL DEFAULT 0
);

CREATE TABLE members (
    room_id   TEXT NOT NULL REFERENCES rooms(id) ON DELETE CASCADE,
    user_id   TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    joined_at INTEGER NOT NULL,
    -- Seq of the last message this member has read; unread = last_seq - read_seq.
    read_seq  INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (room_id, user_id)
) WITHOUT ROWID;
CREATE INDEX members_by_user ON members(user_id);

CREATE TABLE invites (
    room_id    TEXT NOT NULL REFERENCES rooms(id) ON DELETE CASCADE,
    user_id    TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    invited_by TEXT NOT NULL REFERENCES users(id),
    created_at INTEGER NOT NULL,
    PRIMARY KEY (room_id, user_id)
) WITHOUT ROWID;

-- The one ordered event log. Every transport is a view over it: a cursor in, events after it out.
-- An event is visible to `user_id` when set, otherwise to the members of `room_id`.
CREATE TABLE events (
    id      INTEGER PRIMARY KEY AUTOINCREMENT,
    feed    TEXT NOT NULL,
    kind    TEXT NOT NULL,
    room_id TEXT,
    user_id TEXT,
    data    TEXT NOT NULL,
    ts      INTEGER NOT NULL
);
CREATE INDEX events_by_room ON events(room_id, id) WHERE room_id IS NOT NULL;
CREATE INDEX events_by_user ON events(user_id, id) WHERE user_id IS NOT NULL;

CREATE TABLE messages (
    id         TEXT PRIMARY KEY,
    room_id    TEXT NOT NULL REFERENCES rooms(id) ON DELETE CASCADE,
    seq        INTEGER NOT NULL,
    author_id  TEXT NOT NULL REFERENCES users(id),
    body       TEXT NOT NULL,
    client_id  TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    event_id   INTEGER NOT NULL,
    UNIQUE (room_id, seq),
    -- Idempotent sends: a retry with the same client id finds the first message.
    UNIQUE (author_id, client_id)
);
