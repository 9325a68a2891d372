-- Switchboard's schema (PostgreSQL): the SQLite schema in ../migrations, in one step, with
-- BIGINT for every integer the code reads as i64 and BOOLEAN for its flags. Names and titles
-- use the "C" collation so ordering is by bytes, as in SQLite.

CREATE TABLE users (
    id            TEXT PRIMARY KEY,
    username      TEXT COLLATE "C" NOT NULL UNIQUE,
    password_hash TEXT NOT NULL,
    is_admin      BOOLEAN NOT NULL DEFAULT FALSE,
    created_at    BIGINT NOT NULL
);

CREATE TABLE rooms (
    id         TEXT PRIMARY KEY,
    name       TEXT COLLATE "C" NOT NULL,
    private    BOOLEAN NOT NULL,
    -- For a DM: "<smaller user id>:<larger user id>", so one pair has exactly one room.
    dm_key     TEXT UNIQUE,
    created_by TEXT NOT NULL REFERENCES users(id),
    created_at BIGINT NOT NULL,
    -- Highest message seq in the room; the next message gets last_seq + 1.
    last_seq   BIGINT NOT NULL DEFAULT 0
);

CREATE TABLE members (
    room_id   TEXT NOT NULL REFERENCES rooms(id) ON DELETE CASCADE,
    user_id   TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    joined_at BIGINT NOT NULL,
    -- Seq of the last message this member has read; unread = last_seq - read_seq.
    read_seq  BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (room_id, user_id)
);
CREATE INDEX members_by_user ON members(user_id);

CREATE TABLE invites (
    room_id    TEXT NOT NULL REFERENCES rooms(id) ON DELETE CASCADE,
    user_id    TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    invited_by TEXT NOT NULL REFERENCES users(id),
    created_at BIGINT NOT NULL,
    PRIMARY KEY (room_id, user_id)
);

-- The one ordered event log. Every transport is a view over it: a cursor in, events after it out.
-- An event is visible to `user_id` when set, otherwise to the members of `room_id`; global
-- control events have neither.
--
-- Ids are NOT from a sequence: sequence values are handed out at nextval() and commit in any
-- order (and a rollback leaves a gap), so a reader could see id 8 before id 7 exists. Ids come
-- from `event_head` instead (see store/postgres.rs): each appending transaction raises the head
-- by the number of events it writes, as its last step, and holds that row's lock until commit.
-- So the log commits in id order, without gaps.
CREATE TABLE events (
    id      BIGINT PRIMARY KEY,
    feed    TEXT NOT NULL,
    kind    TEXT NOT NULL,
    room_id TEXT,
    user_id TEXT,
    data    TEXT NOT NULL,
    ts      BIGINT NOT NULL
);
CREATE INDEX events_by_room ON events(room_id, id) WHERE room_id IS NOT NULL;
CREATE INDEX events_by_user ON events(user_id, id) WHERE user_id IS NOT NULL;
CREATE INDEX events_by_ts ON events(ts);

-- The highest event id ever handed out (0 for a new log); survives pruning. Exactly one row.
CREATE TABLE event_head (
    one BOOLEAN PRIMARY KEY DEFAULT TRUE CHECK (one),
    id  BIGINT NOT NULL
);
INSERT INTO event_head (one, id) VALUES (TRUE, 0);

CREATE TABLE messages (
    id         TEXT PRIMARY KEY,
    room_id    TEXT NOT NULL REFERENCES rooms(id) ON DELETE CASCADE,
    seq        BIGINT NOT NULL,
    author_id  TEXT NOT NULL REFERENCES users(id),
    body       TEXT NOT NULL,
    client_id  TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    event_id   BIGINT NOT NULL,
    UNIQUE (room_id, seq),
    -- Idempotent sends: a retry with the same client id finds the first message.
    UNIQUE (author_id, client_id)
);

-- Per-user transport choices and admin overrides, global switches, and admin settings.
CREATE TABLE transport_prefs (
    user_id   TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    feed      TEXT NOT NULL,
    -- The user's own choice; NULL means the feed's default.
    chosen    TEXT,
    -- An administrator's override; NULL means none.
    forced    TEXT,
    PRIMARY KEY (user_id, feed)
);

-- Transports an administrator switched off (a missing row means on).
CREATE TABLE transport_switches (
    transport TEXT PRIMARY KEY,
    enabled   BOOLEAN NOT NULL
);

CREATE TABLE settings (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

CREATE TABLE notifications (
    -- Internal order (newest first is n DESC); the API's id is the UUID.
    n          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id         TEXT NOT NULL UNIQUE,
    user_id    TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    kind       TEXT NOT NULL,
    title      TEXT NOT NULL,
    body       TEXT NOT NULL,
    link       TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    read       BOOLEAN NOT NULL DEFAULT FALSE
);
CREATE INDEX notifications_by_user ON notifications(user_id, n);
CREATE INDEX notifications_unread ON notifications(user_id) WHERE NOT read;

CREATE TABLE jobs (
    id          TEXT PRIMARY KEY,
    user_id     TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    kind        TEXT NOT NULL,
    -- The job's parameters as JSON (room id, steps, step length).
    params      TEXT NOT NULL,
    state       TEXT NOT NULL,
    done        BIGINT NOT NULL DEFAULT 0,
    total       BIGINT NOT NULL DEFAULT 0,
    message     TEXT NOT NULL DEFAULT '',
    -- Where a finished export's file is (relative to the data directory).
    result_path TEXT,
    cancel      BOOLEAN NOT NULL DEFAULT FALSE,
    created_at  BIGINT NOT NULL,
    started_at  BIGINT,
    updated_at  BIGINT NOT NULL,
    -- Bumped on every change: the ETag of the job's snapshot.
    version     BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX jobs_by_user ON jobs(user_id, created_at);
CREATE INDEX jobs_by_state ON jobs(state);

-- Who changed what, and when: every administrator action.
CREATE TABLE audit_log (
    id         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    actor_id   TEXT NOT NULL,
    actor_name TEXT NOT NULL,
    action     TEXT NOT NULL,
    -- What the action touched and how, as JSON.
    detail     TEXT NOT NULL,
    at         BIGINT NOT NULL
);
CREATE INDEX audit_by_time ON audit_log(at);
