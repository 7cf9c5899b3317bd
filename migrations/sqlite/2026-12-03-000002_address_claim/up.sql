-- OIDC Core §5.1.1: the structured address claim, as a JSON object of its members.
ALTER TABLE users ADD COLUMN address TEXT;
