-- Failed sign-in attempts (issue 26): one row per session-store counter a failure
-- counted under (the counter's key, a hash). The counters live in the session store;
-- these rows are what rebuilds them when that store comes back empty. Written by a
-- failure only, read only then, purged a day after.
CREATE TABLE login_failures (
    id TEXT PRIMARY KEY NOT NULL,
    counter_key TEXT NOT NULL,
    at BIGINT NOT NULL
);
CREATE INDEX login_failures_at ON login_failures (at);
