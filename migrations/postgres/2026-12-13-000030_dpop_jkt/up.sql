-- RFC 9449 §10: an authorization request may bind its code to a DPoP key (`dpop_jkt`, or
-- a proof at the PAR endpoint, §10.1); the token request must then prove that key. Codes
-- issued before this are bound to none.
ALTER TABLE authorization_codes ADD COLUMN dpop_jkt TEXT;
