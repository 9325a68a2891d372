-- Per-user transport choices and admin overrides, global switches, and admin settings.

CREATE TABLE transport_prefs (
    user_id   TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    feed      TEXT NOT NULL,
    -- The user's own choice; NULL means the feed's default.
    chosen    TEXT,
    -- An administrator's override; NULL means none.
    forced    TEXT,
    PRIMARY KEY (user_id, feed)
) WITHOUT ROWID;

-- Transports an administrator switched off (a missing row means on).
CREATE TABLE transport_switches (
    transport TEXT PRIMARY KEY,
    enabled   INTEGER NOT NULL
) WITHOUT ROWID;

CREATE TABLE settings (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
) WITHOUT ROWID;

-- Events addressed to everyone (global control events) have neither room nor user.
CREATE INDEX events_by_ts ON events(ts);
