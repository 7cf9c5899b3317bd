ALTER TABLE grants DROP COLUMN resources;
ALTER TABLE authorization_codes DROP COLUMN resources;
