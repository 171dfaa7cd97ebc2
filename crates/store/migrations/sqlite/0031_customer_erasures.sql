-- Erasure of customers' personal data (PIPL art. 47, GDPR art. 17).
--
-- An erased customer's row stays under its pseudonymous id (the ledger, credit accounts and
-- payments name it) with every sealed field overwritten by `erased` and both blind indexes by
-- `erased:<id>`. Its erasure is recorded once here: who, when and why, never a value.
-- Append-only.
CREATE TABLE customer_erasures (
    customer_id TEXT PRIMARY KEY REFERENCES customers (id),
    at INTEGER NOT NULL,
    api_key_id TEXT NOT NULL,
    principal TEXT NOT NULL,
    reason TEXT NOT NULL CHECK (length(reason) > 0)
) WITHOUT ROWID;

CREATE TRIGGER customer_erasures_are_immutable_update BEFORE UPDATE ON customer_erasures
BEGIN SELECT RAISE(ABORT, 'customer_erasures rows are immutable'); END;
CREATE TRIGGER customer_erasures_are_immutable_delete BEFORE DELETE ON customer_erasures
BEGIN SELECT RAISE(ABORT, 'customer_erasures rows are immutable'); END;

-- A lookup's searched index is a keyed hash of the person's phone or national id: erasure
-- overwrites it with `erased`, the one change the audit log of lookups accepts.
DROP TRIGGER pii_lookups_are_immutable_update;
CREATE TRIGGER pii_lookups_are_immutable_update BEFORE UPDATE ON pii_lookups
WHEN NEW.value_index IS NOT 'erased'
    OR NEW.id IS NOT OLD.id OR NEW.at IS NOT OLD.at OR NEW.api_key_id IS NOT OLD.api_key_id
    OR NEW.principal IS NOT OLD.principal OR NEW.field IS NOT OLD.field
    OR NEW.reason IS NOT OLD.reason OR NEW.customer_id IS NOT OLD.customer_id
BEGIN SELECT RAISE(ABORT, 'pii_lookups rows are immutable'); END;
