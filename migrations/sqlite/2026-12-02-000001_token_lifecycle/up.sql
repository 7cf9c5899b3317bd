-- The grant is the stored authorization that refresh, introspection and revocation read
-- (OIDC Core §12: a refreshed ID token repeats the original auth_time).
ALTER TABLE grants ADD COLUMN auth_time BIGINT NOT NULL DEFAULT 0;
ALTER TABLE grants ADD COLUMN nonce TEXT;
ALTER TABLE grants ADD COLUMN acr TEXT;
ALTER TABLE grants ADD COLUMN amr TEXT;
-- Claims granted beyond the scopes (the OIDC `claims` parameter), as JSON.
ALTER TABLE grants ADD COLUMN claims TEXT;
-- The absolute end of the grant: no refresh token outlives it.
ALTER TABLE grants ADD COLUMN expires_at BIGINT NOT NULL DEFAULT 0;
UPDATE grants SET auth_time = created_at, expires_at = created_at + 7776000;
CREATE INDEX grants_session_id ON grants (session_id);

-- Rotation: a consumed token names its successor (the hash), so that a retry within the
-- grace window is answered with the same successor instead of being taken for theft.
ALTER TABLE refresh_tokens ADD COLUMN successor_hash TEXT;

-- client_secret_jwt needs the secret itself (an HMAC key): encrypted under the
-- key-encryption key, which the database never holds. NULL for every other client.
ALTER TABLE clients ADD COLUMN secret_ciphertext TEXT;
-- private_key_jwt: the client's keys, inline (a JWK Set as JSON) or by URL.
ALTER TABLE clients ADD COLUMN jwks TEXT;
ALTER TABLE clients ADD COLUMN jwks_uri TEXT;
-- RFC 9700 §2.1.1: PKCE for every client unless registered with an explicit opt-out.
ALTER TABLE clients ADD COLUMN pkce_required BOOLEAN NOT NULL DEFAULT TRUE;
-- RFC 8707 resource indicators the client may ask tokens for, space-separated.
ALTER TABLE clients ADD COLUMN resources TEXT;
-- Registered by anyone through dynamic registration (shown as unverified on the consent
-- page). Clients from before cannot be told apart and count as operator-registered.
ALTER TABLE clients ADD COLUMN registered_dynamically BOOLEAN NOT NULL DEFAULT FALSE;
-- Existing clients too: an opt-out is only ever explicit (RFC 9700 §2.1.1).

-- Revoked JWT access tokens (RFC 7009), kept until the token would have expired.
CREATE TABLE revoked_access_tokens (
    jti TEXT PRIMARY KEY NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX revoked_access_tokens_expires_at ON revoked_access_tokens (expires_at);

-- RFC 7523 §3: a client assertion's jti is single use; kept until the assertion expires.
CREATE TABLE client_assertion_jtis (
    jti_hash TEXT PRIMARY KEY NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX client_assertion_jtis_expires_at ON client_assertion_jtis (expires_at);

-- When the user's password last changed: browser sessions from before it are over.
ALTER TABLE users ADD COLUMN credentials_changed_at BIGINT NOT NULL DEFAULT 0;

-- Facts about the deployment itself, e.g. the check value of the key-encryption key.
CREATE TABLE instance_facts (
    name TEXT PRIMARY KEY NOT NULL,
    value TEXT NOT NULL
);
