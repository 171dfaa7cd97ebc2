-- A customer's name can be changed through the risk gate like the phone, address and bank
-- card; and the delivery address and bound bank card can be read in clear, each read on the
-- `pii_reads` audit log like the original fields'. SQLite cannot change a CHECK in place, so
-- both tables are made again with the wider lists, their rows copied and their immutability
-- triggers made again.
CREATE TABLE customer_profile_changes_widened (
    id TEXT PRIMARY KEY,
    at INTEGER NOT NULL,
    api_key_id TEXT NOT NULL,
    principal TEXT NOT NULL,
    customer_id TEXT NOT NULL REFERENCES customers (id),
    field TEXT NOT NULL CHECK (field IN ('name', 'phone', 'address', 'bank_card')),
    risk_event_id TEXT NOT NULL,
    risk_action TEXT NOT NULL
);
INSERT INTO customer_profile_changes_widened SELECT * FROM customer_profile_changes;
DROP TABLE customer_profile_changes;
ALTER TABLE customer_profile_changes_widened RENAME TO customer_profile_changes;
CREATE INDEX customer_profile_changes_by_customer ON customer_profile_changes (customer_id, at);
CREATE TRIGGER customer_profile_changes_are_immutable_update BEFORE UPDATE ON customer_profile_changes
BEGIN SELECT RAISE(ABORT, 'customer_profile_changes rows are immutable'); END;
CREATE TRIGGER customer_profile_changes_are_immutable_delete BEFORE DELETE ON customer_profile_changes
BEGIN SELECT RAISE(ABORT, 'customer_profile_changes rows are immutable'); END;

CREATE TABLE pii_reads_widened (
    id TEXT PRIMARY KEY,
    at INTEGER NOT NULL,
    api_key_id TEXT NOT NULL,
    principal TEXT NOT NULL,
    customer_id TEXT NOT NULL REFERENCES customers (id),
    field TEXT NOT NULL CHECK (field IN ('name', 'phone', 'national_id', 'date_of_birth', 'address', 'bank_card')),
    reason TEXT NOT NULL CHECK (length(reason) > 0)
);
INSERT INTO pii_reads_widened SELECT * FROM pii_reads;
DROP TABLE pii_reads;
ALTER TABLE pii_reads_widened RENAME TO pii_reads;
CREATE INDEX pii_reads_by_customer ON pii_reads (customer_id, at);
CREATE TRIGGER pii_reads_are_immutable_update BEFORE UPDATE ON pii_reads
BEGIN SELECT RAISE(ABORT, 'pii_reads rows are immutable'); END;
CREATE TRIGGER pii_reads_are_immutable_delete BEFORE DELETE ON pii_reads
BEGIN SELECT RAISE(ABORT, 'pii_reads rows are immutable'); END;
