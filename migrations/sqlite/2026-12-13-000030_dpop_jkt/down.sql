ALTER TABLE authorization_codes DROP COLUMN dpop_jkt;
