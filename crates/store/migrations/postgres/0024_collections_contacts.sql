-- Collections contacts: every contact attempt on a task (its outcome, the promise to pay it
-- got, the follow-up date), counted per customer and business date against the daily limit;
-- and on the task, what the last contact left (outcome, promise, follow-up) and, for an
-- anomaly alert made by risk control, the risk event that raised it.
ALTER TABLE credit_contact_tasks ADD COLUMN risk_event_id TEXT;
ALTER TABLE credit_contact_tasks ADD COLUMN contacts INTEGER NOT NULL DEFAULT 0;
ALTER TABLE credit_contact_tasks ADD COLUMN last_outcome TEXT;
ALTER TABLE credit_contact_tasks ADD COLUMN promised_amount_minor BIGINT;
ALTER TABLE credit_contact_tasks ADD COLUMN promised_date TEXT;
ALTER TABLE credit_contact_tasks ADD COLUMN follow_up_date TEXT;

CREATE TABLE credit_contacts (
    id BIGSERIAL PRIMARY KEY,
    task_id BIGINT NOT NULL REFERENCES credit_contact_tasks (id),
    account_id BIGINT NOT NULL,
    -- Whom the daily limit counts: `customer:<id>`, or `account:<id>` without a customer.
    contact_key TEXT NOT NULL,
    business_date TEXT NOT NULL,
    at BIGINT NOT NULL,
    outcome TEXT NOT NULL,
    note TEXT NOT NULL,
    promised_amount_minor BIGINT,
    promised_currency TEXT,
    promised_date TEXT,
    follow_up_date TEXT,
    recorded_by TEXT NOT NULL
);
CREATE INDEX credit_contacts_per_day ON credit_contacts (contact_key, business_date);
CREATE INDEX credit_contacts_of_task ON credit_contacts (task_id, id);
