ALTER TABLE authorization_codes DROP COLUMN claims;
ALTER TABLE authorization_codes DROP COLUMN acr;
