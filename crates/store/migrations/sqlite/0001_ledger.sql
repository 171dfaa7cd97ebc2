-- Ledger: accounts, balances, journal entries and legs, holds, idempotency keys, API keys.
-- Amounts are integer minor units; times are microseconds since the Unix epoch (UTC).

CREATE TABLE accounts (
    id TEXT PRIMARY KEY,
    code TEXT NOT NULL UNIQUE,
    kind TEXT NOT NULL CHECK (kind IN ('asset', 'liability', 'equity', 'income', 'expense')),
    currency TEXT NOT NULL,
    debits_must_not_exceed_credits INTEGER NOT NULL,
    credits_must_not_exceed_debits INTEGER NOT NULL,
    metadata TEXT NOT NULL,
    created_at INTEGER NOT NULL
);

CREATE TABLE account_balances (
    account_id TEXT PRIMARY KEY REFERENCES accounts (id),
    debits_posted INTEGER NOT NULL CHECK (debits_posted >= 0),
    credits_posted INTEGER NOT NULL CHECK (credits_posted >= 0),
    debits_pending INTEGER NOT NULL CHECK (debits_pending >= 0),
    credits_pending INTEGER NOT NULL CHECK (credits_pending >= 0),
    leg_count INTEGER NOT NULL
) WITHOUT ROWID;

CREATE TABLE journal_entries (
    id TEXT PRIMARY KEY,
    description TEXT NOT NULL,
    metadata TEXT NOT NULL,
    hold_id TEXT,
    posted_at INTEGER NOT NULL
);

CREATE TABLE journal_legs (
    account_id TEXT NOT NULL REFERENCES accounts (id),
    sequence INTEGER NOT NULL,
    entry_id TEXT NOT NULL REFERENCES journal_entries (id),
    leg_index INTEGER NOT NULL,
    side TEXT NOT NULL CHECK (side IN ('debit', 'credit')),
    amount INTEGER NOT NULL CHECK (amount > 0),
    currency TEXT NOT NULL,
    posted_at INTEGER NOT NULL,
    debits_posted_after INTEGER NOT NULL,
    credits_posted_after INTEGER NOT NULL,
    PRIMARY KEY (account_id, sequence)
) WITHOUT ROWID;
CREATE INDEX journal_legs_by_entry ON journal_legs (entry_id, leg_index);
CREATE INDEX journal_legs_by_time ON journal_legs (account_id, posted_at, sequence);

CREATE TABLE holds (
    id TEXT PRIMARY KEY,
    debit_account_id TEXT NOT NULL REFERENCES accounts (id),
    credit_account_id TEXT NOT NULL REFERENCES accounts (id),
    amount INTEGER NOT NULL CHECK (amount > 0),
    currency TEXT NOT NULL,
    description TEXT NOT NULL,
    metadata TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('pending', 'posted', 'voided', 'expired')),
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    resolved_at INTEGER,
    posted_amount INTEGER,
    entry_id TEXT
);
CREATE INDEX holds_pending_by_expiry ON holds (expires_at) WHERE status = 'pending';
CREATE INDEX holds_by_debit_account ON holds (debit_account_id, created_at);
CREATE INDEX holds_by_credit_account ON holds (credit_account_id, created_at);

CREATE TABLE idempotency_keys (
    key TEXT PRIMARY KEY,
    request_hash TEXT NOT NULL,
    outcome TEXT NOT NULL,
    created_at INTEGER NOT NULL
) WITHOUT ROWID;

CREATE TABLE api_keys (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    secret_hash TEXT NOT NULL UNIQUE,
    scopes TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    revoked_at INTEGER
);

-- The journal is immutable: corrections are new, reversing entries.
CREATE TRIGGER journal_entries_are_immutable_update BEFORE UPDATE ON journal_entries
BEGIN SELECT RAISE(ABORT, 'journal entries are immutable'); END;
CREATE TRIGGER journal_entries_are_immutable_delete BEFORE DELETE ON journal_entries
BEGIN SELECT RAISE(ABORT, 'journal entries are immutable'); END;
CREATE TRIGGER journal_legs_are_immutable_update BEFORE UPDATE ON journal_legs
BEGIN SELECT RAISE(ABORT, 'journal legs are immutable'); END;
CREATE TRIGGER journal_legs_are_immutable_delete BEFORE DELETE ON journal_legs
BEGIN SELECT RAISE(ABORT, 'journal legs are immutable'); END;
