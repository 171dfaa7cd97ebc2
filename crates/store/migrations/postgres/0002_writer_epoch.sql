-- A counter every ledger batch increments under the writer lock, so that a writer can tell
-- whether another process has committed since its own last batch (and its cached accounts
-- are stale).
CREATE TABLE writer_epoch (
    id BIGINT PRIMARY KEY,
    version BIGINT NOT NULL
);
INSERT INTO writer_epoch (id, version) VALUES (1, 0);
