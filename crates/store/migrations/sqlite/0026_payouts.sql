-- Payouts to merchants' bank accounts, in batches the bank receives as one file.
-- A single payout is a batch of one. `kind`: manual (asked through the API) or scheduled
-- (after the settlement run of `value_date`, one per currency and date).
-- `status`: open (made, no file yet), submitted (its file was taken for the bank),
-- answered (the bank's return file was read).
CREATE TABLE payout_batches (
    id TEXT PRIMARY KEY,
    kind TEXT NOT NULL CHECK (kind IN ('manual', 'scheduled')),
    currency TEXT NOT NULL,
    value_date TEXT NOT NULL,
    request_hash TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('open', 'submitted', 'answered')),
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
-- One payout: `funding` is how far its first ledger move (source to payable) has come:
-- unchecked (the balance not checked yet), decided (checked, the move may or may not be
-- posted: recovery posts it under its key), posted, refused (the balance did not cover it;
-- the payout failed and nothing moved).
CREATE TABLE payouts (
    id TEXT PRIMARY KEY,
    batch_id TEXT NOT NULL REFERENCES payout_batches (id),
    sequence BIGINT NOT NULL,
    merchant_id TEXT NOT NULL REFERENCES merchants (id),
    source TEXT NOT NULL CHECK (source IN ('merchant_available')),
    currency TEXT NOT NULL,
    amount_minor BIGINT NOT NULL CHECK (amount_minor > 0),
    state TEXT NOT NULL
        CHECK (state IN ('created', 'submitted', 'paid', 'failed', 'returned')),
    funding TEXT NOT NULL CHECK (funding IN ('unchecked', 'decided', 'posted', 'refused')),
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    UNIQUE (batch_id, sequence)
);
CREATE INDEX payouts_by_merchant ON payouts (merchant_id, created_at, id);
CREATE INDEX payouts_by_state ON payouts (state, created_at, id);
CREATE INDEX payouts_to_fund ON payouts (merchant_id, funding);
-- Every state a payout has been in, with when and why (append-only by use).
CREATE TABLE payout_transitions (
    payout_id TEXT NOT NULL REFERENCES payouts (id),
    sequence BIGINT NOT NULL,
    state TEXT NOT NULL,
    cause TEXT NOT NULL,
    at BIGINT NOT NULL,
    PRIMARY KEY (payout_id, sequence)
);
