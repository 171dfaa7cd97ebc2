-- The identifiers of risk events that another member of the consortium log can match
-- (card numbers, delivery addresses, receiving phones), kept so that confirmed fraud can
-- publish them. The log blinds an identifier itself from its normalised value, so the
-- value must be at hand when a case is confirmed; events keep only Tally's own keyed
-- fingerprints, which no other member can match. `sealed` is the consortium's normalised
-- value sealed with the privacy keys (AES-256-GCM, field `consortium_identifier.<kind>`),
-- never in clear; `fingerprint` is its keyed HMAC (one value, one fingerprint), to tell
-- the thief's identifiers from the victim's and to name a publication. Rows are written
-- only when Tally is a consortium member and are deleted at `expires_at` (the
-- member's `record_days` after the event).
CREATE TABLE consortium_identifiers (
    event_id TEXT NOT NULL,
    customer TEXT NOT NULL,
    at INTEGER NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('card', 'address', 'phone')),
    fingerprint TEXT NOT NULL,
    sealed TEXT NOT NULL,
    expires_at INTEGER NOT NULL,
    PRIMARY KEY (event_id, kind)
);
CREATE INDEX consortium_identifiers_customer ON consortium_identifiers (customer, at);
CREATE INDEX consortium_identifiers_fingerprint ON consortium_identifiers (kind, fingerprint);
CREATE INDEX consortium_identifiers_expiry ON consortium_identifiers (expires_at);
