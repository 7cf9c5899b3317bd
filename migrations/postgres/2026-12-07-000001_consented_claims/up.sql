-- OIDC Core §5.5: claims asked for one by one (the claims parameter) beyond what the
-- consented scopes release; a remembered consent covers them only once the user allowed
-- them. Space-separated claim names.
ALTER TABLE consents ADD COLUMN claims TEXT NOT NULL DEFAULT '';
