-- Customers' credit-balance payouts go out through the payout batches and bank files as
-- merchants' do. A payout names its payee: a merchant (`merchant_id`, paid from its
-- available balance) or a customer (`customer_id`, paid to the bank card bound to them,
-- from the credit balance of credit account `source_account`, which a failed or returned
-- payout re-credits). SQLite cannot change a CHECK or a NOT NULL in place, so the table is
-- made again and its rows copied; its history table references it, so that one is made
-- again too (its rows kept aside meanwhile), children first, so no row is ever orphaned.
CREATE TABLE payouts_widened (
    id TEXT PRIMARY KEY,
    batch_id TEXT NOT NULL REFERENCES payout_batches (id),
    sequence BIGINT NOT NULL,
    payee_kind TEXT NOT NULL CHECK (payee_kind IN ('merchant', 'customer')),
    merchant_id TEXT REFERENCES merchants (id),
    customer_id TEXT REFERENCES customers (id),
    source TEXT NOT NULL CHECK (source IN ('merchant_available', 'credit_balance')),
    source_account TEXT,
    currency TEXT NOT NULL,
    amount_minor BIGINT NOT NULL CHECK (amount_minor > 0),
    state TEXT NOT NULL
        CHECK (state IN ('created', 'submitted', 'paid', 'failed', 'returned')),
    funding TEXT NOT NULL CHECK (funding IN ('unchecked', 'decided', 'posted', 'refused')),
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    UNIQUE (batch_id, sequence),
    CHECK (
        (payee_kind = 'merchant' AND merchant_id IS NOT NULL AND customer_id IS NULL
            AND source = 'merchant_available')
        OR (payee_kind = 'customer' AND customer_id IS NOT NULL AND merchant_id IS NULL
            AND source = 'credit_balance' AND source_account IS NOT NULL)
    )
);
INSERT INTO payouts_widened (id, batch_id, sequence, payee_kind, merchant_id, customer_id,
    source, source_account, currency, amount_minor, state, funding, created_at, updated_at)
SELECT id, batch_id, sequence, 'merchant', merchant_id, NULL, source, NULL, currency,
    amount_minor, state, funding, created_at, updated_at
FROM payouts;
CREATE TABLE payout_transitions_kept AS SELECT * FROM payout_transitions;
DROP TABLE payout_transitions;
DROP TABLE payouts;
ALTER TABLE payouts_widened RENAME TO payouts;
CREATE INDEX payouts_by_merchant ON payouts (merchant_id, created_at, id);
CREATE INDEX payouts_by_customer ON payouts (customer_id, created_at, id);
CREATE INDEX payouts_by_state ON payouts (state, created_at, id);
CREATE INDEX payouts_to_fund ON payouts (merchant_id, funding);
CREATE TABLE payout_transitions (
    payout_id TEXT NOT NULL REFERENCES payouts (id),
    sequence BIGINT NOT NULL,
    state TEXT NOT NULL,
    cause TEXT NOT NULL,
    at BIGINT NOT NULL,
    PRIMARY KEY (payout_id, sequence)
);
INSERT INTO payout_transitions (payout_id, sequence, state, cause, at)
SELECT payout_id, sequence, state, cause, at FROM payout_transitions_kept;
DROP TABLE payout_transitions_kept;
