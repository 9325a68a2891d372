-- Rooms and people (issue 21): a room's topic, a person's display name.
-- (0005 belongs to the message-life migration; the numbers leave it its place.)

-- What the room is about, one line; '' when unset.
ALTER TABLE rooms ADD COLUMN topic TEXT NOT NULL DEFAULT '';
-- The name shown instead of the username; NULL when unset.
ALTER TABLE users ADD COLUMN display_name TEXT;
