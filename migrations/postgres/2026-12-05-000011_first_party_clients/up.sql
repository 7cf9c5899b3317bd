-- First-party clients: marked so by the operator (CLI, admin API), never through dynamic
-- registration; their users are not asked to consent. The admin console's own client is
-- one (start-up marks it too, should it be registered after this runs).
ALTER TABLE clients ADD COLUMN first_party BOOLEAN NOT NULL DEFAULT FALSE;
UPDATE clients SET first_party = TRUE WHERE id = 'portcullis-console';
