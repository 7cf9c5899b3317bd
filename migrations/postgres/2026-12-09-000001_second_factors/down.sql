ALTER TABLE clients DROP COLUMN require_mfa;
ALTER TABLE users DROP COLUMN mfa_required;
DROP TABLE passkeys;
DROP TABLE recovery_codes;
DROP TABLE totp_credentials;
