-- OIDC Back-Channel Logout 1.0 §2.2 and Front-Channel Logout 1.0 §2: where a client is
-- told that a session ended, and whether it needs the session id (`sid`) to act on it.
ALTER TABLE clients ADD COLUMN backchannel_logout_uri TEXT;
ALTER TABLE clients ADD COLUMN backchannel_logout_session_required BOOLEAN NOT NULL DEFAULT FALSE;
ALTER TABLE clients ADD COLUMN frontchannel_logout_uri TEXT;
ALTER TABLE clients ADD COLUMN frontchannel_logout_session_required BOOLEAN NOT NULL DEFAULT FALSE;

-- Every browser session, beside its record in the session store: the list a user and an
-- operator see (by user, without scanning the session store), and the durable fact that
-- it ended, which every instance and the CLI honour. `store_key` is the session store's
-- key (a hash of the cookie), never the cookie itself.
CREATE TABLE browser_sessions (
    sid TEXT PRIMARY KEY NOT NULL,
    user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    store_key TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    ended_at BIGINT,
    user_agent TEXT,
    ip_address TEXT
);
CREATE INDEX browser_sessions_user_id ON browser_sessions (user_id);
CREATE INDEX browser_sessions_live_expiry ON browser_sessions (expires_at) WHERE ended_at IS NULL;

-- The back-channel logout outbox: one row per ended session and client, written in the
-- transaction that ends the session, delivered by whichever instance claims it first.
-- No user reference: a removed user's logout is still delivered.
CREATE TABLE logout_deliveries (
    id TEXT PRIMARY KEY NOT NULL,
    client_id TEXT NOT NULL REFERENCES clients(id) ON DELETE CASCADE,
    sid TEXT NOT NULL,
    subject TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    next_attempt_at BIGINT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    delivered_at BIGINT,
    failed_at BIGINT,
    last_error TEXT,
    UNIQUE (sid, client_id)
);
CREATE INDEX logout_deliveries_due ON logout_deliveries (next_attempt_at)
    WHERE delivered_at IS NULL AND failed_at IS NULL;
