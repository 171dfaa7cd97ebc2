-- A stolen-account claim beside its risk case: the stated compromise time (purchases
-- authorised from then on are written off when the claim is confirmed), the police
-- reference, and how far the credit lines of the customer have followed the case
-- (`followed_up`: none, frozen, confirmed, ended, restoring, restored). The case's move is
-- the durable intent; the credit steps that follow it are idempotent and finished by the
-- service after a crash. `restored_at`/`restored_by`: the audited re-verification that gave
-- the customer their access back.
CREATE TABLE stolen_account_claims (
    case_id TEXT PRIMARY KEY REFERENCES risk_cases (id),
    compromised_at INTEGER,
    police_reference TEXT,
    followed_up TEXT NOT NULL DEFAULT 'none'
        CHECK (followed_up IN ('none', 'frozen', 'confirmed', 'ended', 'restoring', 'restored')),
    restored_at INTEGER,
    restored_by TEXT
);
CREATE INDEX stolen_account_claims_to_follow_up ON stolen_account_claims (followed_up)
    WHERE followed_up <> 'restored';
