DROP INDEX clients_created_at;
DROP INDEX users_unsettled_key;
DROP INDEX users_email_lower;
DROP INDEX consents_client_id;
DROP INDEX grants_client_id;
DROP INDEX grants_user_client;
