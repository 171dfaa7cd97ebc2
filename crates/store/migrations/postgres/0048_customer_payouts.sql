-- Customers' credit-balance payouts go out through the payout batches and bank files as
-- merchants' do. A payout names its payee: a merchant (`merchant_id`, paid from its
-- available balance) or a customer (`customer_id`, paid to the bank card bound to them,
-- from the credit balance of credit account `source_account`, which a failed or returned
-- payout re-credits).
ALTER TABLE payouts ADD COLUMN payee_kind TEXT NOT NULL DEFAULT 'merchant'
    CHECK (payee_kind IN ('merchant', 'customer'));
ALTER TABLE payouts ALTER COLUMN payee_kind DROP DEFAULT;
ALTER TABLE payouts ALTER COLUMN merchant_id DROP NOT NULL;
ALTER TABLE payouts ADD COLUMN customer_id TEXT REFERENCES customers (id);
ALTER TABLE payouts ADD COLUMN source_account TEXT;
ALTER TABLE payouts DROP CONSTRAINT payouts_source_check;
ALTER TABLE payouts ADD CONSTRAINT payouts_source_check
    CHECK (source IN ('merchant_available', 'credit_balance'));
ALTER TABLE payouts ADD CONSTRAINT payouts_payee_check CHECK (
    (payee_kind = 'merchant' AND merchant_id IS NOT NULL AND customer_id IS NULL
        AND source = 'merchant_available')
    OR (payee_kind = 'customer' AND customer_id IS NOT NULL AND merchant_id IS NULL
        AND source = 'credit_balance' AND source_account IS NOT NULL)
);
CREATE INDEX payouts_by_customer ON payouts (customer_id, created_at, id);
