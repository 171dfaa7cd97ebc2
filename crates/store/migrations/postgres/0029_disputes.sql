-- Disputes (chargebacks) on payments' card legs, opened by the channel's dispute
-- notifications. `channel_id` is the channel's dispute id (one dispute, however often the
-- bank notifies it). What the opening took from each of the merchant's balances is kept,
-- so the entry posted (or posted again after a crash) is the one decided. `*_posted`
-- flags say which ledger entries are done; each has its own idempotency key.
CREATE TABLE disputes (
    id TEXT PRIMARY KEY,
    channel_id TEXT NOT NULL UNIQUE,
    payment_id TEXT NOT NULL,
    merchant_id TEXT NOT NULL,
    capture_reference TEXT NOT NULL,
    currency TEXT NOT NULL,
    amount_minor BIGINT NOT NULL,
    reason_code TEXT NOT NULL,
    evidence_due_by BIGINT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('opened', 'evidence_submitted', 'accepted', 'won', 'lost')),
    from_pending_minor BIGINT NOT NULL,
    from_available_minor BIGINT NOT NULL,
    from_reserve_minor BIGINT NOT NULL,
    opening_posted BOOLEAN NOT NULL,
    fee_minor BIGINT NOT NULL,
    outcome_posted BOOLEAN NOT NULL,
    evidence TEXT,
    evidence_submitted_at BIGINT,
    opened_at BIGINT NOT NULL,
    decided_at BIGINT,
    version BIGINT NOT NULL
);
CREATE INDEX disputes_by_merchant ON disputes (merchant_id, status, id);
CREATE INDEX disputes_by_payment ON disputes (payment_id);

-- What a settlement took for disputes (debits and channel fees less amounts returned).
ALTER TABLE settlement_statements ADD COLUMN disputes_minor BIGINT NOT NULL DEFAULT 0;
