-- Money out is decided by the risk engine too: a held operation may be a merchant's payout,
-- a wallet withdrawal or a payout of the scheduled run.
ALTER TABLE risk_held_operations DROP CONSTRAINT risk_held_operations_kind_check;
ALTER TABLE risk_held_operations ADD CONSTRAINT risk_held_operations_kind_check
    CHECK (kind IN ('credit_authorization', 'credit_activation', 'profile_change', 'payout', 'withdrawal', 'scheduled_payout'));
