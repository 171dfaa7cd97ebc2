-- The console's overview counts one day's credit applications and purchases and every
-- account's delinquency bucket. Without these indexes each count read every credit
-- operation (with its stored answer) or every account's state: about 0.4 s of the page
-- on a year of `tally demo` data. With them, a range of one index and a scan of a small one.
CREATE INDEX credit_operations_by_kind_and_time ON credit_operations (kind, created_at);
CREATE INDEX credit_accounts_by_bucket ON credit_accounts (json_extract(state, '$.bucket'));
