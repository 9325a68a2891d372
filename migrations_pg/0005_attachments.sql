-- Attachments (issue 22), as ../migrations/0008. (0004 belongs to the search migration; the
-- numbers leave it its place.)

CREATE TABLE uploads (
    id           TEXT PRIMARY KEY,
    owner_id     TEXT NOT NULL,
    name         TEXT NOT NULL,
    size         BIGINT NOT NULL DEFAULT 0,
    content_type TEXT NOT NULL,
    width        BIGINT,
    height       BIGINT,
    thumbnail    BYTEA,
    thumbnail_type TEXT,
    complete     BOOLEAN NOT NULL DEFAULT FALSE,
    message_id   TEXT,
    job_id       TEXT,
    position     BIGINT NOT NULL DEFAULT 0,
    created_at   BIGINT NOT NULL
);
CREATE INDEX uploads_by_message ON uploads(message_id, position) WHERE message_id IS NOT NULL;
CREATE INDEX uploads_by_owner ON uploads(owner_id, created_at);
CREATE INDEX uploads_orphans ON uploads(created_at) WHERE message_id IS NULL AND job_id IS NULL;

CREATE TABLE upload_chunks (
    upload_id TEXT NOT NULL,
    n         BIGINT NOT NULL,
    bytes     BYTEA NOT NULL,
    PRIMARY KEY (upload_id, n)
);
