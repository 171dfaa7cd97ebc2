-- The Tally service that opened an account and alone may move it (`credit`), or NULL for
-- an account a client opened. Accounts with a `credit-` code were opened by the credit
-- service: clients have been refused that prefix since it was reserved.
ALTER TABLE accounts ADD COLUMN owner TEXT;
UPDATE accounts SET owner = 'credit' WHERE substr(code, 1, 7) = 'credit-';
