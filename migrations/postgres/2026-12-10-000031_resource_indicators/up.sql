-- RFC 8707: the resources an authorization request named travel with its code to the
-- grant, whose access tokens they are the audience of. Codes and grants made before this
-- named none: their tokens are for this provider, as they were.
ALTER TABLE authorization_codes ADD COLUMN resources TEXT;
ALTER TABLE grants ADD COLUMN resources TEXT;
