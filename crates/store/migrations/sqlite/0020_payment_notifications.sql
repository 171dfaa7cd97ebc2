-- The channel's notifications as received: one row per event id, written before the event
-- is applied, so that a duplicate delivery (the channel delivers at least once) is
-- recognised and changes nothing. An event about a reference Tally does not know is kept
-- too (outcome `unknown_reference`): answered 2xx so the channel stops sending it, and
-- there to read when someone asks why.
CREATE TABLE channel_notifications (
    event_id TEXT PRIMARY KEY,
    type TEXT NOT NULL,
    reference TEXT NOT NULL,
    channel_id TEXT NOT NULL,
    amount_minor BIGINT NOT NULL,
    currency TEXT NOT NULL,
    occurred_at BIGINT NOT NULL,
    received_at BIGINT NOT NULL,
    -- `received` until applied, then `applied`, `already_applied`, `in_flight` or
    -- `unknown_reference`.
    outcome TEXT NOT NULL,
    resolved_at BIGINT
);
CREATE INDEX channel_notifications_by_reference ON channel_notifications (reference);
