-- Notifications and background jobs.

CREATE TABLE notifications (
    -- Internal order (newest first is n DESC); the API's id is the UUID.
    n          INTEGER PRIMARY KEY AUTOINCREMENT,
    id         TEXT NOT NULL UNIQUE,
    user_id    TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    kind       TEXT NOT NULL,
    title      TEXT NOT NULL,
    body       TEXT NOT NULL,
    link       TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    read       INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX notifications_by_user ON notifications(user_id, n);
CREATE INDEX notifications_unread ON notifications(user_id) WHERE read = 0;

CREATE TABLE jobs (
    id          TEXT PRIMARY KEY,
    user_id     TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    kind        TEXT NOT NULL,
    -- The job's parameters as JSON (room id, steps, step length).
    params      TEXT NOT NULL,
    state       TEXT NOT NULL,
    done        INTEGER NOT NULL DEFAULT 0,
    total       INTEGER NOT NULL DEFAULT 0,
    message     TEXT NOT NULL DEFAULT '',
    -- Where a finished export's file is (relative to the data directory).
    result_path TEXT,
    cancel      INTEGER NOT NULL DEFAULT 0,
    created_at  INTEGER NOT NULL,
    started_at  INTEGER,
    updated_at  INTEGER NOT NULL,
    -- Bumped on every change: the ETag of the job's snapshot.
    version     INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX jobs_by_user ON jobs(user_id, created_at);
CREATE INDEX jobs_by_state ON jobs(state);
