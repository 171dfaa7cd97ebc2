-- Erasure of customers' personal data (PIPL art. 47, GDPR art. 17).
--
-- An erased customer's row stays under its pseudonymous id (the ledger, credit accounts and
-- payments name it) with every sealed field overwritten by `erased` and both blind indexes by
-- `erased:<id>`. Its erasure is recorded once here: who, when and why, never a value.
-- Append-only.
CREATE TABLE customer_erasures (
    customer_id TEXT PRIMARY KEY REFERENCES customers (id),
    at BIGINT NOT NULL,
    api_key_id TEXT NOT NULL,
    principal TEXT NOT NULL,
    reason TEXT NOT NULL CHECK (length(reason) > 0)
);

-- tally_refuse_change() is defined with the ledger's tables (0001).
CREATE TRIGGER customer_erasures_are_immutable BEFORE UPDATE OR DELETE ON customer_erasures
    FOR EACH ROW EXECUTE FUNCTION tally_refuse_change();
CREATE TRIGGER customer_erasures_are_not_truncated BEFORE TRUNCATE ON customer_erasures
    FOR EACH STATEMENT EXECUTE FUNCTION tally_refuse_change();

-- A lookup's searched index is a keyed hash of the person's phone or national id: erasure
-- overwrites it with `erased`, the one change the audit log of lookups accepts.
DROP TRIGGER pii_lookups_are_immutable ON pii_lookups;
CREATE TRIGGER pii_lookups_are_not_deleted BEFORE DELETE ON pii_lookups
    FOR EACH ROW EXECUTE FUNCTION tally_refuse_change();
CREATE TRIGGER pii_lookups_are_immutable BEFORE UPDATE ON pii_lookups
    FOR EACH ROW
    WHEN (NEW.value_index <> 'erased'
        OR (NEW.id, NEW.at, NEW.api_key_id, NEW.principal, NEW.field, NEW.reason, NEW.customer_id)
            IS DISTINCT FROM
            (OLD.id, OLD.at, OLD.api_key_id, OLD.principal, OLD.field, OLD.reason, OLD.customer_id))
    EXECUTE FUNCTION tally_refuse_change();
