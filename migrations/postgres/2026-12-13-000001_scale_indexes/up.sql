-- Indexes for a database of millions of rows (issue 26, bench/README.md "Data at scale":
-- the EXPLAIN notes there show the plans before and after).

-- A user's grants, and a user's grants to one client: the account page, sign-out
-- everywhere, a withdrawn consent, a session grant (all filter by user_id, most by
-- client_id too). Without it each is a scan of every grant.
CREATE INDEX grants_user_client ON grants (user_id, client_id);
-- Deleting a client cascades to its grants and consents (the foreign keys need an index
-- on the referencing side, or each delete scans the whole table).
CREATE INDEX grants_client_id ON grants (client_id);
CREATE INDEX consents_client_id ON consents (client_id);
-- A password reset finds the accounts of an address by lower(email).
CREATE INDEX users_email_lower ON users (lower(email));
-- The usernames left to key in Rust (`settle_username_keys`, at every start of the server
-- and of every command): none once settled, so an empty index instead of a scan.
CREATE INDEX users_unsettled_key ON users (created_at, id) WHERE username_key LIKE '%#UNSETTLED';
-- The clients list pages in (created_at, id) order.
CREATE INDEX clients_created_at ON clients (created_at, id);

-- The admin search is a case-insensitive substring of username, name or email
-- (`lower(x) LIKE '%term%'`): only trigram indexes serve it. pg_trgm ships with
-- PostgreSQL (contrib) and is a trusted extension (PostgreSQL 13+), which the database's
-- owner may create; where it is missing or not allowed, the search keeps working by a
-- scan, as before, and this says so in the migration's output.
DO $$
BEGIN
    CREATE EXTENSION IF NOT EXISTS pg_trgm;
    CREATE INDEX users_username_trgm ON users USING gin (lower(username) gin_trgm_ops);
    CREATE INDEX users_name_trgm ON users USING gin (lower(name) gin_trgm_ops);
    CREATE INDEX users_email_trgm ON users USING gin (lower(email) gin_trgm_ops);
EXCEPTION
    WHEN undefined_file OR insufficient_privilege OR feature_not_supported THEN
        RAISE NOTICE 'pg_trgm unavailable (%): the admin user search scans the users', SQLERRM;
END;
$$;
