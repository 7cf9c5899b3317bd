DROP TRIGGER users_fill_username_key ON users;
DROP FUNCTION users_fill_username_key();
