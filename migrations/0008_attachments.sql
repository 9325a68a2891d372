-- Attachments (issue 22): files people upload, stored in the database so every server of a
-- cluster serves them. (0007 belongs to the search migration; the numbers leave it its place.)

-- One row per file. `complete` turns true once every chunk is in: a half-received upload is
-- never served and is removed with the orphans. `message_id` is the one message that carries
-- it (NULL until then; an upload is carried by at most one message), `position` its place
-- among that message's files; `job_id` the export job whose result it is (never an orphan). `thumbnail` is the small PNG/JPEG made at upload time (images).
CREATE TABLE uploads (
    id           TEXT PRIMARY KEY,
    owner_id     TEXT NOT NULL,
    name         TEXT NOT NULL,
    size         INTEGER NOT NULL DEFAULT 0,
    content_type TEXT NOT NULL,
    width        INTEGER,
    height       INTEGER,
    thumbnail    BLOB,
    thumbnail_type TEXT,
    complete     INTEGER NOT NULL DEFAULT 0,
    message_id   TEXT,
    job_id       TEXT,
    position     INTEGER NOT NULL DEFAULT 0,
    created_at   INTEGER NOT NULL
);
CREATE INDEX uploads_by_message ON uploads(message_id, position) WHERE message_id IS NOT NULL;
CREATE INDEX uploads_by_owner ON uploads(owner_id, created_at);
CREATE INDEX uploads_orphans ON uploads(created_at) WHERE message_id IS NULL AND job_id IS NULL;

-- The bytes, in chunks of at most 256 KiB, read back in order of `n`: a file streams in and
-- out without ever being whole in memory.
CREATE TABLE upload_chunks (
    upload_id TEXT NOT NULL,
    n         INTEGER NOT NULL,
    bytes     BLOB NOT NULL,
    PRIMARY KEY (upload_id, n)
);
