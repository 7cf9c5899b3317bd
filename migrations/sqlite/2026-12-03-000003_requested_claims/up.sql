-- OIDC Core §5.5 (the claims parameter) and §3.1.2.1 (acr_values): what the request asked
-- for travels with its code to the grant, which keeps it for refreshed tokens and userinfo.
ALTER TABLE authorization_codes ADD COLUMN acr TEXT;
ALTER TABLE authorization_codes ADD COLUMN claims TEXT;
