-- Risk: a rule set version goes live (or back) only when one API key has asked for it and
-- a different key (by id, not name) has approved it; both are kept, with the activation
-- the approval made. Activations stored before this change have no request.
CREATE TABLE risk_activation_requests (
    id TEXT PRIMARY KEY,
    version BIGINT NOT NULL REFERENCES risk_rule_sets (version),
    note TEXT NOT NULL,
    requested_at BIGINT NOT NULL,
    requested_by TEXT NOT NULL,
    requested_by_key TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('pending', 'approved', 'rejected')),
    decided_at BIGINT,
    decided_by TEXT,
    decided_by_key TEXT,
    CHECK (status <> 'approved' OR decided_by_key <> requested_by_key)
);
CREATE INDEX risk_activation_requests_by_time ON risk_activation_requests (requested_at, id);
ALTER TABLE risk_activations ADD COLUMN request_id TEXT REFERENCES risk_activation_requests (id);
