ALTER TABLE consents DROP COLUMN claims;
