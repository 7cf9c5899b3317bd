-- Indexes for a database of millions of rows (issue 26, bench/README.md "Data at scale").
-- The same as PostgreSQL's but the trigram ones (SQLite has no such index: its admin
-- user search scans the users).

-- A user's grants, and a user's grants to one client: the account page, sign-out
-- everywhere, a withdrawn consent, a session grant.
CREATE INDEX grants_user_client ON grants (user_id, client_id);
-- Deleting a client cascades to its grants and consents.
CREATE INDEX grants_client_id ON grants (client_id);
CREATE INDEX consents_client_id ON consents (client_id);
-- A password reset finds the accounts of an address by lower(email).
CREATE INDEX users_email_lower ON users (lower(email));
-- The usernames left to key in Rust (`settle_username_keys`, at every start of the server
-- and of every command): none once settled, so an empty index instead of a scan.
CREATE INDEX users_unsettled_key ON users (created_at, id) WHERE username_key LIKE '%#UNSETTLED';
-- The clients list pages in (created_at, id) order.
CREATE INDEX clients_created_at ON clients (created_at, id);
