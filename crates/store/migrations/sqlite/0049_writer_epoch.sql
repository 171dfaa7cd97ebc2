-- A counter every ledger batch increments under the write lock, so that a ledger writer can
-- tell whether another process's writer has committed since its own last batch (and its
-- cached accounts are stale). SQLite's `data_version` told that for any commit at all, and
-- the payment, credit and risk writers commit beside the ledger's all the time.
CREATE TABLE writer_epoch (
    id INTEGER PRIMARY KEY,
    version INTEGER NOT NULL
);
INSERT INTO writer_epoch (id, version) VALUES (1, 0);
