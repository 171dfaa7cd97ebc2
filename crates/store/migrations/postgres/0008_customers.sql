-- Customers and the audit log of their personal data read in clear.
--
-- Personal fields are stored sealed by tally-privacy's FieldCipher
-- (`v1:<key id>:<base64 nonce+ciphertext>`, AES-256-GCM); phone and national id are found
-- through their HMAC-SHA-256 blind indexes, unique so that one person is one customer.
-- The date of birth is sealed too: the credit rules need the age, nobody needs to search
-- by it, and beside a name it identifies a person.
CREATE TABLE customers (
    id TEXT PRIMARY KEY,
    created_at BIGINT NOT NULL,
    name TEXT NOT NULL,
    phone TEXT NOT NULL,
    national_id TEXT NOT NULL,
    date_of_birth TEXT NOT NULL,
    phone_index TEXT NOT NULL UNIQUE,
    national_id_index TEXT NOT NULL UNIQUE
);

-- The idempotency key of each customer creation. `request_hash` is keyed (HMAC under the
-- blind index key), since a plain hash of a phone number could be reversed by guessing.
CREATE TABLE customer_idempotency_keys (
    key TEXT PRIMARY KEY,
    request_hash TEXT NOT NULL,
    customer_id TEXT NOT NULL REFERENCES customers (id),
    created_at BIGINT NOT NULL
);

-- One row per field revealed in clear: who (API key id and name), when, which customer and
-- field, and why. Append-only.
CREATE TABLE pii_reads (
    id TEXT PRIMARY KEY,
    at BIGINT NOT NULL,
    api_key_id TEXT NOT NULL,
    principal TEXT NOT NULL,
    customer_id TEXT NOT NULL REFERENCES customers (id),
    field TEXT NOT NULL CHECK (field IN ('name', 'phone', 'national_id', 'date_of_birth')),
    reason TEXT NOT NULL CHECK (length(reason) > 0)
);
CREATE INDEX pii_reads_by_customer ON pii_reads (customer_id, at);

-- tally_refuse_change() is defined with the ledger's tables (0001).
CREATE TRIGGER pii_reads_are_immutable BEFORE UPDATE OR DELETE ON pii_reads
    FOR EACH ROW EXECUTE FUNCTION tally_refuse_change();
CREATE TRIGGER pii_reads_are_not_truncated BEFORE TRUNCATE ON pii_reads
    FOR EACH STATEMENT EXECUTE FUNCTION tally_refuse_change();
