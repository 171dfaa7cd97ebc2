-- Merchants and their settlement. A merchant's legal name, licence number and settlement
-- bank account are sealed like customers' personal data (AES-256-GCM, the field and the
-- merchant as associated data); the licence number also has a blind index, so that one
-- business is onboarded once. Fee schedule and settlement terms are JSON written by the
-- payment service. Dates are ISO text (YYYY-MM-DD); times are microseconds (UTC).
CREATE TABLE merchants (
    id TEXT PRIMARY KEY,
    status TEXT NOT NULL CHECK (status IN ('active', 'suspended', 'closed')),
    currency TEXT NOT NULL,
    category_code TEXT NOT NULL,
    time_zone TEXT NOT NULL,
    legal_name TEXT NOT NULL,
    licence_number TEXT NOT NULL,
    licence_number_index TEXT NOT NULL UNIQUE,
    bank_account TEXT NOT NULL,
    fee_schedule TEXT NOT NULL,
    settlement_terms TEXT NOT NULL,
    version BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

-- Every status a merchant has had, with when, why and who.
CREATE TABLE merchant_status_changes (
    merchant_id TEXT NOT NULL REFERENCES merchants (id),
    sequence BIGINT NOT NULL,
    status TEXT NOT NULL,
    reason TEXT NOT NULL,
    api_key_id TEXT,
    changed_at BIGINT NOT NULL,
    PRIMARY KEY (merchant_id, sequence)
);

-- A daily settlement run: merchants are settled in id order, and `cursor` is the last one
-- done, so that a run killed mid-way resumes after it.
CREATE TABLE settlement_runs (
    business_date TEXT PRIMARY KEY,
    status TEXT NOT NULL CHECK (status IN ('running', 'done')),
    cursor TEXT,
    merchants_settled BIGINT NOT NULL,
    started_at BIGINT NOT NULL,
    finished_at BIGINT
);

-- One merchant's settlement statement of one run and currency: the capture dates it
-- settled (after `from_date`, through `through_date`) and what moved.
CREATE TABLE settlement_statements (
    business_date TEXT NOT NULL,
    merchant_id TEXT NOT NULL REFERENCES merchants (id),
    currency TEXT NOT NULL,
    from_date TEXT,
    through_date TEXT NOT NULL,
    gross_minor BIGINT NOT NULL,
    fees_minor BIGINT NOT NULL,
    refunds_minor BIGINT NOT NULL,
    reserve_held_minor BIGINT NOT NULL,
    reserve_released_minor BIGINT NOT NULL,
    net_minor BIGINT NOT NULL,
    pending_after_minor BIGINT NOT NULL,
    available_after_minor BIGINT NOT NULL,
    reserve_after_minor BIGINT NOT NULL,
    entry_key TEXT,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (business_date, merchant_id, currency)
);
CREATE INDEX settlement_statements_by_merchant ON settlement_statements (merchant_id, currency, through_date);

-- Reserves held by a run, released by the first run on or after `release_on`.
CREATE TABLE merchant_reserves (
    merchant_id TEXT NOT NULL REFERENCES merchants (id),
    currency TEXT NOT NULL,
    held_on TEXT NOT NULL,
    amount_minor BIGINT NOT NULL,
    release_on TEXT NOT NULL,
    released_on TEXT,
    PRIMARY KEY (merchant_id, currency, held_on)
);
