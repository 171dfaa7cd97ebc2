-- Credit accounts (tally-credit `Account`, stored whole as JSON) and end-of-day runs.

-- One row per credit account. `state` is the serde JSON of the account; `last_end_of_day`
-- repeats the date the state was last written at, for inspection. An account whose end of
-- day changed nothing but the date is not rewritten: see `credit_end_of_day_runs`.
CREATE TABLE credit_accounts (
    id INTEGER PRIMARY KEY,
    currency TEXT NOT NULL,
    last_end_of_day TEXT,
    state TEXT NOT NULL
);

-- One row per business date run. Accounts are processed in id order, chunk by chunk; each
-- chunk's account states and the cursor `next_account` commit in one transaction, so every
-- account with id < next_account is done for the date. Runs are contiguous: a date starts
-- only when the previous date has finished (or no run exists).
CREATE TABLE credit_end_of_day_runs (
    business_date TEXT PRIMARY KEY,
    next_account BIGINT NOT NULL,
    accounts_done BIGINT NOT NULL,
    accounts_written BIGINT NOT NULL,
    postings BIGINT NOT NULL,
    failures BIGINT NOT NULL,
    started_at BIGINT NOT NULL,
    finished_at BIGINT
);
