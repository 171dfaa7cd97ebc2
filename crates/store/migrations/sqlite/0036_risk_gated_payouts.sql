-- Money out is decided by the risk engine too: a held operation may be a merchant's payout,
-- a wallet withdrawal or a payout of the scheduled run. SQLite cannot change a CHECK in
-- place, so the table is made again with the wider list and its rows copied.
CREATE TABLE risk_held_operations_widened (
    id TEXT PRIMARY KEY,
    kind TEXT NOT NULL CHECK (kind IN ('credit_authorization', 'credit_activation', 'profile_change', 'payout', 'withdrawal', 'scheduled_payout')),
    idempotency_key TEXT NOT NULL,
    request_hash TEXT NOT NULL,
    customer_id TEXT NOT NULL,
    operation TEXT NOT NULL,
    action TEXT NOT NULL CHECK (action IN ('step_up', 'review')),
    reasons TEXT NOT NULL,
    case_id TEXT,
    code_hash TEXT,
    attempts INTEGER NOT NULL DEFAULT 0,
    code_expires_at INTEGER,
    status TEXT NOT NULL CHECK (status IN ('waiting_for_code', 'under_review', 'completed', 'refused')),
    outcome TEXT,
    api_key_id TEXT NOT NULL,
    principal TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);
INSERT INTO risk_held_operations_widened SELECT * FROM risk_held_operations;
DROP TABLE risk_held_operations;
ALTER TABLE risk_held_operations_widened RENAME TO risk_held_operations;
CREATE INDEX risk_held_operations_by_case ON risk_held_operations (case_id);
