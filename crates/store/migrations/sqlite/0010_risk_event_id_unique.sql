-- Risk: one stored event per client event id, so that a retried event answers the stored
-- decision instead of being counted again. Databases written before this change may hold
-- retries stored as new events: those later copies keep their rows (they were decided and
-- counted) and are marked with their own sequence in `retry_of`; every other row has 0.
ALTER TABLE risk_events ADD COLUMN retry_of INTEGER NOT NULL DEFAULT 0;
UPDATE risk_events SET retry_of = sequence
WHERE EXISTS (
    SELECT 1 FROM risk_events AS earlier
    WHERE earlier.event_id = risk_events.event_id AND earlier.sequence < risk_events.sequence
);
CREATE UNIQUE INDEX risk_events_event_id ON risk_events (event_id, retry_of);
