-- Risk on every link: profile fields a customer changes, their audit trail, and the
-- operations the risk engine held (a one-time code to enter, or an analyst's review).
--
-- A customer's delivery address and bound bank card are sealed like the other personal
-- fields (`v1:<key id>:…`, associated data `customer.<field>:<id>`); no blind index, since
-- nobody looks a customer up by them.
ALTER TABLE customers ADD COLUMN address TEXT;
ALTER TABLE customers ADD COLUMN bank_card TEXT;

-- One row per profile change applied: who, when, which field, and the risk event that let it
-- through. Never the value. Append-only.
CREATE TABLE customer_profile_changes (
    id TEXT PRIMARY KEY,
    at INTEGER NOT NULL,
    api_key_id TEXT NOT NULL,
    principal TEXT NOT NULL,
    customer_id TEXT NOT NULL REFERENCES customers (id),
    field TEXT NOT NULL CHECK (field IN ('phone', 'address', 'bank_card')),
    risk_event_id TEXT NOT NULL,
    risk_action TEXT NOT NULL
);
CREATE INDEX customer_profile_changes_by_customer ON customer_profile_changes (customer_id, at);
CREATE TRIGGER customer_profile_changes_are_immutable_update BEFORE UPDATE ON customer_profile_changes
BEGIN SELECT RAISE(ABORT, 'customer_profile_changes rows are immutable'); END;
CREATE TRIGGER customer_profile_changes_are_immutable_delete BEFORE DELETE ON customer_profile_changes
BEGIN SELECT RAISE(ABORT, 'customer_profile_changes rows are immutable'); END;

-- An operation the risk engine did not let through at once, under the id of its risk event:
-- `step_up` waits for a one-time code (only its hash is kept), `review` for the analyst's
-- case. `operation` is what to do when it is let through (JSON; personal values in it are
-- sealed). `outcome` is the answer or refusal it ended with.
CREATE TABLE risk_held_operations (
    id TEXT PRIMARY KEY,
    kind TEXT NOT NULL CHECK (kind IN ('credit_authorization', 'credit_activation', 'profile_change')),
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
CREATE INDEX risk_held_operations_by_case ON risk_held_operations (case_id);
