-- Reads of the daily settlement run and of the reconciliation of Tally's own books that
-- must not grow with history.
--
-- A settlement chunk reads its merchants' reserves still held: only those, however many
-- days of released reserves lie beside them.
CREATE INDEX merchant_reserves_unreleased ON merchant_reserves (merchant_id, currency, release_on)
    WHERE released_on IS NULL;

-- Reconciliation reads the payment service's ledger writes of one business date, in pages
-- by (created_at, key): one day's range, not every idempotency record ever written. The
-- predicate is written exactly as the query writes it, so both engines use the index.
CREATE INDEX idempotency_keys_payments_by_time ON idempotency_keys (created_at, key)
    WHERE key LIKE 'payments%';
