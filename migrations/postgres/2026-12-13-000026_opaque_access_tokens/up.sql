-- Issue 26: a client's access tokens are RFC 9068 JWTs ('jwt', as before) or opaque
-- reference tokens ('opaque') that introspection resolves. Set by operators only.
ALTER TABLE clients ADD COLUMN access_token_format TEXT NOT NULL DEFAULT 'jwt';

-- Opaque access tokens: the SHA-256 of the token (never the token), and what the JWT
-- would have said. A user's token carries its grant: it dies with it (the liveness check
-- is the JWT's), and goes with the grant's row. Revocation denylists the jti, as for a
-- JWT. Rows past expires_at are swept with the other expired records.
CREATE TABLE opaque_access_tokens (
    token_hash TEXT PRIMARY KEY NOT NULL,
    jti TEXT NOT NULL,
    client_id TEXT NOT NULL,
    grant_id TEXT REFERENCES grants(id) ON DELETE CASCADE,
    -- The `sub` as the client knows it (pairwise already applied).
    subject TEXT NOT NULL,
    scope TEXT NOT NULL,
    -- The `aud` as JSON: one string, or an array of RFC 8707 resources.
    audience TEXT NOT NULL,
    issued_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    auth_time BIGINT,
    acr TEXT,
    -- Space-separated, as grants store it.
    amr TEXT,
    -- JSON array of group names.
    groups TEXT,
    -- RFC 9449 `cnf.jkt` of a DPoP-bound token.
    jkt TEXT,
    -- RFC 8693 `act` as JSON.
    act TEXT,
    -- The jtis a token from an exchange was exchanged from, space-separated.
    exchanged_from TEXT
);
CREATE INDEX opaque_access_tokens_expires_at ON opaque_access_tokens (expires_at);
CREATE INDEX opaque_access_tokens_grant_id ON opaque_access_tokens (grant_id);
