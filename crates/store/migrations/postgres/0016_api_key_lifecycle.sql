-- API keys: an optional expiry (a key past it authenticates nothing), and the key a rotation
-- replaced (the new key has the old one's name and scopes; the old one expires after a grace
-- period). `revoked_at` exists since the first migration.
ALTER TABLE api_keys ADD COLUMN expires_at BIGINT;
ALTER TABLE api_keys ADD COLUMN rotated_from TEXT REFERENCES api_keys (id);
