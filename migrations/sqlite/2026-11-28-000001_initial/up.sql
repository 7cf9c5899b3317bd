-- Users with the OIDC standard claims (OIDC Core §5.1). `id` is the stable `sub`.
CREATE TABLE users (
    id TEXT PRIMARY KEY NOT NULL,
    username TEXT NOT NULL UNIQUE,
    password_hash TEXT NOT NULL,
    name TEXT,
    given_name TEXT,
    family_name TEXT,
    middle_name TEXT,
    nickname TEXT,
    profile TEXT,
    picture TEXT,
    website TEXT,
    email TEXT,
    email_verified BOOLEAN NOT NULL DEFAULT FALSE,
    gender TEXT,
    birthdate TEXT,
    zoneinfo TEXT,
    locale TEXT,
    phone_number TEXT,
    phone_number_verified BOOLEAN NOT NULL DEFAULT FALSE,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

CREATE TABLE clients (
    id TEXT PRIMARY KEY NOT NULL,
    name TEXT NOT NULL,
    -- SHA-256 of a 256-bit random secret; NULL for public clients.
    secret_hash TEXT,
    token_endpoint_auth_method TEXT NOT NULL,
    application_type TEXT NOT NULL,
    grant_types TEXT NOT NULL,
    response_types TEXT NOT NULL,
    -- Scopes the client may request, space-separated; NULL means every supported scope.
    scope TEXT,
    -- RFC 7591 display metadata (client_uri, logo_uri, contacts, ...) as JSON.
    metadata TEXT NOT NULL DEFAULT '{}',
    registration_token_hash TEXT,
    created_at BIGINT NOT NULL
);

CREATE TABLE client_redirect_uris (
    client_id TEXT NOT NULL REFERENCES clients(id) ON DELETE CASCADE,
    -- 'login' (redirect_uris) or 'logout' (post_logout_redirect_uris)
    kind TEXT NOT NULL,
    uri TEXT NOT NULL,
    position INTEGER NOT NULL,
    PRIMARY KEY (client_id, kind, uri)
);

-- One grant per redeemed code; tokens carry its id so that revoking it revokes them.
CREATE TABLE grants (
    id TEXT PRIMARY KEY NOT NULL,
    client_id TEXT NOT NULL REFERENCES clients(id) ON DELETE CASCADE,
    user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    scope TEXT NOT NULL,
    session_id TEXT,
    created_at BIGINT NOT NULL,
    revoked_at BIGINT
);

CREATE TABLE authorization_codes (
    code_hash TEXT PRIMARY KEY NOT NULL,
    grant_id TEXT NOT NULL,
    client_id TEXT NOT NULL REFERENCES clients(id) ON DELETE CASCADE,
    user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    redirect_uri TEXT NOT NULL,
    -- RFC 6749 §4.1.3: the token request must repeat redirect_uri when this is true.
    redirect_uri_sent BOOLEAN NOT NULL,
    scope TEXT NOT NULL,
    nonce TEXT,
    code_challenge TEXT,
    code_challenge_method TEXT,
    session_id TEXT,
    auth_time BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    consumed_at BIGINT
);
CREATE INDEX authorization_codes_expires_at ON authorization_codes (expires_at);

CREATE TABLE refresh_tokens (
    token_hash TEXT PRIMARY KEY NOT NULL,
    grant_id TEXT NOT NULL REFERENCES grants(id) ON DELETE CASCADE,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    consumed_at BIGINT
);
CREATE INDEX refresh_tokens_grant_id ON refresh_tokens (grant_id);

CREATE TABLE consents (
    user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    client_id TEXT NOT NULL REFERENCES clients(id) ON DELETE CASCADE,
    scope TEXT NOT NULL,
    granted_at BIGINT NOT NULL,
    PRIMARY KEY (user_id, client_id)
);

CREATE TABLE signing_keys (
    kid TEXT PRIMARY KEY NOT NULL,
    alg TEXT NOT NULL,
    -- 1 for the first key of an algorithm, then +1 per rotation. Unique per algorithm, so
    -- instances starting together on an empty database agree on one key set.
    generation INTEGER NOT NULL,
    -- PKCS#8 DER
    private_key BLOB NOT NULL,
    created_at BIGINT NOT NULL,
    -- Published in the JWKS from creation; signs only from here on, so that relying
    -- parties have fetched it before they meet a token signed with it.
    activates_at BIGINT NOT NULL,
    -- Leaves the JWKS from here on, once every token it signed has expired.
    retired_at BIGINT,
    UNIQUE (alg, generation)
);
