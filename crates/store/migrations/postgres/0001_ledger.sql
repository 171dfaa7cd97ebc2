-- Ledger: accounts, balances, journal entries and legs, holds, idempotency keys, API keys.
-- Amounts are integer minor units; times are microseconds since the Unix epoch (UTC).

CREATE TABLE accounts (
    id TEXT PRIMARY KEY,
    code TEXT NOT NULL UNIQUE,
    kind TEXT NOT NULL CHECK (kind IN ('asset', 'liability', 'equity', 'income', 'expense')),
    currency TEXT NOT NULL,
    debits_must_not_exceed_credits BOOLEAN NOT NULL,
    credits_must_not_exceed_debits BOOLEAN NOT NULL,
    metadata TEXT NOT NULL,
    created_at BIGINT NOT NULL
);

CREATE TABLE account_balances (
    account_id TEXT PRIMARY KEY REFERENCES accounts (id),
    debits_posted BIGINT NOT NULL CHECK (debits_posted >= 0),
    credits_posted BIGINT NOT NULL CHECK (credits_posted >= 0),
    debits_pending BIGINT NOT NULL CHECK (debits_pending >= 0),
    credits_pending BIGINT NOT NULL CHECK (credits_pending >= 0),
    leg_count BIGINT NOT NULL
);

CREATE TABLE journal_entries (
    id TEXT PRIMARY KEY,
    description TEXT NOT NULL,
    metadata TEXT NOT NULL,
    hold_id TEXT,
    posted_at BIGINT NOT NULL
);

CREATE TABLE journal_legs (
    account_id TEXT NOT NULL REFERENCES accounts (id),
    sequence BIGINT NOT NULL,
    entry_id TEXT NOT NULL REFERENCES journal_entries (id),
    leg_index BIGINT NOT NULL,
    side TEXT NOT NULL CHECK (side IN ('debit', 'credit')),
    amount BIGINT NOT NULL CHECK (amount > 0),
    currency TEXT NOT NULL,
    posted_at BIGINT NOT NULL,
    debits_posted_after BIGINT NOT NULL,
    credits_posted_after BIGINT NOT NULL,
    PRIMARY KEY (account_id, sequence)
);
CREATE INDEX journal_legs_by_entry ON journal_legs (entry_id, leg_index);
CREATE INDEX journal_legs_by_time ON journal_legs (account_id, posted_at, sequence);

CREATE TABLE holds (
    id TEXT PRIMARY KEY,
    debit_account_id TEXT NOT NULL REFERENCES accounts (id),
    credit_account_id TEXT NOT NULL REFERENCES accounts (id),
    amount BIGINT NOT NULL CHECK (amount > 0),
    currency TEXT NOT NULL,
    description TEXT NOT NULL,
    metadata TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('pending', 'posted', 'voided', 'expired')),
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    resolved_at BIGINT,
    posted_amount BIGINT,
    entry_id TEXT
);
CREATE INDEX holds_pending_by_expiry ON holds (expires_at) WHERE status = 'pending';
CREATE INDEX holds_by_debit_account ON holds (debit_account_id, created_at);
CREATE INDEX holds_by_credit_account ON holds (credit_account_id, created_at);

CREATE TABLE idempotency_keys (
    key TEXT PRIMARY KEY,
    request_hash TEXT NOT NULL,
    outcome TEXT NOT NULL,
    created_at BIGINT NOT NULL
);

CREATE TABLE api_keys (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    secret_hash TEXT NOT NULL UNIQUE,
    scopes TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    revoked_at BIGINT
);

-- The journal is immutable: corrections are new, reversing entries.
CREATE FUNCTION tally_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% rows are immutable', TG_TABLE_NAME;
END;
$$;
CREATE TRIGGER journal_entries_are_immutable BEFORE UPDATE OR DELETE ON journal_entries
    FOR EACH ROW EXECUTE FUNCTION tally_refuse_change();
CREATE TRIGGER journal_legs_are_immutable BEFORE UPDATE OR DELETE ON journal_legs
    FOR EACH ROW EXECUTE FUNCTION tally_refuse_change();
