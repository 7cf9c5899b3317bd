-- RFC 8176 / OIDC Core §2: how the user signed in (the session's `amr`) travels with the
-- code to the grant made at redemption. Codes issued before this have none: they came from
-- a password sign-in, and are read so.
ALTER TABLE authorization_codes ADD COLUMN amr TEXT;
