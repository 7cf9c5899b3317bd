DROP TABLE logout_deliveries;
DROP TABLE browser_sessions;
ALTER TABLE clients DROP COLUMN frontchannel_logout_session_required;
ALTER TABLE clients DROP COLUMN frontchannel_logout_uri;
ALTER TABLE clients DROP COLUMN backchannel_logout_session_required;
ALTER TABLE clients DROP COLUMN backchannel_logout_uri;
