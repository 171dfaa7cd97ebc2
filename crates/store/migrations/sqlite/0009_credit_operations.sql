-- Credit operations (authorise, capture, repay, refund, ...) and what end of day produces.

-- The version counts writes of an account's state: a write names the version it read and
-- fails if another write came first, so two writers never lose each other's changes.
ALTER TABLE credit_accounts ADD COLUMN version BIGINT NOT NULL DEFAULT 0;
-- The customer the line belongs to (customers.id); NULL for accounts loaded in bulk.
ALTER TABLE credit_accounts ADD COLUMN customer_id TEXT;
CREATE INDEX credit_accounts_by_customer ON credit_accounts (customer_id);

-- One row per operation: its idempotency record and the write-ahead intent of its ledger
-- commands. The row commits in the same transaction as the account's new state, with
-- status 'pending'; the commands then go to the ledger under keys derived from the
-- operation's key, and the row becomes 'done'. A crash in between leaves a pending row that
-- is finished (its commands replayed) before anything else touches the account.
-- End of day stores each chunk's postings the same way (account_id = -1).
CREATE TABLE credit_operations (
    key TEXT PRIMARY KEY,
    account_id BIGINT NOT NULL,
    kind TEXT NOT NULL,
    request_hash TEXT NOT NULL,
    http_status INTEGER NOT NULL,
    response TEXT NOT NULL,
    commands TEXT NOT NULL,
    status TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX credit_operations_pending ON credit_operations (account_id) WHERE status = 'pending';
CREATE INDEX credit_operations_by_account ON credit_operations (account_id, created_at);

-- Statements as cut by end of day, kept for the customer and for disputes.
CREATE TABLE credit_statements (
    account_id BIGINT NOT NULL,
    statement_date TEXT NOT NULL,
    statement TEXT NOT NULL,
    PRIMARY KEY (account_id, statement_date)
);

-- The collections queue: contact tasks from end of day (delinquency) and from operators
-- (account-anomaly alerts, callbacks). Open until someone closes them.
CREATE TABLE credit_contact_tasks (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    account_id BIGINT NOT NULL,
    business_date TEXT NOT NULL,
    kind TEXT NOT NULL,
    reason TEXT NOT NULL,
    bucket TEXT NOT NULL,
    days_past_due INTEGER NOT NULL,
    amount_minor BIGINT NOT NULL,
    currency TEXT NOT NULL,
    priority INTEGER NOT NULL,
    status TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    closed_at BIGINT,
    note TEXT
);
CREATE UNIQUE INDEX credit_contact_tasks_once_a_day ON credit_contact_tasks (account_id, business_date, kind, reason);
CREATE INDEX credit_contact_tasks_open ON credit_contact_tasks (status, priority, id);

-- Products added through the API, beside those of the catalog file; immutable once added
-- (plans keep what they need of their product).
CREATE TABLE credit_products (
    code TEXT PRIMARY KEY,
    definition TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
