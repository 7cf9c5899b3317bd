DROP TABLE signing_keys;
DROP TABLE consents;
DROP TABLE refresh_tokens;
DROP TABLE authorization_codes;
DROP TABLE grants;
DROP TABLE client_redirect_uris;
DROP TABLE clients;
DROP TABLE users;
