-- Links sent by mail (issue 23): an address to verify, a password to reset, an invitation
-- to accept. Only the token's SHA-256 is kept (the mail has the token); each link is
-- bound to the address it was sent to, works once (`used_at`, set by a compare-and-set)
-- and until `expires_at`. `user_id` is the account it acts on (none for an invitation:
-- the account does not exist yet); `created_by` is who sent an invitation.
CREATE TABLE action_links (
    token_hash TEXT PRIMARY KEY NOT NULL,
    purpose TEXT NOT NULL,
    user_id TEXT REFERENCES users(id) ON DELETE CASCADE,
    email TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    used_at BIGINT,
    created_by TEXT
);
CREATE INDEX action_links_user ON action_links (user_id, purpose);
CREATE INDEX action_links_expiry ON action_links (expires_at);
