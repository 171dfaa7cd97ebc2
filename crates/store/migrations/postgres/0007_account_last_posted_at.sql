-- The time of each account's latest leg, so that a writer never posts a leg before it and
-- an account's legs stay in time order even when writers' clocks disagree.
ALTER TABLE account_balances ADD COLUMN last_posted_at BIGINT;
UPDATE account_balances SET last_posted_at = (
    SELECT MAX(posted_at) FROM journal_legs WHERE journal_legs.account_id = account_balances.account_id
);
