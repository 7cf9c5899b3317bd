-- Upstream identities (issue 24): an identity at another OpenID provider, keyed by that
-- provider's issuer and its `sub` (never by email), and the local account it signs in
-- to. `provider` is the `[[upstream]]` id it came through; `email` is the upstream's
-- address, for display only.
--
-- The row outlives its link: `user_id` NULL with `unlinked_at` set is an identity its
-- user unlinked (free to be linked again; a link proof issued before `unlinked_at` is
-- dead); `user_id` NULL with `unlinked_at` NULL is the tombstone a removed account leaves
-- (ON DELETE SET NULL): that identity is refused, never silently given a fresh account by
-- JIT, until an operator deletes the row.
CREATE TABLE upstream_identities (
    issuer TEXT NOT NULL,
    subject TEXT NOT NULL,
    provider TEXT NOT NULL,
    user_id TEXT REFERENCES users(id) ON DELETE SET NULL,
    email TEXT,
    created_at BIGINT NOT NULL,
    last_used_at BIGINT,
    unlinked_at BIGINT,
    PRIMARY KEY (issuer, subject)
);
CREATE INDEX upstream_identities_user_id ON upstream_identities (user_id);
