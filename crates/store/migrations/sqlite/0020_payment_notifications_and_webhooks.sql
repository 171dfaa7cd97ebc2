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

-- Merchant webhooks. An endpoint: where a merchant wants the events of its payments, which
-- types, and the key Tally signs them with (given to the merchant once, kept to sign).
CREATE TABLE webhook_endpoints (
    id TEXT PRIMARY KEY,
    merchant_id TEXT NOT NULL,
    url TEXT NOT NULL,
    events TEXT NOT NULL,
    secret TEXT NOT NULL,
    request_hash TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX webhook_endpoints_by_merchant ON webhook_endpoints (merchant_id, created_at);

-- The outbox: one row per payment or refund state change, written in the transaction that
-- stores the change, so that no change goes unannounced and none is announced that did not
-- happen. `fanned_out` is 1 once its deliveries exist.
CREATE TABLE payment_events (
    sequence INTEGER PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    type TEXT NOT NULL,
    payment_id TEXT NOT NULL,
    merchant_id TEXT NOT NULL,
    payload TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    fanned_out BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX payment_events_to_fan_out ON payment_events (sequence) WHERE fanned_out = 0;
CREATE INDEX payment_events_by_payment ON payment_events (payment_id, sequence);

-- One delivery per event and subscribed endpoint: `pending` (sent again at
-- `next_attempt_at`), `delivered` or `failed` (given up).
CREATE TABLE webhook_deliveries (
    event_id TEXT NOT NULL REFERENCES payment_events (id),
    endpoint_id TEXT NOT NULL REFERENCES webhook_endpoints (id),
    status TEXT NOT NULL,
    attempts BIGINT NOT NULL,
    next_attempt_at BIGINT,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (event_id, endpoint_id)
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_attempt_at) WHERE status = 'pending';
CREATE INDEX webhook_deliveries_by_endpoint ON webhook_deliveries (endpoint_id);

-- The delivery log: every attempt, with the receiver's status code or the error.
CREATE TABLE webhook_attempts (
    event_id TEXT NOT NULL,
    endpoint_id TEXT NOT NULL,
    attempt BIGINT NOT NULL,
    attempted_at BIGINT NOT NULL,
    status_code BIGINT,
    error TEXT,
    PRIMARY KEY (event_id, endpoint_id, attempt)
);
