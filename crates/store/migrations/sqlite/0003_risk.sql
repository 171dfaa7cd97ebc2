-- Risk engine: rule set versions and activations, events and decisions in decision order,
-- list entries, and the analysts' case queue with its audit trail.

CREATE TABLE risk_rule_sets (
    version INTEGER PRIMARY KEY,
    source TEXT NOT NULL,
    uploaded_at INTEGER NOT NULL,
    uploaded_by TEXT NOT NULL
);

CREATE TABLE risk_activations (
    id TEXT PRIMARY KEY,
    version INTEGER NOT NULL REFERENCES risk_rule_sets (version),
    activated_at INTEGER NOT NULL,
    activated_by TEXT NOT NULL
);

CREATE TABLE risk_events (
    sequence INTEGER PRIMARY KEY,
    event_id TEXT NOT NULL,
    customer TEXT NOT NULL,
    at INTEGER NOT NULL,
    body TEXT NOT NULL,
    action TEXT NOT NULL,
    version INTEGER NOT NULL,
    decision TEXT NOT NULL,
    decided_at INTEGER NOT NULL
);
CREATE INDEX risk_events_by_time ON risk_events (at);
CREATE INDEX risk_events_by_customer ON risk_events (customer, sequence);

CREATE TABLE risk_list_entries (
    id TEXT PRIMARY KEY,
    kind TEXT NOT NULL CHECK (kind IN ('block', 'allow', 'watch')),
    field TEXT NOT NULL,
    value TEXT NOT NULL,
    reason TEXT NOT NULL,
    source TEXT NOT NULL,
    added_at INTEGER NOT NULL,
    added_by TEXT NOT NULL,
    expires_at INTEGER,
    removed_at INTEGER,
    removed_by TEXT
);
CREATE INDEX risk_list_entries_live ON risk_list_entries (kind, field, value) WHERE removed_at IS NULL;

CREATE TABLE risk_cases (
    id TEXT PRIMARY KEY,
    kind TEXT NOT NULL CHECK (kind IN ('review', 'hold_delivery', 'stolen_account')),
    priority INTEGER NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('open', 'claimed', 'approved', 'rejected')),
    customer TEXT NOT NULL,
    event_sequence INTEGER,
    summary TEXT NOT NULL,
    assignee TEXT,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);
CREATE INDEX risk_cases_queue ON risk_cases (status, priority, created_at);

CREATE TABLE risk_case_log (
    id TEXT PRIMARY KEY,
    case_id TEXT NOT NULL REFERENCES risk_cases (id),
    at INTEGER NOT NULL,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    note TEXT NOT NULL
);
CREATE INDEX risk_case_log_by_case ON risk_case_log (case_id, at);
