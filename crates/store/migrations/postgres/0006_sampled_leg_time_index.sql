-- Balances as of a time no longer need every leg indexed by time: legs of an account are
-- posted in time order, so indexing one leg in 64 finds the neighbourhood and the primary
-- key (account_id, sequence) finds the leg. Each posting then writes one index fewer.
DROP INDEX journal_legs_by_time;
CREATE INDEX journal_legs_sampled_by_time ON journal_legs (account_id, posted_at, sequence)
    WHERE sequence % 64 = 0;
