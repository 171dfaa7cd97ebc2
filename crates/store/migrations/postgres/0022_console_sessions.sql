-- Sessions of the operations console (`/console`): a person signs in with an API key and
-- gets a session cookie. Only a SHA-256 of the session token is kept, so a copy of this table
-- opens no session; the key's id and scopes, the per-session CSRF token of its forms, and
-- when it was created and last used (idle sessions end). A session whose key is revoked or
-- expired ends at its next request.
CREATE TABLE console_sessions (
    token_hash TEXT PRIMARY KEY,
    api_key_id TEXT NOT NULL REFERENCES api_keys (id),
    scopes TEXT NOT NULL,
    csrf_token TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    last_seen_at BIGINT NOT NULL
);
CREATE INDEX console_sessions_by_last_seen ON console_sessions (last_seen_at);
