-- Open sign-up (issue 23 §4): what a person chose on the sign-up form waits here until
-- the link mailed to their address is used; only then does the account exist, so it
-- cannot sign in before its address is verified. Keyed by the link's token hash (the
-- link row has the address, the expiry and the single use); the username and password
-- hash are sealed under the key-encryption key (bound to the row's key), so a copy of
-- the database shows neither. Purged with its link.
CREATE TABLE pending_signups (
    token_hash TEXT PRIMARY KEY NOT NULL REFERENCES action_links(token_hash) ON DELETE CASCADE,
    sealed_registration TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
