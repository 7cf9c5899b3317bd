-- Second factors (issue 22). Each table belongs to its user and goes with it.

-- RFC 6238 one-time codes: one authenticator per user. The secret is sealed under the
-- key-encryption key (context "totp:{user_id}"): a database dump alone cannot mint codes.
-- Enrolment is confirmed by a first correct code; until then the row is a pending one
-- that a new enrolment replaces. `last_used_step` is the highest time step accepted:
-- RFC 6238 §5.2, a code is accepted at most once (a compare-and-set on it).
CREATE TABLE totp_credentials (
    user_id TEXT PRIMARY KEY NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    sealed_secret TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    confirmed_at BIGINT,
    last_used_step BIGINT,
    last_used_at BIGINT
);

-- Single-use recovery codes, stored as keyed hashes (the KEK's MAC); regenerating them
-- replaces the whole set.
CREATE TABLE recovery_codes (
    user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    code_hash TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    used_at BIGINT,
    PRIMARY KEY (user_id, code_hash)
);

-- WebAuthn credentials. `passkey` is webauthn-rs's serialized `Passkey` (public key,
-- counter, backup state): public data. `credential_id` is base64url, unique across users
-- (WebAuthn §7.1: a credential id already registered, to anyone, fails the registration).
CREATE TABLE passkeys (
    id TEXT PRIMARY KEY NOT NULL,
    user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    credential_id TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    passkey TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    last_used_at BIGINT,
    backup_eligible BOOLEAN NOT NULL,
    backed_up BOOLEAN NOT NULL,
    user_verified BOOLEAN NOT NULL
);
CREATE INDEX passkeys_user_id ON passkeys (user_id);

-- Policy: an administrator requires a second factor of this user; a client requires one
-- of everyone who signs in to it.
ALTER TABLE users ADD COLUMN mfa_required BOOLEAN NOT NULL DEFAULT FALSE;
ALTER TABLE clients ADD COLUMN require_mfa BOOLEAN NOT NULL DEFAULT FALSE;
