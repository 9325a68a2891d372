-- Who changed what, and when: every administrator action.
CREATE TABLE audit_log (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    actor_id   TEXT NOT NULL,
    actor_name TEXT NOT NULL,
    action     TEXT NOT NULL,
    -- What the action touched and how, as JSON.
    detail     TEXT NOT NULL,
    at         INTEGER NOT NULL
);
CREATE INDEX audit_by_time ON audit_log(at);
