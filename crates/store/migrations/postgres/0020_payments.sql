-- Payments: combined checkout, one order paid by several sources at once. A payment's state
-- (the pure payment with its legs and transitions, and where each leg is reserved) is
-- stored as JSON with a version; the columns beside it are for lookups.
CREATE TABLE payments (
    id TEXT PRIMARY KEY,
    merchant_id TEXT NOT NULL,
    order_reference TEXT NOT NULL,
    customer TEXT NOT NULL,
    currency TEXT NOT NULL,
    amount_minor BIGINT NOT NULL,
    status TEXT NOT NULL,
    state TEXT NOT NULL,
    version BIGINT NOT NULL,
    -- When an unpaid payment expires (microseconds), NULL once it is paid or ended.
    deadline BIGINT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX payments_by_deadline ON payments (deadline) WHERE deadline IS NOT NULL;
CREATE INDEX payments_by_customer ON payments (customer, created_at);

-- The intent log: every step that reaches outside the payment row (a ledger hold, a credit
-- authorisation, a call to the channel) is written here before it is taken and resolved
-- after. A step left pending by a crash is what recovery finishes.
CREATE TABLE payment_steps (
    payment_id TEXT NOT NULL REFERENCES payments (id),
    sequence BIGINT NOT NULL,
    action TEXT NOT NULL,
    status TEXT NOT NULL,
    outcome TEXT,
    created_at BIGINT NOT NULL,
    resolved_at BIGINT,
    PRIMARY KEY (payment_id, sequence)
);
CREATE INDEX payment_steps_pending ON payment_steps (payment_id) WHERE status = 'pending';

-- Write requests by idempotency key (scoped to the API key that sent it), with the answer
-- given, replayed to a retry.
CREATE TABLE payment_requests (
    key TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    request_hash TEXT NOT NULL,
    answer_code INTEGER NOT NULL,
    answer TEXT NOT NULL,
    created_at BIGINT NOT NULL
);

-- Saved cards: the channel's token, never the number.
CREATE TABLE payment_cards (
    token TEXT PRIMARY KEY,
    customer TEXT NOT NULL,
    last_four TEXT NOT NULL,
    brand TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX payment_cards_by_customer ON payment_cards (customer, created_at);

-- The vault's yield: the last day credited and the fraction of a minor unit carried.
CREATE TABLE vault_yields (
    customer TEXT NOT NULL,
    currency TEXT NOT NULL,
    accrued_through TEXT NOT NULL,
    carried BIGINT NOT NULL,
    PRIMARY KEY (customer, currency)
);

-- Wallet and vault operations (top-ups from a card, withdrawals to a card, moves between
-- wallet and vault): written as pending before any step is taken, so that recovery finishes
-- those a crash left mid-way. The key is the request's idempotency key, scoped.
CREATE TABLE wallet_operations (
    id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    customer TEXT NOT NULL,
    currency TEXT NOT NULL,
    amount_minor BIGINT NOT NULL,
    request_hash TEXT NOT NULL,
    state TEXT NOT NULL,
    status TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX wallet_operations_pending ON wallet_operations (created_at) WHERE status = 'pending';
CREATE INDEX wallet_operations_by_customer ON wallet_operations (customer, kind, created_at);
