-- Confirmed fraud on its way to the consortium log (an outbox): one row per identifier a
-- confirmed case publishes, written in the transaction that confirms the case, sent by a
-- worker of `tally serve`. `request` is the signed request (base64) once signed, stored
-- before it is sent, so a crash resends the same request (the log refuses a second copy
-- by its sequence number) and `search_from` (the log's size when it was signed) says where
-- to look for it in the log when the answer was lost. `status`: pending, published (with
-- the record's log index), refused (the log refused it for good; `last_error` says why).
CREATE TABLE consortium_publications (
    id TEXT PRIMARY KEY,
    case_id TEXT NOT NULL REFERENCES risk_cases (id),
    kind TEXT NOT NULL,
    identifier TEXT NOT NULL,
    risk_type TEXT NOT NULL,
    severity INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    status TEXT NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'published', 'refused')),
    request TEXT,
    salt TEXT,
    search_from INTEGER,
    record_index INTEGER,
    published_at INTEGER,
    attempts INTEGER NOT NULL DEFAULT 0,
    last_error TEXT,
    UNIQUE (case_id, kind, identifier)
);
CREATE INDEX consortium_publications_pending ON consortium_publications (created_at)
    WHERE status = 'pending';
