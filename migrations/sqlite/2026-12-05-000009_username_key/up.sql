-- Usernames are unique, and found, without regard to case: by `username_key`, the
-- username trimmed and lower-cased (`domain::UsernameKey`, the same key the login throttle
-- counts by). `username` keeps the case its owner chose.
--
-- Existing names that fold alike (`Alice` and `alice`): the oldest account (by created_at,
-- then id) keeps the name as its key; each other one gets its own id (its `sub`) as its key,
-- so nothing fails and nothing is lost, and an operator finds it in `portcullis users list`
-- and reaches it by that id (README, "Usernames").
--
-- SQLite's lower() folds ASCII letters only, exactly as Rust does for them. A name with
-- other characters is left marked (its id and '#UNSETTLED', a key no name has): the
-- store keys it in Rust right after the migrations (`settle_username_keys`).
-- (NOT NULL needs a default in ALTER TABLE; every row is given its key below.)
ALTER TABLE users ADD COLUMN username_key TEXT NOT NULL DEFAULT '';

UPDATE users SET username_key = ranked.settled
FROM (
    SELECT id,
        CASE
            WHEN octet_length(username) <> length(username) THEN id || '#UNSETTLED'
            WHEN row_number() OVER (PARTITION BY lower(username) ORDER BY created_at, id) = 1
                THEN lower(username)
            ELSE id
        END AS settled
    FROM users
) AS ranked
WHERE users.id = ranked.id;

CREATE UNIQUE INDEX users_username_key_idx ON users (username_key);
