-- Administration: the admin role, disabled accounts, and the audit trail of every change
-- made through the admin API, the console or the command line.
ALTER TABLE users ADD COLUMN is_admin BOOLEAN NOT NULL DEFAULT FALSE;
ALTER TABLE users ADD COLUMN disabled_at BIGINT;

CREATE TABLE audit_events (
    id BIGSERIAL PRIMARY KEY,
    at BIGINT NOT NULL,
    -- who: user:USERNAME, client:CLIENT_ID or cli
    actor TEXT NOT NULL,
    -- what: user.created, client.secret_rotated, ...
    action TEXT NOT NULL,
    -- the id of the user, client, session or key it was done to
    target TEXT,
    -- from where: the caller's address
    address TEXT,
    -- a JSON object of what changed (names of fields, never a secret)
    details TEXT
);
CREATE INDEX audit_events_at ON audit_events (at);
