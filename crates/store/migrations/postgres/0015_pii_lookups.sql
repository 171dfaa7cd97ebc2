-- The audit log of exact lookups of customers by phone or national id.
--
-- A lookup answers a masked customer, but enough lookups would confirm a value the mask
-- hides, so each one is on record before its answer: who (API key id and name), when,
-- which field, the blind index of the value searched (never the value), the reason if one
-- was given, and the customer found (NULL when none matched). Append-only.
CREATE TABLE pii_lookups (
    id TEXT PRIMARY KEY,
    at BIGINT NOT NULL,
    api_key_id TEXT NOT NULL,
    principal TEXT NOT NULL,
    field TEXT NOT NULL CHECK (field IN ('phone', 'national_id')),
    value_index TEXT NOT NULL,
    reason TEXT CHECK (reason IS NULL OR length(reason) > 0),
    customer_id TEXT REFERENCES customers (id)
);
CREATE INDEX pii_lookups_by_key ON pii_lookups (api_key_id, at);

-- tally_refuse_change() is defined with the ledger's tables (0001).
CREATE TRIGGER pii_lookups_are_immutable BEFORE UPDATE OR DELETE ON pii_lookups
    FOR EACH ROW EXECUTE FUNCTION tally_refuse_change();
CREATE TRIGGER pii_lookups_are_not_truncated BEFORE TRUNCATE ON pii_lookups
    FOR EACH STATEMENT EXECUTE FUNCTION tally_refuse_change();
