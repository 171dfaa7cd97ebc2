-- Reconciliation of Tally's own books: one run per business date (the channel operations
-- Tally's journal recorded that day against the channel's settlement file of that date),
-- with its summary by class and currency as JSON, and every exception of it as a worklist
-- item (open, assigned, resolved with a note, an adjusting entry, or by a later run that
-- matched a carried timing item). Dates are ISO text; times are microseconds (UTC).
CREATE TABLE recon_runs (
    business_date TEXT PRIMARY KEY,
    settlement_file TEXT NOT NULL,
    ledger_records BIGINT NOT NULL,
    channel_records BIGINT NOT NULL,
    matched BIGINT NOT NULL,
    exceptions BIGINT NOT NULL,
    carried_in BIGINT NOT NULL,
    carried_matched BIGINT NOT NULL,
    summary TEXT NOT NULL,
    created_at BIGINT NOT NULL
);

CREATE TABLE recon_exceptions (
    id TEXT PRIMARY KEY,
    business_date TEXT NOT NULL REFERENCES recon_runs (business_date),
    sequence BIGINT NOT NULL,
    class TEXT NOT NULL,
    reference TEXT NOT NULL,
    currency TEXT NOT NULL,
    ledger_amount_minor BIGINT,
    channel_amount_minor BIGINT,
    ledger_at BIGINT,
    state TEXT NOT NULL CHECK (state IN ('open', 'assigned', 'resolved')),
    assignee TEXT,
    resolution TEXT CHECK (resolution IN ('note', 'adjusting_entry', 'matched_later')),
    note TEXT,
    adjusting_entry_id TEXT,
    -- The later run a timing item was carried into, and the date it was matched on there.
    carried_to TEXT,
    matched_on TEXT,
    version BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    UNIQUE (business_date, sequence)
);
CREATE INDEX recon_exceptions_by_state ON recon_exceptions (state, class, business_date);
CREATE INDEX recon_exceptions_to_carry ON recon_exceptions (business_date)
    WHERE carried_to IS NULL AND state <> 'resolved';
